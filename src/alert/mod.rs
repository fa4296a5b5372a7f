//! Alerting: findings go to notifiers (stdout, JSON Lines, Slack, email, webhooks), routed by
//! severity and detector, with a dedup window and a rate limit per channel. A failing
//! notifier is logged and counted and never stops the others (nor the response).
//!
//! To add a notifier: one `<name>.rs` implementing [`Notifier`], one variant in
//! [`NotifyConfig`] whose `type` is the file stem, and its arm in [`NotifyConfig::build`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cloud::Clients;
use crate::cloud::retry::RetryPolicy;
use crate::config::SecretRef;
use crate::model::{Finding, Severity};
use crate::state::StateStore;

pub mod email;
pub mod escape;
pub mod facts;
pub mod jsonl;
pub mod slack;
#[cfg(feature = "aws")]
pub mod sqs;
pub mod stdout;
#[cfg(test)]
pub(crate) mod testing;
pub mod webhook;

/// Errors of a notifier.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Writing failed.
    #[error("notifier {notifier}: {source}")]
    Io {
        /// Notifier name.
        notifier: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Delivery failed (after retries).
    #[error("notifier {notifier}: {message}")]
    Send {
        /// Notifier name.
        notifier: &'static str,
        /// What went wrong (no secrets).
        message: String,
    },
    /// The notifier's configuration is unusable.
    #[error("notifier {notifier}: {message}")]
    Config {
        /// Notifier name.
        notifier: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A destination for findings.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// The notifier's `type`, for logs.
    fn name(&self) -> &'static str;
    /// Delivers one finding.
    async fn notify(&self, finding: &Finding) -> Result<(), AlertError>;
    /// Flushes buffered output (end of batch).
    async fn flush(&self) -> Result<(), AlertError> {
        Ok(())
    }
}

/// Output format of the stdout notifier.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A human-readable block per finding (terminal-safe).
    #[default]
    Table,
    /// OCSF Detection Finding JSON, one per line.
    Ocsf,
}

/// Where a channel's findings are filtered and paced: by severity, by detector, a dedup
/// window per (detector, identity) and a rate limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Lowest severity sent.
    pub min_severity: Severity,
    /// Only these detector / rule ids (empty: all).
    pub detectors: Vec<String>,
    /// A finding of the same detector and identity within this window is not sent again.
    pub dedup: Option<Duration>,
    /// At most this many messages per minute; the rest are counted and dropped.
    pub max_per_minute: Option<u32>,
}

impl Route {
    /// A route that takes every finding from `min_severity` up.
    pub fn severity(min_severity: Severity) -> Route {
        Route {
            min_severity,
            ..Route::default()
        }
    }

    /// Whether a finding is for this channel at all.
    pub fn accepts(&self, f: &Finding) -> bool {
        f.severity >= self.min_severity
            && (self.detectors.is_empty() || self.detectors.contains(&f.detector))
    }
}

