//! The `google_reports` and `gcp_logging` sources against an in-process Google that follows
//! the documented contracts: IAM Credentials `signJwt` and the OAuth JWT-bearer token endpoint
//! (domain-wide delegation with `sub`), Reports `activities.list` (`startTime`, `maxResults`,
//! `nextPageToken`, newest first, `items` left out when empty) and Cloud Logging
//! `entries:list` (`filter` on `logName` and `timestamp`, `orderBy`, `pageSize`,
//! `nextPageToken`), serving the documentation's and CSA's example records (ids and times
//! rewritten). Faults: 429 with `Retry-After`, 500, answers slower than the client timeout.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use picket::cloud::Clients;
use picket::cloud::rate::RateLimiter;
use picket::cloud::token::{Api, DelegatedToken, GoogleApi, IamSignJwt, StaticToken};
use picket::config::Secret;
use serde_json::{Value, json};

use super::source_common::{finding_events, run_until_caught_up};
use crate::util::stub::{DELAY_HEADER, Reply, Request, Stub};

const SA: &str = "picket@proj-1.iam.gserviceaccount.com";
const PROJECT: &str = "proj-1";

#[derive(Default)]
struct Google {
    /// Reports activities by application.
    activities: Vec<Value>,
    /// Cloud Logging entries.
    entries: Vec<Value>,
    fault_rate: f64,
    rng: Option<fastrand::Rng>,
    /// Data requests: (arrival, status, Retry-After deadline).
    served: Vec<(Instant, u16, Option<Instant>)>,
    tokens_issued: usize,
}

