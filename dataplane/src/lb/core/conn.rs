//! The connection lifecycle (IPVS's `ip_vs_conn.c`): scheduling with
//! persistence templates, a new session and its bookkeeping (ActiveConn,
//! InActConn, thresholds), the TCP state step and timeout, counters, a
//! connection on the tuple of an ended one, expiry and reaping.

use super::pipeline::L4;
use super::{per_core, State, SvcCandidates, SvcRt};
use crate::lb::family::{Family, L3};
use crate::lb::sched::{Flow, Scheduler};
use crate::lb::session::{flag, Link, Refused, Reveal, Session, Tuple, NIL, TEMPLATE_PROTO};
use crate::lb::snapshot::Snapshot;
use crate::lb::stats::CoreStats;
use crate::lb::stats::DropReason;
use crate::lb::tcp_state::{next_state, Dir, TcpState};
use crate::lb::TICKS_PER_SEC;
use crate::wire::proto;
use crate::wire::tcp::flags as tcpf;
use std::net::IpAddr;
use xdpvs_api::config::{Fwd, SchedKind, Service, ServiceKey, ServiceSpec};

/// Which gauge of `CoreStats::by_state` a session counts in.
pub(super) fn state_slot<A>(s: &Session<A>) -> usize {
    use xdpvs_api::counters::SessionState;
    if s.has(flag::TEMPLATE) {
        SessionState::Template as usize
    } else if s.proto == proto::TCP {
        usize::from(s.state).min(SessionState::SynAck as usize)
    } else {
        SessionState::Udp as usize
    }
}

/// The tuple of a persistence template (IPVS `ip_vs_sched_persist`):
/// `<client & netmask, 0, VIP or fwmark, vport or 0>`.
pub(super) fn template_tuple<F: Family>(svc: &Service, cip: F::Addr, vip: F::Addr, proto_nr: u8) -> Tuple<F::Addr> {
    let src = F::mask(cip, svc.spec.netmask);
    match svc.spec.key {
        ServiceKey::Fwmark { mark, .. } => {
            Tuple { src, dst: F::mark_addr(mark), sport: 0, dport: 0, proto: TEMPLATE_PROTO }
        }
        ServiceKey::Addr(m) => Tuple { src, dst: vip, sport: 0, dport: m.port, proto: TEMPLATE_PROTO | proto_nr },
    }
}

/// How long a session of protocol `proto_nr` lives past a packet that left
/// it in TCP state `state` (UDP: its own timeout), in ticks.
#[inline]
pub(super) fn timeout(cfg: &Snapshot, proto_nr: u8, state: TcpState) -> u32 {
    let secs = if proto_nr == proto::TCP { cfg.timeouts.tcp(state) } else { cfg.timeouts.udp };
    secs * TICKS_PER_SEC
}

/// What a session's packets are counted against: its real server (while
/// that is still the server it was made for) and its service.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tally {
    dest: u32,
    dest_serial: u32,
    svc: u16,
}

impl Tally {
    #[inline]
    pub(super) fn of<A>(s: &Session<A>) -> Self {
        Self { dest: s.dest, dest_serial: s.dest_serial, svc: s.svc }
    }
}

