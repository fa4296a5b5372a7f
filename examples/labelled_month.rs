//! Writes a generated, labelled month (raw CloudTrail, Graph and Reports records plus its own
//! synthetic GeoLite2-format databases) for `picket replay`:
//!
//! ```sh
//! cargo run --release --no-default-features --features testgen --example labelled_month -- 20000 /tmp/month
//! picket replay --config /tmp/month/picket.toml --stats /tmp/month
//! ```

use std::path::PathBuf;

use picket::detect::testgen::Month;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().as_deref().unwrap_or("1000").parse()?;
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/labelled-month".into()),
    );
    let month = Month::generate(users, 42);
    month.write_files(&dir)?;
    std::fs::write(
        dir.join("picket.toml"),
        "[state]\nbackend = \"memory\"\n\n[geoip]\ncity = \"GeoLite2-City.mmdb\"\nasn = \"GeoLite2-ASN.mmdb\"\n",
    )?;
    eprintln!(
        "{} records for {users} users in {}",
        month.records.len(),
        dir.display()
    );
    Ok(())
}
