//! Event-time ordered reading of many files for `picket replay`.
//!
//! Files are indexed first (each file's earliest and latest event time), then read through a
//! k-way merge (a single file is not indexed: there is nothing to order it against, and the
//! index pass would read and parse it twice): a file is opened only when the merge reaches its earliest event, and dropped
//! when exhausted. Memory is bounded by the files that overlap in time, not by the number of
//! events: CloudTrail's five-minute objects or a year of daily exports replay in flat memory.
//! Within a file, records are sorted in windows of `reorder_window` records (a JSON Lines file
//! is streamed; a document file is one window); across files the order is exact.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::decode::{self, DecodeError, Limits, RawRecord, Records};
use crate::model::RecordKind;

/// An indexed input file.
#[derive(Debug, Clone)]
pub struct FileSpan {
    /// The file.
    pub path: PathBuf,
    /// Earliest event time (None: no dated record).
    pub first: Option<DateTime<Utc>>,
    /// Latest event time.
    pub last: Option<DateTime<Utc>>,
    /// Records seen while indexing (0 when the file was not indexed).
    pub records: u64,
}

/// A record ready for the pipeline, or a problem with the input.
pub type Item = Result<RawRecord, DecodeError>;

/// Lists and indexes every file under the given paths. Errors (unreadable paths) are returned
/// beside the files that could be indexed.
pub fn index(
    paths: &[PathBuf],
    kind: Option<RecordKind>,
    limits: Limits,
) -> (Vec<FileSpan>, Vec<DecodeError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match decode::expand(p) {
            Ok(found) => files.extend(found),
            Err(e) => errors.push(e),
        }
    }
    if let [only] = files.as_slice() {
        let span = FileSpan {
            path: only.clone(),
            first: None,
            last: None,
            records: 0,
        };
        return (vec![span], errors);
    }
    let mut spans = Vec::new();
    for f in files {
        match index_file(&f, kind, limits) {
            Ok(span) => spans.push(span),
            Err(e) => errors.push(e),
        }
    }
    spans.sort_by(|a, b| a.first.cmp(&b.first).then_with(|| a.path.cmp(&b.path)));
    (spans, errors)
}

fn index_file(
    path: &Path,
    kind: Option<RecordKind>,
    limits: Limits,
) -> Result<FileSpan, DecodeError> {
    let mut span = FileSpan {
        path: path.to_path_buf(),
        first: None,
        last: None,
        records: 0,
    };
    for item in decode::open_file(path, limits)? {
        let Ok(rec) = item else { continue };
        span.records += 1;
        if let Some(t) = time_of(kind, &rec) {
            span.first = Some(span.first.map_or(t, |f| f.min(t)));
            span.last = Some(span.last.map_or(t, |l| l.max(t)));
        }
    }
    Ok(span)
}

fn time_of(kind: Option<RecordKind>, rec: &RawRecord) -> Option<DateTime<Utc>> {
    let kind = kind.or_else(|| rec.detected_kind())?;
    decode::record_time(kind, rec.value.fields())
}

/// One open file in the merge, with a sorted window of its records. `records` is dropped
/// (closing the file and its buffers) once the file is exhausted.
struct Open {
    records: Option<Records>,
    window: VecDeque<(Option<DateTime<Utc>>, RawRecord)>,
    errors: VecDeque<DecodeError>,
    done: bool,
}

impl Open {
    fn head_time(&self) -> Option<DateTime<Utc>> {
        self.window.front().and_then(|(t, _)| *t)
    }
}

/// Records of one file sorted together by default (`picket replay --reorder-window`).
pub const REORDER_WINDOW: u32 = 10_000;

/// (head record time, insertion sequence, open-file slot).
type HeapEntry = (Option<DateTime<Utc>>, usize, usize);

/// The k-way merge over indexed files.
pub struct Merge {
    pending: VecDeque<FileSpan>,
    open: Vec<Open>,
    heap: BinaryHeap<Reverse<HeapEntry>>,
    kind: Option<RecordKind>,
    limits: Limits,
    reorder_window: usize,
    seq: usize,
    errors: VecDeque<DecodeError>,
    peak_open: usize,
}

impl Merge {
    /// Starts a merge over indexed files (sorted by their first event time).
    pub fn new(
        spans: Vec<FileSpan>,
        kind: Option<RecordKind>,
        limits: Limits,
        reorder_window: usize,
    ) -> Merge {
        Merge {
            pending: spans.into(),
            open: Vec::new(),
            heap: BinaryHeap::new(),
            kind,
            limits,
            reorder_window: reorder_window.max(1),
            seq: 0,
            errors: VecDeque::new(),
            peak_open: 0,
        }
    }

    /// The most files that were open at once.
    pub fn peak_open_files(&self) -> usize {
        self.peak_open
    }

    fn open_next(&mut self) {
        let Some(span) = self.pending.pop_front() else {
            return;
        };
        match decode::open_file(&span.path, self.limits) {
            Ok(records) => {
                let slot = self.open.len();
                self.open.push(Open {
                    records: Some(records),
                    window: VecDeque::new(),
                    errors: VecDeque::new(),
                    done: false,
                });
                self.refill(slot);
                self.push_head(slot);
                let live = self
                    .open
                    .iter()
                    .filter(|o| !o.done || !o.window.is_empty())
                    .count();
                self.peak_open = self.peak_open.max(live);
            }
            Err(e) => self.errors.push_back(e),
        }
    }

