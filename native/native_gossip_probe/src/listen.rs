//! `listen`: every datagram on the group with the verdict a node would give it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use native_gossip_core::wire;
use native_gossip_core::{Config, DropReason, Engine, Keyring, Via};

use crate::{socket, Options};

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

pub fn listen(o: &Options) -> Result<(), String> {
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
        let verdict = verdict(&mut engine, data, from, &keys, &mut scratch);
        println!("{at:10.3} {from} {len:5} bytes  {verdict}");
    }
}

/// What a node would do with `data` from `from`: accepted (with what it says), or
/// dropped and why.
fn verdict(
    engine: &mut Engine,
    data: &[u8],
    from: SocketAddr,
    keys: &Keyring,
    scratch: &mut Vec<u8>,
) -> String {
    match engine.handle_datagram_verdict(data, from, Via::Group, Instant::now()) {
        Ok(_) => {
            let hb = wire::decode_with(data, keys, scratch).expect("accepted datagrams decode");
            accepted(&hb, data[5])
        }
        Err(DropReason::OtherCluster) => {
            let label = wire::decode_with(data, keys, scratch)
                .map(|hb| String::from_utf8_lossy(hb.cluster()).into_owned())
                .unwrap_or_default();
            format!("dropped other_cluster (label {label:?})")
        }
        Err(reason) => format!("dropped {}", reason.as_str()),
    }
}

/// An accepted heartbeat, as a line; `flags_byte`: its flags as sent.
fn accepted(hb: &wire::Heartbeat<'_>, flags_byte: u8) -> String {
    let mut flags = Vec::new();
    if hb.joining {
        flags.push("joining");
    }
    if hb.leaving {
        flags.push("leaving");
    }
    if flags_byte & wire::FLAG_SEALED != 0 {
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
