//! The checker's side of the xdpvs control interface (the region
//! `xdpvsadm` uses): the configuration the daemon runs, and `Converge`, the
//! one request that makes the checker's services what it wants — applied by
//! the daemon all or nothing, keeping the identity (and the flows) of every
//! service and real server that stays.

use std::time::Duration;
use xdpvs_api::admin::Command;
use xdpvs_api::config::ServiceKey;
use xdpvs_api::msg::{decode_blob, Request, SyncView, View, OK};
use xdpvs_api::shm::{Region, BLOB_SYNC, BLOB_VIEW};

pub struct Director {
    region: Region,
    instance: String,
}

impl Director {
    /// The region of `xdpvs --instance NAME`.
    pub fn open(instance: &str) -> Result<Director, String> {
        Region::open(instance)
            .map(|region| Director { region, instance: instance.to_string() })
            .map_err(|e| e.to_string())
    }

    /// A restarted daemon made a new region: use it. True when it did.
    pub fn reopen(&mut self) -> bool {
        match Region::open(&self.instance) {
            Ok(r) if (r.pid(), r.started()) != (self.region.pid(), self.region.started()) => {
                self.region = r;
                true
            }
            _ => false,
        }
    }

    /// The configuration the daemon runs.
    pub fn view(&self) -> Result<View, String> {
        decode_blob("configuration view", &self.region.read_blob(BLOB_VIEW).map_err(|e| e.to_string())?)
    }

    /// The sync daemons the daemon runs.
    pub fn sync_view(&self) -> Result<SyncView, String> {
        let blob = self.region.read_blob(BLOB_SYNC).map_err(|e| e.to_string())?;
        if blob.is_empty() {
            return Ok(SyncView::default());
        }
        decode_blob("sync view", &blob)
    }

    /// One configuration command (`--start-daemon`, `--stop-daemon`).
    pub fn command(&mut self, c: Command) -> Result<(), String> {
        let (status, text, _) =
            self.region.call(&Request::Command(c).encode(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
        if status == OK {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&text).into_owned())
        }
    }

    /// Makes the services `rules` (`-S` text) says what it says, removes
    /// those of `owned` it no longer has, and leaves every other service
    /// alone. Returns the daemon's notes.
    /// A daemon that restarted is found again (its new region) and asked.
    pub fn converge(&mut self, owned: Vec<ServiceKey>, rules: String) -> Result<String, String> {
        let req = Request::Converge { owned, rules }.encode();
        let answer = match self.region.call(&req, Duration::from_secs(30)) {
            Err(_) if self.reopen() => self.region.call(&req, Duration::from_secs(30)),
            other => other,
        };
        let (status, text, _) = answer.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&text).into_owned();
        if status == OK {
            Ok(text)
        } else {
            Err(text)
        }
    }
}
