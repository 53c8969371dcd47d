//! A running topology: the handle its owner holds (the NIF, inside a resource). It
//! opens the sockets, builds the engine and starts the driver thread, then passes the
//! owner's commands to that thread and answers `members`/`stats` from the engine.
//!
//! The thread holds an `Arc` of the shared state, never anything that owns the thread,
//! so dropping the last `Topology` stops it. `stop` joins; `Drop` only signals.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::driver::{JoinState, Worker};
use crate::engine::{Config, Engine, Stats};
use crate::peers::{Member, PeerEvent};
use crate::socket::{wake_pair, Join, SocketConfig, Sockets, StartError};

/// Where the thread delivers events. The NIF implements it with `OwnedEnv`; tests
/// with a channel.
pub trait EventSink: Send + 'static {
    /// Delivers one event; returns false when nobody listens any more (the thread stops).
    fn deliver(&mut self, event: &PeerEvent) -> bool;
    /// The thread is stopping because of a fault (a panic, a dead socket).
    fn fault(&mut self, reason: &str);
    /// Group membership changed: `Ok(())` joined (again), `Err(why)` not a member and
    /// retrying. Sent on changes only.
    fn membership(&mut self, status: Result<(), &str>);
}

pub(crate) enum Command {
    Announce,
    /// Test hook: panic on the thread (proves a native panic never takes the VM down).
    Panic,
    SetConnected(String, bool),
    Hold(String, Duration),
    SetSeeds(Vec<SocketAddr>),
    Stop {
        leave: bool,
    },
}

pub(crate) struct Shared {
    pub(crate) engine: Mutex<Engine>,
    /// Whether the socket is a member of the group right now.
    pub(crate) joined: AtomicBool,
}

/// A running topology. Cloning is not offered: the owner holds it (in the NIF, inside
/// a resource) and the thread holds only `Shared`.
pub struct Topology {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    wake: UnixDatagram,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Topology {
    /// Opens the socket and starts the thread. The first heartbeat leaves at once.
    pub fn start(
        config: Config,
        socket: SocketConfig,
        sink: impl EventSink,
    ) -> Result<Topology, StartError> {
        let now = Instant::now();
        // Grows across restarts as long as the clock does; a restarted node is then
        // told apart from its past self by every peer.
        let incarnation = wall_us();
        let seed = incarnation ^ (std::process::id() as u64) << 32;
        let mut config = config;
        config.seeds = same_family(std::mem::take(&mut config.seeds), &socket);
        let engine = Engine::new(config, now, incarnation, seed).map_err(|e| {
            StartError::InvalidNodeName(format!("this node's name cannot be announced: {e:?}"))
        })?;
        let sockets = Sockets::open(&socket)?;
        let joined = match sockets.join(&socket) {
            Join::Joined | Join::AlreadyMember => None,
            // An interface the user named and this host does not have is a mistake to
            // report now; the default interface may just not be up yet: keep retrying.
            Join::Failed(why) if socket.interface_chosen() => {
                return Err(StartError::InterfaceUnavailable(why))
            }
            Join::Failed(why) => Some(why),
        };
        let (wake, wake_rx) = wake_pair()?;
        let (commands, commands_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            joined: AtomicBool::new(joined.is_none()),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            sockets,
            wake_rx,
            commands: commands_rx,
            socket,
            join: JoinState::new(now, joined),
        };
        let thread = worker
            .spawn(sink)
            .map_err(|e| StartError::Socket(format!("cannot spawn the gossip thread: {e}")))?;
        Ok(Topology {
            shared,
            commands,
            wake,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn command(&self, c: Command) {
        // Both fail only when the thread has already exited: nothing to do then.
        let _ = self.commands.send(c);
        let _ = self.wake.send(&[0]);
    }

    /// Sends a heartbeat now.
    pub fn announce(&self) {
        self.command(Command::Announce);
    }

    /// Test hook: makes the thread panic. The panic is caught, the owner is told of a
    /// fault, and the thread exits; nothing else is affected.
    pub fn panic_for_test(&self) {
        self.command(Command::Panic);
    }

    /// Replaces the addresses heartbeats are also sent to by unicast.
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        self.command(Command::SetSeeds(seeds));
    }

    /// Tells the engine whether a peer is connected (it stops reporting connected peers).
    pub fn set_connected(&self, name: &str, connected: bool) {
        self.command(Command::SetConnected(name.to_owned(), connected));
    }

    /// Reports `name` again, while it stays unconnected, no sooner than `after` from
    /// now (the owner's connect backoff).
    pub fn hold(&self, name: &str, after: Duration) {
        self.command(Command::Hold(name.to_owned(), after));
    }

    /// Asks the thread to stop without waiting for it.
    pub fn signal_stop(&self, leave: bool) {
        self.command(Command::Stop { leave });
    }

    /// Stops the thread and waits for it: on return the socket is closed and the port
    /// is free. Never call it from the thread itself.
    pub fn stop(&self, leave: bool) {
        self.signal_stop(leave);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread
            .lock()
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    pub fn members(&self) -> Vec<Member> {
        let now = Instant::now();
        self.shared.engine.lock().members(now, wall_ms())
    }

    pub fn stats(&self) -> (Stats, usize) {
        let e = self.shared.engine.lock();
        (e.stats().clone(), e.peer_count())
    }

    /// Whether the socket is a member of the group (false while it cannot join).
    pub fn joined(&self) -> bool {
        self.shared.joined.load(Ordering::Relaxed)
    }

    pub fn incarnation(&self) -> u64 {
        self.shared.engine.lock().incarnation()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Never join here: drop may run on a BEAM scheduler. The thread exits on its own.
        self.signal_stop(false);
    }
}

/// Seeds of the group's address family only (the sockets speak no other).
pub(crate) fn same_family(seeds: Vec<SocketAddr>, socket: &SocketConfig) -> Vec<SocketAddr> {
    let v4 = socket.group.is_ipv4();
    seeds.into_iter().filter(|s| s.is_ipv4() == v4).collect()
}
