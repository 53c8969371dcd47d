use super::*;

const MS: Duration = Duration::from_millis(1);

fn table_of(max_peers: usize, authenticated: bool) -> PeerTable {
    let timing = Timing {
        lost_after: 300 * MS,
        forget_after: 1000 * MS,
        heard_gap: 50 * MS,
        change_gap: 100 * MS,
    };
    PeerTable::new(timing, max_peers, authenticated)
}

/// Three peers at most, heartbeats authenticated.
fn table() -> PeerTable {
    table_of(3, true)
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

fn addr() -> SocketAddr {
    "198.51.100.2:45892".parse().unwrap()
}

fn kind(r: Result<Option<PeerEvent>, DropReason>) -> Result<Option<EventKind>, DropReason> {
    r.map(|e| e.map(|e| e.kind))
}

#[test]
fn discovery_then_quiet_until_heard_gap_while_unconnected() {
    let mut t = table();
    let t0 = Instant::now();
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 1), addr(), t0)),
        Ok(Some(EventKind::Discovered))
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 2), addr(), t0 + 10 * MS)),
        Ok(None)
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 3), addr(), t0 + 60 * MS)),
        Ok(Some(EventKind::Heard))
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 4), addr(), t0 + 70 * MS)),
        Ok(None)
    );
    // Once connected, heartbeats produce nothing.
    assert!(t.set_connected("a@h", true, t0 + 70 * MS));
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 5), addr(), t0 + 200 * MS)),
        Ok(None)
    );
    // Disconnected: the very next heartbeat is reported.
    t.set_connected("a@h", false, t0 + 201 * MS);
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 6), addr(), t0 + 202 * MS)),
        Ok(Some(EventKind::Heard))
    );
    assert!(!t.set_connected("nobody@h", true, t0));
}

#[test]
fn an_unconnected_peer_is_reported_every_heard_gap_until_the_owner_holds_it() {
    let mut t = table();
    let t0 = Instant::now();
    t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
    let mut seq = 1;
    let mut reports = |t: &mut PeerTable, from_ms: u32, to_ms: u32| {
        let mut at = Vec::new();
        for ms in (from_ms..to_ms).step_by(10) {
            seq += 1;
            let now = t0 + ms * MS;
            if let Ok(Some(e)) = t.observe(&hb("a@h", 1, seq), addr(), now) {
                assert_eq!(e.kind, EventKind::Heard);
                at.push(ms);
            }
        }
        at
    };
    // Heartbeats every 10 ms, never connected: one report per heard_gap (50 ms).
    assert_eq!(reports(&mut t, 10, 260), [50, 100, 150, 200, 250]);
    // The owner backs off: quiet until the hold ends, then every heard_gap again.
    assert!(t.hold("a@h", t0 + 1000 * MS));
    assert!(!t.hold("nobody@h", t0));
    assert_eq!(reports(&mut t, 260, 1110), [1000, 1050, 1100]);
    // A disconnection lifts the hold: reported at once.
    t.hold("a@h", t0 + 60_000 * MS);
    t.set_connected("a@h", true, t0 + 1110 * MS);
    t.set_connected("a@h", false, t0 + 1110 * MS);
    assert_eq!(reports(&mut t, 1110, 1120), [1110]);
    // So does a new incarnation (reported as discovered).
    t.hold("a@h", t0 + 60_000 * MS);
    let e = t.observe(&hb("a@h", 2, 1), addr(), t0 + 1200 * MS);
    assert_eq!(kind(e), Ok(Some(EventKind::Discovered)));
    assert_eq!(
        kind(t.observe(&hb("a@h", 2, 2), addr(), t0 + 1250 * MS)),
        Ok(Some(EventKind::Heard))
    );
}

#[test]
fn replays_and_old_incarnations_are_dropped() {
    let mut t = table();
    let t0 = Instant::now();
    t.observe(&hb("a@h", 5, 10), addr(), t0).unwrap();
    assert_eq!(
        kind(t.observe(&hb("a@h", 5, 10), addr(), t0)),
        Err(DropReason::Replay)
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 5, 9), addr(), t0)),
        Err(DropReason::Replay)
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 4, 99), addr(), t0)),
        Err(DropReason::Replay)
    );
    // A restarted node: new incarnation, sequence starts over.
    assert_eq!(
        kind(t.observe(&hb("a@h", 6, 1), addr(), t0)),
        Ok(Some(EventKind::Discovered))
    );
}

