//! End to end, as `picket replay` runs it: JSON Lines bytes -> decode -> normalize -> enrich
//! -> every detector (the shipped pack, every loadable SigmaHQ cloud rule of
//! `tests/fixtures/sigma-cloud`, and the identity detectors) -> findings, on the realistic mix
//! of `benches/util/mix.rs` (CloudTrail, Entra, Workspace; unique ids and times; most records
//! routine). A fresh memory state store per sample, batches of `REPLAY_BATCH_RECORDS` records as
//! replay uses (`PICKET_BENCH_BATCH` to try others).
//! Events per CPU-second of the benchmark thread.
//!
//! `cargo bench --no-default-features --bench replay` (`PICKET_BENCH_EVENTS`, default 200,000).
//! Group `json` measures the floor under it: parsing the same lines into raw record trees
//! (`picket::json::Value`), into `serde_json::Value` trees, and only scanning them.
//! The same workload for `picket replay --stats`: `examples/replay_mix.rs`.

use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use picket::alert::Router;
use picket::clock::Clock;
use picket::config::Config;
use picket::source::decode::{Limits, from_bytes};
use picket::state::MemoryStore;

#[path = "util/cpu_time.rs"]
mod cpu_time;
#[path = "util/mix.rs"]
mod mix;
use cpu_time::CpuTime;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn replay(c: &mut Criterion<CpuTime>) {
    let n: usize = std::env::var("PICKET_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let batch: usize = std::env::var("PICKET_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(picket::pipeline::REPLAY_BATCH_RECORDS);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bytes: Arc<[u8]> = mix::json_lines(n, 1, &mix::rules()).into();
    let config = Config::embedded(root).expect("embedded config");
    let rules = [root.join(mix::SIGMA_CLOUD)];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    let mut findings = 0;
    group.bench_function("mix/pack+sigmahq", |b| {
        b.iter_batched(
            || {
                picket::app::pipeline(
                    &config,
                    &rules,
                    Arc::new(MemoryStore::new()),
                    Router::new(Vec::new()),
                    Arc::new(Clock::event_time()),
                )
                .expect("pipeline")
            },
            |mut p| {
                let mut records = from_bytes(Arc::clone(&bytes), "mix", Limits::default());
                findings = 0;
                loop {
                    let batch: Vec<_> = records.by_ref().take(batch).flatten().collect();
                    if batch.is_empty() {
                        break;
                    }
                    let report = runtime.block_on(p.process(batch)).expect("batch");
                    findings += report.findings.len();
                }
                findings
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    eprintln!("{n} records, {findings} findings per run");

    // The floor under the figure above: parsing the same lines into the raw record tree
    // every record becomes (`picket::json::Value`, sonic-rs), into the `serde_json::Value`
    // it was before, and only scanning them (what any JSON reader must do).
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut group = c.benchmark_group("json");
    group.sample_size(10);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("mix/picket::json::Value", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter_map(|l| picket::json::parse(l).ok())
                .count()
        })
    });
    group.bench_function("mix/serde_json::Value", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
                .count()
        })
    });
    group.bench_function("mix/scan-only", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter_map(|l| serde_json::from_slice::<serde::de::IgnoredAny>(l).ok())
                .count()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = replay
}
criterion_main!(benches);
