//! Connection synchronisation, the engine's side (IPVS's
//! `ip_vs_sync_conn` and `ip_vs_proc_conn`):
//! - as a master, after a packet moved a session, decide as IPVS does
//!   whether the backups hear of it now, and queue its record (and its
//!   persistence template's after it) for the worker to hand to the sync
//!   thread; a full queue is counted, never waited on;
//! - as a backup, install or update a received record in this core's table
//!   so that a mid-flow packet finds its session after a failover;
//! - walk the whole table for a peer's bulk request.

use super::conn::{gauge, state_slot, template_tuple};
use super::{Core, State};
use crate::lb::family::{Family, V4, V6};
use crate::lb::session::{flag, Link, Reveal, Session, Splice, Tuple, NIL, TEMPLATE_PROTO};
use crate::lb::snapshot::Snapshot;
use crate::lb::tcp_state::TcpState;
use crate::lb::TICKS_PER_SEC;
use crate::wire::proto;
use std::net::SocketAddr;
use xdpvs_api::config::{Fwd, Proto, ProxyProtocol, ServiceKey};
use xdpvs_api::sync::{flags as sf, Record, Reveal as WireReveal, Seq, Splice as WireSplice, Timing, PROTO_IP};

/// Records a core holds between bursts (the worker drains them after each).
pub const SYNC_OUT_MAX: usize = 256;

/// Why a received record was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallError {
    /// No service of this director matches its virtual address/port/mark.
    NoService,
    /// Its real server is not one of the service's.
    NoDest,
    /// The session table is full (or the outbound tuple is taken).
    TableFull,
    /// FULLNAT: its local port (on one of this director's local addresses)
    /// is in use or not this core's.
    LocalPort,
    /// An IPv6 record on an IPv4 table or the other way round.
    Family,
}

/// TCP states in which IPVS syncs a connection.
fn syncable_tcp(s: TcpState) -> bool {
    matches!(s, TcpState::Established | TcpState::FinWait | TcpState::Close | TcpState::CloseWait | TcpState::TimeWait)
}

impl Core {
    /// The records queued since the last call (master side).
    pub fn take_sync(&mut self) -> std::vec::Drain<'_, Record> {
        self.state.sync_out.drain(..)
    }

    /// Installs (or updates) a received connection or template.
    pub fn install(&mut self, r: &Record, now: u32) -> Result<(), InstallError> {
        let cfg = &*self.cfg;
        self.state.now = now;
        let res = if r.is_v6() { self.state.install::<V6>(cfg, r) } else { self.state.install::<V4>(cfg, r) };
        let st = &mut self.state.stats;
        match res {
            Ok(true) => st.sync_installed += 1,
            Ok(false) => st.sync_updated += 1,
            Err(e) => st.sync_refused[e as usize] += 1,
        }
        res.map(drop)
    }

    /// A bulk walk: hands the records of up to `max` sessions from `cursor`
    /// to `emit` and returns where to resume (`None`: done). Only what IPVS
    /// would sync: connections in a syncable state, UDP, templates.
    pub fn sync_step(&self, cursor: u64, max: usize, emit: &mut dyn FnMut(Record)) -> Option<u64> {
        const V6: u64 = 1 << 32;
        let cfg = &*self.cfg;
        if cursor & V6 == 0 {
            match self.state.bulk_step::<V4>(cfg, cursor as u32, max, emit) {
                Some(next) => Some(u64::from(next)),
                None => Some(V6),
            }
        } else {
            self.state.bulk_step::<V6>(cfg, cursor as u32, max, emit).map(|n| V6 | u64::from(n))
        }
    }
}

impl State {
    /// After a packet stepped session `i` (from state `old`): queue its
    /// record if IPVS would sync it now (`inbound`: the packet was the
    /// client's, which IPVS counts), then its template's.
    #[inline]
    pub(super) fn sync_note<F: Family>(&mut self, cfg: &Snapshot, i: u32, old: u8, inbound: bool) {
        if cfg.syncing() {
            self.sync_decide::<F>(cfg, i, old, inbound);
        }
    }

