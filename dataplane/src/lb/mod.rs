//! The balancer: services, schedulers, sessions, forwarding — pure logic over
//! frames in memory. No I/O and no `unsafe` here: the AF_XDP layer hands
//! frames to [`core::Core::process`] and acts on the [`Verdict`].

#![forbid(unsafe_code)]

pub mod client_addr;
pub mod core;
pub mod defrag;
pub mod family;
pub mod frame;
pub mod net;
pub mod owner;
pub mod rss;
pub mod sched;
pub mod session;
pub mod snapshot;
pub mod stats;
pub mod syncookie;
pub mod tcp_state;

/// Engine time unit: timeouts and expiry work in ticks of 100 ms.
pub const TICKS_PER_SEC: u32 = 10;

/// What to do with a processed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on interface `iface`; its MACs are set.
    Tx { iface: u16 },
    /// Not the balancer's: give it to the kernel unchanged.
    Pass,
    /// Drop, counted under the reason.
    Drop(stats::DropReason),
    /// Another core owns this frame's session: hand it over unchanged.
    Handoff(u16),
    /// The frame must wait, unchanged (its session untouched): its next hop
    /// is being resolved (the kernel was asked), or, SYN proxy, the real
    /// server's SYN-ACK has not come. Hold it and offer it again once the
    /// neighbour table changes or [`core::Core::take_reoffer`] says so, as
    /// the kernel queues packets for an incomplete neighbour; one never
    /// offered again is the caller's to drop with [`core::Core::give_up`],
    /// counted under the reason carried here.
    Park(stats::DropReason),
    /// The engine copied the frame (a fragment waiting for the rest of its
    /// datagram, see [`defrag`]): its buffer is free, nothing is sent.
    Taken,
}

/// SplitMix64's finaliser: the one hash mixer of the engine.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
