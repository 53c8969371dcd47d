//! Feeds arbitrary datagrams to the decoder and to whole engines (with and without a
//! secret, so both the MAC path and the unauthenticated path with its rate limit are
//! exercised; with a cluster label; encrypting). Nothing may panic, and every datagram
//! must be accepted or counted under exactly one drop reason. A datagram the decoder
//! accepts must encode back to itself, options (label, tags, unknown records)
//! included, and its label and tags must read without panicking. The same bytes are
//! also sealed as the inside of an encrypted heartbeat, so that the decoder's path
//! after a successful opening sees arbitrary plaintext too. Engines that also read
//! libcluster's format (plaintext and encrypted) get the same datagrams, and its strict
//! term decoder must either find a valid name or refuse.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use native_gossip_core::compat;
use native_gossip_core::name;
use native_gossip_core::wire::{self, Outgoing};
use native_gossip_core::{Config, Engine, Keyring, Via};

fn engine(keys: Keyring, compat: bool, cluster: &str, now: Instant) -> Engine {
    let config = Config {
        node_name: "fuzz@target".into(),
        keys,
        heartbeat_interval: Duration::from_millis(100),
        lost_after: Duration::from_millis(300),
        forget_after: Duration::from_millis(1000),
        max_peers: 64,
        new_peer_rate: 5,
        new_peer_burst: 10,
        compat_libcluster: compat,
        max_names: None,
        name_exists: Default::default(),
        max_clock_skew: None,
        seeds: Vec::new(),
        cluster: cluster.into(),
        tags: vec![("role".into(), "fuzz".into())],
        dist_port: 45_000,
        own_addresses: Vec::new(),
        // Its own answer socket's port (sent with a secret): the fuzzed datagrams may
        // name one too, and be answered there.
        answer_port: 50_000,
    };
    Engine::new(config, now, 1, 1).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let from: SocketAddr = "198.51.100.1:45892".parse().unwrap();
    let sealing = Keyring::new(vec![b"fuzz".to_vec()]).encrypting();
    for keys in [Keyring::none(), Keyring::new(vec![b"fuzz".to_vec()])] {
        if let Ok(hb) = wire::decode(data, &keys) {
            let _ = (hb.cluster(), hb.tags().count(), wire::tag_records(hb.options));
            if data[7] == 0 && data[5] & !0b1111 == 0 {
                let again = wire::encode(
                    &Outgoing {
                        name: hb.name,
                        incarnation: hb.incarnation,
                        sequence: hb.sequence,
                        timestamp_ms: hb.timestamp_ms,
                        leaving: hb.leaving,
                        joining: hb.joining,
                        newcomer: hb.newcomer,
                        options: hb.options,
                    },
                    &keys,
                )
                .unwrap();
                assert_eq!(again, data);
            }
        }
    }
    // The bytes as the inside of a sealed heartbeat (from the flags on).
    if data.len() > 5 && data.len() < 1100 {
        let head = [b'N', b'G', b'S', b'P', 1, wire::FLAG_SEALED];
        let mut inner = data[5..].to_vec();
        let nonce = sealing.seal(&head, &mut inner).unwrap();
        let mut packet = head.to_vec();
        packet.extend_from_slice(&nonce);
        packet.extend_from_slice(&inner);
        let mut scratch = Vec::new();
        if let Ok(hb) = wire::decode_with(&packet, &sealing, &mut scratch) {
            assert_eq!(hb.name.as_bytes(), &data[34..34 + data[6] as usize]);
            let _ = (hb.cluster(), hb.tags().count());
        }
    }
    if let Ok(n) = compat::decode_plain(data) {
        assert!(name::validate(n.as_bytes()).is_ok());
        assert_eq!(compat::decode_plain(&compat::encode_plain(n)), Ok(n));
    }
    let _ = compat::decode_encrypted(data, &[compat::key(b"fuzz")]);
    let signing = Keyring::new(vec![b"fuzz".to_vec()]);
    for (keys, legacy, cluster) in [
        (Keyring::none(), false, ""),
        (signing.clone(), false, ""),
        (Keyring::none(), true, ""),
        (signing.clone(), true, ""),
        (Keyring::none(), false, "blue"),
        (sealing.clone(), false, "blue"),
    ] {
        let mut e = engine(keys, legacy, cluster, now);
        // Twice: the second time exercises the replay path for accepted heartbeats.
        for i in 0..2u64 {
            e.handle_datagram(data, from, Via::Group, now + Duration::from_millis(i));
        }
        let mut events = Vec::new();
        e.handle_timeout(now + Duration::from_secs(2), &mut events);
        let s = e.stats();
        assert_eq!(s.received, 2);
        assert_eq!(s.received, s.accepted + s.looped_back + s.dropped_total());
    }
});