    /// [`Self::sync_note`] with a master or the journal running (kept out
    /// of line: a director with neither pays one test per packet).
    #[inline(never)]
    fn sync_decide<F: Family>(&mut self, cfg: &Snapshot, i: u32, old: u8, inbound: bool) {
        let now = self.now;
        let table = F::table(&mut self.tables);
        let s = *table.get(i);
        if !inbound && s.state == old {
            // Only the client's packets count; a reply matters when it
            // moves the state.
            return;
        }
        let mark = table.sync_mark(i);
        if inbound {
            mark.pkts = mark.pkts.wrapping_add(1);
        }
        if !wanted(&cfg.sync_timing, &s, old, mark.pkts, mark.sent, now) {
            return;
        }
        mark.sent = now.max(1);
        self.queue_record::<F>(cfg, i);
        if let Some(t) = s.link.template() {
            self.queue_record::<F>(cfg, t);
        }
    }

    fn queue_record<F: Family>(&mut self, cfg: &Snapshot, i: u32) {
        if self.sync_out.len() >= SYNC_OUT_MAX {
            self.stats.sync_queue_full += 1;
            return;
        }
        let r = self.record::<F>(cfg, i);
        self.sync_out.push(r);
    }

    /// Session `i` as the protocol carries it.
    fn record<F: Family>(&self, cfg: &Snapshot, i: u32) -> Record {
        let table = F::table_ref(&self.tables);
        let s = table.get(i);
        let template = s.has(flag::TEMPLATE);
        let sa = |a: F::Addr, p: u16| SocketAddr::new(F::to_ip(a), p);
        let mut fl = match s.fwd {
            Fwd::Nat | Fwd::FullNat => sf::MASQ,
            Fwd::Tun => sf::TUNNEL,
            Fwd::Dr => sf::DROUTE,
        };
        for (f, w) in [(flag::INACTIVE, sf::INACTIVE), (flag::NOOUTPUT, sf::NOOUTPUT), (flag::TEMPLATE, sf::TEMPLATE)] {
            if s.has(f) {
                fl |= w;
            }
        }
        let fwmark = match cfg.service(u32::from(s.svc)).map(|x| x.spec.key) {
            Some(ServiceKey::Fwmark { mark, .. }) => mark,
            _ => 0,
        };
        let proto_nr = s.proto & !TEMPLATE_PROTO;
        let timeout = if template {
            s.link.ticks() / TICKS_PER_SEC
        } else if proto_nr == proto::TCP {
            cfg.timeouts.tcp(TcpState::from_u8(s.state))
        } else {
            cfg.timeouts.udp
        };
        let revealing = s.has(flag::REVEAL);
        let r = if revealing { table.reveal(i) } else { Reveal::default() };
        let client_addr = revealing && (r.pp.is_some() || r.toa || r.armed || r.udp_pending);
        Record {
            proto: if template && proto_nr == 0 { PROTO_IP } else { proto_nr },
            flags: fl,
            state: if proto_nr == proto::TCP && !template { u16::from(s.state) } else { 0 },
            client: sa(s.cip, s.cport),
            virt: sa(s.vip, s.vport),
            dest: sa(s.rip, s.rport),
            fwmark,
            timeout,
            // SYN proxy: the server → client shift as IPVS's SEQ_DATA
            // carries it (a kernel backup applies it too).
            seq: r.splice.on.then(|| {
                let out = Seq { init_seq: r.splice.cookie, delta: r.splice.delta, previous_delta: r.splice.delta };
                (Seq::default(), out)
            }),
            local: (s.fwd == Fwd::FullNat && !template).then(|| sa(s.lip, s.lport)),
            reveal: client_addr.then(|| wire_reveal(r)),
            splice: r.splice.on.then(|| wire_splice(&r.splice)),
        }
    }
}

fn wire_reveal(r: Reveal) -> WireReveal {
    {
        WireReveal {
            pp_version: match r.pp {
                None => 0,
                Some(ProxyProtocol::V1) => 1,
                Some(ProxyProtocol::V2) => 2,
            },
            armed: r.armed,
            toa: r.toa,
            udp_pending: r.udp_pending,
            pp_len: r.pp_len,
            at: r.at,
        }
    }
}

