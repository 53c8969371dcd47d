//! The I/O driver: one OS thread per topology that owns the multicast socket and runs
//! the engine. It sleeps in `poll(2)` on the socket and a wake-up socket until a
//! datagram, a command or the engine's next deadline, so an idle topology wakes only
//! to send and receive heartbeats.
//!
//! The thread holds an `Arc` of the shared state, never anything that owns the thread,
//! so dropping the last `Topology` stops it. `stop` joins; `Drop` only signals.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
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
use crate::peers::{EventKind, Member, PeerEvent};

/// Where the topology listens and sends.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// The multicast group (IPv4 or IPv6), or with `broadcast` the IPv4 broadcast
    /// address heartbeats are sent to.
    pub group: IpAddr,
    pub port: u16,
    /// IPv4: local interface address to join and send on; `0.0.0.0` lets the kernel
    /// choose by the multicast route. Ignored for IPv6.
    pub interface: Ipv4Addr,
    /// IPv6: index of the interface to join and send on; 0 lets the kernel choose.
    /// Ignored for IPv4.
    pub interface_index: u32,
    pub ttl: u32,
    /// Broadcast instead of multicast (networks without IGMP): no group is joined, the
    /// socket is bound to the wildcard address and heartbeats go to `group`.
    pub broadcast: bool,
    /// Addresses heartbeats are also sent to by unicast (for networks that drop
    /// multicast). Replaced at run time by `Topology::set_seeds`.
    pub seeds: Vec<SocketAddr>,
    /// Listen for unicast heartbeats and answer unknown senders (on when seeds are
    /// configured, even while none resolves yet).
    pub unicast: bool,
}

impl SocketConfig {
    /// The usual IPv4 multicast configuration (tools and tests).
    pub fn multicast_v4(group: Ipv4Addr, port: u16, interface: Ipv4Addr, ttl: u32) -> Self {
        SocketConfig {
            group: IpAddr::V4(group),
            port,
            interface,
            interface_index: 0,
            ttl,
            broadcast: false,
            seeds: Vec::new(),
            unicast: false,
        }
    }

    /// Whether the user chose the interface (so a failure to join it is a mistake to
    /// report, not a network that is not up yet).
    fn interface_chosen(&self) -> bool {
        match self.group {
            IpAddr::V4(_) => !self.interface.is_unspecified(),
            IpAddr::V6(_) => self.interface_index != 0,
        }
    }

    /// Where heartbeats go: the group (with the interface as scope for link-local IPv6
    /// groups such as ff02::/16), or the broadcast address.
    pub fn destination(&self) -> SocketAddr {
        match self.group {
            IpAddr::V4(g) => SocketAddr::V4(SocketAddrV4::new(g, self.port)),
            IpAddr::V6(g) => {
                let scope = if needs_scope(&g) {
                    self.interface_index
                } else {
                    0
                };
                SocketAddr::V6(SocketAddrV6::new(g, self.port, 0, scope))
            }
        }
    }
}

