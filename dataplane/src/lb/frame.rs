//! A frame in a buffer with headroom: the unit the pipeline works on.
//!
//! `buf` is the whole buffer (an AF_XDP UMEM chunk, or a test `Vec`); the
//! frame occupies `buf[head..head + len]`. Encapsulation and ICMP generation
//! grow the frame at the front into the headroom, never by copying the
//! payload.

/// A frame borrowed from its buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    head: usize,
    len: usize,
}

impl<'a> Frame<'a> {
    /// `None` when `head + len` does not fit in `buf`.
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Option<Self> {
        (head.checked_add(len)? <= buf.len()).then_some(Self { buf, head, len })
    }

    /// Points the frame at `buf[head..head + len]` again (reusing it for the
    /// next packet in the same buffer); false, unchanged, if that does not fit.
    pub fn reset(&mut self, head: usize, len: usize) -> bool {
        if head.checked_add(len).is_none_or(|end| end > self.buf.len()) {
            return false;
        }
        self.head = head;
        self.len = len;
        true
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.head + self.len]
    }

    /// Offset of the frame in its buffer (UMEM descriptors carry it).
    pub fn head(&self) -> usize {
        self.head
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes the frame can still grow by at its end.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// Opens `n` bytes at offset `at` (the bytes from `at` on move up);
    /// false, unchanged, if the tailroom is short.
    pub fn open(&mut self, at: usize, n: usize) -> bool {
        let len = self.len;
        if at > len || !self.set_len(len + n) {
            return false;
        }
        self.data_mut().copy_within(at..len, at + n);
        true
    }

    /// Closes `n` bytes at offset `at` (the bytes after them move down).
    pub fn close(&mut self, at: usize, n: usize) {
        let len = self.len;
        let n = n.min(len.saturating_sub(at));
        self.data_mut().copy_within(at + n..len, at);
        self.len = len - n;
    }

    /// Grows the frame by `n` bytes at the front; false if the headroom is short.
    pub fn push_head(&mut self, n: usize) -> bool {
        if n > self.head {
            return false;
        }
        self.head -= n;
        self.len += n;
        true
    }

    /// Sets the length (shrink, or grow into the tailroom); false if it does not fit.
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.head + len > self.buf.len() {
            return false;
        }
        self.len = len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_into_headroom_only() {
        let mut b = [0u8; 64];
        let mut f = Frame::new(&mut b, 16, 32).unwrap();
        assert!(!f.push_head(17));
        assert!(f.push_head(16));
        assert_eq!((f.head(), f.len()), (0, 48));
        assert!(!f.set_len(65));
        assert!(f.set_len(64));
        assert!(f.reset(8, 8));
        assert_eq!((f.head(), f.len()), (8, 8));
        assert!(!f.reset(60, 5));
        assert!(Frame::new(&mut b, 60, 5).is_none());
        assert!(Frame::new(&mut b, usize::MAX, 5).is_none());
    }

    #[test]
    fn opens_and_closes_in_the_middle() {
        let mut b = [0u8; 16];
        b[4..10].copy_from_slice(b"abcdef");
        let mut f = Frame::new(&mut b, 4, 6).unwrap();
        assert_eq!(f.tailroom(), 6);
        assert!(f.open(2, 3));
        f.data_mut()[2..5].copy_from_slice(b"XYZ");
        assert_eq!(f.data(), b"abXYZcdef");
        assert!(!f.open(0, 4), "3 bytes of tailroom left");
        f.close(2, 3);
        assert_eq!(f.data(), b"abcdef");
        f.close(4, 10);
        assert_eq!(f.data(), b"abcd");
    }
}
