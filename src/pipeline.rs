//! The one path every record takes: normalize -> enrich -> detect -> respond -> notify -> record.
//! The CLI loop, `picket replay`, the tests and every Lambda handler call
//! [`Pipeline::process`] with a batch of raw records; a source commits its cursor only after
//! `process` returned, so delivery is at-least-once and the finding ledger makes it
//! exactly-once for findings.
//!
//! Crash safety (`picket run` killed at any moment): the detection transaction of a batch also
//! writes every new finding to the pending ledger ([`PENDING_NS`]) and the source's cursor
//! ([`StagedWrite`]s given to [`Pipeline::process_with`]), so detector state, the findings it
//! produced and the position in the input commit together or not at all. A finding leaves the
//! pending ledger only when it was notified and recorded in the finding ledger;
//! [`Pipeline::recover`] emits what a killed process left pending. Notifiers that write files
//! (`jsonl`) skip findings they already hold, which closes the gap between notifying and
//! recording.
//!
//! Detector state with a store whose batches are all-or-nothing (SQLite,
//! [`StateStore::rolls_back_batches`]): detectors hold their changes until the end of the
//! batch and write each changed identity once ([`Detector::flush`]) in the batch's
//! transaction. A failed batch rolls back and the detectors forget their caches; a conflict
//! (another worker changed an identity since it was read) runs the batch again on fresh state.
//! `picket replay` ([`Pipeline::process_stream`]) lets one transaction span many record
//! batches (`--commit-every` events, fewer when a detector's cache fills with held-back
//! changes), so an identity seen in many batches is written once; the same all-or-nothing
//! holds for the whole transaction, and its findings are emitted after it committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::alert::Router;
use crate::clock::Clock;
use crate::detect::{DetectContext, DetectError, Detector};
use crate::enrich::Enricher;
use crate::model::{Finding, IdentityEvent, RecordKind};
use crate::normalize::{self, NormalizeError};
use crate::respond::Responder;
use crate::source::{Origin, RawRecord};
use crate::state::{StateError, StateStore};

/// State namespace of the finding ledger (dedup of emitted findings).
pub const FINDINGS_NS: &str = "finding";
/// State namespace of the finding ledger of the Lambda respond function: findings it received
/// from the respond queue and notified. Apart from [`FINDINGS_NS`], where poll and ingest
/// record what they handed to the queue.
pub const RESPONDED_NS: &str = "finding-responded";
/// State namespace of findings detected (their batch committed) but not yet notified and
/// recorded: what a crash between the two leaves for [`Pipeline::recover`].
pub const PENDING_NS: &str = "finding-pending";
/// How long an emitted finding is remembered for dedup.
pub const FINDING_TTL_DAYS: i64 = 90;
/// Records per pipeline batch of `picket replay` (`--batch`). Small, so that a record is
/// still in the CPU cache when it is normalized and its event when it is detected: on the
/// replay mix, batches of 256 run at about 1.4 times the events per CPU-second of batches of
/// 4,096 (`PICKET_BENCH_BATCH` of the `replay` bench). Batches of 64 run a few percent faster
/// still in that one-thread bench, but `picket replay`, whose reader thread hands each batch
/// over, then takes a fifth longer in wall time.
/// State transactions span batches ([`REPLAY_COMMIT_EVENTS`]), so small ones write no more.
pub const REPLAY_BATCH_RECORDS: usize = 256;
/// Events per state transaction of `picket replay` (`--commit-every`,
/// [`Pipeline::process_stream`]): an identity changed in a transaction is written once, so
/// larger transactions write less; the state is not held twice, so memory does not grow
/// with them.
pub const REPLAY_COMMIT_EVENTS: usize = 262_144;
/// How often a batch runs when other workers keep changing the state it read.
const CONFLICT_ATTEMPTS: usize = 4;
/// How deep findings may feed correlating detectors (finding -> finding -> ...).
const MAX_CORRELATION_DEPTH: usize = 4;

/// A record that could not be turned into events.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Where it came from.
    pub origin: Origin,
    /// Why.
    pub error: NormalizeError,
}