/// One `[[notify]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifyConfig {
    /// Findings on standard output.
    Stdout {
        /// `table` (default) or `ocsf`.
        #[serde(default)]
        format: Format,
        /// Lowest severity sent here.
        #[serde(default)]
        min_severity: Severity,
    },
    /// OCSF findings appended to a file, one per line.
    Jsonl {
        /// The file (relative to the config file's folder).
        path: PathBuf,
        /// Lowest severity sent here.
        #[serde(default)]
        min_severity: Severity,
    },
    /// Slack: an incoming webhook (`webhook_url`) or a bot token (`token` + `channel`).
    Slack {
        /// Incoming-webhook URL, as a secret reference (`env:SLACK_WEBHOOK_URL`).
        #[serde(default)]
        webhook_url: Option<SecretRef>,
        /// Bot token, as a secret reference (`env:SLACK_BOT_TOKEN`).
        #[serde(default)]
        token: Option<SecretRef>,
        /// Channel for the bot token.
        #[serde(default)]
        channel: Option<String>,
        /// Web API base URL (default `https://slack.com/api`; tests point it at loopback).
        #[serde(default)]
        api_base_url: Option<String>,
        /// Lowest severity sent here.
        #[serde(default)]
        min_severity: Severity,
        /// Only these detector / rule ids (default: all).
        #[serde(default)]
        detectors: Vec<String>,
        /// Dedup window per (detector, identity), seconds.
        #[serde(default)]
        dedup_secs: Option<u64>,
        /// Rate limit, messages per minute.
        #[serde(default)]
        max_per_minute: Option<u32>,
    },
    /// Email through SMTP or Amazon SES.
    Email {
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// SMTP relay host (omit with `ses = true`).
        #[serde(default)]
        smtp_host: Option<String>,
        /// SMTP port (default: 587 for STARTTLS, 465 for TLS).
        #[serde(default)]
        smtp_port: Option<u16>,
        /// `starttls` (default), `tls`, or `none` (loopback relays only).
        #[serde(default)]
        smtp_tls: email::SmtpTls,
        /// SMTP user.
        #[serde(default)]
        smtp_username: Option<String>,
        /// SMTP password, as a secret reference.
        #[serde(default)]
        smtp_password: Option<SecretRef>,
        /// Send through Amazon SES v2 with the `[aws]` client settings (feature `aws`).
        #[serde(default)]
        ses: bool,
        /// Lowest severity sent here.
        #[serde(default)]
        min_severity: Severity,
        /// Only these detector / rule ids (default: all).
        #[serde(default)]
        detectors: Vec<String>,
        /// Dedup window per (detector, identity), seconds.
        #[serde(default)]
        dedup_secs: Option<u64>,
        /// Rate limit, messages per minute.
        #[serde(default)]
        max_per_minute: Option<u32>,
    },
    /// OCSF JSON POSTed to a URL, HMAC-signed.
    Webhook {
        /// The URL, as a secret reference (it often carries a token).
        url: SecretRef,
        /// HMAC key for `X-Picket-Signature`, as a secret reference.
        #[serde(default)]
        secret: Option<SecretRef>,
        /// Lowest severity sent here.
        #[serde(default)]
        min_severity: Severity,
        /// Only these detector / rule ids (default: all).
        #[serde(default)]
        detectors: Vec<String>,
        /// Dedup window per (detector, identity), seconds.
        #[serde(default)]
        dedup_secs: Option<u64>,
        /// Rate limit, messages per minute.
        #[serde(default)]
        max_per_minute: Option<u32>,
    },
    /// picket's finding JSON sent to an Amazon SQS queue, one message per finding (feature
    /// `aws`): how the Lambda poll and ingest functions hand findings to respond.
    Sqs {
        /// The queue URL.
        queue_url: String,
        /// Lowest severity sent here.
        #[serde(default)]
        min_severity: Severity,
    },
}

