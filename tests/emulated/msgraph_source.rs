//! The `msgraph` source against an in-process Microsoft Graph that follows the documented
//! contracts: the Entra v2.0 token endpoint (client credentials), `GET /auditLogs/signIns` and
//! `/auditLogs/directoryAudits` with `$filter=<time> ge <t>`, `$top` and `@odata.nextLink`
//! (`$skiptoken`), newest rows first, answering with the documentation's example rows (ids and
//! times rewritten). Faults: 429 with `Retry-After`, 500, and answers slower than the client
//! timeout. Findings come from a catch-all Sigma rule (one per row) into the `jsonl` notifier.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use picket::cloud::Clients;
use picket::cloud::rate::RateLimiter;
use picket::config::Secret;
use picket::state::{SqliteStore, StateStore};
use serde_json::{Value, json};

use super::source_common::{finding_events, run_until_caught_up, sources};
use crate::util::stub::{DELAY_HEADER, Reply, Request, Stub};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const FIXTURES: &str = "tests/fixtures/entra/msgraph-docs";

/// The Graph tenant's tables and what the stub did.
#[derive(Default)]
pub struct Graph {
    pub sign_ins: Vec<Value>,
    pub audits: Vec<Value>,
    /// Share of data answers turned into faults (0.0..1.0), drawn from a seeded generator.
    pub fault_rate: f64,
    rng: Option<fastrand::Rng>,
    /// Data requests: (arrival, status answered, Retry-After deadline it set).
    pub served: Vec<(Instant, u16, Option<Instant>)>,
    pub tokens_issued: usize,
}

fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(name);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["value"][0].clone()
}

/// Sign-in `i` at `t`: the documentation's example with its own id and time.
pub fn sign_in(i: usize, t: DateTime<Utc>) -> Value {
    let mut v = example("signIns-list.v1.0.example1.json");
    v["id"] = json!(format!("si-{i:06}"));
    v["createdDateTime"] = json!(t.to_rfc3339_opts(SecondsFormat::Micros, true));
    v["userPrincipalName"] = json!(format!("user{}@contoso.com", i % 40));
    v
}

/// Directory audit `i` at `t`.
pub fn audit(i: usize, t: DateTime<Utc>) -> Value {
    let mut v = example("directoryAudits-list.v1.0.example1.add-member-to-group.json");
    v["id"] = json!(format!("da-{i:06}"));
    v["activityDateTime"] = json!(t.to_rfc3339_opts(SecondsFormat::Micros, true));
    v
}

