//! Every socket of a topology: set-up (binding, group membership, options), sending a
//! [`Transmit`], waiting for datagrams and reading them in batches. This is the one
//! file with platform-specific code: the rest of the crate is portable Rust.
//!
//! Several nodes on one host share the port (SO_REUSEADDR, SO_REUSEPORT). A multicast
//! topology has a socket bound to its group, so that only the group's datagrams reach
//! it, and with seeds a second one bound to the wildcard address for unicast. A
//! broadcast topology has one socket, bound to the wildcard address, that hears both.
//!
//! Two things are Linux-only and have a portable path beside them, which the cargo
//! feature `portable` forces on Linux too (so `make test` runs it):
//!
//! - receiving: `recvmmsg(2)`, up to `BATCH` datagrams per call; portably, `recvfrom(2)`
//!   in a loop, one datagram per call;
//! - `IP_MULTICAST_ALL`/`IPV6_MULTICAST_ALL` off on wildcard-bound sockets, so that
//!   the seeds' socket gets no group traffic; portably there is no such option (macOS
//!   and the BSDs), and such a socket also receives the group's datagrams on its port:
//!   the engine drops those copies as `replay` (the group socket had them first).

#[cfg(windows)]
compile_error!(
    "NativeGossip does not support Windows: it needs Unix sockets and poll(2). \
     It builds on Linux, macOS and the BSDs."
);

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use native_gossip_core::engine::{Destination, Transmit, Via};

/// The default UDP port of a topology.
pub const DEFAULT_PORT: u16 = 45892;
/// The default multicast group (administratively scoped, 239.0.0.0/8).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 45, 92);

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
            unicast: false,
        }
    }

    /// Whether the user chose the interface (so a failure to join it is a mistake to
    /// report, not a network that is not up yet).
    pub fn interface_chosen(&self) -> bool {
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
    /// The cluster label or the tags cannot go on the wire.
    InvalidOption(String),
    /// Anything else the OS refused.
    Socket(String),
}

impl StartError {
    pub fn kind(&self) -> &'static str {
        match self {
            StartError::PortInUse(_) => "port_in_use",
            StartError::InterfaceUnavailable(_) => "interface_unavailable",
            StartError::InvalidNodeName(_) => "invalid_node_name",
            StartError::InvalidOption(_) => "invalid_option",
            StartError::Socket(_) => "socket_error",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StartError::PortInUse(m)
            | StartError::InterfaceUnavailable(m)
            | StartError::InvalidNodeName(m)
            | StartError::InvalidOption(m)
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
/// best effort (kernels before 4.20 lack the IPv6 one). Linux only (see the module doc).
#[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
fn set_multicast_all(_socket: &Socket, _on: bool, _v6: bool) {}

#[cfg(all(target_os = "linux", not(feature = "portable")))]
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

/// Receive buffer asked for (bytes).
const RECV_BUFFER: usize = 1 << 20;

/// The sockets of one topology, opened and bound; the group is joined separately
/// (`join`), since that can fail for a while on a host whose network is not up yet.
#[derive(Debug)]
pub struct Sockets {
    /// The multicast socket (or, in broadcast mode, the one socket).
    group: UdpSocket,
    /// The socket for unicast heartbeats when seeds are configured (multicast mode).
    unicast: Option<UdpSocket>,
    /// Whether the group socket hears unicast heartbeats too (broadcast with seeds).
    group_hears_unicast: bool,
    destination: SocketAddr,
}

/// Which sockets have datagrams waiting, and whether the wake-up socket was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub group: bool,
    pub unicast: bool,
    pub wake: bool,
}

impl Sockets {
    /// Binds the sockets `cfg` asks for.
    pub fn open(cfg: &SocketConfig) -> Result<Sockets, StartError> {
        let group = bind_socket(cfg)?;
        // A broadcast socket is bound to the wildcard address and hears unicast itself.
        let unicast = if cfg.unicast && !cfg.broadcast {
            Some(bind_unicast_socket(cfg)?)
        } else {
            None
        };
        Ok(Sockets {
            group,
            unicast,
            group_hears_unicast: cfg.unicast && cfg.broadcast,
            destination: cfg.destination(),
        })
    }

    /// Joins the group (see `join`).
    pub fn join(&self, cfg: &SocketConfig) -> Join {
        join(&self.group, cfg)
    }

