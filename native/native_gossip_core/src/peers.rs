//! The peer table: who we have heard, which incarnation and sequence, and what the
//! BEAM must be told about them.
//!
//! It is a pure function of (accepted heartbeat, time, state). It never forwards one
//! message per packet: a peer produces an event when it appears, changes incarnation,
//! comes back from silence, leaves, goes quiet or is forgotten, and a not-yet-connected
//! peer is reported again at most every `heard_gap`, or later when the owner says so
//! (`hold`): the owner decides when to try a peer again (its connect backoff), the
//! table only stays quiet until then, so a peer that cannot be connected costs ever
//! fewer messages.
//!
//! Bounded under any traffic:
//! - without a secret, state changes of one peer (new incarnation, leaving, back from
//!   silence) are reported `CHANGE_BURST` at once, then one per `change_gap`; changes
//!   in between are applied at once and reported, coalesced to the latest, when the
//!   budget allows (with a secret only a holder of it can change a peer's state, and
//!   a node restarted twice in a second must be seen at once);
//! - a full table makes room for a new name by evicting the peer admitted longest ago
//!   among those never connected (reported `Forgotten`); peers that connected keep
//!   their place;
//! - without a secret (`authenticated` false) nothing in a heartbeat can be trusted,
//!   so ordering (incarnation, sequence) is only kept per source address: a heartbeat
//!   from another address than the peer's last one is taken as it is, and a goodbye
//!   from another address is refused. Forged packets from another host can then not
//!   freeze a peer: its next genuine heartbeat puts it back (a forged incarnation from
//!   the future lasts until then), and it cannot be made to leave.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::reason::DropReason;
use crate::wire::{self, Heartbeat};

/// What a peer is doing, as far as heartbeats tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Heard within `lost_after`.
    Alive,
    /// Silent for longer than `lost_after`.
    Lost,
    /// Announced that this incarnation is leaving.
    Left,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Alive => "alive",
            PeerState::Lost => "lost",
            PeerState::Left => "left",
        }
    }
}

/// What the owner of the topology is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// First heard, or heard again after `Lost`, or a new incarnation.
    Discovered,
    /// Heard again while not marked connected (so the owner retries).
    Heard,
    /// The peer announced it is leaving.
    Left,
    /// No heartbeat for `lost_after`.
    Lost,
    /// Removed from the table after `forget_after` without a heartbeat.
    Forgotten,
    /// Same incarnation, other tags (the peer changed them at run time).
    TagsChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Discovered => "discovered",
            EventKind::Heard => "heard",
            EventKind::Left => "left",
            EventKind::Lost => "lost",
            EventKind::Forgotten => "forgotten",
            EventKind::TagsChanged => "tags_changed",
        }
    }
}

/// One message for the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvent {
    pub kind: EventKind,
    pub name: String,
    pub addr: SocketAddr,
    pub incarnation: u64,
    /// For `Discovered` and `Heard`: this node should connect at once, rather than give
    /// the peer the first go (see `Engine`). Both sides of a pair agree on it.
    pub lead: bool,
    /// The peer's tags as it last sent them: tag records (see `wire::tags`).
    pub tags: Vec<u8>,
    /// The peer's distribution listen port as it last said (0: it does not say).
    pub dist_port: u16,
    /// `addr` is known to be the peer's: its heartbeat was authenticated with the
    /// secret and sent from an address it lists as its own, or (no secret) a
    /// distribution connection with the peer proved that address (`pin`). Where a
    /// node connects may follow such an address; an unproven one is only a hint.
    pub proven: bool,
}

/// A row of `members`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub addr: SocketAddr,
    pub incarnation: u64,
    pub state: PeerState,
    pub connected: bool,
    /// Wall-clock time of the last accepted heartbeat, ms since the Unix epoch.
    pub last_seen_ms: u64,
    /// Tag records (see `wire::tags`).
    pub tags: Vec<u8>,
    /// Distribution listen port (0: unknown).
    pub dist_port: u16,
}

