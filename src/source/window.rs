//! The polling core the REST sources share (`msgraph`, `google_reports`, `gcp_logging`): an
//! overlapping time window over a paged API, with dedup of the rows seen in the overlap.
//!
//! Each **stream** (one endpoint of one tenant, one application of one customer, the audit logs
//! of one project) keeps a [`WindowCursor`] in the state store (namespace [`CURSOR_NS`], key
//! `<source>:<stream>`):
//!
//! * a query asks for the rows with a time at or after `from` (the provider's filter:
//!   `createdDateTime ge`, `startTime`, `timestamp>=`) and is read page by page; the page
//!   continuation (`@odata.nextLink`, `nextPageToken`) is stored in `next`, so a restart
//!   resumes at the page after the last committed one;
//! * when the last page of a query was read, `from` becomes the newest row time seen minus the
//!   overlap, so the next query reads the overlap again: providers deliver rows late (Entra
//!   minutes, Workspace `login` hours) and out of order, and a late row inside the overlap is
//!   found by the next query;
//! * `seen` holds the ids (and times) of the rows already delivered whose time is inside the
//!   window, so a row read again in the overlap is dropped; ids older than `from` can never
//!   come back and are pruned. The set is bounded ([`MAX_SEEN`], oldest dropped first).
//!
//! The new cursor is a staged write of the batch's [`Token`], committed in the batch's
//! detection transaction: a batch is processed and its cursor advanced together or not at all.
//!
//! A row older than the overlap when it finally appears is not seen (the provider documents
//! the lag the overlap must cover: configure it). To add a REST source: implement [`Feed`]
//! for one stream and hand [`Windowed`] its streams.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::json::{JsonValueMutTrait, JsonValueTrait, Value};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Batch, CURSOR_NS, Origin, RawRecord, Source, SourceError, Token};
use crate::cloud::CloudError;
use crate::model::RecordKind;
use crate::pipeline::StagedWrite;
use crate::state::StateStore;

/// Most row ids a stream remembers for dedup.
pub const MAX_SEEN: usize = 50_000;
/// Longest a poll waits for a `Retry-After` deadline left by the previous poll.
const MAX_HOLD: Duration = Duration::from_secs(300);

/// One page of rows and the continuation to the next, if any.
#[derive(Debug, Default)]
pub struct Page {
    /// The rows, as the provider sent them.
    pub rows: Vec<Value>,
    /// The continuation (`@odata.nextLink`, a page token), `None` on the last page.
    pub next: Option<String>,
}

/// The rows under `key` of a page, taken out of it: `Some(rows)`, or `None` when `key` holds
/// something else than an array (or is absent or null, unless `absent_is_empty`).
pub fn take_rows(page: &mut Value, key: &str, absent_is_empty: bool) -> Option<Vec<Value>> {
    let v = page.as_object_mut().and_then(|o| o.remove(&key));
    match v {
        Some(v) if v.is_array() => v.into_array().map(|a| a.into_iter().collect()),
        None => absent_is_empty.then(Vec::new),
        Some(v) if v.is_null() => absent_is_empty.then(Vec::new),
        Some(_) => None,
    }
}

/// One paged query API: the first page of rows at or after a time, and the page a
/// continuation names.
#[async_trait::async_trait]
pub trait Feed: Send + Sync {
    /// The first page of the rows whose time is at or after `from`.
    async fn first(&self, from: DateTime<Utc>) -> Result<Page, CloudError>;
    /// The page a continuation of [`Page::next`] names.
    async fn next(&self, next: &str) -> Result<Page, CloudError>;
}

/// A stream's position (stored as JSON; see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCursor {
    /// Lower bound (inclusive) of the query in progress or the next one.
    pub from: DateTime<Utc>,
    /// Continuation of the query in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Newest row time of the query in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<DateTime<Utc>>,
    /// Rows delivered whose time is inside the window: (dedup id, time in ms since the epoch).
    #[serde(default)]
    pub seen: Vec<(String, i64)>,
}

/// How one stream's rows are read and told apart.
pub struct Stream {
    /// Short name (`signIns`, `login`, `activity+data_access`), for logs and the cursor key.
    pub name: String,
    /// Record kind of every row.
    pub kind: RecordKind,
    /// How far back each query reaches before the newest row already seen.
    pub overlap: chrono::Duration,
    /// How far back the very first query reaches.
    pub lookback: chrono::Duration,
    /// The dedup id of a row (`None`: a digest of the whole row is used).
    pub id: fn(&Value) -> Option<String>,
    /// The API.
    pub feed: Box<dyn Feed>,
}

