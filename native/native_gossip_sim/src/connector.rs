//! The model of the BEAM side of each simulated node: what its connector does with
//! the engine's events (lib/native_gossip/connector.ex): the tie-break's leader
//! connects at once, the follower after its wait (or at once when reported again
//! within it); a failed attempt backs off; a lost peer that cannot be reached is
//! disconnected by failure detection. And what the
//! owner is told (lib/native_gossip/detector.ex): a peer the engine reports lost is
//! published `:lost` at once if it is not connected; a connected one is probed, and
//! published `:lost` only if the probe fails or its connection drops while it is
//! still silent.

use std::time::Duration;

use native_gossip_core::{EventKind, PeerEvent};

use crate::sim::{Event, Sim};

/// The connector's wait before a follower connects itself (@defer_ms).
const FOLLOWER_WAIT_US: u64 = 100_000;
/// A connection attempt to an unreachable node fails after this (net_setuptime 7 s).
const CONNECT_TIMEOUT_US: u64 = 7_000_000;
/// Failure detection's probe: a lost peer that cannot be reached is disconnected this
/// long after it is reported lost (:probe_timeout).
const PROBE_TIMEOUT_US: u64 = 300_000;
/// The connector's first backoff and its cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Sim {
    /// The connector model: what the BEAM side does with an event.
    pub(crate) fn on_event(&mut self, i: usize, e: PeerEvent) {
        self.nodes[i].counters.events += 1;
        let Some(p) = self.peer_index(&e.name) else {
            return;
        };
        match e.kind {
            EventKind::Discovered | EventKind::Heard => {
                self.nodes[i].known.insert(p);
                self.nodes[i].silent.remove(&p);
                let node = &self.nodes[i];
                if node.deferred.contains(&p) {
                    // Reported again within the wait: the peer asked again for what
                    // this node answered (Connector.heard/5). The turn is now, unless
                    // the peer's handshake is under way.
                    if e.kind == EventKind::Heard && !self.nodes[p].attempting.contains(&i) {
                        self.attempt(i, p);
                    }
                    return;
                }
                if node.connected.contains(&p) || node.attempting.contains(&p) {
                    return;
                }
                if e.lead {
                    self.attempt(i, p);
                } else {
                    self.nodes[i].deferred.insert(p);
                    self.push(self.now + FOLLOWER_WAIT_US, Event::Attempt(i, p));
                }
            }
            EventKind::Lost => {
                self.nodes[i].known.remove(&p);
                if self.reachable(i, p) {
                    self.nodes[i].counters.false_silences += 1;
                }
                if self.nodes[i].connected.contains(&p) {
                    self.nodes[i].silent.insert(p);
                    self.push(self.now + PROBE_TIMEOUT_US, Event::Probe(i, p));
                } else {
                    self.publish_lost(i, p);
                }
            }
            EventKind::Left | EventKind::Forgotten => {
                self.nodes[i].known.remove(&p);
                self.nodes[i].silent.remove(&p);
                // A turn still to come is not taken (Connector.turn/2).
                self.nodes[i].deferred.remove(&p);
            }
            EventKind::TagsChanged => {}
        }
    }

    /// The follower's turn: connects unless the peer left or was forgotten since the
    /// wait began (lib/native_gossip/connector.ex, `turn/2`).
    pub(crate) fn turn(&mut self, a: usize, b: usize) {
        if self.nodes[a].deferred.contains(&b) {
            self.attempt(a, b);
        }
    }

    pub(crate) fn attempt(&mut self, a: usize, b: usize) {
        self.nodes[a].deferred.remove(&b);
        if !self.nodes[a].up()
            || self.nodes[a].connected.contains(&b)
            || !self.nodes[a].attempting.insert(b)
        {
            return;
        }
        if self.nodes[b].up() && self.net.connectable(a, b) {
            // TCP, then the distribution handshake: about four one-way trips.
            let d: u64 = (0..4).map(|_| self.net.latency_us()).sum::<u64>() + 1_000;
            self.push(self.now + d, Event::Connected(a, b, true));
        } else {
            self.push(self.now + CONNECT_TIMEOUT_US, Event::Connected(a, b, false));
        }
    }

    pub(crate) fn connected(&mut self, a: usize, b: usize, ok: bool) {
        if !self.nodes[a].attempting.remove(&b) || !self.nodes[a].up() {
            return;
        }
        let now = self.at(self.now);
        let reachable = self.nodes[b].up() && self.net.connectable(a, b);
        if ok && reachable {
            self.nodes[a].backoff.remove(&b);
            if self.nodes[a].connected.insert(b) {
                self.nodes[b].connected.insert(a);
                self.edges += 1;
                let (name_a, ip_a) = (self.nodes[a].name.clone(), self.nodes[a].ip());
                let (name_b, ip_b) = (self.nodes[b].name.clone(), self.nodes[b].ip());
                if let Some(e) = self.nodes[a].engine.as_mut() {
                    e.set_connected(&name_b, true, Some(ip_b), now);
                }
                if let Some(e) = self.nodes[b].engine.as_mut() {
                    e.set_connected(&name_a, true, Some(ip_a), now);
                }
            }
        } else {
            let backoff = self.nodes[a]
                .backoff
                .get(&b)
                .map_or(FIRST_BACKOFF, |d| (*d * 2).min(MAX_BACKOFF));
            self.nodes[a].backoff.insert(b, backoff);
            let name_b = self.nodes[b].name.clone();
            if let Some(e) = self.nodes[a].engine.as_mut() {
                e.hold(&name_b, backoff, now);
            }
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.nodes[b].up() && self.net.connectable(a, b)
    }

    /// The owner of `a` is told `b` is lost: counted if `b` was up and reachable.
    fn publish_lost(&mut self, a: usize, b: usize) {
        if self.reachable(a, b) {
            self.nodes[a].counters.false_lost += 1;
        }
    }

    pub(crate) fn disconnect(&mut self, a: usize, b: usize) {
        if !self.nodes[a].connected.remove(&b) {
            return;
        }
        self.nodes[b].connected.remove(&a);
        self.edges -= 1;
        // A silent peer whose connection drops is published lost (either side).
        for (x, y) in [(a, b), (b, a)] {
            if self.nodes[x].up() && self.nodes[x].silent.remove(&y) {
                self.publish_lost(x, y);
            }
        }
        let now = self.at(self.now);
        let (name_a, name_b) = (self.nodes[a].name.clone(), self.nodes[b].name.clone());
        if let Some(e) = self.nodes[a].engine.as_mut() {
            e.set_connected(&name_b, false, None, now);
        }
        if let Some(e) = self.nodes[b].engine.as_mut() {
            e.set_connected(&name_a, false, None, now);
        }
    }

    /// Failure detection's probe of a silent peer: published lost and disconnected if
    /// it cannot be reached (the connection is TCP: modelled as lossless, so a
    /// reachable peer always answers), else probed again after `lost_after` while it
    /// stays silent.
    pub(crate) fn probe(&mut self, a: usize, b: usize) {
        if !self.nodes[a].up() || !self.nodes[a].silent.contains(&b) {
            return;
        }
        if !self.nodes[a].connected.contains(&b) {
            self.nodes[a].silent.remove(&b);
        } else if self.reachable(a, b) {
            let again = self.now + self.settings.lost_after.as_micros() as u64;
            self.push(again, Event::Probe(a, b));
        } else {
            self.disconnect(a, b);
        }
    }
}
