//! The joining burst's acknowledgements (`OPT_HEARD`): a burst that every peer has
//! heard stops, and one that a peer may still need goes on. Engines on a small
//! modelled network: every datagram arrives at once, unless a link drops it.

use super::*;
use crate::peers::{EventKind, PeerState};
use crate::wire::{decode, FLAG_JOINING};

const MS: Duration = Duration::from_millis(1);
const GROUP_PORT: u16 = 45892;

fn ip(i: usize) -> IpAddr {
    IpAddr::from([198, 51, 100, 1 + i as u8])
}

fn config(i: usize, secret: Option<&[u8]>) -> Config {
    Config {
        node_name: format!("n{i}@h"),
        keys: secret.map_or(Keyring::none(), |s| Keyring::new(vec![s.to_vec()])),
        heartbeat_interval: 1000 * MS,
        lost_after: 3000 * MS,
        forget_after: 10_000 * MS,
        max_peers: 100,
        own_addresses: vec![ip(i)],
        answer_port: 50_000 + i as u16,
        ..Config::default()
    }
}

/// Engines, each on its own address, and what each sent (ms from t0, flags, to the
/// group or not).
struct Net {
    t0: Instant,
    /// Each engine and when it starts (it hears nothing before).
    engines: Vec<Option<(Engine, Instant)>>,
    sent: Vec<Vec<(u128, u8, bool)>>,
    /// Whether a datagram from one engine to another is lost.
    lost: Box<dyn FnMut(usize, usize) -> bool>,
    /// The next millisecond (from t0) `run` handles.
    next_ms: u32,
}

impl Net {
    fn new(n: usize, lost: impl FnMut(usize, usize) -> bool + 'static) -> Net {
        Net {
            t0: Instant::now(),
            engines: (0..n).map(|_| None).collect(),
            sent: vec![Vec::new(); n],
            lost: Box::new(lost),
            next_ms: 0,
        }
    }

    fn start(&mut self, i: usize, at: Duration, secret: Option<&[u8]>) {
        let at = self.t0 + at;
        let engine = Engine::new(config(i, secret), at, 1000 + i as u64, i as u64);
        self.engines[i] = Some((engine.unwrap(), at));
    }

    fn engine(&self, i: usize) -> &Engine {
        &self.engines[i].as_ref().expect("started").0
    }

    fn engine_mut(&mut self, i: usize) -> &mut Engine {
        &mut self.engines[i].as_mut().expect("started").0
    }

    /// Runs every engine until `until` (ms from t0), 1 ms at a time, delivering every
    /// datagram at once.
    fn run(&mut self, until: u32) {
        for ms in self.next_ms..=until {
            self.next_ms = ms + 1;
            let now = self.t0 + ms * MS;
            for i in 0..self.engines.len() {
                let Some((e, _)) = self.engines[i].as_mut() else {
                    continue;
                };
                let mut out = Vec::new();
                while let Some(t) = e.poll_transmit(now, 0) {
                    out.push(t);
                }
                for t in out {
                    let group = t.to == Destination::Group;
                    self.sent[i].push((ms as u128, t.bytes[5], group));
                    self.deliver(i, &t, now);
                }
            }
        }
    }

    fn deliver(&mut self, from: usize, t: &Transmit, now: Instant) {
        let source = SocketAddr::new(ip(from), GROUP_PORT);
        for j in 0..self.engines.len() {
            let to_j = match t.to {
                Destination::Group => j != from,
                Destination::Unicast(a) => a.ip() == ip(j),
            };
            if !to_j || (self.lost)(from, j) {
                continue;
            }
            if let Some((e, started)) = self.engines[j].as_mut() {
                if now >= *started {
                    e.handle_datagram(&t.bytes, source, Via::Group, now);
                }
            }
        }
    }

    /// The joining heartbeats engine `i` sent to the group.
    fn joining(&self, i: usize) -> Vec<u128> {
        self.sent[i]
            .iter()
            .filter(|(_, flags, group)| *group && flags & FLAG_JOINING != 0)
            .map(|(ms, _, _)| *ms)
            .collect()
    }

    /// Every heartbeat engine `i` sent to the group.
    fn to_group(&self, i: usize) -> Vec<u128> {
        self.sent[i]
            .iter()
            .filter(|(_, _, group)| *group)
            .map(|(ms, _, _)| *ms)
            .collect()
    }

