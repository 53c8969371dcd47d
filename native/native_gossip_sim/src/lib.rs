//! A deterministic network simulator of the NativeGossip protocol (`make sim`).
//!
//! N engines of `native_gossip_core` (the protocol itself, unchanged: the simulator
//! only feeds them datagrams and time), a virtual clock, a network model with
//! per-datagram latency, loss, duplication, reordering and one-way or two-way
//! partitions, multicast fan-out and unicast, and a model of the BEAM side (the
//! connector: the tie-break, the follower's wait, the backoff, connections closed by a
//! clean stop, failure detection's disconnect), so that "meshed" can be measured. No
//! socket, thread or BEAM: 1024 nodes run on one core. The same seed gives the same
//! run. `scenario` holds what docs/BENCHMARKS.md reports.

pub mod calibrate;
pub mod chart;
mod checks;
mod connector;
pub mod net;
pub mod node;
pub mod rng;
pub mod scenario;
pub mod sim;

pub use net::LinkModel;
pub use sim::{Settings, Sim};
