//! The engine's tests: each behaviour as a deterministic run of engines and time.

use super::*;
use crate::compat;
use crate::peers::{EventKind, ANSWER_SPACING};
use crate::wire::{self, OptionsError};
use crate::wire::{decode, FLAG_JOINING, FLAG_LEAVING, FLAG_NEWCOMER};
use std::net::IpAddr;

const MS: Duration = Duration::from_millis(1);

fn config(name: &str, secret: Option<&[u8]>) -> Config {
    Config {
        node_name: name.to_owned(),
        keys: secret.map_or(Keyring::none(), |s| Keyring::new(vec![s.to_vec()])),
        heartbeat_interval: 1000 * MS,
        lost_after: 3000 * MS,
        forget_after: 10_000 * MS,
        max_peers: 100,
        own_addresses: vec![from().ip()],
        ..Config::default()
    }
}

fn from() -> SocketAddr {
    "198.51.100.9:45892".parse().unwrap()
}

/// Runs an engine alone from `t0` to `t0 + span`, returning (offset ms, flags) sent.
fn schedule(engine: &mut Engine, t0: Instant, span: Duration) -> Vec<(u128, u8)> {
    let mut sent = Vec::new();
    let mut now = t0;
    while now <= t0 + span {
        while let Some(p) = engine.poll_transmit(now, 0) {
            sent.push((now.duration_since(t0).as_millis(), p.bytes[5]));
        }
        now = engine.next_deadline().max(now + MS);
    }
    sent
}

#[test]
fn a_late_wake_up_skips_the_burst_heartbeats_it_passed_instead_of_sending_them_at_once() {
    let t0 = Instant::now();
    let mut e = Engine::new(config("a@h", None), t0, 1, 7).unwrap();
    assert_eq!(drain(&mut e, t0).len(), 1);
    // Woken 100 ms late, at 120 ms: one heartbeat (for 20, 40 and 80 ms), then the
    // burst goes on as planned, at 160 ms.
    assert_eq!(drain(&mut e, t0 + 120 * MS).len(), 1);
    assert_eq!(drain(&mut e, t0 + 121 * MS).len(), 0);
    assert_eq!(e.next_deadline(), t0 + 160 * MS);
    // Restarted, the burst starts over from the new start.
    e.restart_burst(t0 + 200 * MS);
    assert_eq!(drain(&mut e, t0 + 200 * MS).len(), 1);
    assert_eq!(e.next_deadline(), t0 + 220 * MS);
}

#[test]
fn first_heartbeat_at_once_then_burst_then_jittered_interval() {
    let t0 = Instant::now();
    let mut e = Engine::new(config("a@h", None), t0, 1, 7).unwrap();
    let sent = schedule(&mut e, t0, 10_000 * MS);
    let times: Vec<u128> = sent.iter().map(|s| s.0).collect();
    // Seven joining heartbeats within the first (1 s) interval, five of them by 160 ms:
    // a newcomer under 30 % loss is heard by a given peer by then with probability
    // 1 - 0.3^5 > 99.7 %. Then the jittered interval, from the last one (640 ms: the
    // burst's 1280 ms is past the interval).
    assert_eq!(&times[..7], &[0, 20, 40, 80, 160, 320, 640]);
    assert!(sent[..7].iter().all(|s| s.1 & FLAG_JOINING != 0));
    assert!(sent[7..].iter().all(|s| s.1 & FLAG_JOINING == 0));
    assert!((1390..=1890).contains(&times[7]), "{times:?}");
    for w in times[7..].windows(2) {
        let gap = w[1] - w[0];
        assert!((750..=1250).contains(&gap), "gap {gap}");
    }
    assert!(e.next_deadline() > t0 + 10_000 * MS);
}

#[test]
fn with_the_default_interval_the_burst_has_eight_heartbeats() {
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.heartbeat_interval = 1500 * MS;
    let mut e = Engine::new(cfg, t0, 1, 7).unwrap();
    let sent = schedule(&mut e, t0, 3000 * MS);
    let times: Vec<u128> = sent.iter().map(|s| s.0).collect();
    assert_eq!(&times[..8], &[0, 20, 40, 80, 160, 320, 640, 1280]);
    assert!(sent[..8].iter().all(|s| s.1 & FLAG_JOINING != 0));
    assert!(sent[8..].iter().all(|s| s.1 & FLAG_JOINING == 0));
}

#[test]
fn two_engines_find_each_other_and_a_joiner_gets_an_answer() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", Some(b"k")), t0, 1, 1).unwrap();
    let late = t0 + 5000 * MS;
    let mut b = Engine::new(config("b@h", Some(b"k")), late, 2, 2).unwrap();
    // a runs alone for a while.
    schedule(&mut a, t0, 4900 * MS);
    // b's first heartbeat reaches a.
    let hello = b.poll_transmit(late, 0).unwrap().bytes;
    let ev = a.handle_datagram(&hello, from(), Via::Group, late).unwrap();
    assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Discovered, "b@h"));
    // a answers within REPLY_WINDOW although its regular heartbeat is far away.
    let answer_at = a.next_deadline();
    assert!(answer_at <= late + REPLY_WINDOW);
    let answer = a.poll_transmit(answer_at, 0).unwrap().bytes;
    assert_eq!(answer[5] & FLAG_JOINING, 0);
    let ev = b
        .handle_datagram(&answer, from(), Via::Group, answer_at)
        .unwrap();
    assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Discovered, "a@h"));
    // b's own joining burst does not make a answer more than once per joining packet.
    assert!(a.poll_transmit(answer_at, 0).is_none());
    assert_eq!(a.stats().accepted, 1);
    assert_eq!(b.stats().accepted, 1);
}

#[test]
fn a_newcomer_with_an_answer_port_is_answered_there_by_unicast_alone() {
    let t0 = Instant::now();
    let key = Some(&b"k"[..]);
    let mut a = Engine::new(config("a@h", key), t0, 1, 1).unwrap();
    schedule(&mut a, t0, 4900 * MS);
    let late = t0 + 5000 * MS;
    let mut b = Engine::new(
        Config {
            answer_port: 50_001,
            ..config("b@h", key)
        },
        late,
        2,
        2,
    )
    .unwrap();
    let hello = b.poll_transmit(late, 0).unwrap().bytes;
    a.handle_datagram(&hello, from(), Via::Group, late).unwrap();
    let answer_at = a.next_deadline();
    assert!(answer_at <= late + REPLY_WINDOW);
    let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit(answer_at, 0)).collect();
    let to_newcomer = Destination::Unicast(SocketAddr::new(from().ip(), 50_001));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].to, to_newcomer,
        "to the newcomer alone, not the group"
    );
    assert_eq!(sent[0].bytes[5] & FLAG_JOINING, 0);
    assert_eq!(a.stats().answers, 1);
    // The newcomer takes it as a heartbeat of a (its answer socket is the group's).
    let ev = b
        .handle_datagram(&sent[0].bytes, from(), Via::Group, answer_at)
        .unwrap();
    assert_eq!((ev.kind, ev.name.as_str()), (EventKind::Discovered, "a@h"));

    // Without a secret the port cannot be trusted (anyone could name another's):
    // the answer is multicast, as to a node that predates OPT_ANSWER.
    let mut c = Engine::new(config("c@h", None), t0, 3, 3).unwrap();
    schedule(&mut c, t0, 4900 * MS);
    let mut forged = wire::address_records(&[from().ip()]);
    forged.extend(wire::answer_port_record(50_002));
    let joining = wire::encode(
        &wire::Outgoing {
            name: "d@h",
            incarnation: 4,
            sequence: 1,
            timestamp_ms: 0,
            leaving: false,
            joining: true,
            newcomer: true,
            options: &forged,
        },
        &Keyring::none(),
    )
    .unwrap();
    c.handle_datagram(&joining, from(), Via::Group, late)
        .unwrap();
    let at = c.next_deadline();
    let sent: Vec<Transmit> = std::iter::from_fn(|| c.poll_transmit(at, 0)).collect();
    assert!(sent.iter().all(|t| t.to == Destination::Group), "{sent:?}");
}

