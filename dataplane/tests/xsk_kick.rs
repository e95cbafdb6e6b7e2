//! A full tx ring drains: copy mode sends only on a send call (at most 32
//! frames each), so a sender that stops kicking once its ring is full never
//! sends again. Seen as `perf gen` stalling at a few thousand frames under
//! a flood; here made certain with a link that is down while the ring fills.
//!
//! Needs root: runs in a network namespace of its own (this thread's,
//! unshared; it goes away with the thread), on a veth pair made there.

use std::process::Command;
use xdpvs::xsk::{open_ports, Io, Shared, RING};

fn ip(args: &str) {
    let st = Command::new("ip").args(args.split_whitespace()).status().expect("ip");
    assert!(st.success(), "ip {args}");
}

fn rx_packets(dev: &str) -> u64 {
    let out = Command::new("ip").args(["-s", "-j", "link", "show", "dev", dev]).output().expect("ip -s");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
    v[0]["stats64"]["rx"]["packets"].as_u64().expect("rx packets")
}

fn frame(buf: &mut [u8]) -> usize {
    buf[..60].fill(0);
    buf[..6].fill(0xff);
    buf[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    buf[12..14].copy_from_slice(&[0x88, 0xb5]);
    60
}

#[test]
fn a_full_tx_ring_drains_once_the_link_is_up() {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (run as root)");
        ip("link add xk0 type veth peer name xk1");
        ip("link set xk1 up");
        let shared = Shared::new(16 << 20, false).expect("UMEM");
        let ports = open_ports(&shared, &[("xk0".into(), 0)], true).expect("AF_XDP socket on xk0");
        let mut io = Io::new(shared.clone(), ports, 0, shared.frames());
        // Down: every send call fails, nothing leaves the ring.
        let mut put = 0;
        while put < RING as usize {
            let n = io.transmit_new(0, 64, |_, buf| frame(buf));
            assert!(n > 0, "the ring took {put} of {RING} frames");
            put += n;
        }
        assert_eq!(io.tx_pending(0), RING, "the ring is full");
        ip("link set xk0 up");
        // Nothing fits; the call must still make the kernel send.
        assert_eq!(io.transmit_new(0, 1, |_, buf| frame(buf)), 0);
        let after_one = io.tx_pending(0);
        assert!(after_one < RING, "a full ring was left full: {after_one} frames pending");
        for _ in 0..RING {
            io.reap_completions();
            if io.tx_pending(0) == 0 {
                break;
            }
            io.transmit_new(0, 0, |_, buf| frame(buf));
        }
        assert_eq!(io.tx_pending(0), 0, "the ring drained");
        assert!(rx_packets("xk1") >= u64::from(RING), "xk1 received {} frames", rx_packets("xk1"));
    })
    .join()
    .expect("the test thread");
}
