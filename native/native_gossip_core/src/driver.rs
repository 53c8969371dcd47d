//! The I/O driver: one OS thread per topology that owns the multicast socket and runs
//! the engine. It sleeps in `poll(2)` on the socket and a wake-up socket until a
//! datagram, a command or the engine's next deadline, so an idle topology wakes only
//! to send and receive heartbeats.
//!
//! The thread holds an `Arc` of the shared state, never anything that owns the thread,
//! so dropping the last `Topology` stops it. `stop` joins; `Drop` only signals.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::batch::BatchReceiver;
use crate::engine::{Config, Engine, Stats};
use crate::peers::{Member, PeerEvent};

/// Where the topology listens and sends.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    pub group: Ipv4Addr,
    pub port: u16,
    /// Local interface address to join and send on; `0.0.0.0` lets the kernel choose
    /// by the multicast route.
    pub interface: Ipv4Addr,
    pub ttl: u32,
}

/// Why a topology could not start. The message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// Another program holds the port without SO_REUSEADDR/SO_REUSEPORT.
    PortInUse(String),
    /// The interface does not exist or cannot join the group.
    InterfaceUnavailable(String),
    /// The node name cannot go on the wire.
    InvalidNodeName(String),
    /// Anything else the OS refused.
    Socket(String),
}

impl StartError {
    pub fn kind(&self) -> &'static str {
        match self {
            StartError::PortInUse(_) => "port_in_use",
            StartError::InterfaceUnavailable(_) => "interface_unavailable",
            StartError::InvalidNodeName(_) => "invalid_node_name",
            StartError::Socket(_) => "socket_error",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StartError::PortInUse(m)
            | StartError::InterfaceUnavailable(m)
            | StartError::InvalidNodeName(m)
            | StartError::Socket(m) => m,
        }
    }
}

/// Creates the socket and binds it: SO_REUSEADDR and SO_REUSEPORT so that several
/// nodes on one host share the port, bound to the group address so that only this
/// group's datagrams arrive, multicast loopback on. Joining is separate (`join`), since
/// it can fail for a while on a host whose network is not up yet.
pub fn bind_socket(cfg: &SocketConfig) -> Result<UdpSocket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    if !cfg.group.is_multicast() {
        return Err(StartError::Socket(format!(
            "{} is not a multicast address",
            cfg.group
        )));
    }
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| other("cannot create a UDP socket", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| other("SO_REUSEADDR", e))?;
    socket
        .set_reuse_port(true)
        .map_err(|e| other("SO_REUSEPORT", e))?;
    socket
        .set_cloexec(true)
        .map_err(|e| other("FD_CLOEXEC", e))?;
    let bind = SocketAddrV4::new(cfg.group, cfg.port);
    socket.bind(&SockAddr::from(bind)).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            StartError::PortInUse(format!(
                "UDP port {} is held by another program that did not set SO_REUSEADDR/SO_REUSEPORT \
                 (find it with `ss -ulpn 'sport = :{}'`), or choose another :port",
                cfg.port, cfg.port
            ))
        } else {
            other(&format!("cannot bind {bind}"), e)
        }
    })?;
    if !cfg.interface.is_unspecified() {
        socket.set_multicast_if_v4(&cfg.interface).map_err(|e| {
            StartError::InterfaceUnavailable(format!(
                "cannot send on interface {}: {e} (is that address on an interface of this host?)",
                cfg.interface
            ))
        })?;
    }
    // Room for bursts: under a flood, heartbeats queued behind junk are not lost to a
    // full buffer. The kernel caps it (net.core.rmem_max); a smaller buffer is fine.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket
        .set_multicast_ttl_v4(cfg.ttl)
        .map_err(|e| other("IP_MULTICAST_TTL", e))?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(|e| other("IP_MULTICAST_LOOP", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| other("O_NONBLOCK", e))?;
    Ok(socket.into())
}

/// What a join attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// Joined now (first time, or again after the membership was lost).
    Joined,
    /// Already a member (EADDRINUSE): nothing changed.
    AlreadyMember,
    /// Cannot join (no interface, no route, link down); the message says why.
    Failed(String),
}

