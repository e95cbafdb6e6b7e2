//! IPVS connection synchronisation, protocol version 1 (`ip_vs_sync.c`),
//! byte for byte: the message header, IPv4 and IPv6 connection records,
//! their flags and optional parameters, and the sync daemons' settings
//! (`--start-daemon`). The daemon's sync thread, its backup side, the
//! `-L --daemon` listing and the fuzz target all use this one definition.
//!
//! xdpvs adds what only it needs as optional parameters marked skippable
//! (type bit 0x40), so a kernel IPVS receiver ignores them: a FULLNAT
//! connection's local address and port, and a connection's PROXY
//! protocol / TOA progress. One more addition is a bulk request, a header
//! with no records that a kernel reads as an empty version-0 message.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// 224.0.0.81, IPVS's multicast group; 8848 its port.
pub const DEFAULT_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
pub const DEFAULT_PORT: u16 = 8848;
/// The IPv6 group ipvsadm users pick (IPVS has no default one: the group
/// must be given with `--mcast-group`; ff02::81 is link-local, like 224.0.0.81).
pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x81);

/// Header length and the protocol version it carries.
pub const HEADER_LEN: usize = 8;
pub const VERSION: u8 = 1;
/// Record lengths without options.
pub const V4_LEN: usize = 36;
pub const V6_LEN: usize = 72;
/// The largest message: a UDP datagram's payload.
pub const MAX_MESSAGE: usize = 65507;
/// `spare` of a bulk request (xdpvs): "send me your whole table".
pub const BULK_MAGIC: u16 = 0x4255; // "BU"

/// Connection flags (`IP_VS_CONN_F_*`).
pub mod flags {
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const LOCALNODE: u32 = 0x0001;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    pub const SYNC: u32 = 0x0020;
    pub const HASHED: u32 = 0x0040;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const NO_CPORT: u32 = 0x0800;
    pub const TEMPLATE: u32 = 0x1000;
    pub const ONE_PACKET: u32 = 0x2000;
    /// The bits a backup takes from a record (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
}

/// Optional parameter types.
pub mod opt {
    pub const SEQ_DATA: u8 = 1;
    pub const PE_DATA: u8 = 2;
    pub const PE_NAME: u8 = 3;
    /// A receiver that does not know the parameter skips it.
    pub const SKIPPABLE: u8 = 0x40;
    /// xdpvs: FULLNAT local port (2 bytes) and address (4 or 16).
    pub const XDPVS_LOCAL: u8 = SKIPPABLE | 0x10;
    /// xdpvs: PROXY protocol / TOA progress ([`super::Reveal`], 8 bytes).
    pub const XDPVS_REVEAL: u8 = SKIPPABLE | 0x11;
    /// xdpvs: a SYN-proxied connection's timestamps and window scales
    /// ([`super::Splice`], 12 bytes); its sequence shift is IPVS's own
    /// `SEQ_DATA` (out: the director's ISN toward the client, the delta).
    pub const XDPVS_SPLICE: u8 = SKIPPABLE | 0x12;
}

/// IPVS protocol numbers a record may carry.
pub const PROTO_IP: u8 = 0;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
/// TCP's states (`IP_VS_TCP_S_LAST`); UDP's (`IP_VS_UDP_S_LAST`); a
/// template's (`IP_VS_CTPL_S_LAST`).
pub const TCP_STATES: u16 = 11;
pub const UDP_STATES: u16 = 1;

/// `IPVS_OPT_SEQ_DATA`: one direction's sequence adjustment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seq {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// xdpvs's PROXY protocol / TOA progress of a FULLNAT connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reveal {
    /// 0: none, 1: v1, 2: v2.
    pub pp_version: u8,
    pub armed: bool,
    pub toa: bool,
    pub udp_pending: bool,
    pub pp_len: u8,
    pub at: u32,
}

/// What a SYN-proxied connection carries beside its sequence shift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Splice {
    /// The server's SYN-ACK had not come.
    pub waiting: bool,
    pub ts: bool,
    pub client_scales: bool,
    pub ws_client: u8,
    pub win_in: (u8, u8),
    pub win_out: (u8, u8),
    /// Server → client TSval moves up by this.
    pub ts_delta: u32,
}

/// One connection or persistence template, as the protocol carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub proto: u8,
    /// `IP_VS_CONN_F_*` as sent (HASHED never set).
    pub flags: u32,
    pub state: u16,
    pub client: SocketAddr,
    pub virt: SocketAddr,
    pub dest: SocketAddr,
    pub fwmark: u32,
    /// Seconds (0: the receiver's own timeout for the state).
    pub timeout: u32,
    pub seq: Option<(Seq, Seq)>,
    /// FULLNAT's local address and port.
    pub local: Option<SocketAddr>,
    pub reveal: Option<Reveal>,
    /// SYN proxy (with `seq`'s out delta).
    pub splice: Option<Splice>,
}

