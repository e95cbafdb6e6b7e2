//! ICMP errors about tracked flows: an error quoting a flow goes to that
//! flow's peer, with the quoted header rewritten to match what the peer
//! sent; everything else ICMP (echo to the VIP, errors about unknown flows)
//! is the kernel's.

use super::conn::Tally;
use super::pipeline::l4_checksum_ok;
use super::xmit::{fill_icmp_checksum, rewrite};
use super::State;
use crate::lb::family::{quoted_flow, Family, Quoted, L3};
use crate::lb::frame::Frame;
use crate::lb::session::{Session, Side};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::DropReason;
use crate::lb::Verdict;
use crate::wire::icmp::{IcmpPacket, HEADER_LEN as ICMP_HDR};
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
        let Some(Quoted { inner, tuple: t }) = quoted_flow::<F>(msg.payload()) else {
            return self.pass();
        };
        let Some((i, side)) = F::table(&mut self.tables).lookup(&t) else {
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
        let s = *F::table(&mut self.tables).get(i);
        self.stats.icmp_forwarded += 1;
        match side {
            Side::In => self.icmp_to_server::<F>(cfg, frame, l3, ip, &inner, &s),
            Side::Out => self.icmp_to_client::<F>(cfg, frame, l3, ip, &inner, &s),
        }
    }

    /// From the client's side about what the real server sent: to the real
    /// server, as its mode forwards (the quoted packet rewritten to what the
    /// server sent).
    fn icmp_to_server<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        inner: &L3<F::Addr>,
        s: &Session<F::Addr>,
    ) -> Verdict {
        match s.fwd {
            Fwd::Dr => {}
            Fwd::Tun => {
                if let Err(v) = self.encap::<F>(cfg, frame, l3, ip, s) {
                    return v;
                }
            }
            Fwd::Nat | Fwd::FullNat => {
                let b = &mut frame.data_mut()[l3..l3 + ip.len];
                if !F::decrement_ttl(b) {
                    return self.drop(DropReason::TtlExceeded);
                }
                let local = (s.fwd == Fwd::FullNat).then_some((s.lip, s.lport));
                let quoted = &mut b[ip.l4_off + ICMP_HDR..];
                rewrite::<F>(quoted, inner.l4_off, inner.proto, Some((s.rip, s.rport)), local);
                F::set_dst(b, s.rip);
                if s.fwd == Fwd::FullNat {
                    F::set_src(b, s.lip);
                }
                fill_icmp_checksum::<F>(b, ip.l4_off, ip.len);
            }
        }
        self.count(cfg, Tally::of(s), ip.len, true);
        self.l2(cfg, frame, s.nh_rs)
    }

    /// From the real server's side about what the director sent it: to the
    /// client, from the VIP (the quoted packet rewritten to what the client
    /// sent).
    fn icmp_to_client<F: Family>(
        &mut self,
        cfg: &Snapshot,
        frame: &mut Frame<'_>,
        l3: usize,
        ip: &L3<F::Addr>,
        inner: &L3<F::Addr>,
        s: &Session<F::Addr>,
    ) -> Verdict {
        let b = &mut frame.data_mut()[l3..l3 + ip.len];
        if !F::decrement_ttl(b) {
            return self.drop(DropReason::TtlExceeded);
        }
        let client = (s.fwd == Fwd::FullNat).then_some((s.cip, s.cport));
        let quoted = &mut b[ip.l4_off + ICMP_HDR..];
        rewrite::<F>(quoted, inner.l4_off, inner.proto, client, Some((s.vip, s.vport)));
        F::set_src(b, s.vip);
        if s.fwd == Fwd::FullNat {
            F::set_dst(b, s.cip);
        }
        fill_icmp_checksum::<F>(b, ip.l4_off, ip.len);
        self.count(cfg, Tally::of(s), ip.len, false);
        self.l2(cfg, frame, s.nh_client)
    }
}
