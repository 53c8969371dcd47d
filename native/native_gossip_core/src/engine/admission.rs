//! What a datagram must pass to be accepted: the format and the keys (`wire`), the
//! label, the node's own name, the clock (`stale`), the source (`foreign_source`), the
//! atom cap (`name_cap`) and, without a secret, the new-name rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{Engine, MAX_NATIVE_NAMES};
use crate::compat;
use crate::peers::PeerEvent;
use crate::reason::DropReason;
use crate::wire;

/// Most distinct other cluster labels remembered (for the doctor).
pub const MAX_OTHER_CLUSTERS: usize = 8;

/// Tells whether a name already exists on the owner's side (on the BEAM: as an atom),
/// so that admitting it again costs nothing there. The default knows no name.
#[derive(Clone, Default)]
pub struct NameCheck(Option<Arc<NameExists>>);

type NameExists = dyn Fn(&str) -> bool + Send + Sync;

impl NameCheck {
    pub fn new(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        NameCheck(Some(Arc::new(f)))
    }

    pub(super) fn exists(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|f| f(name))
    }
}

impl std::fmt::Debug for NameCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "NameCheck(..)"
        } else {
            "NameCheck(none)"
        })
    }
}

impl Engine {
    pub(super) fn accept(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        if self.legacy.is_some() && !data.starts_with(&wire::MAGIC) {
            return self.accept_legacy(data, from, now);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = match wire::decode_with(data, &self.keys, &mut scratch) {
            Ok(hb) => self.accept_heartbeat(hb, from, now),
            Err(DropReason::BadMagic | DropReason::TooShort)
                if compat::is_heartbeat(data, &self.libcluster_keys) =>
            {
                Err(DropReason::LibclusterFormat)
            }
            Err(reason) => Err(reason),
        };
        self.scratch = scratch;
        result
    }

    pub(super) fn accept_heartbeat(
        &mut self,
        hb: wire::Heartbeat<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        self.check_label(hb.cluster())?;
        self.check_sender(&hb, from, now)?;
        let new = !hb.leaving && !self.peers.contains(hb.name);
        let counts = new && self.name_allowed(hb.name)?;
        if let Some(limiter) = &mut self.limiter {
            if new && !limiter.admit(from.ip(), now) {
                return Err(DropReason::RateLimited);
            }
        }
        let acked = self.acknowledges_this(&hb);
        let mut event = match self.observe(&hb, from, now) {
            Ok(event) => event,
            Err(DropReason::Replay) if acked && self.peers.late_answer(&hb) => {
                // Only its acknowledgement counts (see `late_answer`).
                self.acks.count(self.count_in(&hb));
                self.stats.accepted += 1;
                return Ok(None);
            }
            Err(reason) => return Err(reason),
        };
        if counts {
            self.names_made += 1;
        }
        // Only a name admitted (through the rate limit and the name cap) is remembered
        // as native: a goodbye of a name never heard adds nothing.
        if self.legacy.is_some()
            && self.native_names.len() < MAX_NATIVE_NAMES
            && self.peers.contains(hb.name)
            && !self.native_names.contains(hb.name)
        {
            self.native_names.insert(hb.name.to_owned());
        }
        let lead = self.leads(&hb, now);
        if let Some(e) = &mut event {
            e.lead = lead;
        } else if self.newcomer_asks_again(&hb, lead, now) {
            event = self.peers.heard_again(&hb, now);
        }
        self.stats.accepted += 1;
        if (hb.joining || self.answers_answer(&hb, acked, now)) && !hb.leaving {
            let to = self.answer_address(&hb, from);
            // Its first packet, heard: this node was up before it (see `answer`).
            let unheard = !lead && hb.sequence == 1;
            self.answer(hb.name, to, hb.incarnation, unheard, now);
        }
        self.note_acks(&hb, acked, event.as_ref());
        if event.is_some() {
            self.stats.events += 1;
        }
        Ok(event)
    }

    /// `PeerTable::observe`; a peer it pinned to its connection's address (without a
    /// secret, see `PeerTable::pin`) has that unicast destination proven too.
    pub(super) fn observe(
        &mut self,
        hb: &wire::Heartbeat<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        let observed = self.peers.observe(hb, from, now);
        if let Some((name, ip)) = self.peers.take_pinned_late() {
            self.unicast.prove(&name, ip);
        }
        observed
    }

    /// Where answers to `hb` go by unicast, if anywhere: with a secret the heartbeat is
    /// bound to its source (`check_sender`), so its answer port may be trusted, and the
    /// answer goes there, to the newcomer alone. Otherwise (or from an older node) it
    /// is multicast. (`from` with the port replaced keeps an IPv6 link-local scope.)
    fn answer_address(&self, hb: &wire::Heartbeat<'_>, from: SocketAddr) -> Option<SocketAddr> {
        let port = hb.answer_port().filter(|_| self.keys.is_signing())?;
        let mut to = from;
        to.set_port(port);
        Some(to)
    }

    /// A heartbeat of another `:cluster` label is dropped, and the label remembered
    /// for the doctor (a few of them).
    fn check_label(&mut self, cluster: &[u8]) -> Result<(), DropReason> {
        if cluster == self.cluster.as_bytes() {
            return Ok(());
        }
        if self.other_clusters.len() < MAX_OTHER_CLUSTERS {
            let label = String::from_utf8_lossy(cluster).into_owned();
            if !self.other_clusters.contains(&label) {
                self.other_clusters.push(label);
            }
        }
        Err(DropReason::OtherCluster)
    }

    /// This node's own name (looped back, or another node's claim), then with a secret
    /// the signed clock (`stale`) and the source (`foreign_source`), in that order: a
    /// replay too old is `stale` wherever it comes from; a fresh one from another host
    /// than its sender's is `foreign_source`.
    fn check_sender(
        &self,
        hb: &wire::Heartbeat<'_>,
        from: SocketAddr,
        now: Instant,
    ) -> Result<(), DropReason> {
        if hb.name == self.name {
            return Err(if hb.incarnation == self.incarnation {
                DropReason::OwnPacket
            } else {
                DropReason::NameConflict
            });
        }
        if let (Some(skew), Some(wall), true) = (
            self.max_clock_skew,
            self.wall_at(now),
            self.keys.is_signing(),
        ) {
            if hb.timestamp_ms.abs_diff(wall) > skew.as_millis() as u64 {
                return Err(DropReason::Stale);
            }
        }
        if self.keys.is_signing() && !self.bound_to(hb, from) {
            return Err(DropReason::ForeignSource);
        }
        Ok(())
    }

    /// Whether a new name may still be admitted, and whether it counts against
    /// `max_names` (false when the owner already knows it).
    pub(super) fn name_allowed(&self, name: &str) -> Result<bool, DropReason> {
        let Some(max) = self.max_names else {
            return Ok(false);
        };
        if self.name_exists.exists(name) {
            Ok(false)
        } else if self.names_made >= max {
            Err(DropReason::NameCap)
        } else {
            Ok(true)
        }
    }

    /// With a secret: whether an authenticated heartbeat may have come from `from`: an
    /// address the sender lists as its own, or a configured seed (whose address the
    /// operator chose: a seed behind NAT is heard from its public address).
    pub(super) fn bound_to(&self, hb: &wire::Heartbeat<'_>, from: SocketAddr) -> bool {
        let ip = from.ip().to_canonical();
        wire::addresses(hb.options).any(|a| a.to_canonical() == ip)
            || self.seeds.iter().any(|s| s.ip().to_canonical() == ip)
    }
}
