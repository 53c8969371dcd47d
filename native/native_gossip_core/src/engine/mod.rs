//! The whole protocol as a state machine with no I/O and no clock of its own.
//!
//! The driver hands it datagrams and the current time; it hands back heartbeats to
//! send, events for the owner and the instant it next needs to be woken. Every
//! behaviour is therefore a deterministic unit test.
//!
//! It also decides where every datagram goes ([`Transmit`]): the group, the seeds,
//! peers first heard by unicast (which may not have this node among their seeds), a
//! unicast answer to a sender it has just discovered that way, and in `compat:
//! :libcluster` mode a libcluster-format copy of each heartbeat. The driver only sends.
//!
//! Heartbeat schedule: one at once on start, then a joining burst at 20, 40, 80, 160,
//! 320, 640 and 1280 ms (those within one interval), flagged JOINING; then every
//! interval with ±25 % jitter. A node that hears a JOINING heartbeat answers with one of
//! its own after a short random delay (coalesced), so a newcomer learns everyone within
//! milliseconds without each node flooding the group.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::auth::Keyring;
use crate::compat;
use crate::limiter::NewPeerLimiter;
use crate::name;
use crate::peers::{Member, PeerEvent, PeerTable, Timing};
use crate::reason::DropReason;
use crate::unicast::Learned;

mod acks;
mod admission;
mod config;
mod destinations;
mod lead;
mod libcluster;
mod options;
mod schedule;

use acks::Acks;
pub use acks::{ACK_PEERS, FIRST_ANSWER_PER_PEER};
pub use admission::{NameCheck, MAX_OTHER_CLUSTERS};
pub use config::{Config, ConfigError};
pub use lead::first_leads;
pub use libcluster::MAX_NATIVE_NAMES;
pub use options::goodbye;
use options::options_block;
use schedule::Jitter;
pub use schedule::{JOIN_BURST, REPLY_WINDOW, REPLY_WINDOW_PER_PEER};

/// Most addresses first heard by unicast that are sent heartbeats by unicast in return.
pub use crate::unicast::MAX_LEARNED;

/// How a datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// On the group socket: multicast (or broadcast) to every member.
    Group,
    /// On a socket that hears unicast (the seeds' socket, or a broadcast socket with
    /// seeds): its sender can be answered, and sent heartbeats, directly.
    Unicast,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The multicast group (or the broadcast address), from the group socket.
    Group,
    /// One address by unicast (a seed, a peer heard by unicast, an answer).
    Unicast(SocketAddr),
}

/// One datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Destination,
    pub bytes: Vec<u8>,
}

/// Counters. `received == accepted + looped_back + sum(dropped)` always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub send_errors: u64,
    /// The last send that failed: its destination and the OS error.
    pub last_send_error: Option<String>,
    pub received: u64,
    /// This node's own heartbeats, looped back by the kernel: received, not dropped
    /// (a healthy node hears each of its multicast heartbeats once).
    pub looped_back: u64,
    pub accepted: u64,
    pub dropped: [u64; DropReason::ALL.len()],
    pub events: u64,
    /// Events replaced, while waiting for the owner, by a newer one for the same peer.
    pub events_coalesced: u64,
    /// Events dropped because the owner had that many waiting (see `outbox`).
    pub events_dropped: u64,
    /// Heartbeats not sent to an address that has not proven itself, because that
    /// address had sent this node fewer bytes (see `unicast`).
    pub unicast_withheld: u64,
    /// Heartbeats sent off schedule to answer a joining peer (each to every
    /// destination a heartbeat goes to): what a join costs a member beyond its regular
    /// heartbeats. The simulator (`native_gossip_sim`) attributes datagrams by it.
    pub answers: u64,
    /// Joining-burst heartbeats left out because every peer had heard this node (see
    /// `OPT_HEARD`).
    pub burst_skipped: u64,
}

impl Stats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

