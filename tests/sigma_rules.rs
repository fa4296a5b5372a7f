//! The shipped rule pack (`detections/`): every rule loads, every case passes, and the lint
//! report ends with the `loaded: N, rejected: M` line.

use std::path::{Path, PathBuf};

use picket::detect::sigma::author::{self, CaseResult};
use picket::detect::sigma::ruleset::RuleSet;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load() -> RuleSet {
    let (set, errors) = RuleSet::load(
        &[root().join("detections")],
        &root().join("detections/mappings"),
    );
    assert!(errors.is_empty(), "rule pack errors: {errors:#?}");
    set
}

#[test]
fn shipped_rules_pass_their_cases() {
    let set = load();
    let results: Vec<CaseResult> = author::test_cases(&set);
    let failed: Vec<String> = results
        .iter()
        .filter(|c| !c.passed())
        .map(ToString::to_string)
        .collect();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
    // The three correlations of the brief ship with positive and negative cases.
    for id in [
        "0b8e4f0e-5a3d-4b8f-8f3a-6c1d2e9b7a11",
        "8a9d7c6b-5e4f-4a3b-8c2d-1e0f9a8b7c62",
        "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e66",
    ] {
        assert!(
            set.correlations().iter().any(|c| c.corr.meta.id == id),
            "{id} missing"
        );
    }
    assert!(results.iter().filter(|c| c.expected).count() >= 6);
    assert!(results.iter().filter(|c| !c.expected).count() >= 6);
}

#[test]
fn lint_report_ends_with_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yml");
    std::fs::write(
        &bad,
        "title: Bad\nid: b1\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName|expand: '%x%'\n  condition: sel\n",
    )
    .unwrap();
    let paths: Vec<PathBuf> = vec![root().join("detections"), bad.clone()];
    let report = author::lint(&paths, &root().join("detections/mappings"));
    let text = report.to_string();
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "loaded: {}, rejected: 1",
            load().rules().len() + load().correlations().len()
        )
    );
    assert!(
        text.contains(&format!(
            "rejected: {}: rule 'Bad': search 'sel': unsupported modifier 'expand'",
            bad.display()
        )),
        "{text}"
    );
    assert!(text.contains("no cases file"), "{text}");
    assert!(!report.ok());
}

#[test]
fn list_shows_level_logsource_and_attack() {
    let set = load();
    let rows = author::list(&set);
    let spray = rows
        .iter()
        .find(|r| r.id == "8a9d7c6b-5e4f-4a3b-8c2d-1e0f9a8b7c62")
        .unwrap();
    assert_eq!(spray.level, "high");
    assert_eq!(spray.logsource, "correlation:value_count");
    assert_eq!(spray.attack, vec!["T1110.003"]);
    let key = rows
        .iter()
        .find(|r| r.id == "6f1d8a52-3c1e-4f55-9d4f-2a7b7a3c9e01")
        .unwrap();
    assert_eq!(key.logsource, "aws/cloudtrail");
}