#[test]
fn a_newcomers_burst_gets_at_most_three_answers() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    schedule(&mut a, t0, 4900 * MS);
    let late = t0 + 5000 * MS;
    let mut b = Engine::new(config("b@h", None), late, 2, 2).unwrap();
    let mut answers = Vec::new();
    let mut now = late;
    while now < late + 1500 * MS {
        while let Some(p) = b.poll_transmit(now, 0) {
            a.handle_datagram(&p.bytes, from(), Via::Group, now);
        }
        while let Some(p) = a.poll_transmit(now, 0) {
            if now < late + 1500 * MS && p.bytes[5] & FLAG_JOINING == 0 {
                answers.push(now - late);
            }
        }
        now = b.next_deadline().min(a.next_deadline()).max(now + MS);
    }
    // Seven joining packets in the burst, three answers (and a's own regular
    // heartbeat, at most one, in this window).
    assert!((3..=4).contains(&answers.len()), "answers at {answers:?}");
    // The first within the reply window; the others spread out: a second answer
    // while the newcomer's connections are being made would only cost every
    // member a datagram.
    assert!(answers[0] <= REPLY_WINDOW, "answers at {answers:?}");
    assert!(
        answers[1] - answers[0] >= ANSWER_SPACING,
        "answers at {answers:?}"
    );
}

#[test]
fn an_answer_due_after_the_own_next_heartbeat_is_that_heartbeat() {
    let t0 = Instant::now();
    let key = Some(&b"k"[..]);
    // a is in its own burst (next heartbeat 20 ms after its first): a newcomer heard
    // then is answered by that heartbeat, not by one more datagram.
    let mut a = Engine::new(config("a@h", key), t0, 1, 1).unwrap();
    a.poll_transmit(t0, 0).unwrap();
    let next = a.next_deadline();
    assert_eq!(next, t0 + JOIN_BURST[0]);
    let mut b = Engine::new(config("b@h", key), t0 + MS, 2, 2).unwrap();
    let hello = b.poll_transmit(t0 + MS, 0).unwrap().bytes;
    // 60 known peers make the reply window 240 ms wide: the answer would mostly
    // fall after `next`.
    for i in 0..60 {
        let mut c = Engine::new(config(&format!("p{i}@h"), key), t0, 10 + i, 10 + i).unwrap();
        let hb = c.poll_transmit(t0, 0).unwrap().bytes;
        a.handle_datagram(&hb, from(), Via::Group, t0).unwrap();
    }
    a.handle_datagram(&hello, from(), Via::Group, t0 + MS)
        .unwrap();
    assert!(
        a.next_deadline() >= next,
        "no separate answer before the burst heartbeat"
    );
    let mut sent = 0;
    let mut now = t0 + MS;
    while now <= next {
        while a.poll_transmit(now, 0).is_some() {
            sent += 1;
        }
        now += MS;
    }
    assert_eq!(sent, 1, "the burst heartbeat at {next:?} is the answer");
    // And nothing more is owed to b until its next joining packet.
    let until = next + 250 * MS;
    while now <= until {
        while let Some(p) = a.poll_transmit(now, 0) {
            assert_ne!(
                p.bytes[5] & FLAG_JOINING,
                0,
                "only burst heartbeats, no answer"
            );
        }
        now += MS;
    }
}

#[test]
fn a_newcomer_that_leads_the_pair_and_cannot_have_heard_this_node_is_answered_at_once() {
    let t0 = Instant::now();
    let key = Some(&b"k"[..]);
    let with_port = |name: &str| Config {
        answer_port: 50_001,
        ..config(name, key)
    };
    // a started 1 ms before two others: they did not hear its first heartbeat, and its
    // next one is 20 ms away.
    let mut a = Engine::new(with_port("a@h"), t0, 1, 1).unwrap();
    a.poll_transmit(t0, 0).unwrap();
    let now = t0 + MS;
    let to_newcomer = Destination::Unicast(SocketAddr::new(from().ip(), 50_001));
    // "0@h" leads the pair (first_leads): it connects first, and must hear a for that.
    // Answered now.
    assert!(first_leads("0@h", "a@h"));
    let mut zero = Engine::new(with_port("0@h"), now, 2, 2).unwrap();
    let hello = zero.poll_transmit(now, 0).unwrap().bytes;
    assert!(
        !a.handle_datagram(&hello, from(), Via::Group, now)
            .unwrap()
            .lead
    );
    let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit(now, 0)).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, to_newcomer);
    let ev = zero
        .handle_datagram(&sent[0].bytes, from(), Via::Group, now)
        .unwrap();
    assert_eq!(
        (ev.kind, ev.name.as_str(), ev.lead),
        (EventKind::Discovered, "a@h", true)
    );
    // a leads the pair with "e@h" (first_leads): a connects first itself; e hears a
    // with its next heartbeat.
    assert!(first_leads("a@h", "e@h"));
    let mut b = Engine::new(with_port("e@h"), now, 3, 3).unwrap();
    let hello = b.poll_transmit(now, 0).unwrap().bytes;
    assert!(
        a.handle_datagram(&hello, from(), Via::Group, now)
            .unwrap()
            .lead
    );
    // Not at once: its answer, which tells it that a heard it (`OPT_HEARD`), goes
    // within the first answers' window (a quarter millisecond a known peer).
    assert!(a.poll_transmit(now, 0).is_none());
    let ack_at = a.next_deadline();
    assert!(
        ack_at > now && ack_at <= now + 2 * FIRST_ANSWER_PER_PEER,
        "{ack_at:?}"
    );
    let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit(ack_at, 0)).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, to_newcomer);
    let keys = Keyring::new(vec![b"k".to_vec()]);
    let ack = decode(&sent[0].bytes, &keys).unwrap();
    assert_eq!(ack.heard(), Some(3), "e's incarnation");
    assert_eq!(ack.peers(), Some(2), "a holds two peers alive");
    assert!(!ack.joining);
    assert_eq!(a.next_deadline(), t0 + JOIN_BURST[0]);
    // "4@h" leads too, but started before a: a hears its second packet, not its first,
    // so a's own first heartbeat reached it. Its answer is not urgent either.
    assert!(first_leads("4@h", "a@h"));
    let mut one = Engine::new(with_port("4@h"), t0 - MS, 4, 4).unwrap();
    one.poll_transmit(t0 - MS, 0).unwrap();
    let second = one.poll_transmit(t0 - MS + JOIN_BURST[0], 0).unwrap().bytes;
    let later = t0 + JOIN_BURST[0] - MS;
    assert!(
        !a.handle_datagram(&second, from(), Via::Group, later)
            .unwrap()
            .lead
    );
    assert!(a.poll_transmit(later, 0).is_none());
}