fn fixture(path: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn activity(app: &str, i: usize, t: DateTime<Utc>) -> Value {
    let doc = fixture("tests/fixtures/google/hand-written/login-token-admin.json");
    let idx = match app {
        "login" => 0,
        "token" => 3,
        _ => 4,
    };
    let mut v = doc["items"][idx].clone();
    let prefix = match app {
        "login" => 1,
        "token" => 2,
        _ => 3,
    };
    v["id"]["uniqueQualifier"] = json!(format!("{prefix}{i:06}"));
    v["id"]["time"] = json!(t.to_rfc3339_opts(SecondsFormat::Millis, true));
    v
}

fn entry(i: usize, t: DateTime<Utc>) -> Value {
    let mut v = fixture("tests/fixtures/gcp/csa/google.cloud.audit.AuditLog.setIamPolicy.json");
    v["insertId"] = json!(format!("ins-{i:06}"));
    v["timestamp"] = json!(t.to_rfc3339_opts(SecondsFormat::Micros, true));
    v["logName"] = json!(format!(
        "projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"
    ));
    v
}

fn time(v: &Value) -> DateTime<Utc> {
    let s = v["timestamp"]
        .as_str()
        .or(v["id"]["time"].as_str())
        .unwrap();
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn handle(g: &Mutex<Google>, r: &Request) -> Reply {
    let mut g = g.lock().unwrap();
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", p) if p == format!("/v1/projects/-/serviceAccounts/{SA}:signJwt") => {
            assert_eq!(r.header("authorization"), Some("Bearer sa-token"));
            let claims: Value =
                serde_json::from_str(r.json()["payload"].as_str().unwrap()).unwrap();
            assert_eq!(claims["sub"], "admin@corp.example");
            assert!(
                claims["scope"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .any(|s| s == "https://www.googleapis.com/auth/admin.reports.audit.readonly")
            );
            return Reply::json(200, json!({"keyId": "k1", "signedJwt": "hdr.claims.sig"}));
        }
        ("POST", "/token") => {
            assert!(
                r.body
                    .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
            );
            assert!(r.body.contains("assertion=hdr.claims.sig"));
            g.tokens_issued += 1;
            return Reply::json(
                200,
                json!({"access_token": "ya29.admin", "expires_in": 3599, "token_type": "Bearer"}),
            );
        }
        _ => {}
    }
    let now = Instant::now();
    if g.fault_rate > 0.0 {
        let rate = g.fault_rate;
        let rng = g.rng.get_or_insert_with(|| fastrand::Rng::with_seed(11));
        if rng.f64() < rate {
            let kind = rng.u8(0..3);
            let (reply, deadline) = match kind {
                0 => (
                    Reply {
                        status: 429,
                        headers: vec![("retry-after", "1".into())],
                        body: json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})
                            .to_string(),
                    },
                    Some(now + Duration::from_secs(1)),
                ),
                1 => (
                    Reply::json(500, json!({"error": {"code": 500, "status": "INTERNAL"}})),
                    None,
                ),
                _ => (
                    Reply {
                        status: 200,
                        headers: vec![(DELAY_HEADER, "1500".into())],
                        body: "{}".into(),
                    },
                    None,
                ),
            };
            g.served.push((now, reply.status, deadline));
            return reply;
        }
    }
    g.served.push((now, 200, None));
    if let Some(app) = r
        .path
        .strip_prefix("/admin/reports/v1/activity/users/all/applications/")
    {
        assert_eq!(r.method, "GET");
        assert_eq!(r.header("authorization"), Some("Bearer ya29.admin"));
        let start = DateTime::parse_from_rfc3339(param(&r.query, "startTime").unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let max: usize = param(&r.query, "maxResults").unwrap().parse().unwrap();
        let offset: usize = param(&r.query, "pageToken").map_or(0, |t| {
            let (s, o) = t.split_once('/').unwrap();
            assert_eq!(
                s,
                param(&r.query, "startTime").unwrap(),
                "token of another query"
            );
            o.parse().unwrap()
        });
        let mut hits: Vec<&Value> = g
            .activities
            .iter()
            .filter(|a| a["id"]["applicationName"] == app && time(a) >= start)
            .collect();
        hits.sort_by_key(|a| std::cmp::Reverse(time(a)));
        let end = (offset + max).min(hits.len());
        let mut body = json!({"kind": "admin#reports#activities", "etag": "\"e\""});
        if end > offset {
            body["items"] = json!(hits[offset..end]);
        }
        if end < hits.len() {
            body["nextPageToken"] =
                json!(format!("{}/{end}", param(&r.query, "startTime").unwrap()));
        }
        return Reply::json(200, body);
    }
    if r.path == "/v2/entries:list" {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("authorization"), Some("Bearer sa-token"));
        let b = r.json();
        assert_eq!(b["resourceNames"], json!([format!("projects/{PROJECT}")]));
        assert_eq!(b["orderBy"], "timestamp asc");
        let filter = b["filter"].as_str().unwrap();
        assert!(filter.contains(&format!(
            "\"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity\""
        )));
        let from = filter
            .split("timestamp>=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        let from = DateTime::parse_from_rfc3339(from)
            .unwrap()
            .with_timezone(&Utc);
        let size = b["pageSize"].as_u64().unwrap() as usize;
        let offset: usize = b["pageToken"].as_str().map_or(0, |t| {
            let (f, o) = t.split_once('/').unwrap();
            assert_eq!(f, filter.len().to_string(), "token of another filter");
            o.parse().unwrap()
        });
        let mut hits: Vec<&Value> = g.entries.iter().filter(|e| time(e) >= from).collect();
        hits.sort_by_key(|e| time(e));
        let end = (offset + size).min(hits.len());
        let mut body = json!({"entries": hits[offset.min(end)..end]});
        if end < hits.len() {
            body["nextPageToken"] = json!(format!("{}/{end}", filter.len()));
        }
        return Reply::json(200, body);
    }
    Reply::json(404, json!({"error": {"code": 404}}))
}

fn clients(stub: &Stub, timeout: Duration, reports: RateLimiter, logging: RateLimiter) -> Clients {
    let http = picket::cloud::http::client(timeout).unwrap();
    let sa_tokens = Arc::new(StaticToken(Secret::new("sa-token")));
    let admin_tokens = Arc::new(DelegatedToken::new(
        http.clone(),
        Arc::new(IamSignJwt::new(
            http.clone(),
            sa_tokens.clone(),
            stub.url.clone(),
            SA.into(),
        )),
        "admin@corp.example".into(),
        vec![picket::source::google_reports::SCOPE.into()],
        format!("{}/token", stub.url),
    ));
    let api = |tokens: Arc<dyn picket::cloud::token::TokenProvider>| Api {
        http: http.clone(),
        base_url: stub.url.clone(),
        tokens,
    };
    let mut c = Clients {
        http: Some(http.clone()),
        google: Some(GoogleApi {
            admin: api(admin_tokens),
            iam: api(sa_tokens.clone()),
            logging: api(sa_tokens),
            subject: Some("admin@corp.example".into()),
        }),
        ..Clients::default()
    };
    c.rates.reports = reports;
    c.rates.logging = logging;
    c
}

