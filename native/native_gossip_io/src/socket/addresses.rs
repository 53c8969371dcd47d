//! This host's own addresses (`getifaddrs(3)`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

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
