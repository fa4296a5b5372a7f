//! picket's Sigma verdicts on raw records, as JSON lines, for `tools/sigma-agreement` (which
//! compares them with pySigma's SQL).
//!
//! ```text
//! cargo run --no-default-features --example sigma_matches -- \
//!     [--mappings detections/mappings] <rules dir> <record file or dir>...
//! ```
//!
//! Record files: a JSON array, `{"Records": [...]}`, `{"value": [...]}`, `{"items": [...]}`,
//! one object, JSON lines, or a rule pack `*.cases.json` (every case's `event` / `events`).
//! A folder is walked for `*.json` / `*.jsonl`. Each record is `<file>#<index>`
//! (`<file>#<case>.<event>` for cases). Output lines, in this order:
//! - `{"loaded": id, "path": file, "kinds": [...]}` per loaded detection rule;
//! - `{"rejected": file, "reason": text}` per rule that did not load;
//! - `{"record": id, "kind": kind}` per record of a kind picket reads;
//! - `{"rule": id, "record": id, "match": true}` per matching (rule, record) pair.
//!
//! Rules match the raw record (after the EventBridge unwrap picket applies), through the rule
//! index (`RuleSet::matching`); every verdict is checked against the unindexed
//! `Rule::matches` and a difference fails the run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use picket::detect::sigma::record_view;
use picket::detect::sigma::ruleset::RuleSet;
use picket::model::RecordKind;
use picket::normalize::detect_kind;
use serde_json::{Value, json};

/// One decoded record.
struct Record {
    id: String,
    kind: Option<RecordKind>,
    raw: picket::json::Value,
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                walk(&e, out)?;
            } else if e.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                out.push(e);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn push(out: &mut Vec<Record>, id: String, raw: Value, forced: Option<RecordKind>) {
    // A serde_json tree always converts.
    let raw = picket::json::to_value(&raw).unwrap_or_default();
    let kind = forced.or_else(|| detect_kind(&raw));
    out.push(Record { id, kind, raw });
}

fn decode(file: &Path, out: &mut Vec<Record>) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.display().to_string();
    let items: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(v) if name.ends_with(".cases.json") => {
            let cases = v.get("cases").and_then(Value::as_array).cloned();
            for (i, case) in cases.unwrap_or_default().into_iter().enumerate() {
                let forced = case
                    .get("kind")
                    .and_then(Value::as_str)
                    .and_then(RecordKind::parse);
                if let Some(e) = case.get("event") {
                    push(out, format!("{name}#{i}"), e.clone(), forced);
                }
                if let Some(Value::Array(es)) = case.get("events") {
                    for (j, e) in es.iter().enumerate() {
                        push(out, format!("{name}#{i}.{j}"), e.clone(), forced);
                    }
                }
            }
            return Ok(());
        }
        Ok(Value::Array(a)) => a,
        Ok(Value::Object(mut o)) => {
            let list = ["Records", "value", "items"]
                .iter()
                .find(|k| o.get(**k).is_some_and(Value::is_array))
                .and_then(|k| o.remove(*k));
            match list {
                Some(Value::Array(a)) => a,
                _ => vec![Value::Object(o)],
            }
        }
        Ok(other) => vec![other],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{name}: neither JSON nor JSON lines"))?,
    };
    for (i, raw) in items.into_iter().enumerate() {
        push(out, format!("{name}#{i}"), raw, None);
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut mappings = PathBuf::from("detections/mappings");
    if let Some(i) = args.iter().position(|a| a == "--mappings") {
        if i + 1 >= args.len() {
            bail!("--mappings needs a folder");
        }
        mappings = PathBuf::from(args.remove(i + 1));
        args.remove(i);
    }
    let [rules, inputs @ ..] = args.as_slice() else {
        bail!("usage: sigma_matches [--mappings DIR] <rules dir> <record file or dir>...");
    };
    let (set, errors) = RuleSet::load(&[PathBuf::from(rules)], &mappings);
    for r in set.rules() {
        let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
        println!(
            "{}",
            json!({"loaded": r.meta.id, "path": r.meta.path.display().to_string(), "kinds": kinds})
        );
    }
    for e in &errors {
        println!(
            "{}",
            json!({"rejected": e.path.display().to_string(), "reason": e.reason})
        );
    }
    let mut files = Vec::new();
    for i in inputs {
        walk(Path::new(i), &mut files)?;
    }
    let mut records = Vec::new();
    for f in &files {
        decode(f, &mut records)?;
    }
    for r in &records {
        if let Some(k) = r.kind {
            println!("{}", json!({"record": r.id, "kind": k.as_str()}));
        }
    }
    for r in &records {
        let Some(kind) = r.kind else { continue };
        let view = record_view(kind, &r.raw);
        let indexed = set.matching(kind, view);
        let brute: Vec<usize> = (0..set.rules().len())
            .filter(|&i| set.rules()[i].matches(kind, view))
            .collect();
        if indexed != brute {
            bail!(
                "{}: rule index gives {indexed:?}, rules give {brute:?}",
                r.id
            );
        }
        for i in indexed {
            println!(
                "{}",
                json!({"rule": set.rules()[i].meta.id, "record": r.id, "match": true})
            );
        }
    }
    Ok(())
}
