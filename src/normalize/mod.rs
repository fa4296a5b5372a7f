//! Raw provider records -> [`IdentityEvent`]s. Pure functions, never behind a feature: the
//! same code normalizes what a poller fetched, what a file held and what Lambda received.
//!
//! To add a record shape: add a [`RecordKind`] variant, a `<kind>.rs` file with
//! `pub fn normalize(raw: Value) -> Result<Vec<IdentityEvent>, NormalizeError>`, a line in
//! [`normalize`] and in [`detect_kind`], and golden files under `tests/golden/normalize/`.

use crate::json::{Fields, JsonValueTrait, Raw, Value};

use crate::model::{IdentityEvent, RecordKind};

pub mod azure_activity;
pub mod azure_monitor;
pub mod cloudtrail;
pub mod entra_audit;
pub mod entra_signin;
pub mod gcp_audit;
pub mod google_reports;
pub mod m365_audit;
pub mod okta;
mod util;

pub(crate) use util::parse_time;

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

/// The `category` values of Azure activity log exports: the event categories, and the
/// Write / Delete / Action of older storage exports.
const ACTIVITY_CATEGORIES: &[&str] = &[
    "Administrative",
    "Policy",
    "Security",
    "ServiceHealth",
    "ResourceHealth",
    "Alert",
    "Recommendation",
    "Autoscale",
    "Write",
    "Delete",
    "Action",
];

/// Recognises a record's kind from its shape, or `None` when it is none picket knows.
/// (Indexes the root's members first: a record read for processing has them indexed already,
/// see [`detect_kind_in`].)
pub fn detect_kind(raw: &Value) -> Option<RecordKind> {
    detect_kind_in(&Fields::new(raw))
}

/// [`detect_kind`] on a record's indexed root members: the tests run in order, the first
/// that holds naming the kind, each looking up only the members it needs (the first member
/// of a name decides, as `get` on the object would find it).
pub fn detect_kind_in(f: &Fields<'_>) -> Option<RecordKind> {
    f.object()?;
    let has = |k: &str| f.get(k).is_some();
    let str_of = |k: &str| f.get(k).and_then(Value::as_str);
    if has("eventVersion") && has("eventSource") {
        return Some(RecordKind::Cloudtrail);
    }
    if str_of("detail-type").is_some_and(|dt| dt.ends_with("via CloudTrail")) {
        return Some(RecordKind::Cloudtrail);
    }
    if str_of("kind") == Some("admin#reports#activity") {
        return Some(RecordKind::GoogleReports);
    }
    if has("protoPayload") && has("logName") {
        return Some(RecordKind::GcpAudit);
    }
    if let (Some(category), true) = (str_of("category"), has("properties")) {
        return match category {
            "SignInLogs"
            | "NonInteractiveUserSignInLogs"
            | "ServicePrincipalSignInLogs"
            | "ManagedIdentitySignInLogs" => Some(RecordKind::AzureMonitorSignin),
            "AuditLogs" => Some(RecordKind::AzureMonitorAudit),
            c if ACTIVITY_CATEGORIES
                .iter()
                .any(|a| a.eq_ignore_ascii_case(c)) =>
            {
                Some(RecordKind::AzureActivity)
            }
            _ => None,
        };
    }
    // Azure activity log: a Log Analytics `AzureActivity` row, the REST `eventData` / alert
    // payload, or an export record without `properties`.
    if has("OperationNameValue")
        || (has("eventDataId") && has("operationName"))
        || (has("operationName")
            && has("time")
            && str_of("resourceId")
                .is_some_and(|id| !id.to_ascii_lowercase().contains("microsoft.aadiam")))
    {
        return Some(RecordKind::AzureActivity);
    }
    // Microsoft 365 Unified Audit Log, a `Search-UnifiedAuditLog` wrapper of one, or a Log
    // Analytics `OfficeActivity` row.
    if (has("CreationTime") && has("Operation") && (has("Workload") || has("RecordType")))
        || (has("AuditData") && (has("Operations") || has("UserIds")))
        || (has("OfficeWorkload") && has("Operation"))
    {
        return Some(RecordKind::M365Audit);
    }
    if has("uuid") && has("published") && has("eventType") {
        return Some(RecordKind::Okta);
    }
    // A Log Analytics `AuditLogs` row (Sentinel export; the OTRF datasets): PascalCase columns.
    if has("ActivityDisplayName") && has("ActivityDateTime") && has("InitiatedBy") {
        return Some(RecordKind::AzureMonitorAudit);
    }
    if has("activityDisplayName") && has("activityDateTime") {
        return Some(RecordKind::EntraAudit);
    }
    if has("createdDateTime") && (has("userPrincipalName") || has("appId")) {
        return Some(RecordKind::EntraSignin);
    }
    None
}

