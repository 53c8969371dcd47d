//! `native-gossip-probe`: a debugging and testing tool for NativeGossip groups.
//!
//! ```text
//! native-gossip-probe listen [options]
//!     Prints every datagram received on the group with its verdict: the heartbeat's
//!     sender, incarnation, sequence and flags, or the reason it would be dropped.
//!
//! native-gossip-probe send --kind KIND [--rate N] [--duration SECONDS] [options]
//!     Sends test traffic to the group at N datagrams per second. KIND is one of:
//!       random      random bytes of random length (0..=1472)
//!       truncated   genuine-looking heartbeats cut short
//!       oversized   datagrams over the 1200-byte limit that start like heartbeats
//!       bad-mac     well-formed signed heartbeats with a wrong MAC
//!       replay      the first genuine heartbeat heard on the group, sent again
//!       bitflip     the first genuine heartbeat heard, one random bit flipped each time
//!       names       well-formed unsigned heartbeats, each with a new made-up name
//!       peers       valid heartbeats (signed with --secret if given) from --peers
//!                   distinct made-up nodes, each heartbeating in turn
//!       claim       valid heartbeats (signed with --secret if given) of --name
//!       leave       unsigned goodbyes (LEAVING) in the name of --capture-name, with
//!                   its captured incarnation and the highest sequence numbers
//!       incarnations  unsigned heartbeats of --name, each a new incarnation, every
//!                   other one a goodbye
//!       goodbyes    unsigned goodbyes (LEAVING) of --peers made-up names in turn:
//!                   --name NAME@HOST gives NAME0@HOST, NAME1@HOST, ...
//!
//! options:
//!   --group ADDR       multicast group (default 239.255.45.92, the core's DEFAULT_GROUP)
//!   --port PORT        UDP port (default 45892, the core's DEFAULT_PORT)
//!   --interface ADDR   local interface address to join and send on (default: route)
//!   --secret S         a secret (repeatable: first signs, any verifies)
//!   --encrypt          with --secret: seal (encrypt) what is sent, open what is heard
//!   --cluster LABEL    the cluster label of the group's nodes (listen: heartbeats of
//!                      other labels are shown dropped, with their label)
//!   --count N          listen: stop after N datagrams
//!   --duration SECONDS listen/send: stop after this long (send default 10)
//!   --capture-timeout SECONDS  replay/bitflip: how long to wait for a heartbeat (10)
//!   --capture-name NAME        replay/bitflip/leave: capture only this node's heartbeat
//!   --replay-after SECONDS     replay: wait this long after the capture before sending
//!   --name NAME        claim/incarnations: the node name to send as
//!   --sources N        send from N source addresses in turn, --source-base and the
//!                      N - 1 following ones (they must be on this host's interface)
//!   --source-base ADDR the first of those addresses
//!   --dist-port PORT   send: heartbeats made here say this distribution port
//!   --target IP:PORT   send: by unicast to this address (a node's seeds socket) instead
//!                      of the group, from a socket of this host, and count what comes
//!                      back to that socket (bytes and datagrams, printed at the end:
//!                      the amplification a node gives a spoofed source)
//! ```
//!
//! Only ever point it at a network you own; the project's own tests run it inside
//! network namespaces they create.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use native_gossip_core::wire::{self, Outgoing, MAX_PACKET};
use native_gossip_core::{Config, DropReason, Engine, Keyring, Via};
use native_gossip_io::socket::{bind_socket, join, Join, DEFAULT_GROUP, DEFAULT_PORT};
use native_gossip_io::SocketConfig;

struct Options {
    command: String,
    kind: Option<String>,
    group: Ipv4Addr,
    port: u16,
    interface: Ipv4Addr,
    secrets: Vec<Vec<u8>>,
    rate: u64,
    duration: Option<Duration>,
    count: Option<u64>,
    peers: u64,
    capture_timeout: Duration,
    capture_name: Option<String>,
    replay_after: Duration,
    name: Option<String>,
    sources: u32,
    source_base: Ipv4Addr,
    encrypt: bool,
    cluster: String,
    target: Option<SocketAddr>,
}

/// `--dist-port`: the distribution port the heartbeats made here announce (0: none).
static DIST_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

impl Options {
    /// The keyring the options describe: signing with --secret, sealing with --encrypt.
    fn keys(&self) -> Keyring {
        let keys = Keyring::new(self.secrets.clone());
        if self.encrypt {
            keys.encrypting()
        } else {
            keys
        }
    }
}

