//! The whole protocol as a state machine with no I/O and no clock of its own.
//!
//! The driver hands it datagrams and the current time; it hands back heartbeats to
//! send, events for the owner and the instant it next needs to be woken. Every
//! behaviour is therefore a deterministic unit test.
//!
//! Heartbeat schedule: one at once on start, then a joining burst at 20, 60, 140, 300,
//! … ms (doubling gaps) until one interval has passed, flagged JOINING; then every
//! interval with ±25 % jitter. A node that hears a JOINING heartbeat answers with one of
//! its own after a short random delay (coalesced), so a newcomer learns everyone within
//! milliseconds without each node flooding the group.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::auth::Keyring;
use crate::compat;
use crate::limiter::NewPeerLimiter;
use crate::name::{self, NameError};
use crate::peers::{Member, PeerEvent, PeerTable, Timing};
use crate::wire::{self, DropReason, Outgoing};

/// First gap of the joining burst; each following gap doubles.
pub const JOIN_BURST_FIRST_GAP: Duration = Duration::from_millis(20);
/// Answers to a joining peer go out after a random delay within this window (wider in
/// larger groups: see `Engine::reply_window`).
pub const REPLY_WINDOW: Duration = Duration::from_millis(20);
/// Widening of the answer window per known peer (see `Engine::reply_window`).
pub const REPLY_WINDOW_PER_PEER: Duration = Duration::from_millis(4);

/// Settings of one topology's engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name, `name@host`.
    pub node_name: String,
    pub keys: Keyring,
    pub heartbeat_interval: Duration,
    pub lost_after: Duration,
    pub forget_after: Duration,
    pub max_peers: usize,
    /// Without a secret: new names admitted per second per source address, and the
    /// burst allowed. Ignored with a secret (names are then authenticated).
    pub new_peer_rate: u32,
    pub new_peer_burst: u32,
    /// Also read and send libcluster Gossip heartbeats (see `compat`).
    pub compat_libcluster: bool,
}

/// Counters. `received == accepted + sum(dropped)` always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub send_errors: u64,
    pub received: u64,
    pub accepted: u64,
    pub dropped: [u64; DropReason::ALL.len()],
    pub events: u64,
}

impl Stats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// Small, fast, non-cryptographic generator for jitter (splitmix64).
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, max].
    fn upto(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos() as u64;
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            self.next() % (nanos + 1)
        })
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
    /// Gap after the next burst heartbeat, while the burst lasts.
    burst_gap: Option<Duration>,
    reply_at: Option<Instant>,
    peers: PeerTable,
    limiter: Option<NewPeerLimiter>,
    stats: Stats,
    jitter: Jitter,
    /// libcluster's format is read and sent too.
    legacy: bool,
    /// Stands in for the sequence number libcluster heartbeats lack: grows with each
    /// one accepted, so they are never taken for replays (the format has no replay
    /// protection to offer).
    legacy_sequence: u64,
}

impl Engine {
    /// A new engine whose first heartbeat is due at `now`. `incarnation` must grow
    /// across restarts of the same node (the driver uses the wall clock in µs).
    pub fn new(
        config: Config,
        now: Instant,
        incarnation: u64,
        seed: u64,
    ) -> Result<Self, NameError> {
        name::validate(config.node_name.as_bytes())?;
        let interval = config.heartbeat_interval.max(Duration::from_millis(1));
        let limiter = (!config.keys.is_signing())
            .then(|| NewPeerLimiter::new(config.new_peer_rate, config.new_peer_burst));
        Ok(Engine {
            name: config.node_name,
            keys: config.keys,
            interval,
            incarnation,
            sequence: 0,
            started: now,
            next_heartbeat: now,
            burst_gap: (JOIN_BURST_FIRST_GAP < interval).then_some(JOIN_BURST_FIRST_GAP),
            reply_at: None,
            peers: PeerTable::new(
                Timing {
                    lost_after: config.lost_after,
                    forget_after: config.forget_after.max(config.lost_after),
                    heard_gap: interval / 2,
                },
                config.max_peers,
            ),
            limiter,
            stats: Stats::default(),
            jitter: Jitter(seed),
            legacy: config.compat_libcluster,
            legacy_sequence: 0,
        })
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
        now: Instant,
    ) -> Option<PeerEvent> {
        self.handle_datagram_verdict(data, from, now).ok().flatten()
    }