#[test]
fn leaving_is_reported_once_and_sticks_for_the_incarnation() {
    let mut t = table();
    let t0 = Instant::now();
    t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
    let mut bye = hb("a@h", 1, 2);
    bye.leaving = true;
    assert_eq!(kind(t.observe(&bye, addr(), t0)), Ok(Some(EventKind::Left)));
    bye.sequence = 3;
    assert_eq!(kind(t.observe(&bye, addr(), t0)), Ok(None));
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 4), addr(), t0 + 100 * MS)),
        Ok(None)
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 2, 1), addr(), t0 + 100 * MS)),
        Ok(Some(EventKind::Discovered))
    );
    // A goodbye from a stranger is not remembered.
    let mut stranger = hb("b@h", 1, 1);
    stranger.leaving = true;
    assert_eq!(kind(t.observe(&stranger, addr(), t0)), Ok(None));
    assert_eq!(t.len(), 1);
}

#[test]
fn silent_peers_are_lost_then_forgotten_and_rediscovered() {
    let mut t = table();
    let t0 = Instant::now();
    let mut out = Vec::new();
    t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
    t.observe(&hb("b@h", 1, 1), addr(), t0 + 200 * MS).unwrap();
    t.sweep(t0 + 299 * MS, &mut out);
    assert!(out.is_empty());
    assert_eq!(t.next_sweep(), Some(t0 + 300 * MS));
    t.sweep(t0 + 300 * MS, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].kind, out[0].name.as_str()),
        (EventKind::Lost, "a@h")
    );
    assert_eq!(t.next_sweep(), Some(t0 + 500 * MS));
    out.clear();
    // b comes back in time; a is heard again after being lost.
    t.observe(&hb("b@h", 1, 2), addr(), t0 + 450 * MS).unwrap();
    assert_eq!(
        kind(t.observe(&hb("a@h", 1, 2), addr(), t0 + 460 * MS)),
        Ok(Some(EventKind::Discovered))
    );
    t.sweep(t0 + 2000 * MS, &mut out);
    // Both silent past forget_after: forgotten directly (a lost peer is not
    // reported lost again first).
    let mut kinds: Vec<_> = out.iter().map(|e| (e.kind, e.name.as_str())).collect();
    kinds.sort_by_key(|k| k.1);
    assert_eq!(
        kinds,
        [(EventKind::Forgotten, "a@h"), (EventKind::Forgotten, "b@h")]
    );
    assert!(t.is_empty());
    assert_eq!(t.next_sweep(), None);
}

fn at(last: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, last], 45892))
}

fn drain(t: &mut PeerTable, now: Instant) -> Vec<(EventKind, String)> {
    let mut out = Vec::new();
    t.sweep(now, &mut out);
    out.into_iter().map(|e| (e.kind, e.name)).collect()
}

#[test]
fn a_full_table_evicts_the_oldest_never_connected_peer_and_keeps_connected_ones() {
    let mut t = table();
    let t0 = Instant::now();
    for n in ["a@h", "b@h", "c@h"] {
        t.observe(&hb(n, 1, 1), addr(), t0).unwrap();
    }
    t.set_connected("a@h", true, t0);
    // Full: the newcomer gets in, in place of b (admitted before c, never connected).
    assert_eq!(
        kind(t.observe(&hb("d@h", 1, 1), addr(), t0 + MS)),
        Ok(Some(EventKind::Discovered))
    );
    assert_eq!(t.len(), 3);
    assert_eq!(
        drain(&mut t, t0 + MS),
        [(EventKind::Forgotten, "b@h".to_owned())]
    );
    assert!(!t.contains("b@h") && t.contains("a@h"));
    // A peer that connected once is not evicted even when disconnected again.
    t.set_connected("c@h", true, t0);
    t.set_connected("c@h", false, t0);
    t.set_connected("d@h", true, t0);
    assert_eq!(
        t.observe(&hb("e@h", 1, 1), addr(), t0),
        Err(DropReason::PeerTableFull)
    );
    // Known peers still get through.
    assert!(t.observe(&hb("a@h", 1, 2), addr(), t0).is_ok());
}

#[test]
fn a_flood_of_incarnations_of_one_name_costs_a_bounded_number_of_events() {
    let mut t = table_of(10, false);
    let t0 = Instant::now();
    t.observe(&hb("a@h", 1, 1), at(2), t0).unwrap();
    // 10,000 packets over 1 s, each a new incarnation, every tenth a goodbye.
    let mut events = 0;
    for i in 0..10_000u64 {
        let now = t0 + Duration::from_micros(100 * i);
        let mut p = hb("a@h", 2 + i, 1);
        p.leaving = i % 10 == 0;
        events += t.observe(&p, at(2), now).unwrap().is_some() as u32;
        events += drain(&mut t, now).len() as u32;
    }
    // CHANGE_BURST at once, then one per change_gap (100 ms): 3 + 10.
    assert!(events <= CHANGE_BURST + 10, "{events} events");
    // When it stops, the latest state is reported within one change_gap.
    let last = t0 + 1000 * MS;
    let reported = drain(&mut t, last + 100 * MS);
    assert_eq!(reported, [(EventKind::Discovered, "a@h".to_owned())]);
    assert!(drain(&mut t, last + 250 * MS).is_empty());
}

