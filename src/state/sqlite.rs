//! SQLite state: the embedded default for `picket run`. One file holds every namespace; several
//! processes may share it (WAL mode, a busy timeout, and every conditional write is one SQL
//! statement or one `BEGIN IMMEDIATE` transaction, so two writers cannot both win).
//!
//! Layout: one table `kv(ns, key, value, version, exp_s, exp_ns)` keyed by `(ns, key)`.
//! Expiry is kept as whole seconds plus nanoseconds so it compares exactly like
//! `DateTime<Utc>` does in the other backends. Expired rows stay until
//! [`SqliteStore::purge_expired`] or the occasional purge on writes removes them; until then
//! every read treats them as absent.
//!
//! To change the schema: bump [`SCHEMA_VERSION`] and add a step to `migrate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{CasOutcome, CounterOutcome, StateError, StateStore, Versioned};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another process's write lock before failing as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL pages after which a commit checkpoints (64 MiB of 4 KiB pages).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;

/// Keys read by one statement of `get_many` (SQLite allows 32,766 parameters), and by the
/// statement for a short remainder.
const GET_MANY_CHUNK: usize = 128;
const GET_MANY_SHORT: usize = 8;

/// Every this many writes, expired rows (a bounded number) are deleted.
const PURGE_EVERY_WRITES: u64 = 4096;

/// At most this many rows are deleted by one occasional purge, so a write never stalls long.
const PURGE_BATCH_ROWS: i64 = 1000;

/// SQL: the row (columns prefixed with `$p`) is live at `now` (`?3` seconds, `?4` nanoseconds).
macro_rules! live {
    ($p:literal) => {
        concat!(
            "(",
            $p,
            "exp_s IS NULL OR ",
            $p,
            "exp_s > ?3 OR (",
            $p,
            "exp_s = ?3 AND ",
            $p,
            "exp_ns > ?4))"
        )
    };
}

/// A [`StateStore`] in an SQLite database file (or in memory).
///
/// Thread-safe: one connection behind a lock that a thread may re-enter, so
/// [`SqliteStore::batch`] can run many operations on the same thread inside one transaction
/// while other threads wait.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    gate: Gate,
    writes: AtomicU64,
    location: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A re-entrant lock: the owning thread may take it again (nested operations inside a batch).
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    free: Condvar,
}

#[derive(Default)]
struct GateState {
    owner: Option<ThreadId>,
    depth: usize,
    /// Threads waiting for the gate (only then is a wake-up needed).
    waiters: usize,
    /// The outermost holder opened a transaction that nested operations join.
    in_batch: bool,
}

/// Holds the gate; releases it on drop (also when a batch closure panics).
struct GateGuard<'a> {
    gate: &'a Gate,
}

impl Gate {
    fn lock_state(&self) -> MutexGuard<'_, GateState> {
        // The state is a few plain fields updated in single assignments: still consistent
        // after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the gate; returns the guard, whether this is the outermost hold, and whether a
    /// batch transaction is open.
    fn enter(&self) -> (GateGuard<'_>, bool, bool) {
        let me = std::thread::current().id();
        let mut st = self.lock_state();
        loop {
            match st.owner {
                Some(owner) if owner == me => break,
                None => {
                    st.owner = Some(me);
                    break;
                }
                Some(_) => {
                    st.waiters += 1;
                    st = self.free.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.waiters -= 1;
                }
            }
        }
        st.depth += 1;
        (GateGuard { gate: self }, st.depth == 1, st.in_batch)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.gate.lock_state();
        st.depth = st.depth.saturating_sub(1);
        if st.depth == 0 {
            st.owner = None;
            st.in_batch = false;
            let waiters = st.waiters > 0;
            drop(st);
            if waiters {
                self.gate.free.notify_one();
            }
        }
    }
}

fn backend_err(message: impl Into<String>, source: rusqlite::Error) -> StateError {
    StateError::Backend {
        backend: "sqlite",
        message: format!("{}: {source}", message.into()),
        source: Some(Box::new(source)),
    }
}

/// `DateTime` as (seconds, nanoseconds) for the two expiry columns.
fn split(t: DateTime<Utc>) -> (i64, i64) {
    (t.timestamp(), i64::from(t.timestamp_subsec_nanos()))
}