impl State {
    /// A client's SYN on the tuple of a connection that has ended (IPVS's
    /// `conn_reuse_mode` 1 and 2: TIME_WAIT, CLOSE, or FIN_WAIT when replies
    /// are not seen, as in DR/TUN), or of one whose real server is quiesced
    /// (`expire_nodest_conn`): a new connection reusing the client's port,
    /// scheduled afresh rather than pinned to the old server. Connections a
    /// persistence template controls keep it (the template decides).
    pub(super) fn new_conn_on_old<F: Family>(&mut self, cfg: &Snapshot, i: u32, flags: u8) -> bool {
        if flags & (tcpf::SYN | tcpf::ACK) != tcpf::SYN {
            return false;
        }
        let s = F::table(&mut self.tables).get(i);
        if s.has(flag::TEMPLATE) || s.link.template().is_some() {
            return false;
        }
        let ended = match TcpState::from_u8(s.state) {
            TcpState::TimeWait | TcpState::Close => true,
            TcpState::FinWait => s.has(flag::NOOUTPUT),
            _ => false,
        };
        let quiesced = cfg.settings.expire_nodest_conn
            && cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial && d.spec.weight == 0);
        ended || quiesced
    }

    /// A session whose real server is gone ends here (expire_nodest_conn).
    pub(super) fn check_dest<F: Family>(&mut self, cfg: &Snapshot, i: u32) -> Result<(), DropReason> {
        let s = F::table(&mut self.tables).get(i);
        if cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial) || !cfg.settings.expire_nodest_conn {
            return Ok(());
        }
        self.expire::<F>(cfg, i);
        Err(DropReason::DestRemoved)
    }

    /// One TCP state step (and the ActiveConn/InActConn moves IPVS makes),
    /// then the new timeout. Returns the state before the step.
    pub(super) fn step<F: Family>(&mut self, cfg: &Snapshot, i: u32, dir: Dir, tcp_flags: u8) -> u8 {
        let s = F::table(&mut self.tables).get_mut(i);
        let before = s.state;
        let state = if s.proto == proto::TCP {
            let dir = if s.has(flag::NOOUTPUT) {
                if dir == Dir::Output {
                    s.flags &= !flag::NOOUTPUT;
                    Dir::Output
                } else {
                    Dir::InputOnly
                }
            } else {
                dir
            };
            let old = TcpState::from_u8(s.state);
            let new = next_state(old, dir, tcp_flags);
            if new != old {
                s.state = new as u8;
                gauge(&mut self.stats, &mut self.svc_rt, s.svc, old as usize, false);
                gauge(&mut self.stats, &mut self.svc_rt, s.svc, new as usize, true);
                let live = cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial);
                let rt = self.dest_rt.get_mut(s.dest as usize).filter(|_| live);
                if !s.has(flag::INACTIVE) && new != TcpState::Established {
                    s.flags |= flag::INACTIVE;
                    if let Some(rt) = rt {
                        rt.active = rt.active.saturating_sub(1);
                        rt.inactive += 1;
                    }
                } else if s.has(flag::INACTIVE) && new == TcpState::Established {
                    s.flags &= !flag::INACTIVE;
                    if let Some(rt) = rt {
                        rt.inactive = rt.inactive.saturating_sub(1);
                        rt.active += 1;
                    }
                }
            }
            new
        } else {
            TcpState::None
        };
        s.expires = self.now + timeout(cfg, s.proto, state);
        before
    }

    pub(super) fn count(&mut self, cfg: &Snapshot, s: Tally, bytes: usize, inbound: bool) {
        if cfg.dest(s.dest).is_some_and(|d| d.serial == s.dest_serial) {
            if let Some(rt) = self.dest_rt.get_mut(s.dest as usize) {
                if inbound {
                    rt.stats.count_in(bytes);
                } else {
                    rt.stats.count_out(bytes);
                }
            }
        }
        if let Some(Some(rt)) = self.svc_rt.get_mut(usize::from(s.svc)) {
            if inbound {
                rt.stats.count_in(bytes);
            } else {
                rt.stats.count_out(bytes);
            }
        }
    }

    pub(super) fn schedule(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        svc: &Service,
        flow: &Flow,
    ) -> Result<u32, DropReason> {
        let rt = self.svc_rt.get_mut(svc_slot as usize).and_then(Option::as_mut).ok_or(DropReason::NoDest)?;
        let c = SvcCandidates { slots: &svc.dests, cfg, rt: &self.dest_rt };
        let pos = rt.sched.schedule(&c, flow).ok_or(DropReason::NoDest)?;
        Ok(svc.dests[pos])
    }

    /// Persistence (IPVS `ip_vs_sched_persist`): reuse the client's template
    /// while its server is usable, else schedule and make a new template.
    /// Returns the server and the template slot.
    pub(super) fn persist<F: Family>(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        svc: &Service,
        ip: &L3<F::Addr>,
        flow: &Flow,
        timeout: u32,
    ) -> Result<(u32, u32), DropReason> {
        let now = self.now;
        let ticks = timeout * TICKS_PER_SEC;
        let key = template_tuple::<F>(svc, ip.src, ip.dst, ip.proto);
        let table = F::table(&mut self.tables);
        if let Some((ti, _)) = table.lookup(&key) {
            let t = *table.get(ti);
            let usable = t.expires > now
                && cfg.dest(t.dest).is_some_and(|d| {
                    d.serial == t.dest_serial && !(cfg.settings.expire_quiescent_template && d.spec.weight == 0)
                });
            if usable {
                return Ok((t.dest, ti));
            }
            if t.controlled == 0 {
                self.expire::<F>(cfg, ti);
            } else {
                F::table(&mut self.tables).unhash_template(ti);
            }
        }
        let dest = self.schedule(cfg, svc_slot, svc, flow)?;
        let d = cfg.dest(dest).ok_or(DropReason::NoDest)?;
        let t = Session {
            cip: key.src,
            vip: key.dst,
            rip: F::from_ip(d.spec.addr).unwrap_or_default(),
            lip: key.src,
            cport: 0,
            vport: key.dport,
            rport: d.spec.port,
            lport: 0,
            proto: key.proto,
            flags: flag::TEMPLATE,
            fwd: d.spec.fwd,
            expires: now + ticks,
            link: Link::timeout(ticks),
            controlled: 0,
            dest,
            dest_serial: d.serial,
            svc: svc_slot as u16,
            ..Session::default()
        };
        let ti = F::table(&mut self.tables).insert(t).map_err(|_| DropReason::SessionTableFull)?;
        self.gauge(t.svc, state_slot(&t), true);
        if let Some(rt) = self.dest_rt.get_mut(dest as usize) {
            rt.persist += 1;
        }
        Ok((dest, ti))
    }

    /// A new connection: schedule (with persistence), take a local port
    /// (FULLNAT), resolve next hops, store, and bind to the real server.
    pub(super) fn new_session<F: Family>(
        &mut self,
        cfg: &Snapshot,
        svc_slot: u32,
        ip: &L3<F::Addr>,
        l4: &L4,
    ) -> Result<u32, DropReason> {
        let svc = cfg.service(svc_slot).ok_or(DropReason::NoDest)?;
        let midflow = ip.proto == proto::TCP && !schedulable(cfg, l4.flags);
        if midflow && !(shared_table(svc.spec.sched) && l4.flags & tcpf::RST == 0) {
            return Err(DropReason::TcpNoSession);
        }
        let flow =
            Flow { src: F::to_ip(ip.src), sport: l4.sport, dst: F::to_ip(ip.dst), dport: l4.dport, now: self.now };
        let (dest, link) = match svc.spec.persistent {
            Some(timeout) => {
                let (dest, tmpl) = self.persist::<F>(cfg, svc_slot, svc, ip, &flow, timeout)?;
                (dest, Link::to_template(tmpl))
            }
            None => (self.schedule(cfg, svc_slot, svc, &flow)?, Link::NONE),
        };
        let d = cfg.dest(dest).ok_or(DropReason::NoDest)?;
        let fwd = d.spec.fwd;
        if midflow {
            if fwd == Fwd::FullNat {
                return Err(DropReason::TcpMidflowFullnat);
            }
            self.stats.midflow += 1;
        }
        let rip = F::from_ip(d.spec.addr).ok_or(DropReason::NoDest)?;
        let rport = if fwd.two_way() && d.spec.port != 0 { d.spec.port } else { l4.dport };
        let (nh_rs, nh_client) = self.new_hops(cfg, dest, d.spec.addr, fwd, flow.src)?;
        let (lip, lport, laddr_serial) = if fwd == Fwd::FullNat {
            self.take_lport::<F>(cfg, svc_slot, svc, (rip, rport, nh_rs))?
        } else {
            (ip.src, l4.sport, 0)
        };
        // A flow picked up mid-connection is established (IPVS's sloppy
        // input-only table would call it CLOSE and forget it in 10 s).
        let start = if midflow { TcpState::Established } else { TcpState::None };
        let one_packet = svc.spec.ops && ip.proto == proto::UDP;
        let mut reveal = reveal_of(&svc.spec, fwd, ip.proto);
        // SYN proxy: the splice the cookie ACK being scheduled carries.
        if let Some(sp) = self.splice_next.take().filter(|_| fwd.two_way()) {
            reveal.get_or_insert_with(Reveal::default).splice = sp;
        }
        let s = Session {
            cip: ip.src,
            vip: ip.dst,
            rip,
            lip,
            cport: l4.sport,
            vport: l4.dport,
            rport,
            lport,
            proto: ip.proto,
            state: start as u8,
            flags: if midflow { 0 } else { flag::INACTIVE }
                | if fwd.two_way() { flag::HASHED_OUT } else { flag::NOOUTPUT }
                | if one_packet { flag::ONE_PACKET } else { 0 }
                | if reveal.is_some() { flag::REVEAL } else { 0 },
            fwd,
            expires: self.now + cfg.timeouts.tcp(start) * TICKS_PER_SEC,
            link,
            dest,
            dest_serial: d.serial,
            nh_rs,
            nh_client,
            laddr_serial,
            svc: svc_slot as u16,
            ..Session::default()
        };
        let i = self.store::<F>(cfg, s, reveal.unwrap_or_default())?;
        if ip.proto == proto::TCP && !midflow {
            F::table(&mut self.tables).note_half_open(i);
        }
        self.bind::<F>(&s, d.spec.u_threshold);
        Ok(i)
    }

    /// A new session's next hops toward its real server and its client. An
    /// unresolved neighbour does not stop the session (IPVS lets the kernel
    /// queue the packet meanwhile): the session keeps NIL and the packet
    /// parks until the neighbour is known.
    fn new_hops(
        &mut self,
        cfg: &Snapshot,
        dest: u32,
        rip: IpAddr,
        fwd: Fwd,
        client: IpAddr,
    ) -> Result<(u32, u32), DropReason> {
        let nh_rs = match self.dest_rt.get(dest as usize).and_then(|r| r.nh) {
            Some(nh) => nh,
            None => match self.next_hop(cfg, rip, fwd == Fwd::Dr) {
                Ok(nh) => {
                    if let Some(rt) = self.dest_rt.get_mut(dest as usize) {
                        rt.nh = Some(nh);
                    }
                    nh
                }
                Err(DropReason::NeighUnresolved) => NIL,
                Err(e) => return Err(e),
            },
        };
        let nh_client = match self.next_hop(cfg, client, false) {
            Ok(nh) => nh,
            Err(DropReason::NeighUnresolved) => NIL,
            Err(e) if fwd.two_way() => return Err(e),
            Err(_) => NIL,
        };
        Ok((nh_rs, nh_client))
    }

    /// A session of state slot `slot` (of service `svc`) came or went: the
    /// core's gauges by state, and its service's half-open count.
    pub(super) fn gauge(&mut self, svc: u16, slot: usize, came: bool) {
        gauge(&mut self.stats, &mut self.svc_rt, svc, slot, came);
    }

    /// Half-open TCP sessions on this core (no handshake yet).
    fn half_open(&self) -> u64 {
        self.stats.by_state[TcpState::None as usize] + self.stats.by_state[TcpState::SynRecv as usize]
    }

    /// Stores a new session; a full table, or one past `max_half_open`,
    /// first gives up its oldest half-open session (never an established
    /// one); a service past `max_half_open_per_service` takes no new SYN; a
    /// refused session gives its local port back.
    fn store<F: Family>(&mut self, cfg: &Snapshot, s: Session<F::Addr>, r: Reveal) -> Result<u32, DropReason> {
        let syn = s.proto == proto::TCP && s.state == TcpState::None as u8;
        if syn {
            let svc_half = self.svc_rt.get(usize::from(s.svc)).and_then(Option::as_ref).map_or(0, |rt| rt.half_open);
            if svc_half >= self.params.max_half_open_per_service {
                if s.fwd == Fwd::FullNat {
                    self.release_lport::<F>(cfg, s.lip, s.lport, s.laddr_serial);
                }
                return Err(DropReason::HalfOpenServiceLimit);
            }
        }
        let over = syn && self.half_open() >= u64::from(self.params.max_half_open);
        let table = F::table(&mut self.tables);
        if table.len() >= table.capacity() || over {
            if let Some(victim) = table.oldest_half_open() {
                self.expire::<F>(cfg, victim);
                self.stats.evicted_half_open += 1;
            }
        }
        F::table(&mut self.tables).insert_revealing(s, r).map_err(|r| {
            if s.fwd == Fwd::FullNat {
                self.release_lport::<F>(cfg, s.lip, s.lport, s.laddr_serial);
            }
            match r {
                Refused::Full => DropReason::SessionTableFull,
                Refused::Conflict => DropReason::TupleConflict,
            }
        })
    }

    /// A stored session's bookkeeping: its template controls one more
    /// connection, its server and service count it (InActConn until
    /// ESTABLISHED, as IPVS counts), and the upper threshold may now be hit.
    fn bind<F: Family>(&mut self, s: &Session<F::Addr>, u_threshold: u32) {
        let now = self.now;
        if let Some(tmpl) = s.link.template() {
            let t = F::table(&mut self.tables).get_mut(tmpl);
            t.controlled += 1;
            t.expires = now + t.link.ticks();
        }
        let u = per_core(u_threshold, self.params.ncores);
        if let Some(rt) = self.dest_rt.get_mut(s.dest as usize) {
            if s.has(flag::INACTIVE) {
                rt.inactive += 1;
            } else {
                rt.active += 1;
            }
            rt.stats.conns += 1;
            if u != 0 && rt.active + rt.inactive >= u {
                rt.overloaded = true;
            }
        }
        if let Some(Some(rt)) = self.svc_rt.get_mut(usize::from(s.svc)) {
            rt.stats.conns += 1;
        }
        self.stats.sessions_created += 1;
        self.gauge(s.svc, state_slot(s), true);
    }

    /// Ends a session (or re-arms a template that still controls connections).
    pub(super) fn expire<F: Family>(&mut self, cfg: &Snapshot, i: u32) {
        let now = self.now;
        let table = F::table(&mut self.tables);
        let s = *table.get(i);
        let dest = cfg.dest(s.dest).filter(|d| d.serial == s.dest_serial);
        let rt = self.dest_rt.get_mut(s.dest as usize).filter(|_| dest.is_some());
        if s.has(flag::TEMPLATE) {
            if s.controlled > 0 {
                table.rearm(i, now + s.link.ticks());
                return;
            }
            if let Some(rt) = rt {
                rt.persist = rt.persist.saturating_sub(1);
            }
            table.remove(i);
            self.stats.sessions_expired += 1;
            self.gauge(s.svc, state_slot(&s), false);
            return;
        }
        if let (Some(rt), Some(d)) = (rt, dest) {
            if s.has(flag::INACTIVE) {
                rt.inactive = rt.inactive.saturating_sub(1);
            } else {
                rt.active = rt.active.saturating_sub(1);
            }
            // IPVS's overload release: below the lower threshold, or below
            // 3/4 of the upper one when no lower threshold is set.
            let (u, l) =
                (per_core(d.spec.u_threshold, self.params.ncores), per_core(d.spec.l_threshold, self.params.ncores));
            let total = rt.active + rt.inactive;
            if (l != 0 && total < l) || (l == 0 && (u == 0 || total * 4 < u * 3)) {
                rt.overloaded = false;
            }
        }
        if let Some(tmpl) = s.link.template() {
            let t = table.get_mut(tmpl);
            t.controlled = t.controlled.saturating_sub(1);
        }
        table.remove(i);
        if s.fwd == Fwd::FullNat {
            self.release_lport::<F>(cfg, s.lip, s.lport, s.laddr_serial);
        }
        self.stats.sessions_expired += 1;
        self.gauge(s.svc, state_slot(&s), false);
    }

    pub(super) fn reap<F: Family>(&mut self, cfg: &Snapshot) -> usize {
        let mut buf = [0u32; 64];
        let mut total = 0;
        let mut budget = self.params.reap_budget;
        while budget > 0 {
            let n = F::table(&mut self.tables).due(self.now, budget, &mut buf);
            // Bring the index entries of the whole batch in first: their
            // misses overlap instead of queueing one removal after another.
            let table = F::table_ref(&self.tables);
            std::hint::black_box(buf[..n].iter().fold(0, |acc, &i| acc ^ table.warm_slot(i)));
            for &i in &buf[..n] {
                if F::table(&mut self.tables).get(i).has(flag::LIVE) {
                    self.expire::<F>(cfg, i);
                }
            }
            total += n;
            if n < buf.len() {
                break;
            }
            budget = budget.saturating_sub(n);
        }
        total
    }
}

