//! ICMP errors about tracked flows: an error quoting a flow goes to that
//! flow's peer, with the quoted header rewritten to match what the peer
//! sent; everything else ICMP (echo to the VIP, errors about unknown flows)
//! is the kernel's.

use super::pipeline::l4_checksum_ok;
use super::xmit::{fill_icmp_checksum, rewrite};
use super::State;
use crate::lb::family::{Family, L3};
use crate::lb::frame::Frame;
use crate::lb::session::{Side, Tuple};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::Verdict;
use crate::wire::icmp::{IcmpPacket, HEADER_LEN as ICMP_HDR};
use crate::wire::{be16, proto};
use xdpvs_api::config::Fwd;

impl State {
    /// ICMP: errors about tracked flows go to the flow's peer; the rest
    /// (echo to the VIP, errors about unknown flows) is the kernel's.
    pub(super) fn icmp<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
    ) -> Verdict {
        let (start, end) = (l3 + ip.l4_off, l3 + ip.len);
        let Ok(msg) = IcmpPacket::new_checked(&frame.data()[start..end]) else {
            return self.ours_or_pass(cfg, F::to_ip(ip.dst), DropReason::L4Malformed);
        };
        if !F::icmp_is_error(msg.msg_type()) || ip.fragmented {
            return self.pass();
        }
        let q = msg.payload();
        let Some(inner) = F::parse_quoted(q) else {
            return self.pass();
        };
        if (inner.proto != proto::TCP && inner.proto != proto::UDP) || q.len() < inner.l4_off + 4 {
            return self.pass();
        }
        let (isport, idport) = (be16(q, inner.l4_off), be16(q, inner.l4_off + 2));
        // The quoted packet travelled the other way: reversed, it is the
        // tuple of a packet in this error's direction.
        let t = Tuple { src: inner.dst, dst: inner.src, sport: idport, dport: isport, proto: inner.proto };
        let Some((i, side)) = F::table(&mut self.t).lookup(&t) else {
            return self.pass();
        };
        if cfg.settings.verify_l4_checksum && !l4_checksum_ok::<F>(&frame.data()[l3..], ip) {
            return self.drop(DropReason::BadL4Checksum);
        }
        if let Err(d) = self.check_dest::<F>(cfg, i) {
            return self.drop(d);
        }
        if let Err(d) = self.session_hop::<F>(cfg, i, side == Side::In) {
            return self.drop(d);
        }
        let s = *F::table(&mut self.t).get(i);
        let inner_at = ip.l4_off + ICMP_HDR;
        self.stats.icmp_forwarded += 1;
        match side {
            // From the client's side about what the real server sent: to the real server.
            Side::In => {
                match s.fwd {
                    Fwd::Dr => {}
                    Fwd::Tun => {
                        if let Err(v) = self.encap::<F>(cfg, frame, l3, ip, &s) {
                            return v;
                        }
                    }
                    Fwd::Nat | Fwd::FullNat => {
                        let b = &mut frame.data_mut()[l3..end];
                        if !F::decrement_ttl(b) {
                            return self.drop(DropReason::TtlExceeded);
                        }
                        let local = (s.fwd == Fwd::FullNat).then_some((s.lip, s.lport));
                        rewrite::<F>(&mut b[inner_at..], inner.l4_off, inner.proto, Some((s.rip, s.rport)), local);
                        F::set_dst(b, s.rip);
                        if s.fwd == Fwd::FullNat {
                            F::set_src(b, s.lip);
                        }
                        fill_icmp_checksum::<F>(b, ip.l4_off, ip.len);
                    }
                }
                self.count::<F>(cfg, &s, ip.len, true);
                self.l2(cfg, frame, s.nh_rs)
            }
            // From the real server's side about what we sent it: to the client.
            Side::Out => {
                let b = &mut frame.data_mut()[l3..end];
                if !F::decrement_ttl(b) {
                    return self.drop(DropReason::TtlExceeded);
                }
                let client = (s.fwd == Fwd::FullNat).then_some((s.cip, s.cport));
                rewrite::<F>(&mut b[inner_at..], inner.l4_off, inner.proto, client, Some((s.vip, s.vport)));
                F::set_src(b, s.vip);
                if s.fwd == Fwd::FullNat {
                    F::set_dst(b, s.cip);
                }
                fill_icmp_checksum::<F>(b, ip.l4_off, ip.len);
                self.count::<F>(cfg, &s, ip.len, false);
                self.l2(cfg, frame, s.nh_client)
            }
        }
    }
}
