//! Reading datagrams in batches: `recvmmsg(2)` on Linux, `recvfrom(2)` in a loop
//! elsewhere (and with the `portable` feature).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

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
}
