//! xdpvs: the AF_XDP Virtual Server.
//!
//! - [`wire`]: zero-copy typed packet views and checksums.
//! - [`admin`], [`grammar`]: ipvsadm's commands, grammar and `-S` format.
//! - [`lb`]: the balancer engine (services, schedulers, sessions, the four
//!   LVS forwarding modes) over frames in memory; no I/O.
//!
//! `unsafe` is denied crate-wide; only the AF_XDP and shared-memory modules
//! may allow it, block by block, each with a `// SAFETY:` line.

pub mod admin;
pub mod control;
pub mod daemon;
pub mod grammar;
pub mod lb;
pub mod netinfo;
pub mod pcap;
pub mod shm;
pub mod testkit;
pub mod wire;
pub mod worker;
pub mod xsk;
