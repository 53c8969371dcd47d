//! Who leads a connect (the tie-break): of a pair of nodes that hear each other, the
//! one that connects at once; the other gives it the first go (the connector's wait).

use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{Engine, ACK_PEERS};
use crate::wire::Heartbeat;

impl Engine {
    /// Whether this node should connect to a peer at once when it hears `hb`, or give
    /// the peer the first go: two connects at once between the same pair cost two
    /// handshakes and net_kernel keeps one. Of two nodes alike (both new, or both
    /// settled) the pair's coin decides (`first_leads`). Of a newcomer and a settled
    /// member, when the newcomer takes answers by unicast (with a secret, `OPT_ANSWER`)
    /// and the group holds at most `ACK_PEERS` (by the member's count of peers alive:
    /// its own on its side, the one its heartbeats carry, `OPT_PEERS`, on the
    /// newcomer's), the newcomer leads: the members' first answers reach it within
    /// milliseconds, and it starts its connects as they come, as a bare
    /// `Node.connect/1` to each would, rather than every member waking at once to start
    /// one towards it; a member whose answer may have been lost takes its turn when the
    /// newcomer's burst asks again (`PeerTable::heard_again`). Otherwise the member
    /// leads: multicast answers are spread over 20 ms and more, without a secret the
    /// burst cannot say who heard it, and a larger group spreads even its unicast
    /// answers (`first_answer_window`); each would hold the newcomer's connects back.
    /// Both sides reach the same answer as long as they agree on who is new (the
    /// NEWCOMER flag, on answers too), on the newcomer's answer socket (which it names
    /// in every heartbeat) and on the member's count (they differ only if it crosses
    /// `ACK_PEERS` between the member's decision and its answer: then both connect, or
    /// the member after its wait). A node with a secret takes only signed packets.
    pub(super) fn leads(&self, hb: &Heartbeat<'_>, now: Instant) -> bool {
        let (new, peer_new) = (self.newcomer(now), hb.newcomer || hb.joining);
        if peer_new == new {
            return first_leads(&self.name, hb.name);
        }
        // Whether the newcomer leads: it takes answers by unicast (it names its answer
        // socket, `OPT_ANSWER`, which only a node with a secret does), and the group
        // is small.
        let newcomer_leads = if new {
            self.answer_port != 0
                && self.keys.is_signing()
                && self.count_in(hb).is_some_and(|n| n as usize <= ACK_PEERS)
        } else {
            hb.answer_port().is_some()
                && self.keys.is_signing()
                && self.peers.heard_us().0 <= ACK_PEERS
        };
        new == newcomer_leads
    }

    /// `hb`, accepted without an event, is a newcomer's joining heartbeat that this
    /// settled node does not lead towards, answered already (the answer sent, not just
    /// due: `unicast_answers`): the newcomer has not heard from every peer, maybe not
    /// from this one (see `leads`).
    pub(super) fn newcomer_asks_again(&self, hb: &Heartbeat<'_>, lead: bool, now: Instant) -> bool {
        hb.joining
            && !lead
            && self.keys.is_signing()
            && !self.newcomer(now)
            && !self
                .unicast_answers
                .iter()
                .any(|&(_, _, incarnation)| incarnation == hb.incarnation)
    }
}

/// Of two nodes alike (both new, or both settled), whether the one named `a` leads the
/// pair with `b`: a coin per pair that both sides toss alike, the lowest bit of the first
/// byte of SHA-256(smaller name, a zero byte, larger name), names compared bytewise; 0
/// means the smaller name leads. Each of N nodes started together so leads about half of
/// its pairs. (The smaller name always led before: the node whose name sorted first then
/// started all N - 1 of its handshakes, the connecting side's work, the heavier one,
/// and the node whose name sorted last none, so the first one's VM finished last.)
pub fn first_leads(a: &str, b: &str) -> bool {
    let (smaller, larger) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::new()
        .chain_update(smaller)
        .chain_update([0])
        .chain_update(larger)
        .finalize();
    let smaller_leads = digest[0] & 1 == 0;
    (a == smaller) == smaller_leads
}
