//! The identity detectors over a generated month on an SQLite state file, as the
//! `identity` bench and `picket replay` run them (enriched events in batches of replay's
//! `--batch`, `Pipeline::detect_stream` with one state transaction per 262,144 events), with the
//! figures the bench does not print: sign-ins, CPU and wall time, state rows and bytes per
//! namespace, file size.
//!
//! ```sh
//! cargo run --release --no-default-features --features testgen --example identity_throughput -- 20000
//! ```
//!
//! Arguments: users (default 20,000), events per batch (default replay's `--batch`), events
//! per state transaction (default replay's `--commit-every`; 0: one per batch, as
//! `picket run` commits), state file (default a temporary one).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use picket::alert::Router;
use picket::clock::Clock;
use picket::config::DetectSection;
use picket::detect::builtin::identity_detectors;
use picket::detect::testgen::{Month, enricher};
use picket::model::Activity;
use picket::pipeline::{Pipeline, REPLAY_BATCH_RECORDS, REPLAY_COMMIT_EVENTS};
use picket::state::{SqliteStore, StateStore};

/// mimalloc, counting the bytes live on the Rust heap (the detectors' caches; SQLite
/// allocates its page cache with its own allocator).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
fn grew(by: isize) {
    LIVE.fetch_add(by, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to mimalloc; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        // SAFETY: forwarded with the caller's layout.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        // SAFETY: forwarded with the caller's layout.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// CPU time of this thread (user and system), nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().map_or(Ok(20_000), |s| s.parse())?;
    let chunk: usize = args
        .next()
        .map_or(Ok(REPLAY_BATCH_RECORDS), |s| s.parse())?;
    let commit: usize = args
        .next()
        .map_or(Ok(REPLAY_COMMIT_EVENTS), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let path = args
        .next()
        .map_or_else(|| dir.path().join("state.db"), std::path::PathBuf::from);
    let enr = enricher(users).context("synthetic geo databases")?;
    // In slices of 20,000 users: a month's raw records take about 5 KB per event.
    let mut events = Vec::new();
    for first in (0..users).step_by(20_000) {
        let slice = Month::generate_users(first..users.min(first + 20_000), 7 + first as u64);
        events.extend(slice.into_events(&enr).0);
    }
    events.sort_by_key(|e| e.time);
    let signins = events
        .iter()
        .filter(|e| e.activity == Activity::SignIn)
        .count();
    let travel = events
        .iter()
        .filter(|e| {
            e.is_interactive_signin_success()
                && !e.src.trusted
                && !e.src.private
                && e.src.geo.is_some()
        })
        .count();
    let store = Arc::new(SqliteStore::open(&path)?);
    let mut p = Pipeline::new(
        Arc::new(enricher(1)?),
        identity_detectors(&DetectSection::default()).map_err(|e| anyhow::anyhow!("{e:?}"))?,
        Arc::clone(&store) as Arc<dyn StateStore>,
        Router::new(Vec::new()),
        Arc::new(Clock::event_time()),
    );
    let n_events = events.len();
    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    let mut found = 0;
    if commit == 0 {
        for b in events.chunks(chunk.max(1)) {
            found += p.detect(b)?.len();
        }
    } else {
        let mut batches = events.chunks(chunk.max(1));
        while let Some(d) = p.detect_stream(&mut || batches.next(), commit)? {
            found += d.findings.len();
        }
    }
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    let wall = wall0.elapsed().as_secs_f64();
    // The detectors' caches: what dropping the pipeline frees.
    let before = LIVE.load(Ordering::Relaxed);
    drop(p);
    let caches = (before - LIVE.load(Ordering::Relaxed)) as f64;
    let n = n_events as f64;
    println!(
        "{users} users, batches of {chunk}, commit every {commit} events: {n_events} events \
         ({signins} sign-ins, {travel} located interactive), {found} findings; \
         {cpu:.2} s CPU, {wall:.2} s wall; {:.0} events/CPU-s, {:.0} events/s wall",
        n / cpu,
        n / wall
    );
    println!(
        "  Rust heap of the detectors' caches at the end: {:.0} MB, {:.0} bytes per user",
        caches / 1e6,
        caches / users as f64
    );
    let conn = rusqlite::Connection::open(&path)?;
    let mut stmt = conn.prepare(
        "SELECT ns, count(*), sum(length(key) + length(value)), max(length(value)) \
         FROM kv GROUP BY ns ORDER BY ns",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut total = 0;
    for row in rows {
        let (ns, count, bytes, max) = row?;
        total += bytes;
        println!(
            "  {ns:<22} {count:>7} rows, {:>6.0} bytes/row (max {max})",
            bytes as f64 / count as f64
        );
    }
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    println!(
        "  keys+values {:.0} bytes per user; file {:.1} MB",
        total as f64 / users as f64,
        (pages * page_size) as f64 / 1e6
    );
    Ok(())
}
