//! When heartbeats go: the first at once, the joining burst, the jittered interval,
//! answers to a newcomer (coalesced).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Destination, Engine, Transmit};
use crate::peers::PeerEvent;
use crate::wire::{self, Outgoing};

/// When the joining burst's heartbeats go, after the first (at the start): those
/// within one interval of it. Dense at first (five packets by 160 ms: under 30 % loss a
/// given peer has heard none of them with probability 0.3^5, 0.24 %), then gaps
/// doubling, the last late in the interval for the pairs that missed the others;
/// eight packets in all with the default interval (1500 ms).
pub const JOIN_BURST: [Duration; 7] = [
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
    Duration::from_millis(320),
    Duration::from_millis(640),
    Duration::from_millis(1280),
];
/// Answers to a joining peer go out after a random delay within this window (wider in
/// larger groups: see `Engine::reply_window`).
pub const REPLY_WINDOW: Duration = Duration::from_millis(20);
/// Widening of the answer window per known peer (see `Engine::reply_window`).
pub const REPLY_WINDOW_PER_PEER: Duration = Duration::from_millis(4);
/// Most answers by unicast waiting to go (one per joining peer and answer; more
/// joining at once than this get their answers from the regular heartbeats).
pub const MAX_UNICAST_ANSWERS: usize = 4096;

/// Small, fast, non-cryptographic generator for jitter (splitmix64).
#[derive(Debug, Clone)]
pub(super) struct Jitter(pub(super) u64);

impl Jitter {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, max].
    pub(super) fn upto(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos() as u64;
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            self.next() % (nanos + 1)
        })
    }
}

impl Engine {
    /// How long answers to a newcomer are spread over: every member answers, so a
    /// larger group spreads them wider (4 ms a peer beyond the first 20 ms, at most a
    /// quarter interval): multicast answers reach every member, unicast ones all reach
    /// the newcomer. The newcomer's connections do not wait for answers: its peers
    /// connect as soon as they hear it.
    pub(super) fn reply_window(&self) -> Duration {
        let per_peer = REPLY_WINDOW_PER_PEER * self.peers.len().min(100_000) as u32;
        REPLY_WINDOW.max(per_peer).min(self.interval / 4)
    }

