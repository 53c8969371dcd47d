//! Datagrams handled per second on one core: decoding and verifying heartbeats, with
//! and without HMAC, with tags and a label, sealed (encrypted), through the bare
//! decoder and through a whole engine (which also does the replay check and the peer
//! table), and rejecting junk; and the bytes a heartbeat takes on the wire.
//!
//! Each measure runs for a fixed time, five times; the median run is reported. Inputs
//! are made before the clock starts; `black_box` keeps the work from being optimised
//! away. Run: `cargo bench -p native_gossip_core --bench throughput`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use native_gossip_core::wire::{self, Outgoing};
use native_gossip_core::{Config, Engine, Keyring, Via};

/// Counts the bytes allocated through it, for the memory per peer of the engine.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        ALLOCATED.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            ALLOCATED.fetch_add(new_size, Relaxed);
            ALLOCATED.fetch_sub(layout.size(), Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RUN: Duration = Duration::from_millis(1500);
const RUNS: usize = 5;

/// Heartbeats of `peers` distinct nodes, `per_peer` consecutive sequences each, in
/// round-robin order (as a busy group would deliver them).
fn heartbeats(keys: &Keyring, peers: usize, per_peer: usize) -> Vec<Vec<u8>> {
    with_options(keys, peers, per_peer, &[])
}

/// A cluster label and four tags, as a deployment might give every node.
fn label_and_tags() -> Vec<u8> {
    let tags: Vec<(String, String)> = [
        ("role", "web"),
        ("version", "1.4.2"),
        ("zone", "eu-west-1a"),
        ("build", "2026-11-22T10:00:00Z"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    wire::options_block("production", &tags).unwrap()
}

/// The four tags alone (the benchmark engines have no label).
fn label_and_tags_unlabelled() -> Vec<u8> {
    wire::tag_records(&label_and_tags())
}

/// As `heartbeats`, each with the options block `options`.
fn with_options(keys: &Keyring, peers: usize, per_peer: usize, options: &[u8]) -> Vec<Vec<u8>> {
    // Signed, a heartbeat lists its sender's address (the engines below hear every
    // one from 198.51.100.2), as a node's do.
    let mut options = options.to_vec();
    if keys.is_signing() {
        options.extend(wire::address_records(&["198.51.100.2".parse().unwrap()]));
    }
    let options = &options[..];
    let mut out = Vec::with_capacity(peers * per_peer);
    for seq in 1..=per_peer as u64 {
        for p in 0..peers {
            let name = format!("node{p}@host{p}.example.com");
            out.push(
                wire::encode(
                    &Outgoing {
                        name: &name,
                        incarnation: 1_700_000_000_000_000 + p as u64,
                        sequence: seq,
                        timestamp_ms: 1_700_000_000_000,
                        leaving: false,
                        joining: false,
                        newcomer: false,
                        options,
                    },
                    keys,
                )
                .unwrap(),
            );
        }
    }
    out
}

/// Runs `f` over `inputs` (cycling) for RUN, RUNS times; returns the median rate.
fn rate(inputs: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> f64 {
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < RUN {
            for p in inputs.iter().take(4096) {
                f(black_box(p));
            }
            n += inputs.len().min(4096) as u64;
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates[RUNS / 2]
}

fn engine(keys: Keyring) -> Engine {
    let config = Config {
        node_name: "bench@local".into(),
        keys,
        heartbeat_interval: Duration::from_secs(3600),
        lost_after: Duration::from_secs(3600),
        forget_after: Duration::from_secs(3600),
        max_peers: 100_000,
        new_peer_rate: 1_000_000,
        new_peer_burst: 1_000_000,
        ..Config::default()
    };
    Engine::new(config, Instant::now(), 1, 1).unwrap()
}

fn main() {
    let none = Keyring::none();
    let keyed = Keyring::new(vec![b"a cluster secret of some length".to_vec()]);
    let from: SocketAddr = "198.51.100.2:45892".parse().unwrap();
    println!(
        "| measure | datagrams per second, one core (median of {RUNS} runs of {} ms) |",
        RUN.as_millis()
    );
    println!("|---|---|");

    let plain = heartbeats(&none, 64, 64);
    let r = rate(&plain, |p| {
        black_box(wire::decode(p, &none).is_ok());
    });
    println!("| decode, no secret | {r:.0} |");

    let signed = heartbeats(&keyed, 64, 64);
    let r = rate(&signed, |p| {
        black_box(wire::decode(p, &keyed).is_ok());
    });
    println!("| decode and verify HMAC-SHA256 | {r:.0} |");

    let options = label_and_tags();
    let tagged = with_options(&keyed, 64, 64, &options);
    let r = rate(&tagged, |p| {
        black_box(wire::decode(p, &keyed).is_ok());
    });
    println!("| decode and verify HMAC-SHA256, with a label and four tags | {r:.0} |");

    let sealing = keyed.clone().encrypting();
    let sealed = with_options(&sealing, 64, 64, &options);
    let mut scratch = Vec::new();
    let r = rate(&sealed, |p| {
        black_box(wire::decode_with(p, &sealing, &mut scratch).is_ok());
    });
    println!("| open XChaCha20-Poly1305 and decode, with a label and four tags | {r:.0} |");

    // A whole engine: 4096 distinct peers, each heartbeat newer than the last (so every
    // one is accepted: decode, MAC, replay check, table update). Each run is one pass
    // over all of them with a fresh engine.
    let many = heartbeats(&keyed, 4096, 200);
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut e = engine(keyed.clone());
        let now = Instant::now();
        let start = Instant::now();
        for p in &many {
            black_box(e.handle_datagram(black_box(p), from, Via::Group, now));
        }
        rates.push(many.len() as f64 / start.elapsed().as_secs_f64());
        assert_eq!(
            e.stats().accepted,
            many.len() as u64,
            "every heartbeat accepted"
        );
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let engine_hmac = rates[RUNS / 2];
    println!(
        "| engine, HMAC, 4096 peers (decode, verify, replay check, table) | {engine_hmac:.0} |"
    );
    // The same with encryption, a label and four tags (each peer's tags compared with
    // what the table holds, on every heartbeat).
    let many_sealed = with_options(&sealing, 4096, 50, &label_and_tags_unlabelled());
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut e = engine(sealing.clone());
        let now = Instant::now();
        let start = Instant::now();
        for p in &many_sealed {
            black_box(e.handle_datagram(black_box(p), from, Via::Group, now));
        }
        rates.push(many_sealed.len() as f64 / start.elapsed().as_secs_f64());
        assert_eq!(e.stats().accepted, many_sealed.len() as u64);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "| engine, sealed, four tags, 4096 peers (open, decode, replay check, tags, table) | {:.0} |",
        rates[RUNS / 2]
    );
    let now = Instant::now();

    let mut junk = Vec::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for len in 0..1024usize {
        let mut p = Vec::with_capacity(len % 1400);
        for _ in 0..len % 1400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.push(x as u8);
        }
        junk.push(p);
    }
    let mut e = engine(keyed.clone());
    let r = rate(&junk, |p| {
        black_box(e.handle_datagram(p, from, Via::Group, now));
    });
    println!("| engine, random junk rejected | {r:.0} |");

    let forged: Vec<Vec<u8>> = heartbeats(&Keyring::new(vec![b"wrong".to_vec()]), 64, 16);
    let mut e = engine(keyed.clone());
    let r = rate(&forged, |p| {
        black_box(e.handle_datagram(p, from, Via::Group, now));
    });
    println!("| engine, forged MAC rejected | {r:.0} |");

    // Sealed with another secret: what a flood of forged sealed datagrams costs an
    // encrypting node (an opening attempt each).
    let forged_sealed = with_options(
        &Keyring::new(vec![b"wrong".to_vec()]).encrypting(),
        64,
        16,
        &options,
    );
    let mut e = engine(sealing.clone());
    let r = rate(&forged_sealed, |p| {
        black_box(e.handle_datagram(p, from, Via::Group, now));
    });
    println!("| engine, encrypting, forged sealed datagram rejected | {r:.0} |");
    // Memory: bytes the engine holds for 10,000 authenticated peers (the peer table,
    // names included), counted by the allocator, as in bench/scale.exs.
    let peers = 10_000;
    let hellos = heartbeats(&keyed, peers, 1);
    let before = ALLOCATED.load(Relaxed);
    let mut e = engine(keyed.clone());
    let now = Instant::now();
    for p in &hellos {
        e.handle_datagram(p, from, Via::Group, now);
    }
    assert_eq!(e.peer_count(), peers);
    let per_peer = (ALLOCATED.load(Relaxed) - before) / peers;
    println!();
    println!("| native memory | bytes per peer |");
    println!("|---|---|");
    println!(
        "| engine with {peers} peers (table and names), counted by the allocator | {per_peer} |"
    );
    drop(e);

    // Bytes on the wire (UDP payload) of one heartbeat of `node12@host12.example.com`.
    let size = |keys: &Keyring, options: &[u8]| with_options(keys, 13, 1, options)[12].len();
    println!();
    println!("| heartbeat of node12@host12.example.com | bytes (UDP payload) |");
    println!("|---|---|");
    println!("| no secret | {} |", size(&none, &[]));
    println!("| signed (HMAC-SHA256) | {} |", size(&keyed, &[]));
    println!(
        "| signed, label \"production\" and four tags ({} bytes of options) | {} |",
        options.len(),
        size(&keyed, &options)
    );
    println!("| sealed (XChaCha20-Poly1305) | {} |", size(&sealing, &[]));
    println!(
        "| sealed, label and four tags | {} |",
        size(&sealing, &options)
    );
    println!();
    println!(
        "- at least 1,000,000 per second per core with HMAC, through the whole engine: {engine_hmac:.0}, {}",
        if engine_hmac >= 1_000_000.0 { "**met**" } else { "**missed**" }
    );
}