impl NotifyConfig {
    /// Every notifier type, for contract tests and docs.
    pub const ALL: &'static [&'static str] =
        &["stdout", "jsonl", "slack", "email", "webhook", "sqs"];

    /// Lowest severity this notifier receives.
    pub fn min_severity(&self) -> Severity {
        self.route().min_severity
    }

    /// How findings are filtered and paced for this notifier.
    pub fn route(&self) -> Route {
        match self {
            NotifyConfig::Stdout { min_severity, .. }
            | NotifyConfig::Jsonl { min_severity, .. }
            | NotifyConfig::Sqs { min_severity, .. } => Route::severity(*min_severity),
            NotifyConfig::Slack {
                min_severity,
                detectors,
                dedup_secs,
                max_per_minute,
                ..
            }
            | NotifyConfig::Email {
                min_severity,
                detectors,
                dedup_secs,
                max_per_minute,
                ..
            }
            | NotifyConfig::Webhook {
                min_severity,
                detectors,
                dedup_secs,
                max_per_minute,
                ..
            } => Route {
                min_severity: *min_severity,
                detectors: detectors.clone(),
                dedup: dedup_secs.map(Duration::from_secs),
                max_per_minute: *max_per_minute,
            },
        }
    }

    /// Builds the notifier. Secrets are resolved here (from the environment). `state`, when
    /// given, keeps what must outlive the process (Slack thread timestamps).
    pub fn build(
        &self,
        clients: &Clients,
        state: Option<&Arc<dyn StateStore>>,
    ) -> Result<Box<dyn Notifier>, AlertError> {
        let cfg =
            |notifier: &'static str, message: String| AlertError::Config { notifier, message };
        let secret = |notifier: &'static str, r: &SecretRef| {
            r.resolve().map_err(|e| cfg(notifier, e.to_string()))
        };
        let http = |notifier: &'static str| {
            clients
                .http
                .clone()
                .ok_or_else(|| cfg(notifier, "no HTTP client was built".into()))
        };
        Ok(match self {
            NotifyConfig::Stdout { format, .. } => Box::new(stdout::Stdout::new(*format)),
            NotifyConfig::Jsonl { path, .. } => Box::new(jsonl::Jsonl::open(path)?),
            NotifyConfig::Slack {
                webhook_url,
                token,
                channel,
                api_base_url,
                ..
            } => {
                let delivery = match (webhook_url, token, channel) {
                    (Some(url), None, _) => slack::Delivery::Webhook(secret("slack", url)?),
                    (None, Some(t), Some(ch)) => slack::Delivery::Bot {
                        token: secret("slack", t)?,
                        channel: ch.clone(),
                        api_base_url: api_base_url
                            .clone()
                            .unwrap_or_else(|| "https://slack.com/api".into()),
                    },
                    (None, Some(_), None) => {
                        return Err(cfg("slack", "a bot `token` needs a `channel`".into()));
                    }
                    _ => {
                        return Err(cfg(
                            "slack",
                            "give exactly one of `webhook_url` or `token`".into(),
                        ));
                    }
                };
                Box::new(
                    slack::Slack::new(http("slack")?, delivery, RetryPolicy::default())
                        .with_state(state.cloned()),
                )
            }
            NotifyConfig::Email {
                from,
                to,
                smtp_host,
                smtp_port,
                smtp_tls,
                smtp_username,
                smtp_password,
                ses,
                ..
            } => {
                let transport = match (smtp_host, ses) {
                    (Some(host), false) => {
                        let password = smtp_password
                            .as_ref()
                            .map(|p| secret("email", p))
                            .transpose()?;
                        email::Transport::Smtp(email::smtp_transport(
                            host,
                            *smtp_port,
                            *smtp_tls,
                            smtp_username.as_deref(),
                            password.as_ref(),
                        )?)
                    }
                    (None, true) => ses_transport(clients)?,
                    _ => {
                        return Err(cfg(
                            "email",
                            "give exactly one of `smtp_host` or `ses = true`".into(),
                        ));
                    }
                };
                Box::new(email::Email::new(transport, from.clone(), to.clone())?)
            }
            NotifyConfig::Webhook {
                url, secret: key, ..
            } => {
                // Secrets first: a missing variable is the error to report.
                let url = secret("webhook", url)?;
                let key = key.as_ref().map(|k| secret("webhook", k)).transpose()?;
                Box::new(webhook::Webhook::new(
                    http("webhook")?,
                    url,
                    key,
                    RetryPolicy::default(),
                ))
            }
            NotifyConfig::Sqs { queue_url, .. } => sqs_notifier(clients, queue_url)?,
        })
    }
}

#[cfg(feature = "aws")]
fn ses_transport(clients: &Clients) -> Result<email::Transport, AlertError> {
    let sdk = clients.aws.as_ref().ok_or_else(|| AlertError::Config {
        notifier: "email",
        message: "ses needs the [aws] client settings".into(),
    })?;
    Ok(email::Transport::Ses(aws_sdk_sesv2::Client::new(sdk)))
}

