//! `msgraph`: Microsoft Entra sign-in logs and directory audit logs from Microsoft Graph
//! (`GET /auditLogs/signIns`, `GET /auditLogs/directoryAudits`), one tenant per source entry
//! (several entries for several tenants; a multi-tenant app registration serves them all).
//!
//! Each endpoint is a stream of the shared [`window`](super::window) core: `$filter` on
//! `createdDateTime ge` / `activityDateTime ge` (cursor minus the overlap, at least 15 minutes:
//! Entra writes rows minutes late), `$top` up to 1000, `@odata.nextLink` followed as given
//! (only to the configured Graph host), rows of the overlap dropped by `id`. Requests of one
//! tenant share one limit of 5 per 10 s (`Clients::rates.graph`, also across source entries),
//! retries included; 429 and 503 wait for `Retry-After` (the shared retry helper).
//!
//! Permissions: application permissions `AuditLog.Read.All` and `Directory.Read.All`, admin
//! consented, and an Entra ID P1/P2 licence for sign-in logs.

use serde::Deserialize;

/// Overlap below which late sign-in rows are known to be missed.
pub const MIN_OVERLAP_SECS: u64 = 900;

/// A Graph audit log endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Endpoint {
    /// `/auditLogs/signIns` (interactive user sign-ins in v1.0; every kind in beta).
    #[serde(rename = "signIns")]
    SignIns,
    /// `/auditLogs/directoryAudits`.
    #[serde(rename = "directoryAudits")]
    DirectoryAudits,
}

impl Endpoint {
    /// Every endpoint, the default.
    pub const ALL: [Endpoint; 2] = [Endpoint::SignIns, Endpoint::DirectoryAudits];

    /// The path segment after `/auditLogs/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::SignIns => "signIns",
            Endpoint::DirectoryAudits => "directoryAudits",
        }
    }

    /// The time property `$filter` works on.
    pub fn time_field(self) -> &'static str {
        match self {
            Endpoint::SignIns => "createdDateTime",
            Endpoint::DirectoryAudits => "activityDateTime",
        }
    }
}

/// `[[sources]] type = "msgraph"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgraphConfig {
    /// Directory (tenant) id (default `[azure] tenant_id`).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Endpoints to read (default both: `signIns`, `directoryAudits`).
    #[serde(default = "all_endpoints")]
    pub endpoints: Vec<Endpoint>,
    /// Graph version: `v1.0` (default) or `beta` (non-interactive and service-principal
    /// sign-ins too).
    #[serde(default = "v1")]
    pub api_version: String,
    /// How far each query reaches back before the newest row seen, in seconds (default and
    /// least 900).
    #[serde(default = "min_overlap")]
    pub overlap_secs: u64,
    /// How far back the first poll reads, in seconds (default one day).
    #[serde(default = "one_day")]
    pub lookback_secs: u64,
    /// `$top`: rows per page (1..=1000, default 1000).
    #[serde(default = "thousand")]
    pub page_size: u32,
    /// Seconds between polls once caught up (default 60).
    #[serde(default = "sixty")]
    pub interval_secs: u64,
    /// Consecutive failed intervals before a `source-unhealthy` finding (default 3).
    #[serde(default = "three")]
    pub unhealthy_after: u32,
    /// Graph root (default `[azure] graph_base_url`, else `https://graph.microsoft.com`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Token authority (default `[azure] authority_host`, else
    /// `https://login.microsoftonline.com`).
    #[serde(default)]
    pub authority_host: Option<String>,
}

