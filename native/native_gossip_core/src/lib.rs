//! The protocol core of NativeGossip: BEAM nodes that find each other by UDP multicast
//! heartbeats.
//!
//! Sans-IO, as quinn-proto is: it takes bytes, their source and the time, and returns
//! what to send, where, and what to tell the owner. No socket, no thread, no libc: its
//! dependencies are the cryptography alone (a test checks it), and the sockets and the
//! driver thread are the crate `native_gossip_io`. Plain Rust with no BEAM dependency,
//! in layers (see `docs/ARCHITECTURE.md`):
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
//! - [`unicast`]: destinations learned from the network, and what each may be sent.
//! - [`outbox`]: events waiting for the owner, bounded, coalesced per peer.

pub mod auth;
pub mod compat;
pub mod engine;
pub mod limiter;
pub mod name;
pub mod outbox;
pub mod peers;
pub mod reason;
pub mod unicast;
pub mod wire;

pub use auth::Keyring;
pub use engine::{Config, Destination, Engine, NameCheck, Stats, Transmit, Via};
pub use peers::{EventKind, Member, PeerEvent, PeerState};
pub use reason::DropReason;

#[cfg(test)]
mod tests {
    /// The protocol crate stays sans-IO: nothing that opens a socket, starts a thread or
    /// calls libc among its dependencies (those are `native_gossip_io`'s).
    #[test]
    fn no_io_dependencies() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .expect("a [dependencies] table")
            .split("\n[")
            .next()
            .unwrap();
        for io in [
            "socket2",
            "libc",
            "crossbeam",
            "parking_lot",
            "mio",
            "tokio",
        ] {
            assert!(!deps.contains(io), "native_gossip_core depends on {io}");
        }
    }
}
