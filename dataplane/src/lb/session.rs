//! The per-core session table.
//!
//! Sessions live in a slab (`Vec<Session>`; a free slot's `controlled`
//! word holds the next free slot, see [`Session::next_free`]). A `hashbrown::HashTable<u32>` indexes them by tuple: each
//! entry is `slot << 1 | dir`, so an entry costs 4 bytes and the tuple is
//! compared against the session itself. A session is found by its inbound
//! tuple (client → VIP) and, for NAT/FULLNAT, by its outbound tuple (RS →
//! client or local address), as DPVS's `tuplehash_in`/`tuplehash_out`.
//!
//! Expiry is a lazy timer wheel: a packet only stores the new `expires`
//! (O(1), the wheel is untouched); a slot that fires with a later `expires`
//! is re-queued. `queued` names the tick a session is queued at, so stale
//! entries (left by a re-queue or by a freed and reused slot) are skipped.
//! Reaping is budgeted per call, so no call scans the whole table.
//!
//! A FULLNAT session that hands its real server the client's address
//! (`--proxy-protocol`, `--toa`) carries the `REVEAL` flag; what that needs
//! per connection ([`Reveal`]) lives beside the slab, slot for slot, so the
//! session itself stays one cache line and nothing else pays for it.
//!
//! Single-threaded by design: one table per core, no locks, no atomics.

use super::family::{Family, V4, V6};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::collections::VecDeque;
use xdpvs_api::config::{Fwd, ProxyProtocol};
use xdpvs_api::state::TcpState;

/// No session / no template.
pub const NIL: u32 = u32::MAX;

pub mod flag {
    /// Counted as inactive on its real server.
    pub const INACTIVE: u8 = 1;
    /// Replies are not seen (DR/TUN): the INPUT-ONLY state table.
    pub const NOOUTPUT: u8 = 2;
    /// A persistence template.
    pub const TEMPLATE: u8 = 4;
    /// The slot holds a session.
    pub const LIVE: u8 = 8;
    /// Indexed by its outbound tuple too.
    pub const HASHED_OUT: u8 = 16;
    /// A template taken out of the index (its server became unusable); it
    /// lives on only until the connections it controls end.
    pub const UNHASHED: u8 = 32;
    /// Of a one-packet-scheduling service (`-o`): the client's next datagram
    /// is scheduled afresh; this session only carries the replies to the
    /// last one.
    pub const ONE_PACKET: u8 = 64;
    /// FULLNAT with `--proxy-protocol` / `--toa`, or a SYN-proxied
    /// connection (`-j enable`): the slot's [`super::Reveal`] says what is
    /// still to do and how the byte stream is shifted.
    pub const REVEAL: u8 = 128;
}

/// What a FULLNAT connection still owes its real server of the client's
/// address, and how its byte stream is shifted by the PROXY header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reveal {
    /// The PROXY protocol version, if the service sends one.
    pub pp: Option<ProxyProtocol>,
    /// TCP: the client's SYN was seen; `at` and `pp_len` hold.
    pub armed: bool,
    /// TCP: the TOA option is still to go on the first ACK.
    pub toa: bool,
    /// UDP: the header is still to go in front of the next datagram.
    pub udp_pending: bool,
    /// TCP: the PROXY header's length: every client sequence number after
    /// `at` moves up by it on the way to the server.
    pub pp_len: u8,
    /// TCP: the client's first data sequence number (its ISN + 1), where
    /// the header goes.
    pub at: u32,
    /// SYN proxy (`-j enable`): how the director's handshake with the
    /// client and the server's with the director are spliced.
    pub splice: Splice,
}