/// Joins the group on the configured interface (or the multicast route's).
pub fn join(socket: &UdpSocket, cfg: &SocketConfig) -> Join {
    match socket.join_multicast_v4(&cfg.group, &cfg.interface) {
        Ok(()) => Join::Joined,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Join::AlreadyMember,
        Err(e) => {
            let on = if cfg.interface.is_unspecified() {
                "the interface of the multicast route (there may be none yet: a link that is \
                 down, or no route; add one with `ip route add 224.0.0.0/4 dev <interface>`, \
                 or set :multicast_if)"
                    .to_string()
            } else {
                format!(
                    "interface {} (is that address on an interface that is up?)",
                    cfg.interface
                )
            };
            Join::Failed(format!(
                "cannot join multicast group {} on {on}: {e}",
                cfg.group
            ))
        }
    }
}

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
        let engine = Engine::new(config, now, incarnation, seed).map_err(|e| {
            StartError::InvalidNodeName(format!("this node's name cannot be announced: {e:?}"))
        })?;
        let udp = bind_socket(&socket)?;
        let joined = match join(&udp, &socket) {
            Join::Joined | Join::AlreadyMember => None,
            // An interface the user named and this host does not have is a mistake to
            // report now; the default interface may just not be up yet: keep retrying.
            Join::Failed(why) if !socket.interface.is_unspecified() => {
                return Err(StartError::InterfaceUnavailable(why))
            }
            Join::Failed(why) => Some(why),
        };

        let (wake, wake_rx) =
            UnixDatagram::pair().map_err(|e| StartError::Socket(format!("socketpair: {e}")))?;
        for s in [&wake, &wake_rx] {
            s.set_nonblocking(true)
                .map_err(|e| StartError::Socket(format!("O_NONBLOCK: {e}")))?;
        }
        let (commands, commands_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            joined: AtomicBool::new(joined.is_none()),
        });
        let destination = SocketAddr::V4(SocketAddrV4::new(socket.group, socket.port));
        let worker = Worker {
            shared: Arc::clone(&shared),
            udp,
            wake_rx,
            commands: commands_rx,
            destination,
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

    /// Tells the engine whether a peer is connected (it stops reporting connected peers).
    pub fn set_connected(&self, name: &str, connected: bool) {
        self.command(Command::SetConnected(name.to_owned(), connected));
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
    udp: UdpSocket,
    wake_rx: UnixDatagram,
    commands: Receiver<Command>,
    destination: SocketAddr,
    socket: SocketConfig,
    join: JoinState,
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
        JoinState {
            next_check: now
                + if failure.is_some() {
                    JOIN_RETRY_FIRST
                } else {
                    JOIN_REFRESH
                },
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

/// Receive buffer asked for (bytes).
const RECV_BUFFER: usize = 1 << 20;

/// Datagrams read per wake-up before timers and commands get a turn.
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
            let (socket_ready, wake_ready) = self.wait(sleep)?;
            if wake_ready {
                let mut drain = [0u8; 64];
                while self.wake_rx.recv(&mut drain).is_ok() {}
            }
            if let Flow::Stop = self.run_commands()? {
                return Ok(());
            }
            if socket_ready {
                self.receive(&mut batch, &mut events)?;
            }
            let now = Instant::now();
            if now >= self.join.next_check {
                self.check_membership(now, sink);
            }
            {
                let mut engine = self.shared.engine.lock();
                engine.handle_timeout(now, &mut events);
                let wall = wall_ms();
                while let Some(packet) = engine.poll_transmit(now, wall) {
                    let ok = self.udp.send_to(&packet, self.destination).is_ok();
                    engine.record_send(ok);
                }
            }
            for e in events.drain(..) {
                if !sink.deliver(&e) {
                    return Ok(());
                }
            }
        }
    }

    /// Joins if not a member, or checks that a joined socket still is one. A join that
    /// succeeds after a failure, or after the membership was lost, starts the joining
    /// burst again so that peers answer at once.
    fn check_membership(&mut self, now: Instant, sink: &mut impl EventSink) {
        match join(&self.udp, &self.socket) {
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

    fn wait(&self, timeout: Duration) -> io::Result<(bool, bool)> {
        let mut fds = [
            libc::pollfd {
                fd: self.udp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake_rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Round up so that a deadline 0.3 ms away does not become a busy loop of 0 ms polls.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok((false, false))
            } else {
                Err(e)
            };
        }
        let ready =
            |f: &libc::pollfd| f.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
        Ok((ready(&fds[0]), ready(&fds[1])))
    }

    fn run_commands(&self) -> io::Result<Flow> {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Announce) => self.shared.engine.lock().announce(Instant::now()),
                Ok(Command::Panic) => panic!("panic requested by the test hook"),
                Ok(Command::SetConnected(name, connected)) => {
                    self.shared
                        .engine
                        .lock()
                        .set_connected(&name, connected, Instant::now());
                }
                Ok(Command::Stop { leave }) => {
                    if leave {
                        self.send_goodbye();
                    }
                    return Ok(Flow::Stop);
                }
                Err(TryRecvError::Empty) => return Ok(Flow::Continue),
                // The owner is gone without saying stop: leave quietly.
                Err(TryRecvError::Disconnected) => return Ok(Flow::Stop),
            }
        }
    }

    fn send_goodbye(&self) {
        let mut engine = self.shared.engine.lock();
        // Twice, so that one lost datagram does not leave peers waiting for a timeout.
        for _ in 0..2 {
            let packet = engine.leave_packet(wall_ms());
            let ok = self.udp.send_to(&packet, self.destination).is_ok();
            engine.record_send(ok);
        }
    }

    /// Reads what is waiting, up to RECV_BATCH datagrams, `BATCH` per system call.
    fn receive(&self, batch: &mut BatchReceiver, events: &mut Vec<PeerEvent>) -> io::Result<()> {
        let mut engine = self.shared.engine.lock();
        let mut read = 0;
        while read < RECV_BATCH {
            let n = match batch.recv(self.udp.as_raw_fd()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends surface here; they are not fatal.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            for i in 0..n {
                // A datagram longer than a slot is cut to it; it is still over
                // MAX_PACKET, so it is counted as too long.
                if let (data, Some(from)) = batch.get(i) {
                    if let Some(e) = engine.handle_datagram(data, from, now) {
                        events.push(e);
                    }
                }
            }
            read += n;
        }
        Ok(())
    }
}