/// Interface-local (ff01::/16) and link-local (ff02::/16) groups need an interface.
fn needs_scope(g: &Ipv6Addr) -> bool {
    matches!(g.segments()[0] & 0xff0f, 0xff01 | 0xff02)
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
/// nodes on one host share the port, multicast loopback on. A multicast socket is bound
/// to the group address (with the interface as scope for a link-local IPv6 group), so
/// that only this group's datagrams arrive; a broadcast one to the IPv4 wildcard
/// address. Joining is separate (`join`), since it can fail for a while on a host
/// whose network is not up yet.
pub fn bind_socket(cfg: &SocketConfig) -> Result<UdpSocket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let (domain, bind) = match (cfg.group, cfg.broadcast) {
        (IpAddr::V4(g), false) if g.is_multicast() => {
            (Domain::IPV4, SocketAddr::V4(SocketAddrV4::new(g, cfg.port)))
        }
        (IpAddr::V6(g), false) if g.is_multicast() => {
            if needs_scope(&g) && cfg.interface_index == 0 {
                return Err(StartError::InterfaceUnavailable(format!(
                    "{g} is a link-local group: set :multicast_if to the interface (a name such as \"eth0\")"
                )));
            }
            (Domain::IPV6, cfg.destination())
        }
        (IpAddr::V4(_), true) => (
            Domain::IPV4,
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port)),
        ),
        (IpAddr::V6(_), true) => {
            return Err(StartError::Socket(
                "IPv6 has no broadcast: use an IPv6 multicast group such as ff02::4e47".into(),
            ))
        }
        (g, false) => {
            return Err(StartError::Socket(format!(
                "{g} is not a multicast address"
            )))
        }
    };
    let socket = shared_udp_socket(domain)?;
    if cfg.broadcast {
        socket
            .set_broadcast(true)
            .map_err(|e| other("SO_BROADCAST", e))?;
        set_multicast_all(&socket, false, false);
    }
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
    match cfg.group {
        IpAddr::V4(_) if cfg.broadcast => {}
        IpAddr::V4(_) => {
            if !cfg.interface.is_unspecified() {
                socket.set_multicast_if_v4(&cfg.interface).map_err(|e| {
                    StartError::InterfaceUnavailable(format!(
                        "cannot send on interface {}: {e} (is that address on an interface of this host?)",
                        cfg.interface
                    ))
                })?;
            }
            socket
                .set_multicast_ttl_v4(cfg.ttl)
                .map_err(|e| other("IP_MULTICAST_TTL", e))?;
            socket
                .set_multicast_loop_v4(true)
                .map_err(|e| other("IP_MULTICAST_LOOP", e))?;
        }
        IpAddr::V6(_) => {
            if cfg.interface_index != 0 {
                socket
                    .set_multicast_if_v6(cfg.interface_index)
                    .map_err(|e| {
                        StartError::InterfaceUnavailable(format!(
                            "cannot send on interface index {}: {e}",
                            cfg.interface_index
                        ))
                    })?;
            }
            socket
                .set_multicast_hops_v6(cfg.ttl)
                .map_err(|e| other("IPV6_MULTICAST_HOPS", e))?;
            socket
                .set_multicast_loop_v6(true)
                .map_err(|e| other("IPV6_MULTICAST_LOOP", e))?;
        }
    }
    Ok(socket.into())
}

/// The socket for unicast heartbeats (seeds) beside a multicast socket bound to its
/// group: bound to the wildcard address of the group's family on the same port,
/// receiving no multicast.
pub fn bind_unicast_socket(cfg: &SocketConfig) -> Result<UdpSocket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let v6 = cfg.group.is_ipv6();
    let socket = shared_udp_socket(if v6 { Domain::IPV6 } else { Domain::IPV4 })?;
    set_multicast_all(&socket, false, v6);
    let bind = if v6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, cfg.port, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port))
    };
    socket
        .bind(&SockAddr::from(bind))
        .map_err(|e| other(&format!("cannot bind {bind} for seeds"), e))?;
    Ok(socket.into())
}

/// A UDP socket that shares its port with the other nodes of the host (SO_REUSEADDR,
/// SO_REUSEPORT), closed on exec, non-blocking, with a large receive buffer, and
/// IPv6-only for IPv6.
fn shared_udp_socket(domain: Domain) -> Result<Socket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
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
    if domain == Domain::IPV6 {
        socket
            .set_only_v6(true)
            .map_err(|e| other("IPV6_V6ONLY", e))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| other("O_NONBLOCK", e))?;
    // Room for bursts: under a flood, heartbeats queued behind junk are not lost to a
    // full buffer. The kernel caps it (net.core.rmem_max); a smaller buffer is fine.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    Ok(socket)
}

/// IP_MULTICAST_ALL / IPV6_MULTICAST_ALL: whether a socket bound to a wildcard address
/// also gets datagrams of groups that other sockets of the host joined. Off for ours;
/// best effort (kernels before 4.20 lack the IPv6 one).
fn set_multicast_all(socket: &Socket, on: bool, v6: bool) {
    let value: libc::c_int = on.into();
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_ALL)
    } else {
        (libc::IPPROTO_IP, libc::IP_MULTICAST_ALL)
    };
    // SAFETY: a valid socket, and a pointer to a c_int with its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
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