    fn knows_all(&self, i: usize) -> bool {
        let now = self.t0 + self.next_ms * MS;
        let members = self.engine(i).members(now, 0);
        members.len() == self.engines.len() - 1
            && members.iter().all(|m| m.state == PeerState::Alive)
    }
}

fn none_lost(_: usize, _: usize) -> bool {
    false
}

#[test]
fn a_burst_that_every_peer_has_heard_stops_even_for_nodes_that_started_later() {
    // Three nodes a few milliseconds apart: the later ones did not hear the earlier
    // ones' first heartbeats, and learn of them from their answers, which they
    // acknowledge in turn.
    let mut net = Net::new(3, none_lost);
    for i in 0..3 {
        net.start(i, i as u32 * 3 * MS, Some(b"k"));
    }
    net.run(1500);
    for i in 0..3 {
        // The first heartbeat, and the burst's at 20 ms: each node heard peers after
        // its first, and passes their count on (`OPT_PEERS`), asking no answers (not
        // JOINING). Then nothing: the other five of the burst, within the 1000 ms
        // interval, stay at home.
        let start = i as u128 * 3;
        assert_eq!(net.joining(i), [start], "node {i}: {:?}", net.sent[i]);
        assert_eq!(net.to_group(i), [start, start + 20]);
        assert_eq!(net.engine(i).stats().burst_skipped, 5);
        assert!(net.knows_all(i));
        assert_eq!(net.engine(i).stats().dropped_total(), 0);
    }
}

#[test]
fn nodes_that_a_peer_knows_and_that_have_not_heard_each_other_keep_their_bursts_going() {
    // Nothing gets through between nodes 0 and 2. Nodes 0 and 1 start together; node
    // 1's answer to node 0 says it holds one peer (node 0): true then. Node 2 starts 5
    // ms later; node 1's answer to it says two, and node 0 never answers it: node 2's
    // whole burst goes. Node 1 heard node 2 after its own first heartbeat, so its next
    // one goes too and tells node 0 that it holds two: node 0's burst goes on as well
    // (as under mere loss, where it gets through: see below).
    let mut net = Net::new(3, |a, b| (a, b) == (0, 2) || (a, b) == (2, 0));
    net.start(0, Duration::ZERO, Some(b"k"));
    net.start(1, Duration::ZERO, Some(b"k"));
    net.start(2, 5 * MS, Some(b"k"));
    net.run(1500);
    assert_eq!(net.joining(2), [5, 25, 45, 85, 165, 325, 645]);
    // (At 20 ms node 0 has not heard node 1's new count yet: that heartbeat only
    // passes its own on.)
    assert_eq!(net.joining(0), [0, 40, 80, 160, 320, 640]);
    assert_eq!(net.to_group(0), [0, 20, 40, 80, 160, 320, 640]);
    for i in [0, 2] {
        assert_eq!(net.engine(i).stats().burst_skipped, 0);
    }
}

#[test]
fn a_lost_first_heartbeat_is_made_up_for_by_the_burst_of_the_node_still_unheard() {
    // As above, but only node 2's first heartbeat to node 0 is lost: node 2 learns
    // from node 1's count that a peer has not acknowledged it, and its burst goes on;
    // its heartbeat at 25 ms reaches node 0, which answers it, node 2 acknowledges
    // that answer, and both bursts stop (node 0's heartbeats at 20 and 40 ms pass its
    // counts on, asking nothing).
    let mut dropped = false;
    let mut net = Net::new(3, move |a, b| {
        let first = (a, b) == (2, 0) && !dropped;
        dropped |= first;
        first
    });
    net.start(0, Duration::ZERO, Some(b"k"));
    net.start(1, Duration::ZERO, Some(b"k"));
    net.start(2, 5 * MS, Some(b"k"));
    net.run(30);
    for i in 0..3 {
        assert!(net.knows_all(i), "node {i} at 30 ms");
    }
    net.run(1500);
    assert_eq!(net.joining(2), [5, 25], "{:?}", net.sent[2]);
    assert_eq!(net.joining(0), [0], "{:?}", net.sent[0]);
    assert_eq!(net.to_group(0), [0, 20, 40]);
    assert_eq!(net.engine(2).stats().burst_skipped, 5);
    assert_eq!(net.engine(0).stats().burst_skipped, 4);
}

