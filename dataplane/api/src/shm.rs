//! The shared-memory region of one instance: `/dev/shm/xdpvs-<instance>`.
//!
//! The daemon creates it (mode 0600, or 0660 with a configured group);
//! `xdpvsadm` maps it to send commands, read stats and list connections.
//! Nothing in it is a pointer: everything is a 64-bit word at a fixed index,
//! read and written with atomic operations, so two processes can share it
//! without locks:
//!
//! - **header**: magic, ABI version, the daemon's pid, a heartbeat, the
//!   configuration generation, a doorbell (futex) and the layout's sizes;
//! - **command slots**: a client claims a free slot (compare-and-swap),
//!   writes its request and rings the doorbell; the daemon's control thread
//!   answers in the same slot and wakes the client (futex on the slot's
//!   state). Slots of clients that died are reclaimed;
//! - **blobs**: texts the control thread publishes under a sequence lock
//!   (the configuration view, the rate estimates);
//! - **per-core areas**: each worker is the single writer of its counters,
//!   per-service and per-real-server stats (sequence lock per area: readers
//!   retry, the worker never waits);
//! - **per-core dump rings**: `-L -c` asks every worker for its connections;
//!   the worker streams a bounded number of records per loop iteration into
//!   its ring, so a listing never stalls forwarding.
//!
//! This module and `xsk` are the only places that may use `unsafe`. The
//! invariant it rests on: **the mapping stays valid and at least
//! `Layout::bytes()` long for the life of the [`Region`], and every access
//! goes through an 8-byte aligned atomic inside it** (futex words are only
//! ever accessed as 32-bit atomics, every other word only as a 64-bit one).

#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::counters::{CounterArray, Stats, ARRAY_LEN};

/// "XDPVSshm", little endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"XDPVSshm");
/// Bumped on any change of the layout or of a message's meaning.
pub const ABI: u32 = 7;

/// Command slots (concurrent `xdpvsadm` invocations in flight).
pub const SLOTS: usize = 16;
/// Bytes of request or answer per slot (a `-R` of tens of thousands of lines).
pub const SLOT_BYTES: usize = 2 << 20;
/// Service and real-server slots the per-core stats can hold.
pub const MAX_SERVICES: usize = 16384;
pub const MAX_DESTS: usize = 65536;
/// Bytes per blob.
pub const BLOB_BYTES: usize = 32 << 20;
/// Connection records per core ring.
pub const DUMP_RECORDS: usize = 8192;
/// Room for a core's counter array (`counters::ARRAY_LEN` of it is used).
pub const COUNTERS: usize = 96;
const _: () = assert!(ARRAY_LEN <= COUNTERS, "the counter array outgrew its room in the region");

/// The blobs.
pub const BLOB_VIEW: usize = 0;
pub const BLOB_RATES: usize = 1;
/// The sync thread's state and counters (`msg::SyncView`).
pub const BLOB_SYNC: usize = 2;
/// The BGP announcements through BIRD (`msg::BgpView`).
pub const BLOB_BGP: usize = 3;
const BLOBS: usize = 4;

// Header words.
const H_MAGIC: usize = 0;
const H_ABI: usize = 1;
const H_PID: usize = 2;
const H_NCORES: usize = 3;
const H_HEARTBEAT: usize = 4;
const H_GENERATION: usize = 5;
/// Futex word: bumped by clients after submitting.
const H_DOORBELL: usize = 6;
const H_DUMP_OWNER: usize = 7;
const H_DUMP_SEQ: usize = 8;
const H_STARTED: usize = 9;
const H_SLOTS: usize = 10;
const H_SLOT_BYTES: usize = 11;
const H_MAX_SERVICES: usize = 12;
const H_MAX_DESTS: usize = 13;
const H_BLOB_BYTES: usize = 14;
const H_DUMP_RECORDS: usize = 15;
/// `counters::FINGERPRINT` of the daemon that made the region.
const H_COUNTERS: usize = 16;
const HEADER_WORDS: usize = 64;

// Slot words (then the data).
/// Futex word: [`SlotState`].
const S_STATE: usize = 0;
const S_OWNER: usize = 1;
const S_REQ_LEN: usize = 2;
const S_ANS_LEN: usize = 3;
const S_STATUS: usize = 4;
const S_GENERATION: usize = 5;
const S_SINCE: usize = 6;
const SLOT_HEAD: usize = 8;

const FREE: u32 = 0;
const WRITING: u32 = 1;
const SUBMITTED: u32 = 2;
const DONE: u32 = 3;

// Blob words.
const B_SEQ: usize = 0;
const B_LEN: usize = 1;
const BLOB_HEAD: usize = 8;

// Core area words.
const C_SEQ: usize = 0;
const C_GENERATION: usize = 1;
const C_ADOPTED_NS: usize = 2;
const C_NSVC: usize = 3;
const C_NDEST: usize = 4;
/// When the worker last published (monotonic ns): a stalled worker's stays put.
const C_PUBLISHED_NS: usize = 5;
const CORE_HEAD: usize = 8;
const SVC_WORDS: usize = 6;
const DEST_WORDS: usize = 8;

// Dump ring words.
const D_REQ: usize = 0;
const D_ACK: usize = 1;
const D_HEAD: usize = 2;
const D_TAIL: usize = 3;
const D_DONE: usize = 4;
const DUMP_HEAD: usize = 8;
/// Words per connection record.
pub const REC_WORDS: usize = 16;

