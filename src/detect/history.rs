//! Bounded per-identity state shared by the identity detectors.
//!
//! * [`CachedState`]: a cache in front of the [`StateStore`](crate::state::StateStore) for one
//!   namespace of values ([`Stored`]: compact binary for what is written per sign-in). Every
//!   write is a compare-and-set against the version the cache holds, so the store stays the
//!   source of truth while an identity seen again skips the read round-trip. Write-through by
//!   default (a conflict re-runs the change on the fresh value); write-back in a pipeline
//!   whose store commits batches all-or-nothing (SQLite): changes wait for the end of the
//!   batch, one write per changed identity, and a conflict re-runs the whole batch.
//! * [`SeenProfile`]: "what has this identity been seen with" (countries, ASNs), capped, with
//!   first/last seen in event time, for the first-seen detectors.
//! * [`great_circle_km`]: the one distance function.
//!
//! To add another kind of per-identity state: for a detector that looks at most sign-ins, a
//! field in [`IdentityProfile`](super::profile::IdentityProfile) (one row and cache entry per
//! identity for all of them); otherwise a type implementing [`Stored`] (or serde with short
//! field names and `codec::json_stored!` when written rarely), a cap on every collection in
//! it, one [`CachedState`] for it in the detector, and the detector's
//! `set_write_back`/`flush`/`discard` forwarded to it.

use chrono::{DateTime, Duration, Utc};
use geo::{Distance, Haversine, Point};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::codec::{Reader, Stored, Writer, is_json, json_decode, read_whole};
use super::{DetectContext, DetectError};
use crate::state::{CasOutcome, Versioned};

/// How often a compare-and-set is retried on conflict before giving up.
const CAS_ATTEMPTS: usize = 8;

/// Great-circle (Haversine) distance between two points in kilometres.
pub fn great_circle_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    Haversine.distance(Point::new(lon1, lat1), Point::new(lon2, lat2)) / 1000.0
}