#[cfg(not(feature = "aws"))]
fn ses_transport(_clients: &Clients) -> Result<email::Transport, AlertError> {
    Err(AlertError::Config {
        notifier: "email",
        message: "email through ses needs the `aws` feature".into(),
    })
}

#[cfg(feature = "aws")]
fn sqs_notifier(clients: &Clients, queue_url: &str) -> Result<Box<dyn Notifier>, AlertError> {
    let sdk = clients.aws.as_ref().ok_or_else(|| AlertError::Config {
        notifier: "sqs",
        message: "sqs needs the [aws] client settings".into(),
    })?;
    Ok(Box::new(sqs::Sqs::new(sdk, queue_url)))
}

#[cfg(not(feature = "aws"))]
fn sqs_notifier(_clients: &Clients, _queue_url: &str) -> Result<Box<dyn Notifier>, AlertError> {
    Err(AlertError::Config {
        notifier: "sqs",
        message: "sqs needs the `aws` feature".into(),
    })
}

struct Channel {
    route: Route,
    notifier: Box<dyn Notifier>,
    last_sent: HashMap<String, Instant>,
    minute: Option<(Instant, u32)>,
}

/// Routes findings to notifiers by severity and detector, with dedup and rate limits; counts
/// failures.
pub struct Router {
    channels: Vec<Channel>,
    /// Failed deliveries so far.
    pub failures: u64,
    /// Findings held back by a dedup window or a rate limit so far.
    pub suppressed: u64,
}

impl Router {
    /// A router over built notifiers with their minimum severities.
    pub fn new(routes: Vec<(Severity, Box<dyn Notifier>)>) -> Router {
        Router::with_routes(
            routes
                .into_iter()
                .map(|(s, n)| (Route::severity(s), n))
                .collect(),
        )
    }

    /// A router over built notifiers with full routes.
    pub fn with_routes(routes: Vec<(Route, Box<dyn Notifier>)>) -> Router {
        Router {
            channels: routes
                .into_iter()
                .map(|(route, notifier)| Channel {
                    route,
                    notifier,
                    last_sent: HashMap::new(),
                    minute: None,
                })
                .collect(),
            failures: 0,
            suppressed: 0,
        }
    }

    /// Builds every configured notifier over the shared clients and state store.
    pub fn from_config(
        configs: &[NotifyConfig],
        clients: &Clients,
        state: Option<&Arc<dyn StateStore>>,
    ) -> Result<Router, AlertError> {
        let mut routes = Vec::new();
        for c in configs {
            routes.push((c.route(), c.build(clients, state)?));
        }
        Ok(Router::with_routes(routes))
    }

    /// Sends a finding to every notifier whose route takes it. Failures are logged and
    /// counted; the others still receive it. Returns how many deliveries failed.
    pub async fn send(&mut self, finding: &Finding) -> u64 {
        let mut failed = 0;
        let now = Instant::now();
        let dedup_key = format!(
            "{}\u{0}{}",
            finding.detector,
            finding.identity.as_deref().unwrap_or(&finding.uid)
        );
        for ch in &mut self.channels {
            if !ch.route.accepts(finding) {
                continue;
            }
            if let Some(window) = ch.route.dedup {
                if ch
                    .last_sent
                    .get(&dedup_key)
                    .is_some_and(|t| now.duration_since(*t) < window)
                {
                    self.suppressed += 1;
                    tracing::debug!(notifier = ch.notifier.name(), finding = %finding.uid, "suppressed by dedup window");
                    continue;
                }
                ch.last_sent.retain(|_, t| now.duration_since(*t) < window);
            }
            // The blast-radius alert (at most one per latch) is never rate limited.
            let exempt = finding.detector == crate::respond::responder::GUARDRAIL_DETECTOR;
            if let Some(max) = ch.route.max_per_minute.filter(|_| !exempt) {
                let (start, count) = match ch.minute {
                    Some((s, c)) if now.duration_since(s) < Duration::from_secs(60) => (s, c),
                    _ => (now, 0),
                };
                if count >= max {
                    self.suppressed += 1;
                    tracing::warn!(notifier = ch.notifier.name(), finding = %finding.uid, max, "rate limit reached; finding not sent to this channel");
                    ch.minute = Some((start, count));
                    continue;
                }
                ch.minute = Some((start, count + 1));
            }
            match ch.notifier.notify(finding).await {
                Ok(()) => {
                    if ch.route.dedup.is_some() {
                        ch.last_sent.insert(dedup_key.clone(), now);
                    }
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(notifier = ch.notifier.name(), finding = %finding.uid, error = %e, "notification failed");
                }
            }
        }
        self.failures += failed;
        failed
    }

