//! `files`: a file or a folder (recursive) of log files, watched for new and grown files.
//!
//! Every file has a cursor in the state store (namespace [`CURSOR_NS`], key
//! `files:<file path>`), a small JSON object:
//!
//! ```json
//! {"mode":"lines","ino":1234,"size":52311,"mtime_ns":1764316800000000000,
//!  "offset":52311,"lines":812,"records":812,"done":false}
//! ```
//!
//! * **JSON Lines** files (the first non-empty line is a complete JSON value) are read
//!   incrementally: `offset` is the byte just after the last line of the last committed batch,
//!   so a file that grows is read from there; a line not ended by a newline is left for later
//!   unless it is already a complete JSON value. A file smaller than its offset, or with
//!   another inode, was truncated or replaced and is read from the start.
//! * **Whole documents** (`{"Records":[..]}`, Graph pages, arrays) and gzip files are
//!   processed once: `records` counts the records already taken (a large document spans several
//!   batches), `done` marks the end. A document whose size or modification time changes is a
//!   new version and is read again from the start (the finding ledger drops what was already
//!   reported), which also covers a document caught half-written.
//!
//! A poll returns at most `batch_size` ([`MAX_BATCH`] by default) records (lines), all from
//! one file. The new cursor is
//! a staged write of the batch's [`Token`], committed in the batch's detection transaction.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::decode::{self, Limits};
use super::{Batch, CURSOR_NS, MAX_BATCH, Origin, Source, SourceError, Token};
use crate::model::RecordKind;
use crate::pipeline::StagedWrite;
use crate::state::StateStore;

/// Most bytes of JSON Lines read by one poll.
const MAX_CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// JSON Lines, read incrementally by byte offset.
    Lines,
    /// A whole document (or gzip), read once by record index.
    Document,
}

/// The position in one file (stored as JSON; see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// How the file is read.
    pub mode: Mode,
    /// Inode of the file (0 where the platform has none).
    pub ino: u64,
    /// Size of the file when it was last read.
    pub size: u64,
    /// Modification time when it was last read, in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// JSON Lines: bytes consumed.
    pub offset: u64,
    /// JSON Lines: lines consumed (for line numbers in messages).
    pub lines: u64,
    /// Records consumed (documents: the index to resume at).
    pub records: u64,
    /// A document was read to its end.
    pub done: bool,
}

/// What the file looks like now.
struct Stat {
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

fn stat(meta: &std::fs::Metadata) -> Stat {
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Stat {
        ino,
        size: meta.len(),
        mtime_ns,
    }
}

/// The `files` source.
pub struct Files {
    name: String,
    root: PathBuf,
    kind: Option<RecordKind>,
    interval: Duration,
    unhealthy_after: u32,
    state: Arc<dyn StateStore>,
    limits: Limits,
    batch_size: usize,
    /// Committed cursors by state key, loaded from the state store on first sight.
    cursors: HashMap<String, Cursor>,
    caught_up: bool,
}

impl Files {
    /// A source over `root` (a file or a folder).
    pub fn new(
        root: PathBuf,
        kind: Option<RecordKind>,
        interval: Duration,
        unhealthy_after: u32,
        state: Arc<dyn StateStore>,
    ) -> Files {
        // Cursor keys hold the file paths: absolute, so that they do not depend on the folder
        // picket was started in.
        let root = std::path::absolute(&root).unwrap_or(root);
        Files {
            name: format!("files:{}", root.display()),
            root,
            kind,
            interval,
            unhealthy_after,
            state,
            limits: Limits::default(),
            batch_size: MAX_BATCH,
            cursors: HashMap::new(),
            caught_up: false,
        }
    }

    /// Sets the most records (lines) per batch.
    pub fn with_batch_size(mut self, n: usize) -> Files {
        self.batch_size = n.max(1);
        self
    }

    /// The state key of a file's cursor.
    pub fn cursor_key(path: &Path) -> String {
        format!("files:{}", path.display())
    }