impl State {
    /// Installs `r`: `Ok(true)` a new session, `Ok(false)` an update.
    fn install<F: Family>(&mut self, cfg: &Snapshot, r: &Record) -> Result<bool, InstallError> {
        let ip = |a: SocketAddr| F::from_ip(a.ip()).ok_or(InstallError::Family);
        let (cip, vip, rip) = (ip(r.client)?, ip(r.virt)?, ip(r.dest)?);
        let (svc_slot, dest) = find_dest(cfg, r)?;
        let d = cfg.dest(dest).ok_or(InstallError::NoDest)?;
        let svc = cfg.service(svc_slot).ok_or(InstallError::NoService)?;
        let template = r.is_template();
        let key = if template {
            template_tuple::<F>(svc, cip, vip, r.proto)
        } else {
            Tuple { src: cip, dst: vip, sport: r.client.port(), dport: r.virt.port(), proto: r.proto }
        };
        let secs = match r.timeout {
            0 if template => 180,
            0 if r.proto == proto::TCP => cfg.timeouts.tcp(TcpState::from_u8(r.state as u8)),
            0 => cfg.timeouts.udp,
            t => t.min(xdpvs_api::state::Timeouts::MAX_SECS),
        };
        let expires = self.now + secs * TICKS_PER_SEC;
        if let Some((i, _)) = F::table(&mut self.tables).lookup(&key) {
            let s = *F::table(&mut self.tables).get(i);
            if s.dest == dest && s.dest_serial == d.serial {
                self.update_synced::<F>(cfg, i, r, expires);
                return Ok(false);
            }
            if r.flags & sf::INACTIVE != 0 && !template {
                // IPVS: the expiry notice of a connection already replaced.
                return Ok(false);
            }
            self.expire::<F>(cfg, i);
        }
        let fwd = d.spec.fwd;
        let (lip, lport, laddr_serial) = match (fwd, r.local) {
            (Fwd::FullNat, _) if template => (cip, 0, 0),
            (Fwd::FullNat, Some(l)) => {
                let lip = ip(l)?;
                // Another director's local address (directors behind ECMP
                // sync all to all): kept as it is, nothing to reserve here;
                // a flow moved here goes on under it, and its replies reach
                // whoever stands by for that address.
                let serial = match cfg.laddr_slot(F::to_ip(lip)) {
                    Some(_) => self.reserve_lport::<F>(cfg, lip, l.port()).ok_or(InstallError::LocalPort)?,
                    None => 0,
                };
                (lip, l.port(), serial)
            }
            (Fwd::FullNat, None) => return Err(InstallError::LocalPort),
            _ => (cip, r.client.port(), 0),
        };
        let link = if template {
            Link::timeout(secs * TICKS_PER_SEC)
        } else {
            let t = template_tuple::<F>(svc, cip, vip, r.proto);
            match svc.spec.persistent.and_then(|_| F::table(&mut self.tables).lookup(&t)) {
                Some((ti, _)) => Link::to_template(ti),
                None => Link::NONE,
            }
        };
        let inactive = template || r.flags & sf::INACTIVE != 0;
        let s = Session {
            cip: key.src,
            vip: key.dst,
            rip,
            lip,
            cport: key.sport,
            vport: key.dport,
            rport: r.dest.port(),
            lport,
            proto: key.proto,
            state: if template { 0 } else { r.state as u8 },
            flags: if template { flag::TEMPLATE } else { 0 }
                | if inactive && !template { flag::INACTIVE } else { 0 }
                | if template {
                    0
                } else if fwd.two_way() {
                    flag::HASHED_OUT
                } else {
                    flag::NOOUTPUT
                }
                | if (r.reveal.is_some() && fwd == Fwd::FullNat) || (r.splice.is_some() && fwd.two_way()) {
                    flag::REVEAL
                } else {
                    0
                },
            fwd,
            expires,
            link,
            dest,
            dest_serial: d.serial,
            nh_rs: NIL,
            nh_client: NIL,
            laddr_serial,
            svc: svc_slot as u16,
            ..Session::default()
        };
        let reveal = Reveal { splice: engine_splice(r), ..r.reveal.map(engine_reveal).unwrap_or_default() };
        let i = F::table(&mut self.tables).insert_revealing(s, reveal).map_err(|_| {
            if fwd == Fwd::FullNat && !template {
                self.release_lport::<F>(cfg, lip, lport, laddr_serial);
            }
            InstallError::TableFull
        })?;
        self.bind_synced::<F>(i);
        Ok(true)
    }

