//! The protocol core of NativeGossip: BEAM nodes that find each other by UDP multicast
//! heartbeats.
//!
//! Plain Rust with no BEAM dependency:
//!
//! - [`wire`]: the v1 packet format (`docs/PROTOCOL.md`), decoding that never panics.
//! - [`auth`]: HMAC-SHA256 with a ring of secrets (first signs, any verifies).
//! - [`name`]: the node-name rules applied before a name can become an atom.
//! - [`peers`]: the peer table and the events it produces.
//! - [`limiter`]: without a secret, a bound on new names per source address.
//! - [`engine`]: the protocol as a state machine of (datagram, time) with no I/O.
//! - [`driver`]: the socket and the OS thread that runs an engine; [`batch`]: its
//!   `recvmmsg` receive path.

pub mod auth;
pub mod batch;
pub mod compat;
pub mod driver;
pub mod engine;
pub mod limiter;
pub mod name;
pub mod peers;
pub mod wire;

pub use auth::Keyring;
pub use driver::{EventSink, SocketConfig, StartError, Topology};
pub use engine::{Config, Engine, Stats};
pub use peers::{EventKind, Member, PeerEvent, PeerState};
pub use wire::DropReason;
