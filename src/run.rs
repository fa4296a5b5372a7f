//! `picket run`: the polling loop. Every configured [`Source`] is polled on its interval; each
//! batch goes through [`Pipeline::process_with`] with the source's cursor staged into the
//! batch's transaction, and the source is acknowledged only after that returned. Per source,
//! lag, events/s and errors go to the logs and to the state store (namespace
//! [`STATUS_NS`], read by `picket status`); a source failing `unhealthy_after` intervals in a
//! row raises a `source-unhealthy` finding, and a low one when it recovers.
//!
//! To add something the loop does per batch: do it in `Runner::drain`, and if it must
//! survive a crash, stage its state write with the cursor.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::model::{Finding, Severity, finding_uid};
use crate::pipeline::{BatchReport, Pipeline, PipelineError, StagedWrite};
use crate::source::Source;
use crate::state::{StateError, StateStore};

/// State namespace of per-source status.
pub const STATUS_NS: &str = "source-status";
/// Detector id of source health findings.
pub const UNHEALTHY_DETECTOR: &str = "source-unhealthy";

/// Why the loop stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline failed outside a batch (recovering pending findings).
    #[error("pipeline: {0}")]
    Pipeline(#[from] PipelineError),
    /// The state store failed (reading or writing source status).
    #[error("source status: {0}")]
    State(#[from] StateError),
    /// The Responder could not recover actions of an interrupted run.
    #[error("responder recovery: {0}")]
    Respond(String),
}

impl RunError {
    /// Whether running again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::Pipeline(e) => e.is_retryable(),
            RunError::State(e) => e.is_retryable(),
            RunError::Respond(_) => true,
        }
    }
}

/// What a source looked like after its last poll, as stored under [`STATUS_NS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The source's name (`files:/var/log/picket`).
    pub source: String,
    /// Newest event time seen.
    pub newest_event: Option<DateTime<Utc>>,
    /// Wall clock minus the newest event time, at the last poll, in seconds.
    pub lag_secs: Option<i64>,
    /// Events (records) processed in total.
    pub events_total: u64,
    /// Events per second of the last batch (poll and processing); persisted with the next
    /// status write.
    pub events_per_sec: f64,
    /// Errors in total: undecodable records and failed intervals.
    pub errors_total: u64,
    /// Failed intervals in a row.
    pub consecutive_failures: u32,
    /// Whether a `source-unhealthy` finding is open.
    pub unhealthy: bool,
    /// When the source started failing (the current run of failures).
    pub failing_since: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: Option<String>,
    /// Wall-clock time of the last poll.
    pub last_poll: Option<DateTime<Utc>>,
}

impl SourceStatus {
    /// Lag now (from the newest event time), in seconds.
    pub fn lag_at(&self, now: DateTime<Utc>) -> Option<i64> {
        self.newest_event.map(|t| (now - t).num_seconds())
    }
}

/// Reads the status of every source a state store knows.
pub fn statuses(state: &dyn StateStore) -> Result<Vec<SourceStatus>, StateError> {
    let mut out = Vec::new();
    for (key, v) in state.list(STATUS_NS, "", 10_000, Utc::now())? {
        match serde_json::from_slice::<SourceStatus>(&v.value) {
            Ok(s) => out.push(s),
            Err(e) => tracing::warn!(source = %key, error = %e, "source status does not decode"),
        }
    }
    Ok(out)
}

/// How the loop runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Poll every source until caught up, then return.
    pub once: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Batches processed.
    pub batches: u64,
    /// Records processed.
    pub records: u64,
    /// New findings notified.
    pub findings: u64,
    /// Sources whose last interval failed.
    pub failed_sources: Vec<String>,
    /// Whether a shutdown signal ended the run.
    pub interrupted: bool,
}

struct Slot {
    source: Box<dyn Source>,
    status: SourceStatus,
    next_poll: Instant,
}

/// The loop over sources.
pub struct Runner {
    pipeline: Pipeline,
    state: Arc<dyn StateStore>,
    slots: Vec<Slot>,
    shutdown: watch::Receiver<bool>,
    /// A batch failed: its transaction may have committed with findings left pending.
    dirty: bool,
}