    /// Sends one datagram where the engine said; false if the OS refused it.
    /// Sends one datagram. A failure says where to and the OS error, for the logs.
    pub fn send(&self, t: &Transmit) -> Result<(), String> {
        let (socket, to) = match t.to {
            Destination::Group => (&self.group, self.destination),
            Destination::Unicast(to) => (self.unicast.as_ref().unwrap_or(&self.group), to),
        };
        match socket.send_to(&t.bytes, to) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("to {to}: {e}")),
        }
    }

    /// Waits until a socket or `wake` is readable, or `timeout` has passed.
    pub fn wait(&self, wake: &UnixDatagram, timeout: Duration) -> io::Result<Ready> {
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Without a unicast socket its slot polls the wake-up socket again; its result
        // is then ignored.
        let unicast_fd = self
            .unicast
            .as_ref()
            .map_or(wake.as_raw_fd(), |u| u.as_raw_fd());
        let mut fds = [
            pollfd(self.group.as_raw_fd()),
            pollfd(wake.as_raw_fd()),
            pollfd(unicast_fd),
        ];
        // Round up so that a deadline 0.3 ms away does not become a busy loop of 0 ms polls.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Ready::default())
            } else {
                Err(e)
            };
        }
        let ready =
            |f: &libc::pollfd| f.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
        Ok(Ready {
            group: ready(&fds[0]),
            unicast: self.unicast.is_some() && ready(&fds[2]),
            wake: ready(&fds[1]),
        })
    }

    /// Reads up to `BATCH` waiting datagrams of the group socket (or, with `unicast`,
    /// of the unicast socket) into `batch`: how many, and how they arrived. ICMP errors
    /// of earlier sends, which surface here, are passed over.
    pub fn recv(&self, unicast: bool, batch: &mut BatchReceiver) -> io::Result<(usize, Via)> {
        let (socket, via) = match &self.unicast {
            Some(u) if unicast => (u, Via::Unicast),
            _ if self.group_hears_unicast => (&self.group, Via::Unicast),
            _ => (&self.group, Via::Group),
        };
        loop {
            match batch.recv(socket.as_raw_fd()) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                other => return other.map(|n| (n, via)),
            }
        }
    }
}

