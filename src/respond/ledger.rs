//! The response ledger, in the state store (namespace `respond`):
//!
//! | key               | value                                                          |
//! |-------------------|----------------------------------------------------------------|
//! | `action/<id>`     | [`LedgerEntry`] of an enforced action: written `pending` with  |
//! |                   | put-if-absent BEFORE apply, then `applied`/`verified`/`failed` |
//! | `plan/<id>`       | [`LedgerEntry`] of a dry-run plan (`planned`), kept 30 days    |
//! | `latch`           | why the blast-radius latch closed; present = alert-only        |
//!
//! `<id>` is derived from (action, target, incident), so the same incident never applies the
//! same action to the same target twice, across restarts and concurrent runners.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ActionTarget, Change, Plan, RespondError};
use crate::state::{CasOutcome, StateStore};

/// State namespace of the ledger.
pub const NS: &str = "respond";
const LATCH: &str = "latch";
/// How long dry-run plans are kept.
pub const PLAN_TTL_DAYS: i64 = 30;

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Dry run: planned, not applied.
    Planned,
    /// Claimed, about to be applied (or applied and not yet recorded: verify, never re-apply).
    Pending,
    /// Applied; verification did not confirm it yet.
    Applied,
    /// Applied and read back.
    Verified,
    /// Applied, but the read-back did not show the change.
    Unverified,
    /// The cloud call failed.
    Failed,
    /// Reversed by `picket respond undo`.
    Undone,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Pending => "pending",
            Status::Applied => "applied",
            Status::Verified => "verified",
            Status::Unverified => "unverified",
            Status::Failed => "failed",
            Status::Undone => "undone",
        }
    }
}

/// One recorded response step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Id (hash of action, target and incident).
    pub id: String,
    /// Action name.
    pub action: String,
    /// Whom it acts on.
    pub target: ActionTarget,
    /// The finding that triggered it.
    pub finding: String,
    /// The finding's detector.
    pub detector: String,
    /// The incident it belongs to.
    pub incident: String,
    /// Where it stands.
    pub status: Status,
    /// What it was to do.
    pub plan: Plan,
    /// What it changed (before/after).
    #[serde(default)]
    pub change: Option<Change>,
    /// The last error, when it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// A `failed` entry whose error was transient (throttling, 5xx, timeout): the next
    /// finding of the same incident may try it again, within the blast radius.
    #[serde(default)]
    pub retryable: bool,
    /// When it was first recorded.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
}

/// The ledger id of (action, target, incident).
pub fn entry_id(action: &str, target: &ActionTarget, incident: &str) -> String {
    let mut h = Sha256::new();
    for part in [action, &target.label(), incident] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Typed access to the ledger entries and the latch.
#[derive(Clone)]
pub struct Ledger {
    state: Arc<dyn StateStore>,
}

fn corrupt(id: &str, e: impl std::fmt::Display) -> RespondError {
    RespondError::Ledger {
        id: id.to_string(),
        message: e.to_string(),
    }
}

impl Ledger {
    /// The ledger in a state store.
    pub fn new(state: Arc<dyn StateStore>) -> Ledger {
        Ledger { state }
    }

    fn encode(e: &LedgerEntry) -> Result<Vec<u8>, RespondError> {
        serde_json::to_vec(e).map_err(|x| corrupt(&e.id, x))
    }

    /// Records a new entry unless one with its key exists. Returns whether it was written.
    pub fn claim(&self, entry: &LedgerEntry, now: DateTime<Utc>) -> Result<bool, RespondError> {
        let key = Self::key(entry);
        // Enforced entries are the audit trail and stay; dry-run plans age out, so a flood of
        // findings in dry-run cannot grow the store without bound.
        let expires =
            (entry.status == Status::Planned).then(|| now + chrono::Duration::days(PLAN_TTL_DAYS));
        Ok(self
            .state
            .put_if_absent(NS, &key, &Self::encode(entry)?, expires, now)?)
    }

    fn key(entry: &LedgerEntry) -> String {
        match entry.status {
            Status::Planned => format!("plan/{}", entry.id),
            _ => format!("action/{}", entry.id),
        }
    }

    /// Reads an enforced entry and its version.
    pub fn get(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(LedgerEntry, u64)>, RespondError> {
        for prefix in ["action/", "plan/"] {
            if let Some(v) = self.state.get(NS, &format!("{prefix}{id}"), now)? {
                let e: LedgerEntry =
                    serde_json::from_slice(&v.value).map_err(|x| corrupt(id, x))?;
                return Ok(Some((e, v.version)));
            }
        }
        Ok(None)
    }

    /// Replaces an enforced entry if it is still at `version`.
    pub fn update(
        &self,
        entry: &LedgerEntry,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<u64, RespondError> {
        match self.state.compare_and_set(
            NS,
            &format!("action/{}", entry.id),
            Some(version),
            &Self::encode(entry)?,
            None,
            now,
        )? {
            CasOutcome::Written(v) => Ok(v),
            CasOutcome::Conflict(_) => Err(corrupt(&entry.id, "changed by someone else meanwhile")),
        }
    }

    /// Like [`Ledger::update`], but a concurrent change is `None` instead of an error (used
    /// to re-claim a failed entry: only one runner wins).
    pub fn reclaim(
        &self,
        entry: &LedgerEntry,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, RespondError> {
        match self.state.compare_and_set(
            NS,
            &format!("action/{}", entry.id),
            Some(version),
            &Self::encode(entry)?,
            None,
            now,
        )? {
            CasOutcome::Written(v) => Ok(Some(v)),
            CasOutcome::Conflict(_) => Ok(None),
        }
    }

    /// Every entry (enforced and planned), oldest key first, at most `limit`.
    pub fn list(&self, limit: usize, now: DateTime<Utc>) -> Result<Vec<LedgerEntry>, RespondError> {
        let mut out = Vec::new();
        for prefix in ["action/", "plan/"] {
            for (key, v) in self.state.list(NS, prefix, limit, now)? {
                out.push(serde_json::from_slice(&v.value).map_err(|x| corrupt(&key, x))?);
            }
        }
        out.sort_by_key(|e: &LedgerEntry| e.created);
        out.truncate(limit);
        Ok(out)
    }

    /// Closes the latch; true only for the call that closed it.
    pub fn close_latch(&self, reason: &str, now: DateTime<Utc>) -> Result<bool, RespondError> {
        Ok(self
            .state
            .put_if_absent(NS, LATCH, reason.as_bytes(), None, now)?)
    }

    /// Why the latch is closed, if it is.
    pub fn latch(&self, now: DateTime<Utc>) -> Result<Option<String>, RespondError> {
        Ok(self
            .state
            .get(NS, LATCH, now)?
            .map(|v| String::from_utf8_lossy(&v.value).into_owned()))
    }

    /// Opens the latch (`picket respond reset`). Returns whether it was closed.
    pub fn reset(&self, now: DateTime<Utc>) -> Result<bool, RespondError> {
        let was = self.latch(now)?.is_some();
        self.state.delete(NS, LATCH)?;
        Ok(was)
    }
}
