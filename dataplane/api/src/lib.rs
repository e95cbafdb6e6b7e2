//! xdpvs-api: everything the daemon and its clients (`xdpvsadm`, and the
//! control-plane programs beside it) share. No packet path, no AF_XDP, no
//! BPF: a client links this crate and nothing of the engine.
//!
//! - [`config`]: the configuration model and its validation (ipvsadm's
//!   semantics and error texts); [`state`]: IPVS's connection states and
//!   timeouts;
//! - [`grammar`]: ipvsadm's command line; [`admin`]: the commands, `-S`
//!   format and applying `-R` text; [`text`]: how ipvsadm writes addresses,
//!   services, netmasks and flags;
//! - [`counters`]: every counter and drop reason, named once;
//! - [`msg`]: the typed messages and views exchanged through the region;
//! - [`shm`]: the shared-memory region itself (the ABI).
//!
//! `unsafe` is denied here except in `shm`, block by block, each with a
//! `// SAFETY:` line.

pub mod admin;
pub mod config;
pub mod counters;
pub mod grammar;
#[cfg(feature = "logs")]
pub mod logs;
pub mod msg;
pub mod shm;
pub mod state;
pub mod sync;
pub mod text;