/// [`State::gauge`] on the fields it touches (callable while a session of
/// the tables is borrowed).
pub(super) fn gauge(stats: &mut CoreStats, svc_rt: &mut [Option<SvcRt>], svc: u16, slot: usize, came: bool) {
    stats.held(slot, came);
    if slot == TcpState::None as usize || slot == TcpState::SynRecv as usize {
        if let Some(Some(rt)) = svc_rt.get_mut(usize::from(svc)) {
            rt.half_open = if came { rt.half_open + 1 } else { rt.half_open.saturating_sub(1) };
        }
    }
}

/// Whether a TCP segment without a session may start one: a SYN (any
/// segment but a RST with `sloppy_tcp`).
/// Schedulers whose choice is a table that every director builds alike
/// from the same servers: a flow moved here mid-connection (ECMP) reaches
/// the server its first packets reached elsewhere.
fn shared_table(s: SchedKind) -> bool {
    matches!(s, SchedKind::Mh | SchedKind::Sh | SchedKind::Dh)
}

fn schedulable(cfg: &Snapshot, tcp_flags: u8) -> bool {
    let f = tcp_flags & (tcpf::SYN | tcpf::ACK | tcpf::RST | tcpf::FIN);
    if cfg.settings.sloppy_tcp {
        f & tcpf::RST == 0
    } else {
        f == tcpf::SYN
    }
}

/// What a new connection of `spec` owes its FULLNAT real server of the
/// client's address (`None`: nothing). A TCP connection arms at its SYN.
fn reveal_of(spec: &ServiceSpec, fwd: Fwd, proto_nr: u8) -> Option<Reveal> {
    if fwd != Fwd::FullNat || spec.client_address_option().is_none() {
        return None;
    }
    let tcp = proto_nr == proto::TCP;
    Some(Reveal {
        pp: spec.proxy_protocol,
        toa: tcp && spec.toa,
        udp_pending: !tcp && spec.proxy_protocol.is_some(),
        ..Reveal::default()
    })
}
