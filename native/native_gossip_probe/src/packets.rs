//! The datagrams `send` sends: malformed ones, forged ones, and valid heartbeats.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use native_gossip_core::wire::{self, Outgoing, MAX_PACKET};
use native_gossip_core::Keyring;

use crate::{wall_ms, Options, DIST_PORT};

/// xorshift64*: fast, non-cryptographic randomness for test traffic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// The kinds `send` knows, and whether each needs a captured heartbeat (`capture`) or
/// `--name`.
pub const KINDS: [(&str, Need); 12] = [
    ("random", Need::Nothing),
    ("truncated", Need::Nothing),
    ("oversized", Need::Nothing),
    ("bad-mac", Need::Nothing),
    ("replay", Need::Capture),
    ("bitflip", Need::Capture),
    ("names", Need::Nothing),
    ("peers", Need::Nothing),
    ("claim", Need::Name),
    ("leave", Need::Capture),
    ("incarnations", Need::Name),
    ("goodbyes", Need::Name),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    Capture,
    Name,
}

/// Makes the `i`-th datagram of a kind.
pub struct Packets<'o> {
    pub kind: &'o str,
    pub o: &'o Options,
    pub rng: Rng,
    pub buf: Vec<u8>,
    /// Signs with --secret, or with a secret nobody has (bad-mac, truncated).
    pub signing: Keyring,
    /// --secret's keyring (none without one).
    pub keys: Keyring,
    pub captured: Option<Vec<u8>>,
    pub incarnation: u64,
}

impl Packets<'_> {
    pub fn make(&mut self, i: u64) -> Vec<u8> {
        match self.kind {
            "random" | "truncated" | "oversized" | "bad-mac" | "replay" | "bitflip" => {
                self.malformed(i)
            }
            _ => self.forged(i),
        }
    }

    /// What no node accepts: noise, cut or damaged heartbeats, replays.
    fn malformed(&mut self, i: u64) -> Vec<u8> {
        let (rng, buf, incarnation) = (&mut self.rng, &mut self.buf, self.incarnation);
        match self.kind {
            "random" => {
                let len = rng.below(1473) as usize;
                rng.fill(&mut buf[..len]);
                buf[..len].to_vec()
            }
            "truncated" => {
                let name = format!("t{}@probe", i % 1000);
                let full = heartbeat(&name, incarnation, i + 1, &self.signing);
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
                let name = format!("m{}@probe", i % 1000);
                let mut p = heartbeat(&name, incarnation, i + 1, &self.signing);
                let at = p.len() - 32;
                rng.fill(&mut p[at..]);
                p
            }
            "replay" => self.captured.clone().expect("captured"),
            "bitflip" => {
                let mut p = self.captured.clone().expect("captured");
                let bit = rng.below(p.len() as u64 * 8) as usize;
                p[bit / 8] ^= 1 << (bit % 8);
                p
            }
            _ => unreachable!("kinds are checked before sending"),
        }
    }

    /// Well-formed heartbeats: made-up names and peers, claims, forged goodbyes.
    fn forged(&mut self, i: u64) -> Vec<u8> {
        let (o, incarnation, none) = (self.o, self.incarnation, &Keyring::none());
        let peers = o.peers.max(1);
        let name = || o.name.as_deref().expect("checked");
        match self.kind {
            "names" => heartbeat(&format!("fake{i}@made-up-host"), incarnation, 1, none),
            "claim" => heartbeat(name(), incarnation, i + 1, &self.keys),
            "leave" => {
                let victim = self.captured.as_deref().expect("captured");
                let hb = wire::decode(victim, none).expect("captured unsigned");
                encode(hb.name, hb.incarnation, u64::MAX - i, true, none)
            }
            "goodbyes" => {
                let (prefix, host) = name().split_once('@').expect("checked");
                let forged = format!("{prefix}{}@{host}", i % peers);
                encode(&forged, incarnation, 1 + i / peers, true, none)
            }
            "incarnations" => encode(name(), incarnation + i, 1, i % 2 == 1, none),
            "peers" => {
                let peer = format!("peer{}@probe", i % peers);
                heartbeat(&peer, incarnation, i / peers + 1, &self.keys)
            }
            _ => unreachable!("kinds are checked before sending"),
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
pub fn capture(s: &UdpSocket, o: &Options) -> Result<Vec<u8>, String> {
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