#[test]
fn exactly_one_side_of_a_pair_leads_the_connect() {
    let t0 = Instant::now();
    // A running node leads towards a newcomer, whatever the names.
    let mut z = Engine::new(config("z@h", None), t0, 1, 1).unwrap();
    schedule(&mut z, t0, 4900 * MS);
    let late = t0 + 5000 * MS;
    let mut b = Engine::new(config("b@h", None), late, 2, 2).unwrap();
    let hello = b.poll_transmit(late, 0).unwrap().bytes;
    assert!(
        z.handle_datagram(&hello, from(), Via::Group, late)
            .unwrap()
            .lead
    );
    let answer_at = z.next_deadline();
    let answer = z.poll_transmit(answer_at, 0).unwrap().bytes;
    assert!(
        !b.handle_datagram(&answer, from(), Via::Group, answer_at)
            .unwrap()
            .lead
    );

    // Two newcomers: the pair's coin decides, on both sides, also when one hears the
    // other first through an answer (which does not ask for answers, so carries
    // NEWCOMER without JOINING). Here it falls to the larger name.
    assert!(first_leads("b@h", "a@h"));
    let mut a = Engine::new(config("a@h", None), late, 3, 3).unwrap();
    schedule(&mut a, late, 200 * MS);
    let later = late + 210 * MS;
    let mut c = Engine::new(config("b@h", None), later, 4, 4).unwrap();
    let from_c = c.poll_transmit(later, 0).unwrap().bytes;
    assert!(
        !a.handle_datagram(&from_c, from(), Via::Group, later)
            .unwrap()
            .lead
    );
    let answer_at = a.next_deadline();
    let answer = a.poll_transmit(answer_at, 0).unwrap().bytes;
    assert_eq!(answer[5] & (FLAG_JOINING | FLAG_NEWCOMER), FLAG_NEWCOMER);
    assert!(
        c.handle_datagram(&answer, from(), Via::Group, answer_at)
            .unwrap()
            .lead
    );

    // Two settled nodes that meet (a healed partition): the coin again, which falls to
    // the smaller name here.
    assert!(first_leads("y@h", "z@h"));
    let t1 = late + 10_000 * MS;
    let mut y = Engine::new(config("y@h", None), late, 5, 5).unwrap();
    schedule(&mut y, late, 9000 * MS);
    schedule(&mut z, late, 9000 * MS);
    let from_y = y.poll_transmit(y.next_deadline().max(t1), 0).unwrap().bytes;
    let from_z = z.poll_transmit(z.next_deadline().max(t1), 0).unwrap().bytes;
    let at = t1 + 2000 * MS;
    let heard_z = y.handle_datagram(&from_z, from(), Via::Group, at).unwrap();
    let heard_y = z.handle_datagram(&from_y, from(), Via::Group, at).unwrap();
    assert_eq!(heard_z.kind, EventKind::Discovered);
    assert!(heard_z.lead);
    assert!(!heard_y.lead);
}

#[test]
fn nodes_starting_together_do_not_answer_each_other_forever() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 11).unwrap();
    let mut b = Engine::new(config("b@h", None), t0 + 3 * MS, 2, 22).unwrap();
    let (mut sent_a, mut sent_b) = (0, 0);
    let mut now = t0;
    // Zero-latency network: everything sent is received at once by the other.
    while now < t0 + 3000 * MS {
        while let Some(p) = a.poll_transmit(now, 0) {
            sent_a += 1;
            b.handle_datagram(&p.bytes, from(), Via::Group, now);
        }
        if now >= t0 + 3 * MS {
            while let Some(p) = b.poll_transmit(now, 0) {
                sent_b += 1;
                a.handle_datagram(&p.bytes, from(), Via::Group, now);
            }
        }
        now = a.next_deadline().min(b.next_deadline()).max(now + MS);
    }
    // Per node: 6 burst heartbeats, at most one answer to each of the other's 6,
    // and up to three regular ones in the rest of the 3 s.
    assert!(
        sent_a <= 15 && sent_b <= 15,
        "a sent {sent_a}, b sent {sent_b}"
    );
    assert_eq!(a.peer_count(), 1);
    assert_eq!(b.peer_count(), 1);
}

#[test]
fn own_packets_and_name_conflicts_are_counted_not_reported() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    let own = a.poll_transmit(t0, 0).unwrap().bytes;
    assert_eq!(a.handle_datagram(&own, from(), Via::Group, t0), None);
    let mut imposter = Engine::new(config("a@h", None), t0, 99, 1).unwrap();
    let other = imposter.poll_transmit(t0, 0).unwrap().bytes;
    assert_eq!(a.handle_datagram(&other, from(), Via::Group, t0), None);
    assert_eq!(a.stats().looped_back, 1);
    assert_eq!(a.stats().dropped(DropReason::OwnPacket), 0);
    assert_eq!(a.stats().dropped(DropReason::NameConflict), 1);
    assert_eq!(a.stats().received, 2);
    assert_eq!(a.stats().accepted, 0);
}

#[test]
fn libcluster_heartbeats_are_told_apart_without_compat() {
    let t0 = Instant::now();
    let mut plain = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    let v = plain.handle_datagram_verdict(&compat::encode_plain("lib@h"), from(), Via::Group, t0);
    assert_eq!(v, Err(DropReason::LibclusterFormat));
    // The prefix with anything but a heartbeat's term is junk.
    let v = plain.handle_datagram_verdict(
        b"heartbeat::junk-junk-junk-junk-junk-junk",
        from(),
        Via::Group,
        t0,
    );
    assert_eq!(v, Err(DropReason::BadMagic));

    let mut keyed = Engine::new(config("a@h", Some(b"k")), t0, 1, 1).unwrap();
    let ours = compat::encode_encrypted("lib@h", &compat::key(b"k"), &[7; 16]);
    let theirs = compat::encode_encrypted("lib@h", &compat::key(b"other"), &[7; 16]);
    assert_eq!(
        keyed.handle_datagram_verdict(&ours, from(), Via::Group, t0),
        Err(DropReason::LibclusterFormat)
    );
    assert_eq!(
        keyed.handle_datagram_verdict(&theirs, from(), Via::Group, t0),
        Err(DropReason::BadMagic)
    );
    assert_eq!(keyed.stats().dropped(DropReason::LibclusterFormat), 1);
}

#[test]
fn every_rejection_is_counted_and_totals_add_up() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", Some(b"k")), t0, 1, 1).unwrap();
    let mut b = Engine::new(config("b@h", Some(b"k")), t0, 1, 1).unwrap();
    let mut stranger = Engine::new(config("c@h", Some(b"other")), t0, 1, 1).unwrap();
    let good = b.poll_transmit(t0, 0).unwrap().bytes;
    let foreign = stranger.poll_transmit(t0, 0).unwrap().bytes;
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 2000],
        b"heartbeat::garbage-from-libcluster-gossip-..".to_vec(),
        foreign,
        good.clone(),
        good,
    ];
    for p in &inputs {
        a.handle_datagram(p, from(), Via::Group, t0);
    }
    let s = a.stats();
    assert_eq!(s.received, 6);
    assert_eq!(s.accepted, 1);
    assert_eq!(s.dropped(DropReason::TooShort), 1);
    assert_eq!(s.dropped(DropReason::TooLong), 1);
    assert_eq!(s.dropped(DropReason::BadMagic), 1);
    assert_eq!(s.dropped(DropReason::BadSignature), 1);
    assert_eq!(s.dropped(DropReason::Replay), 1);
    assert_eq!(s.received, s.accepted + s.looped_back + s.dropped_total());
}

#[test]
fn announce_sends_now_and_leave_is_flagged() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    a.poll_transmit(t0, 0).unwrap();
    let later = t0 + 10 * MS;
    assert!(a.poll_transmit(later, 0).is_none());
    a.announce(later);
    assert_eq!(a.next_deadline(), later);
    assert!(a.poll_transmit(later, 0).is_some());
    a.leave(0, t0);
    let bye = a.poll_transmit(later, 0).unwrap().bytes;
    assert_eq!(bye[5] & FLAG_LEAVING, FLAG_LEAVING);
    let hb = decode(&bye, &Keyring::none()).unwrap();
    assert_eq!(hb.sequence, 3);
}

#[test]
fn lost_peer_wakes_the_engine_at_the_right_time() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    let mut b = Engine::new(config("b@h", None), t0, 1, 1).unwrap();
    let hb = b.poll_transmit(t0, 0).unwrap().bytes;
    a.handle_datagram(&hb, from(), Via::Group, t0);
    let mut out = Vec::new();
    // Drain a's own heartbeats for 5 s; the lost deadline must come up on its own.
    let mut now = t0;
    while now < t0 + 5000 * MS {
        now = a.next_deadline().max(now);
        while a.poll_transmit(now, 0).is_some() {}
        a.handle_timeout(now, &mut out);
        if !out.is_empty() {
            break;
        }
        now += MS;
    }
    assert_eq!(out[0].kind, EventKind::Lost);
    assert_eq!(now, t0 + 3000 * MS);
}