#[test]
fn without_a_secret_the_whole_burst_goes() {
    let mut net = Net::new(3, none_lost);
    for i in 0..3 {
        net.start(i, Duration::ZERO, None);
    }
    net.run(1500);
    for i in 0..3 {
        assert_eq!(net.engine(i).stats().burst_skipped, 0);
        assert_eq!(net.joining(i).len(), 7);
        assert!(net.knows_all(i));
    }
}

/// Engine `i` alone (with the secret), started at `t0`, incarnation 1000 + i.
fn engine(i: usize, t0: Instant) -> Engine {
    Engine::new(config(i, Some(b"k")), t0, 1000 + i as u64, i as u64).unwrap()
}

/// Where engine `i`'s datagrams come from.
fn source(i: usize) -> SocketAddr {
    SocketAddr::new(ip(i), GROUP_PORT)
}

#[test]
fn an_acknowledgement_overtaken_by_a_later_packet_still_counts_once() {
    let t0 = Instant::now();
    let (mut a, mut b) = (engine(0, t0), engine(1, t0));
    let (from_a, from_b) = (source(0), source(1));
    let first_b = b.poll_transmit(t0, 0).unwrap();
    a.handle_datagram(&first_b.bytes, from_b, Via::Group, t0);
    let first_a = a.poll_transmit(t0, 0).unwrap();
    b.handle_datagram(&first_a.bytes, from_a, Via::Group, t0);
    // b's answer to a: by unicast, acknowledging a's incarnation; held back.
    let at = b.next_deadline();
    let answer = b.poll_transmit(at, 0).unwrap();
    assert_eq!(
        answer.to,
        Destination::Unicast(SocketAddr::new(ip(0), 50_000))
    );
    let answer_hb = decode(&answer.bytes, &Keyring::new(vec![b"k".to_vec()])).unwrap();
    assert_eq!(
        (answer_hb.heard(), answer_hb.peers()),
        (Some(1000), Some(1))
    );
    // b's burst heartbeat at 20 ms reaches a first (on the group's socket).
    let later = b.poll_transmit(t0 + 20 * MS, 0).unwrap();
    assert_eq!(later.to, Destination::Group);
    a.handle_datagram(&later.bytes, from_b, Via::Group, t0 + 20 * MS);
    let accepted = a.stats().accepted;
    // Then the answer: older than that heartbeat, yet its acknowledgement is taken
    // (and nothing else of it).
    assert_eq!(
        a.handle_datagram_verdict(&answer.bytes, from_b, Via::Group, t0 + 20 * MS),
        Ok(None)
    );
    assert_eq!(a.stats().accepted, accepted + 1);
    // Every peer (b) has heard a: a's own burst heartbeat at 20 ms stays at home.
    // (a answers b's burst first: b's next heartbeat acknowledged nothing yet.)
    let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit(t0 + 20 * MS, 0)).collect();
    assert!(sent.iter().all(|t| t.to != Destination::Group), "{sent:?}");
    assert_eq!(a.stats().burst_skipped, 1);
    // The same answer again is a replay.
    assert_eq!(
        a.handle_datagram_verdict(&answer.bytes, from_b, Via::Group, t0 + 21 * MS),
        Err(DropReason::Replay)
    );
}

#[test]
fn an_acknowledgement_of_another_incarnation_does_not_count() {
    let t0 = Instant::now();
    let (mut a, mut b) = (engine(0, t0), engine(1, t0));
    let (from_a, from_b) = (source(0), source(1));
    // b heard an earlier incarnation of a (999) and answers that one.
    let mut old_a = Engine::new(config(0, Some(b"k")), t0, 999, 3).unwrap();
    let old = old_a.poll_transmit(t0, 0).unwrap();
    b.handle_datagram(&old.bytes, from_a, Via::Group, t0);
    let at = b.next_deadline();
    let answer = b.poll_transmit(at, 0).unwrap();
    a.poll_transmit(t0, 0).unwrap();
    a.handle_datagram(&answer.bytes, from_b, Via::Group, at);
    // a knows b, which has not heard a: a's burst goes on.
    assert_eq!(a.members(at, 0).len(), 1);
    let burst = a.poll_transmit(t0 + 20 * MS, 0).unwrap();
    assert_eq!(burst.bytes[5] & FLAG_JOINING, FLAG_JOINING);
    assert_eq!(a.stats().burst_skipped, 0);
}

