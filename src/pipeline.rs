//! The one path every record takes: normalize -> enrich -> detect -> respond -> notify -> record.
//! The CLI loop, `picket replay`, the tests and every Lambda handler call
//! [`Pipeline::process`] with a batch of raw records; a source commits its cursor only after
//! `process` returned, so delivery is at-least-once and the finding ledger makes it
//! exactly-once for findings.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;

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
/// How long an emitted finding is remembered for dedup.
pub const FINDING_TTL_DAYS: i64 = 90;
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
}

impl PipelineError {
    /// Whether retrying the batch may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::Detect(e) => e.is_retryable(),
            PipelineError::State(e) => e.is_retryable(),
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
        Pipeline {
            enricher,
            detectors,
            state,
            router,
            clock,
            keep_events: false,
            responder: None,
        }
    }

    /// Adds the response stage. `picket replay` never calls this: history is not acted on.
    pub fn with_responder(mut self, responder: Responder) -> Pipeline {
        self.responder = Some(responder);
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
        let mut report = BatchReport {
            records: records.len(),
            ..BatchReport::default()
        };
        let mut events = Vec::with_capacity(records.len());
        for rec in records {
            let kind = match rec.kind.or_else(|| normalize::detect_kind(&rec.value)) {
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
            self.enricher.enrich(ev);
        }
        // Event-time order within the batch; stable, so equal times keep delivery order.
        events.sort_by_key(|e| e.time);
        report.events = events.len();

        let mut found = Vec::new();
        for ev in &events {
            self.clock.observe(ev.time);
            let now = self.clock.now();
            let cx = DetectContext {
                state: self.state.as_ref(),
                now,
            };
            let mut fresh = Vec::new();
            for d in &mut self.detectors {
                fresh.extend(d.on_event(ev, &cx)?);
            }
            // Let correlating detectors see what was found, a few levels deep.
            let mut depth = 0;
            while !fresh.is_empty() && depth < MAX_CORRELATION_DEPTH {
                let mut next = Vec::new();
                for f in &fresh {
                    for d in &mut self.detectors {
                        if d.id() == f.detector {
                            continue;
                        }
                        next.extend(d.on_finding(f, &cx)?);
                    }
                }
                found.append(&mut fresh);
                fresh = next;
                depth += 1;
            }
            found.append(&mut fresh);
        }

        let now = self.clock.now();
        for mut f in found {
            if self.state.get(FINDINGS_NS, &f.uid, now)?.is_some() {
                report.duplicate_findings += 1;
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
            report.notify_failures += self.router.send(&f).await;
            let mark = serde_json::json!({"detector": f.detector, "time": f.time}).to_string();
            let expires = now + Duration::days(FINDING_TTL_DAYS);
            if !self.state.put_if_absent(
                FINDINGS_NS,
                &f.uid,
                mark.as_bytes(),
                Some(expires),
                now,
            )? {
                report.duplicate_findings += 1;
                continue;
            }
            report.findings.push(f);
        }
        self.router.flush().await;
        if self.keep_events {
            report.kept_events = events;
        }
        Ok(report)
    }
}
