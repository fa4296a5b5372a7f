//! A sanity measurement (not a benchmark, never an assertion on time): events per second of
//! the Sigma detector with every loadable rule (SigmaHQ's + the shipped pack) on the fixture
//! CloudTrail records. Run: `cargo test --release --no-default-features --test tests
//! sigma_perf -- --ignored --nocapture`.

use std::time::Instant;

use chrono::Utc;
use picket::detect::sigma::SigmaDetector;
use picket::detect::sigma::author::event_for;
use picket::detect::{DetectContext, Detector};
use picket::model::RecordKind;
use picket::state::MemoryStore;

use crate::sigma_records::{all_rules, fixture_records};

#[test]
#[ignore = "measurement; run with --release --ignored --nocapture"]
fn sigma_events_per_second() {
    let set = all_rules();
    let n_rules = set.rules().len() + set.correlations().len();
    let events: Vec<_> = fixture_records()
        .into_iter()
        .filter(|(_, r)| picket::normalize::detect_kind(r) == Some(RecordKind::Cloudtrail))
        .enumerate()
        .map(|(i, (_, r))| event_for(RecordKind::Cloudtrail, &r, &format!("perf-{i}")))
        .collect();
    // Matching only (the rule set on raw records, through the index).
    let rounds = 200;
    let start = Instant::now();
    let mut matches = 0usize;
    for _ in 0..rounds {
        for e in &events {
            matches += set.matching(e.kind, &e.raw).len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (rounds * events.len()) as f64;
    eprintln!(
        "sigma matching: {n_rules} rules, {} CloudTrail records x {rounds}: {:.0} events/s ({matches} matches)",
        events.len(),
        n / secs
    );
    // The whole detector (findings, correlations and dedup in a memory store).
    let store = MemoryStore::new();
    let mut d = SigmaDetector::new(set);
    let cx = DetectContext {
        state: &store,
        now: Utc::now(),
    };
    let start = Instant::now();
    let mut findings = 0usize;
    for _ in 0..rounds / 4 {
        for e in &events {
            findings += d.on_event(e, &cx).map(|f| f.len()).unwrap_or(0);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "sigma detector: {:.0} events/s ({findings} findings)",
        ((rounds / 4) * events.len()) as f64 / secs
    );
    assert!(matches > 0 && findings > 0);
}
