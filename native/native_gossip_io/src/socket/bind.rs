//! Opening and binding a topology's sockets, and joining its group.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
#[cfg(all(target_os = "linux", not(feature = "portable")))]
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{needs_scope, SocketConfig, StartError, RECV_BUFFER};

/// Creates the socket and binds it: SO_REUSEADDR and SO_REUSEPORT so that several
/// nodes on one host share the port, multicast loopback on. A multicast socket is bound
/// to the group address (with the interface as scope for a link-local IPv6 group), so
/// that only this group's datagrams arrive; a broadcast one to the IPv4 wildcard
/// address. Joining is separate (`join`), since it can fail for a while on a host
/// whose network is not up yet.
pub fn bind_socket(cfg: &SocketConfig) -> Result<UdpSocket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let (domain, bind) = bind_address(cfg)?;
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
    set_sending(&socket, cfg)?;
    Ok(socket.into())
}

/// The family and the address a topology's socket binds to: its group, or for
/// broadcast the IPv4 wildcard.
fn bind_address(cfg: &SocketConfig) -> Result<(Domain, SocketAddr), StartError> {
    Ok(match (cfg.group, cfg.broadcast) {
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
    })
}

/// The sending options: the interface, TTL (hops) and loopback of multicast.
fn set_sending(socket: &Socket, cfg: &SocketConfig) -> Result<(), StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
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
    Ok(())
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

/// The answer socket: members answer this node's joining heartbeats here by unicast
/// (its port goes out in `OPT_ANSWER`), so that a join costs each of them O(1)
/// datagrams. Bound to the wildcard address of the group's family on a port of its own
/// (the kernel's choice: no other node of the host shares it), receiving no multicast.
pub fn bind_answer_socket(cfg: &SocketConfig) -> Result<UdpSocket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let v6 = cfg.group.is_ipv6();
    // (A newcomer takes an answer from every member within a quarter interval: the
    // large receive buffer matters here too.)
    let socket = udp_socket(if v6 { Domain::IPV6 } else { Domain::IPV4 })?;
    set_multicast_all(&socket, false, v6);
    let bind = if v6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    };
    socket
        .bind(&SockAddr::from(bind))
        .map_err(|e| other(&format!("cannot bind {bind} for answers"), e))?;
    Ok(socket.into())
}

/// A UDP socket that shares its port with the other nodes of the host (SO_REUSEADDR,
/// SO_REUSEPORT), as `udp_socket` makes them.
fn shared_udp_socket(domain: Domain) -> Result<Socket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let socket = udp_socket(domain)?;
    socket
        .set_reuse_address(true)
        .map_err(|e| other("SO_REUSEADDR", e))?;
    socket
        .set_reuse_port(true)
        .map_err(|e| other("SO_REUSEPORT", e))?;
    Ok(socket)
}

/// A UDP socket closed on exec, non-blocking, with a large receive buffer, and
/// IPv6-only for IPv6 (not yet bound).
fn udp_socket(domain: Domain) -> Result<Socket, StartError> {
    let other = |what: &str, e: io::Error| StartError::Socket(format!("{what}: {e}"));
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| other("cannot create a UDP socket", e))?;
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
