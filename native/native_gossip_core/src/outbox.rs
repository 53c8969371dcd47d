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

use std::collections::{HashMap, VecDeque};

use crate::peers::{EventKind, PeerEvent};

#[derive(Debug)]
pub struct Outbox {
    /// Names in the order their first waiting event came.
    order: VecDeque<String>,
    waiting: HashMap<String, PeerEvent>,
    capacity: usize,
    /// The owner has been told that events wait, and has not emptied the box since.
    notified: bool,
    /// Events replaced by a newer one for the same name.
    pub coalesced: u64,
    /// Events dropped because `capacity` names were waiting.
    pub dropped: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            order: VecDeque::new(),
            waiting: HashMap::new(),
            capacity: capacity.max(1),
            notified: false,
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

    /// Adds events; returns true when the owner must be told that events wait (it was
    /// not told since it last emptied the box).
    pub fn push(&mut self, events: impl IntoIterator<Item = PeerEvent>) -> bool {
        for e in events {
            let full = self.waiting.len() >= self.capacity;
            match self.waiting.get_mut(&e.name) {
                Some(_) if e.kind == EventKind::Heard => self.coalesced += 1,
                // A tags change is news only to an owner that knows the peer: while its
                // discovery waits, the discovery carries the new tags instead.
                Some(w) if e.kind == EventKind::TagsChanged && w.kind == EventKind::Discovered => {
                    w.tags = e.tags;
                    w.dist_port = e.dist_port;
                    self.coalesced += 1;
                }
                Some(w) => {
                    *w = e;
                    self.coalesced += 1;
                }
                None if full => self.dropped += 1,
                None => {
                    self.order.push_back(e.name.clone());
                    self.waiting.insert(e.name.clone(), e);
                }
            }
        }
        let notify = !self.notified && !self.waiting.is_empty();
        self.notified |= notify;
        notify
    }

    /// Takes up to `max` events, oldest first; the flag says whether more wait (then
    /// the owner comes back for them without being told again).
    pub fn take(&mut self, max: usize) -> (Vec<PeerEvent>, bool) {
        let mut out = Vec::with_capacity(max.min(self.waiting.len()));
        while out.len() < max {
            let Some(name) = self.order.pop_front() else {
                break;
            };
            if let Some(e) = self.waiting.remove(&name) {
                out.push(e);
            }
        }
        let more = !self.waiting.is_empty();
        self.notified = more;
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
            lead: false,
            tags: Vec::new(),
            dist_port: 0,
            proven: false,
        }
    }

    fn kinds(events: &[PeerEvent]) -> Vec<(EventKind, &str)> {
        events.iter().map(|e| (e.kind, e.name.as_str())).collect()
    }

    #[test]
    fn the_owner_is_told_once_until_it_empties_the_box() {
        let mut o = Outbox::new(100);
        assert!(!o.push([]));
        assert!(o.push([ev(EventKind::Discovered, "a@h")]));
        assert!(!o.push([ev(EventKind::Discovered, "b@h")]));
        let (taken, more) = o.take(1);
        assert_eq!(kinds(&taken), [(EventKind::Discovered, "a@h")]);
        assert!(more);
        // Told already (it comes back by itself while `more`).
        assert!(!o.push([ev(EventKind::Lost, "c@h")]));
        let (taken, more) = o.take(10);
        assert_eq!(taken.len(), 2);
        assert!(!more);
        assert!(o.push([ev(EventKind::Lost, "c@h")]));
    }

    #[test]
    fn a_name_waits_once_with_its_latest_state_and_heard_adds_nothing() {
        let mut o = Outbox::new(100);
        o.push([
            ev(EventKind::Discovered, "a@h"),
            ev(EventKind::Heard, "a@h"),
            ev(EventKind::Left, "b@h"),
            ev(EventKind::Discovered, "b@h"),
        ]);
        let (taken, _) = o.take(10);
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
        o.push([ev(EventKind::Discovered, "a@h"), changed]);
        let (taken, _) = o.take(10);
        assert_eq!(kinds(&taken), [(EventKind::Discovered, "a@h")]);
        assert_eq!(taken[0].tags, vec![2, 3, 1, b'k', b'v']);
        // Once the discovery was taken, a change is a change.
        let (taken, _) = {
            o.push([ev(EventKind::TagsChanged, "a@h")]);
            o.take(10)
        };
        assert_eq!(kinds(&taken), [(EventKind::TagsChanged, "a@h")]);
    }

    #[test]
    fn an_owner_that_never_takes_holds_at_most_capacity_events() {
        let mut o = Outbox::new(1000);
        let mut told = 0;
        for i in 0..100_000 {
            told += o.push([ev(EventKind::Discovered, &format!("n{}@h", i % 5000))]) as u32;
        }
        assert_eq!(told, 1);
        assert_eq!(o.len(), 1000);
        assert_eq!(o.dropped + o.coalesced + 1000, 100_000);
    }
}