impl Runner {
    /// A runner over a pipeline (with its Responder) and built sources; `shutdown` turning
    /// true ends the loop after the current batch.
    pub fn new(
        pipeline: Pipeline,
        sources: Vec<Box<dyn Source>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Runner, RunError> {
        let state = Arc::clone(pipeline.state());
        let now = Instant::now();
        let mut slots = Vec::with_capacity(sources.len());
        for source in sources {
            let status = match state.get(STATUS_NS, source.name(), Utc::now())? {
                Some(v) => serde_json::from_slice(&v.value).unwrap_or_default(),
                None => SourceStatus::default(),
            };
            let status = SourceStatus {
                source: source.name().to_string(),
                ..status
            };
            slots.push(Slot {
                source,
                status,
                next_poll: now,
            });
        }
        Ok(Runner {
            pipeline,
            state,
            slots,
            shutdown,
            dirty: false,
        })
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs until shut down (or, with `once`, until every source is caught up or failed).
    pub async fn run(&mut self, opts: RunOptions) -> Result<RunSummary, RunError> {
        let mut summary = RunSummary::default();
        if let Some(r) = self.pipeline.responder() {
            let n = r
                .recover()
                .await
                .map_err(|e| RunError::Respond(e.to_string()))?;
            if n > 0 {
                tracing::info!(actions = n, "actions of an interrupted run recovered");
            }
        }
        self.dirty = true;
        loop {
            let mut failed = Vec::new();
            for i in 0..self.slots.len() {
                if self.stopping() {
                    break;
                }
                if !opts.once && self.slots[i].next_poll > Instant::now() {
                    continue;
                }
                if !self.drain(i, &mut summary).await? {
                    failed.push(self.slots[i].source.name().to_string());
                }
                let slot = &mut self.slots[i];
                slot.next_poll = Instant::now() + slot.source.interval();
            }
            if self.stopping() {
                summary.interrupted = true;
                break;
            }
            if opts.once {
                summary.failed_sources = failed;
                break;
            }
            let next = self
                .slots
                .iter()
                .map(|s| s.next_poll)
                .min()
                .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(60));
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = shutdown.changed() => {}
            }
        }
        Ok(summary)
    }

    /// One interval of one source: batches until caught up (or shut down). Returns whether
    /// the interval succeeded.
    async fn drain(&mut self, i: usize, summary: &mut RunSummary) -> Result<bool, RunError> {
        loop {
            let started = Instant::now();
            if self.stopping() {
                return Ok(true);
            }
            if self.dirty {
                // Send what a failed batch (or a killed process) left pending, and let every
                // source start again from its stored cursors.
                match self.pipeline.recover().await {
                    Ok(recovered) => summary.findings += recovered.findings.len() as u64,
                    Err(e) => {
                        self.failed(i, &e.to_string(), &e).await?;
                        return Ok(false);
                    }
                }
                for slot in &mut self.slots {
                    slot.source.reload();
                }
                self.dirty = false;
            }
            let polled = self.slots[i].source.poll().await;
            let batch = match polled {
                Ok(b) => b,
                Err(e) => {
                    self.failed(i, &e.to_string(), &e).await?;
                    return Ok(false);
                }
            };
            // A source may hand back its last records together with `caught_up`: process
            // them first, and stop only when nothing came.
            let caught_up = self.slots[i].source.caught_up();
            if caught_up && batch.records.is_empty() && batch.errors == 0 {
                self.succeeded(i).await?;
                return Ok(true);
            }
            let slot = &self.slots[i];
            let records = batch.records.len() as u64;
            let mut next = slot.status.clone();
            for r in &batch.records {
                if let Some(t) = r.time()
                    && next.newest_event.is_none_or(|n| t > n)
                {
                    next.newest_event = Some(t);
                }
            }
            next.events_total += records;
            next.errors_total += batch.errors as u64;
            let mut status = refresh(next);
            let mut staged: Vec<StagedWrite> = batch.token.staged().to_vec();
            staged.push(status_write(&status));
            let report = match self.pipeline.process_with(batch.records, &staged).await {
                Ok(r) => r,
                Err(e) => {
                    self.dirty = true;
                    let message = e.to_string();
                    self.failed(i, &message, &e).await?;
                    return Ok(false);
                }
            };
            let slot = &mut self.slots[i];
            if let Err(e) = slot.source.commit(batch.token).await {
                // The cursor is already stored with the batch; the next poll re-reads it.
                tracing::warn!(source = %slot.status.source, error = %e, "acknowledging the batch failed");
            }
            let rate = records as f64 / started.elapsed().as_secs_f64().max(1e-6);
            status.events_per_sec = (rate * 10.0).round() / 10.0;
            slot.status = status;
            summary.batches += 1;
            summary.records += records;
            summary.findings += report.findings.len() as u64;
            log_batch(&slot.status, &report, rate, started);
            if caught_up || slot.status.unhealthy || slot.status.consecutive_failures > 0 {
                self.succeeded(i).await?;
            }
            if caught_up {
                return Ok(true);
            }
        }
    }

