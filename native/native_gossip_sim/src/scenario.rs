//! The scenarios of docs/BENCHMARKS.md "Scale: the simulator", each a function of the
//! cluster size and a seed that returns a `Report`.

use crate::net::LinkModel;
use crate::rng::Rng;
use crate::sim::{Settings, Sim};

const S: u64 = 1_000_000;
/// How often convergence is checked (µs): the resolution of the times reported.
const CHECK_EVERY: u64 = 5_000;

/// What one run of a scenario measured. Times in ms; `None`: not within the run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub scenario: String,
    pub n: usize,
    /// Until every up node hears every other, from the scenario's reference instant.
    pub know_all_ms: Option<f64>,
    /// Until every pair of up nodes is connected (the modelled BEAM mesh).
    pub mesh_ms: Option<f64>,
    /// Datagrams each member received per heartbeat interval over the run: mean, max.
    pub received_per_interval: (f64, f64),
    /// Datagrams each member sent per interval (mean).
    pub sent_per_interval: f64,
    /// The most datagrams any member received in one second of the run.
    pub worst_second: u32,
    /// For a join: datagrams each member received because of it (the newcomer's and
    /// the answers to it), mean and max over the members, and answers sent (mean).
    pub join_receipts: Option<(f64, f64)>,
    pub join_answers: Option<f64>,
    /// Events each member's owner got (mean).
    pub events_per_member: f64,
    /// `:lost` published for a peer that was up and reachable, over all members.
    pub false_lost: u64,
    /// The engines' reports of silence from a peer that was up and reachable (each a
    /// `:suspect` for a connected peer), over all members.
    pub false_silences: u64,
}

/// Starts `nodes` at random moments within `spread` µs from `from`.
pub(crate) fn start_within(sim: &mut Sim, nodes: &[usize], from: u64, spread: u64, rng: &mut Rng) {
    let mut times: Vec<(u64, usize)> = nodes
        .iter()
        .map(|&i| (from + rng.below(spread + 1), i))
        .collect();
    times.sort();
    for (t, i) in times {
        sim.run_until(t);
        sim.start(i);
    }
}

fn interval_us(sim: &Sim) -> u64 {
    sim.settings.heartbeat_interval.as_micros() as u64
}

fn ms(t: Option<u64>, from: u64) -> Option<f64> {
    t.map(|t| t.saturating_sub(from) as f64 / 1000.0)
}

/// Fills the counters' part of a report over [0, until).
fn totals(sim: &Sim, name: &str, members: &[usize], until: u64) -> Report {
    let intervals = until as f64 / interval_us(sim) as f64;
    let m = members.len().max(1) as f64;
    let received: Vec<f64> = members
        .iter()
        .map(|&i| sim.nodes[i].counters.received as f64 / intervals)
        .collect();
    Report {
        scenario: name.into(),
        n: sim.nodes.len(),
        received_per_interval: (
            received.iter().sum::<f64>() / m,
            received.iter().cloned().fold(0.0, f64::max),
        ),
        sent_per_interval: members
            .iter()
            .map(|&i| sim.nodes[i].counters.sent as f64)
            .sum::<f64>()
            / m
            / intervals,
        worst_second: members
            .iter()
            .flat_map(|&i| sim.nodes[i].counters.per_second.iter().copied())
            .max()
            .unwrap_or(0),
        events_per_member: members
            .iter()
            .map(|&i| sim.nodes[i].counters.events as f64)
            .sum::<f64>()
            / m,
        false_lost: members
            .iter()
            .map(|&i| sim.nodes[i].counters.false_lost)
            .sum(),
        false_silences: members
            .iter()
            .map(|&i| sim.nodes[i].counters.false_silences)
            .sum(),
        ..Report::default()
    }
}

/// One node joins a settled cluster of n - 1 (started within 1 s, 10 s earlier): what
/// the join costs each member over the two intervals after it. Times: until the
/// newcomer and every member hear each other, and until it is connected to all.
pub fn join(n: usize, seed: u64, settings: &Settings) -> Report {
    join_with(n, seed, settings, LinkModel::default())
}

/// As `join`, over a network with this link model (loss, for one).
pub fn join_with(n: usize, seed: u64, settings: &Settings, link: LinkModel) -> Report {
    let mut sim = Sim::new(n, link, settings.clone(), seed);
    let mut rng = Rng::new(seed);
    let members: Vec<usize> = (0..n - 1).collect();
    start_within(&mut sim, &members, 0, S, &mut rng);
    let t0 = 10 * S;
    sim.run_until(t0);
    let end = t0 + 2 * interval_us(&sim);
    sim.joiner = Some(n - 1);
    sim.window = Some((t0, end));
    sim.start(n - 1);
    let j = n - 1;
    let (know, mesh) = sim.run_watching(
        end,
        CHECK_EVERY,
        |s| s.known_both_ways(j),
        |s| s.connected_to_all(j),
    );
    let mut r = totals(&sim, "join", &members, end);
    r.know_all_ms = ms(know, t0);
    r.mesh_ms = ms(mesh, t0);
    let m = members.len() as f64;
    let receipts: Vec<f64> = members
        .iter()
        .map(|&i| sim.nodes[i].counters.join_receipts as f64)
        .collect();
    r.join_receipts = Some((
        receipts.iter().sum::<f64>() / m,
        receipts.iter().cloned().fold(0.0, f64::max),
    ));
    r.join_answers = Some(
        members
            .iter()
            .map(|&i| sim.nodes[i].counters.join_answers as f64)
            .sum::<f64>()
            / m,
    );
    r
}

