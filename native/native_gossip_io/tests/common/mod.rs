//! What the integration tests share: a topology on loopback inside the private network
//! namespace of `make test`, and the parts of a newcomer made of plain UDP sockets.

#![allow(dead_code)]

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use native_gossip_core::wire::{self, Outgoing};
use native_gossip_core::{Config, Keyring};
use native_gossip_io::{wall_ms, EventSink, SocketConfig, Topology};

pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 78, 71);
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
pub const SECRET: &[u8] = b"answers test secret";

pub struct Sink;

impl EventSink for Sink {
    fn ready(&mut self) -> bool {
        true
    }
    fn fault(&mut self, reason: &str) {
        panic!("topology fault: {reason}");
    }
    fn membership(&mut self, _status: Result<(), &str>) {}
}

pub fn keys(secret: bool) -> Keyring {
    if secret {
        Keyring::new(vec![SECRET.to_vec()])
    } else {
        Keyring::none()
    }
}

/// A newcomer's JOINING heartbeat, encoded with `keys`.
pub fn joining(
    name: &str,
    incarnation: u64,
    sequence: u64,
    options: &[u8],
    keys: &Keyring,
) -> Vec<u8> {
    let heartbeat = Outgoing {
        name,
        incarnation,
        sequence,
        timestamp_ms: wall_ms(),
        leaving: false,
        joining: true,
        newcomer: true,
        options,
    };
    wire::encode(&heartbeat, keys).unwrap()
}

/// The newcomer's sending socket: multicast TTL 0, so that nothing it sends leaves the
/// host even outside a namespace.
pub fn sender() -> UdpSocket {
    let sender = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    sender.set_multicast_ttl_v4(0).unwrap();
    sender
}

/// A member on loopback, out of its joining burst: regular heartbeats every second.
/// Refuses to run outside the private network namespace of `make test`.
pub fn member(port: u16, secret: bool) -> Topology {
    assert_eq!(
        std::env::var("NATIVE_GOSSIP_NETNS").as_deref(),
        Ok("1"),
        "run inside a private network namespace: test/support/private_net.sh cargo test"
    );
    let config = Config {
        node_name: format!("member{port}@127.0.0.1"),
        keys: keys(secret),
        heartbeat_interval: Duration::from_millis(1000),
        lost_after: Duration::from_secs(30),
        ..Config::default()
    };
    let socket = SocketConfig::multicast_v4(GROUP, port, LOOPBACK, 1);
    let topology = Topology::start(config, socket, Sink).expect("the member starts");
    std::thread::sleep(Duration::from_millis(1200));
    topology
}