/// A [`Source`] over one or more streams, polled in turn.
pub struct Windowed {
    name: String,
    interval: Duration,
    unhealthy_after: u32,
    state: Arc<dyn StateStore>,
    streams: Vec<Stream>,
    /// Committed cursors by state key.
    cursors: HashMap<String, WindowCursor>,
    /// The stream to poll first next time (round robin).
    turn: usize,
    caught_up: bool,
    /// No request before this (a `Retry-After` the last failed poll could not wait out).
    not_before: Option<tokio::time::Instant>,
    clock: fn() -> DateTime<Utc>,
}

impl Windowed {
    /// A source named `name` (`msgraph:<tenant>`) over `streams`.
    pub fn new(
        name: String,
        interval: Duration,
        unhealthy_after: u32,
        state: Arc<dyn StateStore>,
        streams: Vec<Stream>,
    ) -> Windowed {
        Windowed {
            name,
            interval,
            unhealthy_after,
            state,
            streams,
            cursors: HashMap::new(),
            turn: 0,
            caught_up: false,
            not_before: None,
            clock: Utc::now,
        }
    }

    /// The state key of a stream's cursor.
    pub fn cursor_key(source: &str, stream: &str) -> String {
        format!("{source}:{stream}")
    }

    fn err(&self, stream: &str, e: impl std::fmt::Display) -> SourceError {
        SourceError::Read {
            source_name: self.name.clone(),
            message: format!("{stream}: {e}"),
        }
    }

    /// The committed cursor of a stream (memory, else the state store).
    fn committed(&mut self, key: &str) -> Result<Option<WindowCursor>, SourceError> {
        if let Some(c) = self.cursors.get(key) {
            return Ok(Some(c.clone()));
        }
        let stored = self
            .state
            .get(CURSOR_NS, key, Utc::now())
            .map_err(|source| SourceError::State {
                source_name: self.name.clone(),
                source,
            })?;
        let Some(v) = stored else { return Ok(None) };
        match serde_json::from_slice::<WindowCursor>(&v.value) {
            Ok(c) => {
                self.cursors.insert(key.to_string(), c.clone());
                Ok(Some(c))
            }
            Err(e) => {
                tracing::warn!(source = %self.name, cursor = %key, error = %e, "cursor does not decode; starting from the look-back");
                Ok(None)
            }
        }
    }

