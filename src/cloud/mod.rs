//! Cloud clients, built once per process and passed to whatever needs them: the one HTTP
//! client ([`http`]), the AWS `SdkConfig` ([`aws`], feature `aws`), bearer tokens for Graph
//! and Google ([`token`]; `azure` and `gcp` build them from `[azure]` and `[google]`), the
//! one retry helper ([`retry`]) every HTTP caller uses, and per-key request rate limits
//! ([`rate`]) for pollers.
//!
//! To add a cloud: one `<cloud>.rs` that builds its client from its config section, behind
//! its feature, and a field in [`Clients`].

pub mod http;
pub mod rate;
pub mod retry;
pub mod token;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "gcp")]
pub mod gcp;

/// Errors of client construction and of calls made through these clients.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
    /// A request failed before an answer came (connect, timeout, TLS).
    #[error("{method} {url}: {source}")]
    Transport {
        /// Method.
        method: String,
        /// URL without query.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// The peer answered with an error status.
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        /// Method.
        method: String,
        /// URL without query.
        url: String,
        /// Status code.
        status: u16,
        /// The start of the answer, escaped for logs.
        body: String,
        /// The wait the peer asked for (`Retry-After`), when it gave one.
        retry_after: Option<std::time::Duration>,
    },
    /// A token could not be had.
    #[error("token for {audience}: {message}")]
    Token {
        /// What the token is for (`graph`, `google`).
        audience: &'static str,
        /// Why.
        message: String,
    },
    /// An answer could not be read.
    #[error("{url}: unexpected answer: {message}")]
    Decode {
        /// URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A cloud SDK call failed (the SDK's error type stays out of this enum).
    #[error("{operation}: {message}")]
    Sdk {
        /// Service, operation and where (`cloudtrail:LookupEvents us-east-1`).
        operation: String,
        /// The SDK's error with its context.
        message: String,
        /// Throttling, a server error, a timeout or a connection failure.
        retryable: bool,
    },
}

impl CloudError {
    /// The wait the peer asked for before the next request (`Retry-After` of the last answer).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            CloudError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether a retry may help: throttling, server errors, timeouts, connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            CloudError::Transport { source, .. } => source.is_timeout() || source.is_connect(),
            CloudError::Status { status, .. } => *status == 429 || *status >= 500,
            CloudError::Sdk { retryable, .. } => *retryable,
            CloudError::Client(_) | CloudError::Token { .. } | CloudError::Decode { .. } => false,
        }
    }
}

/// Every client a process needs, built once by the app and shared.
#[derive(Clone, Default)]
pub struct Clients {
    /// The one HTTP client (Slack, webhooks, Graph, Google).
    pub http: Option<reqwest::Client>,
    /// The AWS SDK configuration (region, credentials, endpoint override).
    #[cfg(feature = "aws")]
    pub aws: Option<::aws_config::SdkConfig>,
    /// Microsoft Graph: base URL and token source.
    pub graph: Option<token::Api>,
    /// Google Admin SDK / IAM: base URLs and token source.
    pub google: Option<token::GoogleApi>,
    /// The Entra app registration (Graph clients for other tenants than the default).
    #[cfg(feature = "azure")]
    pub entra: Option<std::sync::Arc<azure::Entra>>,
    /// Request rate limits shared by every poller of the process.
    pub rates: Rates,
}

/// The per-key request rate limits of the APIs picket polls, shared so that two sources of
/// one tenant or project stay within one quota together.
#[derive(Clone)]
pub struct Rates {
    /// Microsoft Graph audit logs: 5 requests per 10 s per tenant.
    pub graph: rate::RateLimiter,
    /// Admin SDK Reports: 10 requests per second per customer (well under the project quota).
    pub reports: rate::RateLimiter,
    /// Cloud Logging `entries.list`: 60 requests per minute per project.
    pub logging: rate::RateLimiter,
    /// CloudTrail `LookupEvents`: 2 requests per second per account and region.
    pub cloudtrail: rate::RateLimiter,
}

impl Default for Rates {
    fn default() -> Self {
        use std::time::Duration;
        Rates {
            graph: rate::RateLimiter::new(5, Duration::from_secs(10)),
            reports: rate::RateLimiter::new(10, Duration::from_secs(1)),
            logging: rate::RateLimiter::new(60, Duration::from_secs(60)),
            cloudtrail: rate::RateLimiter::new(2, Duration::from_secs(1)),
        }
    }
}
