//! Per-client query rate limit (a token bucket per source address, in a
//! sharded map: no lock shared by all queries). Set per band with
//! `max_qps_per_client`; a flooding device is slowed within a second while
//! every other device keeps its full service. Counted, never labelled by
//! address.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Buckets kept before idle ones are forgotten.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug)]
struct Bucket {
    tokens: f32,
    last: Instant,
}

/// All clients' buckets.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: DashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// True when `client` may send one more query at `qps` (burst of one second).
    pub fn allow(&self, client: IpAddr, qps: u32, now: Instant) -> bool {
        if qps == 0 {
            return true;
        }
        let rate = qps as f32;
        // Counting the buckets visits every shard, so do it only when a new
        // client appears, never on the path of a known one.
        if !self.buckets.contains_key(&client) && self.buckets.len() > MAX_TRACKED {
            self.buckets
                .retain(|_, b| now.duration_since(b.last).as_secs() < 10);
        }
        let mut bucket = self.buckets.entry(client).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f32();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_cut_at_the_rate_and_refills_over_time() {
        let limiter = RateLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let start = Instant::now();
        let allowed = (0..100).filter(|_| limiter.allow(a, 10, start)).count();
        assert_eq!(allowed, 10, "a burst of one second's worth");
        assert!(
            limiter.allow(b, 10, start),
            "other clients are not affected"
        );
        assert!(
            limiter.allow(a, 10, start + Duration::from_millis(150)),
            "refills at the rate"
        );
        assert!(limiter.allow(a, 0, start), "0 = no limit");
    }
}