impl Record {
    pub fn is_v6(&self) -> bool {
        self.client.is_ipv6()
    }

    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// Bytes on the wire, options included, before padding.
    pub fn wire_len(&self) -> usize {
        let a = if self.is_v6() { 16 } else { 4 };
        let base = if self.is_v6() { V6_LEN } else { V4_LEN };
        base + self.seq.map_or(0, |_| 2 + 24)
            + self.local.map_or(0, |_| 2 + 2 + a)
            + self.reveal.map_or(0, |_| 2 + 8)
            + self.splice.map_or(0, |_| 2 + 12)
    }
}

/// Why a whole datagram was dropped (IPVS drops the rest of a message too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BadMessage {
    /// Shorter than a header.
    Short,
    /// The header's size is not the datagram's length.
    Size,
    /// Another sync group's syncid.
    Syncid,
    /// A version-0 message (xdpvs speaks version 1, IPVS's default).
    Version0,
    /// A record runs past the end, or is shorter than its kind.
    Truncated,
    /// A record's version nibble is not 0.
    RecordVersion,
    /// An option's length is zero, runs past its record, or repeats.
    BadOption,
    /// A record's type is neither IPv4 (0) nor IPv6 (1).
    Family,
}

/// Why one record was skipped (the rest of its message still counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BadRecord {
    /// Neither TCP nor UDP (nor a template).
    Protocol,
    /// A state number past the protocol's last.
    State,
    /// An unknown parameter not marked skippable.
    MandatoryParam,
    /// A malformed xdpvs parameter.
    XdpvsParam,
    /// A martian or mixed-family address.
    Address,
}

impl BadMessage {
    pub const ALL: &'static [BadMessage] = &[
        BadMessage::Short,
        BadMessage::Size,
        BadMessage::Syncid,
        BadMessage::Version0,
        BadMessage::Truncated,
        BadMessage::RecordVersion,
        BadMessage::BadOption,
        BadMessage::Family,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BadMessage::Short => "short",
            BadMessage::Size => "size_mismatch",
            BadMessage::Syncid => "other_syncid",
            BadMessage::Version0 => "version0",
            BadMessage::Truncated => "truncated",
            BadMessage::RecordVersion => "record_version",
            BadMessage::BadOption => "bad_option",
            BadMessage::Family => "bad_family",
        }
    }
}

impl BadRecord {
    pub const ALL: &'static [BadRecord] =
        &[BadRecord::Protocol, BadRecord::State, BadRecord::MandatoryParam, BadRecord::XdpvsParam, BadRecord::Address];

    pub fn name(self) -> &'static str {
        match self {
            BadRecord::Protocol => "bad_protocol",
            BadRecord::State => "bad_state",
            BadRecord::MandatoryParam => "mandatory_param",
            BadRecord::XdpvsParam => "bad_xdpvs_param",
            BadRecord::Address => "bad_address",
        }
    }
}

// ---- encoding ----

/// A message being filled, up to `maxlen` bytes (buffer reused).
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
    maxlen: usize,
    count: u8,
}

impl Builder {
    pub fn new(syncid: u8, maxlen: usize) -> Self {
        let maxlen = maxlen.clamp(HEADER_LEN + V6_LEN + 64, MAX_MESSAGE);
        let mut b = Self { buf: Vec::with_capacity(maxlen), maxlen, count: 0 };
        b.reset(syncid);
        b
    }

    /// Starts a new, empty message.
    pub fn reset(&mut self, syncid: u8) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, syncid, 0, HEADER_LEN as u8, 0, VERSION, 0, 0]);
        self.count = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds `r`; false (and nothing written) when it does not fit or the
    /// message already holds 255 records.
    pub fn push(&mut self, r: &Record) -> bool {
        let pad = (4 - self.buf.len() % 4) % 4;
        if self.count == u8::MAX || self.buf.len() + pad + r.wire_len() > self.maxlen {
            return false;
        }
        self.buf.resize(self.buf.len() + pad, 0);
        encode_record(&mut self.buf, r);
        self.count += 1;
        let size = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&size.to_be_bytes());
        self.buf[4] = self.count;
        true
    }

    /// The message as it stands.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn put_addr(buf: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v) => buf.extend_from_slice(&v.octets()),
        IpAddr::V6(v) => buf.extend_from_slice(&v.octets()),
    }
}

