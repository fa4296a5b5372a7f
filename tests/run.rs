//! `picket run` and `picket status` as a user runs them: the real (debug) binary over a folder
//! of JSON Lines, SQLite state and the `jsonl` notifier. The corpus is generated from the demo
//! story in `examples/demo/` (every record copied with a unique event id and time, users
//! rotated), so it produces many findings of Sigma rules and the OAuth consent detector.
//!
//! The crash test kills `picket run --once` with SIGKILL 20 times at moments drawn from a seeded
//! RNG, restarting it on the same state each time, and checks that every event was processed
//! and every finding of an uninterrupted run appears exactly once in the JSONL output.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use picket::source::CURSOR_NS;
use picket::source::files::Cursor;
use picket::state::{SqliteStore, StateStore};
use serde_json::Value;

fn picket(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_picket"));
    c.args(args).current_dir(dir).env("PICKET_LOG", "warn");
    c
}

fn run_once(dir: &Path) -> Output {
    let out = picket(dir, &["run", "--config", "picket.toml", "--once"])
        .output()
        .expect("run picket");
    assert!(
        out.status.success(),
        "picket run --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A working folder with `picket.toml` (SQLite state, jsonl notifier, one `files` source on
/// `in/`).
fn workdir() -> tempfile::TempDir {
    workdir_with_batches(4096)
}

/// [`workdir`] with `batch_size` lines per batch.
fn workdir_with_batches(batch_size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/geoip");
    std::fs::create_dir(dir.path().join("in")).unwrap();
    std::fs::write(
        dir.path().join("picket.toml"),
        format!(
            r#"[state]
backend = "sqlite"
path = "state.db"

[geoip]
city = "{}"
asn = "{}"

[[sources]]
type = "files"
path = "in"
interval_secs = 1
batch_size = {batch_size}

[[notify]]
type = "jsonl"
path = "findings.jsonl"
"#,
            assets.join("GeoLite2-City-Test.mmdb").display(),
            assets.join("GeoLite2-ASN-Test.mmdb").display(),
        ),
    )
    .unwrap();
    dir
}

/// The demo story's records.
fn templates() -> Vec<Value> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let mut out = Vec::new();
    for name in [
        "cloudtrail.json",
        "entra-signins.json",
        "entra-audits.json",
        "google-reports.json",
    ] {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(demo.join(name)).unwrap()).unwrap();
        for key in ["Records", "value", "items"] {
            if let Some(Value::Array(items)) = doc.get(key) {
                out.extend(items.iter().cloned());
            }
        }
    }
    assert_eq!(out.len(), 17);
    out
}

/// The JSON pointers of a record's event id and time.
fn id_and_time(v: &Value) -> (&'static str, &'static str) {
    if v.get("eventID").is_some() {
        ("/eventID", "/eventTime")
    } else if v.get("createdDateTime").is_some() {
        ("/id", "/createdDateTime")
    } else if v.get("activityDateTime").is_some() {
        ("/id", "/activityDateTime")
    } else {
        ("/id/uniqueQualifier", "/id/time")
    }
}

/// Copy `k` of the story: its own event ids, shifted three hours per copy, users rotated
/// over 50 variants.
fn copy(t: &Value, k: usize) -> Value {
    let text = t
        .to_string()
        .replace("@corp.example", &format!("-u{}@corp.example", k % 50));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let (id, time) = id_and_time(t);
    let old_id = v.pointer(id).and_then(Value::as_str).unwrap().to_string();
    *v.pointer_mut(id).unwrap() = Value::String(format!("{old_id}-{k}"));
    let old_time: DateTime<Utc> = v
        .pointer(time)
        .and_then(Value::as_str)
        .unwrap()
        .parse()
        .unwrap();
    let new_time = old_time + chrono::Duration::hours(3 * k as i64);
    *v.pointer_mut(time).unwrap() =
        Value::String(new_time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    v
}

/// Writes `copies` copies of the story into `files` JSON Lines files under `dir`; returns the
/// number of records.
fn write_corpus(dir: &Path, copies: usize, files: usize) -> usize {
    let templates = templates();
    let mut outs: Vec<_> = (0..files)
        .map(|i| {
            std::io::BufWriter::new(
                std::fs::File::create(dir.join(format!("part-{i}.jsonl"))).unwrap(),
            )
        })
        .collect();
    let mut ids = BTreeSet::new();
    for k in 0..copies {
        let out = &mut outs[k % files];
        for t in &templates {
            let v = copy(t, k);
            let (id, _) = id_and_time(&v);
            assert!(ids.insert(v.pointer(id).unwrap().to_string()));
            writeln!(out, "{v}").unwrap();
        }
    }
    for mut o in outs {
        o.flush().unwrap();
    }
    copies * templates.len()
}

/// The finding uids in a JSONL output, in order.
fn finding_uids(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["finding_info"]["uid"].as_str().unwrap().to_string()
        })
        .collect()
}

