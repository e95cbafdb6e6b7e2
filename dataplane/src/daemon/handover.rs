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
        eprintln!("xdpvs: {}: {bad} malformed record(s) or message(s) skipped", path.display());
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