/// Word offsets of everything, from the sizes in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub ncores: usize,
    pub slots: usize,
    pub slot_bytes: usize,
    pub max_services: usize,
    pub max_dests: usize,
    pub blob_bytes: usize,
    pub dump_records: usize,
}

impl Layout {
    pub fn new(ncores: usize) -> Self {
        Self {
            ncores,
            slots: SLOTS,
            slot_bytes: SLOT_BYTES,
            max_services: MAX_SERVICES,
            max_dests: MAX_DESTS,
            blob_bytes: BLOB_BYTES,
            dump_records: DUMP_RECORDS,
        }
    }

    fn slot_words(&self) -> usize {
        SLOT_HEAD + self.slot_bytes / 8
    }
    fn slot(&self, i: usize) -> usize {
        HEADER_WORDS + i * self.slot_words()
    }
    fn blob_words(&self) -> usize {
        BLOB_HEAD + self.blob_bytes / 8
    }
    fn blob(&self, b: usize) -> usize {
        self.slot(self.slots) + b * self.blob_words()
    }
    fn core_words(&self) -> usize {
        CORE_HEAD + COUNTERS + self.max_services * SVC_WORDS + self.max_dests * DEST_WORDS
    }
    fn core(&self, c: usize) -> usize {
        self.blob(BLOBS) + c * self.core_words()
    }
    fn dump_words(&self) -> usize {
        DUMP_HEAD + self.dump_records * REC_WORDS
    }
    fn dump(&self, c: usize) -> usize {
        self.core(self.ncores) + c * self.dump_words()
    }
    fn words(&self) -> usize {
        self.dump(self.ncores)
    }
    pub fn bytes(&self) -> usize {
        self.words() * 8
    }
}

/// Why the region cannot be used, each naming the way out.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("no xdpvs daemon for instance '{instance}': {path} does not exist (start xdpvs --instance {instance})")]
    Missing { instance: String, path: String },
    #[error("permission denied on {path}: run as root, or start xdpvs with --shm-group GROUP and join that group")]
    Permission { path: String },
    #[error("{what} in {path} stayed mid-update: the region is corrupted (restart xdpvs; if it recurs, something else writes to the file)")]
    Corrupt { path: String, what: String },
    #[error("{path} was made by an xdpvs that counts other things than this program knows: use the xdpvsadm built with this xdpvs")]
    Counters { path: String },
    #[error("{path} is not to be trusted: {why} (remove it; xdpvs makes its own)")]
    Untrusted { path: String, why: String },
    #[error("{path} is not an xdpvs region (bad magic or size)")]
    NotOurs { path: String },
    #[error("{path} speaks ABI version {found}, this program speaks {want}: use the xdpvsadm built with this xdpvs")]
    Version { path: String, found: u32, want: u32 },
    #[error("the daemon of instance '{instance}' (pid {pid}) is gone; {path} is stale (start xdpvs again, or remove the file)")]
    Gone { instance: String, pid: u32, path: String },
    #[error("daemon pid {pid} is not responding (its control thread has been silent for {secs} s): is it stopped (kill -CONT {pid}) or hung?")]
    NotResponding { pid: u32, secs: u64 },
    #[error("instance '{instance}' is already running (pid {pid}): stop it, or use another --instance")]
    Running { instance: String, pid: u32 },
    #[error("illegal instance name '{0}': use letters, digits, '-', '_' or '.' (at most 64)")]
    BadInstance(String),
    #[error("{0}")]
    Io(String),
}

/// The region's file for `instance`.
pub fn path_of(instance: &str) -> Result<PathBuf, ShmError> {
    let ok = !instance.is_empty()
        && instance.len() <= 64
        && !instance.starts_with('.')
        && instance.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ShmError::BadInstance(instance.into()));
    }
    Ok(PathBuf::from(format!("/dev/shm/xdpvs-{instance}")))
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How long a client waits for a daemon whose control thread has stopped
/// beating (it beats at least every 20 ms) before it gives up.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// How long a reader retries a sequence lock before calling the region
/// corrupted (a writer holds one for microseconds).
pub const SEQLOCK_LIMIT: Duration = Duration::from_millis(500);

/// A region is trusted when its file belongs to the user its daemon (the
/// header's pid) runs as, and nobody else may write it: a file another
/// user created first, naming some other process, is not a daemon's.
fn trusted(file: &std::fs::File, pid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().map_err(|e| e.to_string())?;
    if m.mode() & 0o002 != 0 {
        return Err(format!("anyone may write it (mode {:o})", m.mode() & 0o7777));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let euid: Option<u32> =
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().nth(1)?.parse().ok());
    match euid {
        Some(u) if u == m.uid() => Ok(()),
        Some(u) => Err(format!("it belongs to uid {}, but the daemon it names (pid {pid}) runs as uid {u}", m.uid())),
        None => Err(format!("the daemon it names (pid {pid}) cannot be checked")),
    }
}

/// Whether process `pid` exists.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn futex_wait(w: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as _, tv_nsec: timeout.subsec_nanos() as _ };
    // SAFETY: `w` is an aligned 32-bit word inside the live shared mapping;
    // FUTEX_WAIT (shared, not PRIVATE: other processes wake it) only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        )
    };
}

fn futex_wake(w: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not touch the word.
    unsafe { libc::syscall(libc::SYS_futex, w.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32) };
}

/// A mapped region.
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
    path: PathBuf,
    /// The daemon's handle: removes the file when dropped.
    owner: bool,
}

