//! Admission of new peers from unauthenticated heartbeats: a token bucket per source
//! address.
//!
//! Without a secret, anyone on the network can announce any name, and each new name
//! becomes an atom and a connect attempt on the BEAM side. The rate of new names is
//! therefore bounded per sending address: a flood of made-up names from one host
//! drains only that host's bucket, while a legitimate node on another host is
//! admitted at once. Known peers never spend tokens. (A sender that forges many
//! source addresses can still share out the global bound `MAX_SOURCES`; a secret is
//! the defence against that.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Most source addresses tracked at once; beyond it, new sources are refused until
/// idle ones are dropped.
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
                return false;
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
        // All busy (each spent a token): a new source is refused ...
        assert!(!l.admit(ip(9), t0));
        // ... until they have refilled and can be forgotten.
        let later = t0 + Duration::from_secs(2);
        assert!(l.admit(ip(9), later));
        assert_eq!(l.sources(), 1);
    }
}
