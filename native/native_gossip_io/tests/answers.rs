//! Answers to a newcomer that takes them by unicast (`OPT_ANSWER`): a real topology
//! (its thread, its sockets) on loopback, and a newcomer made of plain UDP sockets
//! that sends signed JOINING heartbeats to the group. With a secret the member
//! answers at the newcomer's answer socket, by unicast; without one it never does
//! (the source of an unsigned heartbeat cannot be trusted: a forged answer port must
//! not turn members into reflectors). Run inside a private network namespace (`make
//! test`: test/support/private_net.sh), where loopback carries the group.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{joining, keys, member, sender, GROUP, LOOPBACK};
use native_gossip_core::{wire, Stats};
use native_gossip_io::Topology;

/// Three joining heartbeats of a newcomer (100 ms apart, as `MAX_ANSWERS` and
/// `ANSWER_SPACING` allow three answers), naming `answer_port` in `OPT_ANSWER`, sent
/// to the group from 127.0.0.1. Returns the datagrams its answer socket got within a
/// second, with their sources.
fn join(port: u16, secret: bool, name: &str) -> Vec<(Vec<u8>, SocketAddr)> {
    let answers = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    answers
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let answer_port = answers.local_addr().unwrap().port();
    let sender = sender();
    let mut options = wire::address_records(&[LOOPBACK.into()]);
    options.extend(wire::answer_port_record(answer_port));
    let keys = keys(secret);
    for sequence in 1..=3 {
        let bytes = joining(name, 7, sequence, &options, &keys);
        sender.send_to(&bytes, (GROUP, port)).unwrap();
        std::thread::sleep(Duration::from_millis(110));
    }
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        if let Ok((n, from)) = answers.recv_from(&mut buf) {
            got.push((buf[..n].to_vec(), from));
        }
    }
    got
}

#[test]
fn with_a_secret_members_answer_a_newcomer_by_unicast_at_its_answer_socket() {
    let port = 46_101;
    let member = member(port, true);
    let got = join(port, true, "newcomer@127.0.0.1");
    assert!(!got.is_empty(), "no answer reached the answer socket");
    let keys = keys(true);
    for (bytes, from) in &got {
        assert_eq!(from.ip(), LOOPBACK);
        let hb = wire::decode(bytes, &keys).expect("a signed heartbeat");
        assert_eq!(hb.name, format!("member{port}@127.0.0.1"));
        assert!(!hb.joining, "an answer never asks for answers");
    }
    let (stats, _) = member.stats();
    assert_eq!(
        stats.answers as usize,
        got.len(),
        "every answer went by unicast"
    );
    assert!(got.len() <= 3, "at most MAX_ANSWERS answers");
    // The member's own heartbeats name its answer socket too.
    member.stop(false);
}

#[test]
fn without_a_secret_an_answer_port_is_never_answered() {
    let port = 46_102;
    let member = member(port, false);
    let got = join(port, false, "forged@127.0.0.1");
    assert!(
        got.is_empty(),
        "a member answered an unsigned heartbeat by unicast: {got:?}"
    );
    // It answered the old way, on the group.
    let (stats, _) = member.stats();
    assert!(stats.answers >= 1, "no answer at all");
    member.stop(false);
}

/// A socket that hears the group on loopback beside the member (SO_REUSEPORT).
fn group_listener(port: u16) -> UdpSocket {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket
        .bind(&SockAddr::from(SocketAddr::from((GROUP, port))))
        .unwrap();
    socket.join_multicast_v4(&GROUP, &LOOPBACK).unwrap();
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    socket
}

/// The datagrams of `member` (by name) that `listener` hears until `until`.
fn heard_from(listener: &UdpSocket, member: &str, until: Instant) -> u64 {
    let mut buf = [0u8; 2048];
    let mut n_member = 0;
    while Instant::now() < until {
        if let Ok((n, _)) = listener.recv_from(&mut buf) {
            if wire::decode(&buf[..n], &keys(true)).is_ok_and(|hb| hb.name == member) {
                n_member += 1;
            }
        }
    }
    n_member
}

/// The member's stats, read twice 50 ms apart until it sent nothing in between (no
/// datagram of its own in flight at the reading), and the datagrams of it that
/// `listener` heard meanwhile, over every try.
fn quiet_stats(member: &Topology, listener: &UdpSocket, name: &str) -> (Stats, u64) {
    let mut heard = 0;
    loop {
        let (s1, _) = member.stats();
        heard += heard_from(listener, name, Instant::now() + Duration::from_millis(50));
        let (s2, _) = member.stats();
        if s1.sent == s2.sent {
            return (s2, heard);
        }
    }
}

#[test]
fn a_newcomer_without_an_answer_port_is_answered_on_the_group() {
    let port = 46_103;
    let member = member(port, true);
    let member_name = format!("member{port}@127.0.0.1");
    let listener = group_listener(port);
    let sender = sender();
    // The member sends on its own too (its joining burst, then every interval): the
    // count starts and ends at quiet readings of its stats (`quiet_stats`), so that
    // none is in flight at either edge.
    let (before, _) = quiet_stats(&member, &listener, &member_name);
    // An older node's heartbeats: no OPT_ANSWER.
    let options = wire::address_records(&[LOOPBACK.into()]);
    let mut from_member = 0;
    for sequence in 1..=3 {
        let bytes = joining("older@127.0.0.1", 9, sequence, &options, &keys(true));
        sender.send_to(&bytes, (GROUP, port)).unwrap();
        from_member += heard_from(
            &listener,
            &member_name,
            Instant::now() + Duration::from_millis(110),
        );
    }
    let (after, heard) = quiet_stats(&member, &listener, &member_name);
    from_member += heard;
    assert!(after.answers > before.answers, "no answer");
    // Every datagram the member sent meanwhile (its answers, and any heartbeat of its
    // own) went to the group.
    assert_eq!(from_member, after.sent - before.sent);
    member.stop(false);
}
