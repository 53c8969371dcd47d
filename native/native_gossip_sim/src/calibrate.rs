//! The counts that bench/calibration.exs measures on real VMs, simulated: datagrams
//! received (from other nodes) and sent per member over a window, and answers sent,
//! for a formation (every node starting within `spread`) and for one join into a
//! settled cluster. The real run passes its own start spread and window, and the
//! simulator averages the same counts over several seeds.

use crate::net::LinkModel;
use crate::rng::Rng;
use crate::scenario::start_within;
use crate::sim::{Settings, Sim};

/// Per-member means over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Datagrams received from other nodes (a node's own multicast, looped back, is
    /// not counted: the real node's `received - looped_back`).
    pub received: f64,
    pub sent: f64,
    /// Heartbeats sent off schedule to answer a joining node (`stats.answers`).
    pub answers: f64,
}

/// One node's totals so far: received, sent, answers.
fn totals(sim: &Sim, i: usize) -> [f64; 3] {
    let n = &sim.nodes[i];
    let answers = n.engine.as_ref().map_or(0, |e| e.stats().answers);
    [
        n.counters.received as f64,
        n.counters.sent as f64,
        answers as f64,
    ]
}

fn mean(before: &[[f64; 3]], after: &[[f64; 3]]) -> Counts {
    let m = before.len().max(1) as f64;
    let sum = |k: usize| -> f64 { before.iter().zip(after).map(|(b, a)| a[k] - b[k]).sum() };
    Counts {
        received: sum(0) / m,
        sent: sum(1) / m,
        answers: sum(2) / m,
    }
}

/// Node i starts at `at[i]` µs.
fn start_at(sim: &mut Sim, at: &[u64]) {
    let mut times: Vec<(u64, usize)> = at.iter().copied().zip(0..).collect();
    times.sort();
    for (t, i) in times {
        sim.run_until(t);
        sim.start(i);
    }
}

fn average(runs: &[Counts]) -> Counts {
    let k = runs.len().max(1) as f64;
    Counts {
        received: runs.iter().map(|c| c.received).sum::<f64>() / k,
        sent: runs.iter().map(|c| c.sent).sum::<f64>() / k,
        answers: runs.iter().map(|c| c.answers).sum::<f64>() / k,
    }
}

/// `n` nodes start within `spread_us`, or at `starts` (µs from the first start, one per
/// node: the real run's own start times, so that the simulated nodes start in the same
/// order and gaps); counts per member from the first start until `window_us` later,
/// averaged over `seeds` runs.
pub fn formation(
    n: usize,
    settings: &Settings,
    starts: Option<&[u64]>,
    spread_us: u64,
    window_us: u64,
    seeds: u64,
) -> Counts {
    let runs: Vec<Counts> = (1..=seeds)
        .map(|seed| {
            let mut sim = Sim::new(n, LinkModel::default(), settings.clone(), seed);
            let mut rng = Rng::new(seed);
            let all: Vec<usize> = (0..n).collect();
            match starts {
                Some(at) => start_at(&mut sim, at),
                None => start_within(&mut sim, &all, 0, spread_us, &mut rng),
            }
            sim.run_until(window_us);
            let after: Vec<[f64; 3]> = all.iter().map(|&i| totals(&sim, i)).collect();
            mean(&vec![[0.0; 3]; n], &after)
        })
        .collect();
    average(&runs)
}

/// `n - 1` nodes start within `spread_us` and settle for `settle_us`; then one more
/// starts. Counts over the `window_us` after its start: the members' means, and the
/// newcomer's own. Averaged over `seeds` runs.
pub fn join(
    n: usize,
    settings: &Settings,
    spread_us: u64,
    settle_us: u64,
    window_us: u64,
    seeds: u64,
) -> (Counts, Counts) {
    let runs: Vec<(Counts, Counts)> = (1..=seeds)
        .map(|seed| join_once(n, settings, spread_us, settle_us, window_us, seed))
        .collect();
    let members: Vec<Counts> = runs.iter().map(|r| r.0).collect();
    let newcomer: Vec<Counts> = runs.iter().map(|r| r.1).collect();
    (average(&members), average(&newcomer))
}

fn join_once(
    n: usize,
    settings: &Settings,
    spread_us: u64,
    settle_us: u64,
    window_us: u64,
    seed: u64,
) -> (Counts, Counts) {
    let mut sim = Sim::new(n, LinkModel::default(), settings.clone(), seed);
    let mut rng = Rng::new(seed);
    let members: Vec<usize> = (0..n - 1).collect();
    start_within(&mut sim, &members, 0, spread_us, &mut rng);
    let t0 = spread_us + settle_us;
    sim.run_until(t0);
    let before: Vec<[f64; 3]> = members.iter().map(|&i| totals(&sim, i)).collect();
    sim.start(n - 1);
    sim.run_until(t0 + window_us);
    let after: Vec<[f64; 3]> = members.iter().map(|&i| totals(&sim, i)).collect();
    let newcomer = mean(&[[0.0; 3]], &[totals(&sim, n - 1)]);
    (mean(&before, &after), newcomer)
}