const USAGE: &str = "usage: native-gossip-probe listen|send [--kind KIND] [--rate N] \
[--duration S] [--count N] [--peers N] [--group ADDR] [--port PORT] [--interface ADDR] \
[--secret S]... [--encrypt] [--cluster LABEL] [--name NAME] [--capture-name NAME] [--replay-after S] [--sources N \
--source-base ADDR] (see the crate docs for the kinds)";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        command: args.first().cloned().ok_or(USAGE)?,
        kind: None,
        group: DEFAULT_GROUP,
        port: DEFAULT_PORT,
        interface: Ipv4Addr::UNSPECIFIED,
        secrets: Vec::new(),
        rate: 1000,
        duration: None,
        count: None,
        peers: 1000,
        capture_timeout: Duration::from_secs(10),
        capture_name: None,
        replay_after: Duration::ZERO,
        name: None,
        sources: 0,
        source_base: Ipv4Addr::UNSPECIFIED,
        encrypt: false,
        cluster: String::new(),
        target: None,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        let bad = |f: &str, v: &str| format!("bad value for {f}: {v}");
        match flag.as_str() {
            "--kind" => o.kind = Some(value()?),
            "--group" => {
                let v = value()?;
                o.group = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--interface" => {
                let v = value()?;
                o.interface = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--port" => {
                let v = value()?;
                o.port = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--secret" => o.secrets.push(value()?.into_bytes()),
            "--encrypt" => o.encrypt = true,
            "--cluster" => o.cluster = value()?,
            "--rate" => {
                let v = value()?;
                o.rate = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--count" => {
                let v = value()?;
                o.count = Some(v.parse().map_err(|_| bad(flag, &v))?)
            }
            "--peers" => {
                let v = value()?;
                o.peers = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--duration" => {
                let v = value()?;
                o.duration = Some(Duration::from_secs_f64(
                    v.parse().map_err(|_| bad(flag, &v))?,
                ))
            }
            "--capture-timeout" => {
                let v = value()?;
                o.capture_timeout = Duration::from_secs_f64(v.parse().map_err(|_| bad(flag, &v))?)
            }
            "--capture-name" => o.capture_name = Some(value()?),
            "--name" => o.name = Some(value()?),
            "--replay-after" => {
                let v = value()?;
                o.replay_after = Duration::from_secs_f64(v.parse().map_err(|_| bad(flag, &v))?)
            }
            "--sources" => {
                let v = value()?;
                o.sources = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--source-base" => {
                let v = value()?;
                o.source_base = v.parse().map_err(|_| bad(flag, &v))?
            }
            "--dist-port" => {
                let v = value()?;
                let port: u16 = v.parse().map_err(|_| bad(flag, &v))?;
                DIST_PORT.store(port, std::sync::atomic::Ordering::Relaxed);
            }
            "--target" => {
                let v = value()?;
                o.target = Some(v.parse().map_err(|_| bad(flag, &v))?)
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|o| match o.command.as_str() {
        "listen" => listen(&o),
        "send" => send(&o),
        _ => Err(USAGE.into()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("native-gossip-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn socket(o: &Options) -> Result<UdpSocket, String> {
    let cfg = SocketConfig::multicast_v4(o.group, o.port, o.interface, 1);
    let s = bind_socket(&cfg).map_err(|e| e.message().to_string())?;
    if let Join::Failed(why) = join(&s, &cfg) {
        return Err(why);
    }
    s.set_nonblocking(false).map_err(|e| e.to_string())?;
    Ok(s)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An engine that only listens: it applies every check a node applies (framing, MAC,
/// name, replay) and so gives each datagram the verdict a node would.
fn listener_engine(o: &Options) -> Engine {
    let config = Config {
        node_name: format!("native-gossip-probe-{}@listener", std::process::id()),
        keys: o.keys(),
        heartbeat_interval: Duration::from_secs(3600),
        lost_after: Duration::from_secs(3600),
        forget_after: Duration::from_secs(3600),
        max_peers: 1_000_000,
        new_peer_rate: 1_000_000,
        new_peer_burst: 1_000_000,
        cluster: o.cluster.clone(),
        ..Config::default()
    };
    Engine::new(config, Instant::now(), 0, 0).expect("a valid probe name and label")
}

fn listen(o: &Options) -> Result<(), String> {
    let s = socket(o)?;
    let mut engine = listener_engine(o);
    let keys = o.keys();
    let mut scratch = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let mut n = 0u64;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    loop {
        if o.count.is_some_and(|c| n >= c) || o.duration.is_some_and(|d| start.elapsed() >= d) {
            return Ok(());
        }
        let (len, from) = match s.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(e.to_string()),
        };
        n += 1;
        let data = &buf[..len];
        let at = start.elapsed().as_secs_f64();
        let verdict = match engine.handle_datagram_verdict(data, from, Via::Group, Instant::now()) {
            Ok(_) => {
                let hb = wire::decode_with(data, &keys, &mut scratch)
                    .expect("accepted datagrams decode");
                let mut flags = Vec::new();
                if hb.joining {
                    flags.push("joining");
                }
                if hb.leaving {
                    flags.push("leaving");
                }
                if data[5] & wire::FLAG_SEALED != 0 {
                    flags.push("sealed");
                }
                let tags: Vec<String> = hb.tags().map(|(k, v)| format!("{k}={v:?}")).collect();
                format!(
                    "accepted {} incarnation={} sequence={} flags=[{}]{}{}",
                    hb.name,
                    hb.incarnation,
                    hb.sequence,
                    flags.join(","),
                    if hb.cluster().is_empty() {
                        String::new()
                    } else {
                        format!(" cluster={:?}", String::from_utf8_lossy(hb.cluster()))
                    },
                    if tags.is_empty() {
                        String::new()
                    } else {
                        format!(" tags=[{}]", tags.join(","))
                    }
                )
            }
            Err(DropReason::OtherCluster) => {
                let label = wire::decode_with(data, &keys, &mut scratch)
                    .map(|hb| String::from_utf8_lossy(hb.cluster()).into_owned())
                    .unwrap_or_default();
                format!("dropped other_cluster (label {label:?})")
            }
            Err(reason) => format!("dropped {}", reason.as_str()),
        };
        println!("{at:10.3} {from} {len:5} bytes  {verdict}");
    }
}

/// xorshift64*: fast, non-cryptographic randomness for test traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

fn heartbeat(name: &str, incarnation: u64, sequence: u64, keys: &Keyring) -> Vec<u8> {
    encode(name, incarnation, sequence, false, keys)
}

fn encode(name: &str, incarnation: u64, sequence: u64, leaving: bool, keys: &Keyring) -> Vec<u8> {
    // Signed, a heartbeat lists the addresses of the host it comes from, as a node's
    // do (receivers drop it from any other source: `foreign_source`).
    static OWN: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    let (signed, plain) = OWN.get_or_init(|| {
        let dist = wire::dist_port_record(DIST_PORT.load(std::sync::atomic::Ordering::Relaxed));
        let mut signed = dist.clone();
        signed.extend(wire::address_records(
            &native_gossip_io::socket::local_addresses(true, None),
        ));
        (signed, dist)
    });
    wire::encode(
        &Outgoing {
            name,
            incarnation,
            sequence,
            timestamp_ms: wall_ms(),
            leaving,
            joining: false,
            newcomer: false,
            options: if keys.is_signing() { signed } else { plain },
        },
        keys,
    )
    .expect("names are checked before sending")
}

/// The first heartbeat of another node heard on the group, for replay and bitflip.
fn capture(s: &UdpSocket, o: &Options) -> Result<Vec<u8>, String> {
    let keys = o.keys();
    let mut scratch = Vec::new();
    let deadline = Instant::now() + o.capture_timeout;
    let mut buf = [0u8; 2048];
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    while Instant::now() < deadline {
        if let Ok((len, _)) = s.recv_from(&mut buf) {
            match wire::decode_with(&buf[..len], &keys, &mut scratch) {
                Ok(hb) if o.capture_name.as_deref().is_none_or(|n| n == hb.name) => {
                    return Ok(buf[..len].to_vec())
                }
                _ => {}
            }
        }
    }
    Err("heard no heartbeat to capture (give the group's --secret if it has one)".into())
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

/// Datagrams handed to the kernel per `sendmmsg` call.
const SEND_BATCH: usize = 64;

#[allow(clippy::too_many_arguments)]
fn make_packet(
    kind: &str,
    i: u64,
    o: &Options,
    rng: &mut Rng,
    buf: &mut [u8],
    signing: &Keyring,
    keys: &Keyring,
    captured: &Option<Vec<u8>>,
    incarnation: u64,
) -> Vec<u8> {
    match kind {
        "random" => {
            let len = rng.below(1473) as usize;
            rng.fill(&mut buf[..len]);
            buf[..len].to_vec()
        }
        "truncated" => {
            let full = heartbeat(&format!("t{}@probe", i % 1000), incarnation, i + 1, signing);
            full[..rng.below(full.len() as u64) as usize].to_vec()
        }
        "oversized" => {
            let len = MAX_PACKET + 1 + rng.below((1472 - MAX_PACKET) as u64) as usize;
            rng.fill(&mut buf[..len]);
            buf[..4].copy_from_slice(&wire::MAGIC);
            buf[4] = wire::VERSION;
            buf[..len].to_vec()
        }
        "bad-mac" => {
            let mut p = heartbeat(&format!("m{}@probe", i % 1000), incarnation, i + 1, signing);
            let at = p.len() - 32;
            rng.fill(&mut p[at..]);
            p
        }
        "replay" => captured.clone().expect("captured"),
        "bitflip" => {
            let mut p = captured.clone().expect("captured");
            let bit = rng.below(p.len() as u64 * 8) as usize;
            p[bit / 8] ^= 1 << (bit % 8);
            p
        }
        "names" => heartbeat(
            &format!("fake{i}@made-up-host"),
            incarnation,
            1,
            &Keyring::none(),
        ),
        "claim" => heartbeat(
            o.name.as_deref().expect("checked"),
            incarnation,
            i + 1,
            keys,
        ),
        "leave" => {
            let victim = captured.as_deref().expect("captured");
            let hb = wire::decode(victim, &Keyring::none()).expect("captured unsigned");
            encode(
                hb.name,
                hb.incarnation,
                u64::MAX - i,
                true,
                &Keyring::none(),
            )
        }
        "goodbyes" => {
            let (prefix, host) = o
                .name
                .as_deref()
                .and_then(|n| n.split_once('@'))
                .expect("checked");
            encode(
                &format!("{prefix}{}@{host}", i % o.peers.max(1)),
                incarnation,
                1 + i / o.peers.max(1),
                true,
                &Keyring::none(),
            )
        }
        "incarnations" => encode(
            o.name.as_deref().expect("checked"),
            incarnation + i,
            1,
            i % 2 == 1,
            &Keyring::none(),
        ),
        "peers" => {
            let peer = i % o.peers.max(1);
            heartbeat(
                &format!("peer{peer}@probe"),
                incarnation,
                i / o.peers.max(1) + 1,
                keys,
            )
        }
        _ => unreachable!("kinds are checked before sending"),
    }
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

fn send(o: &Options) -> Result<(), String> {
    let kind = o.kind.as_deref().ok_or("send needs --kind")?;
    let s = match o.target {
        None => socket(o)?,
        Some(_) => UdpSocket::bind((o.source_base, 0)).map_err(|e| e.to_string())?,
    };
    let to = o
        .target
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(o.group, o.port)));
    // With --target: what comes back to the sending socket, counted by a thread.
    let back = o.target.map(|_| {
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
    });
    let mut sent_bytes = 0u64;
    let duration = o.duration.unwrap_or(Duration::from_secs(10));
    let mut rng = Rng(wall_ms() | 1);
    let signing = Keyring::new(if o.secrets.is_empty() {
        vec![b"not-the-secret".to_vec()]
    } else {
        o.secrets.clone()
    });
    let keys = Keyring::new(o.secrets.clone());
    let captured = match kind {
        "replay" | "bitflip" | "leave" => Some(capture(&s, o)?),
        "claim" | "incarnations" | "goodbyes" => {
            let name = o
                .name
                .as_deref()
                .ok_or(format!("--kind {kind} needs --name"))?;
            native_gossip_core::name::validate(name.as_bytes())
                .map_err(|e| format!("--name {name}: {e:?}"))?;
            None
        }
        "random" | "truncated" | "oversized" | "bad-mac" | "names" | "peers" => None,
        other => return Err(format!("unknown --kind {other}\n{USAGE}")),
    };
    if kind == "leave" && !o.secrets.is_empty() {
        return Err("--kind leave forges unsigned goodbyes: no --secret".into());
    }
    std::thread::sleep(o.replay_after);
    let sources = source_sockets(o)?;
    let incarnation = wall_ms() * 1000;
    let mut buf = vec![0u8; 1472];
    let start = Instant::now();
    let (mut sent, mut errors) = (0u64, 0u64);
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
            let i = sent + errors + batch.len() as u64;
            batch.push(make_packet(
                kind,
                i,
                o,
                &mut rng,
                &mut buf,
                &signing,
                &keys,
                &captured,
                incarnation,
            ));
        }
        if sources.is_empty() {
            match send_batch(&s, &batch, to) {
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
