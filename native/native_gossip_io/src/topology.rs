//! A running topology: the handle its owner holds (the NIF, inside a resource). It
//! opens the sockets, builds the engine and starts the driver thread, then passes the
//! owner's commands to that thread and answers `members`/`stats` from the engine.
//!
//! The thread holds an `Arc` of the shared state, never anything that owns the thread,
//! so dropping the last `Topology` stops it. `stop` joins; `Drop` only signals.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::driver::{JoinState, Worker};
use crate::socket::{wake_pair, Join, SocketConfig, Sockets, StartError};
use native_gossip_core::engine::{Config, ConfigError, Engine, Stats};
use native_gossip_core::outbox::{Outbox, Taken};
use native_gossip_core::peers::Member;
use native_gossip_core::wire::OptionsError;

/// How the thread reaches the owner. The NIF implements it with `OwnedEnv`.
pub trait EventSink: Send + 'static {
    /// Events wait in the outbox: the owner should call `Topology::take_events` (told
    /// once until it has emptied the box, so the owner's mailbox stays bounded).
    /// Returns false when nobody listens any more (the thread stops).
    fn ready(&mut self) -> bool;
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
    /// Test hook: the thread sleeps this long, holding no lock (a stalled native
    /// thread: no heartbeat goes out, nothing is read, the VM runs on).
    PauseForTest(Duration),
    SetSeeds(Vec<SocketAddr>),
    Stop {
        leave: bool,
    },
}