#[test]
fn without_a_secret_a_forged_goodbye_from_another_host_lasts_until_the_next_heartbeat() {
    let mut t = table_of(10, false);
    let t0 = Instant::now();
    let genuine = at(2);
    t.observe(&hb("a@h", 5, 10), genuine, t0).unwrap();
    // From another host: the victim's incarnation, the highest sequence, LEAVING.
    let mut forged = hb("a@h", 5, u64::MAX);
    forged.leaving = true;
    assert_eq!(
        kind(t.observe(&forged, at(66), t0 + MS)),
        Err(DropReason::ForeignGoodbye)
    );
    // Even after a forged heartbeat from there moved the peer's address, the
    // genuine peer's next heartbeat brings it back.
    assert_eq!(
        kind(t.observe(&hb("a@h", 5, u64::MAX), at(66), t0 + MS)),
        Ok(None)
    );
    forged.sequence = 1;
    assert_eq!(
        kind(t.observe(&forged, at(66), t0 + MS)),
        Err(DropReason::Replay)
    );
    let mut bye = hb("a@h", 6, 1);
    bye.leaving = true;
    assert_eq!(
        kind(t.observe(&bye, at(66), t0 + MS)),
        Ok(Some(EventKind::Left))
    );
    assert_eq!(
        kind(t.observe(&hb("a@h", 5, 11), genuine, t0 + 2 * MS)),
        Ok(Some(EventKind::Discovered))
    );
    // So it does after a forged incarnation from the future.
    let future = hb("a@h", u64::MAX, u64::MAX);
    assert_eq!(
        kind(t.observe(&future, at(66), t0 + 3 * MS)),
        Ok(Some(EventKind::Discovered))
    );
    let back = t.observe(&hb("a@h", 5, 12), genuine, t0 + 4 * MS);
    assert_eq!(kind(back), Ok(None), "budget spent: reported later");
    // The first change spent a token at 1 ms; the next comes one change_gap later.
    assert!(drain(&mut t, t0 + 100 * MS).is_empty());
    assert_eq!(
        drain(&mut t, t0 + 101 * MS),
        [(EventKind::Discovered, "a@h".to_owned())]
    );
    // From its own address, order still holds: an old packet is a replay.
    assert_eq!(
        t.observe(&hb("a@h", 5, 11), genuine, t0 + 150 * MS),
        Err(DropReason::Replay)
    );
}

#[test]
fn with_a_secret_every_restart_is_reported_at_once() {
    let mut t = table();
    let t0 = Instant::now();
    t.observe(&hb("a@h", 1, 1), at(2), t0).unwrap();
    for i in 2..20u64 {
        let now = t0 + i as u32 * MS;
        let mut bye = hb("a@h", i - 1, 2);
        bye.leaving = true;
        assert_eq!(kind(t.observe(&bye, at(2), now)), Ok(Some(EventKind::Left)));
        assert_eq!(
            kind(t.observe(&hb("a@h", i, 1), at(2), now)),
            Ok(Some(EventKind::Discovered))
        );
    }
}

#[test]
fn with_a_secret_order_holds_whatever_the_address() {
    let mut t = table();
    let t0 = Instant::now();
    t.observe(&hb("a@h", 5, 10), at(2), t0).unwrap();
    assert_eq!(
        t.observe(&hb("a@h", 5, 9), at(66), t0),
        Err(DropReason::Replay)
    );
}

#[test]
fn members_snapshot() {
    let mut t = table();
    let t0 = Instant::now();
    t.observe(&hb("b@h", 7, 1), addr(), t0).unwrap();
    t.observe(&hb("a@h", 1, 1), addr(), t0).unwrap();
    t.set_connected("a@h", true, t0);
    let rows = t.members(t0 + 100 * MS, 10_000);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "a@h");
    assert!(rows[0].connected);
    assert_eq!(rows[0].last_seen_ms, 9_900);
    assert_eq!(rows[1].incarnation, 7);
    assert_eq!(rows[1].state, PeerState::Alive);
}
