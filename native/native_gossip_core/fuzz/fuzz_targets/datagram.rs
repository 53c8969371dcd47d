//! Feeds arbitrary datagrams to the decoder and to whole engines (with and without a
//! secret, so both the MAC path and the unauthenticated path with its rate limit are
//! exercised). Nothing may panic, and every datagram must be accepted or counted under
//! exactly one drop reason. A datagram the decoder accepts must encode back to itself
//! when it carries no options. Engines that also read libcluster's format (plaintext
//! and encrypted) get the same datagrams, and its strict term decoder must either find
//! a valid name or refuse.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use native_gossip_core::compat;
use native_gossip_core::name;
use native_gossip_core::wire::{self, Outgoing};
use native_gossip_core::{Config, Engine, Keyring, Via};

fn engine(secret: Option<&[u8]>, compat: bool, now: Instant) -> Engine {
    let config = Config {
        node_name: "fuzz@target".into(),
        keys: secret.map_or(Keyring::none(), |s| Keyring::new(vec![s.to_vec()])),
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
    };
    Engine::new(config, now, 1, 1).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let from: SocketAddr = "198.51.100.1:45892".parse().unwrap();
    for keys in [Keyring::none(), Keyring::new(vec![b"fuzz".to_vec()])] {
        if let Ok(hb) = wire::decode(data, &keys) {
            let options_len = u16::from_be_bytes([data[32], data[33]]);
            if options_len == 0 && data[7] == 0 && data[5] & !0b1111 == 0 {
                let again = wire::encode(
                    &Outgoing {
                        name: hb.name,
                        incarnation: hb.incarnation,
                        sequence: hb.sequence,
                        timestamp_ms: hb.timestamp_ms,
                        leaving: hb.leaving,
                        joining: hb.joining,
                        newcomer: hb.newcomer,
                    },
                    &keys,
                )
                .unwrap();
                assert_eq!(again, data);
            }
        }
    }
    if let Ok(n) = compat::decode_plain(data) {
        assert!(name::validate(n.as_bytes()).is_ok());
        assert_eq!(compat::decode_plain(&compat::encode_plain(n)), Ok(n));
    }
    let _ = compat::decode_encrypted(data, &[compat::key(b"fuzz")]);
    for (secret, legacy) in [
        (None, false),
        (Some(&b"fuzz"[..]), false),
        (None, true),
        (Some(&b"fuzz"[..]), true),
    ] {
        let mut e = engine(secret, legacy, now);
        // Twice: the second time exercises the replay path for accepted heartbeats.
        for i in 0..2u64 {
            e.handle_datagram(data, from, Via::Group, now + Duration::from_millis(i));
        }
        let mut events = Vec::new();
        e.handle_timeout(now + Duration::from_secs(2), &mut events);
        let s = e.stats();
        assert_eq!(s.received, 2);
        assert_eq!(s.received, s.accepted + s.dropped_total());
    }
});