    /// A known session hears from the master again: its state, flags and
    /// timeout follow (IPVS's `IP_VS_CONN_F_BACKUP_UPD_MASK`).
    fn update_synced<F: Family>(&mut self, cfg: &Snapshot, i: u32, r: &Record, expires: u32) {
        let table = F::table(&mut self.tables);
        let s = table.get_mut(i);
        s.expires = expires;
        if s.has(flag::TEMPLATE) {
            return;
        }
        if s.proto == proto::TCP && u16::from(s.state) != r.state {
            let (svc, was) = (s.svc, state_slot(s));
            s.state = r.state as u8;
            let now = state_slot(s);
            gauge(&mut self.stats, &mut self.svc_rt, svc, was, false);
            gauge(&mut self.stats, &mut self.svc_rt, svc, now, true);
        }
        let was = s.has(flag::INACTIVE);
        let now_inactive = r.flags & sf::INACTIVE != 0;
        if now_inactive {
            s.flags |= flag::INACTIVE;
        } else {
            s.flags &= !flag::INACTIVE;
        }
        let (dest, serial, revealing) = (s.dest, s.dest_serial, s.has(flag::REVEAL));
        if revealing && (r.reveal.is_some() || r.splice.is_some()) {
            let keep = table.reveal(i);
            let reveal = r.reveal.map_or(keep, engine_reveal);
            table.set_reveal(
                i,
                Reveal { splice: if r.splice.is_some() { engine_splice(r) } else { keep.splice }, ..reveal },
            );
        }
        let live = cfg.dest(dest).is_some_and(|d| d.serial == serial);
        if let Some(rt) = self.dest_rt.get_mut(dest as usize).filter(|_| live && was != now_inactive) {
            if now_inactive {
                rt.active = rt.active.saturating_sub(1);
                rt.inactive += 1;
            } else {
                rt.inactive = rt.inactive.saturating_sub(1);
                rt.active += 1;
            }
        }
    }

    /// A synced session's bookkeeping: its server counts it (ActiveConn or
    /// InActConn as its state says) and its template one more connection;
    /// no connection is counted as scheduled here.
    fn bind_synced<F: Family>(&mut self, i: u32) {
        let s = *F::table(&mut self.tables).get(i);
        self.gauge(s.svc, state_slot(&s), true);
        let rt = self.dest_rt.get_mut(s.dest as usize);
        if s.has(flag::TEMPLATE) {
            if let Some(rt) = rt {
                rt.persist += 1;
            }
            return;
        }
        if let Some(rt) = rt {
            if s.has(flag::INACTIVE) {
                rt.inactive += 1;
            } else {
                rt.active += 1;
            }
        }
        if let Some(t) = s.link.template() {
            F::table(&mut self.tables).get_mut(t).controlled += 1;
        }
    }

    fn bulk_step<F: Family>(&self, cfg: &Snapshot, from: u32, max: usize, emit: &mut dyn FnMut(Record)) -> Option<u32> {
        let table = F::table_ref(&self.tables);
        let walk = max.saturating_mul(4).saturating_add(64);
        let end = u64::from(from).saturating_add(walk as u64).min(u64::from(table.slots())) as u32;
        let mut n = 0;
        for (i, s) in table.iter_from(from) {
            if i >= end {
                break;
            }
            if n == max {
                return Some(i);
            }
            let tcp_ok = s.proto != proto::TCP || syncable_tcp(TcpState::from_u8(s.state));
            if !s.has(flag::ONE_PACKET) && (s.has(flag::TEMPLATE) || tcp_ok) {
                emit(self.record::<F>(cfg, i));
                n += 1;
            }
        }
        (end < table.slots()).then_some(end)
    }
}

/// IPVS's `ip_vs_sync_conn_needed`: whether a master sends session `s`
/// now, after a packet moved it from state `old`; `pkts` counts the
/// client's packets, `sent` is when it was last sent (0: never).
fn wanted<A>(t: &Timing, s: &Session<A>, old: u8, pkts: u32, sent: u32, now: u32) -> bool {
    if s.has(flag::ONE_PACKET) {
        return false;
    }
    let changed = s.state != old;
    if s.proto == proto::TCP {
        let st = TcpState::from_u8(s.state);
        if !syncable_tcp(st) {
            return false;
        }
        if changed && st != TcpState::Established {
            return true;
        }
    }
    if t.refresh_period > 0 && sent != 0 {
        let timeout = s.expires.saturating_sub(now) / TICKS_PER_SEC;
        let min_gap = t.refresh_period.min((timeout / 2).max(10));
        if now.wrapping_sub(sent) < min_gap * TICKS_PER_SEC {
            return false;
        }
    }
    if t.period > 0 {
        pkts % u32::from(t.period) == u32::from(t.threshold)
    } else {
        t.refresh_period > 0 || pkts == u32::from(t.threshold)
    }
}

fn wire_splice(sp: &Splice) -> WireSplice {
    WireSplice {
        waiting: sp.waiting,
        ts: sp.ts,
        client_scales: sp.client_scales,
        ws_client: sp.ws_client,
        win_in: sp.win_in,
        win_out: sp.win_out,
        ts_delta: sp.ts_delta,
    }
}

