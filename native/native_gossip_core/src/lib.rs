//! The protocol core of NativeGossip: BEAM nodes that find each other by UDP multicast
//! heartbeats.
//!
//! Plain Rust with no BEAM dependency, in layers (see `docs/ARCHITECTURE.md`):
//!
//! - [`wire`]: the v1 packet format (`docs/PROTOCOL.md`), decoding that never panics.
//! - [`auth`]: HMAC-SHA256 with a ring of secrets (first signs, any verifies).
//! - [`compat`]: libcluster's Gossip format, for migrations.
//! - [`name`]: the node-name rules applied before a name can become an atom.
//! - [`reason`]: why a datagram is dropped, with the text that explains it.
//! - [`peers`]: the peer table and the events it produces.
//! - [`limiter`]: without a secret, a bound on new names per source address.
//! - [`engine`]: the protocol as a state machine of (datagram, time) with no I/O: it
//!   decides every datagram sent and where it goes.
//! - [`socket`]: every socket call, and the only platform-specific code.
//! - [`outbox`]: events waiting for the owner, bounded, coalesced per peer.
//! - [`driver`]: the OS thread that runs an engine over the sockets; [`topology`]: the
//!   handle its owner holds, which starts it and passes commands to it.

pub mod auth;
pub mod compat;
pub mod driver;
pub mod engine;
pub mod limiter;
pub mod name;
pub mod outbox;
pub mod peers;
pub mod reason;
pub mod socket;
pub mod topology;
pub mod unicast;
pub mod wire;

pub use auth::Keyring;
pub use engine::{Config, Destination, Engine, NameCheck, Stats, Transmit, Via};
pub use peers::{EventKind, Member, PeerEvent, PeerState};
pub use reason::DropReason;
pub use socket::{SocketConfig, StartError};
pub use topology::{EventSink, Topology};