fn status_of(dir: &Path) -> Vec<picket::run::SourceStatus> {
    let store = SqliteStore::open(dir.join("state.db")).unwrap();
    picket::run::statuses(&store).unwrap()
}

fn assert_exactly_once(uids: &[String], expected: &BTreeSet<String>) {
    let mut seen = HashMap::new();
    for u in uids {
        *seen.entry(u.as_str()).or_insert(0) += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "findings written twice: {doubled:?}");
    let got: BTreeSet<String> = uids.iter().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
}

#[test]
fn once_over_a_folder_processes_every_record_once_and_a_second_run_emits_nothing() {
    let dir = workdir();
    let records = write_corpus(&dir.path().join("in"), 40, 3);
    run_once(dir.path());
    let first = finding_uids(&dir.path().join("findings.jsonl"));
    assert!(first.len() >= 40, "{} findings", first.len());
    let st = status_of(dir.path());
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].events_total, records as u64);
    run_once(dir.path());
    assert_eq!(finding_uids(&dir.path().join("findings.jsonl")), first);
    assert_eq!(status_of(dir.path())[0].events_total, records as u64);
}

#[test]
fn a_file_appended_to_between_runs_has_only_its_new_records_processed() {
    let dir = workdir();
    let templates = templates();
    let path = dir.path().join("in/live.jsonl");
    let write = |range: std::ops::Range<usize>| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        for k in range {
            for t in &templates {
                writeln!(f, "{}", copy(t, k)).unwrap();
            }
        }
    };
    write(0..5);
    run_once(dir.path());
    let before = finding_uids(&dir.path().join("findings.jsonl"));
    assert_eq!(status_of(dir.path())[0].events_total, 5 * 17);
    write(5..8);
    run_once(dir.path());
    let after = finding_uids(&dir.path().join("findings.jsonl"));
    assert_eq!(status_of(dir.path())[0].events_total, 8 * 17);
    assert_eq!(&after[..before.len()], &before[..]);
    let per_copy = before.len() / 5;
    assert!(per_copy > 0);
    assert_eq!(
        after.len(),
        8 * per_copy,
        "only the three new copies' findings"
    );
}