/// A detector setting that does not validate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("detect.{}.{key}: {message}", detector.replace('-', "_"))]
pub struct DetectorConfigError {
    /// Detector id.
    pub detector: &'static str,
    /// The key (`max_speed_kmh`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A short string kept inline when it fits: an identity key in a cache (most emails), so that
/// a lookup compares it in the map's own memory instead of following a pointer to it (that
/// pointer chase was most of the caches' lookup time, several lookups per event), and a value
/// in a [`SeenProfile`] (country codes, ASNs), so that scanning a profile reads one array.
#[derive(Clone)]
pub enum Key {
    Inline { len: u8, bytes: [u8; KEY_INLINE] },
    Heap(Box<str>),
}

/// Longest key kept inline (with its length byte, 32 bytes).
const KEY_INLINE: usize = 31;

impl Key {
    /// The key of `s`.
    pub fn new(s: &str) -> Key {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= KEY_INLINE => {
                let mut bytes = [0u8; KEY_INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                Key::Inline { len, bytes }
            }
            _ => Key::Heap(s.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Key::Heap(s) => s.as_bytes(),
        }
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // `new` copied a whole `str`, so this is its UTF-8 (never the empty fallback).
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Key {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::new(s)
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Key::new(&s))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

/// Hashes as the `str` does, so a map of keys is searched with a `&str`.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl indexmap::Equivalent<Key> for str {
    fn equivalent(&self, key: &Key) -> bool {
        self.as_bytes() == key.as_bytes()
    }
}

/// One cached value.
#[derive(Debug)]
struct Entry<T> {
    /// Version in the store (`None`: absent there).
    version: Option<u64>,
    value: T,
    /// Changed since the last flush (write-back).
    dirty: bool,
    /// When the stored value expires, where known (written by this cache).
    expires: Option<DateTime<Utc>>,
    /// Used since the eviction hand last passed (second chance).
    referenced: bool,
}

/// A cache of one namespace's values, keyed by identity: write-through (each change is a
/// compare-and-set at once) or, switched on by [`CachedState::set_write_back`], write-back
/// (changes stay in the cache until [`CachedState::flush`], then one compare-and-set per
/// changed identity).
///
/// Bounded by `capacity` identities. When full, a clock (second-chance) sweep evicts one
/// clean entry not used since the hand last passed it, so the identities a stream keeps
/// seeing stay cached; unflushed changes are never evicted (the cache may exceed its
/// capacity by the identities changed in the current batch).
#[derive(Debug)]
pub struct CachedState<T> {
    detector: &'static str,
    ns: &'static str,
    capacity: usize,
    ttl: Duration,
    cache: IndexMap<Key, Entry<T>, foldhash::fast::RandomState>,
    /// Clock hand: the next index the eviction sweep looks at.
    hand: usize,
    /// Write-back: identities changed since the last flush.
    dirty: Vec<Box<str>>,
    write_back: bool,
    /// Reused encoding buffer.
    buf: Vec<u8>,
    /// Index of the entry used last: several detectors sharing this cache look up the same
    /// identity one after the other for each event, and the second finds it here.
    last: usize,
    /// Where older pickets kept these values, read for an identity the store has none for.
    legacy: Option<Legacy<T>>,
}

/// Reads an identity's value from the namespaces an older picket kept it in.
pub type LegacyRead<T> = fn(&DetectContext<'_>, &str) -> Result<Option<T>, DetectError>;

/// The older namespaces of a [`CachedState`] and how to read them.
#[derive(Debug)]
struct Legacy<T> {
    namespaces: &'static [&'static str],
    read: LegacyRead<T>,
    /// Whether any of them holds a live row (checked once, at the first miss): in a store
    /// without any, a new identity costs no extra reads.
    present: Option<bool>,
}

impl<T> CachedState<T>
where
    T: Stored + Default,
{
    /// A cache for namespace `ns` holding about `capacity` identities (clean entries evicted
    /// by a clock sweep); stored values live `ttl` (wall clock) after their last write.
    pub fn new(detector: &'static str, ns: &'static str, capacity: usize, ttl: Duration) -> Self {
        CachedState {
            detector,
            ns,
            capacity: capacity.max(1),
            ttl,
            cache: IndexMap::default(),
            hand: 0,
            dirty: Vec::new(),
            write_back: false,
            buf: Vec::new(),
            last: 0,
            legacy: None,
        }
    }

    /// Reads an identity missing from this namespace with `read` while any of `namespaces`
    /// (where older pickets kept it) holds rows; its first write puts it in this namespace.
    pub fn with_legacy(mut self, namespaces: &'static [&'static str], read: LegacyRead<T>) -> Self {
        self.legacy = Some(Legacy {
            namespaces,
            read,
            present: None,
        });
        self
    }

    /// The identity's value as an older picket stored it, if any.
    fn legacy_value(
        &mut self,
        key: &str,
        cx: &DetectContext<'_>,
    ) -> Result<Option<T>, DetectError> {
        let Some(legacy) = &mut self.legacy else {
            return Ok(None);
        };
        let present = match legacy.present {
            Some(p) => p,
            None => {
                let mut any = false;
                for ns in legacy.namespaces {
                    let rows =
                        cx.state
                            .list(ns, "", 1, cx.now)
                            .map_err(|e| DetectError::State {
                                detector: self.detector.to_string(),
                                source: e,
                            })?;
                    any |= !rows.is_empty();
                }
                legacy.present = Some(any);
                any
            }
        };
        if !present {
            return Ok(None);
        }
        (legacy.read)(cx, key)
    }

    /// Raises the capacity and the stored values' lifetime to at least these (a cache that
    /// several detectors share is as large and keeps values as long as the most demanding).
    pub fn widen(&mut self, capacity: usize, ttl: Duration) {
        self.capacity = self.capacity.max(capacity);
        self.ttl = self.ttl.max(ttl);
    }

    /// The index of the identity's entry, checking the one used last first.
    fn find(&self, key: &str) -> Option<usize> {
        match self.cache.get_index(self.last) {
            // Keys are unique in the map: the same key is the same entry.
            Some((k, _)) if k.as_bytes() == key.as_bytes() => Some(self.last),
            _ => self.cache.get_index_of(key),
        }
    }

    fn corrupt(&self, key: &str, what: &str, e: String) -> DetectError {
        DetectError::Internal {
            detector: self.detector.to_string(),
            message: format!("state {}/{key} does not {what}: {e}", self.ns),
        }
    }

    fn decode(&self, v: Option<Versioned>, key: &str) -> Result<Entry<T>, DetectError> {
        let (version, value) = match v {
            Some(v) => {
                let value = T::decode(&v.value).map_err(|e| self.corrupt(key, "decode", e))?;
                (Some(v.version), value)
            }
            None => (None, T::default()),
        };
        Ok(Entry {
            version,
            value,
            dirty: false,
            expires: None,
            referenced: true,
        })
    }

    fn state_err(&self, source: crate::state::StateError) -> DetectError {
        DetectError::State {
            detector: self.detector.to_string(),
            source,
        }
    }

    /// Reads the identity's value from the store into the cache; returns its index there.
    fn fetch(&mut self, key: &str, cx: &DetectContext<'_>) -> Result<usize, DetectError> {
        let stored = cx
            .state
            .get(self.ns, key, cx.now)
            .map_err(|e| self.state_err(e))?;
        let mut entry = self.decode(stored, key)?;
        if entry.version.is_none()
            && let Some(value) = self.legacy_value(key, cx)?
        {
            entry.value = value;
        }
        Ok(self.insert(key, entry))
    }

    /// Caches `entry` for `key`, first evicting one clean entry when the cache is full;
    /// returns its index.
    fn insert(&mut self, key: &str, entry: Entry<T>) -> usize {
        if let Some((i, _, e)) = self.cache.get_full_mut(key) {
            *e = entry;
            return i;
        }
        if self.cache.len() >= self.capacity {
            self.evict_one();
        }
        self.cache.insert_full(Key::new(key), entry).0
    }

    /// Clock sweep: clears the reference bit of recently used entries and evicts the first
    /// clean entry whose bit is already clear. Dirty entries are skipped (their change is not
    /// in the store yet); when every entry is dirty nothing is evicted and the cache grows
    /// until the flush.
    fn evict_one(&mut self) {
        let len = self.cache.len();
        // Two rounds: the first may only clear reference bits.
        for _ in 0..2 * len {
            if self.hand >= self.cache.len() {
                self.hand = 0;
            }
            let Some((_, e)) = self.cache.get_index_mut(self.hand) else {
                return;
            };
            if e.dirty {
                self.hand += 1;
            } else if e.referenced {
                e.referenced = false;
                self.hand += 1;
            } else {
                // The last entry moves into this slot; the hand looks at it next.
                self.cache.swap_remove_index(self.hand);
                return;
            }
        }
    }

    /// Makes sure the identity's value is cached and not past the expiry this cache wrote
    /// it with (the store treats such a value as absent, so the cache does too; a clean
    /// value read from the store is kept until a write says otherwise).
    /// Returns the entry's index in the cache, marked as used.
    fn ensure_live(&mut self, key: &str, cx: &DetectContext<'_>) -> Result<usize, DetectError> {
        let Some((i, e)) = self
            .find(key)
            .and_then(|i| Some((i, self.cache.get_index_mut(i)?.1)))
        else {
            let i = self.fetch(key, cx)?;
            self.last = i;
            return Ok(i);
        };
        self.last = i;
        e.referenced = true;
        // A dirty entry was changed in this batch, so it is written with a later expiry at
        // its flush.
        if !e.dirty && e.expires.is_some_and(|at| at <= cx.now) {
            e.value = T::default();
            e.version = None;
            e.expires = None;
        }
        Ok(i)
    }

    /// Loads the values of the identities in `keys` that are not cached with one multi-key
    /// read ([`StateStore::get_many`](crate::state::StateStore::get_many)), so a batch's
    /// misses cost one round-trip instead of one each. At most `capacity` identities are
    /// loaded; the rest are read when used.
    pub fn prefetch<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k str>,
        cx: &DetectContext<'_>,
    ) -> Result<(), DetectError> {
        let mut missing: Vec<&str> = keys
            .into_iter()
            .filter(|k| !k.is_empty() && !self.cache.contains_key(*k))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing.truncate(self.capacity);
        if missing.is_empty() {
            return Ok(());
        }
        let stored = cx
            .state
            .get_many(self.ns, &missing, cx.now)
            .map_err(|e| self.state_err(e))?;
        for (key, v) in missing.into_iter().zip(stored) {
            let mut entry = self.decode(v, key)?;
            if entry.version.is_none()
                && let Some(value) = self.legacy_value(key, cx)?
            {
                entry.value = value;
            }
            self.insert(key, entry);
        }
        Ok(())
    }