fn encode_record(buf: &mut Vec<u8>, r: &Record) {
    let len = r.wire_len() as u16;
    buf.push(u8::from(r.is_v6()));
    buf.push(r.proto);
    buf.extend_from_slice(&(len & 0x0fff).to_be_bytes());
    buf.extend_from_slice(&(r.flags & !flags::HASHED).to_be_bytes());
    buf.extend_from_slice(&r.state.to_be_bytes());
    buf.extend_from_slice(&r.client.port().to_be_bytes());
    buf.extend_from_slice(&r.virt.port().to_be_bytes());
    buf.extend_from_slice(&r.dest.port().to_be_bytes());
    buf.extend_from_slice(&r.fwmark.to_be_bytes());
    buf.extend_from_slice(&r.timeout.to_be_bytes());
    for a in [r.client.ip(), r.virt.ip(), r.dest.ip()] {
        put_addr(buf, a);
    }
    if let Some((i, o)) = r.seq {
        buf.extend_from_slice(&[opt::SEQ_DATA, 24]);
        for s in [i, o] {
            for w in [s.init_seq, s.delta, s.previous_delta] {
                buf.extend_from_slice(&w.to_be_bytes());
            }
        }
    }
    if let Some(l) = r.local {
        let alen = if l.is_ipv6() { 16 } else { 4 };
        buf.extend_from_slice(&[opt::XDPVS_LOCAL, 2 + alen]);
        buf.extend_from_slice(&l.port().to_be_bytes());
        put_addr(buf, l.ip());
    }
    if let Some(v) = r.reveal {
        let bits = u8::from(v.armed) | u8::from(v.toa) << 1 | u8::from(v.udp_pending) << 2;
        buf.extend_from_slice(&[opt::XDPVS_REVEAL, 8, v.pp_version, bits, v.pp_len, 0]);
        buf.extend_from_slice(&v.at.to_be_bytes());
    }
    if let Some(v) = r.splice {
        let bits = u8::from(v.waiting) | u8::from(v.ts) << 1 | u8::from(v.client_scales) << 2;
        buf.extend_from_slice(&[opt::XDPVS_SPLICE, 12, bits, v.ws_client, v.win_in.0, v.win_in.1]);
        buf.extend_from_slice(&[v.win_out.0, v.win_out.1, 0, 0]);
        buf.extend_from_slice(&v.ts_delta.to_be_bytes());
    }
}

/// A bulk request: "send me your whole table" (an empty version-0
/// message to a kernel receiver, which does nothing with it).
pub fn bulk_request(syncid: u8) -> [u8; HEADER_LEN] {
    let m = BULK_MAGIC.to_be_bytes();
    [0, syncid, 0, HEADER_LEN as u8, 0, VERSION, m[0], m[1]]
}

// ---- decoding ----

/// What a datagram is.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Connection records (each one decoded or skipped with a reason).
    Conns(Records<'a>),
    /// A peer asks for the whole table.
    BulkRequest,
}

/// Checks a datagram's header against this backup's `syncid` (0: any).
pub fn parse(d: &[u8], syncid: u8) -> Result<Message<'_>, BadMessage> {
    if d.len() < 4 {
        return Err(BadMessage::Short);
    }
    if usize::from(u16::from_be_bytes([d[2], d[3]])) != d.len() {
        return Err(BadMessage::Size);
    }
    if syncid != 0 && d[1] != syncid {
        return Err(BadMessage::Syncid);
    }
    if d.len() < HEADER_LEN || d[0] != 0 || d[5] != VERSION {
        return Err(BadMessage::Version0);
    }
    match u16::from_be_bytes([d[6], d[7]]) {
        0 => Ok(Message::Conns(Records { d, at: HEADER_LEN, left: d[4], failed: false })),
        BULK_MAGIC if d[4] == 0 && d.len() == HEADER_LEN => Ok(Message::BulkRequest),
        _ => Err(BadMessage::Version0),
    }
}

/// The records of a message, in order. A structural error ends the walk
/// (after yielding it once), as IPVS drops the rest of such a message.
#[derive(Debug, PartialEq, Eq)]
pub struct Records<'a> {
    d: &'a [u8],
    at: usize,
    left: u8,
    failed: bool,
}

/// One step of the walk: a record, a skipped record, or the message's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Conn(Record),
    Skipped(BadRecord),
    Broken(BadMessage),
}

impl Iterator for Records<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        self.left -= 1;
        match record_at(self.d, self.at) {
            Ok((item, size)) => {
                self.at += (size + 3) & !3;
                Some(item)
            }
            Err(e) => {
                self.failed = true;
                Some(Item::Broken(e))
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], v6: bool) -> IpAddr {
    if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        IpAddr::from(o)
    } else {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    }
}

