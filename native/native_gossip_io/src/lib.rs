//! The I/O of NativeGossip around its sans-IO protocol core (`native_gossip_core`):
//!
//! - [`socket`]: every socket call, and the only platform-specific code.
//! - [`driver`]: the OS thread that runs an engine over the sockets.
//! - [`topology`]: the handle its owner holds, which starts the thread and passes
//!   commands to it.
//!
//! Dependencies go one way: this crate uses the core, never the other way round.

pub mod driver;
pub mod socket;
pub mod topology;

pub use socket::{SocketConfig, StartError};
pub use topology::{wall_ms, EventSink, Topology};
