//! Bytes -> raw records. Every source hands its bytes here: files, S3 objects, Graph pages,
//! SQS bodies. Understands `.gz`, JSON documents (`{"Records":[..]}` from CloudTrail,
//! `{"value":[..]}` Graph pages, `{"items":[..]}` Reports pages, `{"entries":[..]}` Cloud
//! Logging pages, plain arrays, one object) and JSON Lines, whatever the file is called.
//!
//! Bad input never stops a file: each broken record is reported with its file and record index
//! (line for JSON Lines) and the decoder goes on with the next. Sizes are bounded so a hostile
//! file cannot make us allocate without limit.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::json::{Fields, JsonValueMutTrait, JsonValueTrait, Raw, Value};
use chrono::{DateTime, Utc};
use serde::de::IgnoredAny;

use crate::model::RecordKind;

/// Where a record came from, for error messages and stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file, object key or endpoint.
    pub source: Arc<str>,
    /// Zero-based index of the record within its source.
    pub index: usize,
    /// One-based line, for JSON Lines.
    pub line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{} (record {})", self.source, line, self.index),
            None => write!(f, "{} (record {})", self.source, self.index),
        }
    }
}

/// One raw record as a source delivered it.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The record, its root members indexed.
    pub value: Raw,
    /// The kind, when the source knows it (otherwise recognised from the shape).
    pub kind: Option<RecordKind>,
    /// Where it came from.
    pub origin: Origin,
}

impl RawRecord {
    /// The record's kind: the source's, else recognised from its shape.
    pub fn detected_kind(&self) -> Option<RecordKind> {
        self.kind
            .or_else(|| crate::normalize::detect_kind_in(self.value.fields()))
    }

    /// Its event time ([`record_time`]), when its kind is known or recognised.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.detected_kind()
            .and_then(|k| record_time(k, self.value.fields()))
    }
}

/// Limits that keep hostile input bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON document (after decompression) read whole, in bytes.
    pub max_document_bytes: u64,
    /// Longest JSON Lines line, in bytes.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 512 * 1024 * 1024,
            max_line_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why bytes could not be decoded into a record.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A record (or the whole document) is not valid JSON.
    #[error("{origin}: invalid JSON: {message}")]
    Json {
        /// Where.
        origin: Origin,
        /// serde_json's message (with line and column inside a document).
        message: String,
    },
    /// The gzip stream is broken (truncated, corrupt).
    #[error("{origin}: gzip: {message}")]
    Gzip {
        /// Where it broke: the record index reached so far.
        origin: Origin,
        /// What broke.
        message: String,
    },
    /// Input larger than the limits.
    #[error("{origin}: {what} larger than {limit} bytes")]
    TooLarge {
        /// Where.
        origin: Origin,
        /// A document or a line.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The file is not text (NUL bytes).
    #[error("{origin}: binary data, not JSON")]
    Binary {
        /// Where.
        origin: Origin,
    },
}

impl DecodeError {
    /// Where the error happened.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            DecodeError::Io { .. } => None,
            DecodeError::Json { origin, .. }
            | DecodeError::Gzip { origin, .. }
            | DecodeError::TooLarge { origin, .. }
            | DecodeError::Binary { origin } => Some(origin),
        }
    }
}

/// Every regular file under `path` (recursively, sorted), or `path` itself.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, DecodeError> {
    let io = |source| DecodeError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| DecodeError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| DecodeError::Io {
                path: dir.display().to_string(),
                source,
            })?;
            let p = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type().map_err(|source| DecodeError::Io {
                path: p.display().to_string(),
                source,
            })?;
            if ft.is_dir() {
                stack.push(p);
            } else if (ft.is_file() || (ft.is_symlink() && p.is_file())) && is_log_file(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a file found in a folder is one replay reads: `.json`, `.jsonl`, `.ndjson`, `.log`,
/// `.gz` of those, or no extension. (A file named explicitly is always read.)
fn is_log_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        None => true,
        Some((_, ext)) => matches!(ext, "json" | "jsonl" | "ndjson" | "log"),
    }
}