#[test]
fn without_a_secret_new_names_are_rate_limited_per_source_known_ones_never() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    let flooder: SocketAddr = "198.51.100.66:45892".parse().unwrap();
    let mut events = 0;
    for i in 0..1000 {
        let name = format!("fake{i}@h");
        let mut e = Engine::new(config(&name, None), t0, 1, 1).unwrap();
        let p = e.poll_transmit(t0, 0).unwrap().bytes;
        events += a.handle_datagram(&p, flooder, Via::Group, t0).is_some() as usize;
    }
    assert_eq!(events, 10, "the burst");
    assert_eq!(a.stats().dropped(DropReason::RateLimited), 990);
    // A legitimate node elsewhere is admitted at once, and its later heartbeats
    // spend no tokens.
    let mut b = Engine::new(config("b@h", None), t0, 1, 1).unwrap();
    for _ in 0..50 {
        let p = b.poll_transmit(t0 + 2000 * MS, 0);
        b.announce(t0 + 2000 * MS);
        if let Some(p) = p {
            a.handle_datagram(&p.bytes, from(), Via::Group, t0 + 2000 * MS);
        }
    }
    assert_eq!(a.peer_count(), 11);
    assert_eq!(a.stats().dropped(DropReason::RateLimited), 990);
    // With a secret there is no such limit (names are authenticated).
    let mut s = Engine::new(config("s@h", Some(b"k")), t0, 1, 1).unwrap();
    for i in 0..50 {
        let name = format!("real{i}@h");
        let mut e = Engine::new(config(&name, Some(b"k")), t0, 1, 1).unwrap();
        let p = e.poll_transmit(t0, 0).unwrap().bytes;
        s.handle_datagram(&p, from(), Via::Group, t0);
    }
    assert_eq!(s.peer_count(), 50);
}

#[test]
fn invalid_own_name_is_refused() {
    assert!(Engine::new(config("no host", None), Instant::now(), 1, 1).is_err());
}
// Where datagrams go: every decision the driver used to make, with a fake clock.

fn seed() -> SocketAddr {
    "198.51.100.20:45892".parse().unwrap()
}

/// Everything `e` sends at `now`: (destination, flags).
fn drain(e: &mut Engine, now: Instant) -> Vec<(Destination, u8)> {
    std::iter::from_fn(|| e.poll_transmit(now, 0))
        .map(|t| (t.to, t.bytes[5]))
        .collect()
}

fn to(a: SocketAddr) -> Destination {
    Destination::Unicast(a)
}

#[test]
fn the_joining_burst_and_every_heartbeat_go_to_the_group_and_every_seed() {
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.seeds = vec![seed()];
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    let mut now = t0;
    let mut sent = Vec::new();
    while now < t0 + 3000 * MS {
        sent.push(drain(&mut a, now));
        now = a.next_deadline().max(now + MS);
    }
    let sent: Vec<_> = sent.into_iter().filter(|s| !s.is_empty()).collect();
    assert!(sent.len() >= 9, "{} heartbeats", sent.len());
    for (i, s) in sent.iter().enumerate() {
        let joining = i < 7;
        let flags = s[0].1;
        assert_eq!(flags & FLAG_JOINING != 0, joining, "heartbeat {i}");
        // One heartbeat, the same bytes, to both destinations, group first.
        assert_eq!(s, &vec![(Destination::Group, flags), (to(seed()), flags)]);
    }
    // Replaced seeds take effect with the next heartbeat.
    let other: SocketAddr = "198.51.100.21:45892".parse().unwrap();
    a.set_seeds(vec![other]);
    a.announce(now);
    let dest: Vec<_> = drain(&mut a, now).into_iter().map(|d| d.0).collect();
    assert_eq!(dest, vec![Destination::Group, to(other)]);
}

#[test]
fn a_new_sender_heard_by_unicast_is_answered_at_once_and_kept_until_it_goes() {
    let t0 = Instant::now();
    let mut a = Engine::new(config("a@h", None), t0, 1, 1).unwrap();
    schedule(&mut a, t0, 4000 * MS);
    // b's first heartbeat arrives just after a's regular one.
    let late = a.next_deadline();
    drain(&mut a, late);
    let mut b = Engine::new(config("b@h", None), late, 2, 2).unwrap();
    let hello = b.poll_transmit(late, 0).unwrap().bytes;
    let b_addr: SocketAddr = "198.51.100.30:45892".parse().unwrap();
    a.handle_datagram(&hello, b_addr, Via::Unicast, late)
        .unwrap();
    // The answer goes at once, by unicast, and asks for no answers itself; a's
    // answer to the JOINING flag follows later, to the group and to b.
    assert_eq!(a.next_deadline(), t0);
    let now = drain(&mut a, late);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].0, to(b_addr));
    assert_eq!(now[0].1 & FLAG_JOINING, 0);
    // b has not proven its address (no secret, no connection): the answer spent
    // what b sent, so a's answer to the JOINING flag goes to the group only.
    let reply_at = a.next_deadline();
    let dest: Vec<_> = drain(&mut a, reply_at).into_iter().map(|d| d.0).collect();
    assert_eq!(dest, vec![Destination::Group]);
    // Heard again: no second answer, and credit for one more heartbeat to b.
    let again = b.poll_transmit(late + 20 * MS, 0).unwrap().bytes;
    a.handle_datagram(&again, b_addr, Via::Unicast, late + 20 * MS);
    assert!(drain(&mut a, late + 20 * MS).is_empty());
    a.announce(late + 30 * MS);
    let dest: Vec<_> = drain(&mut a, late + 30 * MS)
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(dest, vec![Destination::Group, to(b_addr)]);
    // A distribution connection with b over that address proves it: every
    // heartbeat goes there then.
    assert!(a.set_connected("b@h", true, Some(b_addr.ip()), late + 40 * MS));
    for i in 0..3 {
        a.announce(late + (50 + i) * MS);
        let dest: Vec<_> = drain(&mut a, late + (50 + i) * MS)
            .into_iter()
            .map(|d| d.0)
            .collect();
        assert_eq!(dest, vec![Destination::Group, to(b_addr)]);
    }
    // Silent: once lost, no more unicast heartbeats to it.
    let mut out = Vec::new();
    a.handle_timeout(late + 3100 * MS, &mut out);
    assert_eq!(out[0].kind, EventKind::Lost);
    a.announce(late + 3100 * MS);
    let dest: Vec<_> = drain(&mut a, late + 3100 * MS)
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(dest, vec![Destination::Group]);
}

#[test]
fn group_senders_and_seeds_get_no_unicast_answer() {
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.seeds = vec![seed()];
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    drain(&mut a, t0);
    let mut b = Engine::new(config("b@h", None), t0, 2, 2).unwrap();
    let mut c = Engine::new(config("c@h", None), t0, 3, 3).unwrap();
    let from_b = b.poll_transmit(t0, 0).unwrap().bytes;
    let from_c = c.poll_transmit(t0, 0).unwrap().bytes;
    // b by multicast: not learned, not answered by unicast.
    a.handle_datagram(&from_b, from(), Via::Group, t0).unwrap();
    // c from the seed's address: a seed already gets every heartbeat.
    a.handle_datagram(&from_c, seed(), Via::Unicast, t0)
        .unwrap();
    assert!(drain(&mut a, t0).is_empty());
    a.announce(t0 + MS);
    let dest: Vec<_> = drain(&mut a, t0 + MS).into_iter().map(|d| d.0).collect();
    assert_eq!(dest, vec![Destination::Group, to(seed())]);
}

