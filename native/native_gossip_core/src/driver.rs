//! The I/O driver: one OS thread per topology that owns its sockets and runs the
//! engine. The loop only waits, reads a batch, hands it to the engine, sends what the
//! engine returns and delivers events: every decision is the engine's, every socket
//! call is in `socket`. It sleeps in `poll(2)` on the sockets and a wake-up socket until
//! a datagram, a command or the engine's next deadline, so an idle topology wakes only
//! to send and receive heartbeats.
//!
//! The thread holds an `Arc` of the shared state, never anything that owns the thread,
//! so dropping the last `Topology` stops it. `stop` joins; `Drop` only signals.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::Mutex;

use crate::engine::{Config, Engine, Stats, Transmit};
use crate::peers::{Member, PeerEvent};
use crate::socket::{wake_pair, BatchReceiver, Join, SocketConfig, Sockets, StartError};

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

enum Command {
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

struct Shared {
    engine: Mutex<Engine>,
    /// Whether the socket is a member of the group right now.
    joined: AtomicBool,
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
        let thread = std::thread::Builder::new()
            .name("native_gossip".into())
            .spawn(move || worker.run(sink))
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

struct Worker {
    shared: Arc<Shared>,
    sockets: Sockets,
    wake_rx: UnixDatagram,
    commands: Receiver<Command>,
    socket: SocketConfig,
    join: JoinState,
}

/// Seeds of the group's address family only (the sockets speak no other).
fn same_family(seeds: Vec<SocketAddr>, socket: &SocketConfig) -> Vec<SocketAddr> {
    let v4 = socket.group.is_ipv4();
    seeds.into_iter().filter(|s| s.is_ipv4() == v4).collect()
}

/// First retry of a failed join; each next one doubles, up to `JOIN_RETRY_MAX`.
const JOIN_RETRY_FIRST: Duration = Duration::from_millis(250);
const JOIN_RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a joined socket checks that it still is (an interface that went away
/// and came back has lost its memberships).
const JOIN_REFRESH: Duration = Duration::from_secs(5);

/// Membership bookkeeping of the thread.
struct JoinState {
    /// `None` when joined; otherwise why not (reported once per change).
    failure: Option<String>,
    next_check: Instant,
    backoff: Duration,
    /// The failure at start still has to be reported.
    unreported: bool,
}

impl JoinState {
    fn new(now: Instant, failure: Option<String>) -> Self {
        let unreported = failure.is_some();
        let first = if unreported {
            JOIN_RETRY_FIRST
        } else {
            JOIN_REFRESH
        };
        JoinState {
            next_check: now + first,
            failure,
            backoff: JOIN_RETRY_FIRST,
            unreported,
        }
    }

    /// A deadline for the thread's sleep only while not joined: the refresh of a joined
    /// socket rides on the wake-ups the heartbeats cause anyway.
    fn deadline(&self) -> Option<Instant> {
        self.failure.as_ref().map(|_| self.next_check)
    }
}

/// Datagrams read per wake-up and socket before timers and commands get a turn.
const RECV_BATCH: usize = 256;
/// Longest sleep, so that a lost wake-up can never hang a stop for long.
const MAX_SLEEP: Duration = Duration::from_secs(5);

enum Flow {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self, mut sink: impl EventSink) {
        match catch_unwind(AssertUnwindSafe(|| self.serve(&mut sink))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => sink.fault(&format!("socket error: {e}")),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                sink.fault(&format!("native thread panicked: {what}"));
            }
        }
    }

    fn serve(&mut self, sink: &mut impl EventSink) -> io::Result<()> {
        let mut events = Vec::new();
        let mut outgoing = Vec::new();
        let mut batch = BatchReceiver::new();
        if self.join.unreported {
            self.join.unreported = false;
            sink.membership(Err(self.join.failure.as_deref().unwrap_or_default()));
        }
        loop {
            let mut deadline = self.shared.engine.lock().next_deadline();
            if let Some(t) = self.join.deadline() {
                deadline = deadline.min(t);
            }
            let sleep = deadline
                .saturating_duration_since(Instant::now())
                .min(MAX_SLEEP);
            let ready = self.sockets.wait(&self.wake_rx, sleep)?;
            if ready.wake {
                let mut drain = [0u8; 64];
                while self.wake_rx.recv(&mut drain).is_ok() {}
            }
            if let Flow::Stop = self.run_commands()? {
                return Ok(());
            }
            if ready.group {
                self.receive(false, &mut batch, &mut events)?;
            }
            if ready.unicast {
                self.receive(true, &mut batch, &mut events)?;
            }
            let now = Instant::now();
            if now >= self.join.next_check {
                self.check_membership(now, sink);
            }
            {
                let mut engine = self.shared.engine.lock();
                engine.handle_timeout(now, &mut events);
                let wall = wall_ms();
                while let Some(t) = engine.poll_transmit(now, wall) {
                    outgoing.push(t);
                }
            }
            self.send(&mut outgoing);
            for e in events.drain(..) {
                if !sink.deliver(&e) {
                    return Ok(());
                }
            }
        }
    }

