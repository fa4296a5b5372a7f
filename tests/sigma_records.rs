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
pub fn fixture_records() -> Vec<(String, picket::json::Value)> {
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
            out.push((format!("{label}#{i}"), raw(&r)));
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

/// A test's record as picket holds raw records.
fn raw(v: &Value) -> picket::json::Value {
    picket::json::to_value(v).unwrap()
}

fn matched_ids(set: &RuleSet, raw_record: &Value) -> Vec<String> {
    let raw = raw(raw_record);
    let kind = picket::normalize::detect_kind(&raw).expect("known shape");
    set.matching(kind, record_view(kind, &raw))
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

/// The Azure activity log, Microsoft 365 and Okta mappings: SigmaHQ rules fire on the real and
/// hand-written records of `azure-activity/`, `m365-ual/` and `okta/`, and stop firing when the
/// one thing they look for is changed.
#[test]
fn sigmahq_activity_m365_okta_rules_on_records() {
    let set = all_rules();
    let rec = |rel: &str, i: usize| {
        let text =
            std::fs::read_to_string(root().join("tests/fixtures/sigma-records").join(rel)).unwrap();
        let mut recs = Vec::new();
        records(serde_json::from_str(&text).unwrap(), &mut recs);
        recs.swap_remove(i)
    };
    let fires = |raw: &Value, id: &str| matched_ids(&set, raw).iter().any(|m| m == id);

    // Activity log export: `operationName` (upper case, as exported) against the rule's list.
    let mut export = rec("azure-activity/activity-log-export.json", 5);
    let id = "09438caa-07b1-4870-8405-1dbafe3dad95"; // azure_subscription_permissions_elevation
    assert!(fires(&export, id));
    export["operationName"] = "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/READ".into();
    assert!(!fires(&export, id));
    // Log Analytics row: CategoryValue / ResourceProviderValue / ResourceId / OperationNameValue.
    let mut la = rec("azure-activity/azureactivity-log-analytics.json", 0);
    let id = "48739819-8230-4ee3-a8ea-e0289d1fb0ff"; // azure_aadhybridhealth_adfs_service_delete
    assert!(fires(&la, id));
    la["OperationNameValue"] = "Microsoft.ADHybridHealthService/services/read".into();
    assert!(!fires(&la, id));

    // UAL: forwarding through Set-Mailbox parameters (real det-eng-samples record).
    let mut fwd = rec(
        "m365-ual/t1114.003_Forward_Rule_Multi_Users_Same_Forward_dest.json",
        0,
    );
    let id = "c726e007-2cd0-4a55-abfb-79730fbedee5"; // microsoft365_susp_email_forwarding_activity
    assert!(fires(&fwd, id));
    fwd["Parameters"] = serde_json::json!([{"Name": "Identity", "Value": "x"}]);
    assert!(!fires(&fwd, id));
    // A SecurityComplianceAlerts record: eventSource = Workload, eventName = Name, status:
    // success = ResultStatus Succeeded.
    let mut alert = rec("m365-ual/ual-consent-signin-alerts.json", 2);
    let id = "6c220477-0b5b-4b25-bb90-66183b4089e8"; // microsoft365_susp_inbox_forwarding
    assert!(fires(&alert, id));
    alert["ResultStatus"] = "Failed".into();
    assert!(!fires(&alert, id));
    // The Exchange mapping: status: success = ResultStatus True.
    let mut fed = rec(
        "m365-ual/t1114.003_Forward_Rule_Multi_Users_Same_Forward_dest.json",
        0,
    );
    fed["Operation"] = "Add-FederatedDomain".into();
    let id = "42127bdd-9133-474f-a6f1-97b6c08a4339";
    assert!(fires(&fed, id));
    fed["ResultStatus"] = "False".into();
    assert!(!fires(&fed, id));
    // RequestType is an extended property.
    let mut login = rec("m365-ual/ual-consent-signin-alerts.json", 0);
    let id = "13f2d3f5-6497-44a7-bf5f-dc13ffafe5dc"; // microsoft365_bypass_conditional_access
    assert!(!fires(&login, id));
    login["ApplicationId"] = "9ba1a5c7-f17a-4de9-a1f1-6178c8d51223".into();
    login["ExtendedProperties"][2]["Value"] = "Cmsi:Cmsi".into();
    assert!(fires(&login, id));

    // Okta: native System Log names, `securityContext.isProxy: 'true'` against a boolean.
    let mut okta = rec("okta/system-log.json", 3);
    let proxy = "bde30855-5c53-4c18-ae90-1ff79ebc9578"; // okta_user_session_start_via_anonymised_proxy
    assert!(fires(&okta, proxy));
    okta["securityContext"]["isProxy"] = false.into();
    assert!(!fires(&okta, proxy));
}

/// azure_guest_to_member.yml gives `properties.message` a modified property as JSON text; the
/// auditlogs mapping turns it into the `UserType` modified property (regression: it used to
/// be compared with the activity name and could never match).
#[test]
fn sigmahq_guest_to_member_on_graph_audit() {
    let set = all_rules();
    let id = "8dee7a0d-43fd-4b3c-8cd1-605e189d195e".to_string();
    let mut audit = read("msgraph/directoryAudits-list.v1.0.example1.add-member-to-group.json");
    audit["category"] = "UserManagement".into();
    audit["activityDisplayName"] = "Update user".into();
    audit["targetResources"][0]["modifiedProperties"] = serde_json::json!([
        {"displayName": "AccountEnabled", "oldValue": "[true]", "newValue": "[true]"},
        {"displayName": "UserType", "oldValue": "[\"Guest\"]", "newValue": "[\"Member\"]"}
    ]);
    assert!(matched_ids(&set, &audit).contains(&id));
    audit["targetResources"][0]["modifiedProperties"][1]["newValue"] = "[\"Guest\"]".into();
    audit["targetResources"][0]["modifiedProperties"][1]["oldValue"] = "[\"Member\"]".into();
    assert!(!matched_ids(&set, &audit).contains(&id));
}
