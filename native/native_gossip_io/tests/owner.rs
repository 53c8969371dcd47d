//! The owner's changes (`set_connected`, `hold`) take effect from the caller's thread,
//! at once: they change no deadline of the driver thread and queue no datagram, so
//! they do not wait for it, and do not wake it (in a connection storm each wake-up was
//! a system call after which the BEAM scheduler that made it could lose its core). A
//! real topology on loopback, inside the private network namespace of `make test`.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{joining, keys, member, sender, GROUP, LOOPBACK};
use native_gossip_core::wire;
use native_gossip_io::Topology;

/// Makes `topology` (on `port`) hear a peer named `name`; returns once it is a member.
fn heard(topology: &Topology, port: u16, name: &str) {
    let options = wire::address_records(&[LOOPBACK.into()]);
    let bytes = joining(name, 11, 1, &options, &keys(true));
    sender().send_to(&bytes, (GROUP, port)).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while !topology.members().iter().any(|m| m.name == name) {
        assert!(Instant::now() < until, "the peer was never heard");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn connected(topology: &Topology, name: &str) -> bool {
    topology
        .members()
        .iter()
        .any(|m| m.name == name && m.connected)
}

#[test]
fn a_connection_reported_by_the_owner_takes_effect_without_the_driver_thread() {
    let port = 46_104;
    let member = member(port, true);
    let peer = "peer@127.0.0.1";
    heard(&member, port, peer);
    assert!(!connected(&member, peer));

    // The driver thread stalls (it holds no lock meanwhile); the owner's reports still
    // take effect at once.
    member.pause_for_test(Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    member.set_connected(peer, true, Some(IpAddr::from(LOOPBACK)));
    assert!(
        connected(&member, peer),
        "the connection waited for the driver thread"
    );
    member.hold(peer, Duration::from_secs(10));
    member.set_connected(peer, false, None);
    assert!(!connected(&member, peer));
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the owner's calls waited for the stalled thread"
    );
    member.stop(false);
}