    /// Sends what the engine decided, without holding its lock, then counts it.
    fn send(&self, outgoing: &mut Vec<Transmit>) {
        if outgoing.is_empty() {
            return;
        }
        let results: Vec<bool> = outgoing.iter().map(|t| self.sockets.send(t)).collect();
        outgoing.clear();
        let mut engine = self.shared.engine.lock();
        for ok in results {
            engine.record_send(ok);
        }
    }

    /// Joins if not a member, or checks that a joined socket still is one. A join that
    /// succeeds after a failure, or after the membership was lost, starts the joining
    /// burst again so that peers answer at once.
    fn check_membership(&mut self, now: Instant, sink: &mut impl EventSink) {
        match self.sockets.join(&self.socket) {
            Join::AlreadyMember => {
                self.join.next_check = now + JOIN_REFRESH;
            }
            Join::Joined => {
                self.shared.joined.store(true, Ordering::Relaxed);
                let was_reported = self.join.failure.take().is_some();
                self.join.next_check = now + JOIN_REFRESH;
                self.join.backoff = JOIN_RETRY_FIRST;
                self.shared.engine.lock().restart_burst(now);
                if was_reported {
                    sink.membership(Ok(()));
                }
            }
            Join::Failed(why) => {
                self.shared.joined.store(false, Ordering::Relaxed);
                if self.join.failure.as_deref() != Some(why.as_str()) {
                    sink.membership(Err(&why));
                }
                self.join.failure = Some(why);
                self.join.next_check = now + self.join.backoff;
                self.join.backoff = (self.join.backoff * 2).min(JOIN_RETRY_MAX);
            }
        }
    }

    fn run_commands(&mut self) -> io::Result<Flow> {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return Ok(Flow::Continue),
                // The owner is gone without saying stop: leave quietly.
                Err(TryRecvError::Disconnected) => return Ok(Flow::Stop),
            };
            let mut engine = self.shared.engine.lock();
            match command {
                Command::Announce => engine.announce(Instant::now()),
                Command::Panic => panic!("panic requested by the test hook"),
                Command::SetConnected(name, connected) => {
                    engine.set_connected(&name, connected, Instant::now());
                }
                Command::Hold(name, after) => {
                    engine.hold(&name, after, Instant::now());
                }
                Command::SetSeeds(seeds) => engine.set_seeds(same_family(seeds, &self.socket)),
                Command::Stop { leave } => {
                    if leave {
                        engine.leave(wall_ms());
                        let mut goodbyes = Vec::new();
                        while let Some(t) = engine.poll_transmit(Instant::now(), wall_ms()) {
                            goodbyes.push(t);
                        }
                        drop(engine);
                        self.send(&mut goodbyes);
                    }
                    return Ok(Flow::Stop);
                }
            }
        }
    }

    /// Reads what is waiting on one socket, up to RECV_BATCH datagrams, a batch per
    /// system call, and hands each batch to the engine.
    fn receive(
        &mut self,
        unicast: bool,
        batch: &mut BatchReceiver,
        events: &mut Vec<PeerEvent>,
    ) -> io::Result<()> {
        let mut read = 0;
        while read < RECV_BATCH {
            let (n, via) = self.sockets.recv(unicast, batch)?;
            if n == 0 {
                break;
            }
            let now = Instant::now();
            let mut engine = self.shared.engine.lock();
            for i in 0..n {
                // A datagram longer than a slot is cut to it; it is still over
                // MAX_PACKET, so it is counted as too long.
                if let (data, Some(from)) = batch.get(i) {
                    events.extend(engine.handle_datagram(data, from, via, now));
                }
            }
            read += n;
        }
        Ok(())
    }
}
