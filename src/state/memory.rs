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
}

/// A `StateStore` in a mutex-guarded ordered map.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<(String, String), Entry>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        // A panic while holding the lock cannot leave an entry half-written (every write is
        // one insert), so a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn k(ns: &str, key: &str) -> (String, String) {
    (ns.to_string(), key.to_string())
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
        let map = self.lock();
        Ok(map
            .get(&k(ns, key))
            .filter(|e| e.live(now))
            .map(|e| Versioned {
                value: e.value.clone(),
                version: e.version,
            }))
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
            .map(|key| {
                map.get(&k(ns, key))
                    .filter(|e| e.live(now))
                    .map(|e| Versioned {
                        value: e.value.clone(),
                        version: e.version,
                    })
            })
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
        let version = map
            .get(&k(ns, key))
            .filter(|e| e.live(now))
            .map_or(1, |e| e.version + 1);
        map.insert(
            k(ns, key),
            Entry {
                value: value.to_vec(),
                version,
                expires,
            },
        );
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
        if map.get(&k(ns, key)).is_some_and(|e| e.live(now)) {
            return Ok(false);
        }
        map.insert(
            k(ns, key),
            Entry {
                value: value.to_vec(),
                version: 1,
                expires,
            },
        );
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
        let current = map.get(&k(ns, key)).filter(|e| e.live(now));
        let current_version = current.map(|e| e.version);
        if current_version != expected {
            return Ok(CasOutcome::Conflict(current.map(|e| Versioned {
                value: e.value.clone(),
                version: e.version,
            })));
        }
        let version = current_version.map_or(1, |v| v + 1);
        map.insert(
            k(ns, key),
            Entry {
                value: value.to_vec(),
                version,
                expires,
            },
        );
        Ok(CasOutcome::Written(version))
    }

    fn delete(&self, ns: &str, key: &str) -> Result<(), StateError> {
        self.lock().remove(&k(ns, key));
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
        Ok(map
            .range(k(ns, prefix)..)
            .take_while(|((n, key), _)| n == ns && key.starts_with(prefix))
            .filter(|(_, e)| e.live(now))
            .take(limit)
            .map(|((_, key), e)| {
                (
                    key.clone(),
                    Versioned {
                        value: e.value.clone(),
                        version: e.version,
                    },
                )
            })
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
        let (count, version) = match map.get(&k(ns, &bucket_key)) {
            Some(e) => (super::decode_count(ns, &bucket_key, &e.value)?, e.version),
            None => (0, 0),
        };
        if limit.is_some_and(|l| count >= l) {
            // Nothing is written: a refused first increment leaves no (version 0) entry.
            return Ok(CounterOutcome::LimitReached(count));
        }
        map.insert(
            k(ns, &bucket_key),
            Entry {
                value: (count + 1).to_be_bytes().to_vec(),
                version: version + 1,
                expires: Some(expires),
            },
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
