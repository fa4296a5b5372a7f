//! Helpers of the cloud source tests: `picket run --once` in-process over a working folder
//! (config, SQLite state, `jsonl` findings) with clients pointed at a stub.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use picket::alert::Router;
use picket::clock::Clock;
use picket::cloud::Clients;
use picket::config::Config;
use picket::run::{RunOptions, Runner};
use picket::source::Source;
use picket::state::{SqliteStore, StateStore};
use serde_json::Value;

/// The sources of the working folder's config, built over `clients`.
pub fn sources(dir: &Path, clients: &Clients, state: &Arc<dyn StateStore>) -> Vec<Box<dyn Source>> {
    let config = Config::load(&dir.join("picket.toml")).unwrap();
    config
        .raw
        .sources
        .iter()
        .map(|s| s.build(state.clone(), clients).unwrap())
        .collect()
}

/// Runs `picket run --once` in-process until an interval passes without a failed source;
/// returns the records processed.
pub async fn run_until_caught_up(dir: &Path, clients: &Clients) -> u64 {
    let config = Config::load(&dir.join("picket.toml")).unwrap();
    let state: Arc<dyn StateStore> = Arc::new(SqliteStore::open(dir.join("state.db")).unwrap());
    let router = Router::from_config(&config.raw.notify, clients, Some(&state)).unwrap();
    let pipeline =
        picket::app::pipeline(&config, &[], state.clone(), router, Arc::new(Clock::System))
            .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut runner = Runner::new(pipeline, sources(dir, clients, &state), rx).unwrap();
    let mut records = 0;
    for _ in 0..60 {
        let s = runner.run(RunOptions { once: true }).await.unwrap();
        records += s.records;
        if s.failed_sources.is_empty() {
            return records;
        }
    }
    panic!("the source kept failing");
}

/// The related event ids of the catch-all rules' findings in the jsonl file, with how often each appears.
pub fn finding_events(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string(dir.join("findings.jsonl")).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Value = serde_json::from_str(line).unwrap();
        // Only the tests' catch-all rules (the identity detectors may fire too).
        let rule = f["finding_info"]["analytic"]["uid"].as_str().unwrap_or("");
        if !rule.starts_with("0c0ffee0-") {
            continue;
        }
        for e in f["finding_info"]["related_events"].as_array().unwrap() {
            *out.entry(e["uid"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}
