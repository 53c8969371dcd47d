//! `send`: test traffic to the group (or to one node with `--target`), paced.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use native_gossip_core::Keyring;

use crate::packets::{capture, Need, Packets, Rng, KINDS};
use crate::{socket, wall_ms, Options, USAGE};

/// Datagrams handed to the kernel per `sendmmsg` call.
const SEND_BATCH: usize = 64;

pub fn send(o: &Options) -> Result<(), String> {
    let kind = o.kind.as_deref().ok_or("send needs --kind")?;
    let need = check(o, kind)?;
    let s = match o.target {
        None => socket(o)?,
        Some(_) => UdpSocket::bind((o.source_base, 0)).map_err(|e| e.to_string())?,
    };
    let to = o
        .target
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(o.group, o.port)));
    let back = o.target.map(|_| count_replies(&s, o));
    let captured = match need {
        Need::Capture => Some(capture(&s, o)?),
        _ => None,
    };
    std::thread::sleep(o.replay_after);
    let mut packets = Packets {
        kind,
        o,
        rng: Rng(wall_ms() | 1),
        buf: vec![0u8; 1472],
        signing: Keyring::new(if o.secrets.is_empty() {
            vec![b"not-the-secret".to_vec()]
        } else {
            o.secrets.clone()
        }),
        keys: Keyring::new(o.secrets.clone()),
        captured,
        incarnation: wall_ms() * 1000,
    };
    let start = Instant::now();
    let (sent, errors, sent_bytes) = paced(o, &s, to, &source_sockets(o)?, &mut packets);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "native-gossip-probe: sent {sent} {kind} datagrams in {secs:.1} s ({:.0}/s), {errors} send errors",
        sent as f64 / secs
    );
    if let Some(back) = back {
        let (bytes, datagrams) = back.join().expect("the counting thread");
        eprintln!(
            "native-gossip-probe: to {to}: sent {sent_bytes} bytes, received {bytes} bytes in {datagrams} datagrams back"
        );
    }
    Ok(())
}

/// What `kind` needs, or why it cannot be sent with these options.
fn check(o: &Options, kind: &str) -> Result<Need, String> {
    let Some(&(_, need)) = KINDS.iter().find(|(k, _)| *k == kind) else {
        return Err(format!("unknown --kind {kind}\n{USAGE}"));
    };
    if need == Need::Name {
        let name = o
            .name
            .as_deref()
            .ok_or(format!("--kind {kind} needs --name"))?;
        native_gossip_core::name::validate(name.as_bytes())
            .map_err(|e| format!("--name {name}: {e:?}"))?;
    }
    if kind == "leave" && !o.secrets.is_empty() {
        return Err("--kind leave forges unsigned goodbyes: no --secret".into());
    }
    Ok(need)
}

/// With --target: what comes back to the sending socket, counted by a thread until the
/// sending is over (and a second more): `(bytes, datagrams)`.
fn count_replies(s: &UdpSocket, o: &Options) -> JoinHandle<(u64, u64)> {
    let r = s.try_clone().expect("a UDP socket clones");
    r.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let until =
        Instant::now() + o.duration.unwrap_or(Duration::from_secs(10)) + Duration::from_secs(1);
    std::thread::spawn(move || {
        let (mut bytes, mut datagrams) = (0u64, 0u64);
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            if let Ok((n, _)) = r.recv_from(&mut buf) {
                bytes += n as u64;
                datagrams += 1;
            }
        }
        (bytes, datagrams)
    })
}

/// Sends at `--rate` for `--duration`: `(sent, errors, bytes sent)`.
fn paced(
    o: &Options,
    s: &UdpSocket,
    to: SocketAddr,
    sources: &[UdpSocket],
    packets: &mut Packets<'_>,
) -> (u64, u64, u64) {
    let duration = o.duration.unwrap_or(Duration::from_secs(10));
    let start = Instant::now();
    let (mut sent, mut errors, mut sent_bytes) = (0u64, 0u64, 0u64);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(SEND_BATCH);
    while start.elapsed() < duration {
        // Pace: send what is due by now (at most SEND_BATCH per system call).
        let due = (start.elapsed().as_secs_f64() * o.rate as f64) as u64;
        if sent + errors >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        batch.clear();
        while batch.len() < SEND_BATCH && sent + errors + (batch.len() as u64) < due {
            batch.push(packets.make(sent + errors + batch.len() as u64));
        }
        if sources.is_empty() {
            match send_batch(s, &batch, to) {
                Ok(n) => {
                    sent += n as u64;
                    sent_bytes += batch[..n].iter().map(|p| p.len() as u64).sum::<u64>();
                    errors += (batch.len() - n) as u64;
                }
                Err(_) => errors += batch.len() as u64,
            }
        } else {
            for p in &batch {
                let from = &sources[((sent + errors) % sources.len() as u64) as usize];
                match from.send_to(p, to) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
        }
    }
    (sent, errors, sent_bytes)
}

/// With `--sources N`: a socket bound to each of the N addresses from `--source-base`.
fn source_sockets(o: &Options) -> Result<Vec<UdpSocket>, String> {
    (0..o.sources)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(o.source_base) + i);
            let s = UdpSocket::bind((ip, 0)).map_err(|e| format!("cannot bind {ip}: {e}"))?;
            s.set_multicast_ttl_v4(1).map_err(|e| e.to_string())?;
            Ok(s)
        })
        .collect()
}

/// Sends `packets` to `to` with one `sendmmsg` call; returns how many the kernel took.
fn send_batch(s: &UdpSocket, packets: &[Vec<u8>], to: SocketAddr) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(to) = to else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    // SAFETY: zeroed sockaddr_in/iovec/mmsghdr are valid; every pointer set below points
    // into `packets`, `addr` or `iovecs`, which outlive the call and are not mutated.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = to.port().to_be();
    addr.sin_addr.s_addr = u32::from(*to.ip()).to_be();
    let mut iovecs: Vec<libc::iovec> = packets
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iovecs
        .iter_mut()
        .map(|iov| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: msgs holds packets.len() headers initialised as described above.
    let n = unsafe {
        libc::sendmmsg(
            s.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            0,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
