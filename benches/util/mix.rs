//! A realistic replay workload built from the fixture records of `tests/fixtures/`: CloudTrail
//! (70%), Entra sign-ins (15%) and audits (5%), and Google Workspace activities (10%), each
//! record with its own id, an increasing event time and one of 5,000 actors (each signing in
//! from one address), and — as in real logs — almost all of them routine: 49 records in 50 are
//! rewritten into routine operations (read-only AWS calls, clean sign-ins, everyday directory
//! and Workspace changes) that no rule reports, the 50th is a fixture record as it is (most are
//! attack records). Used by `benches/replay.rs` and by `examples/replay_mix.rs` (which writes
//! it to a file for `picket replay --stats`).

use picket::detect::sigma::ruleset::RuleSet;
use picket::json::{JsonValueMutTrait, JsonValueTrait, Value, json};
use picket::model::RecordKind;

#[path = "fixtures.rs"]
mod fixtures;

/// Read-only CloudTrail calls, with their service: the bulk of a real trail.
const ROUTINE_AWS: &[(&str, &str)] = &[
    ("DescribeInstances", "ec2.amazonaws.com"),
    ("DescribeSecurityGroups", "ec2.amazonaws.com"),
    ("DescribeVolumes", "ec2.amazonaws.com"),
    ("GetBucketLocation", "s3.amazonaws.com"),
    ("Decrypt", "kms.amazonaws.com"),
    ("GenerateDataKey", "kms.amazonaws.com"),
    ("DescribeDBInstances", "rds.amazonaws.com"),
    ("ListFunctions20150331", "lambda.amazonaws.com"),
    ("DescribeLogStreams", "logs.amazonaws.com"),
    ("GetQueueAttributes", "sqs.amazonaws.com"),
    ("DescribeTable", "dynamodb.amazonaws.com"),
];

/// Routine Entra directory operations.
const ROUTINE_ENTRA: &[&str] = &[
    "Update device",
    "Add registered owner to device",
    "Update group",
    "Add member to group",
];

/// Routine Workspace activity names.
const ROUTINE_GOOGLE: &[&str] = &[
    "login_success",
    "CHANGE_CALENDAR_SETTING",
    "authorize",
    "CREATE_GROUP",
];

/// How many people act in the mix (the fixtures' own actors are replaced).
const USERS: usize = 5000;

/// Share of the mix per kind, in records out of 100.
const SHARE: &[(RecordKind, usize)] = &[
    (RecordKind::Cloudtrail, 70),
    (RecordKind::EntraSignin, 15),
    (RecordKind::EntraAudit, 5),
    (RecordKind::GoogleReports, 10),
];

/// The fixture records of the mix's kinds, by kind.
fn templates() -> Vec<(RecordKind, Vec<Value>)> {
    let all = fixtures::records(|k| SHARE.iter().any(|(s, _)| *s == k));
    SHARE
        .iter()
        .map(|(kind, _)| {
            let recs: Vec<Value> = all
                .iter()
                .filter(|(k, _)| k == kind)
                // Only plain CloudTrail records: the EventBridge envelopes stay in the tests.
                .filter(|(_, v)| v.get("detail-type").is_none())
                .map(|(_, v)| v.clone())
                .collect();
            (*kind, recs)
        })
        .collect()
}

fn set(v: &mut Value, path: &[&str], to: Value) {
    let mut cur = v;
    for key in &path[..path.len() - 1] {
        match cur.get_mut(*key) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert(path[path.len() - 1], to);
    }
}

/// A template rewritten into a routine operation of its kind (new action name).
fn routine_variants(kind: RecordKind, r: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match kind {
        RecordKind::Cloudtrail => {
            for (name, source) in ROUTINE_AWS {
                let mut v = r.clone();
                set(&mut v, &["eventName"], (*name).into());
                set(&mut v, &["eventSource"], (*source).into());
                if let Some(o) = v.as_object_mut() {
                    o.remove(&"errorCode");
                    o.remove(&"errorMessage");
                }
                out.push(v);
            }
        }
        RecordKind::EntraAudit => {
            for name in ROUTINE_ENTRA {
                let mut v = r.clone();
                set(&mut v, &["activityDisplayName"], (*name).into());
                out.push(v);
            }
        }
        RecordKind::GoogleReports => {
            for name in ROUTINE_GOOGLE {
                let mut v = r.clone();
                if let Some(events) = v.get_mut("events").and_then(|e| e.as_array_mut()) {
                    for e in events.iter_mut() {
                        set(e, &["name"], (*name).into());
                    }
                }
                out.push(v);
            }
        }
        RecordKind::EntraSignin => {
            // A clean sign-in: succeeded, no risk, compliant device, MFA satisfied.
            let mut v = r.clone();
            for (path, value) in [
                (&["status", "errorCode"][..], json!(0)),
                (&["status", "failureReason"], json!("Other.")),
                (
                    &["status", "additionalDetails"],
                    json!("MFA requirement satisfied"),
                ),
                (&["riskEventTypes"], json!([])),
                (&["riskEventTypes_v2"], json!([])),
                (&["riskLevelDuringSignIn"], json!("none")),
                (&["riskLevelAggregated"], json!("none")),
                (&["riskState"], json!("none")),
                (&["riskDetail"], json!("none")),
                (&["deviceDetail", "isCompliant"], json!(true)),
                (&["deviceDetail", "isManaged"], json!(true)),
                (&["conditionalAccessStatus"], json!("success")),
                (
                    &["authenticationRequirement"],
                    json!("multiFactorAuthentication"),
                ),
                (&["clientAppUsed"], json!("Browser")),
            ] {
                set(&mut v, path, value);
            }
            out.push(v);
        }
        _ => out.push(r.clone()),
    }
    out
}

