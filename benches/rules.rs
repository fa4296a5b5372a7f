//! Sigma matching cost as the rule count grows (issue: "cost does not grow linearly with the
//! number of rules"): events per CPU-second at 50, 250 and 1,000 rules on a mix of CloudTrail,
//! Entra and Workspace records from `tests/fixtures/`. The 1,000-rule set is the shipped pack
//! and every loadable SigmaHQ cloud rule, topped up with generated rules of the same shape
//! (an `eventName`/`activityDisplayName`/`events.name` literal plus a condition on another
//! field), so the index sees realistic literals.
//!
//! `cargo bench --no-default-features --bench rules`

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use picket::detect::pack;
use picket::detect::sigma::ruleset::{Candidates, RuleSet, rule_files};
use picket::detect::sigma::view_indexed;
use picket::json::Raw;
use picket::model::RecordKind;

#[path = "util/cpu_time.rs"]
mod cpu_time;
#[path = "util/fixtures.rs"]
mod fixtures;
use cpu_time::CpuTime;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Records of the three main clouds from the fixtures, read as the decoder reads them (root
/// members indexed).
fn records() -> Vec<(RecordKind, Raw)> {
    fixtures::records(|k| {
        matches!(
            k,
            RecordKind::Cloudtrail
                | RecordKind::EntraSignin
                | RecordKind::EntraAudit
                | RecordKind::GoogleReports
        )
    })
    .into_iter()
    .map(|(kind, value)| (kind, Raw::new(value)))
    .collect()
}

/// Real rules: the pack and SigmaHQ's cloud rules, as `(path, text)`.
fn real_sources() -> Vec<(PathBuf, String)> {
    let mut sources: Vec<(PathBuf, String)> = pack::RULES
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_string()))
        .collect();
    let (files, _) = rule_files(&[root().join("tests/fixtures/sigma-cloud")]);
    for f in files {
        if let Ok(t) = std::fs::read_to_string(&f) {
            sources.push((f, t));
        }
    }
    sources
}

/// A generated rule in one of the three clouds' shapes.
fn synthetic(i: usize) -> (PathBuf, String) {
    let text = match i % 3 {
        0 => format!(
            "title: synthetic {i}\nid: 00000000-0000-4000-8000-{i:012}\nlevel: low\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    eventSource: svc{}.amazonaws.com\n    eventName: Action{i}\n  filter:\n    userIdentity.type: AWSService\n  condition: sel and not filter\n",
            i % 40
        ),
        1 => format!(
            "title: synthetic {i}\nid: 00000000-0000-4000-8000-{i:012}\nlevel: low\nlogsource: {{product: azure, service: auditlogs}}\ndetection:\n  sel:\n    ActivityDisplayName: Synthetic activity {i}\n    Result: success\n  condition: sel\n"
        ),
        _ => format!(
            "title: synthetic {i}\nid: 00000000-0000-4000-8000-{i:012}\nlevel: low\nlogsource: {{product: gcp, service: google_workspace.admin}}\ndetection:\n  sel:\n    eventName: SYNTHETIC_EVENT_{i}\n  condition: sel\n"
        ),
    };
    (PathBuf::from(format!("synthetic/{i}.yml")), text)
}

fn ruleset(n: usize) -> RuleSet {
    let (maps, _) = pack::mappings(None);
    let mut sources = real_sources();
    let (probe, _) = RuleSet::from_sources(&sources, &maps);
    let real = probe.rules().len();
    if n <= real {
        // Keep the first n that load: drop sources until the count fits.
        let (all, _) = RuleSet::from_sources(&sources, &maps);
        let keep: std::collections::BTreeSet<PathBuf> = all
            .rules()
            .iter()
            .take(n)
            .map(|r| r.meta.path.clone())
            .collect();
        sources.retain(|(p, _)| keep.contains(p));
    } else {
        sources.extend((0..n - real).map(synthetic));
    }
    let (set, _) = RuleSet::from_sources(&sources, &maps);
    set
}

fn rules(c: &mut Criterion<CpuTime>) {
    let records = records();
    let mut group = c.benchmark_group("sigma-match");
    group.sample_size(10);
    for n in [50usize, 250, 1000] {
        let set = ruleset(n);
        let loaded = set.rules().len();
        group.throughput(Throughput::Elements(records.len() as u64 * 50));
        group.bench_function(format!("{n}-rules({loaded})"), |b| {
            // As the detector runs it: on the record's root index built when it was decoded,
            // the rule index's counters reused.
            let mut cands = Candidates::default();
            b.iter(|| {
                let mut m = 0usize;
                for _ in 0..50 {
                    for (kind, raw) in &records {
                        let rec = view_indexed(*kind, raw);
                        set.candidates(*kind, &rec, &mut cands);
                        m += cands
                            .rules
                            .iter()
                            .filter(|&&i| set.rules()[i as usize].matches_record(*kind, &rec))
                            .count();
                    }
                }
                black_box(m)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = rules
}
criterion_main!(benches);
