//! `aws_cloudtrail`: CloudTrail management events from `LookupEvents`, one account per source
//! entry (optionally through a role to assume) and one stream per region.
//!
//! Each region is a stream of the shared [`window`](super::window) core: `StartTime` is the
//! cursor minus the overlap (default 15 minutes: CloudTrail delivers about 5 minutes late and
//! not in order), `EndTime` the time of the query's first page (kept with `NextToken`, which
//! CloudTrail only accepts with the parameters of the first call), 50 events per page, events
//! read again in the overlap dropped by `eventID`; the cursor (namespace `cursor`, key
//! `aws_cloudtrail:<account>:<region>`) commits with the batch. The `CloudTrailEvent` field
//! of each event is the CloudTrail record itself.
//!
//! Requests of one account and region share one limit of 2 per second
//! (`Clients::rates.cloudtrail`, also across source entries), retries included: the SDK's own
//! retries are off and the shared retry helper retries throttling (`ThrottlingException`),
//! server errors and timeouts.
//!
//! Permissions: `cloudtrail:LookupEvents` (and `sts:AssumeRole` on `role_arn` when set, whose
//! trust policy names picket's role).

use serde::Deserialize;

/// Overlap below which CloudTrail's documented delivery delay loses events.
pub const MIN_OVERLAP_SECS: u64 = 300;

/// `[[sources]] type = "aws_cloudtrail"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsCloudtrailConfig {
    /// Regions to read (default: `[aws] region`). Global services (IAM, STS, console sign-in)
    /// record in `us-east-1`.
    #[serde(default)]
    pub regions: Vec<String>,
    /// The account, for the source's name and cursor keys (default: the account of
    /// `role_arn`, else `default`).
    #[serde(default)]
    pub account_id: Option<String>,
    /// A role to assume for this account (cross-account reading).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Endpoint for CloudTrail of this source (emulators, VPC endpoints), instead of
    /// `[aws] endpoint_url`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// How far each query reaches back before the newest event seen, in seconds (default
    /// 900, at least 300).
    #[serde(default = "default_overlap")]
    pub overlap_secs: u64,
    /// How far back the first poll reads, in seconds (default one hour; LookupEvents keeps
    /// 90 days).
    #[serde(default = "default_lookback")]
    pub lookback_secs: u64,
    /// Seconds one request may take before it is retried (default 30).
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// Seconds between polls once caught up (default 60).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Consecutive failed intervals before a `source-unhealthy` finding (default 3).
    #[serde(default = "super::default_unhealthy_after")]
    pub unhealthy_after: u32,
}

fn default_overlap() -> u64 {
    900
}
fn default_lookback() -> u64 {
    3600
}
fn default_timeout() -> u64 {
    30
}
fn default_interval() -> u64 {
    60
}

