//! `picket demo`: the bundled multi-cloud account-takeover story (`examples/demo/`), replayed
//! with the embedded defaults and MaxMind's test databases — all compiled into the binary, so
//! it runs anywhere with no files, accounts or network.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::alert::escape::terminal;
use crate::alert::{Format, Router};
use crate::app::{self, AppError};
use crate::clock::Clock;
use crate::config::Config;
use crate::enrich::{DbKind, GeoDatabase, GeoIp};
use crate::model::Finding;
use crate::pipeline::{Pipeline, PipelineError};
use crate::source::decode::{self, Limits, RawRecord};

use crate::state::MemoryStore;

/// The story's files: name and content.
pub const STORY: &[(&str, &str)] = &[
    (
        "examples/demo/entra-signins.json",
        include_str!("../examples/demo/entra-signins.json"),
    ),
    (
        "examples/demo/cloudtrail.json",
        include_str!("../examples/demo/cloudtrail.json"),
    ),
    (
        "examples/demo/entra-audits.json",
        include_str!("../examples/demo/entra-audits.json"),
    ),
    (
        "examples/demo/google-reports.json",
        include_str!("../examples/demo/google-reports.json"),
    ),
];

/// MaxMind's City test database (Apache-2.0 / MIT, see `assets/geoip/README.md`).
pub const CITY_DB: &[u8] = include_bytes!("../assets/geoip/GeoLite2-City-Test.mmdb");
/// MaxMind's ASN test database.
pub const ASN_DB: &[u8] = include_bytes!("../assets/geoip/GeoLite2-ASN-Test.mmdb");

/// Why the demo failed (it should not).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The embedded config is broken.
    #[error("embedded config: {0}")]
    Config(String),
    /// Assembly failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// MaxMind's test databases, from the binary.
pub fn embedded_geoip() -> Result<GeoIp, DemoError> {
    let city = GeoDatabase::from_bytes(
        CITY_DB.to_vec(),
        DbKind::City,
        "embedded GeoLite2-City-Test",
    )
    .map_err(|e| DemoError::Config(e.to_string()))?;
    let asn = GeoDatabase::from_bytes(ASN_DB.to_vec(), DbKind::Asn, "embedded GeoLite2-ASN-Test")
        .map_err(|e| DemoError::Config(e.to_string()))?;
    GeoIp::new(Some(city), Some(asn)).map_err(|e| DemoError::Config(e.to_string()))
}

/// Every record of the story, in event-time order.
pub fn story_records() -> Vec<RawRecord> {
    let mut records: Vec<RawRecord> = STORY
        .iter()
        .flat_map(|(name, text)| {
            decode::from_bytes(text.as_bytes().to_vec(), name, Limits::default())
                .filter_map(Result::ok)
        })
        .collect();
    records.sort_by_key(RawRecord::time);
    records
}

/// Runs the story and returns what picket prints.
pub async fn run(format: Format) -> Result<String, DemoError> {
    let cwd = std::path::PathBuf::from(".");
    let config = Config::embedded(&cwd).map_err(|e| {
        DemoError::Config(
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let state = Arc::new(MemoryStore::new());
    let state_for_responder: Arc<dyn crate::state::StateStore> = state.clone();
    let mut enricher = app::enricher(&config)?;
    enricher.geoip = Some(embedded_geoip()?);
    let mut pipeline = Pipeline::new(
        Arc::new(enricher),
        app::detectors(&config, &[])?,
        state,
        Router::new(Vec::new()),
        Arc::new(Clock::event_time()),
    )
    .keep_events(true)
    // `picket demo` never acts: the Responder is forced to dry-run and has no cloud clients,
    // so it shows the containment the playbooks would apply.
    .with_responder(
        crate::respond::Responder::new(
            &config.raw.respond,
            &config.raw.identities,
            &crate::cloud::Clients::default(),
            state_for_responder,
            Arc::new(Clock::event_time()),
            true,
        )
        .map_err(|e| DemoError::Config(e.to_string()))?,
    );
    let report = pipeline.process(story_records()).await?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "picket demo: {} records, {} events, {} rejected\n",
        report.records,
        report.events,
        report.rejected.len()
    );
    let _ = writeln!(out, "Timeline");
    for e in &report.kept_events {
        let place = e
            .src
            .geo
            .as_ref()
            .map(|g| {
                format!(
                    " ({})",
                    terminal(g.city.as_deref().or(g.country.as_deref()).unwrap_or("?"))
                )
            })
            .unwrap_or_else(|| {
                if e.src.trusted {
                    " (trusted network)".to_string()
                } else if e.src.private {
                    " (private/reserved)".to_string()
                } else {
                    String::new()
                }
            });
        let _ = writeln!(
            out,
            "  {}  {:<16} {:<28} {:<26} {}{}{}",
            e.time.format("%H:%M:%S"),
            e.provider().as_str(),
            terminal(&e.actor.key),
            terminal(&e.action),
            e.src
                .ip
                .map(|ip| ip.to_string())
                .or_else(|| e.src.raw.clone())
                .map(|s| terminal(&s))
                .unwrap_or_default(),
            place,
            match e.status {
                crate::model::Status::Failure => "  FAILED",
                _ => "",
            }
        );
    }
    let _ = writeln!(out, "\nFindings ({})", report.findings.len());
    for f in &report.findings {
        out.push_str(&render(f, format));
    }
    Ok(out)
}

fn render(f: &Finding, format: Format) -> String {
    match format {
        Format::Table => crate::alert::stdout::render_table(f),
        Format::Ocsf => format!("{}\n", crate::model::ocsf::detection_finding(f)),
    }
}