#[derive(Debug)]
pub struct Engine {
    name: String,
    keys: Keyring,
    interval: Duration,
    incarnation: u64,
    sequence: u64,
    started: Instant,
    next_heartbeat: Instant,
    /// How many of `JOIN_BURST` are scheduled or passed (`JOIN_BURST.len()`: the burst
    /// is over).
    burst: usize,
    reply_at: Option<Instant>,
    /// Answers to joining peers that take them by unicast (`OPT_ANSWER`): when each is
    /// due and where it goes, in the order due (at most `MAX_UNICAST_ANSWERS`).
    /// and the incarnation each answers (its `OPT_HEARD`).
    unicast_answers: VecDeque<(Instant, SocketAddr, u64)>,
    /// Who has heard this node's joining burst (`acks`).
    acks: Acks,
    /// The port of this node's answer socket (0: none), sent in `OPT_ANSWER`.
    answer_port: u16,
    peers: PeerTable,
    limiter: Option<NewPeerLimiter>,
    stats: Stats,
    jitter: Jitter,
    /// Unicast destinations: the seeds, and (`unicast`) peers first heard by unicast
    /// while they are alive, and senders just discovered that way (each gets one
    /// heartbeat back at once, so that it learns this node too).
    seeds: Vec<SocketAddr>,
    unicast: Learned,
    /// Datagrams decided and not yet handed out by `poll_transmit`.
    queue: VecDeque<Transmit>,
    /// `leave` was called: nothing but the goodbyes goes out any more.
    left: bool,
    /// With `compat: :libcluster`: libcluster's AES keys, one per secret (none without
    /// a secret: plaintext).
    legacy: Option<Vec<[u8; 32]>>,
    /// Without `compat`: libcluster's AES keys of this node's secrets, to tell a
    /// libcluster heartbeat (`libcluster_format`) from junk.
    libcluster_keys: Vec<[u8; 32]>,
    /// Stands in for the sequence number libcluster heartbeats lack: grows with each
    /// one accepted, so they are never taken for replays (the format has no replay
    /// protection to offer).
    legacy_sequence: u64,
    /// With `compat`: names heard in the native format (at most `MAX_NATIVE_NAMES`).
    native_names: HashSet<String>,
    max_names: Option<usize>,
    name_exists: NameCheck,
    /// New names admitted that `name_exists` did not know.
    names_made: usize,
    max_clock_skew: Option<Duration>,
    /// An instant and the wall-clock time (ms since the epoch) then (`set_clock`).
    clock: Option<(Instant, u64)>,
    cluster: String,
    dist_port: u16,
    /// With a secret: this host's addresses, sent in every heartbeat.
    own_addresses: Vec<IpAddr>,
    /// The options block of every heartbeat: the cluster label, the tags, the
    /// distribution port, and with a secret this host's addresses.
    options: Vec<u8>,
    /// Other cluster labels heard (at most `MAX_OTHER_CLUSTERS`), for the doctor.
    other_clusters: Vec<String>,
    /// Where sealed heartbeats are opened (kept between datagrams).
    scratch: Vec<u8>,
}

/// The peer table of an engine with this configuration: reported lost and forgotten
/// as configured, heard again at most every half interval, a state change reported per
/// interval after the burst.
fn peer_table(config: &Config, interval: Duration) -> PeerTable {
    PeerTable::new(
        Timing {
            lost_after: config.lost_after,
            forget_after: config.forget_after.max(config.lost_after),
            heard_gap: interval / 2,
            change_gap: interval,
        },
        config.max_peers,
        config.keys.is_signing(),
    )
}

