//! Every loadable rule (SigmaHQ's cloud rules and the shipped pack) on real and documented
//! records (`tests/fixtures/sigma-records`, see its README): the index must pick exactly the
//! rules a full scan finds, and the matches are a golden file
//! (`tests/golden/sigma/record_matches.txt`, rewritten with `PICKET_BLESS=1`).

use std::path::{Path, PathBuf};

use picket::detect::sigma::record_view;
use picket::detect::sigma::ruleset::RuleSet;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Flattens `{"Records": [...]}`, `{"value": [...]}`, `{"items": [...]}` and arrays.
fn records(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(a) => a.into_iter().for_each(|x| records(x, out)),
        Value::Object(mut o) => {
            for k in ["Records", "value", "items"] {
                if let Some(inner) = o.remove(k) {
                    return records(inner, out);
                }
            }
            out.push(Value::Object(o));
        }
        _ => {}
    }
}

fn json_files(d: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

/// All fixture records with a label `folder/file#index`.
pub fn fixture_records() -> Vec<(String, Value)> {
    let base = root().join("tests/fixtures/sigma-records");
    let mut files = Vec::new();
    json_files(&base, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut recs = Vec::new();
        records(v, &mut recs);
        let label = f.strip_prefix(&base).unwrap().display().to_string();
        for (i, r) in recs.into_iter().enumerate() {
            out.push((format!("{label}#{i}"), r));
        }
    }
    out
}

/// SigmaHQ's rules plus the shipped pack.
pub fn all_rules() -> RuleSet {
    let (set, _rejected) = RuleSet::load(
        &[
            root().join("tests/fixtures/sigma-cloud"),
            root().join("detections"),
        ],
        &root().join("detections/mappings"),
    );
    set
}

#[test]
fn rules_on_fixture_records() {
    let set = all_rules();
    let mut lines = Vec::new();
    let mut n = 0;
    for (label, raw) in fixture_records() {
        let Some(kind) = picket::normalize::detect_kind(&raw) else {
            continue;
        };
        n += 1;
        let view = record_view(kind, &raw);
        let indexed = set.matching(kind, view);
        let full: Vec<usize> = (0..set.rules().len())
            .filter(|&i| set.rules()[i].matches(kind, view))
            .collect();
        assert_eq!(indexed, full, "index and full scan disagree on {label}");
        if indexed.is_empty() {
            continue;
        }
        let mut names: Vec<String> = indexed
            .iter()
            .map(|&i| {
                let p = &set.rules()[i].meta.path;
                p.file_stem().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names.dedup();
        lines.push(format!("{label} {kind} => {}", names.join(", ")));
    }
    assert!(n > 300, "only {n} records recognised");
    let report = format!(
        "records: {n}\nwith matches: {}\n\n{}\n",
        lines.len(),
        lines.join("\n")
    );
    let golden = root().join("tests/golden/sigma/record_matches.txt");
    if std::env::var_os("PICKET_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &report).unwrap();
    }
    assert_eq!(
        report,
        std::fs::read_to_string(&golden).unwrap_or_default(),
        "record matches changed (PICKET_BLESS=1 to accept)"
    );
    // What must hold whatever the golden says.
    let has = |label: &str, rule: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(label) && l.contains(rule))
    };
    assert!(has(
        "stratus/aws.defense-evasion.cloudtrail-stop.json",
        "aws_cloudtrail_disable_logging"
    ));
    assert!(has(
        "stratus/aws.defense-evasion.cloudtrail-delete.json",
        "aws_cloudtrail_disable_logging"
    ));
    assert!(has(
        "msgraph/signIns-list.beta.example1.failed-password.json",
        "entra_password_spray"
    ));
    assert!(!has(
        "msgraph/signIns-list.beta.example1.failed-password.json",
        "azure_ad_only_single_factor_auth_required"
    ));
}

fn read(rel: &str) -> Value {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/sigma-records").join(rel)).unwrap();
    let mut recs = Vec::new();
    records(serde_json::from_str(&text).unwrap(), &mut recs);
    recs.remove(0)
}

fn matched_ids(set: &RuleSet, raw: &Value) -> Vec<String> {
    let kind = picket::normalize::detect_kind(raw).expect("known shape");
    set.matching(kind, record_view(kind, raw))
        .into_iter()
        .map(|i| set.rules()[i].meta.id.clone())
        .collect()
}

/// Real records edited into the situation a SigmaHQ rule describes, so the Google and GCP
/// mappings (value translation, `[name=...]` parameters, `data.*` rewrites) are exercised.
#[test]
fn sigmahq_google_and_gcp_rules_on_edited_records() {
    let set = all_rules();
    // GCP audit: a bucket deleted (gcp.audit.method_name).
    let mut gcp = read("gcp-csa/google.storage.objects.get-notInSameVPC.json");
    gcp["protoPayload"]["methodName"] = "storage.buckets.delete".into();
    assert!(matched_ids(&set, &gcp).contains(&"4d9f2ee2-c903-48ab-b9c1-8c0f474913d0".to_string()));
    gcp["protoPayload"]["methodName"] = "storage.objects.get".into();
    assert!(!matched_ids(&set, &gcp).contains(&"4d9f2ee2-c903-48ab-b9c1-8c0f474913d0".to_string()));

    // Workspace admin via the Reports API: eventService admin.googleapis.com = application
    // `admin`, setting_name = the SETTING_NAME parameter.
    let mut admin = read("google-reports/admin-activities-list.json");
    admin["events"][0]["name"] = "CHANGE_APPLICATION_SETTING".into();
    admin["events"][0]["parameters"] = serde_json::json!([
        {"name": "APPLICATION_NAME", "value": "Security"},
        {"name": "SETTING_NAME", "value": "ContextAwareAccess <Access level>"}
    ]);
    let id = "22f2fb54-5312-435d-852f-7c74f81684ca".to_string();
    assert!(matched_ids(&set, &admin).contains(&id));
    admin["events"][0]["parameters"][1]["value"] = "Other setting".into();
    assert!(!matched_ids(&set, &admin).contains(&id));
    admin["events"][0]["parameters"][1]["value"] = "ContextAwareAccess x".into();
    admin["id"]["applicationName"] = "drive".into();
    assert!(!matched_ids(&set, &admin).contains(&id));

    // Workspace login as exported to Cloud Logging.
    let mut login = read("gcp-csa/google.login.LoginService.loginSuccess.json");
    let id = "38360161-76c4-4283-842e-efcf997dafc8".to_string();
    assert!(!matched_ids(&set, &login).contains(&id));
    login["protoPayload"]["metadata"]["event"][0]["eventName"] = "suspicious_login".into();
    assert!(matched_ids(&set, &login).contains(&id));
    // ... and as read from the Reports API (application `login`).
    let mut reports = read("google-reports/admin-activities-list.json");
    reports["id"]["applicationName"] = "login".into();
    reports["events"][0]["name"] = "suspicious_login".into();
    assert!(matched_ids(&set, &reports).contains(&id));
    reports["id"]["applicationName"] = "admin".into();
    assert!(!matched_ids(&set, &reports).contains(&id));
}

/// The Graph documentation records and their Azure Monitor export shape against SigmaHQ's
/// Azure rules (Log Analytics names mapped onto Graph names).
#[test]
fn sigmahq_azure_rules_on_graph_and_monitor_shapes() {
    let set = all_rules();
    let monitor = |category: &str, op: &str, extra: Value, props: &Value| {
        let mut m = serde_json::json!({
            "time": "2026-11-20T08:00:00Z", "category": category, "operationName": op,
            "properties": props,
        });
        if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
            m.extend(extra);
        }
        m
    };
    // Audit: a member added to an admin role.
    let mut audit = read("msgraph/directoryAudits-list.v1.0.example1.add-member-to-group.json");
    let role = "ebbeb024-5b1d-4e16-9c0c-917f86c708a7".to_string();
    assert!(!matched_ids(&set, &audit).contains(&role));
    audit["activityDisplayName"] = "Add member to role".into();
    audit["targetResources"][0]["displayName"] = "Global Administrator".into();
    assert!(matched_ids(&set, &audit).contains(&role));
    let wrapped = monitor("AuditLogs", "Add member to role", Value::Null, &audit);
    assert!(matched_ids(&set, &wrapped).contains(&role));

    // Sign-in: the failed-password example is no lockout; 50053 is.
    let mut signin = read("msgraph/signIns-list.beta.example1.failed-password.json");
    let lockout = "2b7d6fc0-71ac-4cf7-8ed1-b5788ee5257a".to_string();
    assert!(!matched_ids(&set, &signin).contains(&lockout));
    signin["status"]["errorCode"] = 50053.into();
    assert!(matched_ids(&set, &signin).contains(&lockout));
    let wrapped = monitor(
        "SignInLogs",
        "Sign-in activity",
        serde_json::json!({"resultType": "50053"}),
        &signin,
    );
    assert!(matched_ids(&set, &wrapped).contains(&lockout));

    // Protocol and risk mappings.
    let ropc = "55695bc0-c8cf-461f-a379-2535f563c854".to_string();
    assert!(!matched_ids(&set, &signin).contains(&ropc));
    signin["authenticationProtocol"] = "ropc".into();
    assert!(matched_ids(&set, &signin).contains(&ropc));
    let anon = "53acd925-2003-440d-a1f3-71a5253fe237".to_string();
    assert!(!matched_ids(&set, &signin).contains(&anon));
    signin["riskEventTypes_v2"] = serde_json::json!(["unfamiliarFeatures", "anonymizedIPAddress"]);
    assert!(matched_ids(&set, &signin).contains(&anon));
}