    fn read_err(&self, message: String) -> SourceError {
        SourceError::Read {
            source_name: self.name.clone(),
            message,
        }
    }

    /// The committed cursor of a file (memory, else the state store).
    fn cursor(&mut self, key: &str) -> Result<Option<Cursor>, SourceError> {
        if let Some(c) = self.cursors.get(key) {
            return Ok(Some(c.clone()));
        }
        let stored = self
            .state
            .get(CURSOR_NS, key, chrono::Utc::now())
            .map_err(|source| SourceError::State {
                source_name: self.name.clone(),
                source,
            })?;
        let Some(v) = stored else { return Ok(None) };
        match serde_json::from_slice::<Cursor>(&v.value) {
            Ok(c) => {
                self.cursors.insert(key.to_string(), c.clone());
                Ok(Some(c))
            }
            Err(e) => {
                tracing::warn!(source = %self.name, cursor = %key, error = %e, "cursor does not decode; reading the file from the start");
                Ok(None)
            }
        }
    }

    /// Where to read a file from, if it has anything new.
    fn plan(&self, path: &Path, cur: Option<Cursor>, now: &Stat) -> Option<Cursor> {
        let fresh = || -> Option<Cursor> {
            Some(Cursor {
                mode: detect_mode(path, self.limits)?,
                ino: now.ino,
                size: 0,
                mtime_ns: 0,
                offset: 0,
                lines: 0,
                records: 0,
                done: false,
            })
        };
        let Some(c) = cur else { return fresh() };
        if c.ino != now.ino && c.ino != 0 && now.ino != 0 {
            tracing::info!(source = %self.name, file = %path.display(), "file replaced; reading it from the start");
            return fresh();
        }
        match c.mode {
            Mode::Lines if now.size < c.offset => {
                tracing::info!(source = %self.name, file = %path.display(), "file truncated; reading it from the start");
                fresh()
            }
            Mode::Lines if now.size > c.offset => Some(c),
            Mode::Lines => None,
            Mode::Document if (c.size, c.mtime_ns) != (now.size, now.mtime_ns) => {
                if c.done || c.records > 0 {
                    tracing::info!(source = %self.name, file = %path.display(), "document changed; reading the new version");
                }
                fresh()
            }
            Mode::Document if !c.done => Some(c),
            Mode::Document => None,
        }
    }

    /// Reads up to a batch of lines of a JSON Lines file from the cursor.
    fn read_lines(
        &self,
        path: &Path,
        mut c: Cursor,
        now: &Stat,
        batch: &mut Batch,
    ) -> Result<Cursor, SourceError> {
        let io = |e: std::io::Error| self.read_err(format!("{}: {e}", path.display()));
        let mut file = File::open(path).map_err(io)?;
        file.seek(SeekFrom::Start(c.offset)).map_err(io)?;
        let mut reader = BufReader::new(file.take(now.size.saturating_sub(c.offset)));
        let source: Arc<str> = Arc::from(path.display().to_string());
        let mut line = Vec::new();
        let mut consumed = 0usize;
        let mut lines = 0usize;
        while lines < self.batch_size && consumed < MAX_CHUNK_BYTES {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            let body = trim(&line);
            if line.last() != Some(&b'\n')
                && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err()
            {
                // A line still being written: wait for its end.
                break;
            }
            consumed += n;
            lines += 1;
            let line_no = c.lines as usize + lines;
            if body.is_empty() {
                continue;
            }
            let origin = |index: u64| Origin {
                source: source.clone(),
                index: index as usize,
                line: Some(line_no),
            };
            if body.len() > self.limits.max_line_bytes {
                batch.errors += 1;
                tracing::warn!(source = %self.name, origin = %origin(c.records), "line longer than the limit; skipped");
                continue;
            }
            for item in decode::from_bytes(body.to_vec(), &source, self.limits) {
                match item {
                    Ok(mut rec) => {
                        rec.origin = origin(c.records);
                        rec.kind = self.kind;
                        c.records += 1;
                        batch.records.push(rec);
                    }
                    Err(e) => {
                        batch.errors += 1;
                        tracing::warn!(source = %self.name, origin = %origin(c.records), error = %e, "record skipped");
                    }
                }
            }
        }
        c.offset += consumed as u64;
        c.lines += lines as u64;
        c.size = now.size;
        c.mtime_ns = now.mtime_ns;
        Ok(c)
    }