/// A SYN-proxied connection (`-j enable`): the client shook hands with the
/// director (whose ISN was a cookie), the director then with the server.
/// From the server's SYN-ACK on, the server's sequence numbers (and
/// timestamps) are moved into the director's numbering toward the client,
/// and the client's acknowledgements, SACK edges (and echoed timestamps)
/// back; window fields are rescaled where the two handshakes agreed on
/// different window scales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Splice {
    pub on: bool,
    /// The server's SYN-ACK has not come: the client's segments wait.
    pub waiting: bool,
    /// Timestamps in use on both handshakes.
    pub ts: bool,
    /// The director's ISN toward the client (the cookie).
    pub cookie: u32,
    /// Server → client sequence numbers move up by this (cookie − server
    /// ISN); client → server acknowledgements and SACK edges down.
    pub delta: u32,
    /// Server → client TSval moves up by this; client → server TSecr down.
    pub ts_delta: u32,
    /// The client offered window scaling (the director announced
    /// `ANNOUNCED_WSCALE` back and told the server the client's), and its
    /// scale.
    pub client_scales: bool,
    pub ws_client: u8,
    /// Window fields, client → server and server → client: scaled by
    /// `2^.0` as sent, by `2^.1` as read on the other side.
    pub win_in: (u8, u8),
    pub win_out: (u8, u8),
    /// The client's window and TSval from its ACK: what the director's ACK
    /// to the server carries.
    pub win: u16,
    pub tsval: u32,
}

/// What a sync master remembers of a session (IPVS's `in_pkts` and
/// `sync_endtime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncMark {
    /// Packets from the client so far.
    pub pkts: u32,
    /// Tick it was last sent at (0: never).
    pub sent: u32,
}

/// `queued` of a slot in no bucket (a tick's low 16 bits never reach it
/// while the slot is queued: see [`SessionTable::due`]).
const QUEUED_NONE: u16 = u16::MAX;

/// Template tuples carry this bit in `proto`, so they never match a packet.
pub const TEMPLATE_PROTO: u8 = 0x80;

/// One connection (or persistence template).
///
/// Inbound tuple: `cip:cport → vip:vport`. Outbound tuple: `rip:rport →
/// lip:lport`, where `lip:lport` is the FULLNAT local address and port and
/// equals `cip:cport` in every other mode.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Session<A> {
    pub cip: A,
    pub vip: A,
    pub rip: A,
    pub lip: A,
    pub cport: u16,
    pub vport: u16,
    pub rport: u16,
    pub lport: u16,
    pub proto: u8,
    pub state: u8,
    pub flags: u8,
    pub fwd: Fwd,
    /// Expiry tick.
    pub expires: u32,
    /// Tick of the wheel bucket this slot is queued in (low 16 bits: a slot
    /// is only ever compared with a tick less than a wheel turn away).
    pub queued: u16,
    /// Connection: its controlling template; template: its timeout.
    pub link: Link,
    /// Template: connections it controls.
    pub controlled: u32,
    pub dest: u32,
    pub dest_serial: u32,
    /// Neighbour index toward the real server / toward the client (NIL: none).
    pub nh_rs: u32,
    pub nh_client: u32,
    /// FULLNAT: serial (low 16 bits) of the local address the port came from.
    pub laddr_serial: u16,
    pub svc: u16,
}

/// The one word a session keeps about persistence: a connection's
/// controlling template (its slot), or a template's own timeout. The
/// session's TEMPLATE flag says which; each reader names the one it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link(u32);

impl Link {
    /// A connection no template controls.
    pub const NONE: Link = Link(NIL);

    /// A connection controlled by the template in `slot`.
    pub fn to_template(slot: u32) -> Link {
        Link(slot)
    }

    /// A template that lives `ticks` after its last connection.
    pub fn timeout(ticks: u32) -> Link {
        Link(ticks)
    }

    /// A connection's controlling template, if any.
    pub fn template(self) -> Option<u32> {
        (self.0 != NIL).then_some(self.0)
    }

    /// A template's timeout, in ticks.
    pub fn ticks(self) -> u32 {
        self.0
    }
}

impl<A> Session<A> {
    /// A free slot: the next free slot of the table's free list (kept in
    /// the `controlled` word, which a free slot does not use).
    fn next_free(&self) -> u32 {
        self.controlled
    }

    fn set_next_free(&mut self, next: u32) {
        self.controlled = next;
    }
}

