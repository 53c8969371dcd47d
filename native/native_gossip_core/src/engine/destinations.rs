//! Where every datagram goes: the group, the seeds, peers first heard by unicast, a
//! unicast answer to a sender just discovered that way (never more bytes to an
//! unproven address than it sent: see `unicast`).

use std::net::SocketAddr;
use std::time::Instant;

use super::{Destination, Engine, Transmit, Via};
use crate::peers::{EventKind, PeerEvent};

impl Engine {
    /// Keeps the unicast destinations in step with an event: a peer heard by unicast
    /// is sent heartbeats that way while it lives (and answered at once when new); one
    /// that is lost, left or forgotten is not any more.
    /// (An address that has not proven itself gets no more bytes than it sent: see
    /// `unicast`.)
    pub(super) fn route(
        &mut self,
        e: &PeerEvent,
        via: Via,
        from: SocketAddr,
        len: usize,
        now: Instant,
    ) {
        match e.kind {
            EventKind::Discovered | EventKind::Heard if via == Via::Unicast => {
                if e.kind == EventKind::Discovered && !self.seeds.contains(&from) {
                    self.unicast.answer(from, e.proven, len, now);
                }
                if !self.seeds.contains(&from) {
                    self.unicast.learn(&e.name, from, e.proven, len, now);
                }
            }
            EventKind::Lost | EventKind::Left | EventKind::Forgotten => {
                self.unicast.forget(&e.name);
            }
            _ => {}
        }
    }

    /// Replaces the seeds.
    pub fn set_seeds(&mut self, seeds: Vec<SocketAddr>) {
        self.seeds = seeds;
    }

    /// Queues `bytes` for the group, every seed and every address learned by unicast
    /// (each once; an unproven one only within its credit).
    pub(super) fn queue_for_everyone(&mut self, bytes: Vec<u8>, now: Instant) {
        let learned = self.unicast.destinations(&self.seeds, bytes.len(), now);
        self.stats.unicast_withheld = self.unicast.withheld();
        let unicast: Vec<Destination> = self
            .seeds
            .iter()
            .copied()
            .chain(learned)
            .map(Destination::Unicast)
            .collect();
        for to in std::iter::once(Destination::Group).chain(unicast) {
            let bytes = bytes.clone();
            self.queue.push_back(Transmit { to, bytes });
        }
    }
}
