//! Raw provider records -> [`IdentityEvent`]s. Pure functions, never behind a feature: the
//! same code normalizes what a poller fetched, what a file held and what Lambda received.
//!
//! To add a record shape: add a [`RecordKind`] variant, a `<kind>.rs` file with
//! `pub fn normalize(raw: Value) -> Result<Vec<IdentityEvent>, NormalizeError>`, a line in
//! [`normalize`] and in [`detect_kind`], and golden files under `tests/golden/normalize/`.

use serde_json::Value;

use crate::model::{IdentityEvent, RecordKind};

pub mod azure_monitor;
pub mod cloudtrail;
pub mod entra_audit;
pub mod entra_signin;
pub mod gcp_audit;
pub mod google_reports;
mod util;

/// Why a record could not be normalized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// The record's shape is none picket knows.
    #[error("unknown record shape (no known kind matches its fields)")]
    UnknownShape,
    /// A required field is missing.
    #[error("{kind} record: missing field `{field}`")]
    Missing {
        /// The record kind.
        kind: RecordKind,
        /// The field path.
        field: &'static str,
    },
    /// A field has the wrong type or an unparsable value.
    #[error("{kind} record: field `{field}`: {message}")]
    Invalid {
        /// The record kind.
        kind: RecordKind,
        /// The field path.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// Recognises a record's kind from its shape, or `None` when it is none picket knows.
pub fn detect_kind(raw: &Value) -> Option<RecordKind> {
    let obj = raw.as_object()?;
    if obj.contains_key("eventVersion") && obj.contains_key("eventSource") {
        return Some(RecordKind::Cloudtrail);
    }
    if let Some(dt) = obj.get("detail-type").and_then(Value::as_str)
        && dt.ends_with("via CloudTrail")
    {
        return Some(RecordKind::Cloudtrail);
    }
    if obj.get("kind").and_then(Value::as_str) == Some("admin#reports#activity") {
        return Some(RecordKind::GoogleReports);
    }
    if obj.contains_key("protoPayload") && obj.contains_key("logName") {
        return Some(RecordKind::GcpAudit);
    }
    if let (Some(category), true) = (
        obj.get("category").and_then(Value::as_str),
        obj.contains_key("properties"),
    ) {
        return match category {
            "SignInLogs"
            | "NonInteractiveUserSignInLogs"
            | "ServicePrincipalSignInLogs"
            | "ManagedIdentitySignInLogs" => Some(RecordKind::AzureMonitorSignin),
            "AuditLogs" => Some(RecordKind::AzureMonitorAudit),
            _ => None,
        };
    }
    if obj.contains_key("activityDisplayName") && obj.contains_key("activityDateTime") {
        return Some(RecordKind::EntraAudit);
    }
    if obj.contains_key("createdDateTime")
        && (obj.contains_key("userPrincipalName") || obj.contains_key("appId"))
    {
        return Some(RecordKind::EntraSignin);
    }
    None
}

/// Normalizes one raw record of a known kind. Some records hold several events (a Reports
/// activity with several `events[]`), hence the `Vec`.
pub fn normalize(kind: RecordKind, raw: Value) -> Result<Vec<IdentityEvent>, NormalizeError> {
    match kind {
        RecordKind::Cloudtrail => cloudtrail::normalize(raw),
        RecordKind::EntraSignin => entra_signin::normalize(raw),
        RecordKind::EntraAudit => entra_audit::normalize(raw),
        RecordKind::AzureMonitorSignin | RecordKind::AzureMonitorAudit => {
            azure_monitor::normalize(raw)
        }
        RecordKind::GoogleReports => google_reports::normalize(raw),
        RecordKind::GcpAudit => gcp_audit::normalize(raw),
    }
}