    /// As `handle_datagram`, also telling why a datagram was dropped (for tools).
    pub fn handle_datagram_verdict(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        self.stats.received += 1;
        let reason = match self.accept(data, from, now) {
            Ok(event) => return Ok(event),
            Err(reason) => reason,
        };
        self.stats.dropped[reason.index()] += 1;
        Err(reason)
    }

    fn accept(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        if self.legacy && !data.starts_with(&wire::MAGIC) {
            return self.accept_legacy(data, from, now);
        }
        let hb = wire::decode(data, &self.keys)?;
        if hb.name == self.name {
            return Err(if hb.incarnation == self.incarnation {
                DropReason::OwnPacket
            } else {
                DropReason::NameConflict
            });
        }
        if let Some(limiter) = &mut self.limiter {
            if !hb.leaving && !self.peers.contains(hb.name) && !limiter.admit(from.ip(), now) {
                return Err(DropReason::RateLimited);
            }
        }
        match self.peers.observe(&hb, from, now) {
            Err(reason) => Err(reason),
            Ok(mut event) => {
                if let Some(e) = &mut event {
                    e.lead = self.leads(hb.newcomer || hb.joining, hb.name, now);
                }
                self.stats.accepted += 1;
                // One answer covers every joining packet until it leaves; a newcomer's
                // burst gets a few (see peers::MAX_ANSWERS), not one per packet.
                if hb.joining
                    && !hb.leaving
                    && self.reply_at.is_none()
                    && self.peers.take_answer(hb.name)
                {
                    self.reply_at = Some(now + self.jitter.upto(self.reply_window()));
                }
                if event.is_some() {
                    self.stats.events += 1;
                }
                Ok(event)
            }
        }
    }

    /// A libcluster Gossip heartbeat: plaintext without a secret, encrypted with one.
    fn accept_legacy(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        let name = if self.keys.is_signing() {
            compat::decode_encrypted(data, self.keys.legacy_keys())?
        } else {
            compat::decode_plain(data)?.to_owned()
        };
        if name == self.name {
            return Err(DropReason::OwnPacket);
        }
        // A node that also sends native heartbeats is known by those, which carry its
        // incarnation and liveness: its libcluster heartbeats add nothing.
        if self.peers.incarnation(&name).is_some_and(|i| i > 0) {
            self.stats.accepted += 1;
            return Ok(None);
        }
        if let Some(limiter) = &mut self.limiter {
            if !self.peers.contains(&name) && !limiter.admit(from.ip(), now) {
                return Err(DropReason::RateLimited);
            }
        }
        self.legacy_sequence += 1;
        let hb = wire::Heartbeat {
            name: &name,
            incarnation: 0,
            sequence: self.legacy_sequence,
            timestamp_ms: 0,
            leaving: false,
            joining: false,
            newcomer: false,
        };
        let mut event = self.peers.observe(&hb, from, now)?;
        self.stats.accepted += 1;
        if let Some(e) = &mut event {
            // A libcluster node connects whenever it hears us: no tie-break to wait for.
            e.lead = true;
            self.stats.events += 1;
        }
        Ok(event)
    }