impl AwsCloudtrailConfig {
    /// The account this entry reads (see `account_id`).
    pub fn account(&self) -> String {
        self.account_id
            .clone()
            .or_else(|| {
                self.role_arn
                    .as_deref()
                    .and_then(|a| a.split(':').nth(4))
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "default".into())
    }

    /// The source's name: `aws_cloudtrail:<account>`.
    pub fn name(&self) -> String {
        format!("aws_cloudtrail:{}", self.account())
    }

    /// Checks the entry.
    pub fn resolve(&mut self, key: &str, c: &mut crate::config::Checker<'_>) {
        if !cfg!(feature = "aws") {
            c.error(
                format!("{key}.type"),
                "aws_cloudtrail needs the `aws` feature",
            );
        }
        if self.overlap_secs < MIN_OVERLAP_SECS {
            c.error(
                format!("{key}.overlap_secs"),
                format!(
                    "must be at least {MIN_OVERLAP_SECS} (CloudTrail delivers events about 5 minutes late)"
                ),
            );
        }
        if self.lookback_secs > 90 * 86_400 {
            c.error(
                format!("{key}.lookback_secs"),
                "must be at most 7776000 (LookupEvents keeps 90 days)",
            );
        }
        if let Some(r) = &self.role_arn
            && !(r.starts_with("arn:") && r.contains(":role/"))
        {
            c.error(
                format!("{key}.role_arn"),
                format!("`{r}` is not a role ARN"),
            );
        }
        c.at_least(
            format!("{key}.request_timeout_secs"),
            self.request_timeout_secs,
            1,
        );
        c.at_least(format!("{key}.interval_secs"), self.interval_secs, 1);
        c.at_least(
            format!("{key}.unhealthy_after"),
            self.unhealthy_after.into(),
            1,
        );
    }

    /// Builds the source over the state store and the process's AWS client settings.
    #[cfg(feature = "aws")]
    pub fn build(
        &self,
        state: std::sync::Arc<dyn crate::state::StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn super::Source>, super::SourceError> {
        imp::build(self, state, clients)
    }
}

#[cfg(feature = "aws")]
mod imp {
    use std::sync::Arc;
    use std::time::Duration;

    use aws_config::SdkConfig;
    use aws_sdk_cloudtrail::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    use aws_sdk_cloudtrail::primitives::DateTime as AwsTime;
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};
    use tokio::sync::OnceCell;

    use super::AwsCloudtrailConfig;
    use crate::cloud::CloudError;
    use crate::cloud::rate::RateLimiter;
    use crate::cloud::retry::{Attempt, RetryPolicy, retry};
    use crate::json::JsonValueTrait;
    use crate::model::RecordKind;
    use crate::source::window::{Feed, Page, Stream, Windowed};
    use crate::source::{Source, SourceError};
    use crate::state::StateStore;

    /// Events per `LookupEvents` page (the API's maximum).
    const PAGE: i32 = 50;

    pub(super) fn build(
        cfg: &AwsCloudtrailConfig,
        state: Arc<dyn StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn Source>, SourceError> {
        let name = cfg.name();
        let sdk = clients.aws.as_ref().ok_or_else(|| SourceError::Build {
            source_name: name.clone(),
            message: "the [aws] client settings were not built".into(),
        })?;
        let regions: Vec<String> = if cfg.regions.is_empty() {
            let r = sdk
                .region()
                .map(|r| r.to_string())
                .ok_or_else(|| SourceError::Build {
                    source_name: name.clone(),
                    message: "no region: set regions = [..] or [aws] region".into(),
                })?;
            vec![r]
        } else {
            cfg.regions.clone()
        };
        let account = cfg.account();
        let credentials = Arc::new(Credentials {
            sdk: sdk.clone(),
            role_arn: cfg.role_arn.clone(),
            external_id: cfg.external_id.clone(),
            provider: OnceCell::new(),
        });
        let streams = regions
            .iter()
            .map(|region| Stream {
                name: region.clone(),
                kind: RecordKind::Cloudtrail,
                overlap: chrono::Duration::seconds(cfg.overlap_secs as i64),
                lookback: chrono::Duration::seconds(cfg.lookback_secs as i64),
                id: |v| {
                    v.get("eventID")
                        .and_then(|i| i.as_str())
                        .map(str::to_string)
                },
                feed: Box::new(LookupFeed {
                    sdk: crate::cloud::aws::with_overrides(
                        sdk,
                        Some(region),
                        cfg.endpoint_url.as_deref(),
                    ),
                    credentials: credentials.clone(),
                    client: OnceCell::new(),
                    timeout: Duration::from_secs(cfg.request_timeout_secs),
                    limits: clients.rates.cloudtrail.clone(),
                    key: format!("{account}/{region}"),
                    region: region.clone(),
                    policy: RetryPolicy::default(),
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

    /// The account's credentials: the shared ones, or the assumed role's (built on first use,
    /// refreshed by the SDK before they expire).
    struct Credentials {
        sdk: SdkConfig,
        role_arn: Option<String>,
        external_id: Option<String>,
        provider: OnceCell<Option<aws_sdk_cloudtrail::config::SharedCredentialsProvider>>,
    }

    impl Credentials {
        async fn provider(&self) -> Option<aws_sdk_cloudtrail::config::SharedCredentialsProvider> {
            self.provider
                .get_or_init(|| async {
                    let role = self.role_arn.as_ref()?;
                    let mut b = aws_config::sts::AssumeRoleProvider::builder(role)
                        .session_name("picket-cloudtrail")
                        .configure(&self.sdk);
                    if let Some(id) = &self.external_id {
                        b = b.external_id(id);
                    }
                    Some(aws_sdk_cloudtrail::config::SharedCredentialsProvider::new(
                        b.build().await,
                    ))
                })
                .await
                .clone()
        }
    }

    /// `LookupEvents` of one region.
    struct LookupFeed {
        sdk: SdkConfig,
        credentials: Arc<Credentials>,
        client: OnceCell<aws_sdk_cloudtrail::Client>,
        timeout: Duration,
        limits: RateLimiter,
        key: String,
        region: String,
        policy: RetryPolicy,
    }

    /// A page continuation: CloudTrail's token with the time range it belongs to.
    #[derive(Serialize, Deserialize)]
    struct Continuation {
        token: String,
        start: i64,
        end: i64,
    }

    impl LookupFeed {
        async fn client(&self) -> &aws_sdk_cloudtrail::Client {
            self.client
                .get_or_init(|| async {
                    let mut b = aws_sdk_cloudtrail::config::Builder::from(&self.sdk)
                        .retry_config(aws_config::retry::RetryConfig::disabled())
                        .timeout_config(
                            aws_config::timeout::TimeoutConfig::builder()
                                .operation_attempt_timeout(self.timeout)
                                .build(),
                        );
                    if let Some(p) = self.credentials.provider().await {
                        b = b.credentials_provider(p);
                    }
                    aws_sdk_cloudtrail::Client::from_conf(b.build())
                })
                .await
        }

        fn operation(&self) -> String {
            format!("cloudtrail:LookupEvents {}", self.region)
        }

        /// One page, rate limited and retried.
        async fn page(
            &self,
            start: i64,
            end: i64,
            token: Option<String>,
        ) -> Result<Page, CloudError> {
            let client = self.client().await;
            let what = self.operation();
            let out = retry(&self.policy, &what, |_| {
                let token = token.clone();
                async move {
                    self.limits.acquire(&self.key).await;
                    let sent = client
                        .lookup_events()
                        .start_time(AwsTime::from_secs(start))
                        .end_time(AwsTime::from_secs(end))
                        .max_results(PAGE)
                        .set_next_token(token)
                        .send()
                        .await;
                    match sent {
                        Ok(out) => Attempt::Done(out),
                        Err(e) => {
                            let retryable = retryable(&e);
                            let error = CloudError::Sdk {
                                operation: self.operation(),
                                message: DisplayErrorContext(&e).to_string(),
                                retryable,
                            };
                            if retryable {
                                Attempt::Retry { error, after: None }
                            } else {
                                Attempt::Fail(error)
                            }
                        }
                    }
                }
            })
            .await?;
            let mut rows = Vec::with_capacity(out.events().len());
            for ev in out.events() {
                let Some(text) = ev.cloud_trail_event() else {
                    continue;
                };
                match crate::json::parse(text.as_bytes()) {
                    Ok(v) => rows.push(v),
                    Err(e) => tracing::warn!(
                        operation = %self.operation(),
                        event_id = ev.event_id().unwrap_or(""),
                        error = %e,
                        "CloudTrailEvent is not JSON; event skipped"
                    ),
                }
            }
            let next = out.next_token().map(|t| {
                serde_json::to_string(&Continuation {
                    token: t.to_string(),
                    start,
                    end,
                })
                .unwrap_or_default()
            });
            Ok(Page { rows, next })
        }
    }

    /// Throttling, server errors, timeouts and connection failures.
    fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
        match e {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            _ => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                status.is_some_and(crate::cloud::retry::retryable_status)
                    || e.code().is_some_and(|c| {
                        c.contains("Throttl")
                            || c == "RequestLimitExceeded"
                            || c == "TooManyRequestsException"
                    })
            }
        }
    }

    #[async_trait::async_trait]
    impl Feed for LookupFeed {
        async fn first(&self, from: DateTime<Utc>) -> Result<Page, CloudError> {
            self.page(from.timestamp(), Utc::now().timestamp(), None)
                .await
        }

        async fn next(&self, next: &str) -> Result<Page, CloudError> {
            let c: Continuation = serde_json::from_str(next).map_err(|e| CloudError::Decode {
                url: self.operation(),
                message: format!("stored continuation: {e}"),
            })?;
            self.page(c.start, c.end, Some(c.token)).await
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn config_keys_default_and_validate() {
        use crate::config::Config;
        use crate::source::SourceConfig;
        use std::path::Path;
        let parse =
            |text: &str| Config::parse(text, Path::new("picket.toml"), Path::new("/etc/picket"));
        let text = "[[sources]]\ntype = \"aws_cloudtrail\"\nregions = [\"us-east-1\"]\nrole_arn = \"arn:aws:iam::111122223333:role/picket-read\"\n";
        if !cfg!(feature = "aws") {
            assert!(
                parse(text).unwrap_err()[0]
                    .to_string()
                    .contains("`aws` feature")
            );
            return;
        }
        let c = parse(text).unwrap();
        let SourceConfig::AwsCloudtrail(ct) = &c.raw.sources[0] else {
            panic!("{:?}", c.raw.sources[0]);
        };
        assert_eq!(ct.name(), "aws_cloudtrail:111122223333");
        assert_eq!(
            (ct.overlap_secs, ct.lookback_secs, ct.interval_secs),
            (900, 3600, 60)
        );
        let errors = parse(
            "[[sources]]\ntype = \"aws_cloudtrail\"\noverlap_secs = 60\nrole_arn = \"picket\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["sources[0].overlap_secs", "sources[0].role_arn"]);
    }
}
