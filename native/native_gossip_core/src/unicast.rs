//! Unicast destinations that were not configured: peers first heard by unicast (which
//! may not have this node among their seeds), and the one answer a sender just
//! discovered that way gets. Seeds are the operator's and are not kept here.
//!
//! Such an address comes from a datagram's source, which anyone can forge. So that no
//! node can be used to reflect traffic at a third party:
//! - destinations are kept by address, at most `MAX_NAMES_PER_ADDR` names each, and a
//!   heartbeat goes once to each address whatever the names heard from it;
//! - towards an address that has not proven itself, a node sends no more bytes than
//!   it received from it: each datagram received from the address adds its length to a
//!   credit (at most `MAX_CREDIT` bytes, and gone after `CREDIT_TTL` without a datagram),
//!   and each datagram sent there spends its length; without enough credit it is not
//!   sent. An address proves itself by a heartbeat authenticated with the secret and
//!   bound to its source, or by carrying a distribution connection (`prove`).
//!
//! So a spoofed datagram gets at most its own size back, and a flood of them at most
//! the flood's bytes, never more.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Most addresses learned (each sent every heartbeat while its peers live).
pub const MAX_LEARNED: usize = 1024;
/// Most names kept for one learned address (several nodes may share a host and port,
/// but unicast reaches one of them anyway).
pub const MAX_NAMES_PER_ADDR: usize = 4;
/// Most bytes of credit an unproven address can hold: two of the largest datagrams.
pub const MAX_CREDIT: usize = 2 * crate::wire::MAX_PACKET;
/// Credit not renewed by a datagram from the address for this long is gone.
pub const CREDIT_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Dest {
    names: Vec<String>,
    proven: bool,
    credit: Credit,
}

#[derive(Debug, Clone, Copy)]
struct Credit {
    bytes: usize,
    at: Instant,
}

impl Credit {
    fn add(&mut self, bytes: usize, now: Instant) {
        self.renew(now);
        self.bytes = (self.bytes + bytes).min(MAX_CREDIT);
        self.at = now;
    }

    fn renew(&mut self, now: Instant) {
        if now.saturating_duration_since(self.at) >= CREDIT_TTL {
            self.bytes = 0;
        }
    }

    fn spend(&mut self, bytes: usize, now: Instant) -> bool {
        self.renew(now);
        if self.bytes >= bytes {
            self.bytes -= bytes;
            true
        } else {
            false
        }
    }
}

/// The learned destinations and their credits.
#[derive(Debug, Default)]
pub struct Learned {
    by_name: HashMap<String, SocketAddr>,
    by_addr: HashMap<SocketAddr, Dest>,
    /// Answers due (each address once), with the credit the datagram that caused it
    /// gave when the address is not learned.
    answers: Vec<(SocketAddr, bool, Credit)>,
    /// Datagrams not sent for lack of credit.
    withheld: u64,
}

impl Learned {
    /// A datagram of `len` bytes came by unicast from `from`: credit for answering it.
    pub fn received(&mut self, from: SocketAddr, len: usize, now: Instant) {
        if let Some(d) = self.by_addr.get_mut(&from) {
            d.credit.add(len, now);
        }
    }

    /// `name` was heard by unicast from `addr` (in a datagram of `len` bytes, already
    /// credited if the address was known); `proven` as `PeerEvent::proven`.
    pub fn learn(&mut self, name: &str, addr: SocketAddr, proven: bool, len: usize, now: Instant) {
        if self.by_name.get(name) == Some(&addr) {
            if proven {
                self.by_addr.get_mut(&addr).expect("kept together").proven = true;
            }
            return;
        }
        if let Some(d) = self.by_addr.get_mut(&addr) {
            if d.names.len() >= MAX_NAMES_PER_ADDR {
                return;
            }
            self.forget(name);
            let d = self.by_addr.get_mut(&addr).expect("still there");
            d.names.push(name.to_owned());
            d.proven |= proven;
        } else {
            self.forget(name);
            if self.by_addr.len() >= MAX_LEARNED {
                return;
            }
            self.by_addr.insert(
                addr,
                Dest {
                    names: vec![name.to_owned()],
                    proven,
                    credit: Credit {
                        bytes: len.min(MAX_CREDIT),
                        at: now,
                    },
                },
            );
        }
        self.by_name.insert(name.to_owned(), addr);
    }

    /// `name` is no longer sent heartbeats (lost, left, forgotten).
    pub fn forget(&mut self, name: &str) {
        if let Some(addr) = self.by_name.remove(name) {
            if let Some(d) = self.by_addr.get_mut(&addr) {
                d.names.retain(|n| n != name);
                if d.names.is_empty() {
                    self.by_addr.remove(&addr);
                }
            }
        }
    }

    /// A distribution connection with `name` ran over `ip`: if that is the address the
    /// name was learned from, it is proven (no credit needed any more).
    pub fn prove(&mut self, name: &str, ip: IpAddr) {
        if let Some(addr) = self.by_name.get(name) {
            if addr.ip() == ip {
                self.by_addr.get_mut(addr).expect("kept together").proven = true;
            }
        }
    }

