//! Sources: where raw records come from. `decode` turns bytes into records for all of them;
//! `replay` merges files in event-time order for `picket replay`; [`Source`] is what
//! `picket run` polls (`files` watches a file or folder).
//!
//! To add a source: one `<cloud>_<service>.rs` implementing [`Source`], one variant in
//! `SourceConfig` (with the feature gate of its cloud) and its arm in [`SourceConfig::build`],
//! and its config keys in the README.

pub mod aws_cloudtrail;
pub mod aws_s3;
pub mod decode;
pub mod files;
pub mod gcp_logging;
pub mod google_reports;
pub mod msgraph;
pub mod replay;
pub mod window;

pub use decode::{DecodeError, Origin, RawRecord};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Checker;
use crate::model::RecordKind;
use crate::pipeline::StagedWrite;
use crate::state::{StateError, StateStore};

/// State namespace of source cursors.
pub const CURSOR_NS: &str = "cursor";
/// Most records one poll returns by default (a JSON Lines source: most lines).
pub const MAX_BATCH: usize = 4096;

/// Why a poll or a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading the input failed (the whole poll; single bad records are only counted).
    #[error("source {source_name}: {message}")]
    Read {
        /// The source.
        source_name: String,
        /// What went wrong.
        message: String,
    },
    /// The source could not be built from its config (a missing feature or credential).
    #[error("source {source_name}: {message}")]
    Build {
        /// The source type or name.
        source_name: String,
        /// What is missing.
        message: String,
    },
    /// The cursor could not be read or written.
    #[error("source {source_name}: cursor: {source}")]
    State {
        /// The source.
        source_name: String,
        /// Cause.
        #[source]
        source: StateError,
    },
}

impl SourceError {
    /// Whether retrying (next interval) may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Read { .. } => true,
            SourceError::Build { .. } => false,
            SourceError::State { source, .. } => source.is_retryable(),
        }
    }
}

/// What a source hands back to be acknowledged once its batch went through the pipeline:
/// opaque to the runner except for the state writes that must commit with the batch.
#[derive(Debug, Default)]
pub struct Token {
    /// Cursor writes, made in the batch's detection transaction
    /// ([`crate::pipeline::Pipeline::process_with`]).
    pub(crate) staged: Vec<StagedWrite>,
    /// What an acknowledging source (an SQS queue: receipt handles) deletes in
    /// [`Source::commit`].
    pub(crate) acks: Vec<String>,
}

impl Token {
    /// The state writes to commit together with the batch's detection state.
    pub fn staged(&self) -> &[StagedWrite] {
        &self.staged
    }

    /// What the source deletes when the batch is acknowledged (SQS receipt handles).
    pub fn acks(&self) -> &[String] {
        &self.acks
    }
}

/// One poll's worth of records.
#[derive(Debug, Default)]
pub struct Batch {
    /// The records (at most the source's batch size, [`MAX_BATCH`] by default; may be empty).
    pub records: Vec<RawRecord>,
    /// Records that could not be decoded (logged by the source, counted by the runner).
    pub errors: usize,
    /// Acknowledges the batch: its staged writes go into the batch's transaction, then
    /// [`Source::commit`] takes it.
    pub token: Token,
}

/// A place `picket run` polls for records, keeping a cursor in the state store so that a
/// restart resumes exactly after the last committed batch.
#[async_trait::async_trait]
pub trait Source: Send {
    /// `<type>:<where>`, unique per configuration; the key of its status and cursors.
    fn name(&self) -> &str;
    /// How long to wait between polls once caught up.
    fn interval(&self) -> Duration;
    /// Consecutive failed intervals before the source is reported unhealthy.
    fn unhealthy_after(&self) -> u32;
    /// Reads the next batch after the last committed one (empty when there is nothing new).
    /// Polling again without committing returns the same records.
    async fn poll(&mut self) -> Result<Batch, SourceError>;
    /// Acknowledges a batch whose findings were recorded and notified.
    async fn commit(&mut self, token: Token) -> Result<(), SourceError>;
    /// Forgets positions held in memory: a batch failed after its transaction may or may not
    /// have committed, so the next poll starts from the cursors in the state store.
    fn reload(&mut self) {}
    /// Whether the last poll found nothing more to read (`picket run --once` stops then).
    fn caught_up(&self) -> bool;
}

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
        /// Consecutive failed intervals before a `source-unhealthy` finding (default 3).
        #[serde(default = "default_unhealthy_after")]
        unhealthy_after: u32,
        /// Most records (JSON Lines: lines) per batch (default 4096).
        #[serde(default = "default_batch_size")]
        batch_size: usize,
    },
    /// CloudTrail log objects announced through an SQS queue (feature `aws`).
    AwsS3(aws_s3::AwsS3Config),
    /// CloudTrail management events from `LookupEvents` (feature `aws`).
    AwsCloudtrail(aws_cloudtrail::AwsCloudtrailConfig),
    /// Microsoft Entra sign-in and directory audit logs from Graph (feature `azure`).
    Msgraph(msgraph::MsgraphConfig),
    /// Google Workspace audit activities from the Admin SDK Reports API (feature `gcp`).
    GoogleReports(google_reports::GoogleReportsConfig),
    /// Cloud Audit Logs of a project from Cloud Logging (feature `gcp`).
    GcpLogging(gcp_logging::GcpLoggingConfig),
}