/// What one batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Records received.
    pub records: usize,
    /// Events produced.
    pub events: usize,
    /// Events by record kind.
    pub by_kind: BTreeMap<RecordKind, usize>,
    /// Records that could not be normalized.
    pub rejected: Vec<Rejected>,
    /// New findings (recorded and notified).
    pub findings: Vec<Finding>,
    /// Findings suppressed because they were already emitted.
    pub duplicate_findings: usize,
    /// Failed notifications.
    pub notify_failures: u64,
    /// Findings whose response stage failed (state store errors; single failed actions are
    /// reported in the finding's notes instead).
    pub respond_failures: u64,
    /// The normalized events, when [`Pipeline::keep_events`] is on (timelines, tests).
    pub kept_events: Vec<IdentityEvent>,
}

/// Errors that fail a whole batch (the source must not commit its cursor).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A detector failed.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// The finding ledger failed.
    #[error("finding ledger: {0}")]
    State(#[from] StateError),
    /// A finding could not be handed on ([`Pipeline::require_delivery`]).
    #[error("finding {finding} could not be delivered")]
    Delivery {
        /// The finding's uid.
        finding: String,
    },
}

impl PipelineError {
    /// Whether retrying the batch may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Detect(e) => e.is_retryable(),
            PipelineError::State(e) => e.is_retryable(),
            PipelineError::Delivery { .. } => true,
        }
    }
}

/// A state write that commits in the same transaction as a batch's detection state: the
/// source's cursor, so a batch is never detected twice nor skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedWrite {
    /// Namespace (`cursor`, `source-status`).
    pub ns: &'static str,
    /// Key.
    pub key: String,
    /// Value.
    pub value: Vec<u8>,
}

/// What [`Pipeline::detect_stream`] detected in one transaction.
#[derive(Debug)]
pub struct Detected<B> {
    /// New findings (committed as pending with the detectors' state).
    pub findings: Vec<Finding>,
    /// Events detected.
    pub events: usize,
    /// The batches, when [`Pipeline::keep_events`] is on.
    pub batches: Vec<B>,
}

impl<B> Default for Detected<B> {
    fn default() -> Self {
        Detected {
            findings: Vec::new(),
            events: 0,
            batches: Vec::new(),
        }
    }
}

/// The assembled chain of stages.
pub struct Pipeline {
    enricher: Arc<Enricher>,
    detectors: Vec<Box<dyn Detector>>,
    state: Arc<dyn StateStore>,
    router: Router,
    clock: Arc<Clock>,
    keep_events: bool,
    responder: Option<Responder>,
    ledger_ns: &'static str,
    require_delivery: bool,
}

impl Pipeline {
    /// Assembles a pipeline from built components.
    pub fn new(
        enricher: Arc<Enricher>,
        detectors: Vec<Box<dyn Detector>>,
        state: Arc<dyn StateStore>,
        router: Router,
        clock: Arc<Clock>,
    ) -> Pipeline {
        let mut detectors = detectors;
        let write_back = state.rolls_back_batches();
        for d in &mut detectors {
            d.set_write_back(write_back);
        }
        Pipeline {
            enricher,
            detectors,
            state,
            router,
            clock,
            keep_events: false,
            responder: None,
            ledger_ns: FINDINGS_NS,
            require_delivery: false,
        }
    }

    /// Adds the response stage. `picket replay` never calls this: history is not acted on.
    pub fn with_responder(mut self, responder: Responder) -> Pipeline {
        self.responder = Some(responder);
        self
    }

    /// Records emitted findings in another ledger namespace than [`FINDINGS_NS`]: the Lambda
    /// respond function ([`RESPONDED_NS`]) sees findings that ingest already recorded there.
    pub fn with_finding_ledger(mut self, ns: &'static str) -> Pipeline {
        self.ledger_ns = ns;
        self
    }

    /// Fails the batch when a finding could not be delivered (the finding stays pending and
    /// the batch is retried), instead of counting the failure and going on. For a pipeline
    /// whose one channel hands findings on (Lambda poll and ingest: the respond queue).
    pub fn require_delivery(mut self, require: bool) -> Pipeline {
        self.require_delivery = require;
        self
    }

