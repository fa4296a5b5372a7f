//! The ONE `reqwest` client (rustls with the aws-lc-rs provider, as the AWS SDK's default
//! HTTPS client uses) and [`send`], which runs a request through the shared retry helper.
//!
//! Build the client once with [`client`] and clone it (clones share the connection pool).

use std::time::Duration;

use super::CloudError;
use super::retry::{Attempt, RetryPolicy, parse_retry_after, retry, retryable_status};

/// How long one request may take, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Builds the process's HTTP client.
pub fn client(timeout: Duration) -> Result<reqwest::Client, CloudError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("picket/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CloudError::Client(e.to_string()))
}

/// A response read whole: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self, url: &str) -> Result<serde_json::Value, CloudError> {
        serde_json::from_str(&self.body).map_err(|e| CloudError::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// The body as a raw record tree ([`crate::json`]): pages of provider records.
    pub fn records(&self, url: &str) -> Result<crate::json::Value, CloudError> {
        crate::json::parse(self.body.as_bytes()).map_err(|message| CloudError::Decode {
            url: url.to_string(),
            message,
        })
    }
}

fn strip_query(url: &str) -> String {
    // Slack webhook URLs are secrets in their path: never log more than scheme and host.
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), {
            if u.path().starts_with("/services/") {
                "/services/***".to_string()
            } else {
                u.path().to_string()
            }
        }),
        Err(_) => "<url>".to_string(),
    }
}

/// Sends the request `build` makes (called once per attempt), retrying 429/5xx/timeouts with
/// jittered backoff and `Retry-After`. Statuses in `ok_statuses` (besides 2xx) count as
/// answers too (a 404 that means "already gone"). Other statuses are errors, which name the
/// URL without its query.
pub async fn send<F>(
    policy: &RetryPolicy,
    method: &str,
    url: &str,
    ok_statuses: &[u16],
    build: F,
) -> Result<Answer, CloudError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    send_shown(policy, None, method, strip_query(url), ok_statuses, build).await
}

/// A rate limit a request counts against: the limiter and the key (tenant, project).
pub type Pace<'a> = (&'a super::rate::RateLimiter, &'a str);

/// [`send`] where every attempt (retries included: the provider counts them) first waits
/// for a slot of `pace`.
pub async fn send_paced<F>(
    policy: &RetryPolicy,
    pace: Pace<'_>,
    method: &str,
    url: &str,
    ok_statuses: &[u16],
    build: F,
) -> Result<Answer, CloudError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    send_shown(
        policy,
        Some(pace),
        method,
        strip_query(url),
        ok_statuses,
        build,
    )
    .await
}

/// [`send`] for a URL that is itself a secret (Slack incoming webhooks, SIEM webhooks):
/// errors and logs name only its scheme and host.
pub async fn send_secret_url<F>(
    policy: &RetryPolicy,
    method: &str,
    url: &str,
    ok_statuses: &[u16],
    build: F,
) -> Result<Answer, CloudError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let shown = match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/***", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "<url>".to_string(),
    };
    send_shown(policy, None, method, shown, ok_statuses, build).await
}

async fn send_shown<F>(
    policy: &RetryPolicy,
    pace: Option<Pace<'_>>,
    method: &str,
    shown: String,
    ok_statuses: &[u16],
    build: F,
) -> Result<Answer, CloudError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    retry(policy, &shown.clone(), |_| {
        let shown = shown.clone();
        let build = &build;
        async move {
            if let Some((limiter, key)) = pace {
                limiter.acquire(key).await;
            }
            let req = build();
            let resp = match req.send().await {
                Ok(r) => r,
                Err(source) => {
                    // reqwest's errors carry the full URL: drop it, it may be a secret.
                    let e = CloudError::Transport {
                        method: method.to_string(),
                        url: shown,
                        source: source.without_url(),
                    };
                    return if e.is_retryable() {
                        Attempt::Retry {
                            error: e,
                            after: None,
                        }
                    } else {
                        Attempt::Fail(e)
                    };
                }
            };
            let status = resp.status().as_u16();
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            let body = match resp.text().await {
                Ok(b) => b,
                Err(source) => {
                    return Attempt::Retry {
                        error: CloudError::Transport {
                            method: method.to_string(),
                            url: shown,
                            source: source.without_url(),
                        },
                        after: None,
                    };
                }
            };
            if (200..300).contains(&status) || ok_statuses.contains(&status) {
                return Attempt::Done(Answer { status, body });
            }
            let e = CloudError::Status {
                method: method.to_string(),
                url: shown,
                status,
                body: crate::alert::escape::terminal(&crate::alert::escape::truncate(&body, 200)),
                retry_after: after,
            };
            if retryable_status(status) {
                Attempt::Retry { error: e, after }
            } else {
                Attempt::Fail(e)
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_are_not_shown() {
        assert_eq!(
            strip_query("https://hooks.slack.com/services/T0/B0/secret?x=1"),
            "https://hooks.slack.com/services/***"
        );
        assert_eq!(
            strip_query("https://graph.microsoft.com/v1.0/users/a?$select=x"),
            "https://graph.microsoft.com/v1.0/users/a"
        );
    }
}