    /// One page of stream `i`: `None` when it has nothing new and nothing to commit.
    async fn poll_stream(&mut self, i: usize) -> Result<Option<Batch>, SourceError> {
        let key = Windowed::cursor_key(&self.name, &self.streams[i].name);
        let committed = self.committed(&key)?;
        let now = (self.clock)();
        let stream = &self.streams[i];
        let cur = committed.clone().unwrap_or_else(|| WindowCursor {
            from: now - stream.lookback,
            next: None,
            newest: None,
            seen: Vec::new(),
        });
        // Pages with nothing new (the overlap read again) are passed over within this poll:
        // only a page with new rows, or the end of a query, yields a cursor to commit.
        let mut cur = cur;
        let mut dups = 0usize;
        let origin: Arc<str> = Arc::from(key.as_str());
        let (batch, next) = loop {
            let stream = &self.streams[i];
            let page = match &cur.next {
                Some(n) => stream.feed.next(n).await,
                None => stream.feed.first(cur.from).await,
            };
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    if let Some(after) = e.retry_after() {
                        self.not_before = Some(tokio::time::Instant::now() + after.min(MAX_HOLD));
                    }
                    return Err(self.err(&self.streams[i].name, e));
                }
            };
            let mut next = cur.clone();
            let mut known: HashSet<String> = cur.seen.iter().map(|(id, _)| id.clone()).collect();
            let mut batch = Batch::default();
            for row in page.rows {
                let row = crate::json::Raw::new(row);
                let time = super::decode::record_time(stream.kind, row.fields());
                let id = (stream.id)(&row).unwrap_or_else(|| digest(&row));
                if !known.insert(id.clone()) {
                    dups += 1;
                    continue;
                }
                let t = time.unwrap_or(now);
                next.seen.push((id, t.timestamp_millis()));
                if next.newest.is_none_or(|n| t > n) {
                    next.newest = Some(t);
                }
                batch.records.push(RawRecord {
                    value: row,
                    kind: Some(stream.kind),
                    origin: Origin {
                        source: origin.clone(),
                        index: batch.records.len(),
                        line: None,
                    },
                });
            }
            next.next = page.next;
            if next.next.is_none() {
                // The query is complete: the next one starts an overlap before its newest row.
                if let Some(newest) = next.newest.take() {
                    next.from = next.from.max(newest - stream.overlap);
                }
                let floor = next.from.timestamp_millis();
                next.seen.retain(|(_, t)| *t >= floor);
            }
            if next.seen.len() > MAX_SEEN {
                tracing::warn!(source = %self.name, stream = %stream.name, kept = MAX_SEEN,
                    "more rows in the overlap than the dedup set holds; the oldest may be delivered again");
                next.seen.sort_by_key(|(_, t)| *t);
                let cut = next.seen.len() - MAX_SEEN;
                next.seen.drain(..cut);
            }
            if batch.records.is_empty() && next.next.is_some() {
                cur = next;
                continue;
            }
            break (batch, next);
        };
        let mut batch = batch;
        let stream = &self.streams[i];
        tracing::debug!(source = %self.name, stream = %stream.name, rows = batch.records.len(),
            duplicates = dups, more = next.next.is_some(), "page read");
        if batch.records.is_empty() && committed.as_ref() == Some(&next) {
            return Ok(None);
        }
        let value = serde_json::to_vec(&next).map_err(|e| self.err(&stream.name, e))?;
        batch.token = Token {
            staged: vec![StagedWrite {
                ns: CURSOR_NS,
                key,
                value,
            }],
            ..Token::default()
        };
        Ok(Some(batch))
    }
}

/// A stable id for a row without one: SHA-256 of its JSON text.
fn digest(row: &Value) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(row.to_string().as_bytes()))
}

