//! The `picket` binary as a user runs it: demo, replay, validate, rules.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn picket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picket"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run picket")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/cli")
        .join(name);
    if std::env::var_os("PICKET_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PICKET_BLESS=1 to create)", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} changed (PICKET_BLESS=1 to accept)",
        path.display()
    );
}

#[test]
fn demo_ends_with_the_account_takeover_incident() {
    let o = picket(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("[CRITICAL] Account takeover: alice@corp.example"),
        "{text}"
    );
    assert!(text.contains("detector: impossible-travel"), "{text}");
    // The planned containment (the demo never acts): keys, sessions, and the grant that came
    // after the incident fired.
    assert!(
        text.contains(
            "response: planned aws_deactivate_access_keys on arn:aws:iam::123456789012:user/alice"
        ),
        "{text}"
    );
    assert!(
        text.contains("response: planned entra_revoke_sessions on alice@corp.example"),
        "{text}"
    );
    assert!(
        text.contains(
            "response: planned entra_remove_oauth_grant on alice@corp.example app c0ffee00"
        ),
        "{text}"
    );
    golden("demo.txt", &text);
}

#[test]
fn demo_findings_are_ocsf() {
    let o = picket(&["demo", "--format", "ocsf"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let findings: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("OCSF line is JSON"))
        .collect();
    assert!(findings.len() >= 3);
    for f in &findings {
        assert_eq!(f["class_uid"], 2004);
        assert!(f["finding_info"]["uid"].is_string());
        assert!(
            !f["finding_info"]["related_events"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    assert!(
        findings
            .iter()
            .any(|f| f["finding_info"]["analytic"]["uid"] == "account-takeover")
    );
}

#[test]
fn replay_twice_with_the_same_state_emits_each_finding_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let out1 = dir.path().join("first.jsonl");
    let out2 = dir.path().join("second.jsonl");
    let args = |out: &PathBuf| {
        vec![
            "replay".to_string(),
            "--config".into(),
            "examples/config/picket.toml".into(),
            "--state".into(),
            state.display().to_string(),
            "--output".into(),
            out.display().to_string(),
            "examples/demo".into(),
        ]
    };
    let run = |out: &PathBuf| {
        let a = args(out);
        let o = picket(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run(&out1);
    run(&out2);
    let first = std::fs::read_to_string(&out1).unwrap();
    let second = std::fs::read_to_string(&out2).unwrap_or_default();
    assert!(first.lines().count() >= 3, "{first}");
    assert_eq!(second.lines().count(), 0, "second replay emitted: {second}");
}

#[test]
fn replay_reorder_window_is_at_least_one_and_any_window_finds_the_same() {
    let o = picket(&["replay", "--reorder-window", "0", "examples/demo"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--reorder-window"), "{}", stderr(&o));
    // The demo's files are in time order: a window of one finds what the default finds.
    let findings = |window: &str| {
        let o = picket(&[
            "replay",
            "--config",
            "examples/config/picket.toml",
            "--format",
            "ocsf",
            "--reorder-window",
            window,
            "examples/demo",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut uids: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["finding_info"]["uid"].as_str().map(str::to_owned))
            .collect();
        uids.sort();
        uids
    };
    let default = findings("10000");
    assert!(default.len() >= 3, "{default:?}");
    assert_eq!(findings("1"), default);
}

#[test]
fn replay_reports_bad_records_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("examples/demo/cloudtrail.json").unwrap();
    std::fs::write(dir.path().join("good.json"), &good).unwrap();
    std::fs::write(
        dir.path().join("mixed.jsonl"),
        "{\"eventVersion\":\"1.08\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"ListUsers\",\"eventTime\":\"2026-11-20T08:00:00Z\",\"eventID\":\"x1\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"81.2.69.142\",\"userIdentity\":{\"type\":\"Root\",\"arn\":\"arn:aws:iam::1:root\",\"accountId\":\"1\"}}\n{broken\n{\"unknown\":\"shape\"}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("binary.json"), b"\x00\x01\x02garbage").unwrap();
    std::fs::write(dir.path().join("empty.json"), b"").unwrap();
    // Nested far beyond any stack: refused with a reason, not a crash.
    let deep = format!(
        "{{\"eventVersion\":\"1.08\",\"eventSource\":\"s\",\"requestParameters\":{}{}}}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    std::fs::write(dir.path().join("deep.jsonl"), deep).unwrap();
    let o = picket(&[
        "replay",
        "--stats",
        "--format",
        "ocsf",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("mixed.jsonl:2 (record 1): invalid JSON"),
        "{err}"
    );
    assert!(
        err.contains("mixed.jsonl:3 (record 2): unknown record shape"),
        "{err}"
    );
    assert!(err.contains("binary.json (record 0): binary data"), "{err}");
    assert!(
        err.contains("deep.jsonl:1 (record 0): invalid JSON: nested deeper than 64 levels"),
        "{err}"
    );
    assert!(err.contains("records:    9"), "{err}");
    assert!(err.contains("rejected:   4"), "{err}");
}

#[test]
fn validate_reports_every_problem_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("picket.toml");
    std::fs::write(
        &cfg,
        "[networks]\ntrusted = [\"nope\"]\n\n[detect.impossible_travel]\nmax_speed_kmh = 1000\nspeed = 3\n\n[[notify]]\ntype = \"carrier-pigeon\"\n",
    )
    .unwrap();
    let o = picket(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let shown = cfg.display().to_string();
    assert!(
        err.contains(&format!("{shown}:2: networks.trusted[0]")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{shown}:6: detect.impossible_travel.speed")),
        "{err}"
    );
    assert!(err.contains(&format!("{shown}:9: notify[0]")), "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
}

#[test]
fn validate_checks_a_dynamodb_state_section() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("picket.toml");
    std::fs::write(
        &cfg,
        "[aws]\nregion = \"eu-west-1\"\n\n[state]\nbackend = \"dynamodb\"\ntable = \"picket-state\"\n",
    )
    .unwrap();
    let o = picket(&["validate", "--config", cfg.to_str().unwrap()]);
    if cfg!(feature = "aws") {
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("dynamodb state needs the `aws` feature"),
            "{}",
            stderr(&o)
        );
    }
    std::fs::write(
        &cfg,
        "[state]\nbackend = \"dynamodb\"\ntable = \"no spaces\"\n",
    )
    .unwrap();
    let o = picket(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("state.table: `no spaces` is not a DynamoDB table name"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn example_configs_validate() {
    for entry in std::fs::read_dir("examples/config").unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            let o = picket(&["validate", "--config", p.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        }
    }
}

#[test]
fn rules_lint_ends_with_the_summary_and_the_pack_passes() {
    let o = picket(&["rules", "lint"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let text = stdout(&o);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("loaded: ") && last.ends_with(", rejected: 0"),
        "{last}"
    );
    let o = picket(&["rules", "test"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).trim_end().ends_with(" failed"));
}

#[test]
fn rules_test_fails_on_a_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yml"),
        "title: t\nid: 11111111-2222-4333-8444-555555555555\nlevel: high\ndescription: d\ntags: [attack.t1078]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: ConsoleLogin\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.cases.json"),
        r#"{"cases": [{"name": "wrong on purpose", "match": true, "event": {"eventVersion": "1.08", "eventSource": "iam.amazonaws.com", "eventName": "ListUsers", "eventTime": "2024-01-01T00:00:00Z", "eventID": "e"}}]}"#,
    )
    .unwrap();
    let o = picket(&["rules", "test", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL"), "{}", stdout(&o));
    assert!(stdout(&o).contains("wrong on purpose"));
}
