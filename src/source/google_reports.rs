//! `google_reports`: Google Workspace audit activities from the Admin SDK Reports API
//! (`GET /admin/reports/v1/activity/users/all/applications/{application}`), one stream per
//! application (`login`, `token`, `admin` by default).
//!
//! Each application is a stream of the shared [`window`](super::window) core: `startTime` =
//! cursor minus the application's overlap (at least 2 h for `login`: Google documents that
//! login events arrive hours late), `maxResults` up to 1000, `nextPageToken` paging (the page
//! token travels with the `startTime` it belongs to), activities of the overlap dropped by
//! `id.uniqueQualifier` and `id.time`. Tokens act as a Workspace admin through domain-wide
//! delegation (`[google] subject`).
//!
//! Permissions: the service account's client id authorised for domain-wide delegation with the
//! scope `https://www.googleapis.com/auth/admin.reports.audit.readonly`, and `subject` an admin
//! with the Reports privilege.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The OAuth scope the Reports API needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";
/// Least overlap for `login`: Google documents hours of lag.
pub const MIN_LOGIN_OVERLAP_SECS: u64 = 7200;
/// Default overlap of every application.
pub const DEFAULT_OVERLAP_SECS: u64 = 7200;

/// `[[sources]] type = "google_reports"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleReportsConfig {
    /// Applications to read (default `login`, `token`, `admin`).
    #[serde(default = "default_applications")]
    pub applications: Vec<String>,
    /// Overlap per application in seconds (default 7200 each; `login` at least 7200).
    #[serde(default)]
    pub overlap_secs: BTreeMap<String, u64>,
    /// How far back the first poll reads, in seconds (default one day).
    #[serde(default = "one_day")]
    pub lookback_secs: u64,
    /// `maxResults`: activities per page (1..=1000, default 1000).
    #[serde(default = "thousand")]
    pub page_size: u32,
    /// Seconds between polls once caught up (default 60).
    #[serde(default = "sixty")]
    pub interval_secs: u64,
    /// Consecutive failed intervals before a `source-unhealthy` finding (default 3).
    #[serde(default = "three")]
    pub unhealthy_after: u32,
    /// Admin SDK base URL (default `[google] admin_base_url`, else
    /// `https://admin.googleapis.com`).
    #[serde(default)]
    pub base_url: Option<String>,
}