    /// The response stage, when there is one.
    pub fn responder(&self) -> Option<&Responder> {
        self.responder.as_ref()
    }

    /// Keeps the normalized events of each batch in its report.
    pub fn keep_events(mut self, keep: bool) -> Pipeline {
        self.keep_events = keep;
        self
    }

    /// The state store the pipeline uses.
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// The ids of the detectors in this pipeline.
    pub fn detector_ids(&self) -> Vec<String> {
        self.detectors.iter().map(|d| d.id().to_string()).collect()
    }

    /// Runs one batch through every stage. A finding already in the finding ledger is
    /// dropped; a new one goes to the Responder (whose own ledger makes each action
    /// once-only), is notified with what the Responder did attached, and is then recorded.
    pub async fn process(&mut self, records: Vec<RawRecord>) -> Result<BatchReport, PipelineError> {
        self.process_with(records, &[]).await
    }

    /// [`Pipeline::process`], writing `staged` (a source's cursor) in the batch's detection
    /// transaction together with the new findings (as pending), so that a crash leaves either
    /// none of the batch's effects or all of its detection with its findings still to send.
    pub async fn process_with(
        &mut self,
        records: Vec<RawRecord>,
        staged: &[StagedWrite],
    ) -> Result<BatchReport, PipelineError> {
        let mut report = BatchReport::default();
        let events = normalize_batch(&self.enricher, records, &mut report);
        report.events = events.len();

        let found = self.detect_staged(&events, staged)?;

        self.emit(found, &mut report).await?;
        self.router.flush().await;
        if self.keep_events {
            report.kept_events = events;
        }
        Ok(report)
    }

    /// The detection stage alone: every detector sees every event (in the order given), then
    /// correlating detectors see the findings, a few levels deep. The whole batch is one
    /// state transaction where the backend has them (SQLite), so thousands of small state
    /// operations cost one commit.
    pub fn detect(&mut self, events: &[IdentityEvent]) -> Result<Vec<Finding>, PipelineError> {
        self.detect_staged(events, &[])
    }