    /// A successful interval (caught up, or a batch after failures): clears the failure run
    /// and reports the recovery of an unhealthy source.
    async fn succeeded(&mut self, i: usize) -> Result<(), RunError> {
        let prev = self.slots[i].status.clone();
        let mut next = refresh(prev.clone());
        next.consecutive_failures = 0;
        next.failing_since = None;
        next.unhealthy = false;
        let f = prev.unhealthy.then(|| health_finding(&prev, false));
        self.record(&next, f.as_ref())?;
        self.slots[i].status = next;
        if let Some(f) = f {
            tracing::info!(source = %prev.source, "source recovered");
            self.emit(f).await?;
        }
        Ok(())
    }

    /// A failed interval: counts it and raises `source-unhealthy` at the threshold.
    async fn failed(
        &mut self,
        i: usize,
        message: &str,
        error: &dyn std::error::Error,
    ) -> Result<(), RunError> {
        let threshold = self.slots[i].source.unhealthy_after();
        let prev = self.slots[i].status.clone();
        let mut next = refresh(prev);
        next.consecutive_failures += 1;
        next.errors_total += 1;
        next.failing_since.get_or_insert(Utc::now());
        next.last_error = Some(message.to_string());
        let raise = !next.unhealthy && next.consecutive_failures >= threshold;
        next.unhealthy |= raise;
        tracing::warn!(
            source = %next.source,
            consecutive_failures = next.consecutive_failures,
            unhealthy_after = threshold,
            error = %error,
            "source interval failed"
        );
        let f = raise.then(|| health_finding(&next, true));
        self.record(&next, f.as_ref())?;
        self.slots[i].status = next;
        if let Some(f) = f {
            self.emit(f).await?;
        }
        Ok(())
    }