fn default_applications() -> Vec<String> {
    ["login", "token", "admin"].map(String::from).to_vec()
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

impl GoogleReportsConfig {
    /// The overlap of an application.
    pub fn overlap(&self, application: &str) -> u64 {
        self.overlap_secs
            .get(application)
            .copied()
            .unwrap_or(DEFAULT_OVERLAP_SECS)
    }

    /// Checks the entry.
    pub fn resolve(&mut self, key: &str, c: &mut crate::config::Checker<'_>) {
        if self.applications.is_empty() {
            c.error(format!("{key}.applications"), "names no application");
        }
        for a in &self.applications {
            if a.is_empty() || !a.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                c.error(
                    format!("{key}.applications"),
                    format!("`{a}` is not an application name"),
                );
            }
        }
        for a in self.overlap_secs.keys() {
            if !self.applications.contains(a) {
                c.error(
                    format!("{key}.overlap_secs.{a}"),
                    "names an application the source does not read",
                );
            }
        }
        if self.overlap("login") < MIN_LOGIN_OVERLAP_SECS {
            c.error(
                format!("{key}.overlap_secs.login"),
                format!(
                    "must be at least {MIN_LOGIN_OVERLAP_SECS} (login events arrive hours late)"
                ),
            );
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

    use super::GoogleReportsConfig;
    use crate::cloud::CloudError;
    use crate::cloud::rate::RateLimiter;
    use crate::cloud::token::{Api, urlencode};
    use crate::json::JsonValueTrait;
    use crate::model::RecordKind;
    use crate::source::window::{Feed, Page, Stream, Windowed, take_rows};
    use crate::source::{Source, SourceError};
    use crate::state::StateStore;

    pub(super) fn build(
        cfg: &GoogleReportsConfig,
        state: Arc<dyn StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn Source>, SourceError> {
        let google = clients.google.as_ref().ok_or_else(|| SourceError::Build {
            source_name: "google_reports".into(),
            message: "no Google client was built ([google], feature `gcp`)".into(),
        })?;
        let subject = google
            .subject
            .as_deref()
            .ok_or_else(|| SourceError::Build {
                source_name: "google_reports".into(),
                message: "the Reports API answers a Workspace admin only: set [google] subject \
                      (domain-wide delegation)"
                    .into(),
            })?;
        let mut api = google.admin.clone();
        if let Some(b) = &cfg.base_url {
            api.base_url = b.trim_end_matches('/').to_string();
        }
        let name = format!("google_reports:{subject}");
        let streams = cfg
            .applications
            .iter()
            .map(|app| Stream {
                name: app.clone(),
                kind: RecordKind::GoogleReports,
                overlap: chrono::Duration::seconds(cfg.overlap(app) as i64),
                lookback: chrono::Duration::seconds(cfg.lookback_secs as i64),
                id: |v| {
                    let id = v.get("id")?;
                    Some(format!(
                        "{}|{}",
                        id.get("uniqueQualifier")?.as_str()?,
                        id.get("time")?.as_str()?
                    ))
                },
                feed: Box::new(ReportsFeed {
                    api: api.clone(),
                    application: app.clone(),
                    max_results: cfg.page_size,
                    limits: clients.rates.reports.clone(),
                    key: name.clone(),
                }),
            })
            .collect();
        Ok(Box::new(Windowed::new(
            name,
            Duration::from_secs(cfg.interval_secs),
            cfg.unhealthy_after,
            state,
            streams,
        )))
    }

    /// One application's activities.
    struct ReportsFeed {
        api: Api,
        application: String,
        max_results: u32,
        limits: RateLimiter,
        key: String,
    }

    impl ReportsFeed {
        /// The page at `start` (RFC 3339, seconds) with an optional page token. The
        /// continuation is `<startTime> <pageToken>`: a page token is only valid with the
        /// parameters of its first request.
        async fn page(&self, start: &str, token: Option<&str>) -> Result<Page, CloudError> {
            let path = format!(
                "/admin/reports/v1/activity/users/all/applications/{}",
                urlencode(&self.application)
            );
            let mut url = format!(
                "{}?startTime={}&maxResults={}",
                self.api.url(&path),
                urlencode(start),
                self.max_results
            );
            if let Some(t) = token {
                url.push_str(&format!("&pageToken={}", urlencode(t)));
            }
            let answer = self
                .api
                .send(
                    reqwest::Method::GET,
                    &url,
                    None,
                    &[],
                    Some((&self.limits, &self.key)),
                )
                .await?;
            let mut v = answer.records(&self.api.url(&path))?;
            // No activity in the range: Google leaves `items` out.
            let Some(rows) = take_rows(&mut v, "items", true) else {
                return Err(CloudError::Decode {
                    url: self.api.url(&path),
                    message: "`items` is not an array".into(),
                });
            };
            let next = v
                .get("nextPageToken")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .map(|n| format!("{start} {n}"));
            Ok(Page { rows, next })
        }
    }

    #[async_trait::async_trait]
    impl Feed for ReportsFeed {
        async fn first(&self, from: DateTime<Utc>) -> Result<Page, CloudError> {
            let start = from.to_rfc3339_opts(SecondsFormat::Secs, true);
            self.page(&start, None).await
        }

        async fn next(&self, next: &str) -> Result<Page, CloudError> {
            let (start, token) = next.split_once(' ').unwrap_or((next, ""));
            self.page(start, Some(token)).await
        }
    }
}
