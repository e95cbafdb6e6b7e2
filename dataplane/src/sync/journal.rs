//! The crash journal (`--handover`): every record the workers queue — what
//! a backup director would receive — is appended to a file next to the
//! state file, in the sync protocol's messages, each stamped with the wall
//! time it was written. A clean stop writes the state file and removes the
//! journal; after a crash (`kill -9`, a panic, the OOM killer) the next
//! xdpvs replays it: the latest record of each connection, its timeout
//! shortened by the time since, exactly what a backup would hold.
//!
//! The file is rotated at [`LIMIT`] bytes: the current one becomes the
//! previous one and the workers walk their tables onto the new one (a bulk
//! walk), so replaying the previous file and then the current one always
//! finds every live connection.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use xdpvs_api::sync::{self as wire, flags, Builder, Record};

/// A journal file grows to this before it is rotated.
pub const LIMIT: u64 = 64 << 20;
/// A message waits at most this long before it is written.
const DELAY: Duration = Duration::from_millis(20);

/// The journal's files for a state file: (current, previous).
pub fn paths(state_file: &Path) -> (PathBuf, PathBuf) {
    (state_file.with_extension("journal"), state_file.with_extension("journal.prev"))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub struct Journal {
    cur: PathBuf,
    prev: PathBuf,
    out: BufWriter<File>,
    b: Builder,
    first: Option<Instant>,
    bytes: u64,
}

impl Journal {
    /// Starts an empty journal for `state_file` (any old one was replayed
    /// at start and is gone).
    pub fn create(state_file: &Path) -> io::Result<Journal> {
        let (cur, prev) = paths(state_file);
        if let Some(dir) = cur.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = BufWriter::new(File::create(&cur)?);
        let _ = std::fs::remove_file(&prev);
        Ok(Journal { cur, prev, out, b: Builder::new(0, wire::MAX_MESSAGE), first: None, bytes: 0 })
    }

    pub fn push(&mut self, r: &Record) -> io::Result<()> {
        if !self.b.push(r) {
            self.write()?;
            self.b.push(r);
        }
        self.first.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Writes what has waited long enough (or everything, `now`); true
    /// when the file is due for rotation.
    pub fn tick(&mut self, now: bool) -> io::Result<bool> {
        if self.first.is_some_and(|t| now || t.elapsed() >= DELAY) {
            self.write()?;
        }
        Ok(self.bytes >= LIMIT)
    }

    /// One stamped message, handed to the kernel (a crash of this process
    /// loses nothing written).
    fn write(&mut self) -> io::Result<()> {
        if self.b.is_empty() {
            self.first = None;
            return Ok(());
        }
        self.out.write_all(&now_ms().to_be_bytes())?;
        self.out.write_all(self.b.bytes())?;
        self.out.flush()?;
        self.bytes += 8 + self.b.bytes().len() as u64;
        self.b.reset(0);
        self.first = None;
        Ok(())
    }

    /// The current file becomes the previous one; a new one starts. The
    /// caller has the workers walk their tables onto it.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.write()?;
        std::fs::rename(&self.cur, &self.prev)?;
        self.out = BufWriter::new(File::create(&self.cur)?);
        self.bytes = 0;
        Ok(())
    }

    /// A clean stop: the state file holds everything; the journal goes.
    pub fn remove(self) {
        drop(self.out);
        let _ = std::fs::remove_file(&self.cur);
        let _ = std::fs::remove_file(&self.prev);
    }
}

/// What a connection is keyed by (IPVS's: protocol, client, virtual
/// address; a template also by its mark).
type Key = (bool, u8, SocketAddr, SocketAddr, u32);

fn key(r: &Record) -> Key {
    (r.flags & flags::TEMPLATE != 0, r.proto, r.client, r.virt, r.fwmark)
}

/// After a crash: the journal's latest record of each connection still
/// alive, its timeout what is left of it; the files are removed once read.
/// (records, malformed parts).
pub fn replay(state_file: &Path) -> (Vec<Record>, usize) {
    let (cur, prev) = paths(state_file);
    let now = now_ms();
    let mut latest: HashMap<Key, (u64, Record)> = HashMap::new();
    let mut bad = 0;
    for p in [&prev, &cur] {
        let Ok(data) = std::fs::read(p) else { continue };
        let _ = std::fs::remove_file(p);
        bad += read_into(&data, &mut latest);
    }
    let records = latest
        .into_values()
        .filter_map(|(at, mut r)| {
            let age = now.saturating_sub(at) / 1000;
            let left = u64::from(r.timeout).checked_sub(age).filter(|&l| l > 0)?;
            r.timeout = left as u32;
            Some(r)
        })
        .collect();
    (records, bad)
}

/// Stamped messages into `latest` (later ones win); the bad parts.
fn read_into(mut data: &[u8], latest: &mut HashMap<Key, (u64, Record)>) -> usize {
    let mut bad = 0;
    while data.len() >= 12 {
        let at = u64::from_be_bytes(data[..8].try_into().unwrap_or_default());
        let size = usize::from(u16::from_be_bytes([data[10], data[11]]));
        if size < wire::HEADER_LEN || 8 + size > data.len() {
            // A message the crash cut short: the end of the file.
            return bad + 1;
        }
        let (records, b) = crate::daemon::handover::decode(&data[8..8 + size]);
        bad += b;
        for r in records {
            latest.insert(key(&r), (at, r));
        }
        data = &data[8 + size..];
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(port: u16, state: u16, timeout: u32) -> Record {
        Record {
            proto: wire::PROTO_TCP,
            flags: flags::MASQ,
            state,
            client: SocketAddr::new([198, 18, 0, 100].into(), port),
            virt: "198.18.0.10:80".parse().unwrap(),
            dest: "198.19.0.11:80".parse().unwrap(),
            fwmark: 0,
            timeout,
            seq: None,
            local: None,
            reveal: None,
            splice: None,
        }
    }

    #[test]
    fn the_latest_record_of_each_connection_survives_rotation_and_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("xdpvs-journal-{}", std::process::id()));
        let state = dir.join("x.sessions");
        let mut j = Journal::create(&state).unwrap();
        j.push(&rec(1, 1, 900)).unwrap();
        j.push(&rec(2, 1, 900)).unwrap();
        j.tick(true).unwrap();
        j.rotate().unwrap();
        // After the rotation: connection 1 closes, 3 opens; 2 is only in the
        // previous file (as if its bulk walk record were still to come).
        j.push(&rec(1, 5, 120)).unwrap();
        j.push(&rec(3, 1, 900)).unwrap();
        j.tick(true).unwrap();
        drop(j);
        // A torn last message, as a crash mid-write leaves it.
        let (cur, _) = paths(&state);
        let mut f = std::fs::OpenOptions::new().append(true).open(&cur).unwrap();
        f.write_all(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0]).unwrap();
        drop(f);
        let (mut got, bad) = replay(&state);
        got.sort_by_key(|r| r.client.port());
        let seen: Vec<(u16, u16)> = got.iter().map(|r| (r.client.port(), r.state)).collect();
        assert_eq!(seen, vec![(1, 5), (2, 1), (3, 1)], "the latest of each, across both files");
        assert_eq!(bad, 1, "the torn tail is counted");
        assert!(!cur.exists(), "a replayed journal is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
