//! The options block every heartbeat carries (label, tags, distribution port, with a
//! secret this host's addresses), its changes at run time, and the doctor's goodbye.

use std::net::IpAddr;

use super::{ConfigError, Engine};
use crate::auth::Keyring;
use crate::name;
use crate::wire::{self, OptionsError, Outgoing};

/// The options block of every heartbeat: the cluster label, the tags, the distribution
/// port, and with a secret this host's addresses and the answer port (a member
/// answers there by unicast only when it can trust the source, which takes a secret).
pub(super) fn options_block(
    cluster: &str,
    tags: &[(String, String)],
    dist_port: u16,
    keys: &Keyring,
    addrs: &[IpAddr],
    answer_port: u16,
) -> Result<Vec<u8>, OptionsError> {
    let mut options = wire::options_block(cluster, tags)?;
    options.extend(wire::dist_port_record(dist_port));
    if keys.is_signing() {
        options.extend(wire::address_records(addrs));
        options.extend(wire::answer_port_record(answer_port));
    }
    Ok(options)
}

/// A goodbye (LEAVING) heartbeat in `name`, as a node with these keys, label and host
/// addresses would send it: what `mix native_gossip.doctor` sends to check the path to
/// the group. A goodbye of a name nobody knows is accepted and changes nothing.
pub fn goodbye(
    name: &str,
    keys: &Keyring,
    cluster: &str,
    addrs: &[IpAddr],
    incarnation: u64,
    wall_ms: u64,
) -> Result<Vec<u8>, ConfigError> {
    name::validate(name.as_bytes()).map_err(ConfigError::Name)?;
    let options = options_block(cluster, &[], 0, keys, addrs, 0).map_err(ConfigError::Options)?;
    let outgoing = Outgoing {
        name,
        incarnation,
        sequence: 1,
        timestamp_ms: wall_ms,
        leaving: true,
        joining: false,
        newcomer: false,
        options: &options,
    };
    wire::encode(&outgoing, keys).map_err(ConfigError::Name)
}

impl Engine {
    /// Replaces this node's tags; the next heartbeat carries them (see `announce` to
    /// send one at once).
    pub fn set_tags(&mut self, tags: &[(String, String)]) -> Result<(), OptionsError> {
        self.options = self.options_for(tags)?;
        Ok(())
    }

    /// Replaces this host's addresses listed in heartbeats (with a secret); the next
    /// heartbeat carries them.
    pub fn set_own_addresses(&mut self, addrs: Vec<IpAddr>) {
        if addrs != self.own_addresses {
            let tags = self.tags_now();
            self.own_addresses = addrs;
            self.options = self
                .options_for(&tags)
                .expect("the same label and tags were accepted before");
        }
    }

    /// Sets the port of this node's answer socket, sent in every heartbeat (with a
    /// secret): members answer its JOINING heartbeats there by unicast. 0: none.
    pub fn set_answer_port(&mut self, port: u16) {
        if port != self.answer_port {
            let tags = self.tags_now();
            self.answer_port = port;
            self.options = self
                .options_for(&tags)
                .expect("the same label and tags were accepted before");
        }
    }

    /// This node's own addresses as sent (with a secret).
    pub fn own_addresses(&self) -> &[IpAddr] {
        &self.own_addresses
    }

    pub(super) fn tags_now(&self) -> Vec<(String, String)> {
        wire::tags(&self.options)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    pub(super) fn options_for(&self, tags: &[(String, String)]) -> Result<Vec<u8>, OptionsError> {
        options_block(
            &self.cluster,
            tags,
            self.dist_port,
            &self.keys,
            &self.own_addresses,
            self.answer_port,
        )
    }
}
