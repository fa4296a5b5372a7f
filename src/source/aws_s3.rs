//! `aws_s3`: CloudTrail log objects (`.json.gz`) announced through an SQS queue.
//!
//! The announcement in a message body may be
//! * an S3 event notification (`{"Records":[{"eventSource":"aws:s3","eventName":
//!   "ObjectCreated:Put","s3":{"bucket":{"name":..},"object":{"key":..}}}]}`), whose keys are
//!   URL-encoded (`+` is a space);
//! * the same wrapped by SNS (`{"Type":"Notification","Message":"<the notification as a
//!   string>"}`), or SNS with raw message delivery (the notification itself);
//! * an EventBridge event `{"source":"aws.s3","detail-type":"Object Created","detail":
//!   {"bucket":{"name":..},"object":{"key":..}}}` (keys as they are);
//! * CloudTrail's own SNS delivery notice `{"s3Bucket":..,"s3ObjectKey":[..]}`.
//!
//! `s3:TestEvent` messages, other event types and CloudTrail digest files announce nothing.
//! [`object_refs`] and [`fetch_records`] are shared with the Lambda `ingest` handler.
//!
//! The source (feature `aws`): each poll long-polls the queue once (up to 10 messages),
//! downloads the announced objects concurrently and hands their records out as one batch; the
//! messages are deleted in [`Source::commit`], after the batch's findings were recorded and
//! notified. A redelivered message (crash before the delete) is harmless: the finding ledger
//! drops findings already reported. A poisoned message — a body that announces nothing
//! readable, a missing object, an object that does not decode — is logged, counted as an
//! error and left in the queue, so that SQS moves it to the dead-letter queue after the
//! queue's `maxReceiveCount`: picket never retries it forever. Other failures (throttling
//! past the SDK's retries, access denied, the network) fail the poll; the messages reappear
//! after their visibility timeout.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

#[cfg(feature = "aws")]
use super::{Source, SourceError};
#[cfg(feature = "aws")]
use crate::cloud::Clients;
use crate::config::Checker;

/// One S3 object announced by a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key (decoded).
    pub key: String,
    /// Size in bytes, when announced.
    pub size: Option<u64>,
    /// Version id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// When S3 says the object was created (for the landing-to-finding latency).
    pub event_time: Option<DateTime<Utc>>,
}

impl ObjectRef {
    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// CloudTrail digest files (`.../CloudTrail-Digest/...`) hold hashes, not events.
    fn is_digest(&self) -> bool {
        self.key.contains("/CloudTrail-Digest/")
    }
}

/// Why a message body announces nothing readable.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON.
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    /// JSON of a shape that is no S3 notification.
    #[error("message body is no S3 event notification, SNS envelope or EventBridge event ({0})")]
    Unrecognised(String),
    /// A notification record without its bucket or key, or with a key that does not decode.
    #[error("S3 event notification record {index}: {message}")]
    BadRecord {
        /// Index in `Records`.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// The objects an SQS message body announces (in order; empty for `s3:TestEvent`, other event
/// types and CloudTrail digest files).
pub fn object_refs(body: &str) -> Result<Vec<ObjectRef>, MessageError> {
    let v: Value = serde_json::from_str(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let mut out = refs_of(&v, 0)?;
    out.retain(|o| !o.is_digest());
    Ok(out)
}

fn refs_of(v: &Value, depth: u8) -> Result<Vec<ObjectRef>, MessageError> {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str);
    // SNS envelope: the notification is a string in `Message`.
    if s("/Type") == Some("Notification")
        && let Some(inner) = s("/Message")
        && depth == 0
    {
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| MessageError::NotJson(format!("SNS Message: {e}")))?;
        return refs_of(&inner, depth + 1);
    }
    if s("/Event") == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        return notification_refs(records);
    }
    if s("/source") == Some("aws.s3") && v.get("detail-type").is_some() {
        if s("/detail-type") != Some("Object Created") {
            return Ok(Vec::new());
        }
        let (Some(bucket), Some(key)) = (s("/detail/bucket/name"), s("/detail/object/key")) else {
            return Err(MessageError::Unrecognised(
                "EventBridge Object Created without detail.bucket.name or detail.object.key".into(),
            ));
        };
        return Ok(vec![ObjectRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: v.pointer("/detail/object/size").and_then(Value::as_u64),
            version_id: s("/detail/object/version-id").map(str::to_string),
            event_time: s("/time").and_then(parse_time),
        }]);
    }
    if let (Some(bucket), Some(keys)) = (
        s("/s3Bucket"),
        v.get("s3ObjectKey").and_then(Value::as_array),
    ) {
        return Ok(keys
            .iter()
            .filter_map(Value::as_str)
            .map(|key| ObjectRef {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: None,
                version_id: None,
                event_time: None,
            })
            .collect());
    }
    let keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).take(8).collect())
        .unwrap_or_default();
    Err(MessageError::Unrecognised(format!(
        "top-level keys: {}",
        crate::alert::escape::terminal(&keys.join(", "))
    )))
}