fn default_interval() -> u64 {
    60
}

fn default_unhealthy_after() -> u32 {
    3
}

fn default_batch_size() -> usize {
    MAX_BATCH
}

impl SourceConfig {
    /// Every source type, for contract tests and docs.
    pub const ALL: &'static [&'static str] = &[
        "files",
        "aws_s3",
        "aws_cloudtrail",
        "msgraph",
        "google_reports",
        "gcp_logging",
    ];

    /// The source's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::Files { .. } => "files",
            SourceConfig::AwsS3(_) => "aws_s3",
            SourceConfig::AwsCloudtrail(_) => "aws_cloudtrail",
            SourceConfig::Msgraph(_) => "msgraph",
            SourceConfig::GoogleReports(_) => "google_reports",
            SourceConfig::GcpLogging(_) => "gcp_logging",
        }
    }

    /// Resolves relative paths and checks the entry.
    pub fn resolve(&mut self, key: &str, c: &mut Checker<'_>) {
        match self {
            SourceConfig::Files {
                path,
                interval_secs,
                unhealthy_after,
                batch_size,
                ..
            } => {
                c.path(path);
                c.between(format!("{key}.batch_size"), *batch_size as u64, 1, 65_536);
                c.at_least(format!("{key}.interval_secs"), *interval_secs, 1);
                c.at_least(
                    format!("{key}.unhealthy_after"),
                    (*unhealthy_after).into(),
                    1,
                );
            }
            SourceConfig::AwsS3(s) => s.resolve(key, c),
            SourceConfig::AwsCloudtrail(s) => s.resolve(key, c),
            SourceConfig::Msgraph(m) => m.resolve(key, c),
            SourceConfig::GoogleReports(g) => g.resolve(key, c),
            SourceConfig::GcpLogging(g) => g.resolve(key, c),
        }
    }

    /// Builds the source over the state store that keeps its cursors and the process's cloud
    /// clients (credentials, rate limits).
    pub fn build(
        &self,
        state: Arc<dyn StateStore>,
        clients: &crate::cloud::Clients,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(match self {
            SourceConfig::Files {
                path,
                kind,
                interval_secs,
                unhealthy_after,
                batch_size,
            } => Box::new(
                files::Files::new(
                    path.clone(),
                    *kind,
                    Duration::from_secs(*interval_secs),
                    *unhealthy_after,
                    state,
                )
                .with_batch_size(*batch_size),
            ),
            #[cfg(feature = "aws")]
            SourceConfig::AwsS3(s) => s.build(clients)?,
            #[cfg(feature = "aws")]
            SourceConfig::AwsCloudtrail(s) => s.build(state, clients)?,
            #[cfg(feature = "azure")]
            SourceConfig::Msgraph(m) => m.build(state, clients)?,
            #[cfg(feature = "gcp")]
            SourceConfig::GoogleReports(g) => g.build(state, clients)?,
            #[cfg(feature = "gcp")]
            SourceConfig::GcpLogging(g) => g.build(state, clients)?,
            // A cloud source in a build without its cloud's feature.
            #[allow(unreachable_patterns)]
            other => {
                let _ = clients;
                return Err(SourceError::Build {
                    source_name: other.type_name().into(),
                    message: format!(
                        "{} needs the `{}` feature (this build has none)",
                        other.type_name(),
                        other.feature().unwrap_or("?")
                    ),
                });
            }
        })
    }

    /// The cargo feature the source needs (`None`: always built).
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            SourceConfig::Files { .. } => None,
            SourceConfig::AwsS3(_) | SourceConfig::AwsCloudtrail(_) => Some("aws"),
            SourceConfig::Msgraph(_) => Some("azure"),
            SourceConfig::GoogleReports(_) | SourceConfig::GcpLogging(_) => Some("gcp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn files_keys_default_and_validate() {
        let c = Config::parse(
            "[[sources]]\ntype = \"files\"\npath = \"in\"\n",
            Path::new("picket.toml"),
            Path::new("/etc/picket"),
        )
        .unwrap();
        assert_eq!(
            c.raw.sources[0],
            SourceConfig::Files {
                path: PathBuf::from("/etc/picket/in"),
                kind: None,
                interval_secs: 60,
                unhealthy_after: 3,
                batch_size: MAX_BATCH,
            }
        );
        let errors = Config::parse(
            "[[sources]]\ntype = \"files\"\npath = \"in\"\nunhealthy_after = 0\nbatch_size = 0\n",
            Path::new("picket.toml"),
            Path::new("/etc/picket"),
        )
        .unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["sources[0].unhealthy_after", "sources[0].batch_size"]
        );
    }

    #[test]
    fn rest_source_keys_validate_overlaps_and_page_sizes() {
        let errors = Config::parse(
            "[[sources]]\ntype = \"msgraph\"\noverlap_secs = 60\npage_size = 5000\n\
             [[sources]]\ntype = \"google_reports\"\noverlap_secs = { login = 600 }\n\
             [[sources]]\ntype = \"gcp_logging\"\nproject = \"p\"\nlog_types = [\"audit\"]\n",
            Path::new("picket.toml"),
            Path::new("/etc/picket"),
        )
        .unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sources[0].overlap_secs",
                "sources[0].page_size",
                "sources[1].overlap_secs.login",
                "sources[2].log_types"
            ]
        );
    }
}
