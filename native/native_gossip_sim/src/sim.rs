//! The simulation: nodes, the network, a virtual clock and an event queue. Every
//! datagram an engine decides is delivered (or lost) by the network model; every
//! event it gives its owner goes to the connector model (node.rs), which makes and
//! drops the modelled distribution connections. Deterministic: one seed, one run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use native_gossip_core::{Config, Destination, Engine, Via};

use crate::net::{LinkModel, Network};

use crate::node::{keys, Node, ANSWER_PORT};

#[derive(Debug)]
pub(crate) enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Rc<Vec<u8>>,
        via: Via,
        answer: bool,
    },
    Wake(usize),
    Attempt(usize, usize),
    Connected(usize, usize, bool),
    Probe(usize, usize),
}

struct Item {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Settings of every node's engine.
#[derive(Debug, Clone)]
pub struct Settings {
    pub heartbeat_interval: Duration,
    pub lost_after: Duration,
    /// Nodes take answers to their joining heartbeats by unicast (`OPT_ANSWER`, on an
    /// answer socket of their own), as the current protocol does. Off: as nodes that
    /// predate it (every answer multicast). `legacy_every`: with it on, every k-th node
    /// is such an older node anyway (a mixed cluster during an upgrade).
    pub unicast_answers: bool,
    pub legacy_every: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            heartbeat_interval: Duration::from_millis(1500),
            lost_after: Duration::from_millis(4500),
            unicast_answers: true,
            legacy_every: None,
        }
    }
}

pub struct Sim {
    pub nodes: Vec<Node>,
    pub net: Network,
    pub settings: Settings,
    queue: BinaryHeap<Reverse<Item>>,
    seq: u64,
    /// Virtual time (µs).
    pub now: u64,
    base: Instant,
    seed: u64,
    /// Distribution connections (each pair once).
    pub edges: usize,
    /// Receipts from this node, and answers, count as the join's (see Counters).
    pub joiner: Option<usize>,
    /// The measured window (µs): receipts inside it are counted apart.
    pub window: Option<(u64, u64)>,
    deliveries: Vec<u64>,
}

impl Sim {
    pub fn new(n: usize, link: LinkModel, settings: Settings, seed: u64) -> Self {
        Sim {
            nodes: (0..n).map(Node::new).collect(),
            net: Network::new(link, seed),
            settings,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            base: Instant::now(),
            seed,
            edges: 0,
            joiner: None,
            window: None,
            deliveries: Vec::new(),
        }
    }