    /// Flushes every notifier.
    pub async fn flush(&mut self) {
        for ch in &self.channels {
            if let Err(e) = ch.notifier.flush().await {
                self.failures += 1;
                tracing::warn!(notifier = ch.notifier.name(), error = %e, "flush failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, Vec<crate::config::ConfigError>> {
        Config::parse(text, Path::new("picket.toml"), Path::new("/etc/picket"))
    }

    #[test]
    fn notifiers_parse_with_secret_references_and_routes() {
        let c = parse(
            r#"
[[notify]]
type = "slack"
token = "env:SLACK_BOT_TOKEN"
channel = "C0SOC"
min_severity = "high"
detectors = ["account-takeover"]
dedup_secs = 300
max_per_minute = 20

[[notify]]
type = "email"
from = "picket@corp.example"
to = ["soc@corp.example"]
smtp_host = "smtp.corp.example"
smtp_username = "picket"
smtp_password = "env:SMTP_PASSWORD"

[[notify]]
type = "webhook"
url = "env:SIEM_URL"
secret = "env:SIEM_HMAC"
"#,
        )
        .unwrap();
        assert_eq!(c.raw.notify.len(), 3);
        let r = c.raw.notify[0].route();
        assert_eq!(r.min_severity, Severity::High);
        assert_eq!(r.detectors, ["account-takeover"]);
        assert_eq!(r.dedup, Some(Duration::from_secs(300)));
        assert_eq!(r.max_per_minute, Some(20));
    }

    #[test]
    fn a_secret_written_in_clear_is_an_error_that_does_not_repeat_it() {
        let errors = parse(
            "[[notify]]\ntype = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T/B/XYZ\"\n",
        )
        .unwrap_err();
        let shown = format!("{errors:?}");
        assert!(shown.contains("env:"), "{shown}");
        assert!(!shown.contains("hooks.slack.com"), "{shown}");
    }

    #[test]
    fn a_missing_environment_variable_fails_the_build_naming_it() {
        let c =
            parse("[[notify]]\ntype = \"webhook\"\nurl = \"env:PICKET_TEST_UNSET_WEBHOOK_URL\"\n")
                .unwrap();
        let e = c.raw.notify[0]
            .build(&Clients::default(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("PICKET_TEST_UNSET_WEBHOOK_URL"), "{e}");
    }

    #[test]
    fn unknown_playbook_actions_are_config_errors() {
        let errors = parse(
            "[[respond.playbook]]\non = [\"account-takeover\"]\nactions = [\"entra_revoke_session\"]\n",
        )
        .unwrap_err();
        assert_eq!(errors[0].key, "respond.playbook[0].actions[0]");
        assert!(errors[0].message.contains("entra_revoke_sessions"));
    }

    #[test]
    fn every_notifier_type_is_listed() {
        for t in NotifyConfig::ALL {
            let text = format!("[[notify]]\ntype = \"{t}\"\n");
            let errors = parse(&text).err().unwrap_or_default();
            assert!(
                errors
                    .iter()
                    .all(|e| !e.message.contains("unknown variant")),
                "{t}: {errors:?}"
            );
        }
    }
}
