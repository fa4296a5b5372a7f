//! The raw records of `tests/fixtures/` (minus `unsupported/` shapes and the SigmaHQ rule
//! folder), with their kinds: what every benchmark replicates into its corpus.

use std::path::Path;

use picket::json::Value;
use picket::model::RecordKind;
use picket::source::decode::{Limits, from_bytes};

/// Every fixture record whose kind `keep` accepts.
pub fn records(keep: impl Fn(RecordKind) -> bool) -> Vec<(RecordKind, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("unsupported") && !p.ends_with("sigma-cloud") {
                    stack.push(p);
                }
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            for r in from_bytes(bytes, &p.display().to_string(), Limits::default()).flatten() {
                if let Some(k) = r.detected_kind().filter(|k| keep(*k)) {
                    out.push((k, r.value.into_value()));
                }
            }
        }
    }
    out
}