#[test]
fn learned_peers_are_bounded_and_a_goodbye_reaches_them_twice() {
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.max_peers = 2 * MAX_LEARNED;
    cfg.new_peer_burst = u32::MAX;
    let mut a = Engine::new(cfg.clone(), t0, 1, 1).unwrap();
    drain(&mut a, t0);
    for i in 0..MAX_LEARNED + 10 {
        let mut p = Engine::new(config(&format!("p{i}@h"), None), t0, 1, 1).unwrap();
        let hb = p.poll_transmit(t0, 0).unwrap().bytes;
        let addr = SocketAddr::new([198, 51, 100, 1].into(), 1000 + i as u16);
        a.handle_datagram(&hb, addr, Via::Unicast, t0).unwrap();
    }
    assert_eq!(a.peer_count(), MAX_LEARNED + 10);
    let answers = drain(&mut a, t0);
    assert_eq!(answers.len(), MAX_LEARNED + 10, "every new one is answered");
    // Each answer spent what its peer sent: nothing more goes to an unproven one.
    a.leave(0, t0);
    assert_eq!(
        drain(&mut a, t0 + MS).len(),
        2,
        "the goodbyes, to the group only"
    );
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    drain(&mut a, t0);
    for i in 0..MAX_LEARNED + 10 {
        let mut p = Engine::new(config(&format!("p{i}@h"), None), t0, 1, 1).unwrap();
        let hb = p.poll_transmit(t0, 0).unwrap().bytes;
        let addr = SocketAddr::new([198, 51, 100, 1].into(), 1000 + i as u16);
        a.handle_datagram(&hb, addr, Via::Unicast, t0);
        a.set_connected(&format!("p{i}@h"), true, Some(addr.ip()), t0);
    }
    drain(&mut a, t0);
    a.leave(0, t0);
    let bye = drain(&mut a, t0 + MS);
    // Two goodbyes, each to the group and to the learned peers (at most MAX_LEARNED).
    assert_eq!(bye.len(), 2 * (1 + MAX_LEARNED));
    assert!(bye.iter().all(|b| b.1 & FLAG_LEAVING != 0));
    let groups = bye.iter().filter(|b| b.0 == Destination::Group).count();
    assert_eq!(groups, 2);
}

#[test]
fn in_libcluster_mode_each_heartbeat_has_a_libcluster_copy_for_the_group() {
    let t0 = Instant::now();
    for secret in [None, Some(&b"k"[..])] {
        let mut cfg = config("a@h", secret);
        cfg.compat_libcluster = true;
        cfg.seeds = vec![seed()];
        let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
        let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit(t0, 0)).collect();
        let dest: Vec<_> = sent.iter().map(|t| t.to).collect();
        assert_eq!(
            dest,
            vec![Destination::Group, to(seed()), Destination::Group]
        );
        assert_eq!(&sent[0].bytes[..4], &wire::MAGIC);
        let legacy = &sent[2].bytes;
        let name = match secret {
            None => compat::decode_plain(legacy).unwrap().to_owned(),
            Some(s) => compat::decode_encrypted(legacy, &[compat::key(s)]).unwrap(),
        };
        assert_eq!(name, "a@h");
        // A unicast answer has no libcluster copy.
        let b_addr: SocketAddr = "198.51.100.31:45892".parse().unwrap();
        let mut cfg = config("b@h", secret);
        cfg.own_addresses = vec![b_addr.ip()];
        let mut b = Engine::new(cfg, t0, 2, 2).unwrap();
        let hb = b.poll_transmit(t0, 0).unwrap().bytes;
        a.handle_datagram(&hb, b_addr, Via::Unicast, t0 + MS)
            .unwrap();
        let dest: Vec<_> = drain(&mut a, t0 + MS).into_iter().map(|d| d.0).collect();
        assert_eq!(dest, vec![to(b_addr)]);
    }
}

// Hostile traffic over time (issue #14), each with a fake clock.

/// A heartbeat of `name` signed with `secret` (if any), as its own engine sends it
/// at `wall_ms`.
fn packet(name: &str, secret: Option<&[u8]>, incarnation: u64, wall_ms: u64) -> Vec<u8> {
    let mut e = Engine::new(config(name, secret), Instant::now(), incarnation, 1).unwrap();
    e.poll_transmit(Instant::now(), wall_ms).unwrap().bytes
}

#[test]
fn without_a_secret_names_made_over_a_lifetime_are_capped_at_max_names() {
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.max_peers = 10;
    cfg.max_names = Some(25);
    cfg.new_peer_rate = 100_000;
    cfg.new_peer_burst = 100_000;
    cfg.name_exists = NameCheck::new(|n| n.starts_with("known"));
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    let mut admitted = 0;
    let mut now = t0;
    // Fresh names, every one forgotten before the next batch (so the table never
    // fills): the forgotten make room in the table, not in the name budget.
    for batch in 0..10 {
        for i in 0..10 {
            let p = packet(&format!("fake{batch}x{i}@h"), None, 1, 0);
            admitted += a.handle_datagram(&p, from(), Via::Group, now).is_some() as usize;
        }
        now += 20_000 * MS;
        a.handle_timeout(now, &mut Vec::new());
        assert_eq!(a.peer_count(), 0);
    }
    assert_eq!(admitted, 25);
    assert_eq!(a.names_made(), 25);
    assert_eq!(a.stats().dropped(DropReason::NameCap), 75);
    // A name the owner already has (an atom on the BEAM) costs nothing and gets in.
    let p = packet("known1@h", None, 1, 0);
    assert!(a.handle_datagram(&p, from(), Via::Group, now).is_some());
    assert_eq!(a.names_made(), 25);
    // With a secret and no explicit cap, authenticated names are not capped.
    let mut s = Engine::new(config("s@h", Some(b"k")), t0, 1, 1).unwrap();
    for i in 0..200 {
        let p = packet(&format!("real{i}@h"), Some(b"k"), 1, 0);
        s.handle_datagram(&p, from(), Via::Group, t0);
    }
    assert_eq!(s.peer_count(), 100);
    assert_eq!(s.stats().dropped(DropReason::NameCap), 0);
}

#[test]
fn with_a_secret_heartbeats_signed_too_far_from_local_time_are_stale() {
    let t0 = Instant::now();
    let wall = 1_800_000_000_000;
    let mut cfg = config("a@h", Some(b"k"));
    cfg.max_clock_skew = Some(60_000 * MS);
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    a.set_clock(t0, wall);
    // A capture from two minutes ago, replayed after the peer was forgotten.
    let old = packet("b@h", Some(b"k"), 5, wall - 120_000);
    assert!(a.handle_datagram(&old, from(), Via::Group, t0).is_none());
    assert_eq!(a.stats().dropped(DropReason::Stale), 1);
    // From the future, likewise; within the bound, accepted.
    let ahead = packet("c@h", Some(b"k"), 5, wall + 61_000);
    assert!(a.handle_datagram(&ahead, from(), Via::Group, t0).is_none());
    let fresh = packet("d@h", Some(b"k"), 5, wall + 30_000);
    assert!(a.handle_datagram(&fresh, from(), Via::Group, t0).is_some());
    // The engine's idea of the time moves with `now`.
    let later = packet("e@h", Some(b"k"), 5, wall + 600_000);
    let now = t0 + 590_000 * MS;
    assert!(a.handle_datagram(&later, from(), Via::Group, now).is_some());
    assert_eq!(a.stats().dropped(DropReason::Stale), 2);
}

#[test]
fn in_libcluster_mode_a_native_nodes_libcluster_heartbeats_are_dropped_even_after_it_is_forgotten()
{
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.compat_libcluster = true;
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    let native = packet("b@h", None, 7, 0);
    let legacy = compat::encode_plain("b@h");
    assert!(a.handle_datagram(&native, from(), Via::Group, t0).is_some());
    a.handle_timeout(t0 + 20_000 * MS, &mut Vec::new());
    assert_eq!(a.peer_count(), 0);
    // A capture of its libcluster copy cannot bring it back.
    let later = t0 + 30_000 * MS;
    assert!(a
        .handle_datagram(&legacy, from(), Via::Group, later)
        .is_none());
    assert_eq!(a.peer_count(), 0);
    assert_eq!(a.stats().dropped(DropReason::LegacyNativeName), 1);
    // A libcluster node is still welcome.
    let old = compat::encode_plain("old@h");
    assert!(a.handle_datagram(&old, from(), Via::Group, later).is_some());
}

