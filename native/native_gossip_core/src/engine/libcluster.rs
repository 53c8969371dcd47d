//! `compat: :libcluster`: reading libcluster Gossip heartbeats and sending a copy of
//! each heartbeat in that format.

use std::net::SocketAddr;
use std::time::Instant;

use super::{first_leads, Engine};
use crate::compat;
use crate::peers::PeerEvent;
use crate::reason::DropReason;
use crate::wire;

/// With `compat: :libcluster`: most names remembered as speaking the native format
/// (whose libcluster-format heartbeats are then dropped, even after they are forgotten).
pub const MAX_NATIVE_NAMES: usize = 65_536;

impl Engine {
    /// A libcluster Gossip heartbeat: plaintext without a secret, encrypted with one.
    pub(super) fn accept_legacy(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Option<PeerEvent>, DropReason> {
        let name = compat::decode(data, self.legacy.as_deref().unwrap_or_default())?;
        if name == self.name {
            return Err(DropReason::OwnPacket);
        }
        // A node that also sends native heartbeats is known by those, which carry its
        // incarnation and liveness: its libcluster heartbeats add nothing, and once it
        // is forgotten, would let a capture of one bring it back forever.
        if self.native_names.contains(&name)
            || self.peers.incarnation(&name).is_some_and(|i| i != 0)
        {
            return Err(DropReason::LegacyNativeName);
        }
        // libcluster's format has no label: it belongs to no labelled cluster.
        if !self.cluster.is_empty() {
            return Err(DropReason::OtherCluster);
        }
        let new = !self.peers.contains(&name);
        let counts = new && self.name_allowed(&name)?;
        if let Some(limiter) = &mut self.limiter {
            if new && !limiter.admit(from.ip(), now) {
                return Err(DropReason::RateLimited);
            }
        }
        self.legacy_sequence += 1;
        let hb = wire::Heartbeat {
            name: &name,
            incarnation: 0,
            sequence: self.legacy_sequence,
            timestamp_ms: 0,
            leaving: false,
            joining: false,
            newcomer: false,
            options: &[],
        };
        let mut event = self.observe(&hb, from, now)?;
        if counts {
            self.names_made += 1;
        }
        self.stats.accepted += 1;
        if let Some(e) = &mut event {
            // The format has no replay protection: its source is never proven, and a
            // replay must not make this node hurry to connect: a new node leaves the
            // first go to the libcluster node (which connects to whatever it hears),
            // a settled one flips the pair's coin.
            e.proven = false;
            e.lead = !self.newcomer(now) && first_leads(&self.name, &name);
            self.stats.events += 1;
        }
        Ok(event)
    }

    /// The libcluster Gossip heartbeat to send beside each native one, when this
    /// engine speaks that format: encrypted under the first secret if there is one,
    /// with an IV derived by HMAC from this incarnation and a counter (unpredictable
    /// without the secret, never repeated).
    pub(super) fn legacy_packet(&mut self) -> Option<Vec<u8>> {
        let Some(&key) = self.legacy.as_ref()?.first() else {
            return Some(compat::encode_plain(&self.name));
        };
        self.sequence += 1;
        let mut input = b"native_gossip legacy iv".to_vec();
        input.extend_from_slice(&self.incarnation.to_be_bytes());
        input.extend_from_slice(&self.sequence.to_be_bytes());
        let mac = self
            .keys
            .sign(&input)
            .expect("a key implies a signing secret");
        let iv: [u8; 16] = mac[..16].try_into().expect("16 of 32 bytes");
        Some(compat::encode_encrypted(&self.name, &key, &iv))
    }
}
