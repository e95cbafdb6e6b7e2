//! Fragment trains (IPv4 and IPv6) held until complete, per core, in
//! bounded memory: at most [`MAX_TRAINS`] trains of at most [`MAX_FRAGS`]
//! fragments, [`SLOTS`] frames of [`SLOT`] bytes in all (1 MiB, taken at
//! start, touched as used), each train for at most [`TIMEOUT`] ticks.
//!
//! A fragment is copied into a slot (the engine keeps no frame of the
//! rings); the one that completes its train is not: the caller processes
//! it in place and takes the others back from here. A train whose
//! fragments overlap (RFC 5722; IPv4 alike, as Linux does since 4.19),
//! that passes [`MAX_FRAGS`] fragments or 65,535 bytes, or whose last
//! fragment disagrees with the others, is dropped whole, under its reason.
//! When no train or slot is free, the oldest train gives way.
//!
//! Pure bookkeeping: no packet is parsed or rewritten here.

use super::stats::DropReason;

pub const MAX_TRAINS: usize = 64;
pub const MAX_FRAGS: usize = 64;
pub const SLOTS: usize = 256;
/// Bytes per slot: a frame (and room in front of it, for an encapsulation).
pub const SLOT: usize = 4096;
/// Room kept in front of a held frame.
pub const SLOT_HEAD: usize = 256;
/// Ticks a train may wait for its missing fragments (3 s).
pub const TIMEOUT: u32 = 3 * super::TICKS_PER_SEC;
/// The largest datagram a train may make (the IP length field's).
const MAX_DATAGRAM: usize = 65535;

/// What names a train: RFC 791's (source, destination, protocol, id), with
/// IPv6's 32-bit id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key {
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub proto: u8,
    pub id: u32,
}

/// One fragment's place in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Piece {
    /// Offset of its data in the datagram's fragmentable part, in bytes.
    pub offset: usize,
    /// Bytes of data it carries.
    pub len: usize,
    /// More fragments follow (IPv4 MF, IPv6 M).
    pub more: bool,
}

impl Piece {
    fn end(&self) -> usize {
        self.offset + self.len
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Held {
    slot: u16,
    piece: Piece,
    /// Where the frame starts in its slot, and its length.
    len: u16,
}

#[derive(Debug, Clone)]
struct Train {
    live: bool,
    key: Key,
    since: u32,
    held: [Held; MAX_FRAGS],
    n: usize,
}

impl Default for Train {
    fn default() -> Self {
        Self { live: false, key: Key::default(), since: 0, held: [Held::default(); MAX_FRAGS], n: 0 }
    }
}

impl Train {
    fn pieces(&self) -> impl Iterator<Item = &Piece> {
        self.held[..self.n].iter().map(|h| &h.piece)
    }

    /// The datagram's length, once its last fragment is in.
    fn total(&self) -> Option<usize> {
        self.pieces().find(|p| !p.more).map(Piece::end)
    }
}

/// What became of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Held; its train waits for more.
    Held,
    /// It completes train `t`: the caller processes it and the held ones
    /// ([`Defrag::held`]), then [`Defrag::release`]s the train.
    Complete(usize),
    /// Refused, and with it the `dropped` fragments its train held, for
    /// `why`.
    Dropped { why: DropReason, dropped: usize },
}

pub struct Defrag {
    trains: Vec<Train>,
    pool: Vec<u8>,
    free: Vec<u16>,
}

impl Default for Defrag {
    fn default() -> Self {
        Self::new()
    }
}

impl Defrag {
    pub fn new() -> Self {
        Self {
            trains: vec![Train::default(); MAX_TRAINS],
            // Zeroed by the allocator's fresh pages: untouched, they cost nothing.
            pool: vec![0; SLOTS * SLOT],
            free: (0..SLOTS as u16).rev().collect(),
        }
    }

    /// Trains waiting.
    pub fn trains(&self) -> usize {
        self.trains.iter().filter(|t| t.live).count()
    }

    /// Fragments held.
    pub fn held_count(&self) -> usize {
        SLOTS - self.free.len()
    }

    /// Adds the fragment `piece` of train `key`, whose whole frame is
    /// `frame`, at tick `now`.
    pub fn add(&mut self, key: &Key, piece: Piece, frame: &[u8], now: u32) -> Added {
        if piece.more && (piece.len == 0 || piece.len % 8 != 0) {
            return self.refuse(key, DropReason::FragMalformed);
        }
        if piece.end() > MAX_DATAGRAM || frame.len() > SLOT - SLOT_HEAD {
            return self.refuse(key, DropReason::FragTooBig);
        }
        let t = match self.find(key) {
            Some(t) => t,
            None => self.open(key, now),
        };
        let train = &self.trains[t];
        let total = train.total();
        let overlaps = train.pieces().any(|p| p.offset < piece.end() && piece.offset < p.end());
        let past_end = total.is_some_and(|e| piece.end() > e || (!piece.more && piece.end() != e));
        let beyond_last = !piece.more && train.pieces().any(|p| p.end() > piece.end());
        if overlaps || past_end || beyond_last {
            return self.drop_train(t, DropReason::FragOverlap);
        }
        let have: usize = train.pieces().map(|p| p.len).sum::<usize>() + piece.len;
        let total = total.or((!piece.more).then(|| piece.end()));
        if total == Some(have) {
            return Added::Complete(t);
        }
        if train.n == MAX_FRAGS {
            return self.drop_train(t, DropReason::FragTooMany);
        }
        let Some(slot) = self.take_slot(t) else {
            return self.drop_train(t, DropReason::FragNoRoom);
        };
        let at = usize::from(slot) * SLOT + SLOT_HEAD;
        self.pool[at..at + frame.len()].copy_from_slice(frame);
        let train = &mut self.trains[t];
        train.held[train.n] = Held { slot, piece, len: frame.len() as u16 };
        train.n += 1;
        Added::Held
    }