/// Normalizes one raw record of a known kind. Some records hold several events (a Reports
/// activity with several `events[]`), hence the `Vec`.
pub fn normalize(
    kind: RecordKind,
    raw: impl Into<Raw>,
) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw = raw.into();
    match kind {
        RecordKind::Cloudtrail => cloudtrail::normalize(raw),
        RecordKind::EntraSignin => entra_signin::normalize(raw),
        RecordKind::EntraAudit => entra_audit::normalize(raw),
        RecordKind::AzureMonitorSignin | RecordKind::AzureMonitorAudit => {
            azure_monitor::normalize(raw)
        }
        RecordKind::GoogleReports => google_reports::normalize(raw),
        RecordKind::GcpAudit => gcp_audit::normalize(raw),
        RecordKind::AzureActivity => azure_activity::normalize(raw),
        RecordKind::M365Audit => m365_audit::normalize(raw),
        RecordKind::Okta => okta::normalize(raw),
    }
}

#[cfg(test)]
mod tests {
    //! Golden files over every fixture, shape detection, and fuzzing of every normalizer.

    use std::path::{Path, PathBuf};

    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde_json::{Map, Value};

    use super::*;

    /// A test's serde_json tree as picket holds raw records.
    fn raw(v: &Value) -> crate::json::Value {
        crate::json::to_value(v).expect("a serde_json tree converts")
    }

