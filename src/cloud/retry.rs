//! The one retry helper: jittered exponential backoff on throttling (429), server errors
//! (5xx), timeouts and connection failures, honouring `Retry-After`. Notifiers, response
//! actions and pollers all use it, so every caller backs off the same way.
//!
//! To retry a new kind of call: classify its outcome as an [`Attempt`] and call [`retry`].

use std::future::Future;
use std::time::Duration;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// The first backoff ceiling; doubles each attempt.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; longer ones give up.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (attempt counts from 1): full jitter over
    /// `min(max_delay, base * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = exp.min(self.max_delay);
        let ms = ceiling.as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(fastrand::u64(0..=ms))
    }
}

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Success.
    Done(T),
    /// A failure a retry may cure, with the peer's `Retry-After` when it gave one.
    Retry {
        /// The failure (returned if no attempt is left).
        error: E,
        /// The wait the peer asked for.
        after: Option<Duration>,
    },
    /// A failure no retry cures.
    Fail(E),
}

/// Runs `call` (given the attempt number, from 1) until it succeeds, fails for good, or the
/// attempts run out. `what` names the call in logs.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, what: &str, mut call: F) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
    E: std::fmt::Display,
{
    let mut attempt = 1;
    loop {
        match call(attempt).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { error, after } => {
                if attempt >= policy.max_attempts {
                    return Err(error);
                }
                let wait = match after {
                    Some(a) if a > policy.max_retry_after => return Err(error),
                    Some(a) => a,
                    None => policy.backoff(attempt),
                };
                tracing::debug!(what, attempt, wait_ms = wait.as_millis() as u64, %error, "retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

/// Parses a `Retry-After` header: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Whether an HTTP status is worth retrying.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let p = RetryPolicy::default();
        for attempt in 1..30 {
            assert!(p.backoff(attempt) <= p.max_delay);
        }
        assert!(p.backoff(1) <= p.base);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn retries_until_done_and_stops_on_fail() {
        let p = RetryPolicy {
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let calls = AtomicU32::new(0);
        let r: Result<u32, String> = retry(&p, "t", |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Attempt::Retry {
                        error: "busy".to_string(),
                        after: Some(Duration::from_millis(1)),
                    }
                } else {
                    Attempt::Done(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));
        let r: Result<u32, String> =
            retry(&p, "t", |_| async { Attempt::Fail("no".to_string()) }).await;
        assert_eq!(r, Err("no".to_string()));
        let r: Result<u32, String> = retry(&p, "t", |_| async {
            Attempt::Retry {
                error: "always".to_string(),
                after: None,
            }
        })
        .await;
        assert_eq!(r, Err("always".to_string()));
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_limit_gives_up_at_once() {
        let p = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let r: Result<(), String> = retry(&p, "t", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Attempt::Retry {
                    error: "later".into(),
                    after: Some(Duration::from_secs(3600)),
                }
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