pub(crate) struct Shared {
    pub(crate) engine: Mutex<Engine>,
    /// Events for the owner (see `outbox`).
    pub(crate) outbox: Mutex<Outbox>,
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

/// The last incarnation handed out in this process (this VM).
static LAST_INCARNATION: AtomicU64 = AtomicU64::new(0);

/// A new incarnation: the wall clock in µs, and never less than one more than the last
/// one in this process, so that a topology restarted after the clock stepped back is
/// still newer than its past self to every peer that heard both. (Across a restart of
/// the VM only the clock orders them: see "Incarnations" in docs/PROTOCOL.md.)
pub fn next_incarnation(wall_us: u64) -> u64 {
    let mut last = LAST_INCARNATION.load(Ordering::Relaxed);
    loop {
        let next = wall_us.max(last + 1);
        match LAST_INCARNATION.compare_exchange_weak(
            last,
            next,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

/// The engine of a topology starting now: a new incarnation, the seeds of the socket's
/// family, and (unless given) this host's addresses.
fn engine(mut config: Config, socket: &SocketConfig, now: Instant) -> Result<Engine, StartError> {
    // Grows across restarts (within this VM even if the clock steps back); a
    // restarted node is then told apart from its past self by every peer.
    let incarnation = next_incarnation(wall_us());
    let seed = incarnation ^ (std::process::id() as u64) << 32;
    config.seeds = same_family(std::mem::take(&mut config.seeds), socket);
    if config.own_addresses.is_empty() {
        config.own_addresses = own_addresses(socket);
    }
    Engine::new(config, now, incarnation, seed).map_err(|e| match e {
        ConfigError::Name(e) => {
            StartError::InvalidNodeName(format!("this node's name cannot be announced: {e:?}"))
        }
        ConfigError::Options(OptionsError::Cluster(m) | OptionsError::Tags(m)) => {
            StartError::InvalidOption(m)
        }
    })
}

impl Topology {
    /// Opens the socket, sends the first heartbeat (from the calling thread, before
    /// anything else) and starts the thread.
    pub fn start(
        config: Config,
        socket: SocketConfig,
        sink: impl EventSink,
    ) -> Result<Topology, StartError> {
        let now = Instant::now();
        let max_peers = config.max_peers;
        let mut engine = engine(config, &socket, now)?;
        engine.set_clock(now, wall_ms());
        let sockets = Sockets::open(&socket)?;
        engine.set_answer_port(sockets.answer_port());
        let joined = match sockets.join(&socket) {
            Join::Joined | Join::AlreadyMember => None,
            // An interface the user named and this host does not have is a mistake to
            // report now; the default interface may just not be up yet: keep retrying.
            Join::Failed(why) if socket.interface_chosen() => {
                return Err(StartError::InterfaceUnavailable(why))
            }
            Join::Failed(why) => Some(why),
        };
        // The first heartbeat leaves now, from the caller: the thread's first run can
        // come a millisecond later on a machine whose cores are busy (the VM's own
        // schedulers spin before they sleep), and a newcomer is found by this datagram.
        let wall = wall_ms();
        while let Some(t) = engine.poll_transmit(now, wall) {
            engine.record_send(sockets.send(&t).err());
        }
        let (wake, wake_rx) = wake_pair()?;
        let (commands, commands_rx) = crossbeam_channel::unbounded();
        // Room for an event per peer in the table, and as many evicted or forgotten.
        let outbox = Outbox::new(max_peers.saturating_mul(2).saturating_add(1024));
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            outbox: Mutex::new(outbox),
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

    /// Applies an owner's change to the engine from the caller's thread, at once. The
    /// thread is woken only when the change brings its next deadline forward: a
    /// connection storm brings the owner a change per connection, and each wake-up is a
    /// system call after which, on a loaded machine, the woken thread can take the
    /// caller's core (a BEAM scheduler, waiting behind every other runnable thread
    /// until it gets it back: 1.5 ms per call in a formation of 32 VMs on two cores).
    fn change(&self, f: impl FnOnce(&mut Engine, Instant)) {
        let sooner = {
            let mut engine = self.shared.engine.lock();
            let before = engine.next_deadline();
            f(&mut engine, Instant::now());
            engine.next_deadline() < before
        };
        if sooner {
            let _ = self.wake.send(&[0]);
        }
    }

    /// Sends a heartbeat now.
    pub fn announce(&self) {
        self.command(Command::Announce);
    }

    /// Replaces this node's tags and sends a heartbeat with them at once.
    pub fn set_tags(&self, tags: &[(String, String)]) -> Result<(), OptionsError> {
        self.shared.engine.lock().set_tags(tags)?;
        self.announce();
        Ok(())
    }

    /// Other cluster labels heard on this group and port (a few, the first heard).
    pub fn other_clusters(&self) -> Vec<String> {
        self.shared.engine.lock().other_clusters().to_vec()
    }

    /// Test hook: makes the thread panic. The panic is caught, the owner is told of a
    /// fault, and the thread exits; nothing else is affected.
    pub fn panic_for_test(&self) {
        self.command(Command::Panic);
    }

    /// Test hook: makes the thread sleep for `d`, holding no lock: a stalled native
    /// thread, for the failure detector's tests (the VM and its connections run on).
    pub fn pause_for_test(&self, d: Duration) {
        self.command(Command::PauseForTest(d));
    }

    /// Replaces the addresses heartbeats are also sent to by unicast.
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        self.command(Command::SetSeeds(seeds));
    }

    /// Tells the engine whether a peer is connected (it stops reporting connected
    /// peers), and over which remote address its distribution connection runs (which
    /// proves that address: see `Engine::set_connected`).
    pub fn set_connected(&self, name: &str, connected: bool, via: Option<IpAddr>) {
        self.change(|engine, now| {
            engine.set_connected(name, connected, via, now);
        });
    }

    /// Reports `name` again, while it stays unconnected, no sooner than `after` from
    /// now (the owner's connect backoff).
    pub fn hold(&self, name: &str, after: Duration) {
        self.change(|engine, now| {
            engine.hold(name, after, now);
        });
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
        let (mut stats, peers) = {
            let e = self.shared.engine.lock();
            (e.stats().clone(), e.peer_count())
        };
        let outbox = self.shared.outbox.lock();
        stats.events_coalesced = outbox.coalesced;
        stats.events_dropped = outbox.dropped;
        (stats, peers)
    }

    /// Takes up to `max` waiting events, oldest first, each with how long it was held,
    /// and whether more wait (the owner then comes back for them: it is not told
    /// again). The owner may call it untold: discoveries of peers it does not lead
    /// wait untold for a while (`native_gossip_core::outbox`).
    pub fn take_events(&self, max: usize) -> (Vec<Taken>, bool) {
        self.shared.outbox.lock().take(max, Instant::now())
    }

    /// New names admitted that the owner did not know (see `Config::max_names`).
    pub fn names_made(&self) -> usize {
        self.shared.engine.lock().names_made()
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

/// This host's addresses of the group's family, the chosen interface's first (what a
/// heartbeat lists with a secret).
pub(crate) fn own_addresses(socket: &SocketConfig) -> Vec<IpAddr> {
    let first = (socket.group.is_ipv4() && !socket.interface.is_unspecified())
        .then_some(IpAddr::V4(socket.interface));
    crate::socket::local_addresses(socket.group.is_ipv4(), first)
}

/// Seeds of the group's address family only (the sockets speak no other).
pub(crate) fn same_family(seeds: Vec<SocketAddr>, socket: &SocketConfig) -> Vec<SocketAddr> {
    let v4 = socket.group.is_ipv4();
    seeds.into_iter().filter(|s| s.is_ipv4() == v4).collect()
}

#[cfg(test)]
mod tests {
    use super::next_incarnation;

    #[test]
    fn incarnations_never_go_backwards_within_a_process_even_if_the_clock_does() {
        let wall = 1_800_000_000_000_000;
        let first = next_incarnation(wall);
        assert!(first >= wall);
        // The clock steps back an hour: still newer.
        let second = next_incarnation(wall - 3_600_000_000);
        assert!(second > first);
        // The clock moves on: the clock again.
        assert_eq!(next_incarnation(wall + 10_000_000), wall + 10_000_000);
    }
}
