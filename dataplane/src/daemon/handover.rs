//! Restart without loss (`--handover SECS`): a stopping xdpvs writes every
//! session to a state file, in the sync protocol's own messages (so the
//! next daemon checks them exactly as it checks a peer's), and leaves its
//! XDP program attached, dropping what it owns rather than letting the
//! kernel answer it with RSTs, for at most SECS. The next xdpvs installs
//! the sessions in the cores that own them before its workers start, then
//! replaces the program in one step.

use crate::lb::core::Core;
use crate::lb::family::{V4, V6};
use crate::lb::owner::client_core;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use xdpvs_api::config::Config;
use xdpvs_api::sync::{self as wire, Builder, Item, Message, Record};

/// Writes every session of `cores` to `path` (atomically: a temporary
/// file renamed); the number of records.
pub fn save(path: &Path, cores: &[Core]) -> Result<usize, String> {
    let err = |e: std::io::Error| format!("cannot write the sessions to {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(err)?);
    let mut b = Builder::new(0, wire::MAX_MESSAGE);
    let mut n = 0;
    let mut failed = None;
    for core in cores {
        let mut cursor = 0;
        loop {
            let next = core.sync_step(cursor, 1024, &mut |r| {
                if !b.push(&r) {
                    if let Err(e) = out.write_all(b.bytes()) {
                        failed = Some(e);
                    }
                    b.reset(0);
                    b.push(&r);
                }
                n += 1;
            });
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
    }
    if !b.is_empty() {
        out.write_all(b.bytes()).map_err(err)?;
    }
    if let Some(e) = failed {
        return Err(err(e));
    }
    out.flush().map_err(err)?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(n)
}

/// The sessions a previous xdpvs left in `path` (none if there is no
/// file), checked record by record; the file is removed once read, so a
/// later start never takes stale sessions.
pub fn load(path: &Path) -> Result<Vec<Record>, String> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read the sessions in {}: {e}", path.display())),
    };
    let _ = std::fs::remove_file(path);
    let (records, bad) = decode(&data);
    if bad > 0 {
        tracing::warn!("{}: {bad} malformed record(s) or message(s) skipped", path.display());
    }
    Ok(records)
}

/// The records of concatenated messages, and how many parts were bad.
pub fn decode(mut data: &[u8]) -> (Vec<Record>, usize) {
    let (mut records, mut bad) = (Vec::new(), 0);
    while data.len() >= 4 {
        let size = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if size < wire::HEADER_LEN || size > data.len() {
            bad += 1;
            break;
        }
        match wire::parse(&data[..size], 0) {
            Ok(Message::Conns(items)) => {
                for i in items {
                    match i {
                        Item::Conn(r) => records.push(r),
                        Item::Skipped(_) | Item::Broken(_) => bad += 1,
                    }
                }
            }
            Ok(Message::BulkRequest) | Err(_) => bad += 1,
        }
        data = &data[size..];
    }
    (records, bad)
}

/// The core that owns `r` among `n` (the ownership function's answer for
/// its client).
pub fn owner(cfg: &Config, n: u16, r: &Record) -> u16 {
    match r.client.ip() {
        IpAddr::V4(a) => client_core::<V4>(cfg, n, a.octets()),
        IpAddr::V6(a) => client_core::<V6>(cfg, n, a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(port: u16) -> Record {
        Record {
            proto: wire::PROTO_TCP,
            flags: wire::flags::MASQ,
            state: 1,
            client: std::net::SocketAddr::new([198, 18, 0, 100].into(), port),
            virt: "198.18.0.10:80".parse().unwrap(),
            dest: "198.19.0.11:80".parse().unwrap(),
            fwmark: 0,
            timeout: 900,
            seq: None,
            local: None,
            reveal: None,
            splice: None,
        }
    }

    #[test]
    fn messages_read_back_in_order_and_a_torn_tail_is_counted() {
        let mut data = Vec::new();
        let mut b = Builder::new(0, 300);
        for p in 1..=20u16 {
            if !b.push(&rec(p)) {
                data.extend_from_slice(b.bytes());
                b.reset(0);
                b.push(&rec(p));
            }
        }
        data.extend_from_slice(b.bytes());
        let (got, bad) = decode(&data);
        assert_eq!((got.len(), bad), (20, 0));
        assert!(got.iter().enumerate().all(|(i, r)| r.client.port() == i as u16 + 1));
        let (torn, bad) = decode(&data[..data.len() - 5]);
        assert_eq!((torn.len() < 20, bad), (true, 1), "a file cut short loses only its last message");
    }
}
