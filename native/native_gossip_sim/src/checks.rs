//! What the scenarios measure: who hears whom, and who is connected to whom.

use crate::sim::Sim;

impl Sim {
    /// Every up node hears every other up node.
    pub fn everyone_known(&self) -> bool {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up())
            .collect();
        // The cheap test first (a node that knows too few), then the exact one.
        if up.iter().any(|&i| self.nodes[i].known.len() + 1 < up.len()) {
            return false;
        }
        up.iter().all(|&i| {
            let n = &self.nodes[i];
            n.known.len() >= up.len() - 1 && up.iter().all(|&j| j == i || n.known.contains(&j))
        })
    }

    /// Node `j` hears every other up node, and every one of them hears `j`.
    pub fn known_both_ways(&self, j: usize) -> bool {
        (0..self.nodes.len()).all(|i| {
            i == j
                || !self.nodes[i].up()
                || (self.nodes[i].known.contains(&j) && self.nodes[j].known.contains(&i))
        })
    }

    /// Node `j` is connected to every other up node.
    pub fn connected_to_all(&self, j: usize) -> bool {
        (0..self.nodes.len())
            .all(|i| i == j || !self.nodes[i].up() || self.nodes[j].connected.contains(&i))
    }

    /// Every pair of up nodes is connected.
    pub fn mesh_full(&self) -> bool {
        let up = self.up_count();
        if self.edges < up * (up - 1) / 2 {
            return false;
        }
        let edges_up: usize = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up())
            .map(|i| {
                self.nodes[i]
                    .connected
                    .iter()
                    .filter(|&&j| self.nodes[j].up())
                    .count()
            })
            .sum();
        edges_up == up * (up - 1)
    }
}