    /// Reads up to a batch of records of a document from the cursor's record index.
    fn read_document(
        &self,
        path: &Path,
        mut c: Cursor,
        now: &Stat,
        batch: &mut Batch,
    ) -> Result<Cursor, SourceError> {
        let mut records = decode::open_file(path, self.limits)
            .map_err(|e| self.read_err(e.to_string()))?
            .skip(c.records as usize);
        let mut taken = 0usize;
        loop {
            if taken >= self.batch_size {
                break;
            }
            match records.next() {
                None => {
                    c.done = true;
                    break;
                }
                Some(Ok(mut rec)) => {
                    rec.kind = self.kind;
                    batch.records.push(rec);
                }
                Some(Err(e)) => {
                    batch.errors += 1;
                    tracing::warn!(source = %self.name, error = %e, "record skipped");
                }
            }
            taken += 1;
        }
        // The end may coincide with a full batch: look once more.
        if !c.done && records.next().is_none() {
            c.done = true;
        }
        c.records += taken as u64;
        c.size = now.size;
        c.mtime_ns = now.mtime_ns;
        Ok(c)
    }
}

/// JSON Lines when the first non-empty line is a complete JSON value; a document otherwise
/// (and for gzip). `None`: nothing to decide on yet (empty, unreadable).
fn detect_mode(path: &Path, limits: Limits) -> Option<Mode> {
    let file = File::open(path).ok()?;
    let mut reader = BufReader::new(file.take(limits.max_line_bytes as u64));
    let head = reader.fill_buf().ok()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Some(Mode::Document);
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).ok()?;
        if n == 0 {
            return None;
        }
        let body = trim(&line);
        if body.is_empty() {
            continue;
        }
        let complete = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
        return Some(if complete {
            Mode::Lines
        } else {
            Mode::Document
        });
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[async_trait::async_trait]
impl Source for Files {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn unhealthy_after(&self) -> u32 {
        self.unhealthy_after
    }

