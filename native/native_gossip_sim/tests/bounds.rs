//! The simulator's short run (`make test`): the bounds a protocol change must keep,
//! at up to 128 nodes. A change that brings back O(N) datagrams per member per join,
//! or slows convergence, fails here.

use native_gossip_sim::scenario::{self, Report};
use native_gossip_sim::{LinkModel, Settings};

const INTERVAL_MS: f64 = 1500.0;

fn legacy() -> Settings {
    Settings {
        unicast_answers: false,
        ..Settings::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let s = Settings::default();
    let a = format!("{:?}", scenario::join(32, 7, &s));
    let b = format!("{:?}", scenario::join(32, 7, &s));
    assert_eq!(a, b);
    let c = format!("{:?}", scenario::join(32, 8, &s));
    assert_ne!(a, c, "another seed, another run");
}

#[test]
fn a_join_costs_each_member_a_bounded_number_of_datagrams_whatever_the_size() {
    for n in [8, 32, 128] {
        let r = scenario::join(n, 1, &Settings::default());
        let (mean, max) = r.join_receipts.unwrap();
        assert!(
            max <= 10.0,
            "N={n}: {mean} mean, {max} max receipts per member"
        );
        // The newcomer hears every member, and every member the newcomer, within
        // one interval; the modelled mesh is full by then too.
        assert!(r.know_all_ms.unwrap() <= INTERVAL_MS, "{r:?}");
        assert!(r.mesh_ms.unwrap() <= INTERVAL_MS, "{r:?}");
    }
}

#[test]
fn the_instrument_sees_the_cost_of_multicast_answers() {
    // Nodes that predate OPT_ANSWER: every member's answers reach every member.
    let r = scenario::join(128, 1, &legacy());
    let (mean, _) = r.join_receipts.unwrap();
    assert!(mean > 128.0, "{mean} receipts per member per join");
}

#[test]
fn older_and_newer_nodes_together_still_converge_within_an_interval() {
    // Every fourth node (index 0, 4, 8, ...) has no answer socket, as a node that
    // predates OPT_ANSWER: it is answered by multicast. The newcomer is the last node:
    // a newer one with 8 or 32 nodes (index 7, 31), an older one with 9 or 33.
    let mixed = Settings {
        legacy_every: Some(4),
        ..Settings::default()
    };
    for n in [8, 9, 32, 33] {
        let r = scenario::join(n, 2, &mixed);
        assert!(r.know_all_ms.unwrap() <= INTERVAL_MS, "N={n}: {r:?}");
        assert!(r.mesh_ms.unwrap() <= INTERVAL_MS, "N={n}: {r:?}");
    }
}

#[test]
fn everyone_restarting_at_once_converges_within_three_intervals() {
    let r = scenario::start_all(128, 1, &Settings::default());
    assert!(r.know_all_ms.unwrap() <= 3.0 * INTERVAL_MS, "{r:?}");
    assert!(r.mesh_ms.unwrap() <= 3.0 * INTERVAL_MS, "{r:?}");
}

#[test]
fn nodes_started_together_mesh_without_waiting_for_a_burst_heartbeat() {
    // All within 5 ms: a node started a little earlier than a peer that leads their
    // pair (the pair's coin) was not heard by it; that peer hears the earlier
    // node by its answer, at once, not by its next burst heartbeat 20 ms on.
    for n in [4, 8, 32] {
        let times: Vec<f64> = (1..=10)
            .map(|seed| {
                let r = scenario::together(n, seed, &Settings::default(), 5_000);
                r.mesh_ms.unwrap()
            })
            .collect();
        assert!(p90(times.clone()) <= 15.0, "N={n}: mesh after {times:?} ms");
    }
}

fn p90(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[(xs.len() * 9).div_ceil(10) - 1]
}

#[test]
fn with_30_percent_loss_a_join_still_completes_quickly() {
    let link = LinkModel {
        loss: 0.30,
        ..LinkModel::default()
    };
    let p90_of = |n: usize| {
        let times: Vec<f64> = (1..=100)
            .map(|seed| {
                let r: Report = scenario::join_with(n, seed, &Settings::default(), link.clone());
                r.mesh_ms.unwrap_or(f64::INFINITY)
            })
            .collect();
        let p90 = p90(times);
        eprintln!("30 % loss, N={n}, 100 seeds: join p90 {p90} ms");
        p90
    };
    // Issue #28's measure (bench/network.exs): a node joining three, 30 % of the
    // datagrams lost at every receiver: p90 under 200 ms.
    let small = p90_of(4);
    assert!(small < 200.0, "p90 {small} ms");
    // Into 15 members: each must hear one of the newcomer's packets to connect (or be
    // heard by it). The burst's first five packets go by 160 ms (docs/PROTOCOL.md,
    // "Timing"), and the chance that one of the 15 hears none of them is
    // 1 - (1 - 0.3^5)^15, 3.6 %: under 200 ms too. (With the burst at 0, 20, 60, 140
    // and 300 ms, as until 2026-12-05, it was 11 % by 140 ms, and the p90 305 ms.)
    let large = p90_of(16);
    assert!(large < 200.0, "p90 {large} ms");
}

#[test]
fn after_a_partition_heals_the_mesh_is_whole_again() {
    let r = scenario::partition(32, 1, &Settings::default());
    assert!(r.know_all_ms.unwrap() <= 2.0 * INTERVAL_MS, "{r:?}");
    assert!(r.mesh_ms.is_some(), "{r:?}");
}

#[test]
fn at_10_percent_loss_no_connected_peer_is_published_lost() {
    // 60 s of a cluster of 32 at 10 % loss: the engines report silences (a pair whose
    // heartbeats were lost two or three times in a row), and not one becomes `:lost`
    // for the owner, as every silent peer is connected and answers its probe.
    let r = scenario::lossy(32, 1, &Settings::default(), 0.10);
    assert!(r.false_silences > 50, "{r:?}");
    assert_eq!(r.false_lost, 0, "{r:?}");
}

#[test]
fn nodes_started_together_under_loss_find_each_other_with_their_bursts() {
    // The burst stops once every peer has heard it (docs/PROTOCOL.md, "Timing"), but
    // a pair whose first packets to each other were lost must still meet within the
    // burst, not at their regular heartbeats (750 ms and later): the peers that know
    // both pass their count on, and the pair's bursts go on. 100 starts each within
    // 5 ms; every one meshes within 500 ms. (With the first version of the rule, whose
    // count went only in the first answers, 4 nodes at 10 % loss did not mesh within
    // 2 s in 2 starts of 200: the answers went before the later nodes were heard.)
    for loss in [0.1, 0.3] {
        let link = LinkModel {
            loss,
            ..LinkModel::default()
        };
        for n in [4, 8, 16, 32] {
            let times: Vec<f64> = (1..=100)
                .map(|seed| {
                    let settings = Settings::default();
                    let r = scenario::together_with(n, seed, &settings, 5_000, link.clone());
                    r.mesh_ms.unwrap_or(f64::INFINITY)
                })
                .collect();
            let worst = times.iter().cloned().fold(0.0, f64::max);
            assert!(worst < 500.0, "loss {loss}, N={n}: {times:?}");
        }
    }
}