impl Engine {
    /// A new engine whose first heartbeat is due at `now`. `incarnation` must grow
    /// across restarts of the same node (the driver uses the wall clock in µs).
    pub fn new(
        config: Config,
        now: Instant,
        incarnation: u64,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        name::validate(config.node_name.as_bytes()).map_err(ConfigError::Name)?;
        let options = options_block(
            &config.cluster,
            &config.tags,
            config.dist_port,
            &config.keys,
            &config.own_addresses,
            config.answer_port,
        )
        .map_err(ConfigError::Options)?;
        let interval = config.heartbeat_interval.max(Duration::from_millis(1));
        let limiter = (!config.keys.is_signing())
            .then(|| NewPeerLimiter::new(config.new_peer_rate, config.new_peer_burst));
        let libcluster_keys = compat::keys(&config.keys);
        let legacy = config.compat_libcluster.then(|| libcluster_keys.clone());
        let peers = peer_table(&config, interval);
        Ok(Engine {
            name: config.node_name,
            keys: config.keys,
            interval,
            incarnation,
            sequence: 0,
            started: now,
            next_heartbeat: now,
            burst: 0,
            reply_at: None,
            unicast_answers: VecDeque::new(),
            acks: Acks::default(),
            answer_port: config.answer_port,
            peers,
            limiter,
            stats: Stats::default(),
            jitter: Jitter(seed),
            seeds: config.seeds,
            unicast: Learned::default(),
            queue: VecDeque::new(),
            left: false,
            legacy,
            libcluster_keys,
            legacy_sequence: 0,
            native_names: HashSet::new(),
            max_names: config.max_names,
            name_exists: config.name_exists,
            names_made: 0,
            max_clock_skew: config.max_clock_skew,
            clock: None,
            cluster: config.cluster,
            dist_port: config.dist_port,
            own_addresses: config.own_addresses,
            options,
            other_clusters: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Other cluster labels heard on this group and port (at most
    /// `MAX_OTHER_CLUSTERS`, the first heard).
    pub fn other_clusters(&self) -> &[String] {
        &self.other_clusters
    }

    /// Tells the engine the wall-clock time (ms since the Unix epoch) at `now`, for the
    /// timestamp check. The driver calls it on every wake-up, so a stepped clock is
    /// followed.
    pub fn set_clock(&mut self, now: Instant, wall_ms: u64) {
        self.clock = Some((now, wall_ms));
    }

    /// The local wall-clock time at `now`, if known.
    fn wall_at(&self, now: Instant) -> Option<u64> {
        let (at, wall) = self.clock?;
        let ahead = now.saturating_duration_since(at).as_millis() as u64;
        let behind = at.saturating_duration_since(now).as_millis() as u64;
        Some((wall + ahead).saturating_sub(behind))
    }

    /// New names admitted that the owner did not know (at most `max_names`).
    pub fn names_made(&self) -> usize {
        self.names_made
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Handles one received datagram; returns the event it causes, if any.
    pub fn handle_datagram(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        via: Via,
        now: Instant,
    ) -> Option<PeerEvent> {
        self.handle_datagram_verdict(data, from, via, now)
            .ok()
            .flatten()
    }

    /// As `handle_datagram`, also telling why a datagram was dropped (for tools).
    pub fn handle_datagram_verdict(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        via: Via,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        self.stats.received += 1;
        if via == Via::Unicast {
            self.unicast.received(from, data.len(), now);
        }
        match self.accept(data, from, now) {
            Ok(event) => {
                if let Some(e) = &event {
                    self.route(e, via, from, data.len(), now);
                }
                Ok(event)
            }
            Err(DropReason::OwnPacket) => {
                self.stats.looped_back += 1;
                Err(DropReason::OwnPacket)
            }
            Err(reason) => {
                self.stats.dropped[reason.index()] += 1;
                Err(reason)
            }
        }
    }

    /// Records the outcome of sending one heartbeat: `None` when it was sent, else
    /// what failed (the destination and the OS error), kept as the last send error.
    pub fn record_send(&mut self, error: Option<String>) {
        match error {
            None => self.stats.sent += 1,
            Some(e) => {
                self.stats.send_errors += 1;
                self.stats.last_send_error = Some(e);
            }
        }
    }

    /// Marks a peer connected or not. `via`: the remote address of the distribution
    /// connection, when connected: if the peer's heartbeats come from it, that address
    /// is proven (`PeerTable::pin`): pinned without a secret, and sent heartbeats by
    /// unicast without counting.
    pub fn set_connected(
        &mut self,
        name: &str,
        connected: bool,
        via: Option<IpAddr>,
        now: Instant,
    ) -> bool {
        if let (true, Some(ip)) = (connected, via) {
            if self.peers.pin(name, ip) {
                self.unicast.prove(name, ip);
            }
        }
        self.peers.set_connected(name, connected, now)
    }

    /// The address a connection proved for `name`, if any (see `set_connected`).
    pub fn pinned(&self, name: &str) -> Option<IpAddr> {
        self.peers.pinned(name)
    }

    /// Reports `name` again (while it stays unconnected) no sooner than `after` from
    /// `now`: the owner's connect backoff.
    pub fn hold(&mut self, name: &str, after: Duration, now: Instant) -> bool {
        self.peers.hold(name, now + after)
    }

    pub fn members(&self, now: Instant, wall_now_ms: u64) -> Vec<Member> {
        self.peers.members(now, wall_now_ms)
    }
}

#[cfg(test)]
mod burst_tests;
#[cfg(test)]
mod tests;