    /// The fragments train `t` holds: (slot, piece), in the order they came.
    pub fn held(&self, t: usize) -> impl Iterator<Item = (u16, Piece)> + '_ {
        let tr = &self.trains[t];
        tr.held[..tr.n].iter().map(|h| (h.slot, h.piece))
    }

    /// The pool, lent out (while frames of it go through the engine) and
    /// given back with [`Self::give_back_pool`].
    pub fn take_pool(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pool)
    }

    pub fn give_back_pool(&mut self, pool: Vec<u8>) {
        self.pool = pool;
    }

    /// The slot `slot`'s frame in a lent pool.
    pub fn frame_in(pool: &mut [u8], slot: u16) -> &mut [u8] {
        let at = usize::from(slot) * SLOT;
        &mut pool[at..at + SLOT]
    }

    /// The length of the frame held in `slot` of train `t`.
    pub fn frame_len(&self, t: usize, slot: u16) -> usize {
        let tr = &self.trains[t];
        tr.held[..tr.n].iter().find(|h| h.slot == slot).map_or(0, |h| usize::from(h.len))
    }

    /// The bytes of slot `slot` (a held frame lies at [`SLOT_HEAD`]).
    pub fn slot(&self, slot: u16) -> &[u8] {
        let at = usize::from(slot) * SLOT;
        &self.pool[at..at + SLOT]
    }

    /// Frees a slot [`Self::release_but`] kept.
    pub fn free_slot(&mut self, slot: u16) {
        self.free.push(slot);
    }

    /// Ends train `t`; its slots are free again but those `keep` names
    /// (frames still to be sent), which [`Self::free_slot`] frees later.
    pub fn release_but(&mut self, t: usize, keep: impl Fn(u16) -> bool) {
        let tr = &mut self.trains[t];
        for h in &tr.held[..tr.n] {
            if !keep(h.slot) {
                self.free.push(h.slot);
            }
        }
        tr.n = 0;
        tr.live = false;
    }

    /// Ends train `t`, its slots free again.
    pub fn release(&mut self, t: usize) {
        let tr = &mut self.trains[t];
        for h in &tr.held[..tr.n] {
            self.free.push(h.slot);
        }
        tr.n = 0;
        tr.live = false;
    }

    /// Trains older than [`TIMEOUT`] end; returns the fragments they held.
    pub fn expire(&mut self, now: u32) -> usize {
        let mut n = 0;
        for t in 0..MAX_TRAINS {
            if self.trains[t].live && now.wrapping_sub(self.trains[t].since) >= TIMEOUT {
                n += self.trains[t].n;
                self.release(t);
            }
        }
        n
    }

    fn find(&self, key: &Key) -> Option<usize> {
        self.trains.iter().position(|t| t.live && t.key == *key)
    }

    /// A new train, in a free place or the oldest train's.
    fn open(&mut self, key: &Key, now: u32) -> usize {
        let t = match self.trains.iter().position(|t| !t.live) {
            Some(t) => t,
            None => self.oldest(None),
        };
        self.release(t);
        let tr = &mut self.trains[t];
        tr.live = true;
        tr.key = *key;
        tr.since = now;
        t
    }

    fn oldest(&self, but: Option<usize>) -> usize {
        (0..MAX_TRAINS)
            .filter(|&t| Some(t) != but && self.trains[t].live)
            .min_by_key(|&t| self.trains[t].since)
            .unwrap_or(0)
    }

    /// A free slot, the oldest other train giving its up if none is.
    fn take_slot(&mut self, t: usize) -> Option<u16> {
        if self.free.is_empty() {
            let victim = self.oldest(Some(t));
            if victim != t && self.trains[victim].live {
                self.release(victim);
            }
        }
        self.free.pop()
    }

    fn refuse(&mut self, key: &Key, why: DropReason) -> Added {
        match self.find(key) {
            Some(t) => self.drop_train(t, why),
            None => Added::Dropped { why, dropped: 0 },
        }
    }

    fn drop_train(&mut self, t: usize, why: DropReason) -> Added {
        let dropped = self.trains[t].n;
        self.release(t);
        Added::Dropped { why, dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(id: u32) -> Key {
        Key { v6: false, src: [1; 16], dst: [2; 16], proto: 17, id }
    }

    fn piece(offset: usize, len: usize, more: bool) -> Piece {
        Piece { offset, len, more }
    }

    #[test]
    fn a_train_completes_in_any_order() {
        let mut d = Defrag::new();
        assert_eq!(d.add(&key(1), piece(1480, 1480, true), b"b", 0), Added::Held);
        assert_eq!(d.add(&key(1), piece(2960, 1048, false), b"c", 0), Added::Held);
        assert_eq!(d.add(&key(2), piece(0, 8, true), b"other", 0), Added::Held);
        let Added::Complete(t) = d.add(&key(1), piece(0, 1480, true), b"a", 0) else { panic!() };
        let held: Vec<_> = d.held(t).map(|(_, p)| p.offset).collect();
        assert_eq!(held, vec![1480, 2960]);
        d.release(t);
        assert_eq!((d.trains(), d.held_count()), (1, 1));
    }

    #[test]
    fn overlaps_and_disagreements_drop_the_train() {
        let mut d = Defrag::new();
        d.add(&key(1), piece(0, 16, true), b"a", 0);
        d.add(&key(1), piece(16, 16, true), b"b", 0);
        assert_eq!(
            d.add(&key(1), piece(24, 16, true), b"c", 0),
            Added::Dropped { why: DropReason::FragOverlap, dropped: 2 }
        );
        assert_eq!(d.trains(), 0);
        // A duplicate is an overlap too (RFC 5722).
        d.add(&key(2), piece(0, 16, true), b"a", 0);
        assert!(matches!(
            d.add(&key(2), piece(0, 16, true), b"a", 0),
            Added::Dropped { why: DropReason::FragOverlap, .. }
        ));
        // Two last fragments that disagree, or data past the last.
        d.add(&key(3), piece(16, 8, false), b"z", 0);
        assert!(matches!(
            d.add(&key(3), piece(8, 8, false), b"y", 0),
            Added::Dropped { why: DropReason::FragOverlap, .. }
        ));
        d.add(&key(4), piece(16, 8, false), b"z", 0);
        assert!(matches!(
            d.add(&key(4), piece(24, 8, true), b"y", 0),
            Added::Dropped { why: DropReason::FragOverlap, .. }
        ));
        // Not a multiple of 8 before the last, or past 65,535 bytes.
        assert_eq!(
            d.add(&key(5), piece(0, 13, true), b"x", 0),
            Added::Dropped { why: DropReason::FragMalformed, dropped: 0 }
        );
        assert_eq!(
            d.add(&key(6), piece(65528, 16, false), b"x", 0),
            Added::Dropped { why: DropReason::FragTooBig, dropped: 0 }
        );
        assert_eq!(d.held_count(), 0);
    }

    #[test]
    fn too_many_fragments_drop_the_train() {
        let mut d = Defrag::new();
        for k in 0..MAX_FRAGS {
            assert_eq!(d.add(&key(1), piece(8 * k, 8, true), b"f", 0), Added::Held);
        }
        assert_eq!(
            d.add(&key(1), piece(8 * MAX_FRAGS, 8, true), b"f", 0),
            Added::Dropped { why: DropReason::FragTooMany, dropped: MAX_FRAGS }
        );
        assert_eq!(d.held_count(), 0);
    }

    #[test]
    fn trains_time_out_and_the_oldest_gives_way() {
        let mut d = Defrag::new();
        d.add(&key(1), piece(0, 8, true), b"a", 0);
        d.add(&key(2), piece(0, 8, true), b"a", 10);
        assert_eq!(d.expire(TIMEOUT - 1), 0);
        assert_eq!(d.expire(TIMEOUT), 1, "the first train's one fragment");
        assert_eq!(d.trains(), 1);
        for k in 0..MAX_TRAINS as u32 + 5 {
            d.add(&key(100 + k), piece(0, 8, true), b"a", 20 + k);
        }
        assert_eq!(d.trains(), MAX_TRAINS, "bounded: the oldest gave way");
        assert!(d.held_count() <= SLOTS);
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut d = Defrag::new();
        for k in 0..(SLOTS * 2) as u32 {
            let t = k / 40;
            d.add(&key(t), piece(8 * (k % 40) as usize, 8, true), &[7; 1500], k);
        }
        assert!(d.held_count() <= SLOTS);
        assert!(d.trains() <= MAX_TRAINS);
    }

    proptest! {
        #[test]
        fn any_fragments_keep_the_books(ops in proptest::collection::vec((0u32..4, 0usize..100, 0usize..40, any::<bool>()), 0..300)) {
            let mut d = Defrag::new();
            for (k, (id, off, len, more)) in ops.into_iter().enumerate() {
                if let Added::Complete(t) = d.add(&key(id), piece(off * 8, len * 8, more), b"x", k as u32) {
                    d.release(t);
                }
                prop_assert!(d.held_count() <= SLOTS);
                let held: usize = (0..MAX_TRAINS).filter(|&t| d.trains[t].live).map(|t| d.trains[t].n).sum();
                prop_assert_eq!(held, d.held_count());
            }
        }
    }
}