#[test]
fn without_a_secret_a_newcomer_gets_in_while_forged_names_from_thousands_of_sources_fill_the_table()
{
    let t0 = Instant::now();
    let mut cfg = config("a@h", None);
    cfg.max_peers = 1000;
    cfg.new_peer_rate = 1;
    cfg.new_peer_burst = 2;
    let mut a = Engine::new(cfg, t0, 1, 1).unwrap();
    // 4096 sources spend their burst on made-up names: the table is full of names
    // that never connected, and every source's bucket is empty.
    let mut now = t0;
    for round in 0..3 {
        for i in 0..crate::limiter::MAX_SOURCES {
            let src = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 45892));
            let p = packet(&format!("f{round}x{i}@h"), None, 1, 0);
            a.handle_datagram(&p, src, Via::Group, now);
        }
        now += MS;
    }
    assert_eq!(a.peer_count(), 1000);
    assert!(a.stats().dropped(DropReason::RateLimited) > 0);
    a.handle_timeout(now, &mut Vec::new());
    // A real newcomer from a new host is admitted at once.
    let p = packet("real@h", None, 1, 0);
    let e = a.handle_datagram(&p, from(), Via::Group, now);
    assert_eq!(e.map(|e| e.kind), Some(EventKind::Discovered));
    let mut out = Vec::new();
    a.handle_timeout(now, &mut out);
    assert_eq!(out.len(), 1, "one forged name evicted");
    assert_eq!(out[0].kind, EventKind::Forgotten);
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn labelled(name: &str, cluster: &str, key: Option<&[u8]>) -> Config {
    Config {
        cluster: cluster.to_owned(),
        ..config(name, key)
    }
}

#[test]
fn labels_keep_two_clusters_apart_on_one_group() {
    let t0 = Instant::now();
    let key = Some(&b"shared secret"[..]);
    let mut a = Engine::new(labelled("a@h", "blue", key), t0, 1, 1).unwrap();
    let mut c = Engine::new(labelled("c@h", "blue", key), t0, 3, 3).unwrap();
    let mut b = Engine::new(labelled("b@h", "green", key), t0, 2, 2).unwrap();
    let mut d = Engine::new(config("d@h", key), t0, 4, 4).unwrap();
    let from_c = c.poll_transmit(t0, 0).unwrap().bytes;
    let from_b = b.poll_transmit(t0, 0).unwrap().bytes;
    let from_d = d.poll_transmit(t0, 0).unwrap().bytes;
    assert_eq!(
        a.handle_datagram_verdict(&from_c, from(), Via::Group, t0)
            .unwrap()
            .unwrap()
            .name,
        "c@h"
    );
    for (packet, label) in [(&from_b, "green"), (&from_d, "")] {
        assert_eq!(
            a.handle_datagram_verdict(packet, from(), Via::Group, t0),
            Err(DropReason::OtherCluster),
            "label {label:?}"
        );
    }
    assert_eq!(a.other_clusters(), ["green", ""]);
    assert_eq!(a.stats().dropped[DropReason::OtherCluster.index()], 2);
    // An unlabelled node hears neither labelled one.
    assert_eq!(
        d.handle_datagram_verdict(&from_c, from(), Via::Group, t0),
        Err(DropReason::OtherCluster)
    );
    // The label is authenticated: changing it breaks the MAC.
    let mut relabelled = from_b.clone();
    let at = relabelled.windows(5).position(|w| w == b"green").unwrap();
    relabelled[at..at + 5].copy_from_slice(b"blue!");
    assert_eq!(
        a.handle_datagram_verdict(&relabelled, from(), Via::Group, t0),
        Err(DropReason::BadSignature)
    );
}

#[test]
fn tags_reach_peers_and_a_change_is_reported_once() {
    let t0 = Instant::now();
    let key = Some(&b"shared secret"[..]);
    let web = tags(&[("role", "web"), ("version", "1.4.2")]);
    let mut a = Engine::new(
        Config {
            tags: web.clone(),
            ..config("a@h", key)
        },
        t0,
        1,
        1,
    )
    .unwrap();
    let mut b = Engine::new(config("b@h", key), t0, 2, 2).unwrap();
    let first = a.poll_transmit(t0, 0).unwrap().bytes;
    let e = b.handle_datagram(&first, from(), Via::Group, t0).unwrap();
    assert_eq!(e.kind, EventKind::Discovered);
    let heard: Vec<_> = wire::tags(&e.tags).collect();
    assert_eq!(heard, [("role", "web"), ("version", "1.4.2")]);
    assert!(b.set_connected("a@h", true, None, t0));
    assert_eq!(b.members(t0, 0)[0].tags, e.tags);

    // Changed at run time: announced at once, reported once.
    a.set_tags(&tags(&[("role", "db")])).unwrap();
    a.announce(t0 + MS);
    let changed = a.poll_transmit(t0 + MS, 0).unwrap().bytes;
    let e = b
        .handle_datagram(&changed, from(), Via::Group, t0 + MS)
        .unwrap();
    assert_eq!(e.kind, EventKind::TagsChanged);
    assert_eq!(wire::tags(&e.tags).collect::<Vec<_>>(), [("role", "db")]);
    let mut now = t0 + MS;
    for _ in 0..5 {
        now += 1000 * MS;
        let again = loop {
            if let Some(t) = a.poll_transmit(now, 0) {
                break t.bytes;
            }
            now = a.next_deadline();
        };
        assert_eq!(b.handle_datagram(&again, from(), Via::Group, now), None);
    }
    // Too many tag bytes are refused, and the old tags stay.
    let big: Vec<(String, String)> = (0..10)
        .map(|i| (format!("key{i}"), "x".repeat(60)))
        .collect();
    assert!(matches!(a.set_tags(&big), Err(OptionsError::Tags(_))));
    assert!(Engine::new(
        Config {
            tags: big,
            ..config("z@h", key)
        },
        t0,
        9,
        9
    )
    .is_err());
}

#[test]
fn sealed_heartbeats_hide_names_and_tags_and_are_checked_like_signed_ones() {
    let t0 = Instant::now();
    let sealing = |name: &str, secrets: &[&[u8]]| Config {
        keys: Keyring::new(secrets.iter().map(|s| s.to_vec()).collect()).encrypting(),
        tags: tags(&[("role", "secret-role")]),
        cluster: "hidden-label".into(),
        ..config(name, None)
    };
    let mut a = Engine::new(sealing("alice@h", &[b"k1"]), t0, 1, 1).unwrap();
    let mut b = Engine::new(sealing("bob@h", &[b"k1"]), t0, 2, 2).unwrap();
    let packet = a.poll_transmit(t0, 0).unwrap().bytes;
    for needle in [&b"alice"[..], b"secret-role", b"hidden-label"] {
        assert!(!packet.windows(needle.len()).any(|w| w == needle));
    }
    assert_eq!(packet[5], wire::FLAG_SEALED);
    let e = b.handle_datagram(&packet, from(), Via::Group, t0).unwrap();
    assert_eq!(
        (e.kind, e.name.as_str()),
        (EventKind::Discovered, "alice@h")
    );
    assert_eq!(
        wire::tags(&e.tags).collect::<Vec<_>>(),
        [("role", "secret-role")]
    );
    // The same datagram again is a replay; any bit flipped fails to open.
    assert_eq!(
        b.handle_datagram_verdict(&packet, from(), Via::Group, t0),
        Err(DropReason::Replay)
    );
    for i in 0..packet.len() {
        let mut flipped = packet.clone();
        flipped[i] ^= 0x01;
        assert!(
            b.handle_datagram_verdict(&flipped, from(), Via::Group, t0)
                .is_err(),
            "flip at byte {i} accepted"
        );
    }
    // A node that signs with the same secret but does not encrypt drops it, with a
    // reason of its own; an encrypting node still accepts signed heartbeats (so
    // encryption can be turned on node by node), and a rotated secret opens.
    let mut plain = Engine::new(
        Config {
            cluster: "hidden-label".into(),
            ..config("carol@h", Some(b"k1"))
        },
        t0,
        3,
        3,
    )
    .unwrap();
    assert_eq!(
        plain.handle_datagram_verdict(&packet, from(), Via::Group, t0),
        Err(DropReason::Sealed)
    );
    let signed = plain.poll_transmit(t0, 0).unwrap().bytes;
    assert!(b.handle_datagram(&signed, from(), Via::Group, t0).is_some());
    let mut rotating = Engine::new(sealing("dave@h", &[b"k2", b"k1"]), t0, 4, 4).unwrap();
    assert!(rotating
        .handle_datagram(&packet, from(), Via::Group, t0)
        .is_some());
    let mut stranger = Engine::new(sealing("eve@h", &[b"other"]), t0, 5, 5).unwrap();
    assert_eq!(
        stranger.handle_datagram_verdict(&packet, from(), Via::Group, t0),
        Err(DropReason::BadSignature)
    );
}