fn notification_refs(records: &[Value]) -> Result<Vec<ObjectRef>, MessageError> {
    let mut out = Vec::new();
    for (index, r) in records.iter().enumerate() {
        let s = |p: &str| r.pointer(p).and_then(Value::as_str);
        let created = s("/eventName").is_some_and(|n| n.starts_with("ObjectCreated:"));
        if s("/eventSource") != Some("aws:s3") || !created {
            continue;
        }
        let bad = |message: &str| MessageError::BadRecord {
            index,
            message: message.to_string(),
        };
        let bucket = s("/s3/bucket/name").ok_or_else(|| bad("no s3.bucket.name"))?;
        let key = s("/s3/object/key").ok_or_else(|| bad("no s3.object.key"))?;
        out.push(ObjectRef {
            bucket: bucket.to_string(),
            key: url_decode(key).ok_or_else(|| bad("s3.object.key is not UTF-8 once decoded"))?,
            size: r.pointer("/s3/object/size").and_then(Value::as_u64),
            version_id: s("/s3/object/versionId").map(str::to_string),
            event_time: s("/eventTime").and_then(parse_time),
        });
    }
    Ok(out)
}

/// Decodes a key of an S3 event notification: form encoding, `+` is a space.
fn url_decode(key: &str) -> Option<String> {
    let plus = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(feature = "aws")]
pub use fetch::{FetchError, fetch_records};

#[cfg(feature = "aws")]
mod fetch {
    use std::sync::Arc;

    use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
    use aws_sdk_s3::operation::get_object::GetObjectError;

    use super::ObjectRef;
    use crate::model::RecordKind;
    use crate::source::decode::{self, DecodeError, Limits, RawRecord};

    /// Why an announced object gave no records.
    #[derive(Debug, thiserror::Error)]
    pub enum FetchError {
        /// The object does not exist (deleted, or a wrong key): poison.
        #[error("{url}: no such object")]
        Missing {
            /// `s3://bucket/key`.
            url: String,
        },
        /// The object is larger than the decode limit: poison.
        #[error("{url}: {size} bytes, more than the limit of {limit}")]
        TooLarge {
            /// `s3://bucket/key`.
            url: String,
            /// Its size.
            size: u64,
            /// The limit.
            limit: u64,
        },
        /// The object does not decode (not gzip/JSON, truncated): poison.
        #[error("{url}: {source}")]
        Decode {
            /// `s3://bucket/key`.
            url: String,
            /// The first record that failed.
            #[source]
            source: DecodeError,
        },
        /// GetObject failed otherwise (throttling past the SDK's retries, access, network).
        #[error("{url}: GetObject: {message}")]
        Get {
            /// `s3://bucket/key`.
            url: String,
            /// The SDK's error with its context.
            message: String,
            /// Throttling, a server error or a timeout.
            retryable: bool,
        },
    }

    impl FetchError {
        /// The object itself is bad: retrying never helps, the message belongs in the DLQ.
        pub fn is_poison(&self) -> bool {
            !matches!(self, FetchError::Get { .. })
        }

        /// A later attempt may succeed (throttling, 5xx, timeouts).
        pub fn is_retryable(&self) -> bool {
            matches!(
                self,
                FetchError::Get {
                    retryable: true,
                    ..
                }
            )
        }
    }

