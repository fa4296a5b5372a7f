//! Sources: where raw records come from. `decode` turns bytes into records for all of them;
//! `replay` merges files in event-time order for `picket replay`.
//!
//! To add a source: one `<cloud>_<service>.rs` implementing the polling, one variant in
//! `SourceConfig` (with the feature gate of its cloud), and its config keys in the README.

pub mod decode;
pub mod replay;

pub use decode::{DecodeError, Origin, RawRecord};

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::Checker;
use crate::model::RecordKind;

/// One `[[sources]]` entry. Cloud pollers join this enum behind their features.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A file or folder of log files (watched for new files by `picket run`).
    Files {
        /// The file or folder (relative to the config file's folder).
        path: PathBuf,
        /// Record kind of every record, instead of recognising each by its shape.
        #[serde(default)]
        kind: Option<RecordKind>,
        /// Seconds between scans for new files.
        #[serde(default = "default_interval")]
        interval_secs: u64,
    },
}

fn default_interval() -> u64 {
    60
}

impl SourceConfig {
    /// Every source type, for contract tests and docs.
    pub const ALL: &'static [&'static str] = &["files"];

    /// The source's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::Files { .. } => "files",
        }
    }

    /// Resolves relative paths and checks the entry.
    pub fn resolve(&mut self, key: &str, c: &mut Checker<'_>) {
        match self {
            SourceConfig::Files {
                path,
                interval_secs,
                ..
            } => {
                c.path(path);
                if *interval_secs == 0 {
                    c.error(format!("{key}.interval_secs"), "must be at least 1");
                }
            }
        }
    }
}
