//! SigmaHQ compatibility: the 253 cloud/identity rules of `tests/fixtures/sigma-cloud` (DRL
//! 1.1, see its README) load through the shipped mappings. Two figures:
//! - loaded (active): rules that load and run on a record kind picket reads — at least 95%
//!   required (picket issue 3);
//! - engine support: rules whose Sigma features the engine implements (also ≥ 95%).
//!
//! The rejected list is a golden file (`tests/golden/sigma/sigmahq_rejected.txt`, rewritten
//! with `PICKET_BLESS=1`), so a change in coverage shows up as a reviewed diff.

use std::path::{Path, PathBuf};

use picket::detect::sigma::ruleset::{RuleError, RuleSet};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigma-cloud")
}

fn relative(e: &RuleError) -> String {
    let p = e.path.strip_prefix(fixture()).unwrap_or(&e.path);
    format!("{}: {}", p.display(), e.reason)
}

#[test]
fn sigmahq_cloud_rules_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (set, errors) = RuleSet::load(&[fixture()], &root.join("detections/mappings"));
    let total = set.rules().len() + set.correlations().len() + errors.len();
    assert_eq!(
        total, 253,
        "every fixture rule is either loaded or rejected"
    );
    let no_kind = errors
        .iter()
        .filter(|e| e.reason.ends_with(": no record kind"))
        .count();
    let unsupported = errors.len() - no_kind;
    let engine_supported = total - unsupported;
    let mut lines: Vec<String> = errors.iter().map(relative).collect();
    lines.sort();
    let report = format!(
        "total: {total}\nactive: {}\nrejected, no record kind: {no_kind}\nrejected, other: {unsupported}\n\n{}\n",
        set.rules().len(),
        lines.join("\n")
    );
    let golden = root.join("tests/golden/sigma/sigmahq_rejected.txt");
    if std::env::var_os("PICKET_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &report).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        report, want,
        "SigmaHQ load report changed (PICKET_BLESS=1 to accept)"
    );
    assert!(
        engine_supported * 100 >= total * 95,
        "engine supports only {engine_supported}/{total} rules"
    );
    let active = set.rules().len() + set.correlations().len();
    assert!(
        active * 100 >= total * 95,
        "only {active}/{total} SigmaHQ rules load (picket issue 3 asks for at least 95%)"
    );
}
