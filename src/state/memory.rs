//! In-memory state: the default for `picket replay` and for tests. Same semantics as the
//! durable backends; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{CasOutcome, CounterOutcome, StateError, StateStore, Versioned};

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    version: u64,
    expires: Option<DateTime<Utc>>,
}

impl Entry {
    fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|e| e > now)
    }

    /// Rewrites the entry in place, reusing its buffer.
    fn rewrite(&mut self, value: &[u8], version: u64, expires: Option<DateTime<Utc>>) {
        self.value.clear();
        self.value.extend_from_slice(value);
        self.version = version;
        self.expires = expires;
    }
}

/// Namespace -> key -> entry.
type Map = BTreeMap<String, BTreeMap<String, Entry>>;

/// A `StateStore` in a mutex-guarded ordered map, one per namespace: a lookup borrows the
/// caller's names (no key is built to find an entry) and an update rewrites the entry in
/// place.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<Map>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave an entry half-written (every write is
        // one insert), so a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn entry<'m>(map: &'m Map, ns: &str, key: &str) -> Option<&'m Entry> {
    map.get(ns).and_then(|m| m.get(key))
}

fn live<'m>(map: &'m Map, ns: &str, key: &str, now: DateTime<Utc>) -> Option<&'m Entry> {
    entry(map, ns, key).filter(|e| e.live(now))
}

fn versioned(e: &Entry) -> Versioned {
    Versioned {
        value: e.value.clone(),
        version: e.version,
    }
}

/// Writes an entry, reusing the existing one's key and buffer.
fn set(
    map: &mut Map,
    ns: &str,
    key: &str,
    value: &[u8],
    version: u64,
    expires: Option<DateTime<Utc>>,
) {
    let keys = match map.get_mut(ns) {
        Some(keys) => keys,
        None => map.entry(ns.to_string()).or_default(),
    };
    match keys.get_mut(key) {
        Some(e) => e.rewrite(value, version, expires),
        None => {
            keys.insert(
                key.to_string(),
                Entry {
                    value: value.to_vec(),
                    version,
                    expires,
                },
            );
        }
    }
}

impl StateStore for MemoryStore {
    fn batches_reads(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(
        &self,
        ns: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Versioned>, StateError> {
        Ok(live(&self.lock(), ns, key, now).map(versioned))
    }

    fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Versioned>>, StateError> {
        let map = self.lock();
        Ok(keys
            .iter()
            .map(|key| live(&map, ns, key, now).map(versioned))
            .collect())
    }

    fn put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StateError> {
        let mut map = self.lock();
        let version = live(&map, ns, key, now).map_or(1, |e| e.version + 1);
        set(&mut map, ns, key, value, version, expires);
        Ok(version)
    }

    fn put_if_absent(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let mut map = self.lock();
        if live(&map, ns, key, now).is_some() {
            return Ok(false);
        }
        set(&mut map, ns, key, value, 1, expires);
        Ok(true)
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
        let mut map = self.lock();
        // One walk to the entry, compared and rewritten in place (a correlation writes its
        // window on every match).
        if let Some(e) = map.get_mut(ns).and_then(|keys| keys.get_mut(key)) {
            let current = e.live(now).then_some(e.version);
            if current != expected {
                return Ok(CasOutcome::Conflict(current.map(|_| versioned(e))));
            }
            let version = current.map_or(1, |v| v + 1);
            e.rewrite(value, version, expires);
            return Ok(CasOutcome::Written(version));
        }
        if expected.is_some() {
            return Ok(CasOutcome::Conflict(None));
        }
        set(&mut map, ns, key, value, 1, expires);
        Ok(CasOutcome::Written(1))
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StateError> {
        if let Some(keys) = self.lock().get_mut(ns) {
            keys.remove(key);
        }
        Ok(())
    }

    fn list(
        &self,
        ns: &str,
        prefix: &str,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Versioned)>, StateError> {
        let map = self.lock();
        let Some(keys) = map.get(ns) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, e)| e.live(now))
            .take(limit)
            .map(|(key, e)| (key.clone(), versioned(e)))
            .collect())
    }

    fn incr_window(
        &self,
        ns: &str,
        key: &str,
        window_secs: u64,
        at: DateTime<Utc>,
        limit: Option<u64>,
    ) -> Result<CounterOutcome, StateError> {
        let (bucket_key, expires) = super::window_bucket(key, window_secs, at);
        let mut map = self.lock();
        let (count, version) = match entry(&map, ns, &bucket_key) {
            Some(e) => (super::decode_count(ns, &bucket_key, &e.value)?, e.version),
            None => (0, 0),
        };
        if limit.is_some_and(|l| count >= l) {
            // Nothing is written: a refused first increment leaves no (version 0) entry.
            return Ok(CounterOutcome::LimitReached(count));
        }
        set(
            &mut map,
            ns,
            &bucket_key,
            &(count + 1).to_be_bytes(),
            version + 1,
            Some(expires),
        );
        Ok(CounterOutcome::Counted(count + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meets_the_contract() {
        super::super::contract::run_contract(&|| Box::new(MemoryStore::new()));
    }
}