/// This host's own addresses of one family (the one `v4` says), as `getifaddrs(3)`
/// lists them: those of interfaces that are up, the interface a topology is told to
/// use first, other non-loopback ones next, loopback last, at most `wire::MAX_ADDRS`.
/// With a secret, every heartbeat lists them, and receivers accept a heartbeat only
/// from one of them (see `Engine::set_own_addresses`).
pub fn local_addresses(v4: bool, first: Option<IpAddr>) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return found;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not freed yet.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) == 0 {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the family it says.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as libc::c_int;
        let ip = match family {
            libc::AF_INET if v4 => {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
            libc::AF_INET6 if !v4 => {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                let mut bytes = sin6.sin6_addr.s6_addr;
                // macOS and the BSDs embed a link-local address's scope in bytes 2 and
                // 3 (KAME); on the wire, and on Linux, they are 0.
                if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 {
                    bytes[2] = 0;
                    bytes[3] = 0;
                }
                IpAddr::V6(Ipv6Addr::from(bytes))
            }
            _ => continue,
        };
        if !found.contains(&ip) {
            found.push(ip);
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    found.sort_by_key(|ip| (Some(*ip) != first, ip.is_loopback()));
    found.truncate(native_gossip_core::wire::MAX_ADDRS);
    found
}

/// A pair of connected datagram sockets, non-blocking: writing to the first wakes a
/// thread waiting on the second.
pub fn wake_pair() -> Result<(UnixDatagram, UnixDatagram), StartError> {
    let (wake, wake_rx) =
        UnixDatagram::pair().map_err(|e| StartError::Socket(format!("socketpair: {e}")))?;
    for s in [&wake, &wake_rx] {
        s.set_nonblocking(true)
            .map_err(|e| StartError::Socket(format!("O_NONBLOCK: {e}")))?;
    }
    Ok((wake, wake_rx))
}

/// Receiving many datagrams per system call (`recvmmsg(2)`). Under a flood, the cost
/// of a receiver is mostly one system call per datagram; reading up to `BATCH` per
/// call divides it. `recv` fills the batch, `get(i)` borrows datagram `i` and its
/// source.
/// Datagrams read per call.
pub const BATCH: usize = 32;
/// Bytes kept of each datagram: more than any heartbeat (`wire::MAX_PACKET`), so a
/// longer datagram is still seen as too long after truncation.
pub const SLOT: usize = 2048;

pub struct BatchReceiver {
    bufs: Box<[[u8; SLOT]; BATCH]>,
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    lens: [usize; BATCH],
    filled: usize,
}

impl Default for BatchReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchReceiver {
    pub fn new() -> Self {
        BatchReceiver {
            bufs: Box::new([[0u8; SLOT]; BATCH]),
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            addrs: Box::new(unsafe { zeroed() }),
            lens: [0; BATCH],
            filled: 0,
        }
    }

    /// Reads up to `BATCH` datagrams without blocking, one `recvfrom(2)` each; returns
    /// how many (0 when none was waiting). The portable path.
    #[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.filled = 0;
        while self.filled < BATCH {
            let i = self.filled;
            let mut addr_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: the buffer and the address storage are valid for their lengths
            // for the duration of the call.
            let n = unsafe {
                libc::recvfrom(
                    fd,
                    self.bufs[i].as_mut_ptr().cast(),
                    SLOT,
                    libc::MSG_DONTWAIT,
                    (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast(),
                    &mut addr_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(self.filled),
                    // What was read so far is handed out; the error comes again.
                    _ if self.filled > 0 => Ok(self.filled),
                    _ => Err(e),
                };
            }
            // recvfrom reports at most SLOT (it truncates): a longer datagram reads as
            // SLOT bytes, still over MAX_PACKET.
            self.lens[i] = (n as usize).min(SLOT);
            self.filled += 1;
        }
        Ok(self.filled)
    }

    /// Reads up to `BATCH` datagrams without blocking, with one `recvmmsg(2)`; returns
    /// how many (0 when none was waiting).
    #[cfg(all(target_os = "linux", not(feature = "portable")))]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: zeroed iovec/mmsghdr are valid; every pointer set below points into
        // self.bufs / self.addrs, which outlive the call and are not otherwise borrowed.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovecs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovecs[i].iov_len = SLOT;
            msgs[i].msg_hdr.msg_iov = &mut iovecs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: msgs holds BATCH initialised headers as described above.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.filled = 0;
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        self.filled = n as usize;
        for (len, msg) in self.lens.iter_mut().zip(&msgs).take(self.filled) {
            *len = (msg.msg_len as usize).min(SLOT);
        }
        Ok(self.filled)
    }

    /// Datagram `i` of the last `recv` (`i < filled`), and where it came from.
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        assert!(i < self.filled);
        (
            &self.bufs[i][..self.lens[i]],
            to_socket_addr(&self.addrs[i]),
        )
    }
}

fn to_socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; storage is large enough
            // and suitably aligned for it.
            let a: &libc::sockaddr_in =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    // Loopback unicast within this machine only.
    #[test]
    fn receives_several_datagrams_per_call_with_their_sources() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = BatchReceiver::new();
        assert_eq!(
            b.recv(rx.as_raw_fd()).unwrap(),
            0,
            "nothing waiting, no blocking"
        );
        for i in 0..40u8 {
            tx.send_to(&vec![i; i as usize * 100], rx.local_addr().unwrap())
                .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let n = b.recv(rx.as_raw_fd()).unwrap();
        assert_eq!(n, BATCH);
        for i in 0..n {
            let (data, from) = b.get(i);
            // Datagrams longer than a slot are cut to it.
            assert_eq!(data.len(), (i * 100).min(SLOT));
            assert!(data.iter().all(|&x| x == i as u8));
            assert_eq!(from, Some(tx.local_addr().unwrap()));
        }
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 40 - BATCH);
    }

    #[test]
    fn local_addresses_list_this_hosts_own_with_the_chosen_one_first_and_loopback_last() {
        // In the tests' private namespace: loopback is up (make test runs cargo test
        // there); on a developer's host there are more.
        let v4 = local_addresses(true, None);
        assert!(v4.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{v4:?}");
        assert!(v4.iter().all(|a| a.is_ipv4()));
        assert!(v4.len() <= native_gossip_core::wire::MAX_ADDRS);
        let loopback_at = v4.iter().position(|a| a.is_loopback()).unwrap();
        assert!(v4[loopback_at..].iter().all(|a| a.is_loopback()));
        let chosen = *v4.last().unwrap();
        assert_eq!(local_addresses(true, Some(chosen))[0], chosen);
        assert!(local_addresses(false, None).iter().all(|a| a.is_ipv6()));
    }
}