    /// Downloads an object and decodes it (gzip or not) into CloudTrail records, all or
    /// nothing: one undecodable record makes the whole object an error, so that a message is
    /// either processed whole or left for the DLQ whole.
    pub async fn fetch_records(
        s3: &aws_sdk_s3::Client,
        obj: &ObjectRef,
        limits: Limits,
    ) -> Result<Vec<RawRecord>, FetchError> {
        let url = obj.url();
        let too_large = |size: u64| FetchError::TooLarge {
            url: url.clone(),
            size,
            limit: limits.max_document_bytes,
        };
        if let Some(size) = obj.size
            && size > limits.max_document_bytes
        {
            return Err(too_large(size));
        }
        let out = s3
            .get_object()
            .bucket(&obj.bucket)
            .key(&obj.key)
            .set_version_id(obj.version_id.clone())
            .send()
            .await
            .map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let missing = status == Some(404)
                    || matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                    || e.code() == Some("NoSuchKey")
                    || e.code() == Some("NoSuchBucket");
                if missing {
                    return FetchError::Missing { url: url.clone() };
                }
                let retryable = match &e {
                    aws_sdk_s3::error::SdkError::TimeoutError(_)
                    | aws_sdk_s3::error::SdkError::DispatchFailure(_)
                    | aws_sdk_s3::error::SdkError::ResponseError(_) => true,
                    _ => {
                        status.is_some_and(crate::cloud::retry::retryable_status)
                            || e.code()
                                .is_some_and(|c| c.contains("Throttl") || c == "SlowDown")
                    }
                };
                FetchError::Get {
                    url: url.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                    retryable,
                }
            })?;
        if let Some(size) = out.content_length().and_then(|n| u64::try_from(n).ok())
            && size > limits.max_document_bytes
        {
            return Err(too_large(size));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| FetchError::Get {
                url: url.clone(),
                message: format!("reading the body: {e}"),
                retryable: true,
            })?
            .into_bytes();
        let source: Arc<str> = Arc::from(url.as_str());
        let mut records = Vec::new();
        for item in decode::from_bytes(bytes, &source, limits) {
            match item {
                Ok(mut r) => {
                    r.kind = Some(RecordKind::Cloudtrail);
                    records.push(r);
                }
                Err(source) => return Err(FetchError::Decode { url, source }),
            }
        }
        Ok(records)
    }
}

/// `s3://bucket/prefix` split into bucket and prefix.
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
}

/// The delivery time CloudTrail writes into a log object's name
/// (`<account>_CloudTrail_<region>_20240102T0305Z_<random>.json.gz`).
pub fn key_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    name.split('_').find_map(|part| {
        (part.len() == 14 && part.ends_with('Z') && part.as_bytes().get(8) == Some(&b'T'))
            .then(|| chrono::NaiveDateTime::parse_from_str(part, "%Y%m%dT%H%MZ").ok())
            .flatten()
            .map(|t| t.and_utc())
    })
}