    /// Stores a source's status and, in the same transaction, the health finding it raises
    /// as pending: a crash after the status says "unhealthy" still sends the finding (at the
    /// next start, [`Pipeline::recover`]), since the status alone would never raise it again.
    fn record(&self, status: &SourceStatus, finding: Option<&Finding>) -> Result<(), RunError> {
        let state = Arc::clone(&self.state);
        let now = Utc::now();
        let value = status_write(status).value;
        state.run_batch(&mut || {
            state.put(STATUS_NS, &status.source, &value, None, now)?;
            if let Some(f) = finding {
                crate::pipeline::put_pending(state.as_ref(), f, now)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn emit(&mut self, f: Finding) -> Result<(), RunError> {
        let mut report = BatchReport::default();
        self.pipeline.emit(vec![f], &mut report).await?;
        Ok(())
    }
}

/// The status at a poll now: lag and poll time refreshed.
fn refresh(mut s: SourceStatus) -> SourceStatus {
    let now = Utc::now();
    s.lag_secs = s.lag_at(now);
    s.last_poll = Some(now);
    s
}

fn status_write(s: &SourceStatus) -> StagedWrite {
    StagedWrite {
        ns: STATUS_NS,
        key: s.source.clone(),
        // INVARIANT: a struct of strings, numbers and dates always serializes.
        value: serde_json::to_vec(s).unwrap_or_default(),
    }
}

fn log_batch(s: &SourceStatus, report: &BatchReport, rate: f64, started: Instant) {
    tracing::info!(
        source = %s.source,
        records = report.records,
        events = report.events,
        rejected = report.rejected.len(),
        findings = report.findings.len(),
        duplicate_findings = report.duplicate_findings,
        lag_secs = s.lag_secs,
        events_per_sec = rate,
        errors_total = s.errors_total,
        batch_ms = started.elapsed().as_millis() as u64,
        "batch processed"
    );
}

/// The finding of a source that stopped (or started again) delivering.
fn health_finding(s: &SourceStatus, unhealthy: bool) -> Finding {
    let since = s.failing_since.map(|t| t.to_rfc3339()).unwrap_or_default();
    let (severity, title, phase) = if unhealthy {
        (
            Severity::Medium,
            format!("Source {} is failing: a gap in coverage", s.source),
            "unhealthy",
        )
    } else {
        (
            Severity::Low,
            format!("Source {} recovered", s.source),
            "recovered",
        )
    };
    let mut f = Finding::new(UNHEALTHY_DETECTOR, title, severity, Vec::new());
    f.uid = finding_uid(
        UNHEALTHY_DETECTOR,
        [s.source.as_str(), since.as_str(), phase],
    );
    f.time = Utc::now();
    f.description = if unhealthy {
        format!(
            "{} consecutive polls failed (last error: {}). Events of this source are not being \
             analysed; an attacker may be counting on that. Check access to the source.",
            s.consecutive_failures,
            s.last_error.as_deref().unwrap_or("unknown")
        )
    } else {
        "The source delivers again; events of the gap are read from its cursor.".into()
    };
    f.data.insert("source".into(), s.source.clone().into());
    f.data
        .insert("consecutive_failures".into(), s.consecutive_failures.into());
    f.data.insert("failing_since".into(), since.into());
    if let Some(e) = &s.last_error {
        f.data.insert("last_error".into(), e.clone().into());
    }
    f
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::alert::Router;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::source::{Batch, SourceError, Token};
    use crate::state::MemoryStore;

    use crate::alert::testing::Capture;

    /// Fails while `failing` is set.
    struct Flaky {
        failing: Arc<Mutex<bool>>,
    }

    #[async_trait::async_trait]
    impl Source for Flaky {
        fn name(&self) -> &str {
            "flaky:test"
        }
        fn interval(&self) -> std::time::Duration {
            std::time::Duration::from_secs(1)
        }
        fn unhealthy_after(&self) -> u32 {
            2
        }
        async fn poll(&mut self) -> Result<Batch, SourceError> {
            if *self.failing.lock().unwrap() {
                Err(SourceError::Read {
                    source_name: "flaky:test".into(),
                    message: "access denied".into(),
                })
            } else {
                Ok(Batch::default())
            }
        }
        async fn commit(&mut self, _: Token) -> Result<(), SourceError> {
            Ok(())
        }
        fn caught_up(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn a_source_failing_n_intervals_raises_one_medium_finding_and_a_low_one_on_recovery() {
        let config = Config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let capture = Capture::default();
        let router = Router::new(vec![(Severity::Informational, Box::new(capture.clone()))]);
        let pipeline = Pipeline::new(
            Arc::new(crate::app::enricher(&config).unwrap()),
            Vec::new(),
            state.clone(),
            router,
            Arc::new(Clock::System),
        );
        let failing = Arc::new(Mutex::new(true));
        let (_tx, rx) = watch::channel(false);
        let mut runner = Runner::new(
            pipeline,
            vec![Box::new(Flaky {
                failing: failing.clone(),
            })],
            rx,
        )
        .unwrap();
        let once = RunOptions { once: true };
        for _ in 0..4 {
            let s = runner.run(once).await.unwrap();
            assert_eq!(s.failed_sources, ["flaky:test"]);
        }
        *failing.lock().unwrap() = false;
        runner.run(once).await.unwrap();
        runner.run(once).await.unwrap();
        let sent = capture.0.lock().unwrap();
        let got: Vec<_> = sent
            .iter()
            .map(|f| (f.detector.as_str(), f.severity))
            .collect();
        assert_eq!(
            got,
            [
                (UNHEALTHY_DETECTOR, Severity::Medium),
                (UNHEALTHY_DETECTOR, Severity::Low)
            ]
        );
        let st = statuses(state.as_ref()).unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].errors_total, 4);
        assert!(!st[0].unhealthy);
    }

    fn runner(
        state: Arc<dyn StateStore>,
        capture: &Capture,
        sources: Vec<Box<dyn Source>>,
    ) -> Runner {
        let config = Config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let router = Router::new(vec![(Severity::Informational, Box::new(capture.clone()))]);
        let pipeline = Pipeline::new(
            Arc::new(crate::app::enricher(&config).unwrap()),
            Vec::new(),
            state,
            router,
            Arc::new(Clock::System),
        );
        let (_tx, rx) = watch::channel(false);
        Runner::new(pipeline, sources, rx).unwrap()
    }

    #[tokio::test]
    async fn a_health_finding_stored_with_its_status_is_sent_after_a_crash_before_notifying() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let first = Capture::default();
        let crashed = runner(state.clone(), &first, Vec::new());
        let status = SourceStatus {
            source: "flaky:test".into(),
            consecutive_failures: 3,
            unhealthy: true,
            failing_since: Some(Utc::now()),
            ..SourceStatus::default()
        };
        // The process dies right after this transaction, before notifying.
        crashed
            .record(&status, Some(&health_finding(&status, true)))
            .unwrap();
        drop(crashed);
        assert!(first.0.lock().unwrap().is_empty());

        let second = Capture::default();
        let healthy = Flaky {
            failing: Arc::new(Mutex::new(false)),
        };
        let mut restarted = runner(state.clone(), &second, vec![Box::new(healthy)]);
        restarted.run(RunOptions { once: true }).await.unwrap();
        let sent = second.0.lock().unwrap();
        let got: Vec<_> = sent
            .iter()
            .map(|f| (f.detector.as_str(), f.severity))
            .collect();
        // The finding the crash kept from being sent, then the recovery.
        assert_eq!(
            got,
            [
                (UNHEALTHY_DETECTOR, Severity::Medium),
                (UNHEALTHY_DETECTOR, Severity::Low)
            ]
        );
        assert!(!statuses(state.as_ref()).unwrap()[0].unhealthy);
    }

    /// Hands back all its records at once, saying it is caught up in the same poll.
    struct LastPage {
        left: Vec<crate::source::RawRecord>,
    }

    #[async_trait::async_trait]
    impl Source for LastPage {
        fn name(&self) -> &str {
            "last-page:test"
        }
        fn interval(&self) -> std::time::Duration {
            std::time::Duration::from_secs(1)
        }
        fn unhealthy_after(&self) -> u32 {
            1
        }
        async fn poll(&mut self) -> Result<Batch, SourceError> {
            Ok(Batch {
                records: std::mem::take(&mut self.left),
                ..Batch::default()
            })
        }
        async fn commit(&mut self, _: Token) -> Result<(), SourceError> {
            Ok(())
        }
        fn caught_up(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn records_that_come_with_caught_up_are_processed_before_stopping() {
        let raw = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-01T08:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","eventID":"e1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","userName":"alice"},"sourceIPAddress":"81.2.69.160"}]}"#;
        let records: Vec<_> =
            crate::source::decode::from_bytes(raw.to_vec(), "test", Default::default())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(records.len(), 1);
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let capture = Capture::default();
        let mut r = runner(state, &capture, vec![Box::new(LastPage { left: records })]);
        let s = r.run(RunOptions { once: true }).await.unwrap();
        assert_eq!((s.batches, s.records), (1, 1));
        assert!(s.failed_sources.is_empty());
    }
}