    /// Within one interval of the start (or of a rejoin): what NEWCOMER says.
    pub(super) fn newcomer(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) < self.interval
    }

    /// Moves silent peers along (lost, forgotten), appending the events to `out`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<PeerEvent>) {
        let before = out.len();
        self.peers.sweep(now, out);
        self.stats.events += (out.len() - before) as u64;
        for e in &out[before..] {
            self.unicast.forget(&e.name);
        }
    }

    /// The earliest instant at which `poll_transmit` or `handle_timeout` has work.
    pub fn next_deadline(&self) -> Instant {
        if !self.queue.is_empty() || self.unicast.has_answers() {
            // Already due (no instant before `started` is ever passed in).
            return self.started;
        }
        let mut t = self.next_heartbeat;
        if let Some(r) = self.reply_at {
            t = t.min(r);
        }
        if let Some(&(r, _, _)) = self.unicast_answers.front() {
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
        self.burst = 0;
        self.forget_acks();
    }

    /// The next burst heartbeat after one sent at `now`, if the burst still has one
    /// within the first interval (one that a late wake-up has passed is skipped, not
    /// sent late).
    fn next_burst(&mut self, now: Instant) -> Option<Instant> {
        while let Some(&at) = JOIN_BURST.get(self.burst) {
            self.burst += 1;
            let t = self.started + at;
            if at >= self.interval {
                break;
            }
            if t > now {
                self.acks.in_burst = true;
                return Some(t);
            }
        }
        self.burst = JOIN_BURST.len();
        self.acks.in_burst = false;
        None
    }

    /// Makes a heartbeat due now (the `announce` command).
    pub fn announce(&mut self, now: Instant) {
        self.reply_at = Some(now);
    }

    /// The next datagram to send now, if any: answers to peers just discovered by
    /// unicast, then a due heartbeat to the group, to every seed and learned peer, and
    /// its libcluster copy. Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, wall_ms: u64) -> Option<Transmit> {
        if self.queue.is_empty() {
            self.decide(now, wall_ms);
        }
        self.queue.pop_front()
    }

    pub(super) fn decide(&mut self, now: Instant, wall_ms: u64) {
        if self.left {
            return;
        }
        if self.unicast.has_answers() {
            // Outside the schedule for one peer: it neither asks for answers nor moves
            // the schedule.
            let newcomer = self.newcomer(now);
            let bytes = self.encode(false, false, newcomer, wall_ms);
            for to in self.unicast.take_answers(bytes.len(), now) {
                self.queue.push_back(Transmit {
                    to: Destination::Unicast(to),
                    bytes: bytes.clone(),
                });
            }
        }
        while self
            .unicast_answers
            .front()
            .is_some_and(|(at, _, _)| *at <= now)
        {
            let (_, to, incarnation) = self.unicast_answers.pop_front().expect("checked");
            let newcomer = self.newcomer(now);
            let bytes = self.encode_with(false, false, newcomer, wall_ms, Some(incarnation));
            self.stats.answers += 1;
            self.queue.push_back(Transmit {
                to: Destination::Unicast(to),
                bytes,
            });
        }
        if let Some(bytes) = self.due_heartbeat(now, wall_ms) {
            self.queue_for_everyone(bytes, now);
            if let Some(legacy) = self.legacy_packet() {
                self.queue.push_back(Transmit {
                    to: Destination::Group,
                    bytes: legacy,
                });
            }
        }
    }

    /// The heartbeat due now (regular, burst or answer to a joining peer), if one is.
    pub(super) fn due_heartbeat(&mut self, now: Instant, wall_ms: u64) -> Option<Vec<u8>> {
        let regular = self.next_heartbeat <= now;
        let reply = self.reply_at.is_some_and(|r| r <= now);
        if !regular && !reply {
            return None;
        }
        // Only scheduled burst heartbeats ask for answers; an answer (or an announce)
        // never does, so two joining nodes cannot keep answering each other.
        let newcomer = self.newcomer(now);
        // A burst heartbeat after the first that every peer has already heard stays at
        // home, unless an answer rides on it or it passes on a grown count of peers
        // (`acks`); then it goes, asking no answers (not JOINING).
        let heard = regular && self.acks.in_burst && self.heard_by_all();
        let skip = heard && !self.acks.owed && !self.acks.fresh;
        let joining = regular && newcomer && !heard;
        if regular {
            self.next_heartbeat = match self.next_burst(now) {
                Some(t) => t,
                None => now + self.interval * 3 / 4 + self.jitter.upto(self.interval / 2),
            };
        }
        if skip && !reply {
            self.stats.burst_skipped += 1;
            return None;
        }
        if reply && !regular {
            self.stats.answers += 1;
        }
        // Any heartbeat answers a pending reply.
        self.reply_at = None;
        self.acks.owed = false;
        self.acks.fresh = false;
        Some(self.encode(false, joining, newcomer, wall_ms))
    }

    /// Queues the goodbye, for when the topology stops cleanly: twice, so that one lost
    /// datagram does not leave peers waiting for a timeout, to everyone a heartbeat
    /// goes to. `poll_transmit` hands it out.
    pub fn leave(&mut self, wall_ms: u64, now: Instant) {
        self.left = true;
        for _ in 0..2 {
            let bytes = self.encode(true, false, false, wall_ms);
            self.queue_for_everyone(bytes, now);
        }
    }

    pub(super) fn encode(
        &mut self,
        leaving: bool,
        joining: bool,
        newcomer: bool,
        wall_ms: u64,
    ) -> Vec<u8> {
        self.encode_with(leaving, joining, newcomer, wall_ms, None)
    }

    /// `encode`, after this node's own option records: with a secret, its count of
    /// peers alive (`OPT_PEERS`), and for an answer the incarnation it acknowledges
    /// (`OPT_HEARD`).
    fn encode_with(
        &mut self,
        leaving: bool,
        joining: bool,
        newcomer: bool,
        wall_ms: u64,
        answering: Option<u64>,
    ) -> Vec<u8> {
        self.sequence += 1;
        let mut options = std::borrow::Cow::Borrowed(self.options.as_slice());
        if self.keys.is_signing() {
            let alive = self.peers.heard_us().0.min(u32::MAX as usize) as u32;
            options.to_mut().extend(wire::peers_record(alive));
        }
        if let Some(incarnation) = answering {
            options.to_mut().extend(wire::heard_record(incarnation));
        }
        wire::encode(
            &Outgoing {
                name: &self.name,
                incarnation: self.incarnation,
                sequence: self.sequence,
                timestamp_ms: wall_ms,
                leaving,
                joining,
                newcomer,
                options: &options,
            },
            &self.keys,
        )
        .expect("own name validated in Engine::new")
    }

    /// A joining heartbeat of `name` was accepted: answer it. A newcomer's burst gets
    /// a few answers (see peers::MAX_ANSWERS), not one per packet. Any heartbeat
    /// answers: when this node's own is due within the window anyway (in its burst,
    /// when many start at once), that one is the answer.
    ///
    /// `to`: the newcomer takes answers by unicast there (`OPT_ANSWER`, trusted): the
    /// answer goes to it alone, so a join costs each member the newcomer's own
    /// heartbeats and its answers, whatever the size of the group. Otherwise one
    /// multicast answer, unless one is already due, covers every joining peer.
    ///
    /// `unheard`: the newcomer, not this node, connects first (both are new and the
    /// pair's coin fell to it, see `leads`), and this is the first packet of its incarnation:
    /// this node was up before it, so the newcomer has not heard this node's first
    /// heartbeat, and the pair waits until it hears another. The first unicast answer
    /// then goes at once, even in this node's own burst, whose next heartbeat is up to
    /// 20 ms away (all nodes starting together). Further answers, against loss, follow
    /// the rule above; a node that started after the newcomer was heard by it already.
    ///
    /// Every unicast answer carries `OPT_HEARD` (the newcomer's incarnation,
    /// `incarnation`), from which, with the peers' counts (`OPT_PEERS`), the
    /// newcomer tells that its burst has been heard by everyone and can stop
    /// (`heard_by_all`); so the first one to an incarnation goes, within
    /// `first_answer_window`, even when this node's own heartbeat is due (unless this
    /// node is new itself in a large group: `acknowledges`).
    pub(super) fn answer(
        &mut self,
        name: &str,
        to: Option<SocketAddr>,
        incarnation: u64,
        unheard: bool,
        now: Instant,
    ) {
        let window = self.reply_window();
        let own_due = self.next_heartbeat <= now + window;
        match to {
            Some(to) => {
                let Some(before) = self.peers.take_answer(name, now) else {
                    return;
                };
                let urgent = unheard && before == 0;
                let first = before == 0 && self.acknowledges(now);
                if (urgent || first || !own_due) && self.unicast_answers.len() < MAX_UNICAST_ANSWERS
                {
                    let at = if urgent {
                        now
                    } else if first {
                        now + self.jitter.upto(self.first_answer_window())
                    } else {
                        now + self.jitter.upto(window)
                    };
                    // Kept in the order due.
                    let i = self.unicast_answers.partition_point(|(t, _, _)| *t <= at);
                    self.unicast_answers.insert(i, (at, to, incarnation));
                } else {
                    self.acks.owed = true;
                }
            }
            None => {
                if self.reply_at.is_none() && self.peers.take_answer(name, now).is_some() {
                    if own_due {
                        self.acks.owed = true;
                    } else {
                        self.reply_at = Some(now + self.jitter.upto(window));
                    }
                }
            }
        }
    }
}