fn all_endpoints() -> Vec<Endpoint> {
    Endpoint::ALL.to_vec()
}
fn v1() -> String {
    "v1.0".into()
}
fn min_overlap() -> u64 {
    MIN_OVERLAP_SECS
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

impl MsgraphConfig {
    /// Checks the entry.
    pub fn resolve(&mut self, key: &str, c: &mut crate::config::Checker<'_>) {
        if self.overlap_secs < MIN_OVERLAP_SECS {
            c.error(
                format!("{key}.overlap_secs"),
                format!("must be at least {MIN_OVERLAP_SECS} (Entra writes rows minutes late)"),
            );
        }
        c.between(format!("{key}.page_size"), self.page_size.into(), 1, 1000);
        if !matches!(self.api_version.as_str(), "v1.0" | "beta") {
            c.error(format!("{key}.api_version"), "must be `v1.0` or `beta`");
        }
        if self.endpoints.is_empty() {
            c.error(format!("{key}.endpoints"), "names no endpoint");
        }
        c.at_least(format!("{key}.interval_secs"), self.interval_secs, 1);
        c.at_least(
            format!("{key}.unhealthy_after"),
            self.unhealthy_after.into(),
            1,
        );
        c.url(format!("{key}.base_url"), self.base_url.as_deref());
        c.url(
            format!("{key}.authority_host"),
            self.authority_host.as_deref(),
        );
    }

    /// Builds the source over the state store and the process's Entra app.
    #[cfg(feature = "azure")]
    pub fn build(
        &self,
        state: std::sync::Arc<dyn crate::state::StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn super::Source>, super::SourceError> {
        imp::build(self, state, clients)
    }
}

#[cfg(feature = "azure")]
mod imp {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, SecondsFormat, Utc};

    use super::{Endpoint, MsgraphConfig};
    use crate::cloud::CloudError;
    use crate::cloud::rate::RateLimiter;
    use crate::cloud::token::{Api, urlencode};
    use crate::json::JsonValueTrait;
    use crate::model::RecordKind;
    use crate::source::window::{Feed, Page, Stream, Windowed, take_rows};
    use crate::source::{Source, SourceError};
    use crate::state::StateStore;

    pub(super) fn build(
        cfg: &MsgraphConfig,
        state: Arc<dyn StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn Source>, SourceError> {
        let fail = |message: String| SourceError::Build {
            source_name: "msgraph".into(),
            message,
        };
        let entra = clients.entra.as_ref().ok_or_else(|| {
            fail("no Entra credential: set [azure] client_id and credential".into())
        })?;
        let tenant = cfg
            .tenant_id
            .clone()
            .or_else(|| entra.tenant_id.clone())
            .ok_or_else(|| fail("no tenant: set tenant_id or [azure] tenant_id".into()))?;
        let api = entra
            .graph(
                Some(&tenant),
                cfg.authority_host.as_deref(),
                cfg.base_url.as_deref(),
                &cfg.api_version,
            )
            .map_err(|e| fail(e.to_string()))?;
        let name = format!("msgraph:{tenant}");
        let streams = cfg
            .endpoints
            .iter()
            .map(|&endpoint| Stream {
                name: endpoint.as_str().into(),
                kind: match endpoint {
                    Endpoint::SignIns => RecordKind::EntraSignin,
                    Endpoint::DirectoryAudits => RecordKind::EntraAudit,
                },
                overlap: chrono::Duration::seconds(cfg.overlap_secs as i64),
                lookback: chrono::Duration::seconds(cfg.lookback_secs as i64),
                id: |v| v.get("id").and_then(|i| i.as_str()).map(str::to_string),
                feed: Box::new(GraphFeed {
                    api: api.clone(),
                    endpoint,
                    top: cfg.page_size,
                    limits: clients.rates.graph.clone(),
                    tenant: tenant.clone(),
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

    /// One endpoint of one tenant.
    struct GraphFeed {
        api: Api,
        endpoint: Endpoint,
        top: u32,
        limits: RateLimiter,
        tenant: String,
    }

    impl GraphFeed {
        async fn get(&self, url: &str) -> Result<Page, CloudError> {
            let answer = self
                .api
                .send(
                    reqwest::Method::GET,
                    url,
                    None,
                    &[],
                    Some((&self.limits, &self.tenant)),
                )
                .await?;
            let shown = self
                .api
                .url(&format!("/auditLogs/{}", self.endpoint.as_str()));
            let mut v = answer.records(&shown)?;
            let Some(rows) = take_rows(&mut v, "value", false) else {
                return Err(CloudError::Decode {
                    url: shown,
                    message: "no `value` array".into(),
                });
            };
            let next = v
                .get("@odata.nextLink")
                .and_then(|n| n.as_str())
                .map(str::to_string);
            Ok(Page { rows, next })
        }
    }

    /// Whether `link` points at the same scheme, host and port as `base` (a bearer token is
    /// only ever sent to the configured Graph).
    fn same_origin(base: &str, link: &str) -> bool {
        match (reqwest::Url::parse(base), reqwest::Url::parse(link)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin(),
            _ => false,
        }
    }

    #[async_trait::async_trait]
    impl Feed for GraphFeed {
        async fn first(&self, from: DateTime<Utc>) -> Result<Page, CloudError> {
            let filter = format!(
                "{} ge {}",
                self.endpoint.time_field(),
                from.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            let url = format!(
                "{}?$filter={}&$top={}",
                self.api
                    .url(&format!("/auditLogs/{}", self.endpoint.as_str())),
                urlencode(&filter),
                self.top
            );
            self.get(&url).await
        }

        async fn next(&self, next: &str) -> Result<Page, CloudError> {
            if !same_origin(&self.api.base_url, next) {
                return Err(CloudError::Decode {
                    url: self
                        .api
                        .url(&format!("/auditLogs/{}", self.endpoint.as_str())),
                    message: "@odata.nextLink points at another host; not followed".into(),
                });
            }
            self.get(next).await
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn next_links_stay_on_the_graph_host() {
            assert!(same_origin(
                "https://graph.microsoft.com/v1.0",
                "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x"
            ));
            assert!(!same_origin(
                "https://graph.microsoft.com/v1.0",
                "https://evil.example/v1.0/auditLogs/signIns?$skiptoken=x"
            ));
            assert!(!same_origin(
                "https://graph.microsoft.com/v1.0",
                "http://graph.microsoft.com/v1.0/x"
            ));
        }
    }
}
