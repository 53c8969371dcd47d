//! Events waiting for the owner, bounded whatever the traffic.
//!
//! The driver does not send the owner one message per event: it puts events here and
//! tells the owner once that some are waiting (`push` returns true when it should);
//! the owner takes them in batches (`take`). So the owner's mailbox holds at most one
//! message from the driver, however far behind it falls.
//!
//! While an event for a name waits, a newer one for the same name replaces it (the
//! latest state is what the owner needs), except that `Heard` never replaces anything
//! (what waits already makes the owner consider the peer), and `TagsChanged` does not
//! replace a waiting `Discovered` but gives it the new tags (an owner that never took
//! the discovery would not know the peer at all). Past `capacity` names
//! waiting, new events are dropped and counted.
//!
//! One kind of event is held back: the discovery of a peer this node does not lead
//! (`lead` false), which gives the owner nothing to do at once (the peer connects
//! first; this side's turn comes `HOLD` later, see NativeGossip.Connector.Turns). The
//! owner is told of it only with an event it must act on, when it looks by itself (a
//! connection with that peer came up: `take` then hands everything over), or when it
//! has waited `HOLD` (`deadline`, `poll`). So a newcomer's first heartbeat does not
//! wake the owner of every running node it reaches just before its handshakes arrive,
//! which on a host shared by many nodes took the cores from the newcomer's own
//! connects (docs/BENCHMARKS.md, the join into 16). Each event taken says how long it
//! was held back (untold: from its arrival until the owner was told, or took it), so
//! the owner's turn still comes `HOLD` after it would have come had the owner been
//! told at once. (Not how long it waited in all: the time an owner takes to come for
//! events it was told of is not counted, as it was not before the hold; counting it
//! brought turns forward in a start of 32 VMs on two cores, where owners come late,
//! and with them second handshakes.) A peer held
//! back that asks again (a `Heard`: its burst asked for an answer this side already
//! sent, which may have been lost) is told at once, its discovery followed by the
//! `Heard`, so that the owner takes its turn now.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::peers::{EventKind, PeerEvent};

/// How long a discovery of a peer this node does not lead may wait untold: the first
/// wait of the side that does not lead (`@defer_ms` of NativeGossip.Connector.Turns).
pub const HOLD: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Waiting {
    event: PeerEvent,
    since: Instant,
    /// A held discovery whose peer then asked again: a `Heard` follows it.
    asked_again: bool,
}

/// An event taken, and how long it was held back: from its arrival until the owner was
/// told that events wait, or took them untold.
#[derive(Debug)]
pub struct Taken {
    pub event: PeerEvent,
    pub held: Duration,
}

#[derive(Debug)]
pub struct Outbox {
    /// Names in the order their first waiting event came.
    order: VecDeque<String>,
    waiting: HashMap<String, Waiting>,
    capacity: usize,
    /// The owner has been told that events wait, and has not emptied the box since.
    notified: bool,
    /// When it was told, while `notified`.
    told_at: Option<Instant>,
    /// Since when held discoveries (and only they) wait untold.
    held_since: Option<Instant>,
    /// Events replaced by a newer one for the same name.
    pub coalesced: u64,
    /// Events dropped because `capacity` names were waiting.
    pub dropped: u64,
}