/// Opens a file for decoding.
pub fn open_file(path: &Path, limits: Limits) -> Result<Records, DecodeError> {
    let file = File::open(path).map_err(|source| DecodeError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Records::new(
        Box::new(BufReader::with_capacity(64 * 1024, file)),
        Arc::from(path.display().to_string()),
        limits,
    ))
}

/// Decodes bytes held in memory (an S3 object, an HTTP body): a `Vec<u8>`, or an
/// `Arc<[u8]>` shared without copying.
pub fn from_bytes<B>(bytes: B, source: &str, limits: Limits) -> Records
where
    B: AsRef<[u8]> + Send + 'static,
{
    Records::new(
        Box::new(std::io::Cursor::new(bytes)),
        Arc::from(source),
        limits,
    )
}

enum Mode {
    /// Not looked at yet.
    Start,
    /// One JSON value per line; the number of lines read so far.
    Lines(usize),
    /// A whole document was read; its records are in `pending`.
    Document,
    /// Finished (or failed beyond recovery).
    Done,
}

/// A stream of records from one input: `Iterator<Item = Result<RawRecord, DecodeError>>`.
pub struct Records {
    reader: Box<dyn BufRead + Send>,
    source: Arc<str>,
    limits: Limits,
    mode: Mode,
    index: usize,
    buf: Vec<u8>,
    /// Records decoded but not handed out yet, with their line.
    pending: VecDeque<Pending>,
    /// The first line, read while choosing the mode.
    first_line: Option<Vec<u8>>,
}

impl Records {
    fn new(reader: Box<dyn BufRead + Send>, source: Arc<str>, limits: Limits) -> Records {
        Records {
            reader,
            source,
            limits,
            mode: Mode::Start,
            index: 0,
            buf: Vec::new(),
            pending: VecDeque::new(),
            first_line: None,
        }
    }

    /// The input's name.
    pub fn source(&self) -> &Arc<str> {
        &self.source
    }

    fn origin(&self, line: Option<usize>) -> Origin {
        Origin {
            source: self.source.clone(),
            index: self.index,
            line,
        }
    }

    /// Looks at the first bytes: gzip is unwrapped; then JSON Lines when the first non-empty
    /// line is a complete JSON value on its own, else one JSON document.
    fn start(&mut self) -> Result<(), DecodeError> {
        self.mode = Mode::Done;
        let gzip = match self.reader.fill_buf() {
            Ok(head) => head.starts_with(&[0x1f, 0x8b]),
            Err(e) => return Err(self.io_error(e)),
        };
        if gzip {
            let inner = std::mem::replace(&mut self.reader, Box::new(std::io::empty()));
            let gz = flate2::bufread::MultiGzDecoder::new(inner);
            self.reader = Box::new(BufReader::with_capacity(64 * 1024, gz));
        }
        // Read up to the first non-empty line to choose the mode.
        let mut skipped = 0;
        loop {
            self.buf.clear();
            let n = match read_line_bounded(
                &mut self.reader,
                &mut self.buf,
                self.limits.max_line_bytes,
            ) {
                Ok(n) => n,
                Err(e) => {
                    let err = self.read_error(e, Some(skipped + 1));
                    if matches!(err, DecodeError::TooLarge { .. }) {
                        // An oversized first line: skip it and read the rest as JSON Lines.
                        self.index += 1;
                        self.mode = Mode::Lines(skipped + 1);
                    }
                    return Err(err);
                }
            };
            if n == 0 {
                return Ok(());
            }
            if memchr::memchr(0, &self.buf).is_some() {
                return Err(DecodeError::Binary {
                    origin: self.origin(None),
                });
            }
            if !trim(&self.buf).is_empty() {
                break;
            }
            skipped += 1;
        }
        if serde_json::from_slice::<IgnoredAny>(trim(&self.buf)).is_ok() {
            // A complete value on its own line: JSON Lines (a one-line document is the same).
            self.first_line = Some(std::mem::take(&mut self.buf));
            self.mode = Mode::Lines(skipped);
            return Ok(());
        }
        // A multi-line document: read it whole (bounded) and split it into records.
        let mut doc = std::mem::take(&mut self.buf);
        let limit = self.limits.max_document_bytes;
        let mut rest = (&mut self.reader).take(limit.saturating_sub(doc.len() as u64) + 1);
        let read = rest.read_to_end(&mut doc);
        if let Err(e) = read {
            // Keep what was read: the records before a truncation still count.
            let err = self.read_error(e, None);
            self.split_document(&doc);
            self.mode = Mode::Document;
            return Err(err);
        }
        if doc.len() as u64 > limit {
            return Err(DecodeError::TooLarge {
                origin: self.origin(None),
                what: "document",
                limit,
            });
        }
        if memchr::memchr(0, &doc).is_some() {
            return Err(DecodeError::Binary {
                origin: self.origin(None),
            });
        }
        let error = self.split_document(&doc);
        self.mode = Mode::Document;
        match error {
            Some((message, at)) => Err(DecodeError::Json {
                origin: Origin {
                    index: at,
                    ..self.origin(None)
                },
                message,
            }),
            None => Ok(()),
        }
    }