fn split_opt(t: Option<DateTime<Utc>>) -> (Option<i64>, Option<i64>) {
    match t {
        Some(t) => {
            let (s, ns) = split(t);
            (Some(s), Some(ns))
        }
        None => (None, None),
    }
}

fn version_from_sql(v: i64) -> u64 {
    // Versions are written as 1 and grow by one; a negative value cannot occur.
    u64::try_from(v).unwrap_or(0)
}

fn version_to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) the state file at `path`: WAL mode, busy timeout, schema
    /// checked and created. Errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StateError> {
        let path = path.as_ref();
        let location = path.display().to_string();
        let conn = Connection::open(path)
            .map_err(|e| backend_err(format!("cannot open state file {location}"), e))?;
        Self::setup(conn, location, true)
    }

    /// A private in-memory database (tests, one-off runs).
    pub fn in_memory() -> Result<SqliteStore, StateError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| backend_err("cannot open in-memory database", e))?;
        Self::setup(conn, ":memory:".to_string(), false)
    }

    /// Where the database lives (a path or `:memory:`), for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn setup(conn: Connection, location: String, file: bool) -> Result<SqliteStore, StateError> {
        let ctx = |what: &str| format!("state file {location}: {what}");
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| backend_err(ctx("cannot set busy timeout"), e))?;
        if file {
            let mode: String =
                while_busy(|| conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)))
                    .map_err(|e| backend_err(ctx("cannot switch to WAL mode"), e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(location = %location, mode = %mode, "state file is not in WAL mode");
            }
            // WAL + NORMAL: a commit survives a process crash; a power loss may lose the
            // last commits but never corrupts the file.
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| backend_err(ctx("cannot set synchronous mode"), e))?;
            // Checkpoint when the WAL holds this many pages, not SQLite's 1,000: a batch of
            // identity state rewrites thousands of pages, and a page written by several
            // batches between two checkpoints is copied into the database once.
            conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
                .map_err(|e| backend_err(ctx("cannot set wal_autocheckpoint"), e))?;
        }
        // A 64 MiB page cache: detectors touch per-identity rows all over the table, and
        // SQLite's 2 MiB default made every batch spill pages to the WAL and read them back.
        conn.pragma_update(None, "cache_size", -65536)
            .map_err(|e| backend_err(ctx("cannot set the cache size"), e))?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(|e| backend_err(ctx("cannot set temp_store"), e))?;
        conn.set_prepared_statement_cache_capacity(32);
        migrate(&conn).map_err(|e| match e {
            MigrateError::Sql(e) => backend_err(ctx("cannot create the schema"), e),
            MigrateError::TooNew(found) => StateError::Backend {
                backend: "sqlite",
                message: ctx(&format!(
                    "schema version {found} is newer than this picket understands \
                     ({SCHEMA_VERSION}); upgrade picket"
                )),
                source: None,
            },
        })?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            gate: Gate::default(),
            writes: AtomicU64::new(0),
            location,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Only taken while holding the gate, so never contended; a panic mid-statement leaves
        // SQLite itself consistent (statements are atomic).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the gate held. `atomic`: `f` must see and write one consistent state, so
    /// outside a batch it runs inside `BEGIN IMMEDIATE` (taking the write lock up front, which
    /// is what makes read-then-write safe across processes).
    fn with_conn<R>(
        &self,
        atomic: bool,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StateError> {
        let (_guard, _, in_batch) = self.gate.enter();
        let conn = self.conn();
        if !atomic || in_batch {
            return f(&conn).map_err(|e| self.err(what, e));
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(what, e))?;
        match f(&conn) {
            Ok(r) => {
                if let Err(e) = conn.execute_batch("COMMIT") {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(self.err(what, e));
                }
                Ok(r)
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(self.err(what, e))
            }
        }
    }

    fn err(&self, what: &str, e: rusqlite::Error) -> StateError {
        backend_err(format!("{what} in {}", self.location), e)
    }

    /// Counts a write; every [`PURGE_EVERY_WRITES`] writes deletes a bounded number of rows
    /// that expired at least a second before `now`.
    fn after_write(&self, now: DateTime<Utc>) {
        let writes = self.writes.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if !writes.is_multiple_of(PURGE_EVERY_WRITES) {
            return;
        }
        let result = self.with_conn(false, "purging expired rows", |c| {
            c.prepare_cached(
                "DELETE FROM kv WHERE (ns, key) IN \
                 (SELECT ns, key FROM kv WHERE exp_s < ?1 LIMIT ?2)",
            )?
            .execute(params![now.timestamp(), PURGE_BATCH_ROWS])
        });
        match result {
            Ok(n) => tracing::debug!(rows = n, "purged expired state rows"),
            // Not fatal: expired rows are invisible anyway and the next purge retries.
            Err(e) => tracing::warn!(error = %e, "purging expired state rows failed"),
        }
    }

    /// Deletes every row that has expired at `now`; returns how many. Safe at any time:
    /// expired rows are already invisible to reads.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StateError> {
        let (s, ns) = split(now);
        self.with_conn(false, "purging expired rows", |c| {
            c.prepare_cached(
                "DELETE FROM kv WHERE exp_s IS NOT NULL AND (exp_s < ?1 OR (exp_s = ?1 AND exp_ns <= ?2))",
            )?
            .execute(params![s, ns])
        })
    }

    /// Runs `f` (which calls this store) inside one SQLite transaction, so thousands of small
    /// operations cost one commit. Other threads wait until the batch ends; nested batches
    /// join the outer one.
    ///
    /// Each operation keeps its own semantics; the batch adds no all-or-nothing guarantee
    /// beyond this: if the final commit fails, none of the batch's writes persist and the
    /// error is returned. Writes of operations that returned an error inside `f` were not made.
    ///
    /// Inside `f`, do not wait for other threads that use this store: they wait for the batch.
    pub fn batch<R>(&self, f: impl FnOnce(&SqliteStore) -> R) -> Result<R, StateError> {
        self.transaction(f, |_| true)
    }

    /// [`SqliteStore::batch`] that commits only when `commit` says so of `f`'s result, and
    /// rolls back otherwise (a nested call leaves that to the outermost one).
    fn transaction<R>(
        &self,
        f: impl FnOnce(&SqliteStore) -> R,
        commit: impl FnOnce(&R) -> bool,
    ) -> Result<R, StateError> {
        let (guard, outermost, _) = self.gate.enter();
        if !outermost {
            return Ok(f(self));
        }
        self.conn()
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err("starting a batch", e))?;
        self.gate.lock_state().in_batch = true;
        // If `f` panics, roll back before the gate is released (the guard drops after this).
        struct Rollback<'a>(&'a SqliteStore, bool);
        impl Drop for Rollback<'_> {
            fn drop(&mut self) {
                if self.1 {
                    let _ = self.0.conn().execute_batch("ROLLBACK");
                }
            }
        }
        let mut rollback = Rollback(self, true);
        let out = f(self);
        rollback.1 = false;
        let conn = self.conn();
        if !commit(&out) {
            conn.execute_batch("ROLLBACK")
                .map_err(|e| self.err("rolling back a batch", e))?;
            drop(conn);
            drop(guard);
            return Ok(out);
        }
        let committed = conn.execute_batch("COMMIT");
        if let Err(e) = committed {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(self.err("committing a batch", e));
        }
        drop(conn);
        drop(guard);
        Ok(out)
    }
}