/// A discovery the owner need not hear of at once.
fn holdable(e: &PeerEvent) -> bool {
    e.kind == EventKind::Discovered && !e.lead
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            order: VecDeque::new(),
            waiting: HashMap::new(),
            capacity: capacity.max(1),
            notified: false,
            told_at: None,
            held_since: None,
            coalesced: 0,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Adds events that came at `now`; returns true when the owner must be told that
    /// events wait (it was not told since it last emptied the box, and one of them
    /// needs it now: see the module's doc).
    pub fn push(&mut self, events: impl IntoIterator<Item = PeerEvent>, now: Instant) -> bool {
        let mut urgent = false;
        for e in events {
            let full = self.waiting.len() >= self.capacity;
            match self.waiting.get_mut(&e.name) {
                Some(w) if e.kind == EventKind::Heard => {
                    if holdable(&w.event) && !w.asked_again {
                        w.asked_again = true;
                        urgent = true;
                    }
                    self.coalesced += 1;
                }
                // A tags change is news only to an owner that knows the peer: while its
                // discovery waits, the discovery carries the new tags instead.
                Some(w)
                    if e.kind == EventKind::TagsChanged
                        && w.event.kind == EventKind::Discovered =>
                {
                    w.event.tags = e.tags;
                    w.event.dist_port = e.dist_port;
                    self.coalesced += 1;
                }
                Some(w) => {
                    urgent |= !holdable(&e);
                    w.event = e;
                    w.asked_again = false;
                    self.coalesced += 1;
                }
                None if full => self.dropped += 1,
                None => {
                    urgent |= !holdable(&e);
                    self.order.push_back(e.name.clone());
                    let waiting = Waiting {
                        event: e,
                        since: now,
                        asked_again: false,
                    };
                    self.waiting.insert(waiting.event.name.clone(), waiting);
                }
            }
        }
        if self.notified || self.waiting.is_empty() {
            return false;
        }
        if urgent {
            self.tell(now);
        } else {
            self.held_since.get_or_insert(now);
        }
        urgent
    }

    fn tell(&mut self, now: Instant) {
        self.notified = true;
        self.told_at = Some(now);
        self.held_since = None;
    }

    /// When the owner must be told of held discoveries, if any wait untold (none while
    /// it has been told: after a take that left more than a batch, it comes back by
    /// itself, and a past deadline would keep the driver from sleeping until then).
    pub fn deadline(&self) -> Option<Instant> {
        self.held_since.filter(|_| !self.notified).map(|t| t + HOLD)
    }

    /// Returns true (once) when held discoveries have waited `HOLD` untold: the owner
    /// must be told now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due && !self.notified => {
                self.tell(now);
                true
            }
            _ => false,
        }
    }

    /// Takes up to `max` events, oldest first, at `now`; the flag says whether more
    /// wait (then the owner comes back for them without being told again). A held
    /// discovery whose peer asked again counts as one, and comes with its `Heard`.
    pub fn take(&mut self, max: usize, now: Instant) -> (Vec<Taken>, bool) {
        let mut out = Vec::with_capacity(max.min(self.waiting.len()));
        let told = self.told_at.map_or(now, |t| t.min(now));
        while out.len() < max {
            let Some(name) = self.order.pop_front() else {
                break;
            };
            if let Some(w) = self.waiting.remove(&name) {
                let held = told.saturating_duration_since(w.since);
                let heard = w.asked_again.then(|| PeerEvent {
                    kind: EventKind::Heard,
                    ..w.event.clone()
                });
                out.push(Taken {
                    event: w.event,
                    held,
                });
                out.extend(heard.map(|event| Taken { event, held }));
            }
        }
        let more = !self.waiting.is_empty();
        self.notified = more;
        if !more {
            self.held_since = None;
            self.told_at = None;
        }
        (out, more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind, name: &str) -> PeerEvent {
        PeerEvent {
            kind,
            name: name.to_owned(),
            addr: "198.51.100.2:45892".parse().unwrap(),
            incarnation: 1,
            lead: true,
            tags: Vec::new(),
            dist_port: 0,
            proven: false,
        }
    }

    /// A discovery of a peer this node does not lead (held back).
    fn held(name: &str) -> PeerEvent {
        PeerEvent {
            lead: false,
            ..ev(EventKind::Discovered, name)
        }
    }

    fn kinds(events: &[Taken]) -> Vec<(EventKind, &str)> {
        events
            .iter()
            .map(|t| (t.event.kind, t.event.name.as_str()))
            .collect()
    }

    fn at(ms: u64) -> Instant {
        T0.with(|t| *t + Duration::from_millis(ms))
    }

    thread_local! {
        static T0: Instant = Instant::now();
    }

    #[test]
    fn the_owner_is_told_once_until_it_empties_the_box() {
        let mut o = Outbox::new(100);
        assert!(!o.push([], at(0)));
        assert!(o.push([ev(EventKind::Discovered, "a@h")], at(0)));
        assert!(!o.push([ev(EventKind::Discovered, "b@h")], at(0)));
        let (taken, more) = o.take(1, at(0));
        assert_eq!(kinds(&taken), [(EventKind::Discovered, "a@h")]);
        assert!(more);
        // Told already (it comes back by itself while `more`).
        assert!(!o.push([ev(EventKind::Lost, "c@h")], at(0)));
        let (taken, more) = o.take(10, at(0));
        assert_eq!(taken.len(), 2);
        assert!(!more);
        assert!(o.push([ev(EventKind::Lost, "c@h")], at(0)));
    }

    #[test]
    fn a_name_waits_once_with_its_latest_state_and_heard_adds_nothing() {
        let mut o = Outbox::new(100);
        o.push(
            [
                ev(EventKind::Discovered, "a@h"),
                ev(EventKind::Heard, "a@h"),
                ev(EventKind::Left, "b@h"),
                ev(EventKind::Discovered, "b@h"),
            ],
            at(0),
        );
        let (taken, _) = o.take(10, at(0));
        assert_eq!(
            kinds(&taken),
            [
                (EventKind::Discovered, "a@h"),
                (EventKind::Discovered, "b@h")
            ]
        );
        assert_eq!(o.coalesced, 2);
    }

    #[test]
    fn a_tags_change_while_a_discovery_waits_keeps_the_discovery_with_the_new_tags() {
        // A peer discovered and changing its tags before the owner took the discovery
        // (issue #24's flaky test): the owner must still learn of the peer.
        let mut o = Outbox::new(100);
        let mut changed = ev(EventKind::TagsChanged, "a@h");
        changed.tags = vec![2, 3, 1, b'k', b'v'];
        o.push([ev(EventKind::Discovered, "a@h"), changed], at(0));
        let (taken, _) = o.take(10, at(0));
        assert_eq!(kinds(&taken), [(EventKind::Discovered, "a@h")]);
        assert_eq!(taken[0].event.tags, vec![2, 3, 1, b'k', b'v']);
        // Once the discovery was taken, a change is a change.
        let (taken, _) = {
            o.push([ev(EventKind::TagsChanged, "a@h")], at(0));
            o.take(10, at(0))
        };
        assert_eq!(kinds(&taken), [(EventKind::TagsChanged, "a@h")]);
    }

    #[test]
    fn an_owner_that_never_takes_holds_at_most_capacity_events() {
        let mut o = Outbox::new(1000);
        let mut told = 0;
        for i in 0..100_000 {
            told += o.push(
                [ev(EventKind::Discovered, &format!("n{}@h", i % 5000))],
                at(0),
            ) as u32;
        }
        assert_eq!(told, 1);
        assert_eq!(o.len(), 1000);
        assert_eq!(o.dropped + o.coalesced + 1000, 100_000);
    }

    #[test]
    fn a_discovery_this_node_does_not_lead_waits_untold_until_its_hold_is_over() {
        let mut o = Outbox::new(100);
        assert!(!o.push([held("a@h")], at(0)));
        assert!(!o.push([held("b@h")], at(30)));
        assert_eq!(o.deadline(), Some(at(0) + HOLD));
        assert!(!o.poll(at(99)));
        assert!(o.poll(at(100)));
        // Told once.
        assert!(!o.poll(at(150)));
        assert!(!o.push([ev(EventKind::Lost, "c@h")], at(150)));
        let (taken, more) = o.take(10, at(160));
        assert!(!more);
        assert_eq!(
            kinds(&taken),
            [
                (EventKind::Discovered, "a@h"),
                (EventKind::Discovered, "b@h"),
                (EventKind::Lost, "c@h")
            ]
        );
        // Held until the owner was told at 100, whenever it came to take them; the
        // loss, pushed after that, was not held.
        let ms: Vec<_> = taken.iter().map(|t| t.held.as_millis()).collect();
        assert_eq!(ms, [100, 70, 0]);
        assert_eq!(o.deadline(), None);
    }

    #[test]
    fn held_discoveries_go_with_the_first_event_the_owner_must_act_on() {
        let mut o = Outbox::new(100);
        assert!(!o.push([held("a@h")], at(0)));
        assert!(o.push([ev(EventKind::Discovered, "b@h")], at(5)));
        assert_eq!(o.deadline(), None);
        assert!(!o.poll(at(500)));
        let (taken, _) = o.take(10, at(6));
        assert_eq!(
            kinds(&taken),
            [
                (EventKind::Discovered, "a@h"),
                (EventKind::Discovered, "b@h")
            ]
        );
        let ms: Vec<_> = taken.iter().map(|t| t.held.as_millis()).collect();
        assert_eq!(ms, [5, 0]);
        // Empty again: the next held one waits its own hold.
        assert!(!o.push([held("c@h")], at(50)));
        assert_eq!(o.deadline(), Some(at(50) + HOLD));
    }

    #[test]
    fn an_owner_that_looks_by_itself_takes_held_discoveries_and_is_not_told_of_them() {
        let mut o = Outbox::new(100);
        o.push([held("a@h")], at(0));
        let (taken, more) = o.take(10, at(12));
        assert_eq!(kinds(&taken), [(EventKind::Discovered, "a@h")]);
        assert_eq!(taken[0].held, Duration::from_millis(12));
        assert!(!more);
        assert_eq!(o.deadline(), None);
        assert!(!o.poll(at(200)));
        // Nothing waits: the next event that needs the owner tells it.
        assert!(o.push([ev(EventKind::Left, "a@h")], at(201)));
        o.take(10, at(202));

        // An owner that looks by itself and leaves more than a batch behind comes back
        // by itself: no deadline meanwhile, past or not.
        o.push([held("b@h"), held("c@h")], at(300));
        let (_, more) = o.take(1, at(301));
        assert!(more);
        assert_eq!(o.deadline(), None);
        assert!(!o.poll(at(500)));
    }

    #[test]
    fn a_held_peer_that_asks_again_is_told_at_once_with_its_heard() {
        // Its burst asked again for the answer this node sent: the answer may have been
        // lost, so the owner takes its turn now (NativeGossip.Connector.heard/5).
        let mut o = Outbox::new(100);
        o.push([held("a@h")], at(0));
        assert!(o.push([ev(EventKind::Heard, "a@h")], at(20)));
        // A third packet asking again adds nothing.
        assert!(!o.push([ev(EventKind::Heard, "a@h")], at(40)));
        let (taken, more) = o.take(10, at(41));
        assert!(!more);
        assert_eq!(
            kinds(&taken),
            [(EventKind::Discovered, "a@h"), (EventKind::Heard, "a@h")]
        );
        assert!(taken.iter().all(|t| t.held == Duration::from_millis(20)));
        assert!(!taken[1].event.lead);
        // A heard of a peer whose discovery was not held adds nothing, as before.
        o.push([ev(EventKind::Discovered, "b@h")], at(50));
        o.push([ev(EventKind::Heard, "b@h")], at(51));
        let (taken, _) = o.take(10, at(52));
        assert_eq!(kinds(&taken), [(EventKind::Discovered, "b@h")]);
    }
}
