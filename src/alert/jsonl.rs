//! `jsonl`: OCSF findings appended to a file, one JSON object per line.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use super::{AlertError, Notifier};
use crate::model::{Finding, ocsf};

/// Appends OCSF findings to a file.
pub struct Jsonl {
    out: Mutex<BufWriter<File>>,
}

impl Jsonl {
    /// Opens (creates) the file for appending.
    pub fn open(path: &Path) -> Result<Jsonl, AlertError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AlertError::Config {
                notifier: "jsonl",
                message: format!("{}: {source}", path.display()),
            })?;
        Ok(Jsonl {
            out: Mutex::new(BufWriter::new(file)),
        })
    }
}

#[async_trait::async_trait]
impl Notifier for Jsonl {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let line = ocsf::detection_finding(finding).to_string();
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{line}").map_err(|source| AlertError::Io {
            notifier: "jsonl",
            source,
        })
    }

    async fn flush(&self) -> Result<(), AlertError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.flush().map_err(|source| AlertError::Io {
            notifier: "jsonl",
            source,
        })
    }
}
