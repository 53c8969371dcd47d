//! One simulated node: an engine of the protocol crate and a model of what the BEAM
//! side does with its events (the connector: who connects whom, when, the tie-break's
//! follower wait and the backoff), plus its counters.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use native_gossip_core::{Engine, Keyring};

/// The port every node uses, as with the library's default.
pub const PORT: u16 = 45892;
/// The port of every node's answer socket (an ephemeral port in the real library;
/// one per host here, as each simulated node has an address of its own).
pub const ANSWER_PORT: u16 = 50_000;

/// Counters of one node over a run (datagrams, not bytes).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Datagrams sent (a multicast counts once).
    pub sent: u64,
    /// Datagrams received from other nodes (its own looped-back multicast excluded).
    pub received: u64,
    /// Of those, received inside the measured window of a scenario.
    pub received_in_window: u64,
    /// Datagrams received in the window that a join caused: the newcomer's own and
    /// the answers to it.
    pub join_receipts: u64,
    /// Answers this node sent in the window (heartbeats off schedule).
    pub join_answers: u64,
    /// Events the engine gave its owner.
    pub events: u64,
    /// `:lost` published to the owner for a peer that was up and reachable (failure
    /// detection's rule: a connected peer is published lost only when its probe
    /// fails or its connection drops while it is silent).
    pub false_lost: u64,
    /// The engine's `Lost` for a peer that was up and reachable: silences that loss
    /// made (the owner sees `:suspect` for a connected peer, `:lost` for another).
    pub false_silences: u64,
    /// Datagrams received per second of virtual time (index: the second).
    pub per_second: Vec<u32>,
}

impl Counters {
    pub fn count_receipt(&mut self, at_us: u64) {
        self.received += 1;
        let s = (at_us / 1_000_000) as usize;
        if self.per_second.len() <= s {
            self.per_second.resize(s + 1, 0);
        }
        self.per_second[s] += 1;
    }
}

#[derive(Debug)]
pub struct Node {
    pub index: usize,
    pub name: String,
    pub addr: SocketAddr,
    pub engine: Option<Engine>,
    /// Starts so far (each start is a new incarnation).
    pub starts: u64,
    /// The engine's next deadline, as scheduled in the event queue (µs).
    pub wake_at: Option<u64>,
    /// Peers this node has a distribution connection with.
    pub connected: HashSet<usize>,
    /// Connection attempts in flight.
    pub attempting: HashSet<usize>,
    /// Follower waits scheduled (the peer leads; this node tries if it has not).
    pub deferred: HashSet<usize>,
    /// Backoff of each peer whose last attempt failed.
    pub backoff: HashMap<usize, Duration>,
    /// Peers whose heartbeats this node hears (alive in its table).
    pub known: HashSet<usize>,
    /// Connected peers the engine reported lost that were not published lost (their
    /// probe answered, or is under way): lib/native_gossip/detector.ex's `lost` set.
    pub silent: HashSet<usize>,
    pub counters: Counters,
}

impl Node {
    pub fn new(index: usize) -> Self {
        let ip = Ipv4Addr::new(10, (index >> 16) as u8, (index >> 8) as u8, index as u8);
        Node {
            index,
            name: format!("n{index}@h{index}"),
            addr: SocketAddr::new(IpAddr::V4(ip), PORT),
            engine: None,
            starts: 0,
            wake_at: None,
            connected: HashSet::new(),
            attempting: HashSet::new(),
            deferred: HashSet::new(),
            backoff: HashMap::new(),
            known: HashSet::new(),
            silent: HashSet::new(),
            counters: Counters::default(),
        }
    }

    pub fn up(&self) -> bool {
        self.engine.is_some()
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

/// The shared secret of every simulated node (heartbeats are signed, as deployments
/// should run them).
pub fn keys() -> Keyring {
    Keyring::new(vec![b"native-gossip-simulator".to_vec()])
}