impl<A: Default> Default for Session<A> {
    fn default() -> Self {
        Self {
            cip: A::default(),
            vip: A::default(),
            rip: A::default(),
            lip: A::default(),
            cport: 0,
            vport: 0,
            rport: 0,
            lport: 0,
            proto: 0,
            state: 0,
            flags: 0,
            fwd: Fwd::Dr,
            expires: 0,
            queued: QUEUED_NONE,
            link: Link::NONE,
            controlled: 0,
            dest: NIL,
            dest_serial: 0,
            nh_rs: NIL,
            nh_client: NIL,
            laddr_serial: 0,
            svc: 0,
        }
    }
}

impl<A> Session<A> {
    #[inline]
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// A lookup key: what a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple<A> {
    pub src: A,
    pub dst: A,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

/// Which of a session's tuples matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    In,
    Out,
}

/// Why a session was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The table is at its configured maximum.
    Full,
    /// Another session holds its outbound tuple.
    Conflict,
}

const WHEEL_SLOTS: u32 = 4096;

#[inline]
pub(crate) fn addr_word(a: &[u8]) -> u64 {
    let mut w = 0u64;
    for c in a.chunks(8) {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        w = w.rotate_left(29) ^ u64::from_ne_bytes(b);
    }
    w
}

/// The index hash: the tuple packed into two words, each seeded, through
/// one folded multiply (the 128-bit product's halves XORed, as wyhash and
/// foldhash mix): the high half brings the top input bits down into the
/// low bits the index buckets by, and without the seed nobody can aim two
/// tuples at one bucket.
#[inline]
fn hash_tuple<A: AsRef<[u8]>>(seed: u64, src: &A, dst: &A, sport: u16, dport: u16, proto: u8) -> u64 {
    let ports = u64::from(sport) << 24 | u64::from(dport) << 8 | u64::from(proto);
    let a = addr_word(src.as_ref()) ^ seed;
    let b = addr_word(dst.as_ref()).rotate_left(32) ^ ports ^ seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ (p >> 64) as u64
}

/// The word the hash is seeded with: `seed` spread over all 64 bits (a
/// folded multiply needs both operands full width: a seed of 0 must not
/// leave an IPv4 address alone in one).
#[inline]
fn seed_word(seed: u64) -> u64 {
    super::mix(seed ^ 0x2545_f491_4f6c_dd1d)
}

/// A core's two tables.
pub struct Tables {
    pub v4: SessionTable<V4>,
    pub v6: SessionTable<V6>,
}

pub struct SessionTable<F: Family> {
    slab: Vec<Session<F::Addr>>,
    /// Beside `slab`, slot for slot: meaningful for `REVEAL` sessions only.
    reveal: Vec<Reveal>,
    /// Beside `slab`, slot for slot, once a sync master runs: when each
    /// session was last sent to the backups.
    sync: Vec<SyncMark>,
    free: u32,
    map: HashTable<u32>,
    seed: u64,
    cap: u32,
    len: u32,
    wheel: Vec<Vec<u32>>,
    /// Sessions ever inserted (a probe's "not found" stays true while this
    /// does not move).
    inserts: u64,
    /// Next tick to reap, and how far into its bucket reaping got.
    cursor: u32,
    cursor_pos: usize,
    /// Slots of TCP sessions made by a SYN, oldest first (at most `cap`,
    /// 4 bytes each): when the table is full, the oldest still half-open
    /// goes to make room (IPVS's `drop_entry` idea); established ones never.
    half_open: VecDeque<u32>,
}

impl<F: Family> SessionTable<F> {
    /// A table for at most `cap` sessions (templates included), with index
    /// room reserved for `reserve` of them up front.
    pub fn new(cap: u32, reserve: u32, seed: u64, now: u32) -> Self {
        let reserve = reserve.min(cap) as usize;
        Self {
            slab: Vec::with_capacity(reserve),
            reveal: Vec::new(),
            sync: Vec::new(),
            free: NIL,
            map: HashTable::with_capacity(reserve * 2),
            seed: seed_word(seed),
            cap,
            len: 0,
            wheel: (0..WHEEL_SLOTS).map(|_| Vec::new()).collect(),
            inserts: 0,
            cursor: now,
            cursor_pos: 0,
            // Its whole room up front (untouched pages cost nothing): no
            // allocation on the packet path as it fills.
            half_open: VecDeque::with_capacity(cap as usize),
        }
    }

