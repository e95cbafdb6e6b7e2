//! IPVS's connection states and their timeouts: the vocabulary the engine,
//! the listings (`-L -c`, `--timeout`) and the sync protocol share. The
//! transition tables live with the engine (`lb::tcp_state`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

impl TcpState {
    pub const COUNT: usize = 11;
    const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    pub fn from_u8(v: u8) -> TcpState {
        Self::ALL.get(usize::from(v)).copied().unwrap_or(TcpState::Close)
    }

    /// As `ipvsadm -L -c` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }
}

/// Timeouts in seconds (IPVS defaults; `--set` changes three of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: [u32; TcpState::COUNT],
    pub udp: u32,
}

impl Timeouts {
    /// Largest accepted timeout (ipvsadm takes up to INT_MAX/HZ; a day is
    /// plenty and keeps tick arithmetic far from overflow).
    pub const MAX_SECS: u32 = 31 * 24 * 3600;

    pub fn tcp(&self, s: TcpState) -> u32 {
        self.tcp[s as usize]
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        let mut tcp = [0u32; TcpState::COUNT];
        tcp[TcpState::None as usize] = 2;
        tcp[TcpState::Established as usize] = 15 * 60;
        tcp[TcpState::SynSent as usize] = 2 * 60;
        tcp[TcpState::SynRecv as usize] = 60;
        tcp[TcpState::FinWait as usize] = 2 * 60;
        tcp[TcpState::TimeWait as usize] = 2 * 60;
        tcp[TcpState::Close as usize] = 10;
        tcp[TcpState::CloseWait as usize] = 60;
        tcp[TcpState::LastAck as usize] = 30;
        tcp[TcpState::Listen as usize] = 2 * 60;
        tcp[TcpState::SynAck as usize] = 120;
        Self { tcp, udp: 300 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_timeouts_match_ipvs() {
        use TcpState::*;
        let t = Timeouts::default();
        let secs: Vec<u32> = [Established, SynSent, SynRecv, FinWait, TimeWait, Close, CloseWait, LastAck]
            .iter()
            .map(|&s| t.tcp(s))
            .collect();
        assert_eq!(secs, vec![900, 120, 60, 120, 120, 10, 60, 30]);
        assert_eq!(t.udp, 300);
    }
}