/// The record at `at`: what it is, and its size (before padding).
fn record_at(d: &[u8], at: usize) -> Result<(Item, usize), BadMessage> {
    if at + V4_LEN > d.len() {
        return Err(BadMessage::Truncated);
    }
    let r = &d[at..];
    let ver_size = be16(r, 2);
    let size = usize::from(ver_size & 0x0fff);
    if size > r.len() {
        return Err(BadMessage::Truncated);
    }
    if ver_size >> 12 != 0 {
        return Err(BadMessage::RecordVersion);
    }
    let v6 = match r[0] {
        0 => false,
        1 => true,
        _ => return Err(BadMessage::Family),
    };
    let base = if v6 { V6_LEN } else { V4_LEN };
    if size < base {
        return Err(BadMessage::Truncated);
    }
    let r = &r[..size];
    let opts = options(&r[base..], v6)?;
    Ok((validate(r, v6, opts), size))
}

/// The parameters after a record's addresses.
#[derive(Default)]
struct Opts {
    seq: Option<(Seq, Seq)>,
    local: Option<Result<SocketAddr, BadRecord>>,
    reveal: Option<Result<Reveal, BadRecord>>,
    splice: Option<Result<Splice, BadRecord>>,
    mandatory_unknown: bool,
}

fn options(mut p: &[u8], v6: bool) -> Result<Opts, BadMessage> {
    let mut o = Opts::default();
    let mut seen = [false; 256];
    while !p.is_empty() {
        if p.len() < 2 {
            return Err(BadMessage::BadOption);
        }
        let (ty, len) = (p[0], usize::from(p[1]));
        if len == 0 || 2 + len > p.len() {
            return Err(BadMessage::BadOption);
        }
        let data = &p[2..2 + len];
        let known = matches!(ty & !opt::SKIPPABLE, opt::SEQ_DATA | opt::PE_DATA | opt::PE_NAME)
            || matches!(ty, opt::XDPVS_LOCAL | opt::XDPVS_REVEAL);
        if known {
            let key = usize::from(ty & !opt::SKIPPABLE);
            if seen[key] {
                return Err(BadMessage::BadOption);
            }
            seen[key] = true;
        }
        match ty {
            t if t & !opt::SKIPPABLE == opt::SEQ_DATA => {
                if len != 24 {
                    return Err(BadMessage::BadOption);
                }
                let s = |k: usize| Seq {
                    init_seq: be32(data, k),
                    delta: be32(data, k + 4),
                    previous_delta: be32(data, k + 8),
                };
                o.seq = Some((s(0), s(12)));
            }
            t if t & !opt::SKIPPABLE == opt::PE_DATA || t & !opt::SKIPPABLE == opt::PE_NAME => {
                // Persistence engines (SIP) are not served: the record still
                // stands, as a connection without its PE data.
            }
            opt::XDPVS_LOCAL => {
                let alen = if v6 { 16 } else { 4 };
                o.local = Some(if len == 2 + alen {
                    Ok(SocketAddr::new(addr(&data[2..], v6), be16(data, 0)))
                } else {
                    Err(BadRecord::XdpvsParam)
                });
            }
            opt::XDPVS_REVEAL => {
                o.reveal = Some(if len == 8 && data[0] <= 2 && data[1] < 8 {
                    Ok(Reveal {
                        pp_version: data[0],
                        armed: data[1] & 1 != 0,
                        toa: data[1] & 2 != 0,
                        udp_pending: data[1] & 4 != 0,
                        pp_len: data[2],
                        at: be32(data, 4),
                    })
                } else {
                    Err(BadRecord::XdpvsParam)
                });
            }
            opt::XDPVS_SPLICE => {
                let scales_ok = data.get(2..6).is_some_and(|w| w.iter().all(|&x| x <= 14));
                o.splice = Some(if len == 12 && data[0] < 8 && data[1] <= 14 && scales_ok {
                    Ok(Splice {
                        waiting: data[0] & 1 != 0,
                        ts: data[0] & 2 != 0,
                        client_scales: data[0] & 4 != 0,
                        ws_client: data[1],
                        win_in: (data[2], data[3]),
                        win_out: (data[4], data[5]),
                        ts_delta: be32(data, 8),
                    })
                } else {
                    Err(BadRecord::XdpvsParam)
                });
            }
            t if t & opt::SKIPPABLE != 0 => {}
            _ => o.mandatory_unknown = true,
        }
        p = &p[2 + len..];
    }
    Ok(o)
}

