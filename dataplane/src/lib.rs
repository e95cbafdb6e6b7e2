//! xdpvs: the AF_XDP Virtual Server.
//!
//! - [`wire`]: zero-copy typed packet views and checksums.
//! - [`lb`]: the balancer engine (services, schedulers, sessions, the four
//!   LVS forwarding modes) over frames in memory; no I/O.
//!
//! `unsafe` is denied crate-wide; only the AF_XDP and shared-memory modules
//! may allow it, block by block, each with a `// SAFETY:` line.

pub mod control;
pub mod daemon;
pub mod lb;
pub mod netlink;
pub mod pcap;
pub mod testkit;
pub mod wire;
pub mod worker;
pub mod xsk;