/// `n` records of the mix as JSON Lines, deterministic for a `seed`. 49 records in 50 are
/// routine: a fixture record rewritten into a routine operation of its kind that no rule of `rules`
/// reports (the shipped pack and SigmaHQ's cloud rules in the benchmarks); the 50th is a
/// fixture record as it is (most of those are attack records and match rules).
pub fn json_lines(n: usize, seed: u64, rules: &RuleSet) -> Vec<u8> {
    let templates: Vec<(RecordKind, Vec<Value>, Vec<Value>)> = templates()
        .into_iter()
        .map(|(kind, recs)| {
            let routine: Vec<Value> = recs
                .iter()
                .flat_map(|r| routine_variants(kind, r))
                // Rules that only feed a correlation (a successful sign-in) report nothing.
                .filter(|v| {
                    let rs = rules.rules();
                    rules.matching(kind, v).iter().all(|i| rs[*i].silent)
                })
                .collect();
            (kind, recs, routine)
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = chrono::DateTime::parse_from_rfc3339("2025-11-01T00:00:00Z")
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    let mut out = Vec::with_capacity(n * 1500);
    for i in 0..n {
        let mut pick = rng.usize(0..100);
        let (kind, recs, routine) = templates
            .iter()
            .find(|(k, _, _)| {
                let share = SHARE.iter().find(|(s, _)| s == k).map_or(0, |(_, s)| *s);
                if pick < share {
                    true
                } else {
                    pick -= share;
                    false
                }
            })
            .unwrap_or(&templates[0]);
        let from = if rng.usize(0..100) < 98 && !routine.is_empty() {
            routine
        } else {
            recs
        };
        let mut r = from[rng.usize(0..from.len())].clone();
        let time = chrono::DateTime::from_timestamp_millis(start + i as i64 * 50)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let id = format!("mix-{seed}-{i:09}");
        // One of USERS people, each signing in from their own address.
        let u = rng.usize(0..USERS);
        let email = format!("user{u}@corp.example");
        let ip = format!("81.2.69.{}", 142 + u % 16);
        match kind {
            RecordKind::Cloudtrail => {
                set(&mut r, &["eventID"], id.as_str().into());
                set(&mut r, &["eventTime"], time.as_str().into());
                if let Some(arn) = r.pointer(&["userIdentity", "arn"]).and_then(Value::as_str)
                    && let Some((head, _)) = arn.rsplit_once('/')
                {
                    let arn = format!("{head}/{email}");
                    set(&mut r, &["userIdentity", "arn"], arn.as_str().into());
                    set(&mut r, &["userIdentity", "userName"], email.as_str().into());
                }
            }
            RecordKind::EntraSignin => {
                set(&mut r, &["id"], id.as_str().into());
                set(&mut r, &["createdDateTime"], time.as_str().into());
                set(&mut r, &["userPrincipalName"], email.as_str().into());
                set(
                    &mut r,
                    &["userId"],
                    format!("00000000-0000-4000-8000-{u:012}").as_str().into(),
                );
                set(&mut r, &["ipAddress"], ip.as_str().into());
            }
            RecordKind::EntraAudit => {
                set(&mut r, &["id"], id.as_str().into());
                set(&mut r, &["activityDateTime"], time.as_str().into());
                set(
                    &mut r,
                    &["initiatedBy", "user", "userPrincipalName"],
                    email.as_str().into(),
                );
            }
            _ => {
                set(&mut r, &["id", "uniqueQualifier"], id.as_str().into());
                set(&mut r, &["id", "time"], time.as_str().into());
                set(&mut r, &["actor", "email"], email.as_str().into());
                set(
                    &mut r,
                    &["actor", "profileId"],
                    format!("{}", 100_000 + u).as_str().into(),
                );
                set(&mut r, &["ipAddress"], ip.as_str().into());
            }
        }
        // INVARIANT: a `Value` always serializes.
        serde_json::to_writer(&mut out, &r).expect("JSON");
        out.push(b'\n');
    }
    out
}

/// The rules of the benchmarks: the shipped pack and every loadable SigmaHQ cloud rule.
pub fn rules() -> RuleSet {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    picket::detect::pack::load(true, &[root.join(SIGMA_CLOUD)]).0
}

/// SigmaHQ's cloud rules, relative to the repository.
pub const SIGMA_CLOUD: &str = "tests/fixtures/sigma-cloud";
