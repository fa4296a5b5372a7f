//! Detection: Sigma rules over raw records, and stateful identity detectors over
//! [`IdentityEvent`]s. Every detector sees every event in event-time order (per batch) and
//! every finding the others produced, so correlations (account takeover) are detectors too.
//!
//! To add a stateful detector: one file implementing [`Detector`] with its config, one variant
//! in [`builtin::IdentityDetector`]. To add rules: Sigma YAML in `detections/` (see [`pack`]).

pub mod sigma;

use chrono::{DateTime, Utc};

use crate::model::{Finding, IdentityEvent};
use crate::state::{StateError, StateStore};

/// What a detector may use besides the event: the state store and the wall clock of the run
/// (only for expiry of state; detection logic reads `event.time`).
pub struct DetectContext<'a> {
    /// Durable state (history, counters, first-seen marks).
    pub state: &'a dyn StateStore,
    /// Wall-clock time of this batch, for TTLs.
    pub now: DateTime<Utc>,
}

/// Errors of a detector.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The state store failed.
    #[error("detector {detector}: state: {source}")]
    State {
        /// Detector id.
        detector: String,
        /// Cause.
        #[source]
        source: StateError,
    },
    /// Another worker changed an identity's state since this one read it: the batch must
    /// run again on fresh state (the pipeline does that).
    #[error("detector {detector}: state {key} changed by another worker")]
    Conflict {
        /// Detector id.
        detector: String,
        /// Namespace and key of the state (`impossible-travel/alice@corp.example`).
        key: String,
    },
    /// A stored value could not be decoded.
    #[error("detector {detector}: {message}")]
    Internal {
        /// Detector id.
        detector: String,
        /// What went wrong.
        message: String,
    },
}

impl DetectError {
    /// Whether retrying the batch may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            DetectError::State { source, .. } => source.is_retryable(),
            DetectError::Conflict { .. } => true,
            DetectError::Internal { .. } => false,
        }
    }
}

/// A detector: looks at events (and other detectors' findings) and reports findings.
pub trait Detector: Send {
    /// The detector id (`impossible-travel`, `sigma`, ...), as in findings and playbooks.
    fn id(&self) -> &str;

    /// Looks at one normalized, enriched event.
    fn on_event(
        &mut self,
        event: &IdentityEvent,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError>;

    /// Called with a whole batch before its events: loads, in as few store round-trips as
    /// the backend allows, the state the detector will read for them. Default: nothing.
    fn prefetch(
        &mut self,
        _events: &[IdentityEvent],
        _cx: &DetectContext<'_>,
    ) -> Result<(), DetectError> {
        Ok(())
    }

    /// Switches write-back on or off: with it on, state changes stay in the detector's cache
    /// until [`Detector::flush`]. The pipeline turns it on when its store commits each batch
    /// all-or-nothing ([`StateStore::rolls_back_batches`]). Default: nothing to switch.
    fn set_write_back(&mut self, _on: bool) {}

    /// Writes the state changes held back since the last flush (compare-and-set against the
    /// versions read); [`DetectError::Conflict`] when another worker changed one meanwhile.
    /// The pipeline calls it at the end of each batch, inside the batch's transaction.
    fn flush(&mut self, _cx: &DetectContext<'_>) -> Result<(), DetectError> {
        Ok(())
    }

    /// Forgets cached state (a batch was rolled back, so the cache may hold what the store
    /// does not).
    fn discard(&mut self) {}

    /// Whether the changes held back since the last flush fill the detector's cache, so the
    /// transaction should end soon ([`Pipeline::detect_stream`](crate::pipeline::Pipeline::detect_stream)
    /// ends it after the batch): held-back changes are never evicted, so this is what bounds
    /// the cache's memory in a transaction of many batches. Default: never.
    fn wants_flush(&self) -> bool {
        false
    }

    /// Looks at a finding another detector produced (correlation). Default: nothing.
    fn on_finding(
        &mut self,
        _finding: &Finding,
        _cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        Ok(Vec::new())
    }
}

pub mod account_takeover;
pub mod builtin;
pub mod codec;
pub mod first_seen_asn;
pub mod history;
pub mod impossible_travel;
pub mod new_country;
pub mod oauth_consent;
pub mod pack;
pub mod profile;
#[cfg(any(test, feature = "testgen"))]
pub mod testgen;
