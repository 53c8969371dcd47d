//! What this node answered to each peer's joining burst, and who has heard its own:
//! the peer table's side of answers (`take_answer`), acknowledgements (`OPT_HEARD`:
//! `mark_heard_us`, `late_answer`, `heard_us`) and the turn a settled member takes
//! when a newcomer's burst shows that its answer was lost (`heard_again`).

use std::time::Instant;

use super::{EventKind, PeerEvent, PeerState, PeerTable, ANSWER_SPACING, MAX_ANSWERS};
use crate::wire::Heartbeat;

impl PeerTable {
    /// Whether a joining heartbeat of `name` gets an answer: yes for the first
    /// `MAX_ANSWERS` of its incarnation, `ANSWER_SPACING` apart; then how many it got
    /// before this one.
    pub fn take_answer(&mut self, name: &str, now: Instant) -> Option<u8> {
        match self.peers.get_mut(name) {
            Some(p)
                if p.answers < MAX_ANSWERS
                    && p.answered_at
                        .is_none_or(|at| now.saturating_duration_since(at) >= ANSWER_SPACING) =>
            {
                let before = p.answers;
                p.answers += 1;
                p.answered_at = Some(now);
                Some(before)
            }
            _ => None,
        }
    }

    /// Records that `name`, if alive, has heard this node's current joining burst: it
    /// answered it by unicast.
    pub fn mark_heard_us(&mut self, name: &str) {
        if let Some(p) = self.peers.get_mut(name) {
            p.heard_us |= p.state == PeerState::Alive;
        }
    }

    /// An answer to this node's burst (`OPT_HEARD`, signed) that failed the order
    /// check (`replay`): it arrived on the answer socket after a later packet of its
    /// sender arrived on the group's. Taken as the acknowledgement it is, and as
    /// nothing else, when it is from the incarnation the table holds and that peer had
    /// not acknowledged yet. Returns whether it was taken.
    pub fn late_answer(&mut self, hb: &Heartbeat<'_>) -> bool {
        match self.peers.get_mut(hb.name) {
            Some(p)
                if p.state == PeerState::Alive
                    && p.incarnation == hb.incarnation
                    && !p.heard_us
                    && !hb.leaving =>
            {
                p.heard_us = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets who heard this node's burst (it starts a new one).
    pub fn clear_heard_us(&mut self) {
        for p in self.peers.values_mut() {
            p.heard_us = false;
        }
    }

    /// The peers alive, and how many of them have heard this node's burst.
    pub fn heard_us(&self) -> (usize, usize) {
        self.peers
            .values()
            .filter(|p| p.state == PeerState::Alive)
            .fold((0, 0), |(alive, heard), p| {
                (alive + 1, heard + usize::from(p.heard_us))
            })
    }

    /// How many answers this node has taken for `name`'s current incarnation (0 for an
    /// unknown name).
    pub fn answers(&self, name: &str) -> u8 {
        self.peers.get(name).map_or(0, |p| p.answers)
    }

    /// `hb`, a joining heartbeat of a newcomer this settled node gave the first go at
    /// connecting (the tie-break, `Engine::leads`), came after this node answered it.
    /// With a secret a burst asks again only while one of the newcomer's peers has not
    /// acknowledged it, which may be this node, its answer lost. Reported as `Heard`,
    /// so that the owner takes its turn now rather than after its wait (unless the
    /// newcomer's handshake is under way), when the peer is alive, of that incarnation,
    /// not connected, answered, and neither held by the owner nor waiting to report a
    /// change. At most once per packet of the burst.
    pub fn heard_again(&mut self, hb: &Heartbeat<'_>, now: Instant) -> Option<PeerEvent> {
        let authenticated = self.authenticated;
        let p = self.peers.get_mut(hb.name)?;
        let due = p.state == PeerState::Alive
            && p.incarnation == hb.incarnation
            && !p.connected
            && p.answers > 0
            && p.pending.is_none()
            && p.held_until.is_none_or(|t| now >= t);
        if !due {
            return None;
        }
        p.last_event = now;
        Some(p.event(
            EventKind::Heard,
            hb.name,
            authenticated || p.pinned.is_some(),
        ))
    }
}