    /// Asks for one heartbeat to `to` at once (a sender just discovered), unless one is
    /// due there already; the datagram that caused it (`len` bytes) is its credit when
    /// `to` is not learned.
    pub fn answer(&mut self, to: SocketAddr, proven: bool, len: usize, now: Instant) {
        if self.answers.iter().any(|(a, _, _)| *a == to) {
            return;
        }
        self.answers.push((
            to,
            proven,
            Credit {
                bytes: len.min(MAX_CREDIT),
                at: now,
            },
        ));
    }

    pub fn has_answers(&self) -> bool {
        !self.answers.is_empty()
    }

    /// The answers that may go now, a datagram of `len` bytes each.
    pub fn take_answers(&mut self, len: usize, now: Instant) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (to, proven, mut credit) in std::mem::take(&mut self.answers) {
            let ok = proven
                || match self.by_addr.get_mut(&to) {
                    Some(d) => d.proven || d.credit.spend(len, now),
                    None => credit.spend(len, now),
                };
            if ok {
                out.push(to);
            } else {
                self.withheld += 1;
            }
        }
        out
    }

    /// The learned addresses a heartbeat of `len` bytes goes to now (each once; not
    /// those in `skip`, the seeds), spending the credit of unproven ones.
    pub fn destinations(
        &mut self,
        skip: &[SocketAddr],
        len: usize,
        now: Instant,
    ) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (addr, d) in self.by_addr.iter_mut() {
            if skip.contains(addr) {
                continue;
            }
            if d.proven || d.credit.spend(len, now) {
                out.push(*addr);
            } else {
                self.withheld += 1;
            }
        }
        out
    }

    /// Datagrams not sent to an unproven address for lack of credit.
    pub fn withheld(&self) -> u64 {
        self.withheld
    }

    /// Names learned.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Addresses learned.
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, i], 45892))
    }

    #[test]
    fn an_address_heard_under_many_names_is_one_destination_holding_at_most_a_few_names() {
        let now = Instant::now();
        let mut l = Learned::default();
        for i in 0..2000 {
            l.learn(&format!("n{i}@h"), addr(9), true, 100, now);
        }
        assert_eq!(l.addresses(), 1);
        assert_eq!(l.len(), MAX_NAMES_PER_ADDR);
        assert_eq!(l.destinations(&[], 100, now), vec![addr(9)]);
    }

    #[test]
    fn an_unproven_address_gets_no_more_bytes_than_it_sent() {
        let t0 = Instant::now();
        let mut l = Learned::default();
        l.learn("a@h", addr(2), false, 50, t0);
        // Our heartbeat is 120 bytes, theirs 50: one of ours per two and a half of theirs.
        let mut sent = 0;
        let mut received = 50;
        for i in 1..=100u32 {
            let now = t0 + Duration::from_millis(100 * i as u64);
            sent += 120 * l.destinations(&[], 120, now).len();
            l.received(addr(2), 50, now);
            received += 50;
        }
        assert!(sent <= received, "sent {sent}, received {received}");
        assert!(
            sent >= received - 2 * 120,
            "sent {sent}, received {received}"
        );
        assert!(l.withheld() > 0);
    }

    #[test]
    fn credit_expires_and_is_capped() {
        let t0 = Instant::now();
        let mut l = Learned::default();
        l.learn("a@h", addr(2), false, 50, t0);
        for _ in 0..1000 {
            l.received(addr(2), 1000, t0);
        }
        let sends = (0..100)
            .filter(|_| !l.destinations(&[], 1000, t0).is_empty())
            .count();
        assert_eq!(sends, MAX_CREDIT / 1000);
        l.received(addr(2), 1000, t0);
        assert!(l.destinations(&[], 1000, t0 + CREDIT_TTL).is_empty());
    }

    #[test]
    fn a_proven_address_is_sent_without_credit_and_answers_are_once_per_address() {
        let now = Instant::now();
        let mut l = Learned::default();
        l.learn("a@h", addr(2), false, 10, now);
        assert!(l.destinations(&[], 100, now).is_empty());
        l.prove("a@h", addr(2).ip());
        assert_eq!(l.destinations(&[], 100, now), vec![addr(2)]);
        for _ in 0..10 {
            l.answer(addr(3), false, 60, now);
        }
        assert!(l.take_answers(61, now).is_empty());
        for _ in 0..10 {
            l.answer(addr(3), false, 60, now);
        }
        assert_eq!(l.take_answers(60, now), vec![addr(3)]);
        assert!(!l.has_answers());
    }

    #[test]
    fn seeds_are_skipped_and_forgetting_the_last_name_drops_the_address() {
        let now = Instant::now();
        let mut l = Learned::default();
        l.learn("a@h", addr(2), true, 10, now);
        l.learn("b@h", addr(2), true, 10, now);
        assert!(l.destinations(&[addr(2)], 10, now).is_empty());
        l.forget("a@h");
        assert_eq!(l.addresses(), 1);
        l.forget("b@h");
        assert_eq!(l.addresses(), 0);
        // A name that moves leaves its old address.
        l.learn("a@h", addr(2), true, 10, now);
        l.learn("a@h", addr(3), true, 10, now);
        assert_eq!(l.destinations(&[], 10, now), vec![addr(3)]);
    }
}
