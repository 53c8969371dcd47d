//! An engine's settings, with the library's defaults, and why an engine cannot be made
//! from them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::NameCheck;
use crate::auth::Keyring;
use crate::name::NameError;
use crate::wire::OptionsError;

/// Settings of one topology's engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name, `name@host`.
    pub node_name: String,
    pub keys: Keyring,
    pub heartbeat_interval: Duration,
    pub lost_after: Duration,
    pub forget_after: Duration,
    pub max_peers: usize,
    /// Without a secret: new names admitted per second per source address, and the
    /// burst allowed. Ignored with a secret (names are then authenticated).
    pub new_peer_rate: u32,
    pub new_peer_burst: u32,
    /// Also read and send libcluster Gossip heartbeats (see `compat`).
    pub compat_libcluster: bool,
    /// Addresses every heartbeat also goes to by unicast (replaced by `set_seeds`).
    pub seeds: Vec<SocketAddr>,
    /// Most new names this engine ever admits that `name_exists` does not know (on the
    /// BEAM each becomes an atom, which is never freed); `None`: no bound.
    pub max_names: Option<usize>,
    pub name_exists: NameCheck,
    /// With a secret: heartbeats signed at a time further than this from the local
    /// clock (see `set_clock`) are dropped as `Stale`. `None`: not checked.
    pub max_clock_skew: Option<Duration>,
    /// The cluster label every heartbeat carries, and every heartbeat accepted must
    /// carry (empty: none).
    pub cluster: String,
    /// This node's tags, sent in every heartbeat (`set_tags` replaces them).
    pub tags: Vec<(String, String)>,
    /// This node's distribution listen port, sent in every heartbeat (0: not sent).
    pub dist_port: u16,
    /// With a secret: this host's own addresses (of the topology's family; at most
    /// `wire::MAX_ADDRS` are sent), listed in every heartbeat so that receivers drop
    /// a replay of it from anywhere else (`foreign_source`). `set_own_addresses`
    /// replaces them when the host's addresses change.
    pub own_addresses: Vec<IpAddr>,
    /// The port of this node's answer socket (0: none; `set_answer_port` sets it once
    /// the socket is bound): with a secret, sent in every heartbeat (`OPT_ANSWER`) so
    /// that members answer its joining heartbeats there by unicast.
    pub answer_port: u16,
}

impl Default for Config {
    /// The library's defaults (README, "Options"), without a secret, for a node named
    /// `nonode@localhost` (set `node_name`): a 1.5 s interval, lost after 4.5 s,
    /// forgotten after 60 s, 10 000 peers, 5 new names per second per source.
    fn default() -> Self {
        Config {
            node_name: "nonode@localhost".into(),
            keys: Keyring::none(),
            heartbeat_interval: Duration::from_millis(1500),
            lost_after: Duration::from_millis(4500),
            forget_after: Duration::from_secs(60),
            max_peers: 10_000,
            new_peer_rate: 5,
            new_peer_burst: 10,
            compat_libcluster: false,
            seeds: Vec::new(),
            max_names: None,
            name_exists: NameCheck::default(),
            max_clock_skew: None,
            cluster: String::new(),
            tags: Vec::new(),
            dist_port: 0,
            own_addresses: Vec::new(),
            answer_port: 0,
        }
    }
}

/// Why an engine cannot be made from a `Config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// This node's name cannot go on the wire.
    Name(NameError),
    /// The cluster label or the tags cannot.
    Options(OptionsError),
}
