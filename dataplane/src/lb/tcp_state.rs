//! TCP connection states and timeouts as tables, as IPVS keeps them
//! (`ip_vs_proto_tcp.c`: `tcp_states[]`, `tcp_timeouts[]`).
//!
//! A session steps on every segment: the event is the first of RST, SYN, FIN,
//! ACK set in the flags (none: no change), looked up in the table for the
//! direction — INPUT (client→server), OUTPUT (server→client) or INPUT-ONLY
//! (DR/TUN, where replies bypass the balancer).

use crate::wire::tcp::flags;
pub use xdpvs_api::state::{TcpState, Timeouts};

/// Which table a segment steps through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Input = 0,
    Output = 1,
    InputOnly = 2,
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI, SynRecv as SR,
    SynSent as SS, TimeWait as TW,
};

/// `[dir][event][state] -> state`; events: syn, fin, ack, rst.
#[rustfmt::skip]
static TABLE: [[[TcpState; 11]; 4]; 3] = [
    // INPUT         NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
    [/* syn */      [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
     /* fin */      [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
     /* ack */      [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */      [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR]],
    // OUTPUT
    [/* syn */      [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
     /* fin */      [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
     /* ack */      [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
     /* rst */      [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL]],
    // INPUT-ONLY
    [/* syn */      [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
     /* fin */      [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
     /* ack */      [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
     /* rst */      [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL]],
];

/// The next state for a segment with `tcp_flags` in `dir`.
#[inline]
pub fn next_state(state: TcpState, dir: Dir, tcp_flags: u8) -> TcpState {
    let event = if tcp_flags & flags::RST != 0 {
        3
    } else if tcp_flags & flags::SYN != 0 {
        0
    } else if tcp_flags & flags::FIN != 0 {
        1
    } else if tcp_flags & flags::ACK != 0 {
        2
    } else {
        return state;
    };
    TABLE[dir as usize][event][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use flags::*;

    fn walk(start: TcpState, steps: &[(Dir, u8)]) -> Vec<TcpState> {
        let mut s = start;
        steps
            .iter()
            .map(|&(d, f)| {
                s = next_state(s, d, f);
                s
            })
            .collect()
    }

    #[test]
    fn nat_connection_walks_ipvs_states() {
        use Dir::*;
        // Client closes first.
        let got = walk(
            TcpState::None,
            &[
                (Input, SYN),
                (Output, SYN | ACK),
                (Input, ACK),
                (Input, ACK | PSH),
                (Output, ACK),
                (Input, FIN | ACK),
                (Output, ACK),
                (Output, FIN | ACK),
                (Input, ACK),
            ],
        );
        assert_eq!(got, vec![SR, SR, ES, ES, ES, CW, CW, TW, TW]);
        // Server closes first.
        let got = walk(ES, &[(Output, FIN | ACK), (Input, ACK), (Input, FIN | ACK), (Output, ACK)]);
        assert_eq!(got, vec![FW, FW, TW, TW]);
    }

    #[test]
    fn dr_connection_walks_input_only() {
        use Dir::*;
        let got = walk(
            TcpState::None,
            &[(InputOnly, SYN), (InputOnly, ACK), (InputOnly, ACK | PSH), (InputOnly, FIN | ACK), (InputOnly, ACK)],
        );
        assert_eq!(got, vec![SR, ES, ES, FW, FW]);
    }

    #[test]
    fn resets() {
        assert_eq!(next_state(ES, Dir::Input, RST), CL);
        assert_eq!(next_state(ES, Dir::Output, RST | ACK), CL);
        assert_eq!(next_state(SR, Dir::Input, RST), SR);
        assert_eq!(next_state(SR, Dir::InputOnly, RST), SR);
        assert_eq!(next_state(TW, Dir::Output, RST), TW);
        // No flag we track: no change.
        assert_eq!(next_state(ES, Dir::Input, PSH), ES);
    }
}
