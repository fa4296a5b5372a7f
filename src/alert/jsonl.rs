//! `jsonl`: OCSF findings appended to a file, one JSON object per line.
//!
//! The file is also the notifier's memory: on open it reads the finding uids already in it and
//! never writes one of them again, so a process killed between writing a finding and recording
//! it in the finding ledger does not write it twice when the finding is sent again. Each
//! finding is one `write` of a whole line; a process killed inside that write can still leave
//! a partial last line (the kernel may stop a write between pages), which the next open cuts
//! off: that finding was not recorded, so it is sent and written again in full.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use super::{AlertError, Notifier};
use crate::model::{Finding, ocsf};

/// Appends OCSF findings to a file.
pub struct Jsonl {
    out: Mutex<Inner>,
}

struct Inner {
    file: File,
    written: HashSet<String>,
}

impl Jsonl {
    /// Opens (creates) the file for appending and reads the uids of the findings it holds.
    pub fn open(path: &Path) -> Result<Jsonl, AlertError> {
        let config = |message: String| AlertError::Config {
            notifier: "jsonl",
            message: format!("{}: {message}", path.display()),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| config(e.to_string()))?;
        let mut written = HashSet::new();
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        let mut complete = 0u64;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| config(e.to_string()))?;
            if n == 0 {
                break;
            }
            if line[n - 1] != b'\n' {
                break;
            }
            complete += n as u64;
            if let Some(uid) = finding_uid(&line) {
                written.insert(uid);
            }
        }
        drop(reader);
        let len = file.metadata().map_err(|e| config(e.to_string()))?.len();
        if len > complete {
            tracing::warn!(file = %path.display(), bytes = len - complete, "cutting off a partial last line left by an interrupted write");
            file.set_len(complete).map_err(|e| config(e.to_string()))?;
        }
        let _ = file.seek(SeekFrom::End(0));
        Ok(Jsonl {
            out: Mutex::new(Inner { file, written }),
        })
    }
}

/// The `finding_info.uid` of one OCSF line, when it is one.
fn finding_uid(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Line {
        finding_info: Info,
    }
    #[derive(serde::Deserialize)]
    struct Info {
        uid: String,
    }
    serde_json::from_slice::<Line>(line)
        .ok()
        .map(|l| l.finding_info.uid)
}

#[async_trait::async_trait]
impl Notifier for Jsonl {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    async fn notify(&self, finding: &Finding) -> Result<(), AlertError> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.written.contains(&finding.uid) {
            tracing::debug!(finding = %finding.uid, "already in the file; not written again");
            return Ok(());
        }
        let mut line = ocsf::detection_finding(finding).to_string();
        line.push('\n');
        out.file
            .write_all(line.as_bytes())
            .map_err(|source| AlertError::Io {
                notifier: "jsonl",
                source,
            })?;
        out.written.insert(finding.uid.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[tokio::test]
    async fn a_finding_already_in_the_file_is_not_written_again_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let a = Finding::new("x", "a", Severity::Low, vec![]);
        let mut b = Finding::new("y", "b", Severity::Low, vec![]);
        b.uid = "other".into();
        {
            let j = Jsonl::open(&path).unwrap();
            j.notify(&a).await.unwrap();
            j.notify(&a).await.unwrap();
        }
        // A torn last line is cut off before anything new is written.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"finding_in")
            .unwrap();
        let j = Jsonl::open(&path).unwrap();
        j.notify(&a).await.unwrap();
        j.notify(&b).await.unwrap();
        let text = read(&path);
        let uids: Vec<_> = text
            .lines()
            .filter_map(|l| finding_uid(l.as_bytes()))
            .collect();
        assert_eq!(uids, [a.uid.clone(), "other".to_string()]);
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