    /// Parses the values of a document into `pending`; returns the parse error, if any. When
    /// the document is broken (truncated, corrupt), the records of its array that come before
    /// the damage are still kept.
    fn split_document(&mut self, doc: &[u8]) -> Option<(String, usize)> {
        // The usual document is one value (`{"Records":[...]}`): parsed at once.
        if !crate::json::too_deep(doc)
            && let Ok(v) = sonic_rs::from_slice::<Value>(doc)
        {
            unwrap_container(v, None, &mut self.pending);
            return None;
        }
        // Several values in a row, or damage: serde_json's stream finds where each value
        // ends (without building it) and where the damage starts.
        let mut stream = serde_json::Deserializer::from_slice(doc).into_iter::<IgnoredAny>();
        let mut offset = 0;
        while let Some(v) = stream.next() {
            let end = stream.byte_offset();
            match v
                .map_err(|e| e.to_string())
                .and_then(|_| crate::json::parse(&doc[offset..end]))
            {
                Ok(v) => {
                    unwrap_container(v, None, &mut self.pending);
                    offset = end;
                }
                Err(msg) => {
                    let salvaged = salvage_array(&doc[offset..]);
                    let n = salvaged.len();
                    self.pending
                        .extend(salvaged.into_iter().map(|r| (Raw::new(r), None, None)));
                    let message = if n > 0 {
                        format!("{msg} (the {n} record(s) before it were kept)")
                    } else {
                        msg
                    };
                    return Some((message, self.pending.len()));
                }
            }
        }
        None
    }

    fn io_error(&self, e: std::io::Error) -> DecodeError {
        DecodeError::Io {
            path: self.source.to_string(),
            source: e,
        }
    }

