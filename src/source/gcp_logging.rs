//! `gcp_logging`: Cloud Audit Logs of one Google Cloud project from Cloud Logging
//! (`POST /v2/entries:list`), one stream over the chosen audit logs (`activity`,
//! `data_access`, `system_event`, `policy`).
//!
//! The stream uses the shared [`window`](super::window) core: `filter` =
//! `logName=(...) AND timestamp>="<cursor minus overlap>"`, `orderBy` = `timestamp asc`,
//! `pageSize` up to 1000, `pageToken` paging (the token travels with the filter it belongs to),
//! entries of the overlap dropped by `insertId` and `timestamp`. Requests of one project share
//! one limit of 60 per minute (`Clients::rates.logging`), retries included.
//!
//! Permissions: `roles/logging.viewer` on the project (Admin Activity, System Event, Policy
//! Denied), and `roles/logging.privateLogViewer` for Data Access logs.

use serde::Deserialize;

/// The Cloud Audit Logs.
pub const LOG_TYPES: [&str; 4] = ["activity", "data_access", "system_event", "policy"];

/// `[[sources]] type = "gcp_logging"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpLoggingConfig {
    /// Project id.
    pub project: String,
    /// Audit logs to read (default all four: `activity`, `data_access`, `system_event`,
    /// `policy`).
    #[serde(default = "all_logs")]
    pub log_types: Vec<String>,
    /// How far each query reaches back before the newest entry seen, in seconds (default 600).
    #[serde(default = "ten_minutes")]
    pub overlap_secs: u64,
    /// How far back the first poll reads, in seconds (default one day).
    #[serde(default = "one_day")]
    pub lookback_secs: u64,
    /// `pageSize`: entries per page (1..=1000, default 1000).
    #[serde(default = "thousand")]
    pub page_size: u32,
    /// Seconds between polls once caught up (default 60).
    #[serde(default = "sixty")]
    pub interval_secs: u64,
    /// Consecutive failed intervals before a `source-unhealthy` finding (default 3).
    #[serde(default = "three")]
    pub unhealthy_after: u32,
    /// Cloud Logging base URL (default `[google] logging_base_url`, else
    /// `https://logging.googleapis.com`).
    #[serde(default)]
    pub base_url: Option<String>,
}

fn all_logs() -> Vec<String> {
    LOG_TYPES.map(String::from).to_vec()
}
fn ten_minutes() -> u64 {
    600
}
fn one_day() -> u64 {
    86_400
}
fn thousand() -> u32 {
    1000
}
fn sixty() -> u64 {
    60
}
fn three() -> u32 {
    3
}

impl GcpLoggingConfig {
    /// The `filter` for entries at or after `from` (RFC 3339).
    pub fn filter(&self, from: &str) -> String {
        let logs: Vec<String> = self
            .log_types
            .iter()
            .map(|t| {
                format!(
                    "\"projects/{}/logs/cloudaudit.googleapis.com%2F{t}\"",
                    self.project
                )
            })
            .collect();
        format!("logName=({}) AND timestamp>=\"{from}\"", logs.join(" OR "))
    }

    /// Checks the entry.
    pub fn resolve(&mut self, key: &str, c: &mut crate::config::Checker<'_>) {
        let valid_project = !self.project.is_empty()
            && self
                .project
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | ':' | '.'));
        if !valid_project {
            c.error(
                format!("{key}.project"),
                format!("`{}` is not a project id", self.project),
            );
        }
        if self.log_types.is_empty() {
            c.error(format!("{key}.log_types"), "names no audit log");
        }
        for t in &self.log_types {
            if !LOG_TYPES.contains(&t.as_str()) {
                c.error(
                    format!("{key}.log_types"),
                    format!(
                        "unknown audit log `{t}`; expected one of: {}",
                        LOG_TYPES.join(", ")
                    ),
                );
            }
        }
        c.between(format!("{key}.page_size"), self.page_size.into(), 1, 1000);
        c.at_least(format!("{key}.interval_secs"), self.interval_secs, 1);
        c.at_least(
            format!("{key}.unhealthy_after"),
            self.unhealthy_after.into(),
            1,
        );
        c.url(format!("{key}.base_url"), self.base_url.as_deref());
    }

    /// Builds the source over the state store and the process's Google clients.
    #[cfg(feature = "gcp")]
    pub fn build(
        &self,
        state: std::sync::Arc<dyn crate::state::StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn super::Source>, super::SourceError> {
        imp::build(self, state, clients)
    }
}