    /// Slot `i` holds a new connection's first SYN.
    #[inline]
    pub fn note_half_open(&mut self, i: u32) {
        if self.half_open.len() >= self.cap as usize {
            self.half_open.pop_front();
        }
        self.half_open.push_back(i);
    }

    /// The oldest session still half-open (TCP, NONE or SYN_RECV: no
    /// handshake completed), if any: the one to evict when the table is full.
    pub fn oldest_half_open(&mut self) -> Option<u32> {
        while let Some(i) = self.half_open.pop_front() {
            let s = &self.slab[i as usize];
            let half = s.proto == crate::wire::proto::TCP
                && (s.state == TcpState::None as u8 || s.state == TcpState::SynRecv as u8);
            if s.has(flag::LIVE) && !s.has(flag::TEMPLATE) && half {
                return Some(i);
            }
        }
        None
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sessions inserted so far.
    #[inline]
    pub fn inserts(&self) -> u64 {
        self.inserts
    }

    /// Slots ever used (the memory the table's accesses range over).
    pub fn footprint(&self) -> usize {
        self.slab.len()
    }

    pub fn capacity(&self) -> u32 {
        self.cap
    }

    #[inline]
    pub fn get(&self, i: u32) -> &Session<F::Addr> {
        &self.slab[i as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> &mut Session<F::Addr> {
        &mut self.slab[i as usize]
    }

    /// Slot `i`'s client-address state (set by [`Self::insert`]; read only
    /// for a `REVEAL` session).
    #[inline]
    pub fn reveal(&self, i: u32) -> Reveal {
        self.reveal.get(i as usize).copied().unwrap_or_default()
    }

    #[inline]
    pub fn set_reveal(&mut self, i: u32, r: Reveal) {
        if let Some(x) = self.reveal.get_mut(i as usize) {
            *x = r;
        }
    }

    /// Slot `i`'s sync bookkeeping (a master's), made on first use: room
    /// for as many slots as the slab holds is taken at once, so the packet
    /// path allocates no more than the slab does.
    #[inline]
    pub fn sync_mark(&mut self, i: u32) -> &mut SyncMark {
        let i = i as usize;
        if self.sync.len() <= i {
            if self.sync.capacity() < self.slab.capacity() {
                self.sync.reserve(self.slab.capacity() - self.sync.len());
            }
            self.sync.resize(self.slab.len().max(i + 1), SyncMark::default());
        }
        &mut self.sync[i]
    }

    /// Live sessions with their slots (control path: listings).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Session<F::Addr>)> {
        self.iter_from(0)
    }

    /// Live sessions from slot `from` on (a listing resumed in steps).
    pub fn iter_from(&self, from: u32) -> impl Iterator<Item = (u32, &Session<F::Addr>)> {
        let from = (from as usize).min(self.slab.len());
        self.slab[from..]
            .iter()
            .enumerate()
            .filter(|(_, s)| s.has(flag::LIVE))
            .map(move |(i, s)| ((from + i) as u32, s))
    }

    /// Slots in use or freed (the end of a listing's walk).
    pub fn slots(&self) -> u32 {
        self.slab.len() as u32
    }

    #[inline]
    fn entry_matches(slab: &[Session<F::Addr>], e: u32, t: &Tuple<F::Addr>) -> bool {
        let s = &slab[(e >> 1) as usize];
        if e & 1 == 0 {
            s.cip == t.src && s.vip == t.dst && s.cport == t.sport && s.vport == t.dport && s.proto == t.proto
        } else {
            s.rip == t.src && s.lip == t.dst && s.rport == t.sport && s.lport == t.dport && s.proto == t.proto
        }
    }

    #[inline]
    fn entry_hash(slab: &[Session<F::Addr>], seed: u64, e: u32) -> u64 {
        let s = &slab[(e >> 1) as usize];
        if e & 1 == 0 {
            hash_tuple(seed, &s.cip, &s.vip, s.cport, s.vport, s.proto)
        } else {
            hash_tuple(seed, &s.rip, &s.lip, s.rport, s.lport, s.proto)
        }
    }

    /// The index hash of a tuple.
    #[inline]
    pub fn hash(&self, t: &Tuple<F::Addr>) -> u64 {
        hash_tuple(self.seed, &t.src, &t.dst, t.sport, t.dport, t.proto)
    }

    /// Finds the session a tuple belongs to.
    #[inline]
    pub fn lookup(&self, t: &Tuple<F::Addr>) -> Option<(u32, Side)> {
        self.lookup_hashed(t, self.hash(t))
    }

    /// [`Self::lookup`] with the hash already computed.
    #[inline]
    pub fn lookup_hashed(&self, t: &Tuple<F::Addr>, h: u64) -> Option<(u32, Side)> {
        let e = *self.map.find(h, |&e| Self::entry_matches(&self.slab, e, t))?;
        Some((e >> 1, if e & 1 == 0 { Side::In } else { Side::Out }))
    }

    /// Reads the index entries a lookup of `h` will read (control bytes and
    /// candidate buckets, not the sessions), so a lookup soon after finds them
    /// in cache. Returns a value only so the reads cannot be optimised away.
    #[inline]
    pub fn warm(&self, h: u64) -> u32 {
        let mut seen = 0;
        self.map.find(h, |&e| {
            seen ^= e;
            false
        });
        seen
    }

    /// True when slot `i` is indexed under `t` on `side` (validates a hint).
    #[inline]
    pub fn holds(&self, i: u32, side: Side, t: &Tuple<F::Addr>) -> bool {
        let Some(s) = self.slab.get(i as usize) else { return false };
        let indexed = match side {
            Side::In => !s.has(flag::UNHASHED),
            Side::Out => s.has(flag::HASHED_OUT),
        };
        s.has(flag::LIVE) && indexed && Self::entry_matches(&self.slab, i << 1 | (side == Side::Out) as u32, t)
    }

    /// True when `t` is already some session's tuple.
    pub fn contains(&self, t: &Tuple<F::Addr>) -> bool {
        self.lookup(t).is_some()
    }

    /// Stores a session, indexes it (inbound tuple; outbound too when
    /// `HASHED_OUT` is set, refusing a session whose outbound tuple is taken)
    /// and queues it for expiry. The inbound tuple must not be indexed yet
    /// (the caller has just missed on it).
    pub fn insert(&mut self, s: Session<F::Addr>) -> Result<u32, Refused> {
        self.insert_revealing(s, Reveal::default())
    }

    /// [`Self::insert`], with the client-address state of a `REVEAL` session.
    pub fn insert_revealing(&mut self, mut s: Session<F::Addr>, r: Reveal) -> Result<u32, Refused> {
        if self.len >= self.cap {
            return Err(Refused::Full);
        }
        s.flags |= flag::LIVE;
        let Self { map, slab, seed, free, len, .. } = self;
        let seed = *seed;
        // The outbound tuple first: one probe both checks and finds its place.
        let vacancy = if s.has(flag::HASHED_OUT) {
            let t = Tuple { src: s.rip, dst: s.lip, sport: s.rport, dport: s.lport, proto: s.proto };
            let h = hash_tuple(seed, &t.src, &t.dst, t.sport, t.dport, t.proto);
            match map.entry(h, |&e| Self::entry_matches(slab, e, &t), |&x| Self::entry_hash(slab, seed, x)) {
                Entry::Occupied(_) => return Err(Refused::Conflict),
                Entry::Vacant(v) => Some(v),
            }
        } else {
            None
        };
        let revealing = s.has(flag::REVEAL);
        let i = if *free != NIL {
            let i = *free;
            *free = slab[i as usize].next_free();
            slab[i as usize] = s;
            i
        } else {
            slab.push(s);
            (slab.len() - 1) as u32
        };
        if revealing {
            // Grown only as far as the highest revealing slot; room for as
            // many slots as the slab reserved is taken at the first one, so
            // later connections allocate no more than the slab does.
            let reveal = &mut self.reveal;
            if reveal.capacity() == 0 {
                reveal.reserve(slab.capacity());
            }
            if reveal.len() <= i as usize {
                reveal.resize(i as usize + 1, Reveal::default());
            }
            reveal[i as usize] = r;
        }
        if let Some(m) = self.sync.get_mut(i as usize) {
            *m = SyncMark::default();
        }
        *len += 1;
        self.inserts += 1;
        if let Some(v) = vacancy {
            v.insert(i << 1 | 1);
        }
        let h = Self::entry_hash(slab, seed, i << 1);
        map.insert_unique(h, i << 1, |&x| Self::entry_hash(slab, seed, x));
        self.queue(i);
        Ok(i)
    }

    fn unhash(&mut self, i: u32, dir: u32) {
        let e = i << 1 | dir;
        let h = Self::entry_hash(&self.slab, self.seed, e);
        if let Ok(entry) = self.map.find_entry(h, |&x| x == e) {
            entry.remove();
        }
    }

    /// Reads the index entries removing slot `i` will touch (see [`Self::warm`]).
    #[inline]
    pub fn warm_slot(&self, i: u32) -> u32 {
        let s = &self.slab[i as usize];
        let mut seen = 0;
        if !s.has(flag::UNHASHED) {
            seen ^= self.warm(Self::entry_hash(&self.slab, self.seed, i << 1));
        }
        if s.has(flag::HASHED_OUT) {
            seen ^= self.warm(Self::entry_hash(&self.slab, self.seed, i << 1 | 1));
        }
        seen
    }

    /// Takes a template out of the index (it stays until its connections end).
    pub fn unhash_template(&mut self, i: u32) {
        if !self.slab[i as usize].has(flag::UNHASHED) {
            self.unhash(i, 0);
            self.slab[i as usize].flags |= flag::UNHASHED;
        }
    }

    /// Unindexes and frees a session.
    pub fn remove(&mut self, i: u32) {
        let s = self.slab[i as usize];
        debug_assert!(s.has(flag::LIVE));
        if !s.has(flag::UNHASHED) {
            self.unhash(i, 0);
        }
        if s.has(flag::HASHED_OUT) {
            self.unhash(i, 1);
        }
        let slot = &mut self.slab[i as usize];
        slot.flags = 0;
        slot.queued = QUEUED_NONE;
        slot.set_next_free(self.free);
        self.free = i;
        self.len -= 1;
    }

    /// Queues slot `i` in the wheel at its `expires`, clamped to the reaper's
    /// position and horizon.
    pub fn queue(&mut self, i: u32) {
        let base = self.cursor;
        let exp = self.slab[i as usize].expires;
        let at = exp.clamp(base, base + WHEEL_SLOTS - 1);
        self.slab[i as usize].queued = at as u16;
        self.wheel[(at % WHEEL_SLOTS) as usize].push(i);
    }

    /// Moves the reaper up to `now` and fills `out` with slots whose time has
    /// come (still live: the caller decides and calls [`Self::remove`] or
    /// re-arms). Looks at no more than `budget` queue entries. Returns how
    /// many slots it wrote.
    pub fn due(&mut self, now: u32, budget: usize, out: &mut [u32]) -> usize {
        let mut n = 0;
        let mut seen = 0;
        while self.cursor <= now && n < out.len() && seen < budget {
            let b = (self.cursor % WHEEL_SLOTS) as usize;
            let mut bucket = std::mem::take(&mut self.wheel[b]);
            while self.cursor_pos < bucket.len() && n < out.len() && seen < budget {
                let i = bucket[self.cursor_pos];
                self.cursor_pos += 1;
                seen += 1;
                let s = &self.slab[i as usize];
                if !s.has(flag::LIVE) || s.queued != self.cursor as u16 {
                    continue;
                }
                if s.expires <= now {
                    self.slab[i as usize].queued = QUEUED_NONE;
                    out[n] = i;
                    n += 1;
                } else {
                    let exp = s.expires;
                    let at = exp.min(self.cursor + WHEEL_SLOTS - 1);
                    self.slab[i as usize].queued = at as u16;
                    let nb = (at % WHEEL_SLOTS) as usize;
                    debug_assert_ne!(nb, b);
                    self.wheel[nb].push(i);
                }
            }
            if self.cursor_pos >= bucket.len() {
                bucket.clear();
                self.cursor_pos = 0;
                self.cursor += 1;
            }
            // Keep the bucket's capacity (no allocation once warmed up); any
            // entries pushed meanwhile went to other buckets.
            debug_assert!(self.wheel[b].is_empty());
            self.wheel[b] = bucket;
        }
        n
    }

    /// Re-arms a slot handed out by [`Self::due`] (a template still in use).
    pub fn rearm(&mut self, i: u32, expires: u32) {
        self.slab[i as usize].expires = expires;
        self.queue(i);
    }

    /// Bytes the table holds on the heap (slab, index, wheel).
    pub fn heap_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Session<F::Addr>>()
            + self.reveal.capacity() * std::mem::size_of::<Reveal>()
            + self.map.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.wheel.iter().map(|b| b.capacity() * 4).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sess(c: u8, port: u16) -> Session<[u8; 4]> {
        Session {
            cip: [198, 18, 1, c],
            vip: [198, 18, 0, 10],
            rip: [198, 19, 0, 1],
            lip: [198, 18, 1, c],
            cport: port,
            vport: 80,
            rport: 8080,
            lport: port,
            proto: 6,
            flags: flag::HASHED_OUT,
            fwd: Fwd::Nat,
            expires: 100,
            ..Session::default()
        }
    }

    fn tin(s: &Session<[u8; 4]>) -> Tuple<[u8; 4]> {
        Tuple { src: s.cip, dst: s.vip, sport: s.cport, dport: s.vport, proto: s.proto }
    }

    fn tout(s: &Session<[u8; 4]>) -> Tuple<[u8; 4]> {
        Tuple { src: s.rip, dst: s.lip, sport: s.rport, dport: s.lport, proto: s.proto }
    }

    /// How many of `hashes` fall in the fullest of `2^bits` buckets (by the
    /// low bits, as the index places) and of the 128 tags (the top 7 bits).
    fn fullest(hashes: &[u64], bits: u32) -> (usize, usize) {
        let (mut buckets, mut tags) = (vec![0usize; 1 << bits], [0usize; 128]);
        for h in hashes {
            buckets[(h & ((1 << bits) - 1)) as usize] += 1;
            tags[(h >> 57) as usize] += 1;
        }
        (buckets.into_iter().max().unwrap_or(0), tags.into_iter().max().unwrap_or(0))
    }

    #[test]
    fn the_hash_spreads_a_sites_flows_evenly_whatever_the_seed() {
        // 2^16 flows to one VIP and port, from 16 clients (ports in a row),
        // and from 2^16 clients (one port): random placement fills no
        // bucket of 2^16 past ~9, and no tag past ~600.
        for seed in [0, 1, 7, 0x5eed_c0de_0f0f, u64::MAX] {
            let seed = seed_word(seed);
            for v6 in [false, true] {
                let (mut ports, mut clients) = (Vec::new(), Vec::new());
                for i in 0..1u32 << 16 {
                    let (few, many) = ((i >> 12) as u8, i.to_be_bytes());
                    let port = 1024 + (i & 0xfff) as u16;
                    if v6 {
                        let mut x = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, few];
                        ports.push(hash_tuple(seed, &x, &[0x20; 16], port, 443, 6));
                        x[12..].copy_from_slice(&many);
                        clients.push(hash_tuple(seed, &x, &[0x20; 16], 40000, 443, 6));
                    } else {
                        ports.push(hash_tuple(seed, &[198, 18, 1, few], &[198, 18, 0, 10], port, 80, 6));
                        let c = [198, many[1], many[2], many[3]];
                        clients.push(hash_tuple(seed, &c, &[198, 18, 0, 10], 40000, 80, 17));
                    }
                }
                for (what, hs) in [("ports", ports), ("clients", clients)] {
                    let (bucket, tag) = fullest(&hs, 16);
                    assert!(bucket <= 16 && tag <= 768, "seed {seed:#x} v6 {v6} {what}: bucket {bucket}, tag {tag}");
                }
            }
        }
    }

    #[test]
    fn found_both_ways_and_removed_cleanly() {
        let mut t = SessionTable::<V4>::new(10, 10, 7, 0);
        let s = sess(1, 40000);
        let i = t.insert(s).unwrap();
        assert_eq!(t.lookup(&tin(&s)), Some((i, Side::In)));
        assert_eq!(t.lookup(&tout(&s)), Some((i, Side::Out)));
        let mut other = tin(&s);
        other.sport += 1;
        assert_eq!(t.lookup(&other), None);
        t.remove(i);
        assert_eq!(t.lookup(&tin(&s)), None);
        assert_eq!(t.lookup(&tout(&s)), None);
        assert!(t.is_empty());
        // The slot is reused.
        assert_eq!(t.insert(sess(2, 1)).unwrap(), i);
    }

    #[test]
    fn refuses_past_capacity() {
        let mut t = SessionTable::<V4>::new(2, 2, 7, 0);
        t.insert(sess(1, 1)).unwrap();
        t.insert(sess(2, 1)).unwrap();
        assert_eq!(t.insert(sess(3, 1)), Err(Refused::Full));
    }

    #[test]
    fn wheel_reaps_on_time_and_requeues_refreshed() {
        let mut t = SessionTable::<V4>::new(100, 100, 7, 0);
        let a = t.insert(sess(1, 1)).unwrap(); // expires 100
        let b = t.insert(sess(2, 1)).unwrap();
        t.get_mut(b).expires = 250; // refreshed by a packet: the wheel is not touched
        let mut out = [0u32; 8];
        assert_eq!(t.due(99, 1000, &mut out), 0);
        assert_eq!(t.due(100, 1000, &mut out), 1);
        assert_eq!(out[0], a);
        t.remove(a);
        assert_eq!(t.due(249, 1000, &mut out), 0);
        assert_eq!(t.due(250, 1000, &mut out), 1);
        assert_eq!(out[0], b);
    }

    #[test]
    fn far_expiry_beyond_the_horizon() {
        let mut t = SessionTable::<V4>::new(10, 10, 7, 0);
        let mut s = sess(1, 1);
        s.expires = 3 * WHEEL_SLOTS + 5;
        let i = t.insert(s).unwrap();
        let mut out = [0u32; 4];
        assert_eq!(t.due(3 * WHEEL_SLOTS + 4, usize::MAX, &mut out), 0);
        assert_eq!(t.due(3 * WHEEL_SLOTS + 5, usize::MAX, &mut out), 1);
        assert_eq!(out[0], i);
    }

    #[test]
    fn budget_bounds_work_per_call() {
        let mut t = SessionTable::<V4>::new(1000, 1000, 7, 0);
        for c in 0..200u16 {
            let mut s = sess((c % 250) as u8, c);
            s.expires = 10;
            t.insert(s).unwrap();
        }
        let mut out = [0u32; 1000];
        let first = t.due(10, 50, &mut out);
        assert_eq!(first, 50);
        let mut total = first;
        for _ in 0..10 {
            let n = t.due(10, 50, &mut out);
            for &i in &out[..n] {
                t.remove(i);
            }
            total += n;
        }
        assert_eq!(total, 200);
    }

    #[test]
    fn stale_queue_entries_of_reused_slots_are_skipped() {
        let mut t = SessionTable::<V4>::new(10, 10, 7, 0);
        let a = t.insert(sess(1, 1)).unwrap(); // queued at 100
        t.remove(a);
        let mut s = sess(2, 2);
        s.expires = 300;
        let b = t.insert(s).unwrap();
        assert_eq!(a, b);
        let mut out = [0u32; 4];
        assert_eq!(t.due(299, usize::MAX, &mut out), 0, "the old entry at 100 must not reap the new session");
        assert_eq!(t.due(300, usize::MAX, &mut out), 1);
    }

    #[test]
    fn an_ipv4_session_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Session<[u8; 4]>>(), 64);
    }
}