fn time_of(v: &Value) -> DateTime<Utc> {
    let s = v["createdDateTime"]
        .as_str()
        .or(v["activityDateTime"].as_str())
        .unwrap();
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Answers one request as Graph would.
pub fn handle(g: &Mutex<Graph>, base: &str, r: &Request) -> Reply {
    let mut g = g.lock().unwrap();
    if r.method == "POST" && r.path == format!("/{TENANT}/oauth2/v2.0/token") {
        assert!(
            r.body.contains("grant_type=client_credentials"),
            "{}",
            r.body
        );
        assert!(r.body.contains("client_id=app-1"), "{}", r.body);
        assert!(r.body.contains("client_secret=s3cret"), "{}", r.body);
        assert!(
            r.body
                .contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
            "{}",
            r.body
        );
        g.tokens_issued += 1;
        return Reply::json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "eyJ0.graph.token"}),
        );
    }
    assert_eq!(r.header("authorization"), Some("Bearer eyJ0.graph.token"));
    let now = Instant::now();
    if g.fault_rate > 0.0 {
        let rate = g.fault_rate;
        let rng = g.rng.get_or_insert_with(|| fastrand::Rng::with_seed(7));
        if rng.f64() < rate {
            let kind = rng.u8(0..3);
            let reply = match kind {
                0 => {
                    let deadline = now + Duration::from_secs(1);
                    g.served.push((now, 429, Some(deadline)));
                    return Reply {
                        status: 429,
                        headers: vec![("retry-after", "1".into())],
                        body: json!({"error": {"code": "TooManyRequests", "message": "Too many requests"}}).to_string(),
                    };
                }
                1 => Reply::json(503, json!({"error": {"code": "ServiceUnavailable"}})),
                _ => Reply {
                    status: 200,
                    headers: vec![(DELAY_HEADER, "1500".into())],
                    body: json!({"value": []}).to_string(),
                },
            };
            g.served.push((now, reply.status, None));
            return reply;
        }
    }
    g.served.push((now, 200, None));
    let (rows, field, path) = match r.path.as_str() {
        "/v1.0/auditLogs/signIns" => (&g.sign_ins, "createdDateTime", "signIns"),
        "/v1.0/auditLogs/directoryAudits" => (&g.audits, "activityDateTime", "directoryAudits"),
        _ => return Reply::json(404, json!({"error": {"code": "Request_ResourceNotFound"}})),
    };
    // $skiptoken=<from>~<offset> (opaque to the client), else $filter and $top.
    let (from, offset, top) = match param(&r.query, "$skiptoken") {
        Some(tok) => {
            let (from, rest) = tok.split_once('~').unwrap();
            let (offset, top) = rest.split_once('~').unwrap();
            (
                DateTime::parse_from_rfc3339(from)
                    .unwrap()
                    .with_timezone(&Utc),
                offset.parse::<usize>().unwrap(),
                top.parse::<usize>().unwrap(),
            )
        }
        None => {
            let filter = param(&r.query, "$filter").expect("$filter");
            let t = filter
                .strip_prefix(&format!("{field} ge "))
                .unwrap_or_else(|| panic!("filter on {field}: {filter}"));
            let top: usize = param(&r.query, "$top").unwrap().parse().unwrap();
            assert!((1..=1000).contains(&top));
            (
                DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
                0,
                top,
            )
        }
    };
    let mut hits: Vec<&Value> = rows.iter().filter(|v| time_of(v) >= from).collect();
    hits.sort_by_key(|v| std::cmp::Reverse(time_of(v)));
    let end = (offset + top).min(hits.len());
    let mut body = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#auditLogs/{path}"),
        "value": hits[offset.min(end)..end],
    });
    if end < hits.len() {
        body["@odata.nextLink"] = json!(format!(
            "{base}/v1.0/auditLogs/{path}?$top={top}&$skiptoken={}~{end}~{top}",
            from.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    Reply::json(200, body)
}

/// A stub Graph over `g`.
pub async fn start(g: Arc<Mutex<Graph>>) -> Stub {
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let stub = Stub::start(move |r| {
        let base = b.lock().unwrap().clone();
        handle(&g, &base, r)
    })
    .await;
    *base.lock().unwrap() = stub.url.clone();
    stub
}

/// The catch-all rules: one finding per sign-in and per audit row.
fn rules(dir: &Path) {
    std::fs::write(
        dir.join("every_signin.yml"),
        "title: Every sign-in\nid: 0c0ffee0-0000-4000-8000-000000000001\nstatus: test\n\
         logsource: {product: azure, service: signinlogs}\n\
         detection:\n  sel:\n    id|exists: true\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("every_audit.yml"),
        "title: Every directory audit\nid: 0c0ffee0-0000-4000-8000-000000000002\nstatus: test\n\
         logsource: {product: azure, service: auditlogs}\n\
         detection:\n  sel:\n    id|exists: true\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
}

/// A working folder: picket.toml with the rules, a jsonl notifier and one msgraph source.
pub fn workdir(extra_source_keys: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    rules(&dir.path().join("rules"));
    std::fs::write(
        dir.path().join("picket.toml"),
        format!(
            r#"[detect.rules]
builtin = false
paths = ["rules"]

[azure]
tenant_id = "{TENANT}"
client_id = "app-1"

[[sources]]
type = "msgraph"
interval_secs = 1
{extra_source_keys}

[[notify]]
type = "jsonl"
path = "findings.jsonl"
"#
        ),
    )
    .unwrap();
    dir
}

/// Clients for the stub: a short client timeout, the app's secret, Graph and the authority
/// on the stub, and `rate` for Graph.
pub fn clients(stub: &Stub, timeout: Duration, rate: RateLimiter) -> Clients {
    let http = picket::cloud::http::client(timeout).unwrap();
    let entra = picket::cloud::azure::Entra::new(
        http.clone(),
        "app-1".into(),
        picket::cloud::azure::Credential::Secret(Secret::new("s3cret")),
        Some(TENANT.into()),
        Some(stub.url.clone()),
        Some(stub.url.clone()),
    );
    let mut clients = Clients {
        http: Some(http),
        entra: Some(Arc::new(entra)),
        ..Clients::default()
    };
    clients.rates.graph = rate;
    clients
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn populate(g: &mut Graph, n_sign_ins: usize, n_audits: usize) {
    let now = Utc::now();
    for i in 0..n_sign_ins {
        g.sign_ins.push(sign_in(
            i,
            now - chrono::Duration::seconds((i * 7 % 3000) as i64 + 60),
        ));
    }
    for i in 0..n_audits {
        g.audits.push(audit(
            i,
            now - chrono::Duration::seconds((i * 11 % 3000) as i64 + 60),
        ));
    }
}

fn fast() -> RateLimiter {
    RateLimiter::new(1000, Duration::from_secs(1))
}

#[tokio::test]
async fn every_row_is_read_once_through_filter_top_and_next_links() {
    let g = Arc::new(Mutex::new(Graph::default()));
    populate(&mut g.lock().unwrap(), 2300, 250);
    let stub = start(g.clone()).await;
    let dir = workdir("page_size = 1000");
    let clients = clients(&stub, Duration::from_secs(5), fast());
    let records = run_until_caught_up(dir.path(), &clients).await;
    let g = g.lock().unwrap();
    let mut want = ids(&g.sign_ins);
    want.extend(ids(&g.audits));
    let found = finding_events(dir.path());
    assert_eq!(found.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(found.values().all(|&n| n == 1));
    assert_eq!(records, 2550, "each row processed exactly once");
    assert_eq!(g.tokens_issued, 1, "the token is cached");
    let reqs = stub.requests();
    let data: Vec<_> = reqs.iter().filter(|r| r.method == "GET").collect();
    assert!(
        data.iter()
            .any(|r| r.query.contains("$skiptoken=") && r.path.ends_with("/signIns")),
        "next links followed"
    );
    assert!(
        data.iter()
            .all(|r| !r.query.contains("$top=") || r.query.contains("$top=1000"))
    );
}

#[tokio::test]
async fn faults_lose_nothing_double_nothing_and_respect_retry_after() {
    let g = Arc::new(Mutex::new(Graph {
        fault_rate: 0.3,
        ..Graph::default()
    }));
    populate(&mut g.lock().unwrap(), 1200, 300);
    let stub = start(g.clone()).await;
    let dir = workdir("page_size = 100");
    // Client timeout 1 s; the stub's slow answers take 1.5 s.
    let clients = clients(&stub, Duration::from_secs(1), fast());
    let records = run_until_caught_up(dir.path(), &clients).await;
    // Late rows inside the overlap (15 min before the newest) appear while faults go on.
    {
        let mut g = g.lock().unwrap();
        let newest = g.sign_ins.iter().map(time_of).max().unwrap();
        for i in 0..30 {
            let t = newest - chrono::Duration::minutes(10) + chrono::Duration::seconds(i);
            g.sign_ins.push(sign_in(900_000 + i as usize, t));
        }
    }
    let records = records + run_until_caught_up(dir.path(), &clients).await;
    let g = g.lock().unwrap();
    let mut want = ids(&g.sign_ins);
    want.extend(ids(&g.audits));
    let found = finding_events(dir.path());
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "no event lost"
    );
    assert!(found.values().all(|&n| n == 1), "no finding twice");
    assert_eq!(records, 1530, "no row processed twice");
    let faults = g.served.iter().filter(|s| s.1 != 200).count();
    assert!(faults > 10, "faults injected: {faults}");
    // No data request before the Retry-After deadline of a 429.
    for (i, (_, status, deadline)) in g.served.iter().enumerate() {
        if *status == 429 {
            let deadline = deadline.unwrap();
            if let Some((next, _, _)) = g.served.get(i + 1) {
                assert!(
                    *next >= deadline,
                    "request {} came before Retry-After",
                    i + 1
                );
            }
        }
    }
}

#[tokio::test]
async fn late_rows_inside_the_overlap_are_found_once_and_a_restart_resumes_from_the_cursor() {
    let g = Arc::new(Mutex::new(Graph::default()));
    populate(&mut g.lock().unwrap(), 50, 5);
    let stub = start(g.clone()).await;
    let dir = workdir("page_size = 20");
    let clients = clients(&stub, Duration::from_secs(5), fast());
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 55);
    let newest = g
        .lock()
        .unwrap()
        .sign_ins
        .iter()
        .map(time_of)
        .max()
        .unwrap();
    {
        let mut g = g.lock().unwrap();
        // Inside the 15 min overlap, newer than nothing: found once.
        g.sign_ins
            .push(sign_in(1000, newest - chrono::Duration::minutes(14)));
        // Late by more than the overlap: the documented limit, not found.
        g.sign_ins
            .push(sign_in(1001, newest - chrono::Duration::minutes(16)));
    }
    let before = stub.requests().len();
    // A new process (runner, sources, state handle) on the same state file.
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 1);
    let first = stub.requests()[before..]
        .iter()
        .find(|r| r.path.ends_with("/signIns"))
        .unwrap()
        .clone();
    let from = (newest - chrono::Duration::minutes(15)).to_rfc3339_opts(SecondsFormat::Secs, true);
    assert!(
        first.query.contains(&format!("createdDateTime ge {from}")),
        "resumed from the cursor (newest - overlap): {}",
        first.query
    );
    let found = finding_events(dir.path());
    assert_eq!(found.get("si-001000"), Some(&1));
    assert_eq!(found.get("si-001001"), None);
    assert_eq!(found.len(), 56);
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 0);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_query_continues_at_the_stored_next_link() {
    let g = Arc::new(Mutex::new(Graph::default()));
    populate(&mut g.lock().unwrap(), 30, 0);
    let stub = start(g.clone()).await;
    let dir = workdir("page_size = 10\nendpoints = [\"signIns\"]");
    let clients = clients(&stub, Duration::from_secs(5), fast());
    let state: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
    let mut s = sources(dir.path(), &clients, &state).remove(0);
    let batch = s.poll().await.unwrap();
    assert_eq!(batch.records.len(), 10);
    for w in batch.token.staged() {
        state.put(w.ns, &w.key, &w.value, None, Utc::now()).unwrap();
    }
    s.commit(batch.token).await.unwrap();
    drop(s);
    let mut s = sources(dir.path(), &clients, &state).remove(0);
    let batch = s.poll().await.unwrap();
    let last = stub.requests().last().unwrap().clone();
    assert!(
        last.query.contains("$skiptoken=") && last.query.contains("~10~10"),
        "{}",
        last.query
    );
    assert_eq!(batch.records.len(), 10);
}

#[tokio::test]
async fn two_sources_of_one_tenant_share_five_requests_per_window() {
    let g = Arc::new(Mutex::new(Graph::default()));
    populate(&mut g.lock().unwrap(), 60, 60);
    let stub = start(g.clone()).await;
    // Two entries for the same tenant (one per endpoint), page size 10: 14 requests or so.
    let dir = workdir(
        "page_size = 10\nendpoints = [\"signIns\"]\n\n[[sources]]\ntype = \"msgraph\"\ninterval_secs = 1\npage_size = 10\nendpoints = [\"directoryAudits\"]",
    );
    // The Graph quota is 5 per 10 s; the same limiter scaled to 5 per 400 ms keeps the test
    // short. The window is checked from the stub's arrival times.
    let window = Duration::from_millis(400);
    let clients = clients(&stub, Duration::from_secs(5), RateLimiter::new(5, window));
    assert_eq!(run_until_caught_up(dir.path(), &clients).await, 120);
    let times: Vec<Instant> = stub
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.at)
        .collect();
    assert!(times.len() >= 14, "{}", times.len());
    // Arrival times, not send times: on a loaded machine one request can sit longer than the
    // next between the limiter and the socket, so 50 ms of slack (a missing or broken limiter
    // still sends far more than 5 within the 350 ms left).
    let slack = Duration::from_millis(50);
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) + slack < window)
            .count();
        assert!(in_window <= 5, "{in_window} requests within one window");
    }
}