    /// [`Pipeline::detect`] that also writes, in the same transaction and only when every
    /// detector succeeded, each finding to the pending ledger and every `staged` write.
    fn detect_staged(
        &mut self,
        events: &[IdentityEvent],
        staged: &[StagedWrite],
    ) -> Result<Vec<Finding>, PipelineError> {
        let mut attempt = 1;
        loop {
            match self.detect_attempt(events, staged) {
                Err(PipelineError::Detect(e @ DetectError::Conflict { .. }))
                    if attempt < CONFLICT_ATTEMPTS =>
                {
                    tracing::debug!(error = %e, attempt, "batch runs again on fresh state");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One run of [`Pipeline::detect_staged`]. With write-back, detectors flush their state
    /// changes at the end, inside the batch's transaction; when anything fails, the store
    /// rolls the batch back and the detectors forget their caches, so a re-run starts from
    /// what the store holds.
    fn detect_attempt(
        &mut self,
        events: &[IdentityEvent],
        staged: &[StagedWrite],
    ) -> Result<Vec<Finding>, PipelineError> {
        let state = Arc::clone(&self.state);
        let mut found = Vec::new();
        let mut failed: Option<DetectError> = None;
        let result = state.run_batch(&mut || {
            if let Err(e) = self.detect_events(state.as_ref(), events, &mut found) {
                failed = Some(e);
                return Err(abandoned());
            }
            self.finish_batch(state.as_ref(), &found, staged, &mut failed)
        });
        self.after_batch(failed, result)?;
        Ok(found)
    }

    /// `picket replay`'s detection: batches of events from `next` (each in event-time order)
    /// run through the detectors in one state transaction, until `events_per_commit` events
    /// were detected, a detector's cache is full of held-back changes
    /// ([`Detector::wants_flush`]) or `next` has no more; then the detectors' state and the findings (as
    /// pending) commit together, as in [`Pipeline::detect`]. A batch's events are dropped once
    /// detected, so memory holds one batch while the transaction spans many: each identity
    /// changed in the transaction is written once, however many of its batches it was in.
    /// Returns the findings, the events detected and, with [`Pipeline::keep_events`], the
    /// batches; `None` when `next` had no batch.
    ///
    /// A conflict (another process changed an identity this one holds cached) cannot run the
    /// batches again, as [`Pipeline::detect`] does: they are gone. It fails the call with the
    /// retryable [`DetectError::Conflict`] and nothing of the transaction stays; use
    /// [`Pipeline::detect`] where other workers write the same state.
    pub fn detect_stream<B: AsRef<[IdentityEvent]>>(
        &mut self,
        next: &mut dyn FnMut() -> Option<B>,
        events_per_commit: usize,
    ) -> Result<Option<Detected<B>>, PipelineError> {
        let state = Arc::clone(&self.state);
        let mut out = Detected::default();
        let mut batches = 0usize;
        let mut failed: Option<DetectError> = None;
        let result = state.run_batch(&mut || {
            while out.events < events_per_commit.max(1) {
                let Some(events) = next() else {
                    break;
                };
                batches += 1;
                out.events += events.as_ref().len();
                if let Err(e) =
                    self.detect_events(state.as_ref(), events.as_ref(), &mut out.findings)
                {
                    failed = Some(e);
                    return Err(abandoned());
                }
                if self.keep_events {
                    out.batches.push(events);
                }
                if self.detectors.iter().any(|d| d.wants_flush()) {
                    // Held-back changes fill a cache: commit now to keep memory bounded.
                    break;
                }
            }
            self.finish_batch(state.as_ref(), &out.findings, &[], &mut failed)
        });
        self.after_batch(failed, result)?;
        Ok((batches > 0).then_some(out))
    }

    /// [`Pipeline::process`] over many record batches with one state transaction per
    /// `events_per_commit` events ([`Pipeline::detect_stream`]): `picket replay`'s path.
    /// Findings are emitted after their transaction committed. Returns the report of the
    /// batches of one transaction; `None` when `next` had no batch.
    pub async fn process_stream(
        &mut self,
        next: &mut dyn FnMut() -> Option<Vec<RawRecord>>,
        events_per_commit: usize,
    ) -> Result<Option<BatchReport>, PipelineError> {
        let mut report = BatchReport::default();
        let enricher = Arc::clone(&self.enricher);
        let detected = {
            let mut events =
                || next().map(|records| normalize_batch(&enricher, records, &mut report));
            self.detect_stream(&mut events, events_per_commit)?
        };
        let Some(detected) = detected else {
            return Ok(None);
        };
        report.events = detected.events;
        self.emit(detected.findings, &mut report).await?;
        self.router.flush().await;
        report.kept_events = detected.batches.into_iter().flatten().collect();
        Ok(Some(report))
    }

    /// Every event of `events` through every detector (after their prefetch), in order; the
    /// findings are appended to `found`.
    fn detect_events(
        &mut self,
        state: &dyn StateStore,
        events: &[IdentityEvent],
        found: &mut Vec<Finding>,
    ) -> Result<(), DetectError> {
        if let Some(first) = events.first()
            && state.batches_reads()
        {
            self.clock.observe(first.time);
            let cx = DetectContext {
                state,
                now: self.clock.now(),
            };
            for d in &mut self.detectors {
                d.prefetch(events, &cx)?;
            }
        }
        for ev in events {
            self.clock.observe(ev.time);
            let cx = DetectContext {
                state,
                now: self.clock.now(),
            };
            found.append(&mut detect_one(&mut self.detectors, ev, &cx)?);
        }
        Ok(())
    }

    /// The end of a detection transaction: the detectors flush their held-back changes, then
    /// every finding goes to the pending ledger and every `staged` write is made.
    fn finish_batch(
        &mut self,
        state: &dyn StateStore,
        found: &[Finding],
        staged: &[StagedWrite],
        failed: &mut Option<DetectError>,
    ) -> Result<(), StateError> {
        let now = self.clock.now();
        let cx = DetectContext { state, now };
        for d in &mut self.detectors {
            if let Err(e) = d.flush(&cx) {
                *failed = Some(e);
                return Err(abandoned());
            }
        }
        for f in found {
            put_pending(state, f, now)?;
        }
        for w in staged {
            state.put(w.ns, &w.key, &w.value, None, now)?;
        }
        Ok(())
    }

    /// After a detection transaction: when anything failed, the store rolled it back, so the
    /// detectors forget their caches (a re-run starts from what the store holds).
    fn after_batch(
        &mut self,
        failed: Option<DetectError>,
        result: Result<(), StateError>,
    ) -> Result<(), PipelineError> {
        if failed.is_some() || result.is_err() {
            for d in &mut self.detectors {
                d.discard();
            }
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        result?;
        Ok(())
    }

    /// The stages after detection, for findings of one batch: drop those already in the
    /// finding ledger; run the Responder (whose own ledger makes each action once-only) and
    /// attach what it did; send the breach alert if its steps closed the latch; notify;
    /// record the finding.
    pub async fn emit(
        &mut self,
        found: Vec<Finding>,
        report: &mut BatchReport,
    ) -> Result<(), PipelineError> {
        let now = self.clock.now();
        let ledger_ns = self.ledger_ns;
        for mut f in found {
            if self.state.get(ledger_ns, &f.uid, now)?.is_some() {
                report.duplicate_findings += 1;
                self.state.delete(PENDING_NS, &f.uid)?;
                continue;
            }
            if let Some(r) = &self.responder {
                match r.respond(&f).await {
                    Ok(out) => {
                        out.attach(&mut f);
                        if let Some(breach) = out.breach {
                            report.notify_failures += self.router.send(&breach).await;
                            report.findings.push(breach);
                        }
                    }
                    Err(e) => {
                        report.respond_failures += 1;
                        tracing::error!(finding = %f.uid, error = %e, "response stage failed; the finding is still notified");
                    }
                }
            }
            let failed = self.router.send(&f).await;
            report.notify_failures += failed;
            if failed > 0 && self.require_delivery {
                // Not recorded: it stays pending, and the batch is retried.
                return Err(PipelineError::Delivery { finding: f.uid });
            }
            // Buffered notifiers hold the finding until flushed: flush before recording it, or
            // a crash after recording loses a finding that was never written out.
            self.router.flush().await;
            let mark = serde_json::json!({"detector": f.detector, "time": f.time}).to_string();
            let expires = now + Duration::days(FINDING_TTL_DAYS);
            let state = Arc::clone(&self.state);
            let mut inserted = false;
            state.run_batch(&mut || {
                inserted =
                    state.put_if_absent(ledger_ns, &f.uid, mark.as_bytes(), Some(expires), now)?;
                state.delete(PENDING_NS, &f.uid)
            })?;
            if !inserted {
                report.duplicate_findings += 1;
                continue;
            }
            report.findings.push(f);
        }
        Ok(())
    }
}

impl Pipeline {
    /// Emits the findings a killed process left in the pending ledger (detected and committed
    /// with their batch, not yet notified and recorded). Call once at start, before polling.
    pub async fn recover(&mut self) -> Result<BatchReport, PipelineError> {
        let mut report = BatchReport::default();
        loop {
            let now = self.clock.now();
            let pending = self.state.list(PENDING_NS, "", 1024, now)?;
            if pending.is_empty() {
                break;
            }
            let mut found = Vec::with_capacity(pending.len());
            for (key, v) in pending {
                match serde_json::from_slice::<Finding>(&v.value) {
                    Ok(f) => found.push(f),
                    Err(e) => {
                        tracing::error!(finding = %key, error = %e, "pending finding does not decode; dropped");
                        self.state.delete(PENDING_NS, &key)?;
                    }
                }
            }
            self.emit(found, &mut report).await?;
        }
        self.router.flush().await;
        if !report.findings.is_empty() || report.duplicate_findings > 0 {
            tracing::info!(
                sent = report.findings.len(),
                already_sent = report.duplicate_findings,
                "pending findings of an interrupted run recovered"
            );
        }
        Ok(report)
    }
}

/// Normalizes and enriches a batch of records, in event-time order (stable, so equal times
/// keep delivery order); counts events by kind and rejected records in `report`.
fn normalize_batch(
    enricher: &Enricher,
    records: Vec<RawRecord>,
    report: &mut BatchReport,
) -> Vec<IdentityEvent> {
    report.records += records.len();
    // Room for a Reports record or two with several events: growing a vector of events
    // copies every event already in it.
    let mut events = Vec::with_capacity(records.len() + records.len() / 2);
    for rec in records {
        let kind = match rec.detected_kind() {
            Some(k) => k,
            None => {
                tracing::debug!(origin = %rec.origin, "record of unknown shape rejected");
                report.rejected.push(Rejected {
                    origin: rec.origin,
                    error: NormalizeError::UnknownShape,
                });
                continue;
            }
        };
        match normalize::normalize(kind, rec.value) {
            Ok(evs) => {
                *report.by_kind.entry(kind).or_default() += evs.len();
                events.extend(evs);
            }
            Err(error) => {
                tracing::debug!(origin = %rec.origin, %error, "record rejected");
                report.rejected.push(Rejected {
                    origin: rec.origin,
                    error,
                });
            }
        }
    }
    for ev in &mut events {
        enricher.enrich(ev);
    }
    events.sort_by_key(|e| e.time);
    events
}

/// Writes `f` to the pending ledger: detected, to be notified and recorded by
/// [`Pipeline::emit`] (or, after a crash, by [`Pipeline::recover`]). Call it inside the
/// transaction that commits whatever made the finding.
pub fn put_pending(
    state: &dyn StateStore,
    f: &Finding,
    now: DateTime<Utc>,
) -> Result<(), StateError> {
    let json = serde_json::to_vec(f).map_err(|e| StateError::Corrupt {
        namespace: PENDING_NS.into(),
        key: f.uid.clone(),
        message: e.to_string(),
    })?;
    let expires = now + Duration::days(FINDING_TTL_DAYS);
    state.put(PENDING_NS, &f.uid, &json, Some(expires), now)?;
    Ok(())
}

/// What a batch's group of state operations returns to have the store roll it back when a
/// detector failed (the detector's own error is reported instead).
fn abandoned() -> StateError {
    StateError::Backend {
        backend: "pipeline",
        message: "batch abandoned after a detector error".into(),
        source: None,
    }
}

/// One event through every detector, then its findings through the correlating ones.
fn detect_one(
    detectors: &mut [Box<dyn Detector>],
    ev: &IdentityEvent,
    cx: &DetectContext<'_>,
) -> Result<Vec<Finding>, DetectError> {
    let mut found = Vec::new();
    let mut fresh = Vec::new();
    for d in detectors.iter_mut() {
        fresh.extend(d.on_event(ev, cx)?);
    }
    let mut depth = 0;
    while !fresh.is_empty() && depth < MAX_CORRELATION_DEPTH {
        let mut next = Vec::new();
        for f in &fresh {
            for d in detectors.iter_mut() {
                if d.id() == f.detector {
                    continue;
                }
                next.extend(d.on_finding(f, cx)?);
            }
        }
        found.append(&mut fresh);
        fresh = next;
        depth += 1;
    }
    found.append(&mut fresh);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    use crate::cloud::Clients;
    use crate::config::{Config, PlaybookSection, RespondMode, RespondSection};
    use crate::enrich::IdentitiesConfig;
    use crate::model::{Actor, Evidence, Provider, Severity};
    use crate::respond::{Action, ActionError, ActionKind, ActionTarget, Change};
    use crate::state::MemoryStore;

    use crate::alert::testing::Capture;

    #[derive(Default)]
    struct Revoke(Mutex<u32>);

    #[async_trait::async_trait]
    impl Action for Revoke {
        fn kind(&self) -> ActionKind {
            ActionKind::EntraRevokeSessions
        }
        async fn apply(&self, _: &ActionTarget) -> Result<Change, ActionError> {
            *self.0.lock().unwrap() += 1;
            Ok(Change::default())
        }
        async fn verify(&self, _: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
            Ok(true)
        }
        async fn undo(&self, _: &ActionTarget, _: &Change) -> Result<(), ActionError> {
            Ok(())
        }
    }

    fn finding(who: &str) -> Finding {
        let ev = Evidence {
            uid: format!("ev-{who}"),
            time: chrono::DateTime::UNIX_EPOCH,
            provider: Provider::Entra,
            action: "Sign-in activity".into(),
            success: true,
            src_ip: None,
            user_agent: None,
            geo: None,
            asn: None,
        };
        let mut f = Finding::new("account-takeover", "takeover", Severity::High, vec![ev]);
        f.identity = Some(who.into());
        f.actor = Some(Actor {
            key: who.into(),
            email: Some(who.into()),
            ..Actor::default()
        });
        f
    }

    fn pipeline(per_hour: u64) -> (Pipeline, Capture, Arc<Revoke>) {
        let config = Config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let capture = Capture::default();
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let clock = Arc::new(Clock::Fixed(chrono::DateTime::UNIX_EPOCH));
        let section = RespondSection {
            mode: RespondMode::Enforce,
            max_actions_per_hour: per_hour,
            max_actions_per_identity: 10,
            playbook: vec![PlaybookSection {
                on: vec!["account-takeover".into()],
                min_severity: Severity::High,
                actions: vec!["entra_revoke_sessions".into()],
            }],
        };
        let mut responder = Responder::new(
            &section,
            &IdentitiesConfig::default(),
            &Clients::default(),
            state.clone(),
            clock.clone(),
            false,
        )
        .unwrap();
        let revoke = Arc::new(Revoke::default());
        responder.set_action(revoke.clone());
        let router = Router::new(vec![(Severity::Informational, Box::new(capture.clone()))]);
        let p = Pipeline::new(
            Arc::new(crate::app::enricher(&config).unwrap()),
            Vec::new(),
            state,
            router,
            clock,
        )
        .with_responder(responder);
        (p, capture, revoke)
    }

    /// Two workers on one SQLite file take turns with the batches of a generated month: each
    /// one's cached (write-back) state goes stale whenever the other wrote an identity, its
    /// flush conflicts, and the batch runs again on fresh state. The findings are exactly
    /// those of one worker doing every batch, and of a worker whose caches hold only a few
    /// identities (evicting all the time).
    #[test]
    fn workers_sharing_a_sqlite_file_find_what_one_worker_finds() {
        use crate::config::DetectSection;
        use crate::detect::builtin::identity_detectors;
        use crate::detect::testgen::{Month, enricher};
        use crate::state::SqliteStore;

        let month = Month::generate(60, 11);
        let (mut events, _) = month.events(&enricher(month.users).unwrap());
        events.sort_by_key(|e| e.time);
        let dir = tempfile::tempdir().unwrap();
        let worker_with = |file: &str, detect: &DetectSection| {
            let state: Arc<dyn StateStore> =
                Arc::new(SqliteStore::open(dir.path().join(file)).unwrap());
            Pipeline::new(
                Arc::new(enricher(1).unwrap()),
                identity_detectors(detect).unwrap(),
                state,
                Router::new(Vec::new()),
                Arc::new(Clock::event_time()),
            )
        };
        let worker = |file: &str| worker_with(file, &DetectSection::default());
        let uids = |found: Vec<Finding>| {
            let mut v: Vec<String> = found.into_iter().map(|f| f.uid).collect();
            v.sort();
            v
        };
        let mut one = worker("one.db");
        let mut alone = Vec::new();
        for chunk in events.chunks(97) {
            alone.extend(one.detect(chunk).unwrap());
        }
        let mut a = worker("shared.db");
        let mut b = worker("shared.db");
        let mut shared = Vec::new();
        for (i, chunk) in events.chunks(97).enumerate() {
            let w = if i % 3 == 1 { &mut b } else { &mut a };
            shared.extend(w.detect(chunk).unwrap());
        }
        assert!(
            alone.iter().any(|f| f.detector == "impossible-travel"),
            "the month has travel findings"
        );
        let tiny: toml::Table = toml::from_str("cache_identities = 7").unwrap();
        let small = DetectSection {
            impossible_travel: Some(tiny.clone()),
            oauth_consent: Some(tiny.clone()),
            account_takeover: Some(tiny.clone()),
            new_country: Some(tiny.clone()),
            first_seen_asn: Some(tiny),
            ..DetectSection::default()
        };
        let mut evicting = worker_with("small.db", &small);
        let mut small_cache = Vec::new();
        for chunk in events.chunks(97) {
            small_cache.extend(evicting.detect(chunk).unwrap());
        }
        // Replay's path: one transaction over many batches finds the same; with a cache of 7
        // identities, transactions end early whenever held-back changes fill it.
        let stream = |file: &str, detect: &DetectSection| {
            let mut w = worker_with(file, detect);
            let mut chunks = events.chunks(97);
            let (mut found, mut commits) = (Vec::new(), 0);
            while let Some(d) = w.detect_stream(&mut || chunks.next(), 1000).unwrap() {
                found.extend(d.findings);
                commits += 1;
            }
            (uids(found), commits)
        };
        let (streamed, commits) = stream("stream.db", &DetectSection::default());
        let (streamed_small, commits_small) = stream("stream-small.db", &small);
        let alone = uids(alone);
        assert_eq!(uids(shared), alone);
        assert_eq!(uids(small_cache), alone);
        assert_eq!(streamed, alone);
        assert_eq!(streamed_small, alone);
        assert_eq!(
            commits,
            events.len().div_ceil(97 * 11),
            "1,000 events: 11 batches"
        );
        assert!(commits_small > commits, "{commits_small} vs {commits}");
    }

    #[tokio::test]
    async fn the_notification_says_what_picket_did_and_a_rerun_acts_and_alerts_once() {
        let (mut p, capture, revoke) = pipeline(5);
        let mut report = BatchReport::default();
        p.emit(vec![finding("a@x.example")], &mut report)
            .await
            .unwrap();
        p.emit(vec![finding("a@x.example")], &mut report)
            .await
            .unwrap();
        assert_eq!(*revoke.0.lock().unwrap(), 1);
        let sent = capture.0.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let notes = crate::alert::facts::response_notes(&sent[0]);
        assert_eq!(notes[0].status, "verified");
        assert_eq!(report.duplicate_findings, 1);
    }

    #[tokio::test]
    async fn a_breach_is_alerted_once_through_the_router() {
        let (mut p, capture, revoke) = pipeline(2);
        let mut report = BatchReport::default();
        let found = (0..6)
            .map(|i| finding(&format!("u{i}@x.example")))
            .collect();
        p.emit(found, &mut report).await.unwrap();
        assert_eq!(*revoke.0.lock().unwrap(), 2);
        let sent = capture.0.lock().unwrap();
        let breaches: Vec<_> = sent
            .iter()
            .filter(|f| f.detector == "respond-guardrail")
            .collect();
        assert_eq!(breaches.len(), 1);
        assert_eq!(sent.len(), 7, "six findings and one breach alert");
    }

    #[tokio::test]
    async fn findings_left_pending_by_a_killed_run_are_sent_once_at_start() {
        let (mut p, capture, _) = pipeline(5);
        let now = chrono::DateTime::UNIX_EPOCH;
        let a = finding("a@x.example");
        let b = finding("b@x.example");
        for f in [&a, &b] {
            let json = serde_json::to_vec(f).unwrap();
            p.state().put(PENDING_NS, &f.uid, &json, None, now).unwrap();
        }
        // `a` was notified and recorded before the kill; only `b` is still to send.
        p.state()
            .put(FINDINGS_NS, &a.uid, b"{}", None, now)
            .unwrap();
        let report = p.recover().await.unwrap();
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.duplicate_findings, 1);
        let sent: Vec<_> = capture
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|f| f.uid.clone())
            .collect();
        assert_eq!(sent, std::slice::from_ref(&b.uid));
        assert!(p.state().list(PENDING_NS, "", 10, now).unwrap().is_empty());
        assert!(p.recover().await.unwrap().findings.is_empty());
    }
}
