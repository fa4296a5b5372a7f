//! Decode + normalize + enrich throughput per record kind, on the corpus records in
//! `tests/fixtures/` replicated to 1M events (built here, in memory, never committed).
//!
//! `cargo bench --no-default-features --bench ingest` (release). Set `PICKET_BENCH_EVENTS`
//! for another size. Measured in CPU time of the benchmark thread, so the figure is events per
//! second per core whatever else the machine is doing.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "util/cpu_time.rs"]
mod cpu_time;
#[path = "util/fixtures.rs"]
mod fixtures;
use cpu_time::CpuTime;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use picket::enrich::{
    DbKind, Enricher, GeoDatabase, GeoIp, GeoipConfig, IdentitiesConfig, NetworksConfig,
};
use picket::model::RecordKind;
use picket::normalize::{detect_kind, normalize};
use picket::source::decode::{Limits, from_bytes};

/// JSON Lines of `n` records cycling through the fixtures: what a source hands the decoder.
fn corpus(kind: RecordKind, n: usize) -> Option<Arc<[u8]>> {
    let records: Vec<picket::json::Value> = fixtures::records(|k| k == kind)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    if records.is_empty() {
        return None;
    }
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        out.push(b'\n');
    }
    Some(out.into())
}

fn enricher() -> Enricher {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/geoip");
    let mut e = Enricher::from_config(
        &GeoipConfig::default(),
        &NetworksConfig {
            trusted: vec!["203.0.113.0/24".into()],
        },
        &IdentitiesConfig::default(),
    )
    .expect("enricher");
    let city =
        GeoDatabase::open(&root.join("GeoLite2-City-Test.mmdb"), DbKind::City).expect("city db");
    let asn = GeoDatabase::open(&root.join("GeoLite2-ASN-Test.mmdb"), DbKind::Asn).expect("asn db");
    e.geoip = Some(GeoIp::new(Some(city), Some(asn)).expect("geoip"));
    e
}

fn ingest(c: &mut Criterion<CpuTime>) {
    let n: usize = std::env::var("PICKET_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let enricher = enricher();
    let mut group = c.benchmark_group("decode+normalize+enrich");
    group.sample_size(10);
    for kind in RecordKind::ALL {
        let Some(bytes) = corpus(*kind, n) else {
            continue;
        };
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                let mut events = 0usize;
                for rec in from_bytes(Arc::clone(&bytes), "bench", Limits::default()).flatten() {
                    let Some(k) = detect_kind(&rec.value) else {
                        continue;
                    };
                    if let Ok(evs) = normalize(k, rec.value) {
                        for mut ev in evs {
                            enricher.enrich(&mut ev);
                            events += 1;
                            black_box(&ev);
                        }
                    }
                }
                events
            })
        });
    }
    group.finish();

    // Where the time goes: the decoder alone (bytes -> picket::json::Value).
    let mut group = c.benchmark_group("decode-only");
    group.sample_size(10);
    for kind in [RecordKind::Cloudtrail] {
        let Some(bytes) = corpus(kind, n) else {
            continue;
        };
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for r in from_bytes(Arc::clone(&bytes), "bench", Limits::default()).flatten() {
                    n += black_box(r).origin.index & 1;
                }
                n
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = ingest
}
criterion_main!(benches);