#[derive(Debug, Clone)]
struct Peer {
    addr: SocketAddr,
    incarnation: u64,
    sequence: u64,
    last_seen: Instant,
    last_event: Instant,
    /// No `Heard` report before this instant (the owner's backoff; see `hold`).
    held_until: Option<Instant>,
    state: PeerState,
    connected: bool,
    /// Answers sent to this incarnation's joining burst (see `take_answer`).
    answers: u8,
    /// When this node last took an answer for the peer's burst.
    answered_at: Option<Instant>,
    /// While the peer has never been connected: its admission number, its key in
    /// `PeerTable::unproven` (the order of eviction).
    admitted: Option<u64>,
    /// State changes this peer may still report now.
    changes: Budget,
    /// A state change applied but not reported yet (the budget was spent).
    pending: Option<EventKind>,
    /// The tag records of its last heartbeat (at most `wire::MAX_TAGS` bytes each
    /// time: a longer options block is for other record types and is not kept).
    tags: Box<[u8]>,
    /// Its distribution listen port, as its last heartbeat said (0: none).
    dist_port: u16,
    /// Without a secret: the address a distribution connection proved (see `pin`);
    /// heartbeats of this name from any other address are dropped until the peer is
    /// forgotten.
    pinned: Option<std::net::IpAddr>,
}

/// Most answers a peer's joining burst gets from this node: the newcomer needs one to
/// get through, and its burst has seven packets; three answers survive 30 % loss with
/// 97 % probability, while answering all seven, multicast to every member, would
/// multiply the traffic of a cluster that starts at once.
pub const MAX_ANSWERS: u8 = 3;

/// Least time between two answers to one peer's joining burst. The first answer goes
/// at once; the next ones (for loss) wait until the newcomer's connections are made:
/// every answer is multicast to every member, and in a running cluster of 16, answers
/// to each of a newcomer's first three packets (sent 0, 20 and 60 ms after its start)
/// made every member take about 40 datagrams in the ~40 ms its connections take, on
/// the CPU those connections need (bench/join_n.exs, DIAG=1).
pub const ANSWER_SPACING: Duration = Duration::from_millis(100);

/// State changes of one peer reported at once (a node that leaves, restarts and is
/// lost needs three); after that, one per `Timing::change_gap`.
pub const CHANGE_BURST: u32 = 3;

/// A token bucket of state-change reports: `CHANGE_BURST` tokens, one more per gap.
#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: u32,
    /// When the last token was added (or the bucket found full).
    since: Instant,
}

impl Budget {
    fn full(now: Instant) -> Self {
        Budget {
            tokens: CHANGE_BURST,
            since: now,
        }
    }

    fn refill(&mut self, now: Instant, gap: Duration) {
        let gap_ns = gap.as_nanos().max(1);
        let periods = now.saturating_duration_since(self.since).as_nanos() / gap_ns;
        if self.tokens as u128 + periods >= CHANGE_BURST as u128 {
            *self = Budget::full(now);
        } else if periods > 0 {
            self.tokens += periods as u32;
            self.since += gap * periods as u32;
        }
    }

    fn take(&mut self, now: Instant, gap: Duration) -> bool {
        self.refill(now, gap);
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }

    /// When the next token comes (only meaningful when there is none).
    fn next_token(&self, gap: Duration) -> Instant {
        self.since + gap
    }
}

/// Timing of the table.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lost_after: Duration,
    pub forget_after: Duration,
    pub heard_gap: Duration,
    /// After the burst, one state change per peer is reported per `change_gap`.
    pub change_gap: Duration,
}

#[derive(Debug)]
pub struct PeerTable {
    peers: HashMap<String, Peer>,
    timing: Timing,
    max_peers: usize,
    /// Heartbeats are authenticated (a secret): (incarnation, sequence) order is kept
    /// whatever address a heartbeat comes from.
    authenticated: bool,
    /// Peers never connected, by admission number: evicted oldest first when the
    /// table is full.
    unproven: BTreeMap<u64, String>,
    next_admission: u64,
    /// Events decided outside `sweep` (evictions), handed out by the next `sweep`.
    spilled: Vec<PeerEvent>,
    /// No peer changes state before this instant (a lower bound kept by `sweep`).
    next_sweep: Option<Instant>,
}

