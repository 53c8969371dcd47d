//! The joining burst's acknowledgements (`OPT_HEARD`, docs/PROTOCOL.md "Timing"): a
//! member's first answer to a newcomer goes by unicast and says that it heard it; every
//! signed heartbeat says how many peers its sender holds alive (`OPT_PEERS`); a
//! newcomer that every peer has acknowledged, as many as any of them counts, leaves
//! the rest of its burst out.

use std::time::{Duration, Instant};

use super::Engine;
use crate::peers::{EventKind, PeerEvent};
use crate::wire::Heartbeat;

/// Spread of the first unicast answers to a newcomer per known peer (see
/// `Engine::first_answer_window`).
pub const FIRST_ANSWER_PER_PEER: Duration = Duration::from_micros(250);
/// Largest table with which a node that is new itself still acknowledges every
/// newcomer by unicast (see `Engine::acknowledges`).
pub const ACK_PEERS: usize = 32;

/// What this node knows of who heard its current burst (each peer's own mark is in
/// the peer table: `PeerTable::heard_us`).
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// The heartbeat scheduled next is one of the joining burst after the first (one
    /// that may be left out: `Engine::heard_by_all`).
    pub(super) in_burst: bool,
    /// The most peers alive that a peer said it holds (`OPT_PEERS`) since the burst
    /// began (0: none said).
    pub(super) most: u32,
    /// A joining peer's answer rides on this node's next heartbeat (it was due within
    /// the answer window anyway): that one goes out even when the burst could stop.
    pub(super) owed: bool,
    /// A peer was discovered since this node's last heartbeat to the group: the next
    /// burst heartbeat goes, so that the peers that acknowledged it before learn the
    /// new count (`OPT_PEERS`), and keep their own bursts going for a peer they have
    /// not heard.
    pub(super) fresh: bool,
}

impl Acks {
    /// A count of peers alive (`OPT_PEERS`) heard from a peer.
    pub(super) fn count(&mut self, alive: Option<u32>) {
        if let Some(alive) = alive {
            self.most = self.most.max(alive);
        }
    }
}

impl Engine {
    /// Whether `hb` acknowledges this node's current incarnation, in a way that can
    /// be trusted: only signed heartbeats (with a secret) acknowledge.
    pub(super) fn acknowledges_this(&self, hb: &Heartbeat<'_>) -> bool {
        hb.heard() == Some(self.incarnation) && self.keys.is_signing() && !hb.leaving
    }

    /// What an accepted heartbeat tells of this node's burst: whether its sender heard
    /// it (`acked`, see `acknowledges_this`), the sender's count of peers, and whether
    /// it made a peer known (`event`).
    pub(super) fn note_acks(&mut self, hb: &Heartbeat<'_>, acked: bool, event: Option<&PeerEvent>) {
        if acked {
            self.peers.mark_heard_us(hb.name);
        }
        self.acks.count(self.count_in(hb));
        if event.is_some_and(|e| e.kind == EventKind::Discovered) {
            self.acks.fresh = true;
        }
    }

    /// The count of peers alive `hb` gives, if it can be trusted (signed).
    pub(super) fn count_in(&self, hb: &Heartbeat<'_>) -> Option<u32> {
        hb.peers().filter(|_| self.keys.is_signing())
    }

    /// Every peer has heard this node's joining burst, as far as it can tell: each one
    /// alive in its table acknowledged it (an answer by unicast with `OPT_HEARD`, so
    /// only with a secret), and they are at least as many as the most peers any peer
    /// said it holds alive (`OPT_PEERS`; so a peer that none of its packets reached,
    /// and that it has not heard either, still counts as missing when others know it).
    /// The rest of the burst then stays at home; a new peer heard, or one that has not
    /// acknowledged, brings it back at the next burst instant.
    pub(super) fn heard_by_all(&self) -> bool {
        if self.acks.most == 0 {
            return false;
        }
        let (alive, heard) = self.peers.heard_us();
        heard == alive && heard >= self.acks.most as usize
    }

    /// Forgets every acknowledgement: a new burst (the node joined its group again).
    pub(super) fn forget_acks(&mut self) {
        self.acks = Acks::default();
        self.peers.clear_heard_us();
    }

    /// Whether this node's first answer to a newcomer goes by unicast even when its own
    /// heartbeat, due within the answer window, could stand in for it: so that the
    /// newcomer learns that this node heard it (`OPT_HEARD`). Always for a node past
    /// its own first interval (a join into a running cluster: every member
    /// acknowledges, and the newcomer's burst stops); among newcomers (all starting
    /// at once) only in a group of at most `ACK_PEERS`: in a larger one, new peers keep
    /// appearing throughout a start spread over a second or more, so the
    /// acknowledgements rarely become complete, and would cost each node one datagram
    /// per peer for nothing (measured with the simulator: at 128 nodes starting within
    /// a second, under one burst heartbeat in seven could be left out).
    pub(super) fn acknowledges(&self, now: Instant) -> bool {
        !self.newcomer(now) || self.peers.len() <= ACK_PEERS
    }

    /// A newcomer's answer to this node's own burst is answered too, once, when
    /// nothing of the newcomer's burst was: a node that started a little later than
    /// this one did not hear this node's earlier packets and tells it so only by
    /// answering; without this, this node would wait for that node's next burst packet.
    pub(super) fn answers_answer(&self, hb: &Heartbeat<'_>, acked: bool, now: Instant) -> bool {
        !hb.joining
            && hb.newcomer
            && acked
            && self.peers.answers(hb.name) == 0
            && self.acknowledges(now)
    }

    /// How long the first unicast answers to a newcomer are spread over: they all
    /// reach the newcomer alone, so the spread only keeps a large group's answers from
    /// arriving at once (a quarter of a millisecond a peer, at most a quarter
    /// interval); in a small one the newcomer hears within milliseconds who has heard
    /// it.
    pub(super) fn first_answer_window(&self) -> Duration {
        (FIRST_ANSWER_PER_PEER * self.peers.len().min(100_000) as u32).min(self.interval / 4)
    }
}