// SAFETY: the region is only accessed through atomics (see the module
// invariant); the mapping is not tied to the thread that made it.
unsafe impl Send for Region {}
// SAFETY: as above: every shared access is an atomic operation.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        if self.owner && self.word(H_PID).load(Ordering::Relaxed) == u64::from(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing borrows
        // the mapping past `self` (every accessor borrows `self`).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

fn map(file: &std::fs::File, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping of an open file descriptor; the kernel
    // checks the length and the fd's access mode.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), 0)
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Region {
    /// The daemon's side: make the region of `instance` for `ncores`
    /// workers. A stale region (its daemon gone) is replaced; a live one is
    /// refused. `gid`: group allowed to use it (mode 0660), else 0600.
    pub fn create(instance: &str, ncores: usize, gid: Option<u32>) -> Result<Region, ShmError> {
        let path = path_of(instance)?;
        match Region::open_path(instance, &path) {
            Ok(r) => {
                return Err(ShmError::Running { instance: instance.into(), pid: r.pid() });
            }
            Err(ShmError::Missing { .. }) => {}
            Err(e) => {
                if let ShmError::Untrusted { .. } = e {
                    eprintln!("xdpvs: replacing {}: {e}", path.display());
                }
                std::fs::remove_file(&path)
                    .map_err(|e| ShmError::Io(format!("cannot remove the stale {}: {e}", path.display())))?;
            }
        }
        let layout = Layout::new(ncores);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| ShmError::Io(format!("cannot create {}: {e}", path.display())))?;
        if let Some(g) = gid {
            std::os::unix::fs::fchown(&file, None, Some(g))
                .map_err(|e| ShmError::Io(format!("cannot give {} to group {g}: {e}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o660))
                .map_err(|e| ShmError::Io(format!("cannot chmod {}: {e}", path.display())))?;
        }
        file.set_len(layout.bytes() as u64)
            .map_err(|e| ShmError::Io(format!("cannot size {} to {} bytes: {e}", path.display(), layout.bytes())))?;
        let base =
            map(&file, layout.bytes()).map_err(|e| ShmError::Io(format!("cannot map {}: {e}", path.display())))?;
        let r = Region { base, len: layout.bytes(), layout, path, owner: true };
        let h = |i: usize, v: u64| r.word(i).store(v, Ordering::Relaxed);
        h(H_ABI, u64::from(ABI));
        h(H_PID, u64::from(std::process::id()));
        h(H_NCORES, ncores as u64);
        h(H_HEARTBEAT, monotonic_ns());
        h(H_STARTED, std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        h(H_SLOTS, layout.slots as u64);
        h(H_SLOT_BYTES, layout.slot_bytes as u64);
        h(H_MAX_SERVICES, layout.max_services as u64);
        h(H_MAX_DESTS, layout.max_dests as u64);
        h(H_BLOB_BYTES, layout.blob_bytes as u64);
        h(H_DUMP_RECORDS, layout.dump_records as u64);
        h(H_COUNTERS, crate::counters::FINGERPRINT);
        // Last, with release: a reader that sees the magic sees the rest.
        r.word(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(r)
    }

    /// The client's side: map the region of `instance` and check it.
    pub fn open(instance: &str) -> Result<Region, ShmError> {
        let path = path_of(instance)?;
        Region::open_path(instance, &path)
    }

    fn open_path(instance: &str, path: &std::path::Path) -> Result<Region, ShmError> {
        let p = path.display().to_string();
        let flags = libc::O_CLOEXEC | libc::O_NOFOLLOW;
        let file = match OpenOptions::new().read(true).write(true).custom_flags(flags).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ShmError::Missing { instance: instance.into(), path: p })
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(ShmError::Permission { path: p }),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(ShmError::Untrusted { path: p, why: "it is a symbolic link".into() })
            }
            Err(e) => return Err(ShmError::Io(format!("cannot open {p}: {e}"))),
        };
        let size = file.metadata().map_err(|e| ShmError::Io(format!("{p}: {e}")))?.len() as usize;
        if size < HEADER_WORDS * 8 {
            return Err(ShmError::NotOurs { path: p });
        }
        let base = map(&file, size).map_err(|e| ShmError::Io(format!("cannot map {p}: {e}")))?;
        let mut r = Region { base, len: size, layout: Layout::new(0), path: path.to_path_buf(), owner: false };
        if r.word(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(ShmError::NotOurs { path: p });
        }
        let abi = r.word(H_ABI).load(Ordering::Relaxed) as u32;
        if abi != ABI {
            return Err(ShmError::Version { path: p, found: abi, want: ABI });
        }
        if r.word(H_COUNTERS).load(Ordering::Relaxed) != crate::counters::FINGERPRINT {
            return Err(ShmError::Counters { path: p });
        }
        let g = |i: usize| r.word(i).load(Ordering::Relaxed) as usize;
        let layout = Layout {
            ncores: g(H_NCORES),
            slots: g(H_SLOTS),
            slot_bytes: g(H_SLOT_BYTES),
            max_services: g(H_MAX_SERVICES),
            max_dests: g(H_MAX_DESTS),
            blob_bytes: g(H_BLOB_BYTES),
            dump_records: g(H_DUMP_RECORDS),
        };
        if layout.bytes() > size || layout.ncores > 4096 || layout.slots == 0 {
            return Err(ShmError::NotOurs { path: p });
        }
        r.layout = layout;
        let pid = r.pid();
        if !pid_alive(pid) {
            return Err(ShmError::Gone { instance: instance.into(), pid, path: p });
        }
        trusted(&file, pid).map_err(|why| ShmError::Untrusted { path: p, why })?;
        Ok(r)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    #[inline]
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= self.len, "shared-memory word {i} outside the region");
        // SAFETY: in bounds (checked above), 8-aligned (mmap is page aligned,
        // i*8 is a multiple of 8), valid for the life of `self` (module invariant).
        unsafe { &*self.base.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }

    /// A futex word (only ever accessed through this 32-bit view).
    #[inline]
    fn word32(&self, i: usize) -> &AtomicU32 {
        assert!((i + 1) * 8 <= self.len, "shared-memory word {i} outside the region");
        // SAFETY: as `word`; futex words are never accessed as 64-bit atomics.
        unsafe { &*self.base.as_ptr().add(i * 8).cast::<AtomicU32>() }
    }

    fn write_bytes(&self, at: usize, b: &[u8]) {
        for (k, chunk) in b.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(at + k).store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
    }

    fn read_bytes(&self, at: usize, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        for k in 0..len.div_ceil(8) {
            v.extend_from_slice(&self.word(at + k).load(Ordering::Relaxed).to_le_bytes());
        }
        v.truncate(len);
        v
    }

    // ---- header ----

    pub fn pid(&self) -> u32 {
        self.word(H_PID).load(Ordering::Relaxed) as u32
    }

    /// Seconds since the Unix epoch when the daemon started.
    pub fn started(&self) -> u64 {
        self.word(H_STARTED).load(Ordering::Relaxed)
    }

    /// Daemon: "still here" (every control-loop turn).
    pub fn beat(&self) {
        self.word(H_HEARTBEAT).store(monotonic_ns(), Ordering::Relaxed);
    }

    /// Time since the daemon's last heartbeat.
    pub fn silence(&self) -> Duration {
        Duration::from_nanos(monotonic_ns().saturating_sub(self.word(H_HEARTBEAT).load(Ordering::Relaxed)))
    }

    pub fn set_generation(&self, g: u64) {
        self.word(H_GENERATION).store(g, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.word(H_GENERATION).load(Ordering::Acquire)
    }

    /// Daemon: sleep until a client rings or `timeout` passes. `seen`: the
    /// doorbell value the caller last acted on (updated).
    pub fn wait_doorbell(&self, seen: &mut u32, timeout: Duration) {
        let bell = self.word32(H_DOORBELL);
        if bell.load(Ordering::Acquire) == *seen {
            futex_wait(bell, *seen, timeout);
        }
        *seen = bell.load(Ordering::Acquire);
    }

    /// Wakes the daemon's control thread from [`Self::wait_doorbell`] (a
    /// command was submitted, or a worker needs a neighbour resolved).
    pub fn ring(&self) {
        let bell = self.word32(H_DOORBELL);
        bell.fetch_add(1, Ordering::Release);
        futex_wake(bell);
    }

    // ---- command slots ----

    /// Client: send `req`, wait for the answer (`Ok(status, answer, generation)`).
    pub fn call(&self, req: &[u8], timeout: Duration) -> Result<(u64, Vec<u8>, u64), ShmError> {
        let l = self.layout;
        if req.len() > l.slot_bytes {
            return Err(ShmError::Io(format!(
                "request of {} bytes exceeds the {} bytes a command slot holds",
                req.len(),
                l.slot_bytes
            )));
        }
        let deadline = Instant::now() + timeout;
        let me = std::process::id();
        let slot = loop {
            let free = (0..l.slots).find(|&i| {
                let st = self.word32(l.slot(i) + S_STATE);
                st.compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok()
            });
            if let Some(i) = free {
                break l.slot(i);
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(ShmError::Io(format!("every command slot stayed busy for {timeout:?}")));
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        self.word(slot + S_OWNER).store(u64::from(me), Ordering::Relaxed);
        self.word(slot + S_SINCE).store(monotonic_ns(), Ordering::Relaxed);
        self.write_bytes(slot + SLOT_HEAD, req);
        self.word(slot + S_REQ_LEN).store(req.len() as u64, Ordering::Relaxed);
        let state = self.word32(slot + S_STATE);
        state.store(SUBMITTED, Ordering::Release);
        self.ring();
        loop {
            let s = state.load(Ordering::Acquire);
            if s == DONE {
                break;
            }
            if let Err(e) = self.check_alive() {
                state.store(FREE, Ordering::Release);
                return Err(e);
            }
            if Instant::now() >= deadline {
                // The daemon may still answer: it frees the slot after us.
                self.word(slot + S_OWNER).store(0, Ordering::Relaxed);
                return Err(ShmError::Io(format!("the daemon did not answer within {timeout:?}")));
            }
            futex_wait(state, s, Duration::from_millis(100));
        }
        let status = self.word(slot + S_STATUS).load(Ordering::Relaxed);
        let gen = self.word(slot + S_GENERATION).load(Ordering::Relaxed);
        let n = (self.word(slot + S_ANS_LEN).load(Ordering::Relaxed) as usize).min(l.slot_bytes);
        let ans = self.read_bytes(slot + SLOT_HEAD, n);
        self.word(slot + S_OWNER).store(0, Ordering::Relaxed);
        state.store(FREE, Ordering::Release);
        Ok((status, ans, gen))
    }

    /// The daemon exists and its control thread beat within [`SILENCE_LIMIT`].
    fn check_alive(&self) -> Result<(), ShmError> {
        let pid = self.pid();
        if !pid_alive(pid) {
            return Err(ShmError::Gone { instance: String::new(), pid, path: self.path.display().to_string() });
        }
        let silent = self.silence();
        if silent > SILENCE_LIMIT {
            return Err(ShmError::NotResponding { pid, secs: silent.as_secs() });
        }
        Ok(())
    }

    /// Daemon: the next submitted request (slot index and bytes).
    pub fn next_request(&self) -> Option<(usize, Vec<u8>)> {
        let l = self.layout;
        (0..l.slots).find_map(|i| {
            let s = l.slot(i);
            if self.word32(s + S_STATE).load(Ordering::Acquire) != SUBMITTED {
                return None;
            }
            let n = (self.word(s + S_REQ_LEN).load(Ordering::Relaxed) as usize).min(l.slot_bytes);
            Some((i, self.read_bytes(s + SLOT_HEAD, n)))
        })
    }

    /// Daemon: answer slot `i` and wake its client (or free the slot when
    /// the client gave up).
    pub fn answer(&self, i: usize, status: u64, text: &[u8], generation: u64) {
        let s = self.layout.slot(i);
        let text = &text[..text.len().min(self.layout.slot_bytes)];
        self.write_bytes(s + SLOT_HEAD, text);
        self.word(s + S_ANS_LEN).store(text.len() as u64, Ordering::Relaxed);
        self.word(s + S_STATUS).store(status, Ordering::Relaxed);
        self.word(s + S_GENERATION).store(generation, Ordering::Relaxed);
        self.word(s + S_SINCE).store(monotonic_ns(), Ordering::Relaxed);
        let state = self.word32(s + S_STATE);
        let owner = self.word(s + S_OWNER).load(Ordering::Relaxed) as u32;
        state.store(if pid_alive(owner) { DONE } else { FREE }, Ordering::Release);
        futex_wake(state);
    }

    /// Daemon: free slots whose client died between claiming and reading
    /// (checked for slots older than a second). Returns how many.
    pub fn reclaim(&self) -> usize {
        let l = self.layout;
        let now = monotonic_ns();
        let mut n = 0;
        for i in 0..l.slots {
            let s = l.slot(i);
            let state = self.word32(s + S_STATE);
            let st = state.load(Ordering::Acquire);
            if st == FREE || st == SUBMITTED {
                continue;
            }
            let since = self.word(s + S_SINCE).load(Ordering::Relaxed);
            let owner = self.word(s + S_OWNER).load(Ordering::Relaxed) as u32;
            if now.saturating_sub(since) > 1_000_000_000
                && !pid_alive(owner)
                && state.compare_exchange(st, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                n += 1;
            }
        }
        n
    }

    // ---- blobs ----

    /// Daemon: publish blob `b` (sequence lock; readers retry).
    pub fn write_blob(&self, b: usize, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > self.layout.blob_bytes {
            return Err(format!("{} bytes exceed the {} a blob holds", bytes.len(), self.layout.blob_bytes));
        }
        let at = self.layout.blob(b);
        let seq = self.word(at + B_SEQ);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(at + B_LEN).store(bytes.len() as u64, Ordering::Relaxed);
        self.write_bytes(at + BLOB_HEAD, bytes);
        seq.store(s + 2, Ordering::Release);
        Ok(())
    }

    /// Client: read blob `b` (empty if never written).
    pub fn read_blob(&self, b: usize) -> Result<Vec<u8>, ShmError> {
        let at = self.layout.blob(b);
        self.consistent(at + B_SEQ, "a published view", || {
            let n = (self.word(at + B_LEN).load(Ordering::Relaxed) as usize).min(self.layout.blob_bytes);
            self.read_bytes(at + BLOB_HEAD, n)
        })
    }

    /// Reads under the sequence lock at word `seq_at`: retried while a
    /// writer is mid-update, for at most [`SEQLOCK_LIMIT`] (a writer never
    /// holds it that long: only a corrupted region does).
    fn consistent<T>(&self, seq_at: usize, what: &str, mut read: impl FnMut() -> T) -> Result<T, ShmError> {
        let seq = self.word(seq_at);
        let deadline = Instant::now() + SEQLOCK_LIMIT;
        loop {
            let s1 = seq.load(Ordering::Acquire);
            if s1 % 2 == 0 {
                let v = read();
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == s1 {
                    return Ok(v);
                }
            }
            if Instant::now() >= deadline {
                return Err(ShmError::Corrupt { path: self.path.display().to_string(), what: what.to_string() });
            }
            std::thread::yield_now();
        }
    }

    // ---- per-core areas ----

    /// Worker `c`: it runs generation `g` from now on.
    pub fn adopted(&self, c: usize, g: u64) {
        let at = self.layout.core(c);
        self.word(at + C_ADOPTED_NS).store(monotonic_ns(), Ordering::Relaxed);
        self.word(at + C_GENERATION).store(g, Ordering::Release);
    }

    /// Worker `c`: rewrite its stats (single writer; never waits).
    pub fn write_core(&self, c: usize, w: &CoreWrite<'_>) {
        let l = self.layout;
        let at = l.core(c);
        let seq = self.word(at + C_SEQ);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (k, v) in w.counters.0.iter().enumerate() {
            self.word(at + CORE_HEAD + k).store(*v, Ordering::Relaxed);
        }
        let svc_at = at + CORE_HEAD + COUNTERS;
        let mut nsvc = 0;
        for e in w.services.iter().filter(|e| (e.slot as usize) < l.max_services) {
            let x = svc_at + e.slot as usize * SVC_WORDS;
            self.word(x).store(u64::from(e.serial) | 1 << 32, Ordering::Relaxed);
            for (k, v) in e.stats.fields().iter().enumerate() {
                self.word(x + 1 + k).store(*v, Ordering::Relaxed);
            }
            nsvc = nsvc.max(e.slot as usize + 1);
        }
        let dest_at = svc_at + l.max_services * SVC_WORDS;
        let mut ndest = 0;
        for e in w.dests.iter().filter(|e| (e.slot as usize) < l.max_dests) {
            let x = dest_at + e.slot as usize * DEST_WORDS;
            self.word(x).store(u64::from(e.serial) | 1 << 32, Ordering::Relaxed);
            self.word(x + 1).store(u64::from(e.active) | u64::from(e.inactive) << 32, Ordering::Relaxed);
            self.word(x + 2).store(u64::from(e.persist), Ordering::Relaxed);
            for (k, v) in e.stats.fields().iter().enumerate() {
                self.word(x + 3 + k).store(*v, Ordering::Relaxed);
            }
            ndest = ndest.max(e.slot as usize + 1);
        }
        // Slots beyond the live ones read as empty.
        let (old_svc, old_dest) = (
            self.word(at + C_NSVC).load(Ordering::Relaxed) as usize,
            self.word(at + C_NDEST).load(Ordering::Relaxed) as usize,
        );
        for i in nsvc..old_svc.min(l.max_services) {
            self.word(svc_at + i * SVC_WORDS).store(0, Ordering::Relaxed);
        }
        for i in ndest..old_dest.min(l.max_dests) {
            self.word(dest_at + i * DEST_WORDS).store(0, Ordering::Relaxed);
        }
        self.word(at + C_NSVC).store(nsvc as u64, Ordering::Relaxed);
        self.word(at + C_NDEST).store(ndest as u64, Ordering::Relaxed);
        self.word(at + C_PUBLISHED_NS).store(monotonic_ns(), Ordering::Relaxed);
        seq.store(s + 2, Ordering::Release);
    }

    fn read_counters(&self, at: usize) -> CounterArray {
        let mut c = CounterArray::default();
        for (k, v) in c.0.iter_mut().enumerate() {
            *v = self.word(at + k).load(Ordering::Relaxed);
        }
        c
    }

    /// A consistent copy of core `c`'s stats.
    pub fn read_core(&self, c: usize) -> Result<CoreRead, ShmError> {
        let at = self.layout.core(c);
        self.consistent(at + C_SEQ, "a worker's stats area", || self.read_core_words(at))
    }

    fn read_core_words(&self, at: usize) -> CoreRead {
        let l = self.layout;
        let mut r = CoreRead {
            generation: self.word(at + C_GENERATION).load(Ordering::Acquire),
            adopted_ns: self.word(at + C_ADOPTED_NS).load(Ordering::Relaxed),
            published_ns: self.word(at + C_PUBLISHED_NS).load(Ordering::Relaxed),
            counters: self.read_counters(at + CORE_HEAD),
            ..CoreRead::default()
        };
        let nsvc = (self.word(at + C_NSVC).load(Ordering::Relaxed) as usize).min(l.max_services);
        let ndest = (self.word(at + C_NDEST).load(Ordering::Relaxed) as usize).min(l.max_dests);
        let svc_at = at + CORE_HEAD + COUNTERS;
        for i in 0..nsvc {
            let x = svc_at + i * SVC_WORDS;
            let tag = self.word(x).load(Ordering::Relaxed);
            if tag >> 32 == 1 {
                let stats = Stats::from_fields(self.read_five(x + 1));
                r.services.push(SvcEntry { slot: i as u32, serial: tag as u32, stats });
            }
        }
        let dest_at = svc_at + l.max_services * SVC_WORDS;
        for i in 0..ndest {
            let x = dest_at + i * DEST_WORDS;
            let tag = self.word(x).load(Ordering::Relaxed);
            if tag >> 32 == 1 {
                let conns = self.word(x + 1).load(Ordering::Relaxed);
                r.dests.push(DestEntry {
                    slot: i as u32,
                    serial: tag as u32,
                    active: conns as u32,
                    inactive: (conns >> 32) as u32,
                    persist: self.word(x + 2).load(Ordering::Relaxed) as u32,
                    stats: Stats::from_fields(self.read_five(x + 3)),
                });
            }
        }
        r
    }

    fn read_five(&self, at: usize) -> [u64; 5] {
        let mut c = [0u64; 5];
        for (k, v) in c.iter_mut().enumerate() {
            *v = self.word(at + k).load(Ordering::Relaxed);
        }
        c
    }

    // ---- connection dumps ----

    /// Worker `c`: the dump it is asked for (0: none). One relaxed load.
    #[inline]
    pub fn dump_request(&self, c: usize) -> u64 {
        self.word(self.layout.dump(c) + D_REQ).load(Ordering::Acquire)
    }

    /// Worker `c`: start answering request `req` from the top of its ring.
    pub fn dump_start(&self, c: usize, req: u64) {
        let at = self.layout.dump(c);
        self.word(at + D_HEAD).store(0, Ordering::Relaxed);
        self.word(at + D_ACK).store(req, Ordering::Release);
    }

    /// Worker `c`: records it may write now.
    pub fn dump_room(&self, c: usize) -> usize {
        let at = self.layout.dump(c);
        let head = self.word(at + D_HEAD).load(Ordering::Relaxed);
        let tail = self.word(at + D_TAIL).load(Ordering::Acquire);
        self.layout.dump_records.saturating_sub(head.saturating_sub(tail) as usize)
    }

    /// Worker `c`: append one record (after `dump_room` said there is room).
    pub fn dump_push(&self, c: usize, rec: &[u64; REC_WORDS]) {
        let at = self.layout.dump(c);
        let head = self.word(at + D_HEAD).load(Ordering::Relaxed);
        let x = at + DUMP_HEAD + (head as usize % self.layout.dump_records) * REC_WORDS;
        for (k, v) in rec.iter().enumerate() {
            self.word(x + k).store(*v, Ordering::Relaxed);
        }
        self.word(at + D_HEAD).store(head + 1, Ordering::Release);
    }

    /// Worker `c`: request `req` is complete.
    pub fn dump_finish(&self, c: usize, req: u64) {
        self.word(self.layout.dump(c) + D_DONE).store(req, Ordering::Release);
    }

    /// Client: every worker's connection records. One dump at a time per
    /// instance (others wait); workers send a bounded batch per loop turn.
    pub fn dump_connections(&self, timeout: Duration) -> Result<Vec<[u64; REC_WORDS]>, ShmError> {
        let l = self.layout;
        let me = u64::from(std::process::id());
        let deadline = Instant::now() + timeout;
        let owner = self.word(H_DUMP_OWNER);
        loop {
            let cur = owner.load(Ordering::Acquire);
            let free = cur == 0 || !pid_alive(cur as u32);
            if free && owner.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                break;
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(ShmError::Io(format!(
                    "another connection listing (pid {cur}) held the daemon for {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let result = self.dump_locked(deadline);
        for c in 0..l.ncores {
            self.word(l.dump(c) + D_REQ).store(0, Ordering::Release);
        }
        owner.store(0, Ordering::Release);
        result
    }

    fn dump_locked(&self, deadline: Instant) -> Result<Vec<[u64; REC_WORDS]>, ShmError> {
        let l = self.layout;
        let req = self.word(H_DUMP_SEQ).fetch_add(1, Ordering::AcqRel) + 1;
        for c in 0..l.ncores {
            let at = l.dump(c);
            self.word(at + D_TAIL).store(0, Ordering::Release);
            self.word(at + D_REQ).store(req, Ordering::Release);
        }
        let mut out = Vec::new();
        let mut finished = vec![false; l.ncores];
        while finished.iter().any(|f| !f) {
            let mut progress = false;
            for (c, fin) in finished.iter_mut().enumerate() {
                if *fin {
                    continue;
                }
                let at = l.dump(c);
                if self.word(at + D_ACK).load(Ordering::Acquire) != req {
                    continue;
                }
                let done = self.word(at + D_DONE).load(Ordering::Acquire) == req;
                let head = self.word(at + D_HEAD).load(Ordering::Acquire);
                let tail = self.word(at + D_TAIL).load(Ordering::Relaxed);
                if head < tail || head - tail > l.dump_records as u64 {
                    let what = format!("worker {c}'s connection ring");
                    return Err(ShmError::Corrupt { path: self.path.display().to_string(), what });
                }
                for i in tail..head {
                    let x = at + DUMP_HEAD + (i as usize % l.dump_records) * REC_WORDS;
                    let mut rec = [0u64; REC_WORDS];
                    for (k, v) in rec.iter_mut().enumerate() {
                        *v = self.word(x + k).load(Ordering::Relaxed);
                    }
                    out.push(rec);
                }
                if head != tail {
                    self.word(at + D_TAIL).store(head, Ordering::Release);
                    progress = true;
                }
                if done && self.word(at + D_HEAD).load(Ordering::Acquire) == head {
                    *fin = true;
                }
            }
            if !progress {
                self.check_alive()?;
                if Instant::now() >= deadline {
                    let slow: Vec<String> = (0..l.ncores).filter(|&c| !finished[c]).map(|c| c.to_string()).collect();
                    return Err(ShmError::Io(format!(
                        "worker(s) {} did not finish the listing in time",
                        slow.join(",")
                    )));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(out)
    }
}

/// What a worker writes.
pub struct CoreWrite<'a> {
    pub counters: &'a CounterArray,
    pub services: &'a [SvcEntry],
    pub dests: &'a [DestEntry],
}

/// Per-service counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SvcEntry {
    pub slot: u32,
    pub serial: u32,
    pub stats: Stats,
}

/// Per-real-server counters and connection counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestEntry {
    pub slot: u32,
    pub serial: u32,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates bound to it.
    pub persist: u32,
    pub stats: Stats,
}

/// A copy of one core's area.
#[derive(Debug, Clone, Default)]
pub struct CoreRead {
    pub generation: u64,
    pub adopted_ns: u64,
    /// When the worker last published its stats (monotonic ns; 0: never).
    pub published_ns: u64,
    pub counters: CounterArray,
    pub services: Vec<SvcEntry>,
    pub dests: Vec<DestEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str, cores: usize) -> Region {
        let inst = format!("test-{}-{name}", std::process::id());
        Region::create(&inst, cores, None).expect("create")
    }

    #[test]
    fn create_open_and_refuse_a_second_daemon() {
        let r = region("open", 2);
        let inst = r.path().file_name().unwrap().to_str().unwrap().trim_start_matches("xdpvs-").to_string();
        let c = Region::open(&inst).expect("a client opens it");
        assert_eq!(c.layout(), r.layout());
        assert_eq!(c.pid(), std::process::id());
        assert!(matches!(Region::create(&inst, 2, None), Err(ShmError::Running { .. })));
        let mode = std::fs::metadata(r.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let path = r.path().to_path_buf();
        drop(c);
        drop(r);
        assert!(!path.exists(), "the daemon's region goes with it");
        assert!(matches!(Region::open(&inst), Err(ShmError::Missing { .. })));
        assert!(matches!(path_of("../etc"), Err(ShmError::BadInstance(_))));
    }

    #[test]
    fn clients_refuse_another_abi_and_a_dead_daemon() {
        let r = region("stale", 1);
        let inst = r.path().file_name().unwrap().to_str().unwrap().trim_start_matches("xdpvs-").to_string();
        r.word(H_ABI).store(u64::from(ABI) + 1, Ordering::Relaxed);
        assert!(matches!(Region::open(&inst), Err(ShmError::Version { found, .. }) if found == ABI + 1));
        r.word(H_ABI).store(u64::from(ABI), Ordering::Relaxed);
        // A pid that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        r.word(H_PID).store(u64::from(dead), Ordering::Relaxed);
        let e = Region::open(&inst).err().expect("refused");
        assert!(matches!(e, ShmError::Gone { pid, .. } if pid == dead), "{e}");
        // A new daemon replaces the stale region.
        let again = Region::create(&inst, 1, None).expect("stale region replaced");
        assert_eq!(again.pid(), std::process::id());
        drop(r);
        assert!(again.path().exists(), "the old handle does not remove the new daemon's region");
    }

    #[test]
    fn commands_round_trip_between_threads() {
        let r = std::sync::Arc::new(region("call", 1));
        let d = r.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let daemon = std::thread::spawn(move || {
            let mut seen = 0;
            let mut n = 0;
            while !st.load(Ordering::Relaxed) {
                d.wait_doorbell(&mut seen, Duration::from_millis(5));
                while let Some((i, req)) = d.next_request() {
                    let mut a = req.clone();
                    a.reverse();
                    n += 1;
                    d.answer(i, 7, &a, n);
                }
            }
        });
        let clients: Vec<_> = (0..40)
            .map(|k| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let req = format!("request number {k} {}", "x".repeat(k * 37));
                    let (st, ans, _) = r.call(req.as_bytes(), Duration::from_secs(10)).expect("answered");
                    assert_eq!(st, 7);
                    assert_eq!(ans, req.bytes().rev().collect::<Vec<_>>());
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        daemon.join().unwrap();
    }

    #[test]
    fn blobs_and_core_areas_read_back() {
        let r = region("stats", 2);
        r.write_blob(BLOB_VIEW, b"{\"generation\": 3}").unwrap();
        assert_eq!(r.read_blob(BLOB_VIEW).unwrap(), b"{\"generation\": 3}");
        assert!(r.read_blob(BLOB_RATES).unwrap().is_empty());
        let mut counters = CounterArray::default();
        for (k, v) in counters.0.iter_mut().enumerate() {
            *v = k as u64;
        }
        let services = [SvcEntry { slot: 2, serial: 9, stats: Stats::from_fields([1, 2, 3, 4, 5]) }];
        let dests = [DestEntry {
            slot: 5,
            serial: 11,
            active: 3,
            inactive: 4,
            persist: 2,
            stats: Stats::from_fields([6, 7, 8, 9, 10]),
        }];
        r.write_core(1, &CoreWrite { counters: &counters, services: &services, dests: &dests });
        r.adopted(1, 42);
        let c = r.read_core(1).unwrap();
        assert_eq!(
            (c.generation, &c.counters, &c.services[..], &c.dests[..]),
            (42, &counters, &services[..], &dests[..])
        );
        // A slot that disappears reads as empty.
        r.write_core(1, &CoreWrite { counters: &counters, services: &[], dests: &[] });
        let c = r.read_core(1).unwrap();
        assert!(c.services.is_empty() && c.dests.is_empty());
        assert!(r.read_core(0).unwrap().services.is_empty());
    }

    #[test]
    fn dumps_stream_through_a_small_ring() {
        let r = std::sync::Arc::new(region("dump", 2));
        let w = r.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        // Two "workers" with 20000 and 3 records: more than a ring holds.
        let worker = std::thread::spawn(move || {
            let mut active = [0u64; 2];
            let mut next = [0u64; 2];
            let total = [20_000u64, 3];
            while !st.load(Ordering::Relaxed) {
                for c in 0..2 {
                    let req = w.dump_request(c);
                    if req == 0 || req == u64::MAX {
                        continue;
                    }
                    if req != active[c] {
                        active[c] = req;
                        next[c] = 0;
                        w.dump_start(c, req);
                    }
                    let room = w.dump_room(c).min(100);
                    for _ in 0..room {
                        if next[c] == total[c] {
                            break;
                        }
                        let mut rec = [0u64; REC_WORDS];
                        rec[0] = c as u64;
                        rec[1] = next[c];
                        w.dump_push(c, &rec);
                        next[c] += 1;
                    }
                    if next[c] == total[c] {
                        w.dump_finish(c, req);
                    }
                }
                std::thread::yield_now();
            }
        });
        for _ in 0..2 {
            let recs = r.dump_connections(Duration::from_secs(20)).expect("dump");
            assert_eq!(recs.len(), 20_003);
            let core0: Vec<u64> = recs.iter().filter(|x| x[0] == 0).map(|x| x[1]).collect();
            assert_eq!(core0, (0..20_000).collect::<Vec<_>>(), "in order, none lost");
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
    }
}
