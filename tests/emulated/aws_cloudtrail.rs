//! The `aws_cloudtrail` source with the real `aws-sdk-cloudtrail` client against an in-process
//! server speaking CloudTrail's documented JSON 1.1 protocol for `LookupEvents` (moto does not
//! implement it): `X-Amz-Target: [com.amazonaws.cloudtrail.v20131101.]CloudTrail_20131101.
//! LookupEvents`, `application/x-amz-json-1.1`, `StartTime`/`EndTime` in epoch seconds, events
//! newest first, `NextToken` paging, `ThrottlingException` as a 400 with `{"__type":..}`.
//! The events are the real CloudTrail records of `tests/fixtures/cloudtrail`, copied with
//! fresh ids and times; a rule flags every event, so findings name exactly the events read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use picket::alert::Router;
use picket::clock::Clock;
use picket::cloud::Clients;
use picket::config::Config;
use picket::run::{RunOptions, Runner};
use picket::source::Source;
use picket::state::{SqliteStore, StateStore};
use serde_json::Value;

use crate::util::stub::{DELAY_HEADER, Reply, Request, Stub};

/// The operation, as botocore's service model names it (`targetPrefix`) and as the Rust SDK
/// sends it (the Smithy service shape name only); CloudTrail accepts both.
const TARGETS: [&str; 2] = [
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
    "CloudTrail_20131101.LookupEvents",
];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// The CloudTrail of the stub: events per region, faults, and what was served.
#[derive(Default)]
struct Trail {
    /// (region, record).
    events: Vec<(String, Value)>,
    fault_rate: f64,
    rng: Option<fastrand::Rng>,
    /// (region, when, status) of every answer.
    served: Vec<(String, Instant, u16)>,
}

