//! The per-core counters and the drop reasons: one definition of each name
//! and of its place in a core's counter array (the shared-memory region's
//! per-core area), used by the workers that write them and by every reader.
//!
//! A core's array is `[Counter::ALL..., DropReason::ALL...]`: counter `c` at
//! `c.index()`, drop reason `d` at `d.index()` (after the counters). Adding a
//! name here changes the array for everyone; the region's ABI version covers
//! its length.

use serde::{Deserialize, Serialize};

/// Declares a fieldless enum with `ALL`, `COUNT` and a stable `name()`.
macro_rules! named {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// The stable name (shown by `xdpvsadm`, used in JSON and metrics).
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

named! {
    /// A core's own counters (not per service).
    Counter {
        /// Frames the engine looked at.
        Rx => "rx",
        /// Frames the engine sent on.
        Tx => "tx",
        IcmpForwarded => "icmp_forwarded",
        IcmpGenerated => "icmp_generated",
        /// Frames another core handed to this one.
        HandoffIn => "handoff_in",
        /// Frames this core handed to their owner.
        HandoffOut => "handoff_out",
        /// Frames received from the AF_XDP rings.
        IoRx => "io_rx",
        /// Frames put on the AF_XDP transmit rings.
        IoTx => "io_tx",
        /// Frames dropped because a transmit ring was full.
        TxRingFull => "tx_ring_full",
        /// Fill-ring refills that got fewer slots than asked.
        FillShort => "fill_short",
        SessionsV4 => "sessions_v4",
        SessionsV6 => "sessions_v6",
        /// The kernel's counters of the core's AF_XDP sockets
        /// (`XDP_STATISTICS`): frames lost before xdpvs saw them.
        XskRxDropped => "xsk_rx_dropped",
        XskRxRingFull => "xsk_rx_ring_full",
        XskFillRingEmpty => "xsk_fill_ring_empty",
        XskInvalidDescs => "xsk_invalid_descs",
        /// PROXY protocol headers put in front of a connection's (or a
        /// datagram flow's) first data, retransmissions included.
        ProxyInserted => "proxy_inserted",
        /// First segments shortened to make room for the PROXY header (the
        /// client sends the cut-off tail again).
        ProxyShortened => "proxy_shortened",
        /// TOA options added to a connection's first ACK.
        ToaAdded => "toa_added",
        /// First ACKs with no room for the TOA option (40 option bytes even
        /// without NOPs and timestamps): sent on without it.
        ToaNoRoom => "toa_no_room",
        /// Sync (master): records this core put on its ring to the sync thread.
        SyncQueued => "sync_queued",
        /// Sync (master): records lost to a full ring (never waited on).
        SyncRingFull => "sync_ring_full",
        /// Sync (backup): received records installed as new sessions, and
        /// records that updated one.
        SyncInstalled => "sync_installed",
        SyncUpdated => "sync_updated",
        /// Sync (backup): records refused: no such service, no such real
        /// server, table full, FULLNAT local port unusable.
        SyncNoService => "sync_no_service",
        SyncNoDest => "sync_no_dest",
        SyncTableFull => "sync_table_full",
        SyncLocalPort => "sync_local_port",
        /// TCP segments with no session, other than a SYN, that an mh, sh
        /// or dh service scheduled and made a session for (a flow the
        /// routers' ECMP moved here mid-connection, as Maglev does).
        TcpMidflow => "tcp_midflow",
        /// Half-open TCP sessions (a SYN, no handshake yet) evicted, the
        /// oldest first, to make room for a new flow in a full table
        /// (established sessions are never evicted).
        EvictedHalfOpen => "evicted_half_open",
        /// SYN proxy (`-j enable`): SYNs answered with a cookie (no session
        /// made), ACKs whose cookie checked (a connection opened to a real
        /// server), and server SYN-ACKs spliced onto the client's handshake.
        SynproxyCookies => "synproxy_cookies",
        SynproxyAccepted => "synproxy_accepted",
        SynproxySpliced => "synproxy_spliced",
        /// Fragments held for their train, and datagrams completed whose
        /// first fragment went on (each other fragment as it decided).
        FragHeld => "frag_held",
        FragReassembled => "frag_reassembled",
    }
}

named! {
    /// Why a frame was dropped. Every drop on the packet path names one of
    /// these, and each has its own counter.
    DropReason {
        /// IP header malformed or truncated.
        L3Malformed => "l3_malformed",
        /// TCP/UDP/ICMP header malformed or truncated.
        L4Malformed => "l4_malformed",
        /// IPv4 header checksum wrong.
        BadIpChecksum => "bad_ip_checksum",
        /// TCP/UDP/ICMP checksum wrong.
        BadL4Checksum => "bad_l4_checksum",
        /// A fragment of a datagram the balancer cannot forward in pieces:
        /// to a SYN-proxied service or one that hands its servers the
        /// client's address (both rewrite the stream), or to a local
        /// address with no session.
        Fragment => "fragment",
        /// TTL / hop limit would reach zero.
        TtlExceeded => "ttl_exceeded",
        /// A TCP segment other than a SYN with no session (for a service
        /// whose scheduler is not a table every director shares: only mh,
        /// sh and dh pick up a flow mid-connection), or an RST.
        TcpNoSession => "tcp_no_session",
        /// A TCP segment other than a SYN with no session, for an mh/sh/dh
        /// service whose server is FULLNAT: a new local port cannot carry on
        /// a connection the server knows by another (sync the sessions).
        TcpMidflowFullnat => "tcp_midflow_fullnat",
        /// A reply to a local address with no session.
        NoSession => "no_session",
        /// The scheduler found no available real server.
        NoDest => "no_dest",
        /// The session table is full: new flows refused, established untouched.
        SessionTableFull => "session_table_full",
        /// A SYN for a service with `max_half_open_per_service` half-open
        /// sessions on its core already (other services keep theirs).
        HalfOpenServiceLimit => "half_open_service_limit",
        /// The reply tuple a new session needs is taken by another session.
        TupleConflict => "tuple_conflict",
        /// A FULLNAT service has no local address.
        NoLocalAddr => "no_local_addr",
        /// Every local port of the service's local addresses is in use.
        NoLocalPort => "no_local_port",
        /// No route to the real server or the client.
        NoRoute => "no_route",
        /// The next hop's MAC is not resolved yet (resolution was requested).
        NeighUnresolved => "neigh_unresolved",
        /// The session's real server was removed (IPVS expire_nodest_conn).
        DestRemoved => "dest_removed",
        /// DR needs the real server on-link; the route goes via a gateway.
        DrNotOnLink => "dr_not_on_link",
        /// TUN/ICMP needs a source address on the egress interface.
        NoSourceAddr => "no_source_addr",
        /// Too big after encapsulation and DF clear (no fragmentation here).
        TooBigNoDf => "too_big_no_df",
        /// Too big for the egress link with DF set: "fragmentation needed" /
        /// "packet too big" went back to the sender.
        TooBig => "too_big",
        /// A new flow from a martian source (0/8, 127/8, multicast,
        /// broadcast, ::1, ::, ff00::/8).
        MartianSource => "martian_source",
        /// A new flow from an address of the balancer's own: a VIP, a local
        /// address, a real server, the director.
        SpoofedSource => "spoofed_source",
        /// A new flow from source port 0.
        ZeroSourcePort => "zero_source_port",
        /// Not enough headroom to grow the frame.
        NoHeadroom => "no_headroom",
        /// A frame bigger than its buffer after rewriting (cannot happen with
        /// a sane UMEM frame size).
        NoTailroom => "no_tailroom",
        /// Steered to xdpvs but not the balancer's (AF_XDP cannot hand a
        /// frame back to the kernel): the steering should not have sent it.
        NotOurs => "not_ours",
        /// Handed to its owning core, whose channel was full.
        HandoffFull => "handoff_full",
        /// A datagram (or a first segment with too little data to shorten)
        /// with no room for the PROXY header before the path's MTU.
        ProxyNoRoom => "proxy_no_room",
        /// SYN proxy: an ACK with no session whose cookie did not check (a
        /// RST went back to its source).
        SynproxyBadCookie => "synproxy_bad_cookie",
        /// SYN proxy: a client segment that waited for the real server's
        /// SYN-ACK longer than 500 ms (the server did not answer).
        SynproxyNoAnswer => "synproxy_no_answer",
        /// SYN proxy: a segment from the real server, other than its SYN-ACK
        /// or a RST, before the handshakes were spliced.
        SynproxyUnexpected => "synproxy_unexpected",
        /// Fragment trains dropped whole: fragments overlapping (a
        /// duplicate too, RFC 5722) or disagreeing on the datagram's end;
        /// more than 64 fragments; a datagram past 65,535 bytes; a fragment
        /// before the last not a multiple of 8 bytes, or a first fragment
        /// without its transport ports; no room (the oldest train gave
        /// way); not complete within 3 s. Each fragment counts.
        FragOverlap => "frag_overlap",
        FragTooMany => "frag_too_many",
        FragTooBig => "frag_too_big",
        FragMalformed => "frag_malformed",
        FragNoRoom => "frag_no_room",
        FragTimeout => "frag_timeout",
    }
}

impl Counter {
    /// Its place in a core's counter array.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl DropReason {
    /// Its place in a core's counter array (after the counters).
    pub const fn index(self) -> usize {
        Counter::COUNT + self as usize
    }
}

/// Traffic counters of a service or a real server (IPVS's `ip_vs_stats`);
/// the same five fields carry rates (per second) in the rate estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Stats {
    /// The field names, in [`Stats::fields`] order, as counts and as rates.
    pub const NAMES: [&'static str; 5] = ["conns", "inpkts", "outpkts", "inbytes", "outbytes"];
    pub const RATE_NAMES: [&'static str; 5] = ["cps", "inpps", "outpps", "inbps", "outbps"];

    #[inline]
    pub fn count_in(&mut self, bytes: usize) {
        self.inpkts += 1;
        self.inbytes += bytes as u64;
    }

    #[inline]
    pub fn count_out(&mut self, bytes: usize) {
        self.outpkts += 1;
        self.outbytes += bytes as u64;
    }

    pub fn fields(&self) -> [u64; 5] {
        [self.conns, self.inpkts, self.outpkts, self.inbytes, self.outbytes]
    }

    pub fn from_fields(f: [u64; 5]) -> Self {
        let [conns, inpkts, outpkts, inbytes, outbytes] = f;
        Self { conns, inpkts, outpkts, inbytes, outbytes }
    }

    /// Field by field, wrapping.
    pub fn add(&mut self, o: &Stats) {
        let mut f = self.fields();
        for (x, y) in f.iter_mut().zip(o.fields()) {
            *x = x.wrapping_add(y);
        }
        *self = Self::from_fields(f);
    }

    /// Field by field, never below zero.
    pub fn minus(&self, o: &Stats) -> Stats {
        let mut f = self.fields();
        for (x, y) in f.iter_mut().zip(o.fields()) {
            *x = x.saturating_sub(y);
        }
        Self::from_fields(f)
    }
}

named! {
    /// What a core's sessions are (gauges, after the drop reasons in the
    /// array): IPVS's TCP states as `-L -c` names them, UDP, and
    /// persistence templates.
    SessionState {
        None => "NONE",
        Established => "ESTABLISHED",
        SynSent => "SYN_SENT",
        SynRecv => "SYN_RECV",
        FinWait => "FIN_WAIT",
        TimeWait => "TIME_WAIT",
        Close => "CLOSE",
        CloseWait => "CLOSE_WAIT",
        LastAck => "LAST_ACK",
        Listen => "LISTEN",
        SynAck => "SYNACK",
        Udp => "UDP",
        Template => "TEMPLATE",
    }
}

impl SessionState {
    /// Its place in a core's array.
    pub const fn index(self) -> usize {
        Counter::COUNT + DropReason::COUNT + self as usize
    }
}

/// A fingerprint of the counter array's names in order (FNV-1a): the
/// region's header carries it, so a client built with another list refuses
/// the region instead of showing counters under the wrong names.
pub const FINGERPRINT: u64 = {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < ARRAY_LEN {
        let name = if i < Counter::COUNT {
            Counter::ALL[i].name()
        } else if i < Counter::COUNT + DropReason::COUNT {
            DropReason::ALL[i - Counter::COUNT].name()
        } else {
            SessionState::ALL[i - Counter::COUNT - DropReason::COUNT].name()
        };
        let b = name.as_bytes();
        let mut k = 0;
        while k < b.len() {
            h = (h ^ b[k] as u64).wrapping_mul(0x0100_0000_01b3);
            k += 1;
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
};

/// Length of a core's counter array.
pub const ARRAY_LEN: usize = Counter::COUNT + DropReason::COUNT + SessionState::COUNT;

/// A core's counters as an array indexed by [`Counter::index`] and
/// [`DropReason::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterArray(pub [u64; ARRAY_LEN]);

impl Default for CounterArray {
    fn default() -> Self {
        Self([0; ARRAY_LEN])
    }
}

impl CounterArray {
    pub fn get(&self, c: Counter) -> u64 {
        self.0[c.index()]
    }

    pub fn set(&mut self, c: Counter, v: u64) {
        self.0[c.index()] = v;
    }

    pub fn dropped(&self, d: DropReason) -> u64 {
        self.0[d.index()]
    }

    pub fn set_dropped(&mut self, d: DropReason, v: u64) {
        self.0[d.index()] = v;
    }

    pub fn sessions(&self, s: SessionState) -> u64 {
        self.0[s.index()]
    }

    pub fn set_sessions(&mut self, s: SessionState, v: u64) {
        self.0[s.index()] = v;
    }

    /// Every name with its value, counters first.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let counters = Counter::ALL.iter().map(|&c| (c.name(), self.get(c)));
        counters.chain(DropReason::ALL.iter().map(|&d| (d.name(), self.dropped(d))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_places_follow_the_lists() {
        let mut names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.extend(DropReason::ALL.iter().map(|d| d.name()));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a name is used twice");
        assert_eq!(DropReason::L3Malformed.index(), Counter::COUNT);
        assert_eq!(DropReason::ALL[DropReason::COUNT - 1].index(), ARRAY_LEN - SessionState::COUNT - 1);
        assert_eq!(SessionState::Template.index(), ARRAY_LEN - 1);
        assert_eq!(SessionState::SynAck as usize, 10, "TCP states keep IPVS's numbers");
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