    fn read_error(&self, e: std::io::Error, line: Option<usize>) -> DecodeError {
        if e.kind() == std::io::ErrorKind::InvalidData && e.to_string() == LINE_TOO_LONG {
            return DecodeError::TooLarge {
                origin: self.origin(line),
                what: "line",
                limit: self.limits.max_line_bytes as u64,
            };
        }
        match e.kind() {
            std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::InvalidInput
            | std::io::ErrorKind::UnexpectedEof => DecodeError::Gzip {
                origin: self.origin(line),
                message: if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "truncated stream".to_string()
                } else {
                    e.to_string()
                },
            },
            _ => self.io_error(e),
        }
    }

    /// Reads the next line in JSON Lines mode into `pending`, or returns an error / end.
    fn read_next_line(&mut self, lines: usize) -> Option<Result<(), DecodeError>> {
        let line = lines + 1;
        self.mode = Mode::Lines(line);
        // The line is read into `buf`, which is reused from line to line.
        match self.first_line.take() {
            Some(first) => self.buf = first,
            None => {
                self.buf.clear();
                match read_line_bounded(&mut self.reader, &mut self.buf, self.limits.max_line_bytes)
                {
                    Ok(0) => {
                        self.mode = Mode::Done;
                        return None;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let err = self.read_error(e, Some(line));
                        self.index += 1;
                        // A line too long is skipped; a broken stream ends the input.
                        if !matches!(err, DecodeError::TooLarge { .. }) {
                            self.mode = Mode::Done;
                        }
                        return Some(Err(err));
                    }
                }
            }
        }
        let t = trim(&self.buf);
        if t.is_empty() {
            return Some(Ok(()));
        }
        let parsed = if memchr::memchr(0, t).is_some() {
            Err(None)
        } else {
            crate::json::parse(t).map_err(Some)
        };
        let parsed = parsed.map_err(|message| match message {
            None => DecodeError::Binary {
                origin: self.origin(Some(line)),
            },
            Some(message) => DecodeError::Json {
                origin: self.origin(Some(line)),
                message,
            },
        });
        match parsed {
            Ok(v) => {
                unwrap_container(v, Some(line), &mut self.pending);
                Some(Ok(()))
            }
            Err(e) => {
                self.index += 1;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Records {
    type Item = Result<RawRecord, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((value, kind, line)) = self.pending.pop_front() {
                let origin = self.origin(line);
                self.index += 1;
                return Some(Ok(RawRecord {
                    value,
                    kind,
                    origin,
                }));
            }
            match self.mode {
                Mode::Start => {
                    if let Err(e) = self.start() {
                        return Some(Err(e));
                    }
                }
                Mode::Lines(lines) => match self.read_next_line(lines)? {
                    Ok(()) => {}
                    Err(e) => return Some(Err(e)),
                },
                Mode::Document => self.mode = Mode::Done,
                Mode::Done => return None,
            }
        }
    }
}

const LINE_TOO_LONG: &str = "line longer than the limit";

/// The keys whose array value holds the records of a container, in the order they are tried.
const CONTAINER_KEYS: [&str; 4] = ["Records", "value", "items", "entries"];

/// A record waiting to be returned: its value, its kind when already recognised, its line.
type Pending = (Raw, Option<RecordKind>, Option<usize>);

/// Splits the containers providers wrap records in, into `out`. A value recognised as a
/// record is no container, and keeps the kind it was recognised as (the pipeline would
/// otherwise walk its members again to find it).
fn unwrap_container(v: Value, line: Option<usize>, out: &mut VecDeque<Pending>) {
    if v.is_array() {
        out.extend(
            v.into_array()
                .unwrap_or_default()
                .into_iter()
                .map(|r| (Raw::new(r), None, line)),
        );
        return;
    }
    let raw = Raw::new(v);
    if let Some(kind) = crate::normalize::detect_kind_in(raw.fields()) {
        out.push_back((raw, Some(kind), line));
        return;
    }
    if let Some(key) = container_key(raw.fields()) {
        let items = raw
            .into_value()
            .as_object_mut()
            .and_then(|o| o.remove(&key))
            .and_then(Value::into_array)
            .unwrap_or_default();
        out.extend(items.into_iter().map(|r| (Raw::new(r), None, line)));
        return;
    }
    out.push_back((raw, None, line));
}

/// The container key whose array holds `v`'s records, unless `v` is an object that looks like
/// a record itself (a CloudTrail record, a `LogEntry`, a directory audit or a Reports
/// activity), or holds no such array (a page object such as `{"value":[...],
/// "@odata.nextLink":...}` has no record fields of its own). One pass over the members: a record has dozens, and
/// looking up each of eight names would walk them eight times.
fn container_key(fields: &Fields<'_>) -> Option<&'static str> {
    // As `get` would: the first member of each name decides.
    let (mut seen, mut arrays, mut kind_seen) = (0u8, 0u8, false);
    for (key, value) in fields.iter() {
        match key {
            "eventVersion" | "protoPayload" | "activityDisplayName" => return None,
            "kind" if !kind_seen => {
                kind_seen = true;
                if value.as_str() == Some("admin#reports#activity") {
                    return None;
                }
            }
            _ => {
                if let Some(i) = CONTAINER_KEYS.iter().position(|k| *k == key) {
                    let bit = 1u8 << i;
                    if seen & bit == 0 && value.is_array() {
                        arrays |= bit;
                    }
                    seen |= bit;
                }
            }
        }
    }
    (0..CONTAINER_KEYS.len())
        .find(|i| arrays & (1 << i) != 0)
        .map(|i| CONTAINER_KEYS[i])
}

/// Reads the complete elements of the record array at the start of a broken document (a plain
/// array, or the first array-valued key of an object such as `"Records"`), stopping at the
/// damage.
fn salvage_array(doc: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let ws = |b: &u8| b.is_ascii_whitespace();
    let Some(first) = doc.iter().position(|b| !ws(b)) else {
        return out;
    };
    let mut pos = match doc[first] {
        b'[' => first + 1,
        b'{' => {
            // The array of the first container key, if the document starts with one.
            let Some(open) = doc.iter().position(|&b| b == b'[') else {
                return out;
            };
            let key_part = &doc[first..open];
            let known = [
                &b"\"Records\""[..],
                b"\"value\"",
                b"\"items\"",
                b"\"entries\"",
            ];
            if !known
                .iter()
                .any(|k| key_part.windows(k.len()).any(|w| w == *k))
            {
                return out;
            }
            open + 1
        }
        _ => return out,
    };
    loop {
        while pos < doc.len() && (ws(&doc[pos]) || doc[pos] == b',') {
            pos += 1;
        }
        if pos >= doc.len() || doc[pos] == b']' {
            return out;
        }
        let mut it = serde_json::Deserializer::from_slice(&doc[pos..]).into_iter::<IgnoredAny>();
        let Some(Ok(_)) = it.next() else {
            return out;
        };
        let end = pos + it.byte_offset();
        match crate::json::parse(&doc[pos..end]) {
            Ok(v) => out.push(v),
            Err(_) => return out,
        }
        pos = end;
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
    let t = &b[start..end.max(start)];
    t.strip_prefix(b"\xef\xbb\xbf").unwrap_or(t)
}

/// Reads one line into `buf`, failing with InvalidData ("line longer ...") past `max`.
/// `read_until` would do, but the standard library's byte search is not vectorised and cost
/// more than reading the line: the `memchr` crate's is.
fn read_line_bounded(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    let mut left = max.saturating_sub(buf.len()).saturating_add(1);
    let mut n = 0;
    while left > 0 {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let window = &available[..available.len().min(left)];
        let (used, ended) = match memchr::memchr(b'\n', window) {
            Some(i) => (i + 1, true),
            None => (window.len(), false),
        };
        buf.extend_from_slice(&window[..used]);
        r.consume(used);
        n += used;
        left -= used;
        if ended {
            break;
        }
    }
    if buf.len() > max {
        // Skip the rest of this line so the next read starts on the next one.
        let ended = buf.last() == Some(&b'\n');
        buf.clear();
        if !ended {
            skip_line(r)?;
        }
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            LINE_TOO_LONG,
        ));
    }
    Ok(n)
}

fn skip_line(r: &mut dyn BufRead) -> std::io::Result<()> {
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        if let Some(i) = memchr::memchr(b'\n', available) {
            r.consume(i + 1);
            return Ok(());
        }
        let n = available.len();
        r.consume(n);
    }
}