/// A structurally sound record's meaning, or why a backup skips it.
fn validate(r: &[u8], v6: bool, o: Opts) -> Item {
    if o.mandatory_unknown {
        return Item::Skipped(BadRecord::MandatoryParam);
    }
    let (proto, fl, state) = (r[1], be32(r, 4), be16(r, 8));
    let template = fl & flags::TEMPLATE != 0;
    if !template {
        let states = match proto {
            PROTO_TCP => TCP_STATES,
            PROTO_UDP => UDP_STATES,
            _ => return Item::Skipped(BadRecord::Protocol),
        };
        if state >= states {
            return Item::Skipped(BadRecord::State);
        }
    } else if !matches!(proto, PROTO_IP | PROTO_TCP | PROTO_UDP) {
        return Item::Skipped(BadRecord::Protocol);
    }
    let a = if v6 { 16 } else { 4 };
    let (caddr, vaddr, daddr) = (addr(&r[24..], v6), addr(&r[24 + a..], v6), addr(&r[24 + 2 * a..], v6));
    let local = match o.local.transpose() {
        Ok(l) => l,
        Err(e) => return Item::Skipped(e),
    };
    let reveal = match o.reveal.transpose() {
        Ok(v) => v,
        Err(e) => return Item::Skipped(e),
    };
    let splice = match o.splice.transpose() {
        Ok(v) if v.is_some() && o.seq.is_none() => return Item::Skipped(BadRecord::XdpvsParam),
        Ok(v) => v,
        Err(e) => return Item::Skipped(e),
    };
    let martian = |x: IpAddr| x.is_multicast() || x.is_loopback();
    if martian(caddr) || martian(daddr) || daddr.is_unspecified() || local.is_some_and(|l| martian(l.ip())) {
        return Item::Skipped(BadRecord::Address);
    }
    Item::Conn(Record {
        proto,
        flags: fl & !flags::HASHED,
        state,
        client: SocketAddr::new(caddr, be16(r, 10)),
        virt: SocketAddr::new(vaddr, be16(r, 12)),
        dest: SocketAddr::new(daddr, be16(r, 14)),
        fwmark: be32(r, 16),
        timeout: be32(r, 20),
        seq: o.seq,
        local,
        reveal,
        splice,
    })
}

// ---- the daemons' settings (`--start-daemon`) ----

/// Which sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Master,
    Backup,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }
}

/// One sync daemon's settings, as `--start-daemon` gives them (unset
/// values take IPVS's defaults: [`DaemonSpec::maxlen_for`] and the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSpec {
    pub iface: String,
    pub syncid: u8,
    pub maxlen: Option<u16>,
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

impl DaemonSpec {
    pub fn group(&self) -> IpAddr {
        self.group.unwrap_or(IpAddr::V4(DEFAULT_GROUP_V4))
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    pub fn ttl(&self) -> u8 {
        self.ttl.unwrap_or(1)
    }

    /// IPVS's default message length for an interface of `mtu`: what one
    /// unfragmented UDP datagram holds.
    pub fn maxlen_for(&self, mtu: u32) -> u16 {
        let hdr = if self.group().is_ipv6() { 48 } else { 28 };
        self.maxlen.unwrap_or_else(|| mtu.saturating_sub(hdr).clamp(256, 65507) as u16)
    }
}

/// The sync daemons of a director (master and backup may run at once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Daemons {
    pub master: Option<DaemonSpec>,
    pub backup: Option<DaemonSpec>,
}

impl Daemons {
    pub fn get(&self, r: Role) -> Option<&DaemonSpec> {
        match r {
            Role::Master => self.master.as_ref(),
            Role::Backup => self.backup.as_ref(),
        }
    }

    pub fn slot(&mut self, r: Role) -> &mut Option<DaemonSpec> {
        match r {
            Role::Master => &mut self.master,
            Role::Backup => &mut self.backup,
        }
    }
}

/// When a master sends a connection (IPVS's sysctls, their defaults):
/// `sync_threshold`/`sync_period` ("3 50") and `sync_refresh_period` (s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub threshold: u16,
    pub period: u16,
    pub refresh_period: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Self { threshold: 3, period: 50, refresh_period: 0 }
    }
}

/// `ipvsadm -L --daemon`'s line for one daemon sending up to `maxlen`.
pub fn daemon_line(role: Role, d: &DaemonSpec, maxlen: u16) -> String {
    let group = d.group();
    format!(
        "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
        role.name(),
        d.iface,
        d.syncid,
        maxlen,
        group,
        d.port(),
        d.ttl()
    )
}

#[cfg(test)]
mod tests;