/// The day folders (`YYYY/MM/DD/`) whose objects may hold events of `[since, until]`:
/// CloudTrail files an object by its delivery time, up to about 15 minutes after its events.
pub fn day_folders(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<String> {
    let last = (until + chrono::Duration::hours(1)).date_naive();
    let mut day = since.date_naive();
    let mut out = Vec::new();
    while day <= last && out.len() < 36_600 {
        out.push(day.format("%Y/%m/%d/").to_string());
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    out
}

#[cfg(feature = "aws")]
pub use trail::{TrailObject, download, list_trail};

#[cfg(feature = "aws")]
mod trail {
    use aws_sdk_s3::error::DisplayErrorContext;
    use chrono::{DateTime, Utc};

    use super::{FetchError, ObjectRef, day_folders, key_time};

    /// A CloudTrail log object found by [`list_trail`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TrailObject {
        /// Where it is.
        pub object: ObjectRef,
        /// Delivery time from its name, when it has one.
        pub delivered: Option<DateTime<Utc>>,
    }

    fn list_err(bucket: &str, prefix: &str, e: impl std::fmt::Display) -> FetchError {
        FetchError::Get {
            url: format!("s3://{bucket}/{prefix}"),
            message: format!("ListObjectsV2: {e}"),
            retryable: false,
        }
    }

    /// One level of "folders" under `prefix`.
    async fn folders(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, FetchError> {
        let mut out = Vec::new();
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| list_err(bucket, prefix, DisplayErrorContext(&e)))?;
            out.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
        }
        Ok(out)
    }

    /// The `.../CloudTrail/<region>/` folders under `prefix`, found by walking the layout
    /// `AWSLogs/[<org id>/]<account>/CloudTrail/<region>/` one level at a time (never the
    /// objects themselves).
    async fn region_folders(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, FetchError> {
        let mut out = Vec::new();
        let mut todo = vec![(prefix.to_string(), 0u8)];
        while let Some((p, depth)) = todo.pop() {
            let last = p.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let parent = p.trim_end_matches('/').rsplit('/').nth(1).unwrap_or("");
            if parent == "CloudTrail" && !p.is_empty() {
                out.push(p);
                continue;
            }
            if depth > 5 {
                continue;
            }
            for sub in folders(s3, bucket, &p).await? {
                let name = sub.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                let descend = last == "CloudTrail"
                    || matches!(name, "AWSLogs" | "CloudTrail")
                    || name.starts_with("o-")
                    || (name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit()))
                    || (depth == 0 && !name.starts_with("CloudTrail-"));
                if descend {
                    todo.push((sub, depth + 1));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The CloudTrail log objects under `s3://bucket/prefix` that may hold events of
    /// `[since, until]`: the day folders of that range in every account and region folder,
    /// objects whose delivery time is outside the range (plus an hour) left out. Sorted by
    /// delivery time.
    pub async fn list_trail(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<TrailObject>, FetchError> {
        let mut out = Vec::new();
        let regions = region_folders(s3, bucket, prefix).await?;
        let late = chrono::Duration::hours(1);
        for region in &regions {
            for day in day_folders(since, until) {
                let p = format!("{region}{day}");
                let mut pages = s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&p)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| list_err(bucket, &p, DisplayErrorContext(&e)))?;
                    for o in page.contents() {
                        let Some(key) = o.key() else { continue };
                        let delivered = key_time(key);
                        if delivered.is_some_and(|t| t < since || t > until + late) {
                            continue;
                        }
                        out.push(TrailObject {
                            object: ObjectRef {
                                bucket: bucket.to_string(),
                                key: key.to_string(),
                                size: o.size().and_then(|n| u64::try_from(n).ok()),
                                version_id: None,
                                event_time: None,
                            },
                            delivered,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            a.delivered
                .cmp(&b.delivered)
                .then_with(|| a.object.key.cmp(&b.object.key))
        });
        Ok(out)
    }

    /// Downloads objects into `dest` as they are (compressed), `concurrency` at a time; the
    /// files are named by their order and the object's base name (never by the key's folders).
    /// Returns the files in the order of `objects`.
    pub async fn download(
        s3: &aws_sdk_s3::Client,
        objects: &[TrailObject],
        dest: &std::path::Path,
        concurrency: usize,
    ) -> Result<Vec<std::path::PathBuf>, FetchError> {
        let mut files = vec![std::path::PathBuf::new(); objects.len()];
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = 0usize;
        loop {
            while next < objects.len() && tasks.len() < concurrency.max(1) {
                let (s3, obj) = (s3.clone(), objects[next].object.clone());
                let base: String = obj
                    .key
                    .rsplit('/')
                    .next()
                    .unwrap_or("object")
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let path = dest.join(format!("{next:08}_{base}"));
                let i = next;
                tasks.spawn(async move {
                    let url = obj.url();
                    let get = |message: String, retryable: bool| FetchError::Get {
                        url: url.clone(),
                        message,
                        retryable,
                    };
                    let out = s3
                        .get_object()
                        .bucket(&obj.bucket)
                        .key(&obj.key)
                        .send()
                        .await
                        .map_err(|e| get(DisplayErrorContext(&e).to_string(), false))?;
                    let bytes = out
                        .body
                        .collect()
                        .await
                        .map_err(|e| get(e.to_string(), true))?
                        .into_bytes();
                    std::fs::write(&path, &bytes)
                        .map_err(|e| get(format!("writing {}: {e}", path.display()), false))?;
                    Ok::<_, FetchError>((i, path))
                });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (i, path) = joined.map_err(|e| FetchError::Get {
                url: "s3".into(),
                message: e.to_string(),
                retryable: false,
            })??;
            files[i] = path;
        }
        Ok(files)
    }
}

/// `[[sources]] type = "aws_s3"`: CloudTrail objects announced through an SQS queue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsS3Config {
    /// The queue's URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
    pub queue_url: String,
    /// Region of the queue and bucket, instead of `[aws] region`.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint for SQS and S3 of this source (emulators, VPC endpoints), instead of
    /// `[aws] endpoint_url`; S3 is then addressed path-style.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Seconds one receive waits for messages (SQS long polling, 0-20; default 10). The
    /// `picket run` loop waits this long on an empty queue, shutdown included.
    #[serde(default = "default_wait_time")]
    pub wait_time_secs: u32,
    /// Messages per receive (1-10, default 10).
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Seconds a received message stays hidden while its objects are processed (default 300):
    /// longer than a batch takes, or another reader gets it too (the ledger then drops the
    /// duplicate findings).
    #[serde(default = "default_visibility")]
    pub visibility_timeout_secs: u32,
    /// Seconds between polls once the queue is empty (default 1: long polling does the
    /// waiting).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Consecutive failed intervals before a `source-unhealthy` finding (default 3).
    #[serde(default = "super::default_unhealthy_after")]
    pub unhealthy_after: u32,
}

fn default_wait_time() -> u32 {
    10
}

fn default_max_messages() -> u32 {
    10
}

fn default_visibility() -> u32 {
    300
}

fn default_interval() -> u64 {
    1
}

/// What a build without the `aws` feature says.
const NEEDS_AWS: &str = "aws_s3 needs the `aws` feature";

impl AwsS3Config {
    /// Checks the entry (`key` is its path, `sources[2]`).
    pub fn resolve(&mut self, key: &str, c: &mut Checker<'_>) {
        if !cfg!(feature = "aws") {
            c.error(format!("{key}.type"), NEEDS_AWS);
        }
        if !(self.queue_url.starts_with("https://") || self.queue_url.starts_with("http://")) {
            c.error(
                format!("{key}.queue_url"),
                "must be the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
            );
        }
        if self.wait_time_secs > 20 {
            c.error(format!("{key}.wait_time_secs"), "must be between 0 and 20");
        }
        c.between(
            format!("{key}.max_messages"),
            self.max_messages.into(),
            1,
            10,
        );
        if self.visibility_timeout_secs > 43_200 {
            c.error(
                format!("{key}.visibility_timeout_secs"),
                "must be at most 43200 (12 h)",
            );
        }
        c.at_least(format!("{key}.interval_secs"), self.interval_secs, 1);
        c.at_least(
            format!("{key}.unhealthy_after"),
            self.unhealthy_after.into(),
            1,
        );
    }

    /// Builds the source from the process's AWS client settings.
    #[cfg(feature = "aws")]
    pub fn build(&self, clients: &Clients) -> Result<Box<dyn Source>, SourceError> {
        let sdk = clients.aws.as_ref().ok_or_else(|| SourceError::Build {
            source_name: format!("aws_s3:{}", self.queue_url),
            message: "the [aws] client settings were not built".into(),
        })?;
        let sdk = crate::cloud::aws::with_overrides(
            sdk,
            self.region.as_deref(),
            self.endpoint_url.as_deref(),
        );
        Ok(Box::new(AwsS3::new(self, &sdk)))
    }
}

#[cfg(feature = "aws")]
pub use queue::AwsS3;

#[cfg(feature = "aws")]
mod queue {
    use std::time::Duration;

    use aws_sdk_sqs::error::DisplayErrorContext;
    use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
    use chrono::Utc;
    use tokio::task::JoinSet;

    use super::{AwsS3Config, ObjectRef, fetch_records, object_refs};
    use crate::source::decode::{Limits, RawRecord};
    use crate::source::{Batch, Source, SourceError, Token};

    /// The `aws_s3` source (see the module docs).
    pub struct AwsS3 {
        name: String,
        queue_url: String,
        sqs: aws_sdk_sqs::Client,
        s3: aws_sdk_s3::Client,
        wait_time_secs: i32,
        max_messages: i32,
        visibility_timeout_secs: i32,
        interval: Duration,
        unhealthy_after: u32,
        limits: Limits,
        caught_up: bool,
        /// Oldest announced creation time of the objects of the batch in flight.
        oldest_landing: Option<chrono::DateTime<Utc>>,
    }

    /// One received message and what became of it.
    struct Received {
        id: String,
        receipt: String,
        receive_count: String,
        refs: Vec<ObjectRef>,
        records: Vec<Option<Vec<RawRecord>>>,
        failed: bool,
    }

    impl AwsS3 {
        /// A source over the queue of `config`, with clients from `sdk` (overrides applied).
        pub fn new(config: &AwsS3Config, sdk: &aws_config::SdkConfig) -> AwsS3 {
            let int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
            AwsS3 {
                name: format!("aws_s3:{}", config.queue_url),
                queue_url: config.queue_url.clone(),
                sqs: aws_sdk_sqs::Client::new(sdk),
                s3: crate::cloud::aws::s3_client(sdk),
                wait_time_secs: int(config.wait_time_secs),
                max_messages: int(config.max_messages),
                visibility_timeout_secs: int(config.visibility_timeout_secs),
                interval: Duration::from_secs(config.interval_secs),
                unhealthy_after: config.unhealthy_after,
                limits: Limits::default(),
                caught_up: false,
                oldest_landing: None,
            }
        }

        fn read_err(&self, message: String) -> SourceError {
            SourceError::Read {
                source_name: self.name.clone(),
                message,
            }
        }
    }

    #[async_trait::async_trait]
    impl Source for AwsS3 {
        fn name(&self) -> &str {
            &self.name
        }

        fn interval(&self) -> Duration {
            self.interval
        }

        fn unhealthy_after(&self) -> u32 {
            self.unhealthy_after
        }

        async fn poll(&mut self) -> Result<Batch, SourceError> {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(self.max_messages)
                .wait_time_seconds(self.wait_time_secs)
                .visibility_timeout(self.visibility_timeout_secs)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| {
                    self.read_err(format!("ReceiveMessage: {}", DisplayErrorContext(&e)))
                })?;
            let messages = out.messages.unwrap_or_default();
            self.caught_up = messages.is_empty();
            let mut batch = Batch::default();
            let mut received = Vec::with_capacity(messages.len());
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                let Some(receipt) = m.receipt_handle.clone() else {
                    continue;
                };
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .cloned()
                    .unwrap_or_default();
                match object_refs(m.body().unwrap_or_default()) {
                    Ok(refs) => received.push(Received {
                        id,
                        receipt,
                        receive_count,
                        records: vec![None; refs.len()],
                        refs,
                        failed: false,
                    }),
                    Err(e) => {
                        batch.errors += 1;
                        tracing::warn!(source = %self.name, message_id = %id, receive_count, error = %e, "poisoned message left for the dead-letter queue");
                    }
                }
            }
            // Every announced object at once.
            let mut fetches = JoinSet::new();
            for (i, r) in received.iter().enumerate() {
                for (j, obj) in r.refs.iter().enumerate() {
                    let (s3, obj, limits) = (self.s3.clone(), obj.clone(), self.limits);
                    fetches.spawn(async move { (i, j, fetch_records(&s3, &obj, limits).await) });
                }
            }
            let (mut fetched, mut transient) = (0usize, None);
            while let Some(joined) = fetches.join_next().await {
                let Ok((i, j, result)) = joined else {
                    return Err(self.read_err("an object download task failed".into()));
                };
                let r = &mut received[i];
                match result {
                    Ok(records) => {
                        fetched += 1;
                        r.records[j] = Some(records);
                    }
                    Err(e) => {
                        if !r.failed {
                            batch.errors += 1;
                        }
                        r.failed = true;
                        if e.is_poison() {
                            tracing::warn!(source = %self.name, message_id = %r.id, receive_count = %r.receive_count, error = %e, "poisoned object: message left for the dead-letter queue");
                        } else {
                            tracing::warn!(source = %self.name, message_id = %r.id, receive_count = %r.receive_count, error = %e, "object not read; the message returns after its visibility timeout");
                            transient = Some(e);
                        }
                    }
                }
            }
            if fetched == 0
                && let Some(e) = transient
            {
                // Nothing could be read at all: the source is failing, not one object.
                return Err(self.read_err(e.to_string()));
            }
            self.oldest_landing = None;
            for r in received {
                if r.failed {
                    continue;
                }
                for (obj, records) in r.refs.iter().zip(r.records) {
                    if let Some(t) = obj.event_time
                        && self.oldest_landing.is_none_or(|o| t < o)
                    {
                        self.oldest_landing = Some(t);
                    }
                    batch.records.extend(records.unwrap_or_default());
                }
                batch.token.acks.push(r.receipt);
            }
            Ok(batch)
        }

        async fn commit(&mut self, token: Token) -> Result<(), SourceError> {
            let landing_to_recorded_ms = self
                .oldest_landing
                .take()
                .map(|t| (Utc::now() - t).num_milliseconds());
            let mut failed = Vec::new();
            let total = token.acks.len();
            for chunk in token.acks.chunks(10) {
                let entries: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, receipt)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(receipt)
                            .build()
                            .ok()
                    })
                    .collect();
                let out = self
                    .sqs
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| {
                        self.read_err(format!("DeleteMessageBatch: {}", DisplayErrorContext(&e)))
                    })?;
                failed.extend(
                    out.failed
                        .iter()
                        .map(|f| format!("{}: {}", f.code, f.message.as_deref().unwrap_or(""))),
                );
            }
            tracing::info!(source = %self.name, deleted = total - failed.len(), landing_to_recorded_ms, "messages acknowledged");
            if !failed.is_empty() {
                // The messages come back; the ledger drops their findings as duplicates.
                return Err(self.read_err(format!(
                    "{} message(s) not deleted: {}",
                    failed.len(),
                    failed.join("; ")
                )));
            }
            Ok(())
        }

        fn caught_up(&self) -> bool {
            self.caught_up
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the S3 User Guide, "Event message structure" (key made a CloudTrail
    /// log path with a space and a plus sign, encoded as S3 does).
    const NOTIFICATION: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3",
      "awsRegion":"us-west-2","eventTime":"1970-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put",
      "userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},
      "requestParameters":{"sourceIPAddress":"127.0.0.1"},
      "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810",
        "x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
      "s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule",
        "bucket":{"name":"amzn-s3-demo-bucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},
          "arn":"arn:aws:s3:::amzn-s3-demo-bucket"},
        "object":{"key":"AWSLogs/111122223333/CloudTrail/us-west-2/2024/01/02/my+log%2Bfile%3D1.json.gz",
          "size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
          "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent",
      "Time":"2014-10-13T15:57:02.089Z","Bucket":"amzn-s3-demo-bucket",
      "RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;

    /// The example of the S3 User Guide, "EventBridge event message structure".
    const EVENTBRIDGE: &str = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103",
      "detail-type":"Object Created","source":"aws.s3","account":"111122223333",
      "time":"2021-11-12T00:00:00Z","region":"ca-central-1",
      "resources":["arn:aws:s3:::amzn-s3-demo-bucket1"],
      "detail":{"version":"0","bucket":{"name":"amzn-s3-demo-bucket1"},
        "object":{"key":"example-key","size":5,"etag":"b1946ac92492d2347c6235b4d2611184",
          "version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"617f08299329d189"},
        "request-id":"N4N7GDK58NMKJ12R","requester":"123456789012",
        "source-ip-address":"1.2.3.4","reason":"PutObject"}}"#;

    fn sns(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2012-05-02T00:54:06.655Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEw6JRN...",
            "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe"
        })
        .to_string()
    }

    fn expected_notification_ref() -> ObjectRef {
        ObjectRef {
            bucket: "amzn-s3-demo-bucket".into(),
            key: "AWSLogs/111122223333/CloudTrail/us-west-2/2024/01/02/my log+file=1.json.gz"
                .into(),
            size: Some(1024),
            version_id: Some("096fKKXTRTtl3on89fVO.nfljtsv6qko".into()),
            event_time: parse_time("1970-01-01T00:00:00.000Z"),
        }
    }

    #[test]
    fn trail_layout_helpers() {
        assert_eq!(
            parse_s3_url("s3://trail/AWSLogs/1/"),
            Some(("trail".into(), "AWSLogs/1/".into()))
        );
        assert_eq!(
            parse_s3_url("s3://trail"),
            Some(("trail".into(), "".into()))
        );
        assert_eq!(parse_s3_url("s3:///x"), None);
        assert_eq!(
            key_time(
                "AWSLogs/1/CloudTrail/us-east-2/2013/12/13/123456789012_CloudTrail_us-west-2_20131213T1920Z_LnPgDQnpkSKEsppV.json.gz"
            ),
            parse_time("2013-12-13T19:20:00Z")
        );
        assert_eq!(key_time("other/file.json"), None);
        let (a, b) = (
            parse_time("2024-02-28T12:00:00Z").unwrap(),
            parse_time("2024-03-01T23:30:00Z").unwrap(),
        );
        assert_eq!(
            day_folders(a, b),
            ["2024/02/28/", "2024/02/29/", "2024/03/01/", "2024/03/02/"]
        );
    }

    #[test]
    fn config_keys_default_and_validate() {
        use crate::config::Config;
        use crate::source::SourceConfig;
        use std::path::Path;
        let parse =
            |text: &str| Config::parse(text, Path::new("picket.toml"), Path::new("/etc/picket"));
        let text = "[[sources]]\ntype = \"aws_s3\"\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n";
        let expected = AwsS3Config {
            queue_url: "https://sqs.us-east-1.amazonaws.com/1/q".into(),
            region: None,
            endpoint_url: None,
            wait_time_secs: 10,
            max_messages: 10,
            visibility_timeout_secs: 300,
            interval_secs: 1,
            unhealthy_after: 3,
        };
        let bad = "[[sources]]\ntype = \"aws_s3\"\nqueue_url = \"picket-trail\"\nwait_time_secs = 30\nmax_messages = 0\n";
        let bad_keys = [
            "sources[0].queue_url",
            "sources[0].wait_time_secs",
            "sources[0].max_messages",
        ];
        if cfg!(feature = "aws") {
            let c = parse(text).unwrap();
            assert_eq!(c.raw.sources[0], SourceConfig::AwsS3(expected));
            let errors = parse(bad).unwrap_err();
            let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
            assert_eq!(keys, bad_keys);
        } else {
            let errors = parse(text).unwrap_err();
            assert!(errors[0].to_string().contains("needs the `aws` feature"));
        }
    }

    #[test]
    fn an_s3_notification_names_its_object_with_the_key_decoded() {
        assert_eq!(
            object_refs(NOTIFICATION).unwrap(),
            [expected_notification_ref()]
        );
    }

    #[test]
    fn an_sns_envelope_is_unwrapped() {
        assert_eq!(
            object_refs(&sns(NOTIFICATION)).unwrap(),
            [expected_notification_ref()]
        );
        assert!(object_refs(&sns(TEST_EVENT)).unwrap().is_empty());
    }

    #[test]
    fn an_eventbridge_object_created_event_names_its_object() {
        assert_eq!(
            object_refs(EVENTBRIDGE).unwrap(),
            [ObjectRef {
                bucket: "amzn-s3-demo-bucket1".into(),
                key: "example-key".into(),
                size: Some(5),
                version_id: Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e".into()),
                event_time: parse_time("2021-11-12T00:00:00Z"),
            }]
        );
        let deleted = EVENTBRIDGE.replace("Object Created", "Object Deleted");
        assert!(object_refs(&deleted).unwrap().is_empty());
        assert_eq!(object_refs(&sns(EVENTBRIDGE)).unwrap().len(), 1);
    }

    #[test]
    fn test_events_removals_and_digests_announce_nothing() {
        assert!(object_refs(TEST_EVENT).unwrap().is_empty());
        let removed = NOTIFICATION.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert!(object_refs(&removed).unwrap().is_empty());
        let digest = NOTIFICATION.replace("/CloudTrail/", "/CloudTrail-Digest/");
        assert!(object_refs(&digest).unwrap().is_empty());
    }

    #[test]
    fn cloudtrails_own_sns_notice_names_its_objects() {
        // The CloudTrail User Guide, "Configuring Amazon SNS notifications for CloudTrail".
        let body = sns(
            r#"{"s3Bucket":"amzn-s3-demo-bucket","s3ObjectKey":["AWSLogs/123456789012/CloudTrail/us-east-2/2013/12/13/123456789012_CloudTrail_us-west-2_20131213T1920Z_LnPgDQnpkSKEsppV.json.gz"]}"#,
        );
        let refs = object_refs(&body).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(
            refs[0].url(),
            "s3://amzn-s3-demo-bucket/AWSLogs/123456789012/CloudTrail/us-east-2/2013/12/13/123456789012_CloudTrail_us-west-2_20131213T1920Z_LnPgDQnpkSKEsppV.json.gz"
        );
    }

    #[test]
    fn bodies_that_announce_nothing_readable_are_errors() {
        assert!(matches!(
            object_refs("not json"),
            Err(MessageError::NotJson(_))
        ));
        assert!(matches!(
            object_refs(r#"{"hello":"world"}"#),
            Err(MessageError::Unrecognised(_))
        ));
        let no_key = NOTIFICATION.replace("\"key\":", "\"k\":");
        assert!(matches!(
            object_refs(&no_key),
            Err(MessageError::BadRecord { index: 0, .. })
        ));
        assert!(matches!(
            object_refs(&NOTIFICATION.replace("%2B", "%FF")),
            Err(MessageError::BadRecord { .. })
        ));
    }
}
