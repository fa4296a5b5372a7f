//! Writes the realistic replay workload of `benches/util/mix.rs` (CloudTrail, Entra and
//! Workspace records from `tests/fixtures/`, unique ids, increasing times, mostly routine) as
//! JSON Lines, for `picket replay --stats`:
//!
//! ```text
//! cargo run --release --no-default-features --example replay_mix -- mix.jsonl 1000000
//! picket replay --stats --rules tests/fixtures/sigma-cloud --format ocsf -o /dev/null mix.jsonl
//! ```

use anyhow::{Context, Result};

#[path = "../benches/util/mix.rs"]
mod mix;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: replay_mix FILE [RECORDS] [SEED]")?;
    let n: usize = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let seed: u64 = args.next().map_or(Ok(1), |s| s.parse())?;
    std::fs::write(&path, mix::json_lines(n, seed, &mix::rules())).with_context(|| path.clone())?;
    eprintln!("{n} records written to {path}");
    Ok(())
}
