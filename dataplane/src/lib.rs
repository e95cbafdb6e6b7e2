//! xdpvs: the AF_XDP Virtual Server.
//!
//! - [`wire`]: zero-copy typed packet views and checksums.
//! - [`lb`]: the balancer engine (services, schedulers, sessions, the four
//!   LVS forwarding modes) over frames in memory; no I/O.
//! - [`xsk`], [`worker`]: AF_XDP sockets and the per-core poll loop.
//! - [`daemon`], [`control`], [`netlink`], [`marks`]: startup, the control
//!   thread, the kernel's network state, netfilter's MARK rules.
//!
//! What the daemon shares with its clients (the configuration model,
//! ipvsadm's grammar, the typed messages, the shared-memory region) is the
//! `xdpvs-api` crate. `unsafe` is denied crate-wide; only the AF_XDP module
//! may allow it, block by block, each with a `// SAFETY:` line.

pub mod announce;
pub mod control;
pub mod daemon;
pub mod lb;
pub mod marks;
pub mod netlink;
pub mod pcap;
pub mod sync;
pub mod testkit;
pub mod wire;
pub mod worker;
pub mod xsk;