    fn refill(&mut self, slot: usize) {
        let kind = self.kind;
        let o = &mut self.open[slot];
        if o.done || !o.window.is_empty() {
            return;
        }
        let mut batch = Vec::with_capacity(self.reorder_window);
        while batch.len() < self.reorder_window {
            match o.records.as_mut().and_then(Iterator::next) {
                Some(Ok(mut rec)) => {
                    // Recognised once here; the pipeline reuses it.
                    rec.kind = kind.or_else(|| rec.detected_kind());
                    let t = rec.time();
                    batch.push((t, rec));
                }
                Some(Err(e)) => o.errors.push_back(e),
                None => {
                    o.done = true;
                    break;
                }
            }
        }
        batch.sort_by_key(|(t, _)| *t);
        o.window.extend(batch);
        while let Some(e) = o.errors.pop_front() {
            self.errors.push_back(e);
        }
    }

    fn push_head(&mut self, slot: usize) {
        if let Some(o) = self.open.get(slot) {
            if !o.window.is_empty() {
                self.seq += 1;
                self.heap.push(Reverse((o.head_time(), self.seq, slot)));
            } else if o.done {
                // Release the reader and its buffers.
                self.open[slot].records = None;
            }
        }
    }
}

impl Iterator for Merge {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(e) = self.errors.pop_front() {
                return Some(Err(e));
            }
            // Open every file whose first event is not later than the merge's next record.
            let head = self.heap.peek().map(|Reverse((t, _, _))| *t);
            match (head, self.pending.front()) {
                (_, None) => {}
                (None, Some(_)) => {
                    self.open_next();
                    continue;
                }
                (Some(h), Some(span)) => {
                    if span.first <= h {
                        self.open_next();
                        continue;
                    }
                }
            }
            let Reverse((_, _, slot)) = self.heap.pop()?;
            let o = &mut self.open[slot];
            let Some((_, rec)) = o.window.pop_front() else {
                continue;
            };
            if o.window.is_empty() {
                self.refill(slot);
            }
            self.push_head(slot);
            return Some(Ok(rec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonValueTrait;

    fn ct(id: &str, minute: u32) -> String {
        format!(
            r#"{{"eventVersion":"1.08","eventSource":"iam.amazonaws.com","eventID":"{id}","eventTime":"2024-01-01T10:{minute:02}:00Z"}}"#
        )
    }

    #[test]
    fn merges_files_in_event_time_order() {
        let dir = tempfile::tempdir().unwrap();
        // Two interleaved JSON Lines files, and a CloudTrail document out of order inside.
        std::fs::write(
            dir.path().join("a.jsonl"),
            format!("{}\n{}\n{}\n", ct("a1", 1), ct("a4", 4), ct("a7", 7)),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.jsonl"),
            format!("{}\n{}\n", ct("b2", 2), ct("b5", 5)),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c.json"),
            format!("{{\"Records\": [\n{},\n{}]}}", ct("c6", 6), ct("c3", 3)),
        )
        .unwrap();
        let (spans, errors) = index(&[dir.path().to_path_buf()], None, Limits::default());
        assert!(errors.is_empty());
        assert_eq!(spans.len(), 3);
        let ids: Vec<String> = Merge::new(spans, None, Limits::default(), 100)
            .map(|r| r.unwrap().value["eventID"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["a1", "b2", "c3", "a4", "b5", "c6", "a7"]);
    }

    #[test]
    fn a_single_file_is_not_indexed_and_still_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.jsonl");
        std::fs::write(
            &path,
            format!("{}\n{}\n{}\n", ct("x3", 3), ct("x1", 1), ct("x2", 2)),
        )
        .unwrap();
        let (spans, errors) = index(&[path], None, Limits::default());
        assert!(errors.is_empty());
        assert_eq!(
            (spans.len(), spans[0].records, spans[0].first),
            (1, 0, None)
        );
        let recs: Vec<RawRecord> = Merge::new(spans, None, Limits::default(), 100)
            .map(Result::unwrap)
            .collect();
        let ids: Vec<&str> = recs
            .iter()
            .map(|r| r.value["eventID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["x1", "x2", "x3"]);
        assert!(recs.iter().all(|r| r.kind == Some(RecordKind::Cloudtrail)));
    }

    #[test]
    fn records_are_sorted_within_windows_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.jsonl");
        let body: String = [4, 3, 2, 1]
            .iter()
            .map(|m| format!("{}\n", ct(&format!("x{m}"), *m)))
            .collect();
        std::fs::write(&path, body).unwrap();
        let order = |window: usize| -> Vec<String> {
            let (spans, _) = index(std::slice::from_ref(&path), None, Limits::default());
            Merge::new(spans, None, Limits::default(), window)
                .map(|r| r.unwrap().value["eventID"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(order(4), ["x1", "x2", "x3", "x4"]);
        assert_eq!(order(2), ["x3", "x4", "x1", "x2"]);
        assert_eq!(
            order(1),
            ["x4", "x3", "x2", "x1"],
            "a window of one keeps file order"
        );
    }

    #[test]
    fn files_that_do_not_overlap_are_read_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        for f in 0..20u32 {
            let body: String = (0..3)
                .map(|i| ct(&format!("{f}-{i}"), f * 2 + i / 2) + "\n")
                .collect();
            std::fs::write(dir.path().join(format!("{f:02}.jsonl")), body).unwrap();
        }
        let (spans, _) = index(&[dir.path().to_path_buf()], None, Limits::default());
        let mut merge = Merge::new(spans, None, Limits::default(), 100);
        let n = merge.by_ref().filter(|r| r.is_ok()).count();
        assert_eq!(n, 60);
        assert!(
            merge.peak_open_files() <= 2,
            "peak {}",
            merge.peak_open_files()
        );
    }
}