/// Runs `f` again while it fails with `SQLITE_BUSY`, for up to [`BUSY_TIMEOUT`].
///
/// SQLite's busy handler covers ordinary lock waits, but not every one: switching a new file
/// to WAL mode while other processes open it at the same moment fails with "database is
/// locked" at once. Workers started together must still all open the file, so this waits as
/// the busy handler would. Written here rather than with [`crate::cloud::retry`], which is
/// asynchronous and made for network calls.
fn while_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

/// Creates or checks the schema, in one write transaction so two processes opening a new
/// file at once do not both create it.
fn migrate(conn: &Connection) -> Result<(), MigrateError> {
    while_busy(|| conn.execute_batch("BEGIN IMMEDIATE"))?;
    let result = (|| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )?;
        let found: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten();
        match found {
            Some(v) if v > SCHEMA_VERSION => return Err(MigrateError::TooNew(v)),
            Some(_) => {}
            None => {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS kv (
                         ns      TEXT    NOT NULL,
                         key     TEXT    NOT NULL,
                         value   BLOB    NOT NULL,
                         version INTEGER NOT NULL,
                         exp_s   INTEGER,
                         exp_ns  INTEGER,
                         PRIMARY KEY (ns, key)
                     ) WITHOUT ROWID;
                     CREATE INDEX IF NOT EXISTS kv_expiry ON kv (exp_s) WHERE exp_s IS NOT NULL;",
                )?;
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn read_live(
    c: &Connection,
    ns: &str,
    key: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Versioned>> {
    let (s, n) = split(now);
    c.prepare_cached(concat!(
        "SELECT value, version FROM kv WHERE ns = ?1 AND key = ?2 AND ",
        live!("")
    ))?
    .query_row(params![ns, key, s, n], |r| {
        Ok(Versioned {
            value: r.get(0)?,
            version: version_from_sql(r.get(1)?),
        })
    })
    .optional()
}

/// Inserts with version 1 unless a live row exists; returns whether it wrote. (No
/// `RETURNING`: the change count says it, without a result row to step through.)
fn insert_if_absent(
    c: &Connection,
    ns: &str,
    key: &str,
    value: &[u8],
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let (s, n) = split(now);
    let (es, en) = split_opt(expires);
    let changed = c
        .prepare_cached(concat!(
            "INSERT INTO kv (ns, key, value, version, exp_s, exp_ns) VALUES (?1, ?2, ?5, 1, ?6, ?7)
             ON CONFLICT (ns, key) DO UPDATE
               SET value = excluded.value, version = 1, exp_s = excluded.exp_s, exp_ns = excluded.exp_ns
               WHERE NOT ",
            live!("kv.")
        ))?
        .execute(params![ns, key, s, n, value, es, en])?;
    Ok(changed > 0)
}

impl StateStore for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn get(
        &self,
        ns: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Versioned>, StateError> {
        self.with_conn(false, "reading", |c| read_live(c, ns, key, now))
    }

    fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Versioned>>, StateError> {
        let (s, n) = split(now);
        self.with_conn(false, "reading many", |c| {
            let mut found: HashMap<&str, Versioned> = HashMap::with_capacity(keys.len());
            let mut unique: Vec<&str> = keys.to_vec();
            unique.sort_unstable();
            unique.dedup();
            for chunk in unique.chunks(GET_MANY_CHUNK) {
                // Two statement shapes only (a short and a full chunk), so the statement cache
                // keeps them: a chunk is padded by repeating its last key.
                let width = if chunk.len() <= GET_MANY_SHORT {
                    GET_MANY_SHORT
                } else {
                    GET_MANY_CHUNK
                };
                let mut sql = String::from(concat!(
                    "SELECT key, value, version FROM kv WHERE ns = ?1 AND ",
                    live!(""),
                    " AND key IN (?5"
                ));
                for i in 1..width {
                    sql.push_str(", ?");
                    sql.push_str(&(i + 5).to_string());
                }
                sql.push(')');
                let mut stmt = c.prepare_cached(&sql)?;
                stmt.raw_bind_parameter(1, ns)?;
                stmt.raw_bind_parameter(3, s)?;
                stmt.raw_bind_parameter(4, n)?;
                for i in 0..width {
                    let key = chunk.get(i).or(chunk.last()).copied().unwrap_or_default();
                    stmt.raw_bind_parameter(i + 5, key)?;
                }
                let mut rows = stmt.raw_query();
                while let Some(row) = rows.next()? {
                    let key: String = row.get(0)?;
                    // The row's key is one of the chunk's, so it borrows from `keys`.
                    if let Some(k) = chunk.iter().find(|k| **k == key) {
                        found.insert(
                            k,
                            Versioned {
                                value: row.get(1)?,
                                version: version_from_sql(row.get(2)?),
                            },
                        );
                    }
                }
            }
            Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
        })
    }

    fn put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StateError> {
        let (s, n) = split(now);
        let (es, en) = split_opt(expires);
        let version = self.with_conn(false, "writing", |c| {
            c.prepare_cached(concat!(
                "INSERT INTO kv (ns, key, value, version, exp_s, exp_ns) VALUES (?1, ?2, ?5, 1, ?6, ?7)
                 ON CONFLICT (ns, key) DO UPDATE
                   SET value = excluded.value, exp_s = excluded.exp_s, exp_ns = excluded.exp_ns,
                       version = CASE WHEN ",
                live!("kv."),
                " THEN kv.version + 1 ELSE 1 END RETURNING version"
            ))?
            .query_row(params![ns, key, s, n, value, es, en], |r| r.get::<_, i64>(0))
        })?;
        self.after_write(now);
        Ok(version_from_sql(version))
    }

    fn put_if_absent(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let written = self.with_conn(false, "inserting", |c| {
            insert_if_absent(c, ns, key, value, expires, now)
        })?;
        self.after_write(now);
        Ok(written)
    }

    fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<CasOutcome, StateError> {
        let (s, n) = split(now);
        let (es, en) = split_opt(expires);
        let outcome = self.with_conn(true, "compare-and-set", |c| {
            let written = match expected {
                None => insert_if_absent(c, ns, key, value, expires, now)?.then_some(1),
                Some(v) => {
                    // The new version is known (one more than the expected one), so no
                    // `RETURNING`: the change count says whether the row matched.
                    let next = v.saturating_add(1);
                    let changed = c
                        .prepare_cached(concat!(
                            "UPDATE kv SET value = ?5, version = ?9, exp_s = ?6, exp_ns = ?7
                             WHERE ns = ?1 AND key = ?2 AND version = ?8 AND ",
                            live!("")
                        ))?
                        .execute(params![
                            ns,
                            key,
                            s,
                            n,
                            value,
                            es,
                            en,
                            version_to_sql(v),
                            version_to_sql(next)
                        ])?;
                    (changed > 0).then_some(next)
                }
            };
            match written {
                Some(v) => Ok(CasOutcome::Written(v)),
                None => Ok(CasOutcome::Conflict(read_live(c, ns, key, now)?)),
            }
        })?;
        if matches!(outcome, CasOutcome::Written(_)) {
            self.after_write(now);
        }
        Ok(outcome)
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StateError> {
        self.with_conn(false, "deleting", |c| {
            c.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?
                .execute(params![ns, key])
                .map(|_| ())
        })
    }

    fn list(
        &self,
        ns: &str,
        prefix: &str,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Versioned)>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (s, n) = split(now);
        self.with_conn(false, "listing", |c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT key, value, version FROM kv WHERE ns = ?1 AND key >= ?2 AND ",
                live!(""),
                " ORDER BY key"
            ))?;
            let mut rows = stmt.query(params![ns, prefix, s, n])?;
            let mut out = Vec::new();
            // Keys sort bytewise (BINARY collation on UTF-8), so the prefix's keys are one
            // contiguous run starting at `prefix`.
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                if !key.starts_with(prefix) {
                    break;
                }
                out.push((
                    key,
                    Versioned {
                        value: row.get(1)?,
                        version: version_from_sql(row.get(2)?),
                    },
                ));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn incr_window(
        &self,
        ns: &str,
        key: &str,
        window_secs: u64,
        at: DateTime<Utc>,
        limit: Option<u64>,
    ) -> Result<CounterOutcome, StateError> {
        let (bucket, expires) = super::window_bucket(key, window_secs, at);
        let (es, en) = split(expires);
        // Read, decide and write under one write lock (`BEGIN IMMEDIATE`), so two processes
        // cannot both take the last unit below the limit.
        self.with_conn(true, "counting", |c| {
            let current: Option<(Vec<u8>, i64)> = c
                .prepare_cached("SELECT value, version FROM kv WHERE ns = ?1 AND key = ?2")?
                .query_row(params![ns, &bucket], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (count, version) = match &current {
                Some((value, version)) => match super::decode_count(ns, &bucket, value) {
                    Ok(count) => (count, *version),
                    Err(e) => return Ok(Err(e)),
                },
                None => (0, 0),
            };
            if limit.is_some_and(|l| count >= l) {
                return Ok(Ok(CounterOutcome::LimitReached(count)));
            }
            let next = count + 1;
            c.prepare_cached(
                "INSERT INTO kv (ns, key, value, version, exp_s, exp_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version,
                   exp_s = excluded.exp_s, exp_ns = excluded.exp_ns",
            )?
            .execute(params![
                ns,
                &bucket,
                next.to_be_bytes().as_slice(),
                version + 1,
                es,
                en
            ])?;
            Ok(Ok(CounterOutcome::Counted(next)))
        })?
    }

    fn run_batch(&self, ops: &mut dyn FnMut() -> Result<(), StateError>) -> Result<(), StateError> {
        self.transaction(|_| ops(), Result::is_ok)?
    }

    fn rolls_back_batches(&self) -> bool {
        true
    }

    fn batches_reads(&self) -> bool {
        false
    }
}

/// Where `picket.toml` puts the state file when `path` is not given.
pub(crate) fn default_path() -> PathBuf {
    PathBuf::from("picket.db")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use chrono::TimeZone;

    use super::*;
    use crate::state::contract;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn in_memory_meets_the_contract() {
        contract::run_contract(&|| Box::new(SqliteStore::in_memory().unwrap()));
    }

    #[test]
    fn file_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        contract::run_contract(&|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::new(SqliteStore::open(dir.path().join(format!("state-{i}.db"))).unwrap())
        });
    }

    #[test]
    fn open_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("state.db");
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn file_survives_reopen_and_is_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            assert_eq!(s.put("cursor", "aws", b"42", None, t(0)).unwrap(), 1);
            let mode: String = s
                .conn()
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
        let s = SqliteStore::open(&path).unwrap();
        let v = s.get("cursor", "aws", t(1)).unwrap().unwrap();
        assert_eq!(v.value, b"42");
        assert_eq!(s.put("cursor", "aws", b"43", None, t(2)).unwrap(), 2);
    }

    #[test]
    fn newer_schema_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .unwrap();
        drop(c);
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn purge_expired_removes_only_expired_rows() {
        let s = SqliteStore::in_memory().unwrap();
        s.put("n", "gone", b"x", Some(t(10)), t(0)).unwrap();
        s.put("n", "edge", b"x", Some(t(20)), t(0)).unwrap();
        s.put("n", "kept", b"x", Some(t(21)), t(0)).unwrap();
        s.put("n", "forever", b"x", None, t(0)).unwrap();
        assert_eq!(s.purge_expired(t(20)).unwrap(), 2);
        let rows: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
        assert!(s.get("n", "kept", t(20)).unwrap().is_some());
    }

    #[test]
    fn occasional_purge_on_writes_keeps_the_table_small() {
        let s = SqliteStore::in_memory().unwrap();
        for i in 0..PURGE_EVERY_WRITES {
            s.put("dedup", &format!("e{i}"), b"", Some(t(1)), t(0))
                .unwrap();
        }
        // The 4096th write (at t(0)) purged nothing: nothing had expired a second before.
        s.put("dedup", "late", b"", None, t(100)).unwrap();
        for i in 0..(PURGE_EVERY_WRITES - 1) {
            s.put("other", &format!("o{i}"), b"", None, t(100)).unwrap();
        }
        let rows: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM kv WHERE ns = 'dedup'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, PURGE_EVERY_WRITES as i64 + 1 - PURGE_BATCH_ROWS);
    }

    #[test]
    fn batch_commits_many_operations_and_nests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        let n = s
            .batch(|s| {
                for i in 0..500 {
                    s.put("h", &format!("k{i:03}"), b"v", None, t(0)).unwrap();
                }
                let inner = s
                    .batch(|s| s.incr_window("c", "x", 60, t(0), Some(5)).unwrap())
                    .unwrap();
                assert_eq!(inner, CounterOutcome::Counted(1));
                s.list("h", "k", 1000, t(0)).unwrap().len()
            })
            .unwrap();
        assert_eq!(n, 500);
        // Visible to a second connection once the batch committed.
        let other = SqliteStore::open(&path).unwrap();
        assert_eq!(other.list("h", "", 1000, t(0)).unwrap().len(), 500);
        assert!(other.gate.lock_state().owner.is_none());
        assert!(s.conn().is_autocommit());
    }

    #[test]
    fn batch_rolls_back_when_the_closure_panics() {
        let s = SqliteStore::in_memory().unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.batch(|s| {
                s.put("n", "k", b"v", None, t(0)).unwrap();
                panic!("detector bug");
            })
        }));
        assert!(r.is_err());
        assert!(s.get("n", "k", t(0)).unwrap().is_none());
        // The lock was released: later calls work.
        assert_eq!(s.put("n", "k", b"v", None, t(0)).unwrap(), 1);
    }

    #[test]
    fn threads_in_a_batch_and_outside_do_not_interleave() {
        let s = Arc::new(SqliteStore::in_memory().unwrap());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for j in 0..50 {
                        if i % 2 == 0 {
                            s.batch(|s| {
                                for _ in 0..3 {
                                    s.incr_window("c", "k", 3600, t(0), None).unwrap();
                                }
                            })
                            .unwrap();
                        } else {
                            s.incr_window("c", "k", 3600, t(j), None).unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let (bucket, _) = crate::state::window_bucket("k", 3600, t(0));
        let v = s.get("c", &bucket, t(0)).unwrap().unwrap();
        let total = 2 * 50 * 3 + 2 * 50;
        assert_eq!(
            crate::state::decode_count("c", &bucket, &v.value).unwrap(),
            total
        );
        assert_eq!(v.version, total);
    }

    /// A measurement, not an assertion on time: run with
    /// `cargo test --no-default-features --lib sqlite_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement; prints operations per second"]
    fn sqlite_throughput() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("bench.db")).unwrap();
        let n = 20_000u32;
        let start = std::time::Instant::now();
        s.batch(|s| {
            for i in 0..n {
                s.put_if_absent("dedup", &format!("e{i}"), b"", Some(t(3600)), t(0))
                    .unwrap();
                s.incr_window("c", &format!("k{}", i % 100), 60, t(0), Some(1000))
                    .unwrap();
            }
        })
        .unwrap();
        let batched = start.elapsed();
        let start = std::time::Instant::now();
        for i in 0..2_000u32 {
            s.put_if_absent("dedup2", &format!("e{i}"), b"", None, t(0))
                .unwrap();
        }
        let single = start.elapsed();
        eprintln!(
            "batched: {:.0} ops/s; unbatched: {:.0} ops/s",
            f64::from(2 * n) / batched.as_secs_f64(),
            2_000.0 / single.as_secs_f64()
        );
    }

    /// Several processes' worth of connections on one file: the limit holds and exactly one
    /// `put_if_absent` wins.
    #[test]
    fn separate_connections_on_one_file_never_exceed_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        const THREADS: usize = 4;
        const TRIES: usize = 40;
        const LIMIT: u64 = 57;
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let path = path.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    // Every thread reaches the barrier, so a failed open fails the test
                    // instead of leaving the others waiting.
                    let s = SqliteStore::open(&path);
                    barrier.wait();
                    let s = s.unwrap();
                    let won = s
                        .put_if_absent("lock", "leader", format!("{i}").as_bytes(), None, t(0))
                        .unwrap();
                    let mut counted = Vec::new();
                    for _ in 0..TRIES {
                        match s
                            .incr_window("actions", "global", 3600, t(5), Some(LIMIT))
                            .unwrap()
                        {
                            CounterOutcome::Counted(n) => counted.push(n),
                            CounterOutcome::LimitReached(n) => assert_eq!(n, LIMIT),
                        }
                    }
                    (won, counted)
                })
            })
            .collect();
        let mut winners = 0;
        let mut all = Vec::new();
        for h in handles {
            let (won, counted) = h.join().unwrap();
            winners += usize::from(won);
            all.extend(counted);
        }
        assert_eq!(winners, 1);
        all.sort_unstable();
        // Every unit below the limit was handed out exactly once.
        assert_eq!(all, (1..=LIMIT).collect::<Vec<_>>());
    }
}