#[test]
fn after_a_rejoin_the_burst_waits_for_new_acknowledgements() {
    let mut net = Net::new(3, none_lost);
    for i in 0..3 {
        net.start(i, Duration::ZERO, Some(b"k"));
    }
    net.run(1500);
    // Node 0 joins its group again (its socket had left it): a new burst, whose
    // heartbeats go until the others have answered it again.
    let at = net.t0 + 1600 * MS;
    net.engine_mut(0).restart_burst(at);
    assert!(!net.engine(0).heard_by_all());
    net.run(3000);
    let again: Vec<u128> = net
        .joining(0)
        .into_iter()
        .filter(|&ms| ms >= 1600)
        .collect();
    assert_eq!(again, [1600], "{:?}", net.sent[0]);
    // Five of the first burst (its 20 ms heartbeat passed the count on), all six of
    // the second.
    assert_eq!(net.engine(0).stats().burst_skipped, 11, "{:?}", net.sent[0]);
}

/// Engine `i`, started at `t0`, after its burst: it sent everything due until
/// `until`, and is a settled member from then on (`until` is past its first interval).
fn settled(i: usize, t0: Instant, until: Instant, secret: Option<&[u8]>) -> Engine {
    let mut e = Engine::new(config(i, secret), t0, 1000 + i as u64, i as u64).unwrap();
    let mut now = t0;
    while now < until {
        while e.poll_transmit(now, 0).is_some() {}
        now = e.next_deadline().max(now + MS);
    }
    e
}

/// The first contact of a settled `member` (engine 0) and a `newcomer` (engine 1),
/// both started at `late`: the member hears the newcomer's first heartbeat, the
/// newcomer the member's answer. Returns each side's event and the answer.
fn first_contact(
    member: &mut Engine,
    newcomer: &mut Engine,
    late: Instant,
) -> (PeerEvent, Transmit, PeerEvent) {
    let first = newcomer.poll_transmit(late, 0).unwrap();
    let on_member = member
        .handle_datagram(&first.bytes, source(1), Via::Group, late)
        .unwrap();
    let answer_at = member.next_deadline().max(late);
    let answer = member.poll_transmit(answer_at, 0).unwrap();
    let on_newcomer = newcomer
        .handle_datagram(&answer.bytes, source(0), Via::Group, answer_at)
        .unwrap();
    (on_member, answer, on_newcomer)
}

#[test]
fn with_a_secret_a_newcomer_leads_and_a_member_whose_answer_was_lost_takes_its_turn_when_asked_again(
) {
    let t0 = Instant::now();
    let late = t0 + 5000 * MS;
    let mut member = settled(0, t0, late - 10 * MS, Some(b"k"));
    let mut newcomer = engine(1, late);

    // The member gives the newcomer the first go; its answer goes at once, to the
    // newcomer alone (a small group); the newcomer leads: it connects as answers come.
    let (heard, answer, on_newcomer) = first_contact(&mut member, &mut newcomer, late);
    assert_eq!((heard.kind, heard.lead), (EventKind::Discovered, false));
    assert_eq!(
        answer.to,
        Destination::Unicast(SocketAddr::new(ip(1), 50_001))
    );
    assert_eq!(
        (on_newcomer.kind, on_newcomer.lead),
        (EventKind::Discovered, true)
    );

    // Had the answer been lost, the newcomer's next burst heartbeat would still ask
    // (JOINING): a newcomer that heard no one.
    let mut alone = engine(2, late);
    let first = alone.poll_transmit(late, 0).unwrap();
    let discovered = member
        .handle_datagram(&first.bytes, source(2), Via::Group, late)
        .unwrap();
    assert!(!discovered.lead);
    while member.poll_transmit(late, 0).is_some() {}
    let again = alone.poll_transmit(late + 20 * MS, 0).unwrap();
    assert_eq!(again.bytes[5] & FLAG_JOINING, FLAG_JOINING);
    // ... and the member takes its turn now: reported again, at once.
    let turn = member
        .handle_datagram(&again.bytes, source(2), Via::Group, late + 20 * MS)
        .expect("a report: the newcomer may not have heard this member");
    assert_eq!((turn.kind, turn.lead), (EventKind::Heard, false));
    // Not once connected: the newcomer's connect came.
    member.set_connected("n2@h", true, Some(ip(2)), late + 30 * MS);
    let third = alone.poll_transmit(late + 40 * MS, 0).unwrap();
    assert_eq!(third.bytes[5] & FLAG_JOINING, FLAG_JOINING);
    assert_eq!(
        member.handle_datagram(&third.bytes, source(2), Via::Group, late + 40 * MS),
        None
    );
}