#[cfg(feature = "gcp")]
mod imp {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, SecondsFormat, Utc};
    use serde_json::json;

    use super::GcpLoggingConfig;
    use crate::cloud::CloudError;
    use crate::cloud::rate::RateLimiter;
    use crate::cloud::token::Api;
    use crate::json::JsonValueTrait;
    use crate::model::RecordKind;
    use crate::source::window::{Feed, Page, Stream, Windowed, take_rows};
    use crate::source::{Source, SourceError};
    use crate::state::StateStore;

    pub(super) fn build(
        cfg: &GcpLoggingConfig,
        state: Arc<dyn StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn Source>, SourceError> {
        let google = clients.google.as_ref().ok_or_else(|| SourceError::Build {
            source_name: format!("gcp_logging:{}", cfg.project),
            message: "no Google client was built ([google], feature `gcp`)".into(),
        })?;
        let mut api = google.logging.clone();
        if let Some(b) = &cfg.base_url {
            api.base_url = b.trim_end_matches('/').to_string();
        }
        let name = format!("gcp_logging:{}", cfg.project);
        let stream = Stream {
            name: cfg.log_types.join("+"),
            kind: RecordKind::GcpAudit,
            overlap: chrono::Duration::seconds(cfg.overlap_secs as i64),
            lookback: chrono::Duration::seconds(cfg.lookback_secs as i64),
            id: |v| {
                Some(format!(
                    "{}|{}",
                    v.get("insertId")?.as_str()?,
                    v.get("timestamp")?.as_str()?
                ))
            },
            feed: Box::new(LoggingFeed {
                api,
                cfg: cfg.clone(),
                limits: clients.rates.logging.clone(),
            }),
        };
        Ok(Box::new(Windowed::new(
            name,
            Duration::from_secs(cfg.interval_secs),
            cfg.unhealthy_after,
            state,
            vec![stream],
        )))
    }

    struct LoggingFeed {
        api: Api,
        cfg: GcpLoggingConfig,
        limits: RateLimiter,
    }

    impl LoggingFeed {
        /// The page of entries at or after `from` with an optional page token. The
        /// continuation is `<from> <pageToken>`: a token is only valid with its filter.
        async fn page(&self, from: &str, token: Option<&str>) -> Result<Page, CloudError> {
            let mut body = json!({
                "resourceNames": [format!("projects/{}", self.cfg.project)],
                "filter": self.cfg.filter(from),
                "orderBy": "timestamp asc",
                "pageSize": self.cfg.page_size,
            });
            if let Some(t) = token {
                body["pageToken"] = json!(t);
            }
            let url = self.api.url("/v2/entries:list");
            let answer = self
                .api
                .send(
                    reqwest::Method::POST,
                    &url,
                    Some(&body),
                    &[],
                    Some((&self.limits, &self.cfg.project)),
                )
                .await?;
            let mut v = answer.records(&url)?;
            let Some(rows) = take_rows(&mut v, "entries", true) else {
                return Err(CloudError::Decode {
                    url,
                    message: "`entries` is not an array".into(),
                });
            };
            let next = v
                .get("nextPageToken")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .map(|n| format!("{from} {n}"));
            Ok(Page { rows, next })
        }
    }

    #[async_trait::async_trait]
    impl Feed for LoggingFeed {
        async fn first(&self, from: DateTime<Utc>) -> Result<Page, CloudError> {
            let from = from.to_rfc3339_opts(SecondsFormat::Secs, true);
            self.page(&from, None).await
        }

        async fn next(&self, next: &str) -> Result<Page, CloudError> {
            let (from, token) = next.split_once(' ').unwrap_or((next, ""));
            self.page(from, Some(token)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_names_every_audit_log_and_the_start() {
        let c: GcpLoggingConfig = toml::from_str("project = \"p-1\"").unwrap();
        assert_eq!(
            c.filter("2026-01-01T00:00:00Z"),
            "logName=(\"projects/p-1/logs/cloudaudit.googleapis.com%2Factivity\" OR \
             \"projects/p-1/logs/cloudaudit.googleapis.com%2Fdata_access\" OR \
             \"projects/p-1/logs/cloudaudit.googleapis.com%2Fsystem_event\" OR \
             \"projects/p-1/logs/cloudaudit.googleapis.com%2Fpolicy\") AND \
             timestamp>=\"2026-01-01T00:00:00Z\""
        );
    }
}