fn workdir(source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    catch_all_rules(dir.path());
    std::fs::write(
        dir.path().join("picket.toml"),
        format!(
            "[detect.rules]\nbuiltin = false\npaths = [\"rules\"]\n\n[[sources]]\n{source}\n\n\
             [[notify]]\ntype = \"jsonl\"\npath = \"findings.jsonl\"\n"
        ),
    )
    .unwrap();
    dir
}

/// `dir/rules`: one rule matching every Workspace activity (a Workspace logsource covers
/// every Reports application) and one matching every Cloud Audit Logs entry.
pub(super) fn catch_all_rules(dir: &Path) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("every_activity.yml"),
        "title: Every activity\nid: 0c0ffee0-0000-4000-8000-000000000100\nstatus: test\n\
         logsource: {product: gcp, service: google_workspace.login}\n\
         detection:\n  sel:\n    id.uniqueQualifier|exists: true\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("every_entry.yml"),
        "title: Every audit entry\nid: 0c0ffee0-0000-4000-8000-000000000200\nstatus: test\n\
         logsource: {product: gcp, service: gcp.audit}\n\
         detection:\n  sel:\n    insertId|exists: true\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
}

fn fast() -> RateLimiter {
    RateLimiter::new(1000, Duration::from_secs(1))
}

fn assert_retry_after_kept(served: &[(Instant, u16, Option<Instant>)]) {
    for (i, (_, status, deadline)) in served.iter().enumerate() {
        if *status == 429
            && let Some((next, _, _)) = served.get(i + 1)
        {
            assert!(
                *next >= deadline.unwrap(),
                "request {} before Retry-After",
                i + 1
            );
        }
    }
}

#[tokio::test]
async fn reports_activities_are_read_once_through_faults_late_rows_and_restarts() {
    let g = Arc::new(Mutex::new(Google {
        fault_rate: 0.3,
        ..Google::default()
    }));
    let now = Utc::now();
    {
        let mut g = g.lock().unwrap();
        for (k, app) in ["login", "token", "admin"].iter().enumerate() {
            for i in 0..250 {
                let t = now - chrono::Duration::seconds((i * 13 % 7000) as i64 + 30 + k as i64);
                g.activities.push(activity(app, i, t));
            }
        }
    }
    let stub = Stub::start({
        let g = g.clone();
        move |r| handle(&g, r)
    })
    .await;
    let dir = workdir("type = \"google_reports\"\ninterval_secs = 1\npage_size = 100");
    let clients = clients(&stub, Duration::from_secs(1), fast(), fast());
    let mut records = run_until_caught_up(dir.path(), &clients).await;
    // Login events arriving late, inside the 2 h overlap, and one later than it.
    let newest_login = {
        let g = g.lock().unwrap();
        g.activities
            .iter()
            .filter(|a| a["id"]["applicationName"] == "login")
            .map(time)
            .max()
            .unwrap()
    };
    {
        let mut g = g.lock().unwrap();
        for i in 0..20 {
            let t = newest_login - chrono::Duration::minutes(90) + chrono::Duration::seconds(i);
            g.activities.push(activity("login", 500 + i as usize, t));
        }
        g.activities.push(activity(
            "login",
            999,
            newest_login - chrono::Duration::minutes(125),
        ));
    }
    // A new process on the same state resumes from the cursors.
    records += run_until_caught_up(dir.path(), &clients).await;
    let g = g.lock().unwrap();
    let found = finding_events(dir.path());
    let mut want: BTreeSet<String> = g
        .activities
        .iter()
        .map(|a| a["id"]["uniqueQualifier"].as_str().unwrap().to_string())
        .collect();
    assert!(
        want.remove("1000999"),
        "the row later than the overlap exists"
    );
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "nothing lost"
    );
    let twice: Vec<_> = found.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(twice.is_empty(), "no finding twice: {twice:?}");
    assert_eq!(records, 770, "no activity processed twice");
    assert!(g.served.iter().filter(|s| s.1 != 200).count() > 5);
    assert_retry_after_kept(&g.served);
    assert_eq!(g.tokens_issued, 1, "the delegated token is cached");
}