/// The event time of a raw record, read from the field its kind keeps it in, without
/// normalizing it. Replay orders records by this.
pub fn record_time(kind: RecordKind, raw: &Fields<'_>) -> Option<DateTime<Utc>> {
    let s = match kind {
        RecordKind::Cloudtrail => raw
            .get("eventTime")
            .or_else(|| raw.get("detail").and_then(|d| d.get("eventTime")))
            .or_else(|| raw.get("time")),
        RecordKind::EntraSignin => raw.get("createdDateTime"),
        RecordKind::EntraAudit => raw.get("activityDateTime"),
        RecordKind::AzureMonitorSignin | RecordKind::AzureMonitorAudit => raw.get("time"),
        RecordKind::GoogleReports => raw.get("id").and_then(|id| id.get("time")),
        RecordKind::GcpAudit => raw.get("timestamp").or_else(|| raw.get("receiveTimestamp")),
        RecordKind::AzureActivity => raw
            .get("time")
            .or_else(|| raw.get("eventTimestamp"))
            .or_else(|| raw.get("TimeGenerated")),
        RecordKind::M365Audit => raw
            .get("CreationTime")
            .or_else(|| raw.get("AuditData").and_then(|d| d.get("CreationTime")))
            .or_else(|| raw.get("TimeGenerated")),
        RecordKind::Okta => raw.get("published"),
    }?;
    // As the normalizers read times (the Unified Audit Log writes UTC times without an
    // offset).
    crate::normalize::parse_time(s.as_str()?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn decode(bytes: &[u8], limits: Limits) -> (Vec<RawRecord>, Vec<DecodeError>) {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for r in from_bytes(bytes.to_vec(), "input", limits) {
            match r {
                Ok(r) => ok.push(r),
                Err(e) => errors.push(e),
            }
        }
        (ok, errors)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn json_lines_keep_going_past_a_bad_line() {
        let (ok, errors) = decode(b"{\"a\":1}\n{not json\n\n{\"a\":3}\n", Limits::default());
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].value["a"], 3);
        assert_eq!(ok[1].origin.line, Some(4));
        assert_eq!(errors.len(), 1);
        let o = errors[0].origin().unwrap();
        assert_eq!((o.line, o.index), (Some(2), 1));
        assert!(
            errors[0]
                .to_string()
                .starts_with("input:2 (record 1): invalid JSON")
        );
    }

    #[test]
    fn containers_are_unwrapped() {
        let ct = br#"{"Records":[{"eventVersion":"1.08","eventID":"a"},{"eventVersion":"1.08","eventID":"b"}]}"#;
        let (ok, errors) = decode(ct, Limits::default());
        assert!(errors.is_empty());
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].origin.index, 1);

        let page = b"{\n  \"@odata.nextLink\": \"https://x\",\n  \"value\": [\n    {\"id\": 1},\n    {\"id\": 2}\n  ]\n}\n";
        let (ok, errors) = decode(page, Limits::default());
        assert!(errors.is_empty());
        assert_eq!(ok.len(), 2);

        let array = b"[\n {\"id\": 1},\n {\"id\": 2},\n {\"id\": 3}\n]";
        assert_eq!(decode(array, Limits::default()).0.len(), 3);

        let one = b"{\n  \"eventVersion\": \"1.08\",\n  \"Records\": [1]\n}";
        let (ok, _) = decode(one, Limits::default());
        assert_eq!(ok.len(), 1, "a record with a Records field is a record");
    }

    #[test]
    fn gzip_of_either_shape() {
        let (ok, errors) = decode(&gzip(b"{\"a\":1}\n{\"a\":2}\n"), Limits::default());
        assert!(errors.is_empty());
        assert_eq!(ok.len(), 2);
        let (ok, errors) = decode(
            &gzip(b"{\"Records\": [\n{\"a\":1},\n{\"a\":2}]}"),
            Limits::default(),
        );
        assert!(errors.is_empty());
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn truncated_gzip_keeps_what_came_before() {
        let mut lines = Vec::new();
        for i in 0..2000 {
            lines.extend_from_slice(
                format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(40)).as_bytes(),
            );
        }
        let gz = gzip(&lines);
        let cut = &gz[..gz.len() / 2];
        let (ok, errors) = decode(cut, Limits::default());
        assert!(ok.len() > 100, "records before the cut: {}", ok.len());
        assert!(ok.len() < 2000);
        assert_eq!(errors.len(), 1);
        assert!(
            matches!(errors[0], DecodeError::Gzip { .. }),
            "{:?}",
            errors[0]
        );
    }

    #[test]
    fn truncated_document_keeps_complete_records() {
        let doc = b"{\"Records\": [\n {\"eventID\": \"a\"},\n {\"eventID\": \"b\"},\n {\"eventID\": \"c\", \"userAg";
        let (ok, errors) = decode(doc, Limits::default());
        assert_eq!(ok.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].origin().unwrap().index, 2);
        assert!(
            errors[0]
                .to_string()
                .contains("2 record(s) before it were kept")
        );
    }

    #[test]
    fn binary_and_empty_inputs() {
        let (ok, errors) = decode(b"\x7fELF\x02\x01\x01\0\0\0\0\0", Limits::default());
        assert!(ok.is_empty());
        assert!(matches!(errors[..], [DecodeError::Binary { .. }]));
        let (ok, errors) = decode(b"", Limits::default());
        assert!(ok.is_empty() && errors.is_empty());
        let (ok, errors) = decode(b"\n\n  \n", Limits::default());
        assert!(ok.is_empty() && errors.is_empty());
    }

    #[test]
    fn huge_strings_within_limits_and_beyond() {
        let big = "A".repeat(10 * 1024 * 1024);
        let input = format!("{{\"ua\":\"{big}\"}}\n{{\"a\":2}}\n");
        let (ok, errors) = decode(input.as_bytes(), Limits::default());
        assert!(errors.is_empty());
        assert_eq!(ok[0].value["ua"].as_str().map(str::len), Some(big.len()));

        let small = Limits {
            max_line_bytes: 1024,
            max_document_bytes: 4096,
        };
        let (ok, errors) = decode(input.as_bytes(), small);
        assert_eq!(
            ok.len(),
            1,
            "the line after the oversized one is still read"
        );
        assert_eq!(ok[0].value["a"], 2);
        assert!(matches!(
            errors[..],
            [DecodeError::TooLarge { what: "line", .. }]
        ));

        let doc = format!("[\n{{\"ua\":\"{}\"}}\n]", "B".repeat(8192));
        let (ok, errors) = decode(doc.as_bytes(), small);
        assert!(ok.is_empty());
        assert!(matches!(
            errors[..],
            [DecodeError::TooLarge {
                what: "document",
                ..
            }]
        ));
    }

    #[test]
    fn folders_list_log_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["a.json", "sub/b.jsonl.gz", "README.md", ".hidden.json", "c"] {
            std::fs::write(dir.path().join(name), b"{}").unwrap();
        }
        let files = expand(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.json", "c", "sub/b.jsonl.gz"]);
    }

    #[test]
    fn record_time_per_kind() {
        let ct = crate::json::json!({"eventTime": "2024-01-02T03:04:05Z"});
        assert_eq!(
            record_time(RecordKind::Cloudtrail, &Fields::new(&ct)).map(|t| t.to_rfc3339()),
            Some("2024-01-02T03:04:05+00:00".to_string())
        );
        let reports = crate::json::json!({"id": {"time": "2024-01-02T03:04:05.123Z"}});
        assert!(record_time(RecordKind::GoogleReports, &Fields::new(&reports)).is_some());
        assert!(record_time(RecordKind::EntraSignin, &Fields::new(&ct)).is_none());
        let ual = crate::json::json!({"CreationTime": "2023-07-23T06:25:34", "Operation": "x"});
        assert_eq!(
            record_time(RecordKind::M365Audit, &Fields::new(&ual)).map(|t| t.to_rfc3339()),
            Some("2023-07-23T06:25:34+00:00".to_owned())
        );
        let okta = crate::json::json!({"published": "2026-02-01T09:00:00.123Z"});
        assert!(record_time(RecordKind::Okta, &Fields::new(&okta)).is_some());
        let act = crate::json::json!({"TimeGenerated": "2026-02-01T09:00:00Z"});
        assert!(record_time(RecordKind::AzureActivity, &Fields::new(&act)).is_some());
    }

    /// The kind and time of each record of a file, as replay's index reads them.
    fn kinds_and_times(path: &Path) -> Vec<(Option<RecordKind>, Option<String>)> {
        open_file(path, Limits::default())
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                let kind = crate::normalize::detect_kind_in(r.value.fields());
                let time = kind.and_then(|k| record_time(k, r.value.fields()));
                (kind, time.map(|t| t.to_rfc3339()))
            })
            .collect()
    }

    #[test]
    fn containers_envelopes_and_wrappers_give_dated_records() {
        // Containers, EventBridge envelopes and wrapped UAL records, on one line or several.
        let tmp = tempfile::tempdir().unwrap();
        let inputs = [
            r#"{"Records":[{"eventVersion":"1.08","eventSource":"s","eventTime":"2024-01-02T03:04:05Z","userIdentity":{"type":"Root"}}]}"#,
            "{\n\"detail-type\": \"AWS API Call via CloudTrail\", \"detail\": {\"eventTime\": \"2024-01-02T03:04:05Z\", \"eventSource\": \"x\"}}",
            r#"{"AuditData":{"CreationTime":"2023-07-23T06:25:34"},"Operations":"x","UserIds":["a"]}"#,
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-01-02T03:04:05Z"},"events":[{"name":"x"}]}"#,
        ];
        for (i, text) in inputs.iter().enumerate() {
            let f = tmp.path().join(format!("{i}.json"));
            std::fs::write(&f, text).unwrap();
            let read = kinds_and_times(&f);
            assert!(read[0].0.is_some() && read[0].1.is_some(), "{text}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    const SEEDS: &[&[u8]] = &[
        b"{\"Records\":[{\"eventVersion\":\"1.08\",\"eventID\":\"a\"},{\"eventID\":\"b\"}]}",
        b"{\"a\":1}\n{\"b\":[1,2,{\"c\":null}]}\n",
        b"[\n {\"id\": 1},\n {\"id\": \"\\u00e9\"}\n]",
        b"{\n \"value\": [ {\"createdDateTime\": \"2024-01-01T00:00:00Z\"} ],\n \"@odata.nextLink\": \"x\"\n}",
    ];

    fn run(bytes: Vec<u8>) -> usize {
        let limits = Limits {
            max_document_bytes: 1 << 20,
            max_line_bytes: 1 << 16,
        };
        // Every item must be produced without panicking; the stream must end.
        let mut n = 0;
        for item in from_bytes(bytes, "fuzz", limits).take(100_000) {
            if let Err(e) = item {
                // Every error names its input.
                assert!(e.to_string().starts_with("fuzz"), "{e}");
            }
            n += 1;
        }
        n
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            run(bytes);
        }

        #[test]
        fn mutated_real_inputs(
            seed in 0..SEEDS.len(),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            zip in any::<bool>(),
        ) {
            let mut bytes = SEEDS[seed].to_vec();
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if zip {
                bytes = gzip(&bytes);
            }
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep.max(1));
            run(bytes);
        }
    }
}
