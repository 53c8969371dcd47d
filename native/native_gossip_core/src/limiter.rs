//! Admission of new peers from unauthenticated heartbeats: a token bucket per source
//! address.
//!
//! Without a secret, anyone on the network can announce any name, and each new name
//! becomes an atom and a connect attempt on the BEAM side. The rate of new names is
//! therefore bounded per sending address: a flood of made-up names from one host
//! drains only that host's bucket, while a legitimate node on another host is
//! admitted at once. Known peers never spend tokens.
//!
//! At most `MAX_SOURCES` buckets are kept. When a new source finds them all in use, the
//! least recently used quarter is dropped, so a sender that spends the buckets of
//! thousands of forged addresses cannot lock a new host out: the newcomer always gets a
//! bucket. (Such a sender gets fresh buckets too as its addresses come back; what
//! bounds it then is the table and `max_names`. A secret is the real defence.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Most source addresses tracked at once; beyond it, the least recently used quarter
/// is dropped to make room.
pub const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-source token buckets: `rate` new names per second, bursts of `burst`.
#[derive(Debug)]
pub struct NewPeerLimiter {
    rate: f64,
    burst: f64,
    sources: HashMap<IpAddr, Bucket>,
}

impl NewPeerLimiter {
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        NewPeerLimiter {
            rate: rate_per_second as f64,
            burst: burst.max(1) as f64,
            sources: HashMap::new(),
        }
    }

    /// Whether a new name from `source` may be admitted now (spends a token if so).
    pub fn admit(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_SOURCES {
            self.forget_idle(now);
            if self.sources.len() >= MAX_SOURCES {
                self.forget_least_recent(MAX_SOURCES / 4);
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self.sources.entry(source).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops buckets that have refilled completely: they hold no information.
    pub fn forget_idle(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.sources.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
    }

    /// Drops the `n` buckets used longest ago (amortised: one pass per `n` new sources).
    fn forget_least_recent(&mut self, n: usize) {
        let mut times: Vec<Instant> = self.sources.values().map(|b| b.at).collect();
        if n == 0 || times.len() <= n {
            self.sources.clear();
            return;
        }
        let (_, &mut cut, _) = times.select_nth_unstable(n - 1);
        let mut dropped = 0;
        self.sources.retain(|_, b| {
            let drop = b.at <= cut && dropped < n;
            dropped += drop as usize;
            !drop
        });
    }

    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    #[test]
    fn bursts_then_the_rate_per_source() {
        let mut l = NewPeerLimiter::new(10, 5);
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| l.admit(ip(1), t0)).count();
        assert_eq!(admitted, 5);
        // Another source is not affected by the first one's flood.
        assert!(l.admit(ip(2), t0));
        // One second later: ten more from the flooding source.
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..100).filter(|_| l.admit(ip(1), t1)).count();
        assert_eq!(admitted, 5, "capped at the burst size");
        let t2 = t1 + Duration::from_millis(300);
        let admitted = (0..100).filter(|_| l.admit(ip(1), t2)).count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn the_number_of_sources_is_bounded_and_idle_ones_are_forgotten() {
        let mut l = NewPeerLimiter::new(1, 2);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES {
            let a = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            assert!(l.admit(a, t0));
        }
        assert_eq!(l.sources(), MAX_SOURCES);
        // Once they have refilled they are forgotten.
        let later = t0 + Duration::from_secs(2);
        assert!(l.admit(ip(9), later));
        assert_eq!(l.sources(), 1);
    }

    #[test]
    fn sources_that_spent_their_burst_do_not_lock_a_new_one_out() {
        // 4096 forged sources spend their burst and keep spending it.
        let mut l = NewPeerLimiter::new(1, 2);
        let t0 = Instant::now();
        let forged = |i: usize| IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        for round in 0..3u64 {
            let t = t0 + Duration::from_millis(round);
            for i in 0..MAX_SOURCES {
                l.admit(forged(i), t);
            }
        }
        let busiest = forged(MAX_SOURCES - 1);
        l.admit(busiest, t0 + Duration::from_millis(5));
        assert_eq!(l.sources(), MAX_SOURCES);
        // A real newcomer on another host is admitted at once, and the table stays bounded.
        let t = t0 + Duration::from_millis(10);
        assert!(l.admit(ip(9), t));
        assert!(l.sources() <= MAX_SOURCES);
        // The source used most recently keeps its (empty) bucket.
        assert!(!l.admit(busiest, t));
    }
}
