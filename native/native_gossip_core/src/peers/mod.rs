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
use crate::wire::Heartbeat;

mod answers;
mod event;
mod peer;

pub use event::{EventKind, Member, PeerEvent, PeerState};
use peer::Peer;
pub use peer::{ANSWER_SPACING, CHANGE_BURST, MAX_ANSWERS};

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
    /// The peer the last `observe` pinned to its connection's address, if it did
    /// (see `pin`; taken by `take_pinned_late`).
    pinned_late: Option<(String, std::net::IpAddr)>,
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
            pinned_late: None,
        }
    }

    /// The peer the last `observe` pinned to the address of its running connection
    /// (a heartbeat from there, after `pin` found the peer moved by a forged one).
    pub fn take_pinned_late(&mut self) -> Option<(String, std::net::IpAddr)> {
        self.pinned_late.take()
    }

    pub fn len(&self) -> usize {
        self.peers.len()
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
        let (authenticated, timing) = (self.authenticated, self.timing);
        let Some(peer) = self.peers.get_mut(hb.name) else {
            return self.admit(hb, from, now);
        };
        if !authenticated && peer.connected && peer.connection == Some(from.ip()) {
            // The address of the peer's running connection, which `pin` could not pin
            // (a forged heartbeat had moved the peer just before): pinned now, whatever
            // the heartbeat says, its source being the connection's own address. (A
            // host whose connections use another address than its heartbeats is
            // pinned this way only by a heartbeat spoofed from its connection's
            // address, which is still its own: use a `:secret` there.)
            peer.pinned = Some(from.ip());
            peer.connection = None;
            self.pinned_late = Some((hb.name.to_owned(), from.ip()));
        }
        let moved = peer.admits(hb, from, authenticated)?;
        let kind = peer.apply(hb, from, now, moved, timing.heard_gap);
        let (kind, retry) = peer.budget(kind, authenticated, now, timing.change_gap);
        let proven = authenticated || peer.pinned.is_some();
        let event = kind.map(|k| peer.event(k, hb.name, proven));
        let deadline = peer.deadline(&timing);
        if let Some(at) = retry {
            self.arm(at);
        }
        self.arm(deadline);
        Ok(event)
    }

    /// A heartbeat of a name not in the table: a new peer, made room for if the table
    /// is full.
    fn admit(
        &mut self,
        hb: &Heartbeat<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
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
        let peer = Peer::new(hb, from, now, admitted);
        let event = peer.event(EventKind::Discovered, hb.name, self.authenticated);
        self.peers.insert(hb.name.to_owned(), peer);
        self.arm(now + self.timing.lost_after);
        Ok(Some(event))
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
                if !connected {
                    p.connection = None;
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
    /// Returns whether the address is pinned now. When it is not, the connection's
    /// address is kept while it runs: a forged heartbeat may have moved the peer just
    /// before, and the peer's next heartbeat from that address pins it (`observe`).
    pub fn pin(&mut self, name: &str, ip: std::net::IpAddr) -> bool {
        match self.peers.get_mut(name) {
            Some(p) if p.addr.ip() == ip || p.pinned == Some(ip) => {
                p.pinned = Some(ip);
                p.connection = None;
                true
            }
            Some(p) if p.pinned.is_none() => {
                p.connection = Some(ip);
                false
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
mod tests;