    /// The fixture folders this module owns, with the provider their records belong to.
    const PROVIDERS: &[(&str, crate::model::Provider)] = &[
        ("cloudtrail", crate::model::Provider::Aws),
        ("entra", crate::model::Provider::Entra),
        ("google", crate::model::Provider::GoogleWorkspace),
        ("gcp", crate::model::Provider::Gcp),
        ("azure", crate::model::Provider::Entra),
        ("m365", crate::model::Provider::Microsoft365),
        ("okta", crate::model::Provider::Okta),
    ];

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Records of a fixture file: a JSON array, `{"Records":[..]}`, `{"value":[..]}`,
    /// `{"items":[..]}`, one object, or JSON lines.
    fn load_records(path: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(a)) => a,
            Ok(Value::Object(mut o)) => {
                for key in ["Records", "value", "items"] {
                    if let Some(Value::Array(a)) = o.remove(key) {
                        return a;
                    }
                }
                vec![Value::Object(o)]
            }
            Ok(other) => vec![other],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).expect("JSON line"))
                .collect(),
        }
    }

    /// Fixture files under `dir` (recursively), skipping `unsupported/` and non-JSON files.
    fn fixture_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("fixture dir") {
                let p = entry.expect("dir entry").path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n != "unsupported") {
                        stack.push(p);
                    }
                } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn normalize_file(path: &Path) -> Vec<IdentityEvent> {
        let mut events = Vec::new();
        for (i, record) in load_records(path).into_iter().enumerate() {
            let kind = detect_kind(&raw(&record))
                .unwrap_or_else(|| panic!("{}: record {i}: shape not detected", path.display()));
            match normalize(kind, raw(&record)) {
                Ok(evs) => events.extend(evs),
                Err(e) => panic!("{}: record {i}: {e}", path.display()),
            }
        }
        events
    }

    #[test]
    fn golden_every_fixture() {
        let bless = std::env::var_os("PICKET_BLESS").is_some();
        let mut files = 0;
        let mut mismatches = Vec::new();
        let mut expected = std::collections::HashSet::new();
        for (provider_dir, provider) in PROVIDERS {
            let dir = root().join("tests/fixtures").join(provider_dir);
            for file in fixture_files(&dir) {
                files += 1;
                let events = normalize_file(&file);
                assert!(!events.is_empty(), "{}: no events", file.display());
                for e in &events {
                    assert_eq!(e.provider(), *provider, "{}: {}", file.display(), e.uid);
                    assert!(!e.raw.is_null(), "{}: {} has no raw", file.display(), e.uid);
                }
                let rel = file
                    .strip_prefix(&dir)
                    .expect("under dir")
                    .with_extension("json");
                let golden = root()
                    .join("tests/golden/normalize")
                    .join(provider_dir)
                    .join(rel);
                expected.insert(golden.clone());
                let actual = serde_json::to_string_pretty(&events).expect("serializes") + "\n";
                if bless {
                    std::fs::create_dir_all(golden.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&golden, &actual).expect("write golden");
                } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(&actual) {
                    mismatches.push(golden.display().to_string());
                }
            }
        }
        // A golden file whose fixture is gone would otherwise rot unnoticed.
        let mut stack = vec![root().join("tests/golden/normalize")];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("golden dir") {
                let p = entry.expect("dir entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if !expected.contains(&p) {
                    mismatches.push(format!("{} (no fixture)", p.display()));
                }
            }
        }
        assert!(files >= 30, "only {files} fixture files found");
        assert!(
            mismatches.is_empty(),
            "golden files differ (rerun with PICKET_BLESS=1 and review the diff): {mismatches:#?}"
        );
    }

    #[test]
    fn unsupported_shapes_are_not_detected() {
        for dir in [
            "tests/fixtures/gcp/unsupported",
            "tests/fixtures/entra/unsupported",
        ] {
            let files = fixture_files(&root().join(dir));
            assert!(!files.is_empty(), "{dir} is empty");
            for file in files {
                for record in load_records(&file) {
                    assert_eq!(detect_kind(&raw(&record)), None, "{}", file.display());
                }
            }
        }
        // The non-audit GCP entries fail loudly if forced through the audit normalizer.
        for file in fixture_files(&root().join("tests/fixtures/gcp/unsupported")) {
            for record in load_records(&file) {
                let err = gcp_audit::normalize(raw(&record)).expect_err("not an audit entry");
                assert!(matches!(
                    err,
                    NormalizeError::Missing {
                        field: "protoPayload",
                        ..
                    }
                ));
            }
        }
    }

    #[test]
    fn detect_kind_of_each_shape() {
        use serde_json::json;
        let cases = [
            (
                json!({"eventVersion": "1.08", "eventSource": "iam.amazonaws.com"}),
                Some(RecordKind::Cloudtrail),
            ),
            (
                json!({"detail-type": "AWS API Call via CloudTrail", "detail": {}}),
                Some(RecordKind::Cloudtrail),
            ),
            (
                json!({"kind": "admin#reports#activity"}),
                Some(RecordKind::GoogleReports),
            ),
            (
                json!({"protoPayload": {}, "logName": "x"}),
                Some(RecordKind::GcpAudit),
            ),
            (
                json!({"category": "NonInteractiveUserSignInLogs", "properties": {}}),
                Some(RecordKind::AzureMonitorSignin),
            ),
            (
                json!({"category": "AuditLogs", "properties": {}}),
                Some(RecordKind::AzureMonitorAudit),
            ),
            (
                json!({"ActivityDisplayName": "x", "ActivityDateTime": "y", "InitiatedBy": "{}"}),
                Some(RecordKind::AzureMonitorAudit),
            ),
            (
                json!({"activityDisplayName": "x", "activityDateTime": "y"}),
                Some(RecordKind::EntraAudit),
            ),
            (
                json!({"createdDateTime": "x", "userPrincipalName": "y"}),
                Some(RecordKind::EntraSignin),
            ),
            (
                json!({"category": "Administrative", "properties": {}, "resourceId": "/s", "operationName": "a/b/write"}),
                Some(RecordKind::AzureActivity),
            ),
            (
                json!({"category": "ProvisioningLogs", "properties": {}, "operationName": "x", "time": "t",
                    "resourceId": "/tenants/t/providers/Microsoft.aadiam"}),
                None,
            ),
            (
                json!({"OperationNameValue": "a/b/write", "TimeGenerated": "x"}),
                Some(RecordKind::AzureActivity),
            ),
            (
                json!({"CreationTime": "x", "Operation": "UserLoggedIn", "Workload": "AzureActiveDirectory"}),
                Some(RecordKind::M365Audit),
            ),
            (
                json!({"AuditData": "{}", "Operations": "New-InboxRule"}),
                Some(RecordKind::M365Audit),
            ),
            (
                json!({"uuid": "u", "published": "p", "eventType": "user.session.start"}),
                Some(RecordKind::Okta),
            ),
            (json!({"kind": "admin#reports#activities"}), None),
            (json!([]), None),
        ];
        for (v, want) in cases {
            assert_eq!(detect_kind(&raw(&v)), want, "{v}");
        }
    }

    // ---- fuzzing ----

    /// Field names the normalizers look at, so random objects reach deep code paths.
    const KEYS: &[&str] = &[
        "eventVersion",
        "eventSource",
        "eventTime",
        "eventID",
        "eventName",
        "userIdentity",
        "type",
        "arn",
        "userName",
        "invokedBy",
        "sessionContext",
        "sessionIssuer",
        "onBehalfOf",
        "userId",
        "errorCode",
        "responseElements",
        "ConsoleLogin",
        "additionalEventData",
        "MFAUsed",
        "sourceIPAddress",
        "detail-type",
        "detail",
        "requestParameters",
        "resources",
        "ARN",
        "category",
        "properties",
        "time",
        "id",
        "createdDateTime",
        "status",
        "isInteractive",
        "signInEventTypes",
        "riskEventTypes_v2",
        "authenticationDetails",
        "succeeded",
        "activityDisplayName",
        "activityDateTime",
        "initiatedBy",
        "user",
        "app",
        "targetResources",
        "modifiedProperties",
        "displayName",
        "newValue",
        "ActivityDisplayName",
        "ActivityDateTime",
        "InitiatedBy",
        "TargetResources",
        "kind",
        "uniqueQualifier",
        "events",
        "name",
        "parameters",
        "multiValue",
        "boolValue",
        "value",
        "protoPayload",
        "logName",
        "insertId",
        "timestamp",
        "methodName",
        "@type",
        "code",
        "metadata",
        "event",
        "parameter",
        "serviceData",
        "resourceId",
        "operationName",
        "resultType",
        "resultSignature",
        "identity",
        "claims",
        "OperationNameValue",
        "eventDataId",
        "eventTimestamp",
        "CreationTime",
        "Id",
        "Operation",
        "Workload",
        "RecordType",
        "ResultStatus",
        "UserId",
        "UserKey",
        "UserType",
        "ClientIP",
        "ExtendedProperties",
        "ModifiedProperties",
        "Parameters",
        "Name",
        "Value",
        "AuditData",
        "Operations",
        "OfficeWorkload",
        "OfficeId",
        "TimeGenerated",
        "uuid",
        "published",
        "eventType",
        "outcome",
        "result",
        "actor",
        "alternateId",
        "client",
        "ipAddress",
        "target",
        "debugContext",
        "debugData",
    ];

    /// Values the normalizers treat specially.
    const STRINGS: &[&str] = &[
        "2024-01-01T00:00:00Z",
        "2024-13-45T99:00:00Z",
        "ConsoleLogin",
        "Success",
        "Failure",
        "Yes",
        "075.050.255.67",
        "AWS Internal",
        "private",
        "gce-internal-ip",
        "::1",
        "AWS API Call via CloudTrail",
        "SignInLogs",
        "AuditLogs",
        "NonInteractiveUserSignInLogs",
        "Consent to application",
        "Add delegated permission grant",
        "ConsentAction.Permissions",
        "\"[] => [[Scope: a b, ConsentType: AllPrincipals]]\"",
        "Scope:",
        "=>",
        "login",
        "login_success",
        "token",
        "authorize",
        "admin#reports#activity",
        "AssumedRole",
        "IAMUser",
        "Root",
        "AWSService",
        "IdentityCenterUser",
        "SetIamPolicy",
        "0",
        "",
        "type.googleapis.com/google.cloud.audit.AuditLog",
        "a@b.c",
        "ü€\u{0}\"\\",
        "Administrative",
        "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
        "UserLoggedIn",
        "UserLoginFailed",
        "AzureActiveDirectory",
        "Consent to application.",
        "RequestType",
        "SAS:ProcessAuth",
        "[2001:db8::1]:443",
        "1.2.3.4:80",
        "ForwardingSmtpAddress",
        "user.session.start",
        "app.oauth2.as.consent.grant",
        "SUCCESS",
        "FAILURE",
    ];

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<String>().prop_map(Value::String),
            proptest::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
        ];
        let key = prop_oneof![
            3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
            1 => any::<String>(),
        ];
        leaf.prop_recursive(5, 96, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// One change to a record: what to do at the node picked by the path.
    #[derive(Debug, Clone)]
    enum Op {
        Remove,
        Replace(Value),
        Huge,
        WrongType,
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Remove),
            3 => arb_json().prop_map(Op::Replace),
            1 => Just(Op::Huge),
            3 => Just(Op::WrongType),
        ]
    }

    /// Walks `path` down from `v` and applies `op` to a child of the container reached.
    fn mutate(v: &mut Value, path: &[Index], op: &Op) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let child_key: Option<String> = match v {
            Value::Object(o) if !o.is_empty() => o.keys().nth(first.index(o.len())).cloned(),
            _ => None,
        };
        let descend = !rest.is_empty();
        match v {
            Value::Object(o) => {
                let Some(k) = child_key else { return };
                let child_is_container = o.get(&k).is_some_and(|c| c.is_object() || c.is_array());
                if descend && child_is_container {
                    if let Some(c) = o.get_mut(&k) {
                        mutate(c, rest, op);
                    }
                    return;
                }
                match op {
                    Op::Remove => {
                        o.remove(&k);
                    }
                    _ => {
                        if let Some(c) = o.get_mut(&k) {
                            apply(c, op);
                        }
                    }
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = first.index(a.len());
                if descend && (a[i].is_object() || a[i].is_array()) {
                    mutate(&mut a[i], rest, op);
                } else if matches!(op, Op::Remove) {
                    a.remove(i);
                } else {
                    apply(&mut a[i], op);
                }
            }
            _ => {}
        }
    }

    fn apply(v: &mut Value, op: &Op) {
        *v = match (op, &*v) {
            (Op::Replace(x), _) => x.clone(),
            (Op::Huge, _) => Value::String("A@b.c 075.1 => Scope: ".repeat(10_000)),
            (Op::WrongType, Value::String(s)) => serde_json::json!([s.len()]),
            (Op::WrongType, Value::Object(_) | Value::Array(_)) => Value::from(42),
            (Op::WrongType, _) => Value::String("2024-01-01T00:00:00Z".to_owned()),
            (Op::Remove, _) => Value::Null,
        };
    }

    /// The invariant every normalizer keeps on any input: no panic; events have a uid, their
    /// raw record and serialize; errors name a field.
    fn check(result: Result<Vec<IdentityEvent>, NormalizeError>) -> Result<(), TestCaseError> {
        match result {
            Ok(events) => {
                for e in events {
                    prop_assert!(!e.uid.is_empty());
                    prop_assert!(!e.raw.is_null());
                    prop_assert!(serde_json::to_string(&e).is_ok());
                }
            }
            Err(NormalizeError::Missing { field, .. } | NormalizeError::Invalid { field, .. }) => {
                prop_assert!(!field.is_empty());
            }
            Err(NormalizeError::UnknownShape) => {
                prop_assert!(
                    false,
                    "a normalizer answered UnknownShape instead of naming a field"
                );
            }
        }
        Ok(())
    }

    type NormalizeFn = fn(crate::json::Value) -> Result<Vec<IdentityEvent>, NormalizeError>;

    /// Every normalizer with the fixture folders holding its records.
    const NORMALIZERS: &[(&str, NormalizeFn, &[RecordKind])] = &[
        (
            "cloudtrail",
            cloudtrail::normalize,
            &[RecordKind::Cloudtrail],
        ),
        (
            "entra_signin",
            entra_signin::normalize,
            &[RecordKind::EntraSignin],
        ),
        (
            "entra_audit",
            entra_audit::normalize,
            &[RecordKind::EntraAudit],
        ),
        (
            "azure_monitor",
            azure_monitor::normalize,
            &[
                RecordKind::AzureMonitorSignin,
                RecordKind::AzureMonitorAudit,
            ],
        ),
        (
            "google_reports",
            google_reports::normalize,
            &[RecordKind::GoogleReports],
        ),
        ("gcp_audit", gcp_audit::normalize, &[RecordKind::GcpAudit]),
        (
            "azure_activity",
            azure_activity::normalize,
            &[RecordKind::AzureActivity],
        ),
        (
            "m365_audit",
            m365_audit::normalize,
            &[RecordKind::M365Audit],
        ),
        ("okta", okta::normalize, &[RecordKind::Okta]),
    ];

    /// Every fixture record of the given kinds.
    fn fixture_records(kinds: &[RecordKind]) -> Vec<Value> {
        let mut out = Vec::new();
        for (dir, _) in PROVIDERS {
            for file in fixture_files(&root().join("tests/fixtures").join(dir)) {
                out.extend(
                    load_records(&file)
                        .into_iter()
                        .filter(|r| detect_kind(&raw(r)).is_some_and(|k| kinds.contains(&k))),
                );
            }
        }
        out
    }

    /// Cases per normalizer and strategy; `PROPTEST_CASES` overrides.
    const CASES: u32 = 512;

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(CASES);
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    #[test]
    fn fuzz_arbitrary_json_never_panics() {
        let mut runner = proptest::test_runner::TestRunner::new(config());
        for (name, f, _) in NORMALIZERS {
            runner
                .run(&arb_json(), |v| check(f(raw(&v))))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn fuzz_mutated_fixture_records_never_panic() {
        let mut runner = proptest::test_runner::TestRunner::new(config());
        for (name, f, kinds) in NORMALIZERS {
            let records = fixture_records(kinds);
            assert!(!records.is_empty(), "{name}: no fixture records");
            let strategy = (
                proptest::sample::select(records),
                prop::collection::vec(any::<Index>(), 1..6),
                prop::collection::vec(arb_op(), 1..4),
            );
            runner
                .run(&strategy, |(mut record, path, ops)| {
                    for (i, op) in ops.iter().enumerate() {
                        mutate(
                            &mut record,
                            &path[..path.len().saturating_sub(i).max(1)],
                            op,
                        );
                    }
                    check(f(raw(&record)))
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn fuzz_detect_kind_and_dispatch() {
        let mut runner = proptest::test_runner::TestRunner::new(config());
        runner
            .run(&arb_json(), |v| {
                if let Some(kind) = detect_kind(&raw(&v)) {
                    check(normalize(kind, raw(&v)))?;
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("detect_kind: {e}"));
    }
}
