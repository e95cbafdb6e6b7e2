//! Counters: per-core, plain integers (one writer per core, no atomics on the
//! packet path). The control plane sums cores when it reports.

/// Why a frame was dropped. Every drop on the packet path names one of these,
/// and each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Drop {
    /// IP header malformed or truncated.
    L3Malformed,
    /// TCP/UDP/ICMP header malformed or truncated.
    L4Malformed,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// TCP/UDP/ICMP checksum wrong.
    BadL4Checksum,
    /// An IP fragment for a service (no reassembly, as documented).
    Fragment,
    /// TTL / hop limit would reach zero.
    TtlExceeded,
    /// A TCP segment other than a SYN with no session.
    TcpNoSession,
    /// A reply to a local address with no session.
    NoSession,
    /// The scheduler found no available real server.
    NoDest,
    /// The session table is full: new flows refused, established untouched.
    SessionTableFull,
    /// The reply tuple a new session needs is taken by another session.
    TupleConflict,
    /// A FULLNAT service has no local address.
    NoLocalAddr,
    /// Every local port of the service's local addresses is in use.
    NoLocalPort,
    /// No route to the real server or the client.
    NoRoute,
    /// The next hop's MAC is not resolved yet (resolution was requested).
    NeighUnresolved,
    /// The session's real server was removed (IPVS expire_nodest_conn).
    DestRemoved,
    /// DR needs the real server on-link; the route goes via a gateway.
    DrNotOnLink,
    /// TUN/ICMP needs a source address on the egress interface.
    NoSourceAddr,
    /// Too big after encapsulation and DF clear (no fragmentation here).
    TooBigNoDf,
    /// Not enough headroom to grow the frame.
    NoHeadroom,
    /// A frame bigger than its buffer after rewriting (cannot happen with a
    /// sane UMEM frame size).
    NoTailroom,
}

impl Drop {
    pub const ALL: [Drop; 21] = [
        Drop::L3Malformed,
        Drop::L4Malformed,
        Drop::BadIpChecksum,
        Drop::BadL4Checksum,
        Drop::Fragment,
        Drop::TtlExceeded,
        Drop::TcpNoSession,
        Drop::NoSession,
        Drop::NoDest,
        Drop::SessionTableFull,
        Drop::TupleConflict,
        Drop::NoLocalAddr,
        Drop::NoLocalPort,
        Drop::NoRoute,
        Drop::NeighUnresolved,
        Drop::DestRemoved,
        Drop::DrNotOnLink,
        Drop::NoSourceAddr,
        Drop::TooBigNoDf,
        Drop::NoHeadroom,
        Drop::NoTailroom,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// Counter name (stable: shown by `xdpvsadm` and used in JSON).
    pub fn name(self) -> &'static str {
        match self {
            Drop::L3Malformed => "l3_malformed",
            Drop::L4Malformed => "l4_malformed",
            Drop::BadIpChecksum => "bad_ip_checksum",
            Drop::BadL4Checksum => "bad_l4_checksum",
            Drop::Fragment => "fragment",
            Drop::TtlExceeded => "ttl_exceeded",
            Drop::TcpNoSession => "tcp_no_session",
            Drop::NoSession => "no_session",
            Drop::NoDest => "no_dest",
            Drop::SessionTableFull => "session_table_full",
            Drop::TupleConflict => "tuple_conflict",
            Drop::NoLocalAddr => "no_local_addr",
            Drop::NoLocalPort => "no_local_port",
            Drop::NoRoute => "no_route",
            Drop::NeighUnresolved => "neigh_unresolved",
            Drop::DestRemoved => "dest_removed",
            Drop::DrNotOnLink => "dr_not_on_link",
            Drop::NoSourceAddr => "no_source_addr",
            Drop::TooBigNoDf => "too_big_no_df",
            Drop::NoHeadroom => "no_headroom",
            Drop::NoTailroom => "no_tailroom",
        }
    }
}

/// Traffic counters of a service or a real server (IPVS's ip_vs_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Counters {
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

    pub fn add(&mut self, o: &Counters) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
    }
}

/// One core's global counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    pub rx: u64,
    pub tx: u64,
    pub pass: u64,
    pub handoff: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub icmp_forwarded: u64,
    pub icmp_generated: u64,
    pub drops: [u64; Drop::COUNT],
}

impl CoreStats {
    #[inline]
    pub fn drop(&mut self, d: Drop) {
        self.drops[d as usize] += 1;
    }

    pub fn dropped(&self, d: Drop) -> u64 {
        self.drops[d as usize]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        for (i, d) in Drop::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
        let names: std::collections::HashSet<_> = Drop::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), Drop::COUNT);
    }
}