    /// Switches write-back on or off (flush first when switching it off).
    pub fn set_write_back(&mut self, on: bool) {
        self.write_back = on;
    }

    /// Writes every identity changed since the last flush, each with one compare-and-set
    /// against the version it was read at. On a conflict the cache is cleared and
    /// [`DetectError::Conflict`] returned: the caller re-runs its batch on fresh state (in a
    /// store whose batches roll back, so none of this flush's writes stay).
    pub fn flush(&mut self, cx: &DetectContext<'_>) -> Result<(), DetectError> {
        let result = self.flush_dirty(cx);
        if result.is_err() {
            self.discard();
        }
        result
    }

    fn flush_dirty(&mut self, cx: &DetectContext<'_>) -> Result<(), DetectError> {
        let expires = Some(cx.now + self.ttl);
        let mut dirty = std::mem::take(&mut self.dirty);
        // In key order: consecutive writes land on neighbouring pages of the store's index.
        dirty.sort_unstable();
        for key in &dirty {
            let Some((i, _, entry)) = self.cache.get_full_mut(&**key) else {
                return Err(self.corrupt(key, "stay cached", "evicted before its flush".into()));
            };
            entry.dirty = false;
            self.buf.clear();
            if let Err(e) = entry.value.encode(&mut self.buf) {
                return Err(self.corrupt(key, "encode", e));
            }
            let expected = entry.version;
            let mut outcome = cx
                .state
                .compare_and_set(self.ns, key, expected, &self.buf, expires, cx.now)
                .map_err(|e| self.state_err(e))?;
            if expected.is_some() && outcome == CasOutcome::Conflict(None) {
                // The value read expired during the batch (the store's clock moves with event
                // time); no worker deletes detector state. Written through at the time of the
                // change it would have been live, so it is written as new.
                outcome = cx
                    .state
                    .compare_and_set(self.ns, key, None, &self.buf, expires, cx.now)
                    .map_err(|e| self.state_err(e))?;
            }
            match outcome {
                CasOutcome::Written(v) => {
                    if let Some((_, entry)) = self.cache.get_index_mut(i) {
                        entry.version = Some(v);
                        entry.expires = expires;
                    }
                }
                CasOutcome::Conflict(_) => {
                    tracing::debug!(
                        detector = self.detector,
                        ns = self.ns,
                        key = &**key,
                        "state conflict at flush; the batch runs again"
                    );
                    return Err(DetectError::Conflict {
                        detector: self.detector.to_string(),
                        key: format!("{}/{key}", self.ns),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the changes waiting for [`CachedState::flush`] fill the capacity (they are
    /// never evicted, so the cache grows past its capacity until they are flushed).
    pub fn is_full_of_changes(&self) -> bool {
        self.dirty.len() >= self.capacity
    }

    /// Forgets every cached value and unflushed change.
    pub fn discard(&mut self) {
        self.cache.clear();
        self.dirty.clear();
        self.hand = 0;
    }

    /// Reads the identity's value from the store (not the cache, which it refreshes): for
    /// decisions that write nothing, where a stale cache would never be corrected.
    pub fn read_fresh(&mut self, key: &str, cx: &DetectContext<'_>) -> Result<&T, DetectError> {
        // An unflushed change of this batch is fresher than the store.
        let i = match self.cache.get_full(key) {
            Some((i, _, e)) if e.dirty => i,
            _ => self.fetch(key, cx)?,
        };
        match self.cache.get_index(i) {
            Some((_, e)) => Ok(&e.value),
            None => Err(self.corrupt(key, "stay cached", "just read".into())),
        }
    }

    /// Applies `f` to the identity's value (default when absent) and stores the result when
    /// `f` says it changed it. `f` returns `(result, changed)` and may run more than once (on
    /// a compare-and-set conflict it runs again on the fresh value), so it must be pure.
    pub fn update<R>(
        &mut self,
        key: &str,
        cx: &DetectContext<'_>,
        f: impl FnMut(&mut T) -> (R, bool),
    ) -> Result<R, DetectError> {
        let result = if self.write_back {
            self.update_deferred(key, cx, f)
        } else {
            self.update_cached(key, cx, f)
        };
        if result.is_err() {
            // The cached value may hold a change the store did not take.
            self.cache.swap_remove(key);
        }
        result
    }

    fn update_deferred<R>(
        &mut self,
        key: &str,
        cx: &DetectContext<'_>,
        mut f: impl FnMut(&mut T) -> (R, bool),
    ) -> Result<R, DetectError> {
        let i = self.ensure_live(key, cx)?;
        let Some((_, entry)) = self.cache.get_index_mut(i) else {
            return Err(self.corrupt(key, "stay cached", "evicted mid-update".into()));
        };
        let (result, changed) = f(&mut entry.value);
        if changed && !entry.dirty {
            entry.dirty = true;
            self.dirty.push(key.into());
        }
        Ok(result)
    }

    fn update_cached<R>(
        &mut self,
        key: &str,
        cx: &DetectContext<'_>,
        mut f: impl FnMut(&mut T) -> (R, bool),
    ) -> Result<R, DetectError> {
        self.ensure_live(key, cx)?;
        for _ in 0..CAS_ATTEMPTS {
            // The value is changed in place (no copy); on a conflict it is replaced by what
            // the store holds and `f` runs again.
            let Some(entry) = self.cache.get_mut(key) else {
                return Err(self.corrupt(key, "stay cached", "evicted mid-update".into()));
            };
            let (result, changed) = f(&mut entry.value);
            if !changed {
                return Ok(result);
            }
            let expected = entry.version;
            self.buf.clear();
            if let Err(e) = entry.value.encode(&mut self.buf) {
                return Err(self.corrupt(key, "encode", e));
            }
            let expires = Some(cx.now + self.ttl);
            match cx
                .state
                .compare_and_set(self.ns, key, expected, &self.buf, expires, cx.now)
                .map_err(|e| self.state_err(e))?
            {
                CasOutcome::Written(v) => {
                    if let Some(entry) = self.cache.get_mut(key) {
                        entry.version = Some(v);
                        entry.expires = expires;
                    }
                    return Ok(result);
                }
                CasOutcome::Conflict(now) => {
                    tracing::debug!(
                        detector = self.detector,
                        ns = self.ns,
                        key,
                        "state conflict, retrying"
                    );
                    let fresh = self.decode(now, key)?;
                    self.insert(key, fresh);
                }
            }
        }
        Err(DetectError::Internal {
            detector: self.detector.to_string(),
            message: format!(
                "state {}/{key}: still conflicting after {CAS_ATTEMPTS} attempts",
                self.ns
            ),
        })
    }
}

/// One thing (a country code, an ASN) an identity was seen with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The value (`DE`, `AS3320`).
    #[serde(rename = "k")]
    pub key: Key,
    /// Earliest event time seen (unix seconds).
    #[serde(rename = "f")]
    pub first: i64,
    /// Latest event time seen (unix seconds).
    #[serde(rename = "l")]
    pub last: i64,
}

/// Outcome of [`SeenProfile::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Already known; nothing to report.
    Known,
    /// New, but the identity is still in its learning period.
    Learning,
    /// New after the learning period: report it.
    New,
}

/// How stale `Seen::last` may get before a sighting rewrites it. `last` only orders the
/// eviction of values when a profile is full, so a week's precision does: a known value seen
/// again within a week of its recorded last sighting writes nothing.
const LAST_SEEN_PRECISION_SECS: i64 = 7 * 24 * 3600;

/// What an identity has been seen with, capped at a number of values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenProfile {
    /// Earliest event time of the identity (unix seconds); `None` before the first event.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// Values seen (at most the cap; least recently seen evicted first).
    #[serde(rename = "v", default)]
    pub values: Vec<Seen>,
}

impl SeenProfile {
    /// Records `value` seen at `time`; reports whether it is new after `learning` of history.
    /// Returns the observation and whether the profile changed.
    pub fn observe(
        &mut self,
        value: &str,
        time: DateTime<Utc>,
        learning: Duration,
        cap: usize,
    ) -> (Observation, bool) {
        let t = time.timestamp();
        if let Some(seen) = self.values.iter_mut().find(|s| s.key == *value) {
            // `last` only orders evictions, so a week's precision is enough: a known value
            // seen again within a week of its last sighting writes nothing (most sign-ins).
            // `last` moves only when it is rewritten, so what is cached is what is stored and
            // the stored `last` is never more than the precision behind.
            let earlier = t < seen.first;
            let stale = t > seen.last.saturating_add(LAST_SEEN_PRECISION_SECS);
            if earlier {
                seen.first = t;
            }
            if stale {
                seen.last = t;
            }
            let changed = earlier || stale;
            let since_changed = self.since.is_none_or(|s| t < s);
            if since_changed {
                self.since = Some(t);
            }
            return (Observation::Known, changed || since_changed);
        }
        let learned = self
            .since
            .is_some_and(|s| t.saturating_sub(s) >= learning.num_seconds());
        self.since = Some(self.since.map_or(t, |s| s.min(t)));
        self.values.push(Seen {
            key: Key::new(value),
            first: t,
            last: t,
        });
        if self.values.len() > cap.max(1) {
            // Evict the least recently seen value.
            if let Some(pos) = self
                .values
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| (s.last, s.first))
                .map(|(i, _)| i)
            {
                self.values.remove(pos);
            }
        }
        (
            if learned {
                Observation::New
            } else {
                Observation::Learning
            },
            true,
        )
    }
}

/// Format byte of a [`SeenProfile`] stored on its own.
const SEEN_PROFILE_FORMAT: u8 = 0xB1;

impl SeenProfile {
    /// Appends the profile's fields (also inside other values).
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        match self.since {
            Some(s) => {
                w.u64(1);
                w.i64(s);
            }
            None => w.u64(0),
        }
        w.u64(self.values.len() as u64);
        for v in &self.values {
            w.str(&v.key);
            w.i64(v.first);
            w.i64(v.last - v.first);
        }
    }

    /// Reads what [`SeenProfile::write`] wrote.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<SeenProfile, String> {
        let since = match r.u64()? {
            0 => None,
            _ => Some(r.i64()?),
        };
        let n = r.count()?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            let key = Key::new(&r.str()?);
            let first = r.i64()?;
            let last = first.saturating_add(r.i64()?);
            values.push(Seen { key, first, last });
        }
        Ok(SeenProfile { since, values })
    }
}

impl Stored for SeenProfile {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        self.write(&mut Writer::new(out, SEEN_PROFILE_FORMAT));
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if is_json(bytes) {
            return json_decode(bytes);
        }
        read_whole(bytes, SEEN_PROFILE_FORMAT, SeenProfile::read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemoryStore, StateStore};

