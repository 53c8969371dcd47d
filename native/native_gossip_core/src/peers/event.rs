//! What the peer table tells its owner: the events, and the rows of `members`.

use std::net::SocketAddr;

/// What a peer is doing, as far as heartbeats tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Heard within `lost_after`.
    Alive,
    /// Silent for longer than `lost_after`.
    Lost,
    /// Announced that this incarnation is leaving.
    Left,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Alive => "alive",
            PeerState::Lost => "lost",
            PeerState::Left => "left",
        }
    }
}

/// What the owner of the topology is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// First heard, or heard again after `Lost`, or a new incarnation.
    Discovered,
    /// Heard again while not marked connected (so the owner retries).
    Heard,
    /// The peer announced it is leaving.
    Left,
    /// No heartbeat for `lost_after`.
    Lost,
    /// Removed from the table after `forget_after` without a heartbeat.
    Forgotten,
    /// Same incarnation, other tags (the peer changed them at run time).
    TagsChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Discovered => "discovered",
            EventKind::Heard => "heard",
            EventKind::Left => "left",
            EventKind::Lost => "lost",
            EventKind::Forgotten => "forgotten",
            EventKind::TagsChanged => "tags_changed",
        }
    }
}

/// One message for the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEvent {
    pub kind: EventKind,
    pub name: String,
    pub addr: SocketAddr,
    pub incarnation: u64,
    /// For `Discovered` and `Heard`: this node should connect at once, rather than give
    /// the peer the first go (see `Engine`). Both sides of a pair agree on it.
    pub lead: bool,
    /// The peer's tags as it last sent them: tag records (see `wire::tags`).
    pub tags: Vec<u8>,
    /// The peer's distribution listen port as it last said (0: it does not say).
    pub dist_port: u16,
    /// `addr` is known to be the peer's: its heartbeat was authenticated with the
    /// secret and sent from an address it lists as its own, or (no secret) a
    /// distribution connection with the peer proved that address (`pin`). Where a
    /// node connects may follow such an address; an unproven one is only a hint.
    pub proven: bool,
}

/// A row of `members`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub addr: SocketAddr,
    pub incarnation: u64,
    pub state: PeerState,
    pub connected: bool,
    /// Wall-clock time of the last accepted heartbeat, ms since the Unix epoch.
    pub last_seen_ms: u64,
    /// Tag records (see `wire::tags`).
    pub tags: Vec<u8>,
    /// Distribution listen port (0: unknown).
    pub dist_port: u16,
}