/// Joins the group on the configured interface (or the multicast route's). A broadcast
/// socket has nothing to join.
pub fn join(socket: &UdpSocket, cfg: &SocketConfig) -> Join {
    let result = match cfg.group {
        _ if cfg.broadcast => return Join::AlreadyMember,
        IpAddr::V4(g) => socket.join_multicast_v4(&g, &cfg.interface),
        IpAddr::V6(g) => socket.join_multicast_v6(&g, cfg.interface_index),
    };
    match result {
        Ok(()) => Join::Joined,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Join::AlreadyMember,
        Err(e) => {
            let on = if !cfg.interface_chosen() {
                "the interface of the multicast route (there may be none yet: a link that is \
                 down, or no route; add one with `ip route add 224.0.0.0/4 dev <interface>` \
                 (`ip -6 route add ff00::/8 dev <interface>` for IPv6), or set :multicast_if)"
                    .to_string()
            } else if cfg.group.is_ipv4() {
                format!(
                    "interface {} (is that address on an interface that is up?)",
                    cfg.interface
                )
            } else {
                format!(
                    "interface index {} (is that interface up?)",
                    cfg.interface_index
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
        let engine = Engine::new(config, now, incarnation, seed).map_err(|e| {
            StartError::InvalidNodeName(format!("this node's name cannot be announced: {e:?}"))
        })?;
        let udp = bind_socket(&socket)?;
        let joined = match join(&udp, &socket) {
            Join::Joined | Join::AlreadyMember => None,
            // An interface the user named and this host does not have is a mistake to
            // report now; the default interface may just not be up yet: keep retrying.
            Join::Failed(why) if socket.interface_chosen() => {
                return Err(StartError::InterfaceUnavailable(why))
            }
            Join::Failed(why) => Some(why),
        };
        // A broadcast socket is bound to the wildcard address and hears unicast itself.
        let unicast = if socket.unicast && !socket.broadcast {
            Some(bind_unicast_socket(&socket)?)
        } else {
            None
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
        let destination = socket.destination();
        let worker = Worker {
            shared: Arc::clone(&shared),
            seeds: socket.seeds.clone(),
            learned: HashMap::new(),
            unicast,
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

    /// Replaces the addresses heartbeats are also sent to by unicast.
    pub fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        self.command(Command::SetSeeds(seeds));
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
    /// The multicast socket (or, in broadcast mode, the one socket).
    udp: UdpSocket,
    /// The socket for unicast heartbeats when seeds are configured (multicast mode).
    unicast: Option<UdpSocket>,
    /// Unicast destinations: the seeds, and peers first heard by unicast (which may not
    /// have us among their seeds), by name, while they are alive.
    seeds: Vec<SocketAddr>,
    learned: HashMap<String, SocketAddr>,
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

/// Most peers heard by unicast that are sent heartbeats by unicast in return.
const MAX_LEARNED: usize = 1024;

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
            let (socket_ready, unicast_ready, wake_ready) = self.wait(sleep)?;
            if wake_ready {
                let mut drain = [0u8; 64];
                while self.wake_rx.recv(&mut drain).is_ok() {}
            }
            if let Flow::Stop = self.run_commands()? {
                return Ok(());
            }
            let mut answer_to = Vec::new();
            if socket_ready {
                // In broadcast mode the one socket also hears unicast heartbeats.
                let answers = self.unicast.is_none() && self.socket.unicast;
                self.receive(false, answers, &mut batch, &mut events, &mut answer_to)?;
            }
            if unicast_ready {
                self.receive(true, true, &mut batch, &mut events, &mut answer_to)?;
            }
            let now = Instant::now();
            if now >= self.join.next_check {
                self.check_membership(now, sink);
            }
            {
                let mut engine = self.shared.engine.lock();
                engine.handle_timeout(now, &mut events);
                let wall = wall_ms();
                // A peer that first reached us by unicast gets one heartbeat back at
                // once, so that it learns us too.
                for to in answer_to {
                    let packet = engine.direct_packet(now, wall);
                    let ok = self.unicast_socket().send_to(&packet, to).is_ok();
                    engine.record_send(ok);
                }
                while let Some(packet) = engine.poll_transmit(now, wall) {
                    let ok = self.udp.send_to(&packet, self.destination).is_ok();
                    engine.record_send(ok);
                    self.send_unicast(&packet, &mut engine);
                    // compat: :libcluster: its format too, beside each native heartbeat.
                    if let Some(legacy) = engine.legacy_packet() {
                        let ok = self.udp.send_to(&legacy, self.destination).is_ok();
                        engine.record_send(ok);
                    }
                }
            }
            for e in &events {
                if matches!(
                    e.kind,
                    EventKind::Lost | EventKind::Left | EventKind::Forgotten
                ) {
                    self.learned.remove(&e.name);
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

    fn unicast_socket(&self) -> &UdpSocket {
        self.unicast.as_ref().unwrap_or(&self.udp)
    }

    /// Sends a heartbeat to the seeds and the peers learned by unicast.
    fn send_unicast(&self, packet: &[u8], engine: &mut Engine) {
        let socket = self.unicast_socket();
        let family = self.socket.group.is_ipv4();
        let learned = self.learned.values().filter(|a| !self.seeds.contains(a));
        for to in self.seeds.iter().chain(learned) {
            if to.is_ipv4() == family {
                let ok = socket.send_to(packet, to).is_ok();
                engine.record_send(ok);
            }
        }
    }

    /// Waits for the sockets or the wake-up socket: (multicast, unicast, wake-up) ready.
    fn wait(&self, timeout: Duration) -> io::Result<(bool, bool, bool)> {
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // The unicast slot polls the wake-up socket again when there is no unicast
        // socket; its result is then ignored.
        let unicast_fd = self
            .unicast
            .as_ref()
            .map_or(self.wake_rx.as_raw_fd(), |u| u.as_raw_fd());
        let mut fds = [
            pollfd(self.udp.as_raw_fd()),
            pollfd(self.wake_rx.as_raw_fd()),
            pollfd(unicast_fd),
        ];
        // Round up so that a deadline 0.3 ms away does not become a busy loop of 0 ms polls.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok((false, false, false))
            } else {
                Err(e)
            };
        }
        let ready =
            |f: &libc::pollfd| f.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
        Ok((
            ready(&fds[0]),
            self.unicast.is_some() && ready(&fds[2]),
            ready(&fds[1]),
        ))
    }

    fn run_commands(&mut self) -> io::Result<Flow> {
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
                Ok(Command::SetSeeds(seeds)) => self.seeds = seeds,
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
            self.send_unicast(&packet, &mut engine);
        }
    }

    /// Reads what is waiting on one socket, up to RECV_BATCH datagrams, `BATCH` per
    /// system call. With `answers`, a peer heard here is one to send unicast heartbeats
    /// to, and a newly discovered one is answered at once (its address goes to
    /// `answer_to`).
    fn receive(
        &mut self,
        from_unicast: bool,
        answers: bool,
        batch: &mut BatchReceiver,
        events: &mut Vec<PeerEvent>,
        answer_to: &mut Vec<SocketAddr>,
    ) -> io::Result<()> {
        let fd = if from_unicast {
            self.unicast_socket().as_raw_fd()
        } else {
            self.udp.as_raw_fd()
        };
        let mut engine = self.shared.engine.lock();
        let mut read = 0;
        while read < RECV_BATCH {
            let n = match batch.recv(fd) {
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
                        if answers && matches!(e.kind, EventKind::Discovered | EventKind::Heard) {
                            if e.kind == EventKind::Discovered && !self.seeds.contains(&from) {
                                answer_to.push(from);
                            }
                            if self.learned.len() < MAX_LEARNED
                                || self.learned.contains_key(&e.name)
                            {
                                self.learned.insert(e.name.clone(), from);
                            }
                        }
                        events.push(e);
                    }
                }
            }
            read += n;
        }
        Ok(())
    }
}