    use crate::detect::codec::json_stored;

    json_stored!(Vec<u32>);

    #[test]
    fn write_back_writes_once_per_flush_and_a_stale_flush_conflicts() {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        let mut a: CachedState<Vec<u32>> = CachedState::new("test", "ns", 10, Duration::days(1));
        a.set_write_back(true);
        for i in 1..=3 {
            a.update("k", &cx, |v| {
                v.push(i);
                ((), true)
            })
            .unwrap();
        }
        assert!(store.get("ns", "k", t(0)).unwrap().is_none(), "held back");
        a.flush(&cx).unwrap();
        let stored = store.get("ns", "k", t(0)).unwrap().unwrap();
        assert_eq!(
            (stored.value.as_slice(), stored.version),
            (&b"[1,2,3]"[..], 1)
        );
        // Another worker writes; `a`'s next flush must not overwrite it.
        store.put("ns", "k", b"[9]", None, t(0)).unwrap();
        a.update("k", &cx, |v| {
            v.push(4);
            ((), true)
        })
        .unwrap();
        assert!(matches!(a.flush(&cx), Err(DetectError::Conflict { .. })));
        assert_eq!(store.get("ns", "k", t(0)).unwrap().unwrap().value, b"[9]");
        // The cache was dropped: the re-run reads the other worker's value.
        let seen = a.update("k", &cx, |v| (v.clone(), false)).unwrap();
        assert_eq!(seen, vec![9]);
        // A value that expired during the batch is written as new, changes included.
        let late = DetectContext {
            state: &store,
            now: t(48),
        };
        let mut b: CachedState<Vec<u32>> = CachedState::new("test", "ns2", 10, Duration::days(1));
        b.set_write_back(true);
        b.update("k", &cx, |v| {
            v.push(1);
            ((), true)
        })
        .unwrap();
        b.flush(&cx).unwrap();
        b.update("k", &cx, |v| {
            v.push(2);
            ((), true)
        })
        .unwrap();
        b.flush(&late).unwrap();
        assert_eq!(
            store.get("ns2", "k", t(48)).unwrap().unwrap().value,
            b"[1,2]"
        );
    }