    /// The libcluster Gossip heartbeat to send beside each native one, when this
    /// engine speaks that format: encrypted under the first secret if there is one,
    /// with an IV derived by HMAC from this incarnation and a counter (unpredictable
    /// without the secret, never repeated).
    pub fn legacy_packet(&mut self) -> Option<Vec<u8>> {
        if !self.legacy {
            return None;
        }
        let Some(key) = self.keys.legacy_keys().first() else {
            return Some(compat::encode_plain(&self.name));
        };
        self.sequence += 1;
        let mut input = b"native_gossip legacy iv".to_vec();
        input.extend_from_slice(&self.incarnation.to_be_bytes());
        input.extend_from_slice(&self.sequence.to_be_bytes());
        let mac = self
            .keys
            .sign(&input)
            .expect("a key implies a signing secret");
        let iv: [u8; 16] = mac[..16].try_into().expect("16 of 32 bytes");
        Some(compat::encode_encrypted(&self.name, key, &iv))
    }

    /// Whether this node should connect to a peer at once when it hears it, or give the
    /// peer the first go: two connects at once between the same pair cost two handshakes
    /// and net_kernel keeps one. A node that is not new leads towards one that is (it heard
    /// the newcomer's first heartbeat, while the newcomer only hears the answers);
    /// otherwise the smaller name leads. Both sides reach the same answer as long as they
    /// agree on who is new, which is what the NEWCOMER flag tells (on answers too).
    fn leads(&self, peer_new: bool, peer_name: &str, now: Instant) -> bool {
        let new = self.newcomer(now);
        if peer_new != new {
            peer_new
        } else {
            self.name.as_str() < peer_name
        }
    }

    /// How long answers to a newcomer are spread over: every member answers, and each
    /// answer is multicast to all members, so a larger group spreads them wider (4 ms a
    /// peer beyond the first 20 ms, at most a quarter interval). The newcomer's
    /// connections do not wait for answers: its peers connect as soon as they hear it.
    fn reply_window(&self) -> Duration {
        let per_peer = REPLY_WINDOW_PER_PEER * self.peers.len().min(100_000) as u32;
        REPLY_WINDOW.max(per_peer).min(self.interval / 4)
    }