/// All n nodes start within 1 s (a full restart, or a first deploy); 10 s measured.
pub fn start_all(n: usize, seed: u64, settings: &Settings) -> Report {
    start_all_with(n, seed, settings, LinkModel::default(), "start_all", 10 * S)
}

/// All n nodes start within `spread_us` (a handful of milliseconds: bench/formation.exs
/// starts its VMs at one instant), 2 s measured; times checked every 0.5 ms, from the
/// first start.
pub fn together(n: usize, seed: u64, settings: &Settings, spread_us: u64) -> Report {
    together_with(n, seed, settings, spread_us, LinkModel::default())
}

/// `together` over `link` (loss, for one).
pub fn together_with(
    n: usize,
    seed: u64,
    settings: &Settings,
    spread_us: u64,
    link: LinkModel,
) -> Report {
    let mut sim = Sim::new(n, link, settings.clone(), seed);
    let mut rng = Rng::new(seed);
    let all: Vec<usize> = (0..n).collect();
    start_within(&mut sim, &all, 0, spread_us, &mut rng);
    let until = 2 * S;
    let (know, mesh) = sim.run_watching(until, 500, Sim::everyone_known, Sim::mesh_full);
    let mut r = totals(&sim, "together", &all, until);
    r.know_all_ms = ms(know, 0);
    r.mesh_ms = ms(mesh, 0);
    r
}

/// As `start_all` with `loss` of the datagrams lost, over 60 s (false `lost` counted).
pub fn lossy(n: usize, seed: u64, settings: &Settings, loss: f64) -> Report {
    let link = LinkModel {
        loss,
        ..LinkModel::default()
    };
    let name = format!("loss_{}", (loss * 100.0).round());
    start_all_with(n, seed, settings, link, &name, 60 * S)
}

fn start_all_with(
    n: usize,
    seed: u64,
    settings: &Settings,
    link: LinkModel,
    name: &str,
    until: u64,
) -> Report {
    let mut sim = Sim::new(n, link, settings.clone(), seed);
    let mut rng = Rng::new(seed);
    let all: Vec<usize> = (0..n).collect();
    start_within(&mut sim, &all, 0, S, &mut rng);
    let (know, mesh) = sim.run_watching(until, CHECK_EVERY, Sim::everyone_known, Sim::mesh_full);
    let mut r = totals(&sim, name, &all, until);
    r.know_all_ms = ms(know, 0);
    r.mesh_ms = ms(mesh, 0);
    r
}

/// A rolling restart: after 10 s, `restarts` nodes one after another, each stopped
/// cleanly and started again 1 s later, 2 s apart; measured until the mesh is full
/// again after the last start (from that start), and over the whole run.
pub fn rolling(n: usize, seed: u64, settings: &Settings, restarts: usize) -> Report {
    let mut sim = Sim::new(n, LinkModel::default(), settings.clone(), seed);
    let mut rng = Rng::new(seed);
    let all: Vec<usize> = (0..n).collect();
    start_within(&mut sim, &all, 0, S, &mut rng);
    let mut last = 0;
    for k in 0..restarts.min(n) {
        let down = 10 * S + 2 * S * k as u64;
        sim.run_until(down);
        sim.stop(k, true);
        sim.run_until(down + S);
        sim.start(k);
        last = down + S;
    }
    let until = last + 10 * S;
    let (know, mesh) = sim.run_watching(until, CHECK_EVERY, Sim::everyone_known, Sim::mesh_full);
    let mut r = totals(&sim, "rolling", &all, until);
    r.know_all_ms = ms(know, last);
    r.mesh_ms = ms(mesh, last);
    r
}

/// Half the nodes cut off from the other half (both ways) for 30 s after 10 s of
/// calm; times from the heal.
pub fn partition(n: usize, seed: u64, settings: &Settings) -> Report {
    let mut sim = Sim::new(n, LinkModel::default(), settings.clone(), seed);
    let mut rng = Rng::new(seed);
    let all: Vec<usize> = (0..n).collect();
    start_within(&mut sim, &all, 0, S, &mut rng);
    sim.run_until(10 * S);
    let (a, b) = all.split_at(n / 2);
    sim.net.cut(a, b);
    sim.net.cut(b, a);
    sim.run_until(40 * S);
    sim.net.heal();
    let until = 60 * S;
    let (know, mesh) = sim.run_watching(until, CHECK_EVERY, Sim::everyone_known, Sim::mesh_full);
    let mut r = totals(&sim, "partition", &all, until);
    r.know_all_ms = ms(know, 40 * S);
    r.mesh_ms = ms(mesh, 40 * S);
    r
}