    #[test]
    fn cache_evicts_one_clean_unused_entry_and_keeps_changes_and_hot_keys() {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        let touch = |c: &mut CachedState<Vec<u32>>, k: &str, change: bool| {
            c.update(k, &cx, |v| {
                if change {
                    v.push(1);
                }
                ((), change)
            })
            .unwrap();
        };
        let cached = |c: &CachedState<Vec<u32>>| {
            let mut keys: Vec<&str> = c.cache.keys().map(Key::as_str).collect();
            keys.sort_unstable();
            keys.join(",")
        };
        let mut c: CachedState<Vec<u32>> = CachedState::new("test", "ns", 3, Duration::days(1));
        for k in ["a", "b", "c", "d"] {
            touch(&mut c, k, false);
        }
        // Full at "d": one entry went, not the whole cache.
        assert_eq!(cached(&c), "b,c,d");
        // "b" is used again, so the sweep passes it over while it finds a victim.
        touch(&mut c, "b", false);
        touch(&mut c, "e", false);
        touch(&mut c, "b", false);
        touch(&mut c, "f", false);
        assert!(c.cache.contains_key("b"), "{}", cached(&c));
        assert_eq!(c.cache.len(), 3);

        // Write-back: changed entries stay cached past the capacity until their flush.
        let mut w: CachedState<Vec<u32>> = CachedState::new("test", "ns2", 2, Duration::days(1));
        w.set_write_back(true);
        for k in ["a", "b", "c", "d"] {
            touch(&mut w, k, true);
        }
        assert_eq!(cached(&w), "a,b,c,d");
        w.flush(&cx).unwrap();
        for k in ["a", "b", "c", "d"] {
            assert_eq!(store.get("ns2", k, t(0)).unwrap().unwrap().value, b"[1]");
        }
        touch(&mut w, "e", false);
        assert_eq!(w.cache.len(), 4, "one clean entry made room for e");
    }