#[tokio::test]
async fn audit_log_entries_are_read_once_within_the_project_rate() {
    let g = Arc::new(Mutex::new(Google {
        fault_rate: 0.3,
        ..Google::default()
    }));
    let now = Utc::now();
    {
        let mut g = g.lock().unwrap();
        for i in 0..600 {
            g.entries.push(entry(
                i,
                now - chrono::Duration::seconds((i * 17 % 5000) as i64 + 5),
            ));
        }
    }
    let stub = Stub::start({
        let g = g.clone();
        move |r| handle(&g, r)
    })
    .await;
    let dir = workdir(&format!(
        "type = \"gcp_logging\"\nproject = \"{PROJECT}\"\ninterval_secs = 1\npage_size = 50"
    ));
    // 60 requests per minute per project, scaled to 6 per 600 ms for a short test; the window
    // is checked from the stub's arrival times.
    let window = Duration::from_millis(600);
    let clients = clients(
        &stub,
        Duration::from_secs(1),
        fast(),
        RateLimiter::new(6, window),
    );
    let mut records = run_until_caught_up(dir.path(), &clients).await;
    {
        let mut g = g.lock().unwrap();
        let newest = g.entries.iter().map(time).max().unwrap();
        for i in 0..10 {
            g.entries
                .push(entry(700 + i, newest - chrono::Duration::minutes(5)));
        }
    }
    records += run_until_caught_up(dir.path(), &clients).await;
    let g = g.lock().unwrap();
    let found = finding_events(dir.path());
    let want: BTreeSet<String> = g
        .entries
        .iter()
        .map(|e| e["insertId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(found.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(found.values().all(|&n| n == 1));
    assert_eq!(records, 610);
    assert_retry_after_kept(&g.served);
    let times: Vec<Instant> = stub
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/entries:list")
        .map(|r| r.at)
        .collect();
    // Arrival times, not send times: 50 ms of slack for scheduling on a loaded machine.
    let slack = Duration::from_millis(50);
    for (i, t) in times.iter().enumerate() {
        let n = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) + slack < window)
            .count();
        assert!(n <= 6, "{n} requests within one window");
    }
}

/// Figures, not a test: events/s of `google_reports` (3 x 5,000 activities) and `gcp_logging`
/// (10,000 entries) against the stub, pages of 1000, no rate limit. Run: `cargo test --release
/// --all-features --test tests google_sources::figures -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figures() {
    let g = Arc::new(Mutex::new(Google::default()));
    let now = Utc::now();
    {
        let mut g = g.lock().unwrap();
        for app in ["login", "token", "admin"] {
            for i in 0..5000 {
                let t = now - chrono::Duration::seconds((i * 13 % 7000) as i64 + 30);
                g.activities.push(activity(app, i, t));
            }
        }
        for i in 0..10_000 {
            g.entries.push(entry(
                i,
                now - chrono::Duration::seconds((i * 17 % 5000) as i64 + 5),
            ));
        }
    }
    let stub = Stub::start({
        let g = g.clone();
        move |r| handle(&g, r)
    })
    .await;
    let clients = clients(&stub, Duration::from_secs(10), fast(), fast());
    for (name, source) in [
        (
            "google_reports",
            "type = \"google_reports\"\npage_size = 1000".to_string(),
        ),
        (
            "gcp_logging",
            format!("type = \"gcp_logging\"\nproject = \"{PROJECT}\"\npage_size = 1000"),
        ),
    ] {
        let dir = workdir(&source);
        let started = Instant::now();
        let records = run_until_caught_up(dir.path(), &clients).await;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name}: {records} rows in {secs:.2} s = {:.0} events/s (poll, normalize, detect, jsonl)",
            records as f64 / secs
        );
    }
}