fn time_of(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["eventTime"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn templates() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail");
    let mut files: Vec<_> = std::fs::read_dir(root.join("stratus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.push(root.join("invictus/selection.json"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        out.extend(v.get("Records").unwrap_or(&v).as_array().unwrap().clone());
    }
    out
}

/// Record `i` of the fixtures, with a unique id and time `t`.
fn event(templates: &[Value], i: usize, t: DateTime<Utc>) -> Value {
    let mut v = templates[i % templates.len()].clone();
    v["eventID"] = format!("evt-{i:06}").into();
    v["eventTime"] = t.format("%Y-%m-%dT%H:%M:%SZ").to_string().into();
    v
}

fn region_of(r: &Request) -> String {
    r.header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("?")
        .to_string()
}

fn handle(trail: &Mutex<Trail>, r: &Request) -> Reply {
    let mut t = trail.lock().unwrap();
    let region = region_of(r);
    if !r
        .header("x-amz-target")
        .is_some_and(|t| TARGETS.contains(&t))
        || r.header("content-type") != Some("application/x-amz-json-1.1")
    {
        return Reply::json(
            400,
            serde_json::json!({"__type": "UnknownOperationException"}),
        );
    }
    let fault = t.fault_rate > 0.0 && {
        let rate = t.fault_rate;
        t.rng
            .get_or_insert_with(|| fastrand::Rng::with_seed(5))
            .f64()
            < rate
    };
    if fault {
        let kind = t.rng.as_mut().unwrap().u8(0..3);
        let reply = match kind {
            0 => Reply::json(
                400,
                serde_json::json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
            ),
            1 => Reply::json(500, serde_json::json!({"__type": "InternalFailure"})),
            _ => {
                let mut r = Reply::json(200, serde_json::json!({"Events": []}));
                r.headers.push((DELAY_HEADER, "1500".into()));
                r
            }
        };
        // A timed-out answer is recorded as status 0.
        let status = if kind == 2 { 0 } else { reply.status };
        t.served.push((region, Instant::now(), status));
        return reply;
    }
    let body = r.json();
    let secs = |k: &str| body[k].as_f64().map(|s| s as i64);
    let (Some(start), Some(end)) = (secs("StartTime"), secs("EndTime")) else {
        return Reply::json(
            400,
            serde_json::json!({"__type": "InvalidTimeRangeException"}),
        );
    };
    let max = body["MaxResults"].as_u64().unwrap_or(50).min(50) as usize;
    let offset: usize = body["NextToken"]
        .as_str()
        .and_then(|s| s.strip_prefix("o:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut rows: Vec<&Value> = t
        .events
        .iter()
        .filter(|(reg, v)| {
            let s = time_of(v).timestamp();
            *reg == region && s >= start && s <= end
        })
        .map(|(_, v)| v)
        .collect();
    rows.sort_by_key(|v| {
        std::cmp::Reverse((time_of(v), v["eventID"].as_str().unwrap().to_string()))
    });
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(max)
        .map(|v| {
            serde_json::json!({
                "EventId": v["eventID"],
                "EventName": v["eventName"],
                "EventTime": time_of(v).timestamp(),
                "EventSource": v["eventSource"],
                "CloudTrailEvent": v.to_string(),
            })
        })
        .collect();
    let mut out = serde_json::json!({ "Events": page });
    if offset + max < rows.len() {
        out["NextToken"] = format!("o:{}", offset + max).into();
    }
    t.served.push((region, Instant::now(), 200));
    let mut reply = Reply::json(200, out);
    reply.headers = vec![("content-type", "application/x-amz-json-1.1".into())];
    reply
}

async fn start(trail: Arc<Mutex<Trail>>) -> Stub {
    Stub::start(move |r| handle(&trail, r)).await
}

/// A working folder: one rule flagging every CloudTrail event, a jsonl notifier and one
/// `aws_cloudtrail` source over both regions.
fn workdir(stub: &Stub) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/every_event.yml"),
        "title: Every CloudTrail event\nid: 0c0ffee0-0000-4000-8000-0000000000c7\nstatus: test\n\
         logsource: {product: aws, service: cloudtrail}\n\
         detection:\n  sel:\n    eventID|exists: true\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("picket.toml"),
        format!(
            r#"[detect.rules]
builtin = false
paths = ["rules"]

[aws]
region = "us-east-1"
endpoint_url = "{}"

[[sources]]
type = "aws_cloudtrail"
account_id = "123456789012"
regions = ["us-east-1", "eu-west-1"]
lookback_secs = 7200
request_timeout_secs = 1
interval_secs = 1

[[notify]]
type = "jsonl"
path = "findings.jsonl"
"#,
            stub.url
        ),
    )
    .unwrap();
    dir
}

async fn clients(stub: &Stub) -> Clients {
    let section = picket::config::AwsSection {
        region: Some("us-east-1".into()),
        endpoint_url: Some(stub.url.clone()),
        profile: None,
    };
    Clients {
        aws: Some(
            picket::cloud::aws::sdk_config(
                &section,
                Some(picket::cloud::aws::static_credentials("testing", "testing")),
            )
            .await,
        ),
        ..Clients::default()
    }
}

/// `picket run --once` in-process (a new runner each call: a restart from the state file)
/// until an interval passes without a failed source; returns the records processed.
async fn run_until_caught_up(dir: &Path, clients: &Clients) -> u64 {
    let config = Config::load(&dir.join("picket.toml")).unwrap();
    let state: Arc<dyn StateStore> = Arc::new(SqliteStore::open(dir.join("state.db")).unwrap());
    let router = Router::from_config(&config.raw.notify, clients, Some(&state)).unwrap();
    let pipeline =
        picket::app::pipeline(&config, &[], state.clone(), router, Arc::new(Clock::System))
            .unwrap();
    let sources: Vec<Box<dyn Source>> = config
        .raw
        .sources
        .iter()
        .map(|s| s.build(state.clone(), clients).unwrap())
        .collect();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut runner = Runner::new(pipeline, sources, rx).unwrap();
    let mut records = 0;
    for _ in 0..60 {
        let s = runner.run(RunOptions { once: true }).await.unwrap();
        records += s.records;
        if s.failed_sources.is_empty() {
            return records;
        }
    }
    let status = picket::run::statuses(state.as_ref()).unwrap();
    panic!("the source kept failing: {:?}", status[0].last_error);
}

/// The related event ids of every finding, with how often each appears.
fn finding_events(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string(dir.join("findings.jsonl")).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Value = serde_json::from_str(line).unwrap();
        for e in f["finding_info"]["related_events"].as_array().unwrap() {
            *out.entry(e["uid"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}

fn populate(t: &mut Trail, n: usize) {
    let templates = templates();
    let now = Utc::now();
    for i in 0..n {
        let time = now - chrono::Duration::seconds((i * 13 % 3000) as i64 + 30);
        t.events
            .push((REGIONS[i % 2].to_string(), event(&templates, i, time)));
    }
}

fn ids(t: &Trail) -> BTreeSet<String> {
    t.events
        .iter()
        .map(|(_, v)| v["eventID"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn faults_lose_nothing_double_nothing_and_two_requests_per_second_per_region() {
    let trail = Arc::new(Mutex::new(Trail {
        fault_rate: 0.3,
        ..Trail::default()
    }));
    populate(&mut trail.lock().unwrap(), 1500);
    let stub = start(trail.clone()).await;
    let dir = workdir(&stub);
    let clients = clients(&stub).await;
    let records = run_until_caught_up(dir.path(), &clients).await;
    let t = trail.lock().unwrap();
    let found = finding_events(dir.path());
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&t),
        "no event lost"
    );
    assert!(found.values().all(|&n| n == 1), "no finding twice");
    assert_eq!(records, 1500, "no event processed twice");
    let faults = t.served.iter().filter(|s| s.2 != 200).count();
    assert!(faults >= 5, "faults injected: {faults}");
    // At most 2 requests in any second per region: the 1st and 3rd of any three are a
    // second apart. These are the stub's arrival times, not the client's send times: on a
    // loaded 2-core machine one request can sit tens of milliseconds longer than the next
    // between the limiter and the socket, so 100 ms of slack.
    for region in REGIONS {
        let at: Vec<Instant> = stub
            .requests()
            .iter()
            .filter(|r| region_of(r) == region)
            .map(|r| r.at)
            .collect();
        assert!(at.len() > 8, "{region}: {} requests", at.len());
        for w in at.windows(3) {
            assert!(
                w[2] - w[0] >= Duration::from_millis(900),
                "{region}: 3 requests within {:?}",
                w[2] - w[0]
            );
        }
    }
}

#[tokio::test]
async fn late_events_inside_the_overlap_are_found_once_and_a_restart_resumes_from_the_cursor() {
    let trail = Arc::new(Mutex::new(Trail::default()));
    populate(&mut trail.lock().unwrap(), 120);
    let stub = start(trail.clone()).await;
    let dir = workdir(&stub);
    let clients = clients(&stub).await;
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 120);
    // A restart with nothing new reads the overlap again and processes nothing.
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 0);
    // CloudTrail delivers events minutes late: 30 events 10 minutes older than the newest
    // seen (inside the 15-minute overlap) appear, and 10 new ones.
    {
        let mut t = trail.lock().unwrap();
        let templates = templates();
        let newest = t.events.iter().map(|(_, v)| time_of(v)).max().unwrap();
        for i in 0..30 {
            let at = newest - chrono::Duration::minutes(10) + chrono::Duration::seconds(i);
            let e = event(&templates, 500_000 + i as usize, at);
            t.events.push((REGIONS[i as usize % 2].to_string(), e));
        }
        for i in 0..10 {
            let e = event(
                &templates,
                600_000 + i,
                Utc::now() - chrono::Duration::seconds(5),
            );
            t.events.push((REGIONS[i % 2].to_string(), e));
        }
    }
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 40);
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 0);
    let found = finding_events(dir.path());
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&trail.lock().unwrap())
    );
    assert!(found.values().all(|&n| n == 1), "no finding twice");
    // Every request was a proper LookupEvents with a time range.
    for r in stub.requests() {
        let b = r.json();
        assert!(
            b["StartTime"].is_number() && b["EndTime"].is_number(),
            "{b}"
        );
        assert_eq!(b["MaxResults"], 50);
    }
}
