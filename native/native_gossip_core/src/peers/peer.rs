//! One peer of the table: what its heartbeats said, and how the next one moves it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{EventKind, PeerEvent, PeerState, Timing};
use crate::reason::DropReason;
use crate::wire::{self, Heartbeat};

#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
    pub(super) incarnation: u64,
    pub(super) sequence: u64,
    pub(super) last_seen: Instant,
    pub(super) last_event: Instant,
    /// No `Heard` report before this instant (the owner's backoff; see `hold`).
    pub(super) held_until: Option<Instant>,
    pub(super) state: PeerState,
    pub(super) connected: bool,
    /// Answers sent to this incarnation's joining burst (see `take_answer`).
    pub(super) answers: u8,
    /// When this node last took an answer for the peer's burst.
    pub(super) answered_at: Option<Instant>,
    /// While the peer has never been connected: its admission number, its key in
    /// `PeerTable::unproven` (the order of eviction).
    pub(super) admitted: Option<u64>,
    /// State changes this peer may still report now.
    pub(super) changes: Budget,
    /// A state change applied but not reported yet (the budget was spent).
    pub(super) pending: Option<EventKind>,
    /// The tag records of its last heartbeat (at most `wire::MAX_TAGS` bytes each
    /// time: a longer options block is for other record types and is not kept).
    pub(super) tags: Box<[u8]>,
    /// Its distribution listen port, as its last heartbeat said (0: none).
    pub(super) dist_port: u16,
    /// Without a secret: the address a distribution connection proved (see `pin`);
    /// heartbeats of this name from any other address are dropped until the peer is
    /// forgotten.
    pub(super) pinned: Option<std::net::IpAddr>,
    /// Without a secret: the address of the running distribution connection, when it
    /// was not where heartbeats came from as it started (see `PeerTable::pin_late`).
    pub(super) connection: Option<std::net::IpAddr>,
    /// This incarnation of the peer answered this node's current joining burst by
    /// unicast (`OPT_HEARD`): it has heard this node.
    pub(super) heard_us: bool,
}

impl Peer {
    /// A peer first heard now, with this heartbeat; `admitted`: its admission number.
    pub(super) fn new(hb: &Heartbeat<'_>, from: SocketAddr, now: Instant, admitted: u64) -> Self {
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
            connection: None,
            heard_us: false,
        }
    }

    /// The event `kind` about this peer, named `name`.
    pub(super) fn event(&self, kind: EventKind, name: &str, proven: bool) -> PeerEvent {
        PeerEvent {
            kind,
            name: name.to_owned(),
            addr: self.addr,
            incarnation: self.incarnation,
            lead: false,
            tags: self.tags.to_vec(),
            dist_port: self.dist_port,
            proven,
        }
    }

    /// Whether a heartbeat from `from` may change this peer, and whether it comes from
    /// elsewhere than the last one (`moved`, which without a secret means its order
    /// cannot be compared).
    pub(super) fn admits(
        &self,
        hb: &Heartbeat<'_>,
        from: SocketAddr,
        authenticated: bool,
    ) -> Result<bool, DropReason> {
        if !authenticated && self.pinned.is_some_and(|ip| ip != from.ip()) {
            // A connection proved where this peer is: nothing from elsewhere moves it.
            return Err(DropReason::Unproven);
        }
        // Without a secret, order means something only between packets from one address.
        let moved = !authenticated && from.ip() != self.addr.ip();
        if !moved && (hb.incarnation, hb.sequence) <= (self.incarnation, self.sequence) {
            return Err(DropReason::Replay);
        }
        if moved && hb.leaving {
            // A node says goodbye from where its heartbeats come from.
            return Err(DropReason::ForeignGoodbye);
        }
        Ok(moved)
    }

    /// Applies an admitted heartbeat (see `admits`): the state it moves the peer to,
    /// and the event that is worth, if any (before the change budget: see `budget`).
    pub(super) fn apply(
        &mut self,
        hb: &Heartbeat<'_>,
        from: SocketAddr,
        now: Instant,
        moved: bool,
        heard_gap: Duration,
    ) -> Option<EventKind> {
        let new_incarnation = hb.incarnation != self.incarnation;
        let previous = self.state;
        let tags_changed = !wire::same_tags(&self.tags, hb.options);
        self.dist_port = hb.dist_port();
        if tags_changed {
            self.tags = wire::tag_records(hb.options).into();
        }
        self.addr = from;
        self.incarnation = hb.incarnation;
        self.sequence = hb.sequence;
        self.last_seen = now;
        if hb.leaving {
            self.state = PeerState::Left;
            (previous != PeerState::Left || new_incarnation).then_some(EventKind::Left)
        } else if new_incarnation
            || previous == PeerState::Lost
            || (previous == PeerState::Left && moved)
        {
            // New, back from silence, or (no secret) alive after all from another address
            // than a goodbye came from.
            self.state = PeerState::Alive;
            self.connected = false;
            self.held_until = None;
            self.answers = 0;
            self.answered_at = None;
            self.heard_us = false;
            Some(EventKind::Discovered)
        } else if previous == PeerState::Left {
            // Same incarnation after its goodbye: a late packet. Stay away from it.
            None
        } else if tags_changed {
            Some(EventKind::TagsChanged)
        } else if !self.connected
            && self.pending.is_none()
            && now.duration_since(self.last_event) >= heard_gap
            && self.held_until.is_none_or(|t| now >= t)
        {
            Some(EventKind::Heard)
        } else {
            None
        }
    }

    /// Whether the event `kind` goes out now: a state change spends the budget (without
    /// a secret); one over budget waits, the latest kept, until the returned instant.
    pub(super) fn budget(
        &mut self,
        kind: Option<EventKind>,
        authenticated: bool,
        now: Instant,
        change_gap: Duration,
    ) -> (Option<EventKind>, Option<Instant>) {
        let kind = match kind {
            // With a secret only a node holding it can change its state: no budget.
            Some(EventKind::Heard) | None => kind,
            Some(change) if authenticated => Some(change),
            Some(change) if self.changes.take(now, change_gap) => {
                self.pending = None;
                Some(change)
            }
            Some(change) => {
                self.pending = Some(change);
                return (None, Some(self.changes.next_token(change_gap)));
            }
        };
        if kind.is_some() {
            self.last_event = now;
        }
        (kind, None)
    }

    /// When this peer next changes state if nothing is heard: lost, or forgotten.
    pub(super) fn deadline(&self, timing: &Timing) -> Instant {
        match self.state {
            PeerState::Alive => self.last_seen + timing.lost_after,
            _ => self.last_seen + timing.forget_after,
        }
    }
}

/// Most answers a peer's joining burst gets from this node: the newcomer needs one to
/// get through, and its burst has eight packets; three answers survive 30 % loss with
/// 97 % probability, while answering all eight, multicast to every member, would
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
pub(super) struct Budget {
    tokens: u32,
    /// When the last token was added (or the bucket found full).
    since: Instant,
}

impl Budget {
    pub(super) fn full(now: Instant) -> Self {
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

    pub(super) fn take(&mut self, now: Instant, gap: Duration) -> bool {
        self.refill(now, gap);
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }

    /// When the next token comes (only meaningful when there is none).
    pub(super) fn next_token(&self, gap: Duration) -> Instant {
        self.since + gap
    }
}
