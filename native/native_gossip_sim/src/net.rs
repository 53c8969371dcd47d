//! The network between simulated nodes: per-datagram latency drawn from a
//! distribution, loss, duplication, reordering (latencies differ, so datagrams
//! overtake each other), and partitions, one-way or both ways.

use std::collections::HashSet;

use crate::rng::Rng;

/// How datagrams travel between two distinct nodes (a node's own multicast comes back
/// to it at once and is never lost, as the kernel loops it back).
#[derive(Debug, Clone)]
pub struct LinkModel {
    /// Every datagram takes at least this long (µs).
    pub latency_min_us: u64,
    /// Plus a uniform part up to this (µs): datagrams sent close together may be
    /// reordered.
    pub latency_spread_us: u64,
    /// A few datagrams (this share) are slower: up to `tail_us` more.
    pub tail_share: f64,
    pub tail_us: u64,
    /// Share of datagrams lost.
    pub loss: f64,
    /// Share of datagrams delivered twice.
    pub duplicate: f64,
}

impl Default for LinkModel {
    /// A switched LAN: 100–300 µs, 1 % of datagrams up to 5 ms late, no loss.
    fn default() -> Self {
        LinkModel {
            latency_min_us: 100,
            latency_spread_us: 200,
            tail_share: 0.01,
            tail_us: 5_000,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// The network's state: the link model and which directions are cut.
#[derive(Debug)]
pub struct Network {
    pub link: LinkModel,
    /// (from, to) pairs whose datagrams (and connections) do not get through.
    cut: HashSet<(usize, usize)>,
    rng: Rng,
}

impl Network {
    pub fn new(link: LinkModel, seed: u64) -> Self {
        Network {
            link,
            cut: HashSet::new(),
            rng: Rng::new(seed),
        }
    }

    /// Cuts every direction from a node of `from` to a node of `to` (call twice, the
    /// other way round too, for a two-way partition).
    pub fn cut(&mut self, from: &[usize], to: &[usize]) {
        for &a in from {
            for &b in to {
                self.cut.insert((a, b));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn passes(&self, from: usize, to: usize) -> bool {
        from == to || !self.cut.contains(&(from, to))
    }

    /// Both directions pass: a TCP connection can be made.
    pub fn connectable(&self, a: usize, b: usize) -> bool {
        self.passes(a, b) && self.passes(b, a)
    }

    /// One-way delay of a datagram or a handshake step (µs).
    pub fn latency_us(&mut self) -> u64 {
        let l = &self.link;
        let mut d = l.latency_min_us + self.rng.below(l.latency_spread_us + 1);
        if self.rng.chance(l.tail_share) {
            d += self.rng.below(l.tail_us + 1);
        }
        d
    }

    /// The delivery delays (µs) of one datagram from `from` to `to`: none when it is
    /// lost or cut, two when duplicated.
    pub fn deliveries(&mut self, from: usize, to: usize, out: &mut Vec<u64>) {
        out.clear();
        if from == to {
            out.push(0);
            return;
        }
        if !self.passes(from, to) || self.rng.chance(self.link.loss) {
            return;
        }
        out.push(self.latency_us());
        if self.rng.chance(self.link.duplicate) {
            out.push(self.latency_us());
        }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}