    #[test]
    fn prefetch_loads_what_the_store_holds_within_the_capacity() {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        store.put("ns", "a", b"[1]", None, t(0)).unwrap();
        store.put("ns", "b", b"[2]", None, t(0)).unwrap();
        let mut c: CachedState<Vec<u32>> = CachedState::new("test", "ns", 2, Duration::days(1));
        c.set_write_back(true);
        c.prefetch(["b", "a", "b", "", "c"], &cx).unwrap();
        assert_eq!(c.cache.len(), 2, "capacity bounds a prefetch");
        let a = c.update("a", &cx, |v| (v.clone(), false)).unwrap();
        let b = c.update("b", &cx, |v| (v.clone(), false)).unwrap();
        let none = c.update("c", &cx, |v| (v.clone(), false)).unwrap();
        assert_eq!((a, b, none), (vec![1], vec![2], vec![]));
        // A cached change is not replaced by a later prefetch.
        c.update("a", &cx, |v| {
            v.push(5);
            ((), true)
        })
        .unwrap();
        c.prefetch(["a"], &cx).unwrap();
        c.flush(&cx).unwrap();
        assert_eq!(store.get("ns", "a", t(0)).unwrap().unwrap().value, b"[1,5]");
    }

    #[test]
    fn profile_round_trips_binary_and_reads_the_old_json() {
        let mut p = SeenProfile::default();
        let learn = Duration::days(14);
        p.observe("DE", t(0), learn, 3);
        p.observe("AS3320", t(30), learn, 3);
        let mut bytes = Vec::new();
        p.encode(&mut bytes).unwrap();
        assert_eq!(SeenProfile::decode(&bytes).unwrap(), p);
        let json = serde_json::to_vec(&p).unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        assert_eq!(SeenProfile::decode(&json).unwrap(), p);
        assert_eq!(
            SeenProfile::decode(&[]).unwrap_err(),
            "empty value",
            "an empty value is corrupt"
        );
        bytes.push(0);
        assert!(SeenProfile::decode(&bytes).is_err(), "trailing bytes");
    }

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn great_circle_london_new_york() {
        let d = great_circle_km(51.5074, -0.1278, 40.7128, -74.0060);
        assert!((d - 5570.0).abs() < 15.0, "{d}");
    }