    pub(crate) fn at(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us)
    }

    fn wall_ms(&self) -> u64 {
        1_800_000_000_000 + self.now / 1000
    }

    pub(crate) fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Item {
            at,
            seq: self.seq,
            event,
        }));
    }

    pub fn up_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.up()).count()
    }

    /// Starts node `i` now (a new incarnation if it ran before).
    pub fn start(&mut self, i: usize) {
        let now = self.at(self.now);
        let legacy = !self.settings.unicast_answers
            || self
                .settings
                .legacy_every
                .is_some_and(|k| i.is_multiple_of(k));
        let node = &mut self.nodes[i];
        node.starts += 1;
        let config = Config {
            answer_port: if legacy { 0 } else { ANSWER_PORT },
            node_name: node.name.clone(),
            keys: keys(),
            heartbeat_interval: self.settings.heartbeat_interval,
            lost_after: self.settings.lost_after,
            own_addresses: vec![node.ip()],
            ..Config::default()
        };
        let incarnation = 1_000_000 * node.starts + i as u64;
        let seed = self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9) ^ node.starts << 40;
        node.engine = Some(Engine::new(config, now, incarnation, seed).expect("valid config"));
        node.wake_at = None;
        self.step(i);
    }

    /// Stops node `i` now: with `leave`, as a clean shutdown does (goodbyes sent, its
    /// connections closed at once); without, as a crash or a cut cable (nothing sent,
    /// connections left to failure detection).
    pub fn stop(&mut self, i: usize, leave: bool) {
        if leave {
            let wall = self.wall_ms();
            let now = self.at(self.now);
            if let Some(e) = self.nodes[i].engine.as_mut() {
                e.leave(wall, now);
            }
            self.flush(i);
            for p in self.nodes[i].connected.clone() {
                self.disconnect(i, p);
            }
        }
        let node = &mut self.nodes[i];
        node.engine = None;
        node.wake_at = None;
        node.known.clear();
        node.silent.clear();
        node.attempting.clear();
        node.deferred.clear();
        node.backoff.clear();
    }

    /// Runs until virtual time `until` (µs).
    pub fn run_until(&mut self, until: u64) {
        while let Some(Reverse(item)) = self.queue.peek() {
            if item.at > until {
                break;
            }
            let Reverse(item) = self.queue.pop().unwrap();
            self.now = item.at;
            self.handle(item.event);
        }
        self.now = until;
    }

    /// Runs until `until`, checking both conditions every `every` µs; returns the
    /// first time each held, if it did.
    pub fn run_watching(
        &mut self,
        until: u64,
        every: u64,
        first: impl Fn(&Sim) -> bool,
        second: impl Fn(&Sim) -> bool,
    ) -> (Option<u64>, Option<u64>) {
        let (mut a, mut b) = (None, None);
        let mut t = self.now;
        while t < until {
            t = (t + every).min(until);
            self.run_until(t);
            if a.is_none() && first(self) {
                a = Some(t);
            }
            if b.is_none() && second(self) {
                b = Some(t);
            }
        }
        (a, b)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                from,
                bytes,
                via,
                answer,
            } => self.deliver(to, from, &bytes, via, answer),
            Event::Wake(i) => {
                if self.nodes[i].wake_at == Some(self.now) {
                    self.nodes[i].wake_at = None;
                    self.step(i);
                }
            }
            Event::Attempt(a, b) => self.turn(a, b),
            Event::Connected(a, b, ok) => self.connected(a, b, ok),
            Event::Probe(a, b) => self.probe(a, b),
        }
    }

    fn deliver(&mut self, to: usize, from: usize, bytes: &[u8], via: Via, answer: bool) {
        let now = self.at(self.now);
        let from_addr = self.nodes[from].addr;
        let Some(engine) = self.nodes[to].engine.as_mut() else {
            return;
        };
        let event = engine.handle_datagram(bytes, from_addr, via, now);
        if from != to {
            let in_window = self.window.is_some_and(|(a, b)| (a..b).contains(&self.now));
            let by_join = Some(from) == self.joiner || answer;
            let c = &mut self.nodes[to].counters;
            c.count_receipt(self.now);
            if in_window {
                c.received_in_window += 1;
                if by_join {
                    c.join_receipts += 1;
                }
            }
        }
        if let Some(e) = event {
            self.on_event(to, e);
        }
        self.step(to);
    }

    /// Lets node `i`'s engine move on: timeouts, datagrams due, and its next wake-up.
    fn step(&mut self, i: usize) {
        let now = self.at(self.now);
        let wall = self.wall_ms();
        let mut events = Vec::new();
        let Some(engine) = self.nodes[i].engine.as_mut() else {
            return;
        };
        engine.set_clock(now, wall);
        engine.handle_timeout(now, &mut events);
        for e in events {
            self.on_event(i, e);
        }
        self.flush(i);
        if let Some(engine) = self.nodes[i].engine.as_ref() {
            let deadline = engine.next_deadline().saturating_duration_since(self.base);
            let at = (deadline.as_micros() as u64).max(self.now + 1);
            let node = &mut self.nodes[i];
            if node.wake_at.is_none_or(|w| at < w || w < self.now) {
                node.wake_at = Some(at);
                self.push(at, Event::Wake(i));
            }
        }
    }

    /// Sends what node `i`'s engine has decided.
    fn flush(&mut self, i: usize) {
        let now = self.at(self.now);
        let wall = self.wall_ms();
        let mut out = Vec::new();
        let Some(engine) = self.nodes[i].engine.as_mut() else {
            return;
        };
        let answers = engine.stats().answers;
        while let Some(t) = engine.poll_transmit(now, wall) {
            engine.record_send(None);
            out.push(t);
        }
        let answer = engine.stats().answers > answers;
        let in_window = self.window.is_some_and(|(a, b)| (a..b).contains(&self.now));
        if answer && in_window {
            self.nodes[i].counters.join_answers += 1;
        }
        for t in out {
            self.nodes[i].counters.sent += 1;
            let bytes = Rc::new(t.bytes);
            match t.to {
                Destination::Group => {
                    for j in 0..self.nodes.len() {
                        if self.nodes[j].up() {
                            self.send(i, j, &bytes, Via::Group, answer);
                        }
                    }
                }
                Destination::Unicast(addr) => {
                    // A node's answer socket hands what it gets over as the group's.
                    let via = if addr.port() == ANSWER_PORT {
                        Via::Group
                    } else {
                        Via::Unicast
                    };
                    if let Some(j) = self.index_of(addr) {
                        self.send(i, j, &bytes, via, answer);
                    }
                }
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, bytes: &Rc<Vec<u8>>, via: Via, answer: bool) {
        let mut delays = std::mem::take(&mut self.deliveries);
        self.net.deliveries(from, to, &mut delays);
        for &d in &delays {
            let event = Event::Deliver {
                to,
                from,
                bytes: bytes.clone(),
                via,
                answer,
            };
            self.push(self.now + d, event);
        }
        self.deliveries = delays;
    }

    fn index_of(&self, addr: std::net::SocketAddr) -> Option<usize> {
        let std::net::IpAddr::V4(ip) = addr.ip() else {
            return None;
        };
        let [_, a, b, c] = ip.octets();
        let i = (a as usize) << 16 | (b as usize) << 8 | c as usize;
        (i < self.nodes.len()).then_some(i)
    }

    pub(crate) fn peer_index(&self, name: &str) -> Option<usize> {
        name.strip_prefix('n')?.split('@').next()?.parse().ok()
    }
}