#[test]
fn the_distribution_port_reaches_peers_in_events_and_members() {
    let t0 = Instant::now();
    let key = Some(&b"shared secret"[..]);
    let mut a = Engine::new(
        Config {
            dist_port: 43_210,
            tags: tags(&[("role", "db")]),
            ..config("a@h", key)
        },
        t0,
        1,
        1,
    )
    .unwrap();
    let mut b = Engine::new(config("b@h", key), t0, 2, 2).unwrap();
    let e = b
        .handle_datagram(
            &a.poll_transmit(t0, 0).unwrap().bytes,
            from(),
            Via::Group,
            t0,
        )
        .unwrap();
    assert_eq!(e.dist_port, 43_210);
    assert_eq!(b.members(t0, 0)[0].dist_port, 43_210);
    // It stays in the heartbeats when the tags change; b's own says none.
    a.set_tags(&tags(&[("role", "web")])).unwrap();
    a.announce(t0 + MS);
    let e = b
        .handle_datagram(
            &a.poll_transmit(t0 + MS, 0).unwrap().bytes,
            from(),
            Via::Group,
            t0 + MS,
        )
        .unwrap();
    assert_eq!((e.kind, e.dist_port), (EventKind::TagsChanged, 43_210));
    let hb = b.poll_transmit(t0, 0).unwrap().bytes;
    let mut scratch = Vec::new();
    let keys = Keyring::new(vec![b"shared secret".to_vec()]);
    assert_eq!(
        wire::decode_with(&hb, &keys, &mut scratch)
            .unwrap()
            .dist_port(),
        0
    );
}

// Issue #23: nothing from the network decides where a node connects, and no node
// reflects traffic. Each of these failed before the change it tests.

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, last], 45892))
}

#[test]
fn with_a_secret_a_heartbeat_replayed_from_another_address_is_dropped_even_by_a_node_just_started()
{
    for encrypt in [false, true] {
        let t0 = Instant::now();
        let keys = |c: &mut Config| {
            if encrypt {
                c.keys = c.keys.clone().encrypting();
            }
        };
        let mut pc = config("p@h", Some(b"k"));
        pc.own_addresses = vec![addr(5).ip()];
        keys(&mut pc);
        let mut p = Engine::new(pc, t0, 7, 7).unwrap();
        let captured = p.poll_transmit(t0, 0).unwrap().bytes;
        // T starts after the capture: it has no memory of p.
        let mut tc = config("t@h", Some(b"k"));
        keys(&mut tc);
        let mut t = Engine::new(tc.clone(), t0, 1, 1).unwrap();
        let verdict = t.handle_datagram_verdict(&captured, addr(3), Via::Group, t0);
        assert_eq!(verdict, Err(DropReason::ForeignSource));
        assert_eq!(t.peer_count(), 0);
        // From p's own address it is p.
        let ev = t
            .handle_datagram(&captured, addr(5), Via::Group, t0)
            .unwrap();
        assert_eq!(
            (ev.kind, ev.addr, ev.proven),
            (EventKind::Discovered, addr(5), true)
        );
        // A seed's address is the operator's: a heartbeat from there is taken (a
        // seed behind NAT is heard from its public address).
        tc.seeds = vec![addr(200)];
        let mut t = Engine::new(tc, t0, 1, 1).unwrap();
        assert!(t
            .handle_datagram(&captured, addr(200), Via::Unicast, t0)
            .is_some());
    }
}

#[test]
fn with_a_secret_heartbeats_list_this_hosts_addresses_and_follow_a_change() {
    let t0 = Instant::now();
    let mut c = config("a@h", Some(b"k"));
    c.own_addresses = vec![addr(1).ip(), "fe80::1".parse().unwrap()];
    let mut a = Engine::new(c, t0, 1, 1).unwrap();
    let keys = Keyring::new(vec![b"k".to_vec()]);
    let hb = a.poll_transmit(t0, 0).unwrap().bytes;
    let listed: Vec<IpAddr> = wire::addresses(decode(&hb, &keys).unwrap().options).collect();
    assert_eq!(
        listed,
        vec![addr(1).ip(), "fe80::1".parse::<IpAddr>().unwrap()]
    );
    a.set_tags(&[("role".into(), "db".into())]).unwrap();
    a.set_own_addresses(vec![addr(2).ip()]);
    a.announce(t0 + MS);
    let hb = a.poll_transmit(t0 + MS, 0).unwrap().bytes;
    let hb = decode(&hb, &keys).unwrap();
    assert_eq!(
        wire::addresses(hb.options).collect::<Vec<_>>(),
        vec![addr(2).ip()]
    );
    assert_eq!(hb.tags().collect::<Vec<_>>(), vec![("role", "db")]);
    // Without a secret they would prove nothing, and are not sent.
    let mut c = config("b@h", None);
    c.own_addresses = vec![addr(1).ip()];
    let mut b = Engine::new(c, t0, 1, 1).unwrap();
    let hb = b.poll_transmit(t0, 0).unwrap().bytes;
    assert_eq!(
        wire::addresses(decode(&hb, &Keyring::none()).unwrap().options).count(),
        0
    );
}

#[test]
fn without_a_secret_a_connected_peer_is_pinned_to_its_proven_address_until_forgotten() {
    let t0 = Instant::now();
    let mut t = Engine::new(config("t@h", None), t0, 1, 1).unwrap();
    let genuine = addr(5);
    let forger = addr(66);
    let ev = t.handle_datagram(&packet("p@h", None, 10, 0), genuine, Via::Group, t0);
    assert!(!ev.unwrap().proven);
    assert!(t.set_connected("p@h", true, Some(genuine.ip()), t0));
    assert_eq!(t.pinned("p@h"), Some(genuine.ip()));
    // Disconnected: still pinned. Forged incarnations from elsewhere, 5 ms apart,
    // change nothing and are counted.
    t.set_connected("p@h", false, None, t0 + MS);
    for i in 0..200u64 {
        let now = t0 + Duration::from_millis(2 + 5 * i);
        let v =
            t.handle_datagram_verdict(&packet("p@h", None, 100 + i, 0), forger, Via::Group, now);
        assert_eq!(v, Err(DropReason::Unproven));
    }
    // The genuine peer's next heartbeat (same incarnation, next sequence) is
    // reported at once, with its address, proven.
    let mut p = Engine::new(config("p@h", None), t0, 10, 1).unwrap();
    p.poll_transmit(t0, 0);
    let hb = p.poll_transmit(t0 + 1100 * MS, 0).unwrap().bytes;
    let ev = t
        .handle_datagram(&hb, genuine, Via::Group, t0 + 1100 * MS)
        .unwrap();
    assert_eq!(
        (ev.kind, ev.addr, ev.proven),
        (EventKind::Heard, genuine, true)
    );
    assert_eq!(t.stats().dropped(DropReason::Unproven), 200);
    // A connection over another address than its heartbeats' pins nothing (a host
    // with several interfaces): that address is not where heartbeats come from.
    let mut u = Engine::new(config("u@h", None), t0, 1, 1).unwrap();
    u.handle_datagram(&packet("p@h", None, 10, 0), genuine, Via::Group, t0);
    u.set_connected("p@h", true, Some(addr(77).ip()), t0);
    assert_eq!(u.pinned("p@h"), None);
    // Forgotten: the pin goes with it, and the name is anyone's again.
    let mut out = Vec::new();
    t.handle_timeout(t0 + 20_000 * MS, &mut out);
    assert!(out.iter().any(|e| e.kind == EventKind::Forgotten));
    let now = t0 + 20_001 * MS;
    assert!(t
        .handle_datagram(&packet("p@h", None, 11, 0), forger, Via::Group, now)
        .is_some());
}