    #[test]
    fn profile_learns_then_reports_and_stays_capped() {
        let mut p = SeenProfile::default();
        let learn = Duration::days(14);
        assert_eq!(p.observe("DE", t(0), learn, 3).0, Observation::Learning);
        assert_eq!(p.observe("FR", t(24), learn, 3).0, Observation::Learning);
        // Seen again within a week of the recorded sighting: nothing to write.
        assert_eq!(
            p.observe("DE", t(48), learn, 3),
            (Observation::Known, false)
        );
        assert_eq!(
            p.observe("DE", t(8 * 24), learn, 3),
            (Observation::Known, true)
        );
        assert_eq!(
            p.observe("DE", t(8 * 24 + 2), learn, 3),
            (Observation::Known, false)
        );
        assert_eq!(p.observe("US", t(15 * 24), learn, 3).0, Observation::New);
        assert_eq!(p.observe("JP", t(16 * 24), learn, 3).0, Observation::New);
        assert_eq!(p.values.len(), 3);
        // FR was the least recently seen and is gone.
        assert!(p.values.iter().all(|s| s.key.as_str() != "FR"));
    }

    #[test]
    fn cached_state_survives_a_concurrent_writer() {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        let mut a: CachedState<Vec<u32>> = CachedState::new("test", "ns", 10, Duration::days(1));
        let mut b: CachedState<Vec<u32>> = CachedState::new("test", "ns", 10, Duration::days(1));
        a.update("k", &cx, |v| {
            v.push(1);
            ((), true)
        })
        .unwrap();
        b.update("k", &cx, |v| {
            v.push(2);
            ((), true)
        })
        .unwrap();
        // `a`'s cache is stale; its write must conflict, reload and keep b's value.
        let seen = a
            .update("k", &cx, |v| {
                v.push(3);
                (v.clone(), true)
            })
            .unwrap();
        assert_eq!(seen, vec![1, 2, 3]);
        let stored = store.get("ns", "k", t(0)).unwrap().unwrap();
        assert_eq!(stored.value, b"[1,2,3]");
    }
}
