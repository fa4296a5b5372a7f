//! Assembly: components built from a [`Config`]. The CLI and the Lambda start-up call these;
//! nothing else decides how a pipeline is put together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::alert::Router;
use crate::clock::Clock;
use crate::config::Config;
use crate::detect::Detector;
use crate::detect::sigma::SigmaDetector;
use crate::enrich::Enricher;
use crate::pipeline::Pipeline;
use crate::state::{MemoryStore, SqliteStore, StateStore};

/// Why a pipeline could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A component could not be built from its config.
    #[error("{component}: {message}")]
    Build {
        /// Which component.
        component: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// The state a replay uses: fresh memory, or the SQLite file given with `--state`.
pub fn replay_state(path: Option<&Path>) -> Result<Arc<dyn StateStore>, AppError> {
    match path {
        None => Ok(Arc::new(MemoryStore::new())),
        Some(p) => Ok(Arc::new(SqliteStore::open(p).map_err(|e| {
            AppError::Build {
                component: "state",
                message: e.to_string(),
            }
        })?)),
    }
}

/// Builds the enricher of a config.
pub fn enricher(config: &Config) -> Result<Enricher, AppError> {
    let raw = &config.raw;
    Enricher::from_config(&raw.geoip, &raw.networks, &raw.identities).map_err(|e| AppError::Build {
        component: "enrich",
        message: e.to_string(),
    })
}

/// Builds every detector a config enables: the Sigma rules (shipped pack, `[detect.rules]
/// paths`, then `extra_rules`) first, so that the identity detectors see their findings, then
/// the built-in identity detectors. Rules that do not load are logged with their reasons
/// (`picket rules lint` lists them); the others run.
pub fn detectors(
    config: &Config,
    extra_rules: &[PathBuf],
) -> Result<Vec<Box<dyn Detector>>, AppError> {
    let rules = &config.raw.detect.rules;
    let mut paths = rules.paths.clone();
    paths.extend(extra_rules.iter().cloned());
    let (set, rejected) = crate::detect::pack::load(rules.builtin, &paths);
    for r in &rejected {
        tracing::warn!(rule = %r.path.display(), reason = %r.reason, "rule not loaded");
    }
    let mut out: Vec<Box<dyn Detector>> = vec![Box::new(SigmaDetector::new(set))];
    out.extend(
        crate::detect::builtin::identity_detectors(&config.raw.detect).map_err(|errors| {
            AppError::Build {
                component: "detect",
                message: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })?,
    );
    Ok(out)
}

/// Assembles the whole pipeline.
pub fn pipeline(
    config: &Config,
    extra_rules: &[PathBuf],
    state: Arc<dyn StateStore>,
    router: Router,
    clock: Arc<Clock>,
) -> Result<Pipeline, AppError> {
    Ok(Pipeline::new(
        Arc::new(enricher(config)?),
        detectors(config, extra_rules)?,
        state,
        router,
        clock,
    ))
}
