//! Property tests (proptest): the wire format round-trips whatever a node can send, the
//! decoder gives exactly one verdict for any bytes and never panics, the replay check
//! accepts exactly the heartbeats newer than all before, and the peer table never holds
//! more than `max_peers` whatever names arrive.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use native_gossip_core::peers::{PeerTable, Timing};
use native_gossip_core::wire::{self, Heartbeat, Outgoing};
use native_gossip_core::{DropReason, Keyring};
use proptest::prelude::*;

fn keyrings() -> Vec<Keyring> {
    vec![
        Keyring::none(),
        Keyring::new(vec![b"a secret of the property tests".to_vec()]),
        Keyring::new(vec![b"a secret of the property tests".to_vec()]).encrypting(),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_.-]{0,30}@[a-z0-9][a-z0-9.-]{0,40}"
}

fn tags() -> impl Strategy<Value = Vec<(String, String)>> {
    // At most 6 × (3 + 12 + 40) bytes: always within the 512 a node may send.
    proptest::collection::btree_map("[a-z]{1,12}", "\\PC{0,10}", 0..6)
        .prop_map(|m| m.into_iter().collect())
}

fn from() -> SocketAddr {
    "198.51.100.7:45892".parse().unwrap()
}

fn hb(name: &str, incarnation: u64, sequence: u64) -> Heartbeat<'_> {
    Heartbeat {
        name,
        incarnation,
        sequence,
        timestamp_ms: 0,
        leaving: false,
        joining: false,
        newcomer: false,
        options: &[],
    }
}

proptest! {
    #[test]
    fn what_a_node_can_send_decodes_to_what_it_sent(
        name in name(),
        incarnation: u64,
        sequence: u64,
        timestamp_ms: u64,
        flags in 0u8..8,
        cluster in "[a-z0-9-]{0,20}",
        tags in tags(),
        dist_port: u16,
        keys in 0usize..3,
    ) {
        let keys = &keyrings()[keys];
        let mut options = wire::options_block(&cluster, &tags).unwrap();
        options.extend(wire::dist_port_record(dist_port));
        let msg = Outgoing {
            name: &name,
            incarnation,
            sequence,
            timestamp_ms,
            leaving: flags & 1 != 0,
            joining: flags & 2 != 0,
            newcomer: flags & 4 != 0,
            options: &options,
        };
        let bytes = wire::encode(&msg, keys).unwrap();
        prop_assert!(bytes.len() <= wire::MAX_PACKET);
        let mut scratch = Vec::new();
        let got = wire::decode_with(&bytes, keys, &mut scratch).unwrap();
        prop_assert_eq!(got, msg);
        prop_assert_eq!(got.cluster(), cluster.as_bytes());
        let got_tags: Vec<(String, String)> =
            got.tags().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        prop_assert_eq!(got_tags, tags);
        prop_assert_eq!(got.dist_port(), dist_port);
    }

    #[test]
    fn any_bytes_get_one_verdict_and_never_a_panic(
        data in proptest::collection::vec(any::<u8>(), 0..1400),
        prefix in 0usize..3,
    ) {
        // Half of them start like a heartbeat, so that the checks past the magic run.
        let head: &[u8] = match prefix {
            1 => b"NGSP\x01",
            2 => &[b'N', b'G', b'S', b'P', 1, wire::FLAG_SEALED],
            _ => &[],
        };
        let data = [head, &data].concat();
        for keys in keyrings() {
            let mut scratch = Vec::new();
            match wire::decode_with(&data, &keys, &mut scratch) {
                Ok(hb) => {
                    let _ = (hb.cluster(), hb.tags().count(), hb.dist_port());
                }
                Err(reason) => prop_assert!(DropReason::ALL.contains(&reason)),
            }
        }
    }

    #[test]
    fn the_replay_check_accepts_exactly_what_is_newer_than_all_before(
        stream in proptest::collection::vec((0u64..4, 0u64..20), 1..60),
    ) {
        let timing = Timing {
            lost_after: Duration::from_secs(3600),
            forget_after: Duration::from_secs(7200),
            heard_gap: Duration::from_secs(1),
            change_gap: Duration::from_secs(1),
        };
        let mut table = PeerTable::new(timing, 10, true);
        let now = Instant::now();
        let mut newest: Option<(u64, u64)> = None;
        for (incarnation, sequence) in stream {
            let verdict = table.observe(&hb("p@h", incarnation, sequence), from(), now);
            let fresh = newest.is_none_or(|n| (incarnation, sequence) > n);
            if fresh {
                prop_assert!(verdict.is_ok(), "{:?} refused after {:?}", (incarnation, sequence), newest);
                newest = Some((incarnation, sequence));
            } else {
                prop_assert_eq!(verdict, Err(DropReason::Replay));
            }
        }
    }

    #[test]
    fn the_peer_table_never_holds_more_than_max_peers(
        max_peers in 1usize..20,
        names in proptest::collection::vec("[a-z]{1,6}@h[0-9]", 1..200),
        connect_every in 1usize..5,
        authenticated: bool,
    ) {
        let timing = Timing {
            lost_after: Duration::from_secs(3600),
            forget_after: Duration::from_secs(7200),
            heard_gap: Duration::from_secs(1),
            change_gap: Duration::from_secs(1),
        };
        let mut table = PeerTable::new(timing, max_peers, authenticated);
        let now = Instant::now();
        for (i, name) in names.iter().enumerate() {
            let _ = table.observe(&hb(name, 1, i as u64 + 1), from(), now);
            if i % connect_every == 0 {
                table.set_connected(name, true, now);
            }
            prop_assert!(table.len() <= max_peers);
        }
    }
}