#[test]
fn without_a_secret_a_peer_whose_address_a_forger_moved_just_before_its_connection_is_pinned_by_its_next_heartbeat(
) {
    // The race: a forged heartbeat moves the peer's address between the distribution
    // connection's start and the owner's `set_connected`, so the connection's address
    // does not match and nothing is pinned. The connection's address is kept, and the
    // peer's next heartbeat from it pins it then.
    let t0 = Instant::now();
    let mut t = Engine::new(config("t@h", None), t0, 1, 1).unwrap();
    let (genuine, forger) = (addr(5), addr(66));
    t.handle_datagram(&packet("p@h", None, 10, 0), genuine, Via::Group, t0);
    let forged = t.handle_datagram_verdict(&packet("p@h", None, 11, 0), forger, Via::Group, t0);
    assert!(forged.is_ok());
    assert!(t.set_connected("p@h", true, Some(genuine.ip()), t0 + MS));
    assert_eq!(t.pinned("p@h"), None);
    // The genuine peer's next heartbeat, from the connection's address.
    let mut p = Engine::new(config("p@h", None), t0, 10, 1).unwrap();
    p.poll_transmit(t0, 0);
    let hb = p.poll_transmit(t0 + 1100 * MS, 0).unwrap().bytes;
    let ev = t.handle_datagram(&hb, genuine, Via::Group, t0 + 1100 * MS);
    assert_eq!(t.pinned("p@h"), Some(genuine.ip()));
    assert_eq!(ev.map(|e| (e.addr, e.proven)), Some((genuine, true)));
    // From now on the forger moves nothing.
    let now = t0 + 1200 * MS;
    let v = t.handle_datagram_verdict(&packet("p@h", None, 12, 0), forger, Via::Group, now);
    assert_eq!(v, Err(DropReason::Unproven));
    // A connection that ended takes its address with it: a disconnected peer is not
    // pinned late (reconnected later, the new connection's address counts).
    let mut u = Engine::new(config("u@h", None), t0, 1, 1).unwrap();
    u.handle_datagram(&packet("p@h", None, 10, 0), forger, Via::Group, t0);
    u.set_connected("p@h", true, Some(genuine.ip()), t0);
    u.set_connected("p@h", false, None, t0 + MS);
    u.handle_datagram(
        &packet("p@h", None, 11, 0),
        genuine,
        Via::Group,
        t0 + 2 * MS,
    );
    assert_eq!(u.pinned("p@h"), None);
}

#[test]
fn without_a_secret_spoofed_unicast_heartbeats_get_no_more_bytes_back_than_they_carry() {
    let t0 = Instant::now();
    let mut c = config("t@h", None);
    c.tags = (0..7)
        .map(|i| (format!("key{i}"), "v".repeat(60)))
        .collect();
    c.new_peer_burst = u32::MAX;
    c.new_peer_rate = u32::MAX;
    c.max_peers = 100_000;
    let mut t = Engine::new(c, t0, 1, 1).unwrap();
    let victim = addr(99);
    let (mut received, mut sent) = (0usize, 0usize);
    let mut now = t0;
    // 250 tiny heartbeats a second for 60 s, each in a new name, from the victim's
    // address (a spoofed source), while t sends its 500-byte heartbeats.
    for i in 0..15_000u32 {
        now = t0 + Duration::from_millis(4 * i as u64);
        let p = packet(&format!("n{}@h", i % 5000), None, 1 + i as u64, 0);
        received += p.len();
        t.handle_datagram(&p, victim, Via::Unicast, now);
        while let Some(tx) = t.poll_transmit(now, 0) {
            if tx.to == Destination::Unicast(victim) {
                sent += tx.bytes.len();
            }
        }
        let mut out = Vec::new();
        t.handle_timeout(now, &mut out);
    }
    assert!(now >= t0 + Duration::from_secs(59));
    assert!(
        sent <= received,
        "sent {sent} to the victim, received {received}"
    );
    assert!(t.stats().unicast_withheld > 0);
}

#[test]
fn compat_a_replayed_libcluster_copy_forces_no_lead_proves_no_address_and_never_overrides_a_native_peer(
) {
    let t0 = Instant::now();
    let mut c = config("z@h", None);
    c.compat_libcluster = true;
    let mut t = Engine::new(c.clone(), t0, 1, 1).unwrap();
    // A settled z does not lead towards "e@h" (the pair's coin, first_leads).
    assert!(first_leads("e@h", "z@h"));
    let copy = compat::encode_plain("e@h");
    let later = t0 + 5000 * MS;
    let ev = t
        .handle_datagram(&copy, addr(66), Via::Group, later)
        .unwrap();
    assert!(!ev.lead, "a libcluster heartbeat gets the usual tie-break");
    assert!(!ev.proven);
    // A native heartbeat of the name puts it right, and libcluster copies of a
    // name known natively are dropped even when the name set is not consulted.
    let ev = t
        .handle_datagram(&packet("e@h", None, 9, 0), addr(5), Via::Group, later)
        .unwrap();
    assert_eq!((ev.kind, ev.addr), (EventKind::Discovered, addr(5)));
    t.native_names.clear();
    let v = t.handle_datagram_verdict(&copy, addr(66), Via::Group, later);
    assert_eq!(v, Err(DropReason::LegacyNativeName));
    // Goodbyes of names never heard do not fill the native names: a genuine
    // libcluster node of such a name still gets in.
    let mut t = Engine::new(c, t0, 1, 1).unwrap();
    for i in 0..5000 {
        let mut e = Engine::new(config(&format!("lib{i}@h"), None), t0, 1, 1).unwrap();
        e.leave(0, t0);
        let bye = e.poll_transmit(t0, 0).unwrap().bytes;
        t.handle_datagram(&bye, addr(66), Via::Group, t0);
    }
    assert!(t.native_names.is_empty());
    let ev = t.handle_datagram(&compat::encode_plain("lib42@h"), addr(7), Via::Group, t0);
    assert_eq!(ev.unwrap().name, "lib42@h");
}

#[test]
fn the_pairs_coin_falls_alike_on_both_sides_and_spreads_the_leads() {
    // Fixed values (docs/PROTOCOL.md, "Connecting"), for other implementations:
    // SHA-256("a@h\0b@h") starts with an odd byte, so the larger name leads.
    assert!(!first_leads("a@h", "b@h") && first_leads("b@h", "a@h"));
    assert!(first_leads("y@h", "z@h") && !first_leads("z@h", "y@h"));
    // Names as a simultaneous start of 32 nodes has them (bench/formation.exs).
    let names: Vec<String> = (1..=32)
        .map(|i| format!("f{i}@198.51.100.{}", (i - 1) % 8 + 1))
        .collect();
    let mut leads = Vec::new();
    for a in &names {
        let mut n = 0;
        for b in names.iter().filter(|b| *b != a) {
            assert_ne!(first_leads(a, b), first_leads(b, a), "{a} {b}");
            n += usize::from(first_leads(a, b));
        }
        leads.push(n);
    }
    // By name order these would be 31, 30, ..., 0: one node would start every one of
    // its handshakes, the connecting side's work, and another none.
    assert!(leads.iter().all(|n| (8..=23).contains(n)), "{leads:?}");
    assert_eq!(leads.iter().sum::<usize>(), 32 * 31 / 2);
}
