//! `ingest`: CloudTrail as it happens.
//!
//! The payload is an SQS batch (the ingest queue) whose messages are S3 notifications of
//! CloudTrail log objects (also SNS-wrapped or as EventBridge `Object Created`, parsed by
//! [`crate::source::aws_s3::object_refs`]) or EventBridge CloudTrail events (`detail-type`
//! `AWS API Call via CloudTrail` and the like, `detail` = the CloudTrail record); or one such
//! event or notification invoked directly. Each message is one pipeline batch: its objects
//! are fetched and decoded whole ([`crate::source::aws_s3::fetch_records`]), then detected.
//! A message that fails — poison (not a notification, a missing or undecodable object) or
//! retryable (throttling, the respond queue unreachable) — is reported in
//! `batchItemFailures`, so Lambda deletes the others and only it comes back (to the DLQ after
//! the queue's `maxReceiveCount`). A failure before any message is handled fails the whole
//! invocation.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::json::JsonValueTrait;

use super::{LambdaError, metrics};
use crate::cloud::Clients;
use crate::model::RecordKind;
use crate::pipeline::{BatchReport, Pipeline};
use crate::source::aws_s3;
use crate::source::decode::{Limits, Origin, RawRecord};

/// EventBridge detail types whose `detail` is a CloudTrail record.
const CLOUDTRAIL_DETAIL_TYPES: &[&str] = &[
    "AWS API Call via CloudTrail",
    "AWS Console Sign In via CloudTrail",
    "AWS Service Event via CloudTrail",
    "AWS Console Action via CloudTrail",
];

/// The ingest function's state.
pub struct Ingest {
    pipeline: Pipeline,
    s3: aws_sdk_s3::Client,
    metrics_namespace: Option<String>,
    /// Findings of a failed batch (or a previous container) may be pending: send them first.
    dirty: bool,
}

impl Ingest {
    /// An ingest function over a built pipeline and the shared AWS settings.
    pub fn new(
        pipeline: Pipeline,
        clients: &Clients,
        metrics_namespace: Option<String>,
    ) -> Result<Ingest, LambdaError> {
        let sdk = clients
            .aws
            .as_ref()
            .ok_or_else(|| LambdaError::Config("ingest needs the [aws] client settings".into()))?;
        Ok(Ingest {
            pipeline,
            s3: aws_sdk_s3::Client::new(sdk),
            metrics_namespace,
            dirty: true,
        })
    }

    /// One invocation: an SQS batch (answered with its failed message ids) or one event.
    pub async fn invoke(&mut self, payload: Value) -> Result<Value, LambdaError> {
        if self.dirty {
            self.pipeline.recover().await?;
            self.dirty = false;
        }
        let mut newest = None;
        let out = if is_sqs_batch(&payload) {
            let batch: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| LambdaError::Event(format!("SQS batch does not parse: {e}")))?;
            let mut response = SqsBatchResponse::default();
            let (mut ok, mut findings) = (0usize, 0usize);
            for m in batch.records {
                let id = m.message_id.clone().unwrap_or_default();
                let body = m.body.as_deref().unwrap_or_default();
                match self.message(body, &id, &mut newest).await {
                    Ok(report) => {
                        ok += 1;
                        findings += report.findings.len();
                    }
                    Err(e) => {
                        tracing::warn!(
                            message_id = %id,
                            error = %e,
                            retryable = e.is_retryable(),
                            "message failed; reported for redelivery (the DLQ after maxReceiveCount)"
                        );
                        self.dirty = true;
                        response.add_failure(id);
                    }
                }
            }
            tracing::info!(
                messages = ok + response.batch_item_failures.len(),
                failed = response.batch_item_failures.len(),
                findings,
                "ingest batch done"
            );
            serde_json::to_value(&response)
                .map_err(|e| LambdaError::Event(format!("batch response: {e}")))?
        } else {
            let report = self
                .message(&payload.to_string(), "direct", &mut newest)
                .await
                .inspect_err(|_| self.dirty = true)?;
            json!({"records": report.records, "findings": report.findings.len()})
        };
        if let (Some(ns), Some(t)) = (&self.metrics_namespace, newest) {
            let now = Utc::now();
            let lag = (now - t).num_seconds();
            metrics::emit(&metrics::source_lag_lines(
                ns,
                &[("ingest".into(), lag)],
                now,
            ));
        }
        Ok(out)
    }

    /// One message: its records, then one pipeline batch.
    async fn message(
        &mut self,
        body: &str,
        id: &str,
        newest: &mut Option<DateTime<Utc>>,
    ) -> Result<BatchReport, LambdaError> {
        let records = self.records(body, id).await?;
        for r in &records {
            if let Some(t) = r.time()
                && newest.is_none_or(|n| t > n)
            {
                *newest = Some(t);
            }
        }
        let report = self.pipeline.process(records).await?;
        if !report.rejected.is_empty() {
            tracing::warn!(message_id = %id, rejected = report.rejected.len(), "records not understood");
        }
        Ok(report)
    }

    /// The records a message brings: its CloudTrail event, or its objects' records.
    async fn records(&self, body: &str, id: &str) -> Result<Vec<RawRecord>, LambdaError> {
        let poison = |message: String| LambdaError::Input {
            message,
            retryable: false,
        };
        let v = crate::json::parse(body.as_bytes())
            .map_err(|e| poison(format!("message {id}: body is not JSON: {e}")))?;
        if v.get("detail-type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| CLOUDTRAIL_DETAIL_TYPES.contains(&t))
        {
            let source = format!(
                "eventbridge:{}",
                v.get("id").and_then(|i| i.as_str()).unwrap_or(id)
            );
            return Ok(vec![RawRecord {
                value: v.into(),
                kind: Some(RecordKind::Cloudtrail),
                origin: Origin {
                    source: Arc::from(source),
                    index: 0,
                    line: None,
                },
            }]);
        }
        let refs = aws_s3::object_refs(body).map_err(|e| poison(format!("message {id}: {e}")))?;
        let mut out = Vec::new();
        for r in &refs {
            let records = aws_s3::fetch_records(&self.s3, r, Limits::default())
                .await
                .map_err(|e| LambdaError::Input {
                    retryable: e.is_retryable(),
                    message: format!("message {id}: {e}"),
                })?;
            out.extend(records);
        }
        Ok(out)
    }
}

/// Whether a payload is an SQS batch (`Records` of `eventSource` `aws:sqs`).
fn is_sqs_batch(v: &Value) -> bool {
    v.get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_batches_are_told_from_s3_notifications() {
        assert!(is_sqs_batch(
            &json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
        ));
        assert!(!is_sqs_batch(
            &json!({"Records": [{"eventSource": "aws:s3"}]})
        ));
        assert!(!is_sqs_batch(
            &json!({"detail-type": "AWS API Call via CloudTrail"})
        ));
    }
}
