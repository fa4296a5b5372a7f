//! Per-key request rate limits for pollers: "at most `limit` requests in any `window` per key"
//! (CloudTrail `LookupEvents`: 2 per second per account-region; Graph: 5 per 10 s per tenant;
//! Cloud Logging: 60 per minute per project).
//!
//! ```
//! # async fn demo() {
//! use std::time::Duration;
//! use picket::cloud::rate::RateLimiter;
//!
//! let limits = RateLimiter::new(2, Duration::from_secs(1));
//! limits.acquire("123456789012/us-east-1").await; // returns at once
//! limits.acquire("123456789012/us-east-1").await; // at once: 2 in this second
//! limits.acquire("123456789012/us-east-1").await; // waits until the first is 1 s old
//! limits.acquire("123456789012/eu-west-1").await; // another key: at once
//! # }
//! ```
//!
//! Call [`RateLimiter::acquire`] before every request, retries included (a retry is a request
//! the provider counts). Share one limiter (it is cheap to clone: an `Arc` inside) between
//! everything that calls the same API with the same quota.
//!
//! Why not the `governor` crate: its clocks (`quanta`, `std::time::Instant`) do not follow
//! tokio's paused test clock, so limits could only be tested in real time; and its GCRA
//! allows a burst then a steady rate, where providers state a count per window. This is a
//! sliding window over the last `limit` request times on tokio's clock: exact, `limit`
//! instants of memory per key, testable with `tokio::time::pause`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// At most `limit` requests per `window`, per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in any window (at least 1).
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

impl Rate {
    /// `limit` requests per `window`.
    pub const fn new(limit: u32, window: Duration) -> Rate {
        Rate { limit, window }
    }
}

/// Waits so that no key makes more than its [`Rate`]. Clones share their state.
#[derive(Debug, Clone)]
pub struct RateLimiter<K = String> {
    rate: Rate,
    /// Per key: the start times of the last `limit` requests (some possibly in the future:
    /// reserved by callers still waiting), oldest first.
    keys: Arc<Mutex<HashMap<K, VecDeque<Instant>>>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// At most `limit` requests (at least 1) in any `window`, per key.
    pub fn new(limit: u32, window: Duration) -> RateLimiter<K> {
        RateLimiter::with_rate(Rate::new(limit, window))
    }

    /// A limiter for `rate`.
    pub fn with_rate(rate: Rate) -> RateLimiter<K> {
        RateLimiter {
            rate: Rate {
                limit: rate.limit.max(1),
                window: rate.window,
            },
            keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The limit.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Reserves the next free slot for `key` and sleeps until it. Slots are handed out in
    /// call order; a caller dropped while waiting still uses its slot (the limit errs on the
    /// safe side).
    pub async fn acquire<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let at = self.reserve(key, Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// The start time of a request for `key` made at `now`, recorded as taken.
    fn reserve<Q>(&self, key: &Q, now: Instant) -> Instant
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let limit = self.rate.limit as usize;
        // A poisoned lock only means another caller panicked; the times are still valid.
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !keys.contains_key(key) {
            keys.insert(key.to_owned(), VecDeque::with_capacity(limit));
        }
        // INVARIANT: inserted just above when missing.
        let Some(times) = keys.get_mut(key) else {
            return now;
        };
        // The times are sorted; with `limit` of them, the oldest must be a window ago.
        let at = if times.len() < limit {
            now
        } else {
            times
                .front()
                .map_or(now, |&t| now.max(t + self.rate.window))
        };
        let at = times.back().map_or(at, |&last| at.max(last));
        if times.len() >= limit {
            times.pop_front();
        }
        times.push_back(at);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_key_exceeds_its_rate_in_any_window() {
        let limits: RateLimiter = RateLimiter::new(2, Duration::from_secs(1));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            limits.acquire("a").await;
            times.push(start.elapsed());
        }
        let secs: Vec<u64> = times.iter().map(|d| d.as_millis() as u64).collect();
        assert_eq!(secs, [0, 0, 1000, 1000, 2000, 2000, 3000]);
        // Another key is not held up by the first.
        let before = Instant::now();
        limits.acquire("b").await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_limit() {
        let limits: RateLimiter = RateLimiter::new(5, Duration::from_secs(10));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let l = limits.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire("tenant").await;
                start.elapsed()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap().as_secs());
        }
        got.sort();
        assert_eq!(got, [0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 20, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_key_starts_at_once_again() {
        let limits: RateLimiter = RateLimiter::new(1, Duration::from_secs(1));
        limits.acquire("a").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = Instant::now();
        limits.acquire("a").await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