/// Runs `picket run --once` to the end in a fresh folder over the same corpus: the reference
/// findings, the number of records, how long the run took, and how long a run with nothing
/// left to do takes (start-up).
fn reference(
    copies: usize,
    files: usize,
    batch_size: usize,
) -> (BTreeSet<String>, usize, Duration, Duration) {
    let dir = workdir_with_batches(batch_size);
    let records = write_corpus(&dir.path().join("in"), copies, files);
    let started = Instant::now();
    run_once(dir.path());
    let elapsed = started.elapsed();
    let uids = finding_uids(&dir.path().join("findings.jsonl"));
    let set: BTreeSet<String> = uids.iter().cloned().collect();
    assert_eq!(
        set.len(),
        uids.len(),
        "the reference run wrote a finding twice"
    );
    let started = Instant::now();
    run_once(dir.path());
    let startup = started.elapsed();
    (set, records, elapsed, startup)
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    const COPIES: usize = 3000; // 51,000 events
    const FILES: usize = 4;
    // Small batches, so that kills land in every phase of many batches.
    const BATCH: usize = 500;
    let (expected, records, full, startup) = reference(COPIES, FILES, BATCH);
    assert!(records >= 50_000);
    assert!(expected.len() >= 5_000, "{} findings", expected.len());

    let dir = workdir_with_batches(BATCH);
    write_corpus(&dir.path().join("in"), COPIES, FILES);
    let mut rng = fastrand::Rng::with_seed(0x5eed_0005);
    // Each kill lands after the start-up, up to three fortieths of an uninterrupted run's
    // processing later: twenty kills hit running processes and spread over about three
    // quarters of the corpus, each somewhere inside a batch.
    let startup = startup.as_millis() as u64;
    let work = (full.as_millis() as u64).saturating_sub(startup).max(50);
    // The machine's load changes between the reference run and the kills: a run that ended
    // before its kill halves the later draws, and spawning goes on until twenty kills hit
    // running processes (or forty spawns), so a faster moment cannot use up the corpus early.
    let mut killed_mid_run = 0;
    let mut span = work * 3 / 40;
    for _ in 0..40 {
        if killed_mid_run == 20 {
            break;
        }
        let after = Duration::from_millis(startup + rng.u64(0..=span));
        let mut child: Child = picket(dir.path(), &["run", "--config", "picket.toml", "--once"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        } else {
            span /= 2;
        }
        child.wait().unwrap();
    }
    assert!(
        killed_mid_run >= 15,
        "only {killed_mid_run} kills hit a running process"
    );
    run_once(dir.path());
    let uids = finding_uids(&dir.path().join("findings.jsonl"));
    assert_exactly_once(&uids, &expected);
    let st = status_of(dir.path());
    assert_eq!(
        st[0].events_total, records as u64,
        "every event processed once"
    );
    // Nothing is left pending.
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let pending = store
        .list(picket::pipeline::PENDING_NS, "", 10, Utc::now())
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

/// Lines (ending in a newline) of a file before byte `offset`, not counting blank ones.
fn lines_before(path: &Path, offset: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let head = &bytes[..offset as usize];
    assert!(
        head.is_empty() || head.ends_with(b"\n"),
        "cursor is not at a line boundary"
    );
    head.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64
}

#[test]
fn sigterm_finishes_the_batch_commits_the_cursor_and_exits_zero() {
    let dir = workdir();
    let records = write_corpus(&dir.path().join("in"), 1500, 2);
    let findings = dir.path().join("findings.jsonl");
    let mut child = picket(dir.path(), &["run", "--config", "picket.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is processing (the first findings are out), then ask it to stop.
    while finding_uids(&findings).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "picket run ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The committed cursors and the processed-event count agree exactly.
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let cursors = store.list(CURSOR_NS, "files:", 100, Utc::now()).unwrap();
    assert!(!cursors.is_empty(), "no cursor committed");
    let mut read = 0;
    for (key, v) in &cursors {
        let c: Cursor = serde_json::from_slice(&v.value).unwrap();
        let path = PathBuf::from(key.strip_prefix("files:").unwrap());
        assert!(path.is_absolute(), "{key}");
        read += lines_before(&path, c.offset);
    }
    assert!(read > 0);
    assert_eq!(status_of(dir.path())[0].events_total, read);
    // A later run reads the rest; nothing is doubled.
    run_once(dir.path());
    assert_eq!(status_of(dir.path())[0].events_total, records as u64);
    let uids = finding_uids(&findings);
    let set: BTreeSet<_> = uids.iter().cloned().collect();
    assert_eq!(set.len(), uids.len());
}

#[test]
fn status_shows_the_source_with_its_lag() {
    let dir = workdir();
    write_corpus(&dir.path().join("in"), 3, 1);
    run_once(dir.path());
    let out = picket(dir.path(), &["status", "--config", "picket.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("SOURCE"), "{text}");
    assert!(header.contains("LAG"), "{text}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(
        row[0].starts_with("files:") && row[0].ends_with("in"),
        "{text}"
    );
    assert_eq!(row[1], "ok", "{text}");
    // The newest event is the last copy's last record; the lag is now minus that.
    let newest: DateTime<Utc> = row[3].parse().unwrap();
    assert_eq!(newest.to_rfc3339(), "2026-11-20T15:20:03+00:00");
    assert!(row[2].ends_with('h') || row[2].ends_with('d'), "{text}");
    assert_eq!(row[4], "51", "{text}");
}