/// A synced record's splice (SYN proxy), from its SEQ_DATA and XDPVS_SPLICE.
fn engine_splice(r: &Record) -> Splice {
    match (r.splice, r.seq) {
        (Some(v), Some((_, out))) => Splice {
            on: true,
            waiting: v.waiting,
            ts: v.ts,
            cookie: out.init_seq,
            delta: out.delta,
            ts_delta: v.ts_delta,
            client_scales: v.client_scales,
            ws_client: v.ws_client,
            win_in: v.win_in,
            win_out: v.win_out,
            ..Splice::default()
        },
        _ => Splice::default(),
    }
}

fn engine_reveal(v: WireReveal) -> Reveal {
    Reveal {
        pp: match v.pp_version {
            1 => Some(ProxyProtocol::V1),
            2 => Some(ProxyProtocol::V2),
            _ => None,
        },
        armed: v.armed,
        toa: v.toa,
        udp_pending: v.udp_pending,
        pp_len: v.pp_len,
        at: v.at,
        splice: Splice::default(),
    }
}

/// The service and real server a record names: by fwmark when it has one,
/// else by protocol, virtual address and port; the server by address and
/// port (a port-0, DR or TUN server matches any port).
fn find_dest(cfg: &Snapshot, r: &Record) -> Result<(u32, u32), InstallError> {
    let svc_slot = if r.fwmark != 0 {
        cfg.find_service(&ServiceKey::Fwmark { mark: r.fwmark, v6: r.is_v6() })
    } else {
        let p = match r.proto {
            proto::TCP => Some(Proto::Tcp),
            proto::UDP => Some(Proto::Udp),
            _ => None,
        };
        p.and_then(|p| cfg.lookup(p, r.virt.ip(), r.virt.port()))
    }
    .ok_or(InstallError::NoService)?;
    let svc = cfg.service(svc_slot).ok_or(InstallError::NoService)?;
    let dest = svc
        .dests
        .iter()
        .copied()
        .find(|&d| {
            cfg.dest(d).is_some_and(|x| {
                // DR and TUN keep the client's port (as IPVS): any port.
                let any_port = x.spec.port == 0 || r.is_template() || !x.spec.fwd.two_way();
                x.spec.addr == r.dest.ip() && (any_port || x.spec.port == r.dest.port())
            })
        })
        .ok_or(InstallError::NoDest)?;
    Ok((svc_slot, dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_session(state: TcpState) -> Session<[u8; 4]> {
        Session { proto: proto::TCP, state: state as u8, expires: 900 * TICKS_PER_SEC, ..Session::default() }
    }

    #[test]
    fn ipvs_syncs_at_the_threshold_then_every_period() {
        let t = Timing::default();
        let s = tcp_session(TcpState::Established);
        let est = TcpState::Established as u8;
        let sent: Vec<u32> = (1..=160).filter(|&p| wanted(&t, &s, est, p, 0, 0)).collect();
        assert_eq!(sent, vec![3, 53, 103, 153]);
    }

    #[test]
    fn state_changes_sync_at_once_except_into_established() {
        let t = Timing::default();
        let fin = tcp_session(TcpState::FinWait);
        assert!(wanted(&t, &fin, TcpState::Established as u8, 7, 0, 0));
        let est = tcp_session(TcpState::Established);
        assert!(!wanted(&t, &est, TcpState::SynRecv as u8, 2, 0, 0), "ESTABLISHED waits for the threshold");
        let syn = tcp_session(TcpState::SynRecv);
        assert!(!wanted(&t, &syn, TcpState::None as u8, 3, 0, 0), "half-open connections are never sent");
        let mut one = tcp_session(TcpState::Established);
        one.flags = flag::ONE_PACKET;
        assert!(!wanted(&t, &one, TcpState::Established as u8, 3, 0, 0));
    }

    #[test]
    fn a_refresh_period_spaces_the_sends() {
        let t = Timing { threshold: 3, period: 0, refresh_period: 30 };
        let s = tcp_session(TcpState::Established);
        let est = TcpState::Established as u8;
        let now = 100 * TICKS_PER_SEC;
        assert!(wanted(&t, &s, est, 9, 0, now), "never sent: sent now");
        assert!(!wanted(&t, &s, est, 10, now - 5 * TICKS_PER_SEC, now));
        assert!(wanted(&t, &s, est, 11, now - 31 * TICKS_PER_SEC, now));
    }
}
