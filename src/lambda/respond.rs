//! `respond`: findings from the respond queue (put there by poll and ingest, one message per
//! finding, picket's finding JSON) go through the one [`crate::respond::Responder`] — the
//! playbooks decide what to do, the guardrails (protected identities, blast radius, dry-run,
//! once-only ledger) decide whether — and then to every `[[notify]]` channel with what picket
//! did attached. This is the only function whose role may change anything outside picket.
//!
//! Its finding ledger is [`crate::pipeline::RESPONDED_NS`], so a redelivered message is
//! neither acted on nor alerted twice. A message that is no finding is poison and reported in
//! `batchItemFailures` (to the DLQ after `maxReceiveCount`); a state store failure is
//! reported the same way and retried. A failing action does not fail the message: it is in
//! the ledger and in the alert, as with `picket run`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};

use super::LambdaError;
use crate::app;
use crate::clock::Clock;
use crate::cloud::Clients;
use crate::config::Config;
use crate::model::Finding;
use crate::pipeline::{BatchReport, Pipeline, RESPONDED_NS};
use crate::state::StateStore;

/// The respond function's state: a pipeline without detectors, with the Responder and the
/// configured notifiers.
pub struct Respond {
    pipeline: Pipeline,
    /// Actions an interrupted container left pending are verified once, at the first
    /// invocation.
    recovered: bool,
}

impl Respond {
    /// Builds the Responder and notifiers of `config`.
    pub fn new(
        config: &Config,
        clients: &Clients,
        state: &Arc<dyn StateStore>,
    ) -> Result<Respond, LambdaError> {
        let router = app::router(config, clients, state)?;
        let responder = app::responder(config, clients, state.clone(), false)?;
        let pipeline = Pipeline::new(
            Arc::new(app::enricher(config)?),
            Vec::new(),
            state.clone(),
            router,
            Arc::new(Clock::System),
        )
        .with_responder(responder)
        .with_finding_ledger(RESPONDED_NS);
        Ok(Respond {
            pipeline,
            recovered: false,
        })
    }

    /// One invocation: an SQS batch of findings (answered with the failed message ids), or
    /// one finding invoked directly.
    pub async fn invoke(&mut self, payload: Value) -> Result<Value, LambdaError> {
        if !self.recovered {
            if let Some(r) = self.pipeline.responder() {
                let n = r.recover().await.map_err(|e| LambdaError::Input {
                    message: format!("recovering interrupted actions: {e}"),
                    retryable: true,
                })?;
                if n > 0 {
                    tracing::info!(actions = n, "actions of an interrupted container verified");
                }
            }
            self.recovered = true;
        }
        let is_batch = payload.get("Records").is_some_and(Value::is_array);
        if !is_batch {
            let f: Finding = serde_json::from_value(payload)
                .map_err(|e| LambdaError::Event(format!("not a finding: {e}")))?;
            let report = self.finding(f).await?;
            return Ok(
                json!({"findings": report.findings.len(), "duplicates": report.duplicate_findings}),
            );
        }
        let batch: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| LambdaError::Event(format!("SQS batch does not parse: {e}")))?;
        let mut response = SqsBatchResponse::default();
        let (mut sent, mut duplicates) = (0, 0);
        for m in batch.records {
            let id = m.message_id.clone().unwrap_or_default();
            let result =
                match serde_json::from_str::<Finding>(m.body.as_deref().unwrap_or_default()) {
                    Ok(f) => self.finding(f).await,
                    Err(e) => Err(LambdaError::Input {
                        message: format!("message {id} is not a finding: {e}"),
                        retryable: false,
                    }),
                };
            match result {
                Ok(r) => {
                    sent += r.findings.len();
                    duplicates += r.duplicate_findings;
                }
                Err(e) => {
                    tracing::warn!(
                        message_id = %id,
                        error = %e,
                        retryable = e.is_retryable(),
                        "message failed; reported for redelivery (the DLQ after maxReceiveCount)"
                    );
                    response.add_failure(id);
                }
            }
        }
        tracing::info!(
            notified = sent,
            duplicates,
            failed = response.batch_item_failures.len(),
            "respond batch done"
        );
        serde_json::to_value(&response)
            .map_err(|e| LambdaError::Event(format!("batch response: {e}")))
    }

    async fn finding(&mut self, f: Finding) -> Result<BatchReport, LambdaError> {
        let mut report = BatchReport::default();
        tracing::info!(finding = %f.uid, detector = %f.detector, severity = ?f.severity, "finding received");
        self.pipeline.emit(vec![f], &mut report).await?;
        Ok(report)
    }
}