    async fn poll(&mut self) -> Result<Batch, SourceError> {
        let paths = decode::expand(&self.root).map_err(|e| self.read_err(e.to_string()))?;
        for path in paths {
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(source = %self.name, file = %path.display(), error = %e, "file vanished");
                    continue;
                }
            };
            let now = stat(&meta);
            let key = Files::cursor_key(&path);
            let committed = self.cursor(&key)?;
            let Some(from) = self.plan(&path, committed, &now) else {
                continue;
            };
            let mut batch = Batch::default();
            let next = match from.mode {
                Mode::Lines => self.read_lines(&path, from.clone(), &now, &mut batch)?,
                Mode::Document => self.read_document(&path, from.clone(), &now, &mut batch)?,
            };
            if next == from && batch.records.is_empty() && batch.errors == 0 {
                // Only an unfinished last line: nothing to hand out yet.
                continue;
            }
            let value = serde_json::to_vec(&next).map_err(|e| self.read_err(e.to_string()))?;
            batch.token = Token {
                staged: vec![StagedWrite {
                    ns: CURSOR_NS,
                    key,
                    value,
                }],
                ..Token::default()
            };
            self.caught_up = false;
            return Ok(batch);
        }
        self.caught_up = true;
        Ok(Batch::default())
    }

    async fn commit(&mut self, token: Token) -> Result<(), SourceError> {
        for w in token.staged {
            if w.ns != CURSOR_NS {
                continue;
            }
            let c = serde_json::from_slice::<Cursor>(&w.value)
                .map_err(|e| self.read_err(format!("cursor {}: {e}", w.key)))?;
            self.cursors.insert(w.key, c);
        }
        Ok(())
    }

    fn reload(&mut self) {
        self.cursors.clear();
    }

    fn caught_up(&self) -> bool {
        self.caught_up
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::json::JsonValueTrait;
    use crate::state::MemoryStore;

    fn source(root: &Path, state: Arc<dyn StateStore>) -> Files {
        Files::new(root.to_path_buf(), None, Duration::from_secs(1), 3, state)
    }

    /// Polls and commits (writing the staged cursor, as the pipeline would) until caught up;
    /// returns the `eventID`s read.
    async fn drain(s: &mut Files, state: &Arc<dyn StateStore>) -> Vec<String> {
        let mut ids = Vec::new();
        loop {
            let batch = s.poll().await.unwrap();
            if s.caught_up() {
                return ids;
            }
            for r in &batch.records {
                ids.push(r.value["eventID"].as_str().unwrap().to_string());
            }
            for w in batch.token.staged() {
                state
                    .put(w.ns, &w.key, &w.value, None, chrono::Utc::now())
                    .unwrap();
            }
            s.commit(batch.token).await.unwrap();
        }
    }

    fn line(id: &str) -> String {
        format!("{{\"eventID\":\"{id}\",\"eventName\":\"ListUsers\"}}\n")
    }

    #[tokio::test]
    async fn a_growing_json_lines_file_is_read_incrementally_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        std::fs::write(&path, format!("{}{}", line("1"), line("2"))).unwrap();
        let mut s = source(dir.path(), state.clone());
        assert_eq!(drain(&mut s, &state).await, ["1", "2"]);
        // A half-written line waits for its end.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(line("3").as_bytes()).unwrap();
        f.write_all(b"{\"eventID\":\"4\",").unwrap();
        assert_eq!(drain(&mut s, &state).await, ["3"]);
        // A new process resumes from the stored cursor.
        let mut s = source(dir.path(), state.clone());
        f.write_all(b"\"eventName\":\"X\"}\n").unwrap();
        assert_eq!(drain(&mut s, &state).await, ["4"]);
        assert!(drain(&mut s, &state).await.is_empty());
    }

    #[tokio::test]
    async fn an_uncommitted_batch_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), line("1")).unwrap();
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let mut s = source(dir.path(), state.clone());
        let first = s.poll().await.unwrap();
        assert_eq!(first.records.len(), 1);
        let again = s.poll().await.unwrap();
        assert_eq!(again.records.len(), 1);
        assert_eq!(drain(&mut s, &state).await, ["1"]);
    }

    #[tokio::test]
    async fn a_document_is_read_once_in_bounded_batches_and_again_when_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct.json");
        let records: Vec<_> = (0..MAX_BATCH + 10)
            .map(|i| serde_json::json!({"eventID": i.to_string(), "eventName": "ListUsers"}))
            .collect();
        let doc = serde_json::to_string_pretty(&serde_json::json!({ "Records": records })).unwrap();
        std::fs::write(&path, &doc).unwrap();
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let mut s = source(dir.path(), state.clone());
        let first = s.poll().await.unwrap();
        assert_eq!(first.records.len(), MAX_BATCH);
        s.commit(first.token).await.unwrap();
        let ids = drain(&mut s, &state).await;
        assert_eq!(ids.len(), 10);
        assert_eq!(ids[0], MAX_BATCH.to_string());
        assert!(drain(&mut s, &state).await.is_empty());
        // A new version (another inode) is read from the start.
        let tmp = dir.path().join(".tmp");
        std::fs::write(&tmp, doc.replace("ListUsers", "GetUser")).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(drain(&mut s, &state).await.len(), MAX_BATCH + 10);
    }

    #[tokio::test]
    async fn a_missing_folder_is_a_poll_error() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let mut s = source(Path::new("/nonexistent/picket-test"), state);
        let e = s.poll().await.unwrap_err();
        assert!(e.to_string().contains("picket-test"), "{e}");
    }
}
