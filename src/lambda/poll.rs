//! `poll`: on each scheduled invocation, every configured source is read until caught up —
//! `picket run --once` — with cursors committed batch by batch in the state table. The
//! payload (the EventBridge scheduled event) is not read. A source that failed fails the
//! invocation (retryable), after the runner counted it and, at its threshold, raised
//! `source-unhealthy`.

use serde_json::{Value, json};
use tokio::sync::watch;

use super::{LambdaError, metrics};
use crate::pipeline::Pipeline;
use crate::run::{RunOptions, Runner};
use crate::source::Source;
use crate::state::StateStore;

/// The poll function's state: the runner over the configured sources.
pub struct Poll {
    runner: Runner,
    state: std::sync::Arc<dyn StateStore>,
    metrics_namespace: Option<String>,
    // Never fires: Lambda ends an invocation by its deadline, not by a signal.
    _shutdown: watch::Sender<bool>,
}

impl Poll {
    /// The runner over `sources`.
    pub fn new(
        pipeline: Pipeline,
        sources: Vec<Box<dyn Source>>,
        metrics_namespace: Option<String>,
    ) -> Result<Poll, LambdaError> {
        if sources.is_empty() {
            tracing::warn!("no [[sources]] configured: the poll function has nothing to read");
        }
        let state = std::sync::Arc::clone(pipeline.state());
        let (tx, rx) = watch::channel(false);
        Ok(Poll {
            runner: Runner::new(pipeline, sources, rx)?,
            state,
            metrics_namespace,
            _shutdown: tx,
        })
    }

    /// One scheduled run.
    pub async fn invoke(&mut self, _payload: Value) -> Result<Value, LambdaError> {
        let summary = self.runner.run(RunOptions { once: true }).await?;
        if let Some(ns) = &self.metrics_namespace {
            let now = chrono::Utc::now();
            let lags: Vec<(String, i64)> = crate::run::statuses(self.state.as_ref())?
                .into_iter()
                .filter_map(|s| s.lag_at(now).map(|l| (s.source, l)))
                .collect();
            metrics::emit(&metrics::source_lag_lines(ns, &lags, now));
        }
        tracing::info!(
            batches = summary.batches,
            records = summary.records,
            findings = summary.findings,
            failed_sources = summary.failed_sources.len(),
            "poll done"
        );
        if !summary.failed_sources.is_empty() {
            return Err(LambdaError::Sources(summary.failed_sources));
        }
        Ok(json!({
            "batches": summary.batches,
            "records": summary.records,
            "findings": summary.findings,
        }))
    }
}