#[async_trait::async_trait]
impl Source for Windowed {
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
        if let Some(at) = self.not_before.take() {
            tokio::time::sleep_until(at).await;
        }
        let n = self.streams.len();
        for k in 0..n {
            let i = (self.turn + k) % n.max(1);
            if let Some(batch) = self.poll_stream(i).await? {
                self.turn = (i + 1) % n;
                self.caught_up = false;
                return Ok(batch);
            }
        }
        self.caught_up = true;
        Ok(Batch::default())
    }

    async fn commit(&mut self, token: Token) -> Result<(), SourceError> {
        for w in token.staged {
            if w.ns != CURSOR_NS {
                continue;
            }
            let c = serde_json::from_slice::<WindowCursor>(&w.value)
                .map_err(|e| self.err(&w.key, e))?;
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
    use std::sync::Mutex;

    use crate::json::{JsonValueTrait, json};

    use super::*;
    use crate::state::MemoryStore;

    /// Rows in a shared table, served newest first in pages of `page` rows, continuation =
    /// offset; every request sees the table as it is then.
    struct Table {
        rows: Arc<Mutex<Vec<Value>>>,
        page: usize,
        /// `from` of every first page asked for.
        asked: Arc<Mutex<Vec<DateTime<Utc>>>>,
    }

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(min)
    }

    fn row(id: &str, min: i64) -> Value {
        json!({"id": id, "createdDateTime": t(min).to_rfc3339(), "userPrincipalName": "a@b.c"})
    }

    impl Table {
        fn page(&self, from: DateTime<Utc>, offset: usize) -> Page {
            let mut rows: Vec<Value> = self
                .rows
                .lock()
                .unwrap()
                .iter()
                .filter(|r| {
                    super::super::decode::record_time(
                        RecordKind::EntraSignin,
                        &crate::json::Fields::new(r),
                    )
                    .unwrap()
                        >= from
                })
                .cloned()
                .collect();
            rows.sort_by_key(|r| {
                std::cmp::Reverse(r["createdDateTime"].as_str().unwrap().to_string())
            });
            let end = (offset + self.page).min(rows.len());
            Page {
                rows: rows[offset.min(end)..end].to_vec(),
                next: (end < rows.len()).then(|| format!("{}|{end}", from.to_rfc3339())),
            }
        }
    }

    #[async_trait::async_trait]
    impl Feed for Table {
        async fn first(&self, from: DateTime<Utc>) -> Result<Page, CloudError> {
            self.asked.lock().unwrap().push(from);
            Ok(self.page(from, 0))
        }
        async fn next(&self, next: &str) -> Result<Page, CloudError> {
            let (from, off) = next.split_once('|').unwrap();
            let from = DateTime::parse_from_rfc3339(from)
                .unwrap()
                .with_timezone(&Utc);
            Ok(self.page(from, off.parse().unwrap()))
        }
    }

    fn source(
        rows: &Arc<Mutex<Vec<Value>>>,
        state: &Arc<dyn StateStore>,
        asked: &Arc<Mutex<Vec<DateTime<Utc>>>>,
    ) -> Windowed {
        let mut w = Windowed::new(
            "test:t1".into(),
            Duration::from_secs(1),
            3,
            state.clone(),
            vec![Stream {
                name: "signIns".into(),
                kind: RecordKind::EntraSignin,
                overlap: chrono::Duration::minutes(15),
                lookback: chrono::Duration::minutes(60),
                id: |v| v["id"].as_str().map(str::to_string),
                feed: Box::new(Table {
                    rows: rows.clone(),
                    page: 2,
                    asked: asked.clone(),
                }),
            }],
        );
        w.clock = || t(30);
        w
    }

    async fn drain(s: &mut Windowed, state: &Arc<dyn StateStore>) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..100 {
            let batch = s.poll().await.unwrap();
            if s.caught_up() {
                return ids;
            }
            ids.extend(
                batch
                    .records
                    .iter()
                    .map(|r| r.value["id"].as_str().unwrap().to_string()),
            );
            for w in batch.token.staged() {
                state.put(w.ns, &w.key, &w.value, None, Utc::now()).unwrap();
            }
            s.commit(batch.token).await.unwrap();
        }
        panic!("never caught up");
    }

    #[tokio::test]
    async fn pages_overlap_late_rows_and_restarts_deliver_each_row_once() {
        let rows = Arc::new(Mutex::new(vec![
            row("a", 0),
            row("b", 5),
            row("c", 10),
            row("old", -90),
        ]));
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let mut s = source(&rows, &state, &asked);
        let mut got = drain(&mut s, &state).await;
        got.sort();
        assert_eq!(got, ["a", "b", "c"], "the look-back is an hour");
        assert!(drain(&mut s, &state).await.is_empty());
        // A late row inside the overlap (newest 10 min, overlap 15 min) and a new one.
        rows.lock().unwrap().push(row("late", -4));
        rows.lock().unwrap().push(row("d", 20));
        // A restarted process resumes from the stored cursor.
        let mut s = source(&rows, &state, &asked);
        let mut got = drain(&mut s, &state).await;
        got.sort();
        assert_eq!(got, ["d", "late"]);
        assert_eq!(
            asked.lock().unwrap().last(),
            Some(&t(5)),
            "newest 20 min - 15"
        );
        // A row later than the overlap is not found (the documented limit).
        rows.lock().unwrap().push(row("too-late", 1));
        assert!(drain(&mut s, &state).await.is_empty());
        let stored: WindowCursor = serde_json::from_slice(
            &state
                .get(CURSOR_NS, "test:t1:signIns", Utc::now())
                .unwrap()
                .unwrap()
                .value,
        )
        .unwrap();
        let mut seen: Vec<_> = stored.seen.iter().map(|(id, _)| id.as_str()).collect();
        seen.sort();
        assert_eq!(
            seen,
            ["b", "c", "d"],
            "ids older than the window are pruned"
        );
    }

    #[tokio::test]
    async fn an_uncommitted_page_is_read_again() {
        let rows = Arc::new(Mutex::new(vec![row("a", 0), row("b", 5), row("c", 10)]));
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let mut s = source(&rows, &state, &asked);
        let first = s.poll().await.unwrap();
        assert_eq!(first.records.len(), 2);
        let again = s.poll().await.unwrap();
        assert_eq!(again.records.len(), 2);
        let mut got = drain(&mut s, &state).await;
        got.sort();
        assert_eq!(got, ["a", "b", "c"]);
    }
}