    /// Within one interval of the start (or of a rejoin): what NEWCOMER says.
    fn newcomer(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) < self.interval
    }

    /// Moves silent peers along (lost, forgotten), appending the events to `out`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<PeerEvent>) {
        let before = out.len();
        self.peers.sweep(now, out);
        self.stats.events += (out.len() - before) as u64;
    }

    /// The earliest instant at which `poll_transmit` or `handle_timeout` has work.
    pub fn next_deadline(&self) -> Instant {
        let mut t = self.next_heartbeat;
        if let Some(r) = self.reply_at {
            t = t.min(r);
        }
        if let Some(s) = self.peers.next_sweep() {
            t = t.min(s);
        }
        t
    }

    /// Starts announcing as a newcomer again: a heartbeat now and a joining burst. For a
    /// node that has just (re)joined the group, so peers answer it at once.
    pub fn restart_burst(&mut self, now: Instant) {
        self.started = now;
        self.next_heartbeat = now;
        self.burst_gap = (JOIN_BURST_FIRST_GAP < self.interval).then_some(JOIN_BURST_FIRST_GAP);
    }

    /// Makes a heartbeat due now (the `announce` command).
    pub fn announce(&mut self, now: Instant) {
        self.reply_at = Some(now);
    }

    /// The heartbeat to send now, if one is due. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, wall_ms: u64) -> Option<Vec<u8>> {
        let regular = self.next_heartbeat <= now;
        let reply = self.reply_at.is_some_and(|r| r <= now);
        if !regular && !reply {
            return None;
        }
        // Only scheduled burst heartbeats ask for answers; an answer (or an announce)
        // never does, so two joining nodes cannot keep answering each other.
        let newcomer = self.newcomer(now);
        let joining = regular && newcomer;
        if regular {
            self.next_heartbeat = now
                + match self.burst_gap {
                    Some(gap) if now.duration_since(self.started) < self.interval => {
                        let next = gap * 2;
                        self.burst_gap = (now + gap < self.started + self.interval).then_some(next);
                        gap
                    }
                    _ => {
                        self.burst_gap = None;
                        self.interval * 3 / 4 + self.jitter.upto(self.interval / 2)
                    }
                };
        }
        // Any heartbeat answers a pending reply.
        self.reply_at = None;
        Some(self.encode(false, joining, newcomer, wall_ms))
    }

    /// A heartbeat outside the schedule for one peer (an answer by unicast): it neither
    /// asks for answers nor moves the schedule.
    pub fn direct_packet(&mut self, now: Instant, wall_ms: u64) -> Vec<u8> {
        let newcomer = self.newcomer(now);
        self.encode(false, false, newcomer, wall_ms)
    }

    /// The goodbye heartbeat, sent when the topology stops cleanly.
    pub fn leave_packet(&mut self, wall_ms: u64) -> Vec<u8> {
        self.encode(true, false, false, wall_ms)
    }

    fn encode(&mut self, leaving: bool, joining: bool, newcomer: bool, wall_ms: u64) -> Vec<u8> {
        self.sequence += 1;
        wire::encode(
            &Outgoing {
                name: &self.name,
                incarnation: self.incarnation,
                sequence: self.sequence,
                timestamp_ms: wall_ms,
                leaving,
                joining,
                newcomer,
            },
            &self.keys,
        )
        .expect("own name validated in Engine::new")
    }

    /// Records the outcome of sending one heartbeat.
    pub fn record_send(&mut self, ok: bool) {
        if ok {
            self.stats.sent += 1;
        } else {
            self.stats.send_errors += 1;
        }
    }

    pub fn set_connected(&mut self, name: &str, connected: bool, now: Instant) -> bool {
        self.peers.set_connected(name, connected, now)
    }

    pub fn members(&self, now: Instant, wall_now_ms: u64) -> Vec<Member> {
        self.peers.members(now, wall_now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::EventKind;
    use crate::wire::{decode, FLAG_JOINING, FLAG_LEAVING, FLAG_NEWCOMER};

    const MS: Duration = Duration::from_millis(1);

    fn config(name: &str, secret: Option<&[u8]>) -> Config {
        Config {
            node_name: name.to_owned(),
            keys: secret.map_or(Keyring::none(), |s| Keyring::new(vec![s.to_vec()])),
            heartbeat_interval: 1000 * MS,
            lost_after: 3000 * MS,
            forget_after: 10_000 * MS,
            max_peers: 100,
            new_peer_rate: 5,
            new_peer_burst: 10,
            compat_libcluster: false,
        }
    }

    fn from() -> SocketAddr {
        "198.51.100.9:45892".parse().unwrap()
    }

    /// Runs an engine alone from `t0` to `t0 + span`, returning (offset ms, flags) sent.
    fn schedule(engine: &mut Engine, t0: Instant, span: Duration) -> Vec<(u128, u8)> {
        let mut sent = Vec::new();
        let mut now = t0;
        while now <= t0 + span {
            while let Some(p) = engine.poll_transmit(now, 0) {
                sent.push((now.duration_since(t0).as_millis(), p[5]));
            }
            now = engine.next_deadline().max(now + MS);
        }
        sent
    }

    #[test]
    fn first_heartbeat_at_once_then_burst_then_jittered_interval() {
        let t0 = Instant::now();
        let mut e = Engine::new(config("a@h", None), t0, 1, 7).unwrap();
        let sent = schedule(&mut e, t0, 10_000 * MS);
        let times: Vec<u128> = sent.iter().map(|s| s.0).collect();
        // Six burst heartbeats within the first (1 s) interval: a newcomer under 30 %
        // loss is heard by a given peer within 140 ms with probability 1 - 0.3^4 > 99 %.
        // The burst's last gap (640 ms) ends it; then the jittered interval.
        assert_eq!(&times[..7], &[0, 20, 60, 140, 300, 620, 1260]);
        assert!(sent[..6].iter().all(|s| s.1 & FLAG_JOINING != 0));
        assert!(sent[6..].iter().all(|s| s.1 & FLAG_JOINING == 0));
        for w in times[6..].windows(2) {
            let gap = w[1] - w[0];
            assert!((750..=1250).contains(&gap), "gap {gap}");
        }
        assert!(e.next_deadline() > t0 + 10_000 * MS);
    }

    #[test]
    fn two_engines_find_each_other_and_a_joiner_gets_an_answer() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", Some(b"k")), t0, 1, 1).unwrap();
        let late = t0 + 5000 * MS;
        let mut b = Engine::new(config("b@h", Some(b"k")), late, 2, 2).unwrap();
        // a runs alone for a while.
        schedule(&mut a, t0, 4900 * MS);
        // b's first heartbeat reaches a.
        let hello = b.poll_transmit(late, 0).unwrap();
        let ev = a.handle_datagram(&hello, from(), late).unwrap();
        assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Discovered, "b@h"));
        // a answers within REPLY_WINDOW although its regular heartbeat is far away.
        let answer_at = a.next_deadline();
        assert!(answer_at <= late + REPLY_WINDOW);
        let answer = a.poll_transmit(answer_at, 0).unwrap();
        assert_eq!(answer[5] & FLAG_JOINING, 0);
        let ev = b.handle_datagram(&answer, from(), answer_at).unwrap();
        assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Discovered, "a@h"));
        // b's own joining burst does not make a answer more than once per joining packet.
        assert!(a.poll_transmit(answer_at, 0).is_none());
        assert_eq!(a.stats().accepted, 1);
        assert_eq!(b.stats().accepted, 1);
    }

    #[test]
    fn a_newcomers_burst_gets_at_most_three_answers() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
        schedule(&mut a, t0, 4900 * MS);
        let late = t0 + 5000 * MS;
        let mut b = Engine::new(config("b@h", None), late, 2, 2).unwrap();
        let mut answers = 0;
        let mut now = late;
        while now < late + 1500 * MS {
            while let Some(p) = b.poll_transmit(now, 0) {
                a.handle_datagram(&p, from(), now);
            }
            while let Some(p) = a.poll_transmit(now, 0) {
                if now < late + 1500 * MS && p[5] & FLAG_JOINING == 0 {
                    answers += 1;
                }
            }
            now = b.next_deadline().min(a.next_deadline()).max(now + MS);
        }
        // Six joining packets in the burst, three answers (and a's own regular
        // heartbeat, at most one, in this window).
        assert!((3..=4).contains(&answers), "{answers} answers");
    }

    #[test]
    fn exactly_one_side_of_a_pair_leads_the_connect() {
        let t0 = Instant::now();
        // A running node leads towards a newcomer, whatever the names.
        let mut z = Engine::new(config("z@h", None), t0, 1, 1).unwrap();
        schedule(&mut z, t0, 4900 * MS);
        let late = t0 + 5000 * MS;
        let mut b = Engine::new(config("b@h", None), late, 2, 2).unwrap();
        let hello = b.poll_transmit(late, 0).unwrap();
        assert!(z.handle_datagram(&hello, from(), late).unwrap().lead);
        let answer_at = z.next_deadline();
        let answer = z.poll_transmit(answer_at, 0).unwrap();
        assert!(!b.handle_datagram(&answer, from(), answer_at).unwrap().lead);

        // Two newcomers: the smaller name leads, on both sides, also when one hears the
        // other first through an answer (which does not ask for answers, so carries
        // NEWCOMER without JOINING).
        let mut a = Engine::new(config("a@h", None), late, 3, 3).unwrap();
        schedule(&mut a, late, 200 * MS);
        let later = late + 210 * MS;
        let mut c = Engine::new(config("c@h", None), later, 4, 4).unwrap();
        let from_c = c.poll_transmit(later, 0).unwrap();
        assert!(a.handle_datagram(&from_c, from(), later).unwrap().lead);
        let answer_at = a.next_deadline();
        let answer = a.poll_transmit(answer_at, 0).unwrap();
        assert_eq!(answer[5] & (FLAG_JOINING | FLAG_NEWCOMER), FLAG_NEWCOMER);
        assert!(!c.handle_datagram(&answer, from(), answer_at).unwrap().lead);

        // Two settled nodes that meet (a healed partition): the smaller name leads.
        let t1 = late + 10_000 * MS;
        let mut y = Engine::new(config("y@h", None), late, 5, 5).unwrap();
        schedule(&mut y, late, 9000 * MS);
        schedule(&mut z, late, 9000 * MS);
        let from_y = y.poll_transmit(y.next_deadline().max(t1), 0).unwrap();
        let from_z = z.poll_transmit(z.next_deadline().max(t1), 0).unwrap();
        let at = t1 + 2000 * MS;
        let heard_z = y.handle_datagram(&from_z, from(), at).unwrap();
        let heard_y = z.handle_datagram(&from_y, from(), at).unwrap();
        assert_eq!(heard_z.kind, EventKind::Discovered);
        assert!(heard_z.lead);
        assert!(!heard_y.lead);
    }

    #[test]
    fn nodes_starting_together_do_not_answer_each_other_forever() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", None), t0, 1, 11).unwrap();
        let mut b = Engine::new(config("b@h", None), t0 + 3 * MS, 2, 22).unwrap();
        let (mut sent_a, mut sent_b) = (0, 0);
        let mut now = t0;
        // Zero-latency network: everything sent is received at once by the other.
        while now < t0 + 3000 * MS {
            while let Some(p) = a.poll_transmit(now, 0) {
                sent_a += 1;
                b.handle_datagram(&p, from(), now);
            }
            if now >= t0 + 3 * MS {
                while let Some(p) = b.poll_transmit(now, 0) {
                    sent_b += 1;
                    a.handle_datagram(&p, from(), now);
                }
            }
            now = a.next_deadline().min(b.next_deadline()).max(now + MS);
        }
        // Per node: 6 burst heartbeats, at most one answer to each of the other's 6,
        // and up to three regular ones in the rest of the 3 s.
        assert!(
            sent_a <= 15 && sent_b <= 15,
            "a sent {sent_a}, b sent {sent_b}"
        );
        assert_eq!(a.peer_count(), 1);
        assert_eq!(b.peer_count(), 1);
    }

    #[test]
    fn own_packets_and_name_conflicts_are_counted_not_reported() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
        let own = a.poll_transmit(t0, 0).unwrap();
        assert_eq!(a.handle_datagram(&own, from(), t0), None);
        let mut imposter = Engine::new(config("a@h", None), t0, 99, 1).unwrap();
        let other = imposter.poll_transmit(t0, 0).unwrap();
        assert_eq!(a.handle_datagram(&other, from(), t0), None);
        assert_eq!(a.stats().dropped(DropReason::OwnPacket), 1);
        assert_eq!(a.stats().dropped(DropReason::NameConflict), 1);
        assert_eq!(a.stats().received, 2);
        assert_eq!(a.stats().accepted, 0);
    }

    #[test]
    fn every_rejection_is_counted_and_totals_add_up() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", Some(b"k")), t0, 1, 1).unwrap();
        let mut b = Engine::new(config("b@h", Some(b"k")), t0, 1, 1).unwrap();
        let mut stranger = Engine::new(config("c@h", Some(b"other")), t0, 1, 1).unwrap();
        let good = b.poll_transmit(t0, 0).unwrap();
        let foreign = stranger.poll_transmit(t0, 0).unwrap();
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0; 2000],
            b"heartbeat::garbage-from-libcluster-gossip-..".to_vec(),
            foreign,
            good.clone(),
            good,
        ];
        for p in &inputs {
            a.handle_datagram(p, from(), t0);
        }
        let s = a.stats();
        assert_eq!(s.received, 6);
        assert_eq!(s.accepted, 1);
        assert_eq!(s.dropped(DropReason::TooShort), 1);
        assert_eq!(s.dropped(DropReason::TooLong), 1);
        assert_eq!(s.dropped(DropReason::BadMagic), 1);
        assert_eq!(s.dropped(DropReason::BadSignature), 1);
        assert_eq!(s.dropped(DropReason::Replay), 1);
        assert_eq!(s.received, s.accepted + s.dropped_total());
    }

    #[test]
    fn announce_sends_now_and_leave_is_flagged() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
        a.poll_transmit(t0, 0).unwrap();
        let later = t0 + 10 * MS;
        assert!(a.poll_transmit(later, 0).is_none());
        a.announce(later);
        assert_eq!(a.next_deadline(), later);
        assert!(a.poll_transmit(later, 0).is_some());
        let bye = a.leave_packet(0);
        assert_eq!(bye[5] & FLAG_LEAVING, FLAG_LEAVING);
        let hb = decode(&bye, &Keyring::none()).unwrap();
        assert_eq!(hb.sequence, 3);
    }

    #[test]
    fn lost_peer_wakes_the_engine_at_the_right_time() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
        let mut b = Engine::new(config("b@h", None), t0, 1, 1).unwrap();
        let hb = b.poll_transmit(t0, 0).unwrap();
        a.handle_datagram(&hb, from(), t0);
        let mut out = Vec::new();
        // Drain a's own heartbeats for 5 s; the lost deadline must come up on its own.
        let mut now = t0;
        while now < t0 + 5000 * MS {
            now = a.next_deadline().max(now);
            while a.poll_transmit(now, 0).is_some() {}
            a.handle_timeout(now, &mut out);
            if !out.is_empty() {
                break;
            }
            now += MS;
        }
        assert_eq!(out[0].kind, EventKind::Lost);
        assert_eq!(now, t0 + 3000 * MS);
    }

    #[test]
    fn without_a_secret_new_names_are_rate_limited_per_source_known_ones_never() {
        let t0 = Instant::now();
        let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
        let flooder: SocketAddr = "198.51.100.66:45892".parse().unwrap();
        let mut events = 0;
        for i in 0..1000 {
            let name = format!("fake{i}@h");
            let mut e = Engine::new(config(&name, None), t0, 1, 1).unwrap();
            let p = e.poll_transmit(t0, 0).unwrap();
            events += a.handle_datagram(&p, flooder, t0).is_some() as usize;
        }
        assert_eq!(events, 10, "the burst");
        assert_eq!(a.stats().dropped(DropReason::RateLimited), 990);
        // A legitimate node elsewhere is admitted at once, and its later heartbeats
        // spend no tokens.
        let mut b = Engine::new(config("b@h", None), t0, 1, 1).unwrap();
        for _ in 0..50 {
            let p = b.poll_transmit(t0 + 2000 * MS, 0);
            b.announce(t0 + 2000 * MS);
            if let Some(p) = p {
                a.handle_datagram(&p, from(), t0 + 2000 * MS);
            }
        }
        assert_eq!(a.peer_count(), 11);
        assert_eq!(a.stats().dropped(DropReason::RateLimited), 990);
        // With a secret there is no such limit (names are authenticated).
        let mut s = Engine::new(config("s@h", Some(b"k")), t0, 1, 1).unwrap();
        for i in 0..50 {
            let name = format!("real{i}@h");
            let mut e = Engine::new(config(&name, Some(b"k")), t0, 1, 1).unwrap();
            let p = e.poll_transmit(t0, 0).unwrap();
            s.handle_datagram(&p, flooder, t0);
        }
        assert_eq!(s.peer_count(), 50);
    }

    #[test]
    fn invalid_own_name_is_refused() {
        assert!(Engine::new(config("no host", None), Instant::now(), 1, 1).is_err());
    }
}