#[test]
fn a_member_does_not_take_its_turn_before_its_answer_went() {
    // The member heard the newcomer's first heartbeat, but its answer is still due
    // when the next one comes: that one asks because the answer has not gone, not
    // because it was lost.
    let t0 = Instant::now();
    let late = t0 + 5000 * MS;
    let mut member = settled(0, t0, late - 10 * MS, Some(b"k"));
    let mut newcomer = engine(1, late);
    let first = newcomer.poll_transmit(late, 0).unwrap();
    member.handle_datagram(&first.bytes, source(1), Via::Group, late);
    let again = newcomer.poll_transmit(late + 20 * MS, 0).unwrap();
    assert_eq!(
        member.handle_datagram(&again.bytes, source(1), Via::Group, late + 20 * MS),
        None
    );
}

#[test]
fn without_a_secret_a_member_leads_towards_a_newcomer_and_its_burst_asks_nothing_more() {
    // Unsigned, a burst goes whole and cannot say who heard it: the member, which
    // heard the newcomer's first heartbeat, connects at once; the newcomer waits.
    let t0 = Instant::now();
    let late = t0 + 5000 * MS;
    let mut member = settled(0, t0, late - 10 * MS, None);
    let mut newcomer = Engine::new(config(1, None), late, 1001, 1).unwrap();
    let (heard, _, on_newcomer) = first_contact(&mut member, &mut newcomer, late);
    assert_eq!((heard.kind, heard.lead), (EventKind::Discovered, true));
    assert!(!on_newcomer.lead);
    let again = newcomer.poll_transmit(late + 20 * MS, 0).unwrap();
    assert_eq!(
        member.handle_datagram(&again.bytes, source(1), Via::Group, late + 20 * MS),
        None
    );
}

#[test]
fn in_a_group_larger_than_ack_peers_a_member_leads_towards_a_newcomer() {
    // A large group spreads its answers over a quarter millisecond a member: the
    // newcomer would connect as late as they come, so the members lead, as without a
    // secret.
    let t0 = Instant::now();
    let late = t0 + 5000 * MS;
    let mut member = settled(0, t0, late - 600 * MS, Some(b"k"));
    for k in 0..ACK_PEERS {
        let i = 2 + k;
        let mut other = Engine::new(
            config(i, Some(b"k")),
            late - 500 * MS,
            1000 + i as u64,
            i as u64,
        )
        .unwrap();
        let first = other.poll_transmit(late - 500 * MS, 0).unwrap();
        member.handle_datagram(&first.bytes, source(i), Via::Group, late - 500 * MS);
    }
    let mut now = late - 500 * MS;
    while now < late - 10 * MS {
        while member.poll_transmit(now, 0).is_some() {}
        now = member.next_deadline().max(now + MS);
    }
    let mut newcomer = engine(1, late);
    let (heard, answer, on_newcomer) = first_contact(&mut member, &mut newcomer, late);
    assert_eq!((heard.kind, heard.lead), (EventKind::Discovered, true));
    let keys = Keyring::new(vec![b"k".to_vec()]);
    assert_eq!(
        decode(&answer.bytes, &keys).unwrap().peers(),
        Some(ACK_PEERS as u32 + 1)
    );
    assert!(!on_newcomer.lead);
}

#[test]
fn a_newcomer_without_an_answer_socket_is_led_by_the_member() {
    // Its answers would come by multicast, spread over 20 ms and more (as from nodes
    // that predate OPT_ANSWER): the member, which heard its first heartbeat, leads.
    let t0 = Instant::now();
    let late = t0 + 5000 * MS;
    let mut member = settled(0, t0, late - 10 * MS, Some(b"k"));
    let config = Config {
        answer_port: 0,
        ..config(1, Some(b"k"))
    };
    let mut newcomer = Engine::new(config, late, 1001, 1).unwrap();
    let (heard, answer, on_newcomer) = first_contact(&mut member, &mut newcomer, late);
    assert_eq!((heard.kind, heard.lead), (EventKind::Discovered, true));
    assert_eq!(answer.to, Destination::Group);
    assert!(!on_newcomer.lead);
}