/// Figures, not a test: events/s of `msgraph` against the stub (20,000 sign-ins and 2,000
/// audits, pages of 1000, no rate limit), and the time from a sign-in appearing in the stub to
/// its finding in the jsonl file with `picket run` polling every second under the real Graph
/// limit (5 per 10 s). Run: `cargo test --release --all-features --test tests
/// msgraph_source::figures -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures: run with --ignored --nocapture"]
async fn figures() {
    use picket::alert::Router;
    use picket::clock::Clock;
    use picket::config::Config;
    use picket::run::{RunOptions, Runner};
    use picket::state::{SqliteStore, StateStore};

    let g = Arc::new(Mutex::new(Graph::default()));
    populate(&mut g.lock().unwrap(), 20_000, 2_000);
    let stub = start(g.clone()).await;
    let dir = workdir("page_size = 1000");
    let fast_clients = clients(&stub, Duration::from_secs(10), fast());
    let started = Instant::now();
    let records = run_until_caught_up(dir.path(), &fast_clients).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "msgraph: {records} rows in {secs:.2} s = {:.0} events/s (poll, normalize, detect, jsonl; {} requests)",
        records as f64 / secs,
        stub.requests().len()
    );

    // Latency: a fresh folder, the real Graph limit, polling every second.
    let g = Arc::new(Mutex::new(Graph::default()));
    populate(&mut g.lock().unwrap(), 100, 0);
    let stub = start(g.clone()).await;
    let dir = workdir("page_size = 1000\nendpoints = [\"signIns\"]");
    let clients = clients(
        &stub,
        Duration::from_secs(10),
        picket::cloud::Clients::default().rates.graph,
    );
    run_until_caught_up(dir.path(), &clients).await;
    let config = Config::load(&dir.path().join("picket.toml")).unwrap();
    let state: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
    let router = Router::from_config(&config.raw.notify, &clients, Some(&state)).unwrap();
    let pipeline =
        picket::app::pipeline(&config, &[], state.clone(), router, Arc::new(Clock::System))
            .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let sources = super::source_common::sources(dir.path(), &clients, &state);
    let mut runner = Runner::new(pipeline, sources, rx).unwrap();
    let driver = async {
        let mut lat = Vec::new();
        for k in 0..8 {
            tokio::time::sleep(Duration::from_millis(1300)).await;
            let id = format!("si-{:06}", 500_000 + k);
            let t0 = Instant::now();
            g.lock().unwrap().sign_ins.push(sign_in(
                500_000 + k,
                Utc::now() - chrono::Duration::seconds(5),
            ));
            while !finding_events(dir.path()).contains_key(&id) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            lat.push(t0.elapsed().as_secs_f64());
        }
        tx.send(true).unwrap();
        lat
    };
    let (_, mut lat) = tokio::join!(runner.run(RunOptions { once: false }), driver);
    lat.sort_by(f64::total_cmp);
    println!(
        "msgraph row -> finding: median {:.2} s, max {:.2} s over {} rows (interval_secs = 1, 5 requests / 10 s)",
        lat[lat.len() / 2],
        lat[lat.len() - 1],
        lat.len()
    );
}