impl PeerTable {
    pub fn new(timing: Timing, max_peers: usize, authenticated: bool) -> Self {
        PeerTable {
            peers: HashMap::new(),
            timing,
            max_peers,
            authenticated,
            unproven: BTreeMap::new(),
            next_admission: 0,
            spilled: Vec::new(),
            next_sweep: None,
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether a joining heartbeat of `name` gets an answer: true for the first
    /// `MAX_ANSWERS` of its incarnation, `ANSWER_SPACING` apart.
    pub fn take_answer(&mut self, name: &str, now: Instant) -> bool {
        match self.peers.get_mut(name) {
            Some(p)
                if p.answers < MAX_ANSWERS
                    && p.answered_at
                        .is_none_or(|at| now.saturating_duration_since(at) >= ANSWER_SPACING) =>
            {
                p.answers += 1;
                p.answered_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// The incarnation last accepted from `name`, if it is in the table.
    pub fn incarnation(&self, name: &str) -> Option<u64> {
        self.peers.get(name).map(|p| p.incarnation)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.peers.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// When `sweep` next has something to do.
    pub fn next_sweep(&self) -> Option<Instant> {
        self.next_sweep
    }

    fn arm(&mut self, at: Instant) {
        self.next_sweep = Some(self.next_sweep.map_or(at, |t| t.min(at)));
    }

    /// Applies a decoded (with a secret: authenticated) heartbeat. Returns the event to
    /// deliver, if any, or the reason the packet is dropped (replay, table full).
    pub fn observe(
        &mut self,
        hb: &Heartbeat<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        let authenticated = self.authenticated;
        let event = |kind, tags: &[u8], pinned: bool| {
            Some(PeerEvent {
                kind,
                name: hb.name.to_owned(),
                addr: from,
                incarnation: hb.incarnation,
                lead: false,
                tags: tags.to_vec(),
                dist_port: hb.dist_port(),
                proven: authenticated || pinned,
            })
        };
        let Timing {
            lost_after,
            change_gap,
            ..
        } = self.timing;
        if !self.peers.contains_key(hb.name) {
            if hb.leaving {
                // A goodbye from someone we never knew: nothing to tell or remember.
                return Ok(None);
            }
            if self.peers.len() >= self.max_peers {
                self.evict(now)?;
            }
            let admitted = self.next_admission;
            self.next_admission += 1;
            self.unproven.insert(admitted, hb.name.to_owned());
            self.peers.insert(
                hb.name.to_owned(),
                Peer {
                    addr: from,
                    incarnation: hb.incarnation,
                    sequence: hb.sequence,
                    last_seen: now,
                    last_event: now,
                    held_until: None,
                    state: PeerState::Alive,
                    connected: false,
                    answers: 0,
                    answered_at: None,
                    admitted: Some(admitted),
                    changes: Budget::full(now),
                    pending: None,
                    tags: wire::tag_records(hb.options).into(),
                    dist_port: hb.dist_port(),
                    pinned: None,
                },
            );
            self.arm(now + lost_after);
            let tags = &self.peers[hb.name].tags;
            return Ok(event(EventKind::Discovered, tags, false));
        }
        let peer = self.peers.get_mut(hb.name).expect("checked above");
        if !self.authenticated && peer.pinned.is_some_and(|ip| ip != from.ip()) {
            // A connection proved where this peer is: nothing from elsewhere moves it.
            return Err(DropReason::Unproven);
        }
        // Without a secret, order means something only between packets from one address.
        let moved = !self.authenticated && from.ip() != peer.addr.ip();
        if !moved && (hb.incarnation, hb.sequence) <= (peer.incarnation, peer.sequence) {
            return Err(DropReason::Replay);
        }
        if moved && hb.leaving {
            // A node says goodbye from where its heartbeats come from.
            return Err(DropReason::ForeignGoodbye);
        }
        let new_incarnation = hb.incarnation != peer.incarnation;
        let previous = peer.state;
        let tags_changed = !wire::same_tags(&peer.tags, hb.options);
        peer.dist_port = hb.dist_port();
        if tags_changed {
            peer.tags = wire::tag_records(hb.options).into();
        }
        peer.addr = from;
        peer.incarnation = hb.incarnation;
        peer.sequence = hb.sequence;
        peer.last_seen = now;
        let kind = if hb.leaving {
            peer.state = PeerState::Left;
            (previous != PeerState::Left || new_incarnation).then_some(EventKind::Left)
        } else if new_incarnation
            || previous == PeerState::Lost
            || (previous == PeerState::Left && moved)
        {
            // New, back from silence, or (no secret) alive after all from another address
            // than a goodbye came from.
            peer.state = PeerState::Alive;
            peer.connected = false;
            peer.held_until = None;
            peer.answers = 0;
            peer.answered_at = None;
            Some(EventKind::Discovered)
        } else if previous == PeerState::Left {
            // Same incarnation after its goodbye: a late packet. Stay away from it.
            None
        } else if tags_changed {
            Some(EventKind::TagsChanged)
        } else if !peer.connected
            && peer.pending.is_none()
            && now.duration_since(peer.last_event) >= self.timing.heard_gap
            && peer.held_until.is_none_or(|t| now >= t)
        {
            Some(EventKind::Heard)
        } else {
            None
        };
        let kind = match kind {
            // With a secret only a node holding it can change its state: no budget.
            Some(EventKind::Heard) | None => kind,
            Some(change) if self.authenticated => Some(change),
            // A state change: reported now if the budget allows, else later (the latest).
            Some(change) if peer.changes.take(now, change_gap) => {
                peer.pending = None;
                Some(change)
            }
            Some(change) => {
                peer.pending = Some(change);
                let at = peer.changes.next_token(change_gap);
                self.arm(at);
                None
            }
        };
        let peer = self.peers.get_mut(hb.name).expect("checked above");
        if kind.is_some() {
            peer.last_event = now;
        }
        let deadline = match peer.state {
            PeerState::Alive => now + lost_after,
            _ => now + self.timing.forget_after,
        };
        let tags = peer.tags.clone();
        let pinned = peer.pinned.is_some();
        self.arm(deadline);
        Ok(kind.and_then(|k| event(k, &tags, pinned)))
    }

    /// Makes room for a new name: removes the peer admitted longest ago among those
    /// never connected (its `Forgotten` goes out with the next `sweep`), or refuses.
    fn evict(&mut self, now: Instant) -> Result<(), DropReason> {
        let (_, name) = self.unproven.pop_first().ok_or(DropReason::PeerTableFull)?;
        if let Some(p) = self.peers.remove(&name) {
            self.spilled.push(PeerEvent {
                kind: EventKind::Forgotten,
                name,
                addr: p.addr,
                incarnation: p.incarnation,
                lead: false,
                tags: Vec::new(),
                dist_port: 0,
                proven: false,
            });
            self.next_sweep = Some(now);
        }
        Ok(())
    }

    /// Marks a peer connected or not (the owner knows; the table only remembers it to
    /// decide whether `Heard` is worth sending). Returns false for an unknown name.
    pub fn set_connected(&mut self, name: &str, connected: bool, now: Instant) -> bool {
        match self.peers.get_mut(name) {
            Some(p) => {
                if connected {
                    if let Some(n) = p.admitted.take() {
                        self.unproven.remove(&n);
                    }
                }
                if p.connected && !connected {
                    // Let the next heartbeat report it at once.
                    p.held_until = None;
                    p.last_event = now.checked_sub(self.timing.heard_gap).unwrap_or(now);
                }
                p.connected = connected;
                true
            }
            None => false,
        }
    }

    /// A distribution connection with `name` runs, to or from `ip`: when that is the
    /// address its heartbeats come from, the address is proven and kept (pinned) until
    /// the peer is forgotten. Without a secret, heartbeats of the name from any other
    /// address are then dropped (`Unproven`), so a forger cannot redirect the node's
    /// next connect, nor spend the peer's state-change budget. (A peer whose
    /// connection uses another address than its heartbeats, as a host with several
    /// interfaces may, is not pinned: its connections do not follow heartbeats.)
    /// Returns whether the address is pinned now.
    pub fn pin(&mut self, name: &str, ip: std::net::IpAddr) -> bool {
        match self.peers.get_mut(name) {
            Some(p) if p.addr.ip() == ip || p.pinned == Some(ip) => {
                p.pinned = Some(ip);
                true
            }
            _ => false,
        }
    }

    /// The address `name` is pinned to (see `pin`).
    pub fn pinned(&self, name: &str) -> Option<std::net::IpAddr> {
        self.peers.get(name).and_then(|p| p.pinned)
    }

    /// Reports a peer that stays unconnected no sooner than `until` (the owner retries
    /// it then, and not before). A new incarnation, a return from silence or a
    /// disconnection lifts the hold. Returns false for an unknown name.
    pub fn hold(&mut self, name: &str, until: Instant) -> bool {
        match self.peers.get_mut(name) {
            Some(p) => {
                p.held_until = Some(until);
                true
            }
            None => false,
        }
    }

    /// Moves silent peers to `Lost` and removes long-silent ones. Cheap to call often:
    /// it scans only once the earliest deadline has passed.
    pub fn sweep(&mut self, now: Instant, out: &mut Vec<PeerEvent>) {
        match self.next_sweep {
            Some(t) if t <= now => {}
            _ => return,
        }
        out.append(&mut self.spilled);
        let Timing {
            lost_after,
            forget_after,
            change_gap,
            ..
        } = self.timing;
        let mut next: Option<Instant> = None;
        let unproven = &mut self.unproven;
        self.peers.retain(|name, p| {
            let silent = now.saturating_duration_since(p.last_seen);
            let mut emit = |kind| {
                out.push(PeerEvent {
                    kind,
                    name: name.clone(),
                    addr: p.addr,
                    incarnation: p.incarnation,
                    lead: false,
                    tags: p.tags.to_vec(),
                    dist_port: p.dist_port,
                    proven: p.pinned.is_some(),
                })
            };
            if silent >= forget_after {
                emit(EventKind::Forgotten);
                if let Some(n) = p.admitted {
                    unproven.remove(&n);
                }
                return false;
            }
            if p.state == PeerState::Alive && silent >= lost_after {
                // Lost supersedes a state change not reported yet.
                p.pending = None;
                p.state = PeerState::Lost;
                emit(EventKind::Lost);
            }
            if let Some(kind) = p.pending {
                if p.changes.take(now, change_gap) {
                    p.pending = None;
                    p.last_event = now;
                    emit(kind);
                } else {
                    let at = p.changes.next_token(change_gap);
                    next = Some(next.map_or(at, |t| t.min(at)));
                }
            }
            let deadline = match p.state {
                PeerState::Alive => p.last_seen + lost_after,
                _ => p.last_seen + forget_after,
            };
            next = Some(next.map_or(deadline, |t| t.min(deadline)));
            true
        });
        self.next_sweep = next;
    }

    /// A snapshot of the table; `wall_now_ms` converts instants to wall-clock times.
    pub fn members(&self, now: Instant, wall_now_ms: u64) -> Vec<Member> {
        let mut rows: Vec<Member> = self
            .peers
            .iter()
            .map(|(name, p)| Member {
                name: name.clone(),
                addr: p.addr,
                incarnation: p.incarnation,
                state: p.state,
                connected: p.connected,
                last_seen_ms: wall_now_ms
                    .saturating_sub(now.saturating_duration_since(p.last_seen).as_millis() as u64),
                tags: p.tags.to_vec(),
                dist_port: p.dist_port,
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn table_of(max_peers: usize, authenticated: bool) -> PeerTable {
        let timing = Timing {
            lost_after: 300 * MS,
            forget_after: 1000 * MS,
            heard_gap: 50 * MS,
            change_gap: 100 * MS,
        };
        PeerTable::new(timing, max_peers, authenticated)
    }

    /// Three peers at most, heartbeats authenticated.
    fn table() -> PeerTable {
        table_of(3, true)
    }

    fn hb(name: &str, incarnation: u64, sequence: u64) -> Heartbeat<'_> {
        Heartbeat {
            name,
            incarnation,
            sequence,
            timestamp_ms: 0,
            leaving: false,
            joining: false,
            newcomer: false,
            options: &[],
        }
    }

    fn addr() -> SocketAddr {
        "198.51.100.2:45892".parse().unwrap()
    }

    fn kind(r: Result<Option<PeerEvent>, DropReason>) -> Result<Option<EventKind>, DropReason> {
        r.map(|e| e.map(|e| e.kind))
    }

    #[test]
    fn discovery_then_quiet_until_heard_gap_while_unconnected() {
        let mut t = table();
        let t0 = Instant::now();
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 1), addr(), t0)),
            Ok(Some(EventKind::Discovered))
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 2), addr(), t0 + 10 * MS)),
            Ok(None)
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 3), addr(), t0 + 60 * MS)),
            Ok(Some(EventKind::Heard))
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 4), addr(), t0 + 70 * MS)),
            Ok(None)
        );
        // Once connected, heartbeats produce nothing.
        assert!(t.set_connected("a@h", true, t0 + 70 * MS));
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 5), addr(), t0 + 200 * MS)),
            Ok(None)
        );
        // Disconnected: the very next heartbeat is reported.
        t.set_connected("a@h", false, t0 + 201 * MS);
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 6), addr(), t0 + 202 * MS)),
            Ok(Some(EventKind::Heard))
        );
        assert!(!t.set_connected("nobody@h", true, t0));
    }

    #[test]
    fn an_unconnected_peer_is_reported_every_heard_gap_until_the_owner_holds_it() {
        let mut t = table();
        let t0 = Instant::now();
        t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
        let mut seq = 1;
        let mut reports = |t: &mut PeerTable, from_ms: u32, to_ms: u32| {
            let mut at = Vec::new();
            for ms in (from_ms..to_ms).step_by(10) {
                seq += 1;
                let now = t0 + ms * MS;
                if let Ok(Some(e)) = t.observe(&hb("a@h", 1, seq), addr(), now) {
                    assert_eq!(e.kind, EventKind::Heard);
                    at.push(ms);
                }
            }
            at
        };
        // Heartbeats every 10 ms, never connected: one report per heard_gap (50 ms).
        assert_eq!(reports(&mut t, 10, 260), [50, 100, 150, 200, 250]);
        // The owner backs off: quiet until the hold ends, then every heard_gap again.
        assert!(t.hold("a@h", t0 + 1000 * MS));
        assert!(!t.hold("nobody@h", t0));
        assert_eq!(reports(&mut t, 260, 1110), [1000, 1050, 1100]);
        // A disconnection lifts the hold: reported at once.
        t.hold("a@h", t0 + 60_000 * MS);
        t.set_connected("a@h", true, t0 + 1110 * MS);
        t.set_connected("a@h", false, t0 + 1110 * MS);
        assert_eq!(reports(&mut t, 1110, 1120), [1110]);
        // So does a new incarnation (reported as discovered).
        t.hold("a@h", t0 + 60_000 * MS);
        let e = t.observe(&hb("a@h", 2, 1), addr(), t0 + 1200 * MS);
        assert_eq!(kind(e), Ok(Some(EventKind::Discovered)));
        assert_eq!(
            kind(t.observe(&hb("a@h", 2, 2), addr(), t0 + 1250 * MS)),
            Ok(Some(EventKind::Heard))
        );
    }

    #[test]
    fn replays_and_old_incarnations_are_dropped() {
        let mut t = table();
        let t0 = Instant::now();
        t.observe(&hb("a@h", 5, 10), addr(), t0).unwrap();
        assert_eq!(
            kind(t.observe(&hb("a@h", 5, 10), addr(), t0)),
            Err(DropReason::Replay)
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 5, 9), addr(), t0)),
            Err(DropReason::Replay)
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 4, 99), addr(), t0)),
            Err(DropReason::Replay)
        );
        // A restarted node: new incarnation, sequence starts over.
        assert_eq!(
            kind(t.observe(&hb("a@h", 6, 1), addr(), t0)),
            Ok(Some(EventKind::Discovered))
        );
    }

    #[test]
    fn leaving_is_reported_once_and_sticks_for_the_incarnation() {
        let mut t = table();
        let t0 = Instant::now();
        t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
        let mut bye = hb("a@h", 1, 2);
        bye.leaving = true;
        assert_eq!(kind(t.observe(&bye, addr(), t0)), Ok(Some(EventKind::Left)));
        bye.sequence = 3;
        assert_eq!(kind(t.observe(&bye, addr(), t0)), Ok(None));
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 4), addr(), t0 + 100 * MS)),
            Ok(None)
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 2, 1), addr(), t0 + 100 * MS)),
            Ok(Some(EventKind::Discovered))
        );
        // A goodbye from a stranger is not remembered.
        let mut stranger = hb("b@h", 1, 1);
        stranger.leaving = true;
        assert_eq!(kind(t.observe(&stranger, addr(), t0)), Ok(None));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn silent_peers_are_lost_then_forgotten_and_rediscovered() {
        let mut t = table();
        let t0 = Instant::now();
        let mut out = Vec::new();
        t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
        t.observe(&hb("b@h", 1, 1), addr(), t0 + 200 * MS).unwrap();
        t.sweep(t0 + 299 * MS, &mut out);
        assert!(out.is_empty());
        assert_eq!(t.next_sweep(), Some(t0 + 300 * MS));
        t.sweep(t0 + 300 * MS, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].kind, out[0].name.as_str()),
            (EventKind::Lost, "a@h")
        );
        assert_eq!(t.next_sweep(), Some(t0 + 500 * MS));
        out.clear();
        // b comes back in time; a is heard again after being lost.
        t.observe(&hb("b@h", 1, 2), addr(), t0 + 450 * MS).unwrap();
        assert_eq!(
            kind(t.observe(&hb("a@h", 1, 2), addr(), t0 + 460 * MS)),
            Ok(Some(EventKind::Discovered))
        );
        t.sweep(t0 + 2000 * MS, &mut out);
        // Both silent past forget_after: forgotten directly (a lost peer is not
        // reported lost again first).
        let mut kinds: Vec<_> = out.iter().map(|e| (e.kind, e.name.as_str())).collect();
        kinds.sort_by_key(|k| k.1);
        assert_eq!(
            kinds,
            [(EventKind::Forgotten, "a@h"), (EventKind::Forgotten, "b@h")]
        );
        assert!(t.is_empty());
        assert_eq!(t.next_sweep(), None);
    }

    fn at(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, last], 45892))
    }

    fn drain(t: &mut PeerTable, now: Instant) -> Vec<(EventKind, String)> {
        let mut out = Vec::new();
        t.sweep(now, &mut out);
        out.into_iter().map(|e| (e.kind, e.name)).collect()
    }

    #[test]
    fn a_full_table_evicts_the_oldest_never_connected_peer_and_keeps_connected_ones() {
        let mut t = table();
        let t0 = Instant::now();
        for n in ["a@h", "b@h", "c@h"] {
            t.observe(&hb(n, 1, 1), addr(), t0).unwrap();
        }
        t.set_connected("a@h", true, t0);
        // Full: the newcomer gets in, in place of b (admitted before c, never connected).
        assert_eq!(
            kind(t.observe(&hb("d@h", 1, 1), addr(), t0 + MS)),
            Ok(Some(EventKind::Discovered))
        );
        assert_eq!(t.len(), 3);
        assert_eq!(
            drain(&mut t, t0 + MS),
            [(EventKind::Forgotten, "b@h".to_owned())]
        );
        assert!(!t.contains("b@h") && t.contains("a@h"));
        // A peer that connected once is not evicted even when disconnected again.
        t.set_connected("c@h", true, t0);
        t.set_connected("c@h", false, t0);
        t.set_connected("d@h", true, t0);
        assert_eq!(
            t.observe(&hb("e@h", 1, 1), addr(), t0),
            Err(DropReason::PeerTableFull)
        );
        // Known peers still get through.
        assert!(t.observe(&hb("a@h", 1, 2), addr(), t0).is_ok());
    }

    #[test]
    fn a_flood_of_incarnations_of_one_name_costs_a_bounded_number_of_events() {
        let mut t = table_of(10, false);
        let t0 = Instant::now();
        t.observe(&hb("a@h", 1, 1), at(2), t0).unwrap();
        // 10,000 packets over 1 s, each a new incarnation, every tenth a goodbye.
        let mut events = 0;
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_micros(100 * i);
            let mut p = hb("a@h", 2 + i, 1);
            p.leaving = i % 10 == 0;
            events += t.observe(&p, at(2), now).unwrap().is_some() as u32;
            events += drain(&mut t, now).len() as u32;
        }
        // CHANGE_BURST at once, then one per change_gap (100 ms): 3 + 10.
        assert!(events <= CHANGE_BURST + 10, "{events} events");
        // When it stops, the latest state is reported within one change_gap.
        let last = t0 + 1000 * MS;
        let reported = drain(&mut t, last + 100 * MS);
        assert_eq!(reported, [(EventKind::Discovered, "a@h".to_owned())]);
        assert!(drain(&mut t, last + 250 * MS).is_empty());
    }

    #[test]
    fn without_a_secret_a_forged_goodbye_from_another_host_lasts_until_the_next_heartbeat() {
        let mut t = table_of(10, false);
        let t0 = Instant::now();
        let genuine = at(2);
        t.observe(&hb("a@h", 5, 10), genuine, t0).unwrap();
        // From another host: the victim's incarnation, the highest sequence, LEAVING.
        let mut forged = hb("a@h", 5, u64::MAX);
        forged.leaving = true;
        assert_eq!(
            kind(t.observe(&forged, at(66), t0 + MS)),
            Err(DropReason::ForeignGoodbye)
        );
        // Even after a forged heartbeat from there moved the peer's address, the
        // genuine peer's next heartbeat brings it back.
        assert_eq!(
            kind(t.observe(&hb("a@h", 5, u64::MAX), at(66), t0 + MS)),
            Ok(None)
        );
        forged.sequence = 1;
        assert_eq!(
            kind(t.observe(&forged, at(66), t0 + MS)),
            Err(DropReason::Replay)
        );
        let mut bye = hb("a@h", 6, 1);
        bye.leaving = true;
        assert_eq!(
            kind(t.observe(&bye, at(66), t0 + MS)),
            Ok(Some(EventKind::Left))
        );
        assert_eq!(
            kind(t.observe(&hb("a@h", 5, 11), genuine, t0 + 2 * MS)),
            Ok(Some(EventKind::Discovered))
        );
        // So it does after a forged incarnation from the future.
        let future = hb("a@h", u64::MAX, u64::MAX);
        assert_eq!(
            kind(t.observe(&future, at(66), t0 + 3 * MS)),
            Ok(Some(EventKind::Discovered))
        );
        let back = t.observe(&hb("a@h", 5, 12), genuine, t0 + 4 * MS);
        assert_eq!(kind(back), Ok(None), "budget spent: reported later");
        // The first change spent a token at 1 ms; the next comes one change_gap later.
        assert!(drain(&mut t, t0 + 100 * MS).is_empty());
        assert_eq!(
            drain(&mut t, t0 + 101 * MS),
            [(EventKind::Discovered, "a@h".to_owned())]
        );
        // From its own address, order still holds: an old packet is a replay.
        assert_eq!(
            t.observe(&hb("a@h", 5, 11), genuine, t0 + 150 * MS),
            Err(DropReason::Replay)
        );
    }

    #[test]
    fn with_a_secret_every_restart_is_reported_at_once() {
        let mut t = table();
        let t0 = Instant::now();
        t.observe(&hb("a@h", 1, 1), at(2), t0).unwrap();
        for i in 2..20u64 {
            let now = t0 + i as u32 * MS;
            let mut bye = hb("a@h", i - 1, 2);
            bye.leaving = true;
            assert_eq!(kind(t.observe(&bye, at(2), now)), Ok(Some(EventKind::Left)));
            assert_eq!(
                kind(t.observe(&hb("a@h", i, 1), at(2), now)),
                Ok(Some(EventKind::Discovered))
            );
        }
    }

    #[test]
    fn with_a_secret_order_holds_whatever_the_address() {
        let mut t = table();
        let t0 = Instant::now();
        t.observe(&hb("a@h", 5, 10), at(2), t0).unwrap();
        assert_eq!(
            t.observe(&hb("a@h", 5, 9), at(66), t0),
            Err(DropReason::Replay)
        );
    }

    #[test]
    fn members_snapshot() {
        let mut t = table();
        let t0 = Instant::now();
        t.observe(&hb("b@h", 7, 1), addr(), t0).unwrap();
        t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
        t.set_connected("a@h", true, t0);
        let rows = t.members(t0 + 100 * MS, 10_000);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "a@h");
        assert!(rows[0].connected);
        assert_eq!(rows[0].last_seen_ms, 9_900);
        assert_eq!(rows[1].incarnation, 7);
        assert_eq!(rows[1].state, PeerState::Alive);
    }
}
