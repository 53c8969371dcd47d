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

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use native_gossip_core::Keyring;
use native_gossip_io::socket::{bind_socket, join, Join, DEFAULT_GROUP, DEFAULT_PORT};
use native_gossip_io::SocketConfig;

mod listen;
mod packets;
mod send;

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

/// The value after `flag`, parsed.
fn parsed<T: FromStr>(flag: &str, value: Option<&String>) -> Result<T, String> {
    let v = value.ok_or(format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("bad value for {flag}: {v}"))
}

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
        let f = flag.as_str();
        let secs = |v: f64| Duration::from_secs_f64(v);
        match f {
            "--kind" => o.kind = Some(parsed(f, it.next())?),
            "--group" => o.group = parsed(f, it.next())?,
            "--interface" => o.interface = parsed(f, it.next())?,
            "--port" => o.port = parsed(f, it.next())?,
            "--secret" => o.secrets.push(parsed::<String>(f, it.next())?.into_bytes()),
            "--encrypt" => o.encrypt = true,
            "--cluster" => o.cluster = parsed(f, it.next())?,
            "--rate" => o.rate = parsed(f, it.next())?,
            "--count" => o.count = Some(parsed(f, it.next())?),
            "--peers" => o.peers = parsed(f, it.next())?,
            "--duration" => o.duration = Some(secs(parsed(f, it.next())?)),
            "--capture-timeout" => o.capture_timeout = secs(parsed(f, it.next())?),
            "--capture-name" => o.capture_name = Some(parsed(f, it.next())?),
            "--name" => o.name = Some(parsed(f, it.next())?),
            "--replay-after" => o.replay_after = secs(parsed(f, it.next())?),
            "--sources" => o.sources = parsed(f, it.next())?,
            "--source-base" => o.source_base = parsed(f, it.next())?,
            "--dist-port" => {
                DIST_PORT.store(parsed(f, it.next())?, std::sync::atomic::Ordering::Relaxed)
            }
            "--target" => o.target = Some(parsed(f, it.next())?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|o| match o.command.as_str() {
        "listen" => listen::listen(&o),
        "send" => send::send(&o),
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
