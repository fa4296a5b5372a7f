//! The identity detectors (impossible travel, OAuth consent, account takeover, new country,
//! first-seen ASN) with every other stage excluded: generated months of sign-ins and consents
//! for many users, already normalized and enriched, through `Pipeline::detect_stream` as
//! `picket replay` runs them (batches of replay's `--batch`, one state transaction per 262,144
//! events) on a fresh SQLite state file per sample. Events per CPU-second.
//!
//! `cargo bench --no-default-features --features testgen --bench identity`
//! (`PICKET_BENCH_USERS`, default 20,000 users ≈ 1M events).

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use picket::alert::Router;
use picket::clock::Clock;
use picket::config::DetectSection;
use picket::detect::builtin::identity_detectors;
use picket::detect::testgen::{Month, enricher};
use picket::pipeline::{Pipeline, REPLAY_BATCH_RECORDS, REPLAY_COMMIT_EVENTS};
use picket::state::SqliteStore;

#[path = "util/cpu_time.rs"]
mod cpu_time;
use cpu_time::CpuTime;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn identity(c: &mut Criterion<CpuTime>) {
    let users: usize = std::env::var("PICKET_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let enr = enricher(users).expect("synthetic geo databases");
    let month = Month::generate(users, 7);
    let (mut events, _) = month.events(&enr);
    events.sort_by_key(|e| e.time);
    let n = events.len();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("identity-detectors");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    let mut run = 0u32;
    group.bench_function(format!("sqlite/{n}-events"), |b| {
        b.iter_batched(
            || {
                run += 1;
                let store =
                    SqliteStore::open(dir.path().join(format!("s{run}.db"))).expect("sqlite");
                Pipeline::new(
                    Arc::new(enricher(1).expect("enricher")),
                    identity_detectors(&DetectSection::default()).expect("detectors"),
                    Arc::new(store),
                    Router::new(Vec::new()),
                    Arc::new(Clock::event_time()),
                )
            },
            |mut p| {
                let mut found = 0;
                let mut batches = events.chunks(REPLAY_BATCH_RECORDS);
                while let Ok(Some(d)) =
                    p.detect_stream(&mut || batches.next(), REPLAY_COMMIT_EVENTS)
                {
                    found += d.findings.len();
                }
                found
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = identity
}
criterion_main!(benches);
