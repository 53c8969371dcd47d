//! Every socket of a topology: set-up (binding, group membership, options), sending a
//! [`Transmit`], waiting for datagrams and reading them in batches. This is the one
//! module with platform-specific code (in `bind.rs`, `batch.rs`, `addresses.rs`): the
//! rest of the crate is portable Rust.
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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

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

mod addresses;
mod batch;
mod bind;

pub use addresses::local_addresses;
pub use batch::{BatchReceiver, BATCH, SLOT};
pub use bind::{bind_answer_socket, bind_socket, bind_unicast_socket, join, Join};

/// Receive buffer asked for (bytes).
pub(super) const RECV_BUFFER: usize = 1 << 20;

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
    /// Where members answer this node's joining heartbeats (`bind_answer_socket`).
    answers: UdpSocket,
    destination: SocketAddr,
}

/// Which sockets have datagrams waiting, and whether the wake-up socket was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub group: bool,
    pub unicast: bool,
    pub answers: bool,
    pub wake: bool,
}

/// Which socket to read (`Sockets::recv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Group,
    Unicast,
    Answers,
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
            answers: bind_answer_socket(cfg)?,
            destination: cfg.destination(),
        })
    }

    /// The port of the answer socket (for `Engine::set_answer_port`).
    pub fn answer_port(&self) -> u16 {
        self.answers.local_addr().map_or(0, |a| a.port())
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
            pollfd(self.answers.as_raw_fd()),
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
            answers: ready(&fds[3]),
            wake: ready(&fds[1]),
        })
    }

    /// Reads up to `BATCH` waiting datagrams of one socket into `batch`: how many, and
    /// how they arrived. The answer socket's are members' heartbeats, handed over as
    /// the group's (they are not peers to send heartbeats to by unicast). ICMP errors
    /// of earlier sends, which surface here, are passed over.
    pub fn recv(&self, from: Source, batch: &mut BatchReceiver) -> io::Result<(usize, Via)> {
        let (socket, via) = match (&self.unicast, from) {
            (_, Source::Answers) => (&self.answers, Via::Group),
            (Some(u), Source::Unicast) => (u, Via::Unicast),
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
