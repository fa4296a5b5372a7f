//! Alerting: findings go to notifiers (stdout, JSON Lines; Slack, email and webhooks come with
//! the alerting issue). A failing notifier is logged and counted and never stops the others.
//!
//! To add a notifier: one `<name>.rs` implementing [`Notifier`], one variant in
//! [`NotifyConfig`] whose `type` is the file stem.

use std::path::PathBuf;

use serde::Deserialize;

use crate::model::{Finding, Severity};

pub mod escape;
pub mod jsonl;
pub mod stdout;

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
}

impl NotifyConfig {
    /// Every notifier type, for contract tests and docs.
    pub const ALL: &'static [&'static str] = &["stdout", "jsonl"];

    /// Lowest severity this notifier receives.
    pub fn min_severity(&self) -> Severity {
        match self {
            NotifyConfig::Stdout { min_severity, .. }
            | NotifyConfig::Jsonl { min_severity, .. } => *min_severity,
        }
    }

    /// Builds the notifier.
    pub fn build(&self) -> Result<Box<dyn Notifier>, AlertError> {
        Ok(match self {
            NotifyConfig::Stdout { format, .. } => Box::new(stdout::Stdout::new(*format)),
            NotifyConfig::Jsonl { path, .. } => Box::new(jsonl::Jsonl::open(path)?),
        })
    }
}

/// Routes findings to notifiers by severity; counts failures.
pub struct Router {
    routes: Vec<(Severity, Box<dyn Notifier>)>,
    /// Failed deliveries so far.
    pub failures: u64,
}

impl Router {
    /// A router over built notifiers with their minimum severities.
    pub fn new(routes: Vec<(Severity, Box<dyn Notifier>)>) -> Router {
        Router {
            routes,
            failures: 0,
        }
    }

    /// Builds every configured notifier.
    pub fn from_config(configs: &[NotifyConfig]) -> Result<Router, AlertError> {
        let mut routes = Vec::new();
        for c in configs {
            routes.push((c.min_severity(), c.build()?));
        }
        Ok(Router::new(routes))
    }

    /// Sends a finding to every notifier that takes its severity. Failures are logged and
    /// counted; the others still receive it. Returns how many deliveries failed.
    pub async fn send(&mut self, finding: &Finding) -> u64 {
        let mut failed = 0;
        for (min, n) in &self.routes {
            if finding.severity < *min {
                continue;
            }
            if let Err(e) = n.notify(finding).await {
                failed += 1;
                tracing::warn!(notifier = n.name(), finding = %finding.uid, error = %e, "notification failed");
            }
        }
        self.failures += failed;
        failed
    }

    /// Flushes every notifier.
    pub async fn flush(&mut self) {
        for (_, n) in &self.routes {
            if let Err(e) = n.flush().await {
                self.failures += 1;
                tracing::warn!(notifier = n.name(), error = %e, "flush failed");
            }
        }
    }
}
