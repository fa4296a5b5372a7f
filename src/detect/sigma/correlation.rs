//! Correlation state in the [`StateStore`], in event time.
//!
//! Layout: namespace `sigma-corr`, key `<correlation id>|<JSON array of group values>`, value
//! JSON `{"e": [[time_ms, ref_pos, value, uid], ...], "f": fired_until_ms}`: the matches of the
//! group that are at most one timespan older than the newest, capped at [`MAX_ENTRIES`]
//! (newest kept), written with compare-and-set so several processes can share a group, with a
//! wall-clock TTL so idle groups disappear. An event's uid is stored once per referenced rule,
//! so a re-processed batch never counts twice; an out-of-order event inside the window counts.
//! After firing, a group stays quiet until one timespan after the firing event.
//!
//! To add a correlation type: a [`CorrelationType`] variant (in `rule.rs`) and its arm in
//! `holds`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::rule::CorrelationType;
use crate::state::{CasOutcome, StateError, StateStore};

/// State namespace of correlation windows.
pub const NAMESPACE: &str = "sigma-corr";
/// At most this many matches are kept per group.
pub const MAX_ENTRIES: usize = 1000;
const CAS_TRIES: usize = 16;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Window {
    /// (time ms, referenced rule position, value for value_count, event uid).
    e: Vec<Entry>,
    /// Quiet until this event time (ms) after firing.
    #[serde(default)]
    f: Option<i64>,
}

/// What a correlation needs to evaluate one group.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// Correlation id (state key prefix).
    pub id: &'a str,
    /// Type.
    pub typ: CorrelationType,
    /// Timespan in ms.
    pub span_ms: i64,
    /// Threshold: events (event_count), distinct values (value_count), distinct referenced
    /// rules (temporal); temporal_ordered always needs every rule in order.
    pub threshold: u64,
    /// Number of referenced rules.
    pub n_refs: usize,
}

/// One observed match.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The group values (in `group-by` order).
    pub group: &'a [String],
    /// Which referenced rule matched (position in `rules:`).
    pub ref_pos: usize,
    /// Event time.
    pub time: DateTime<Utc>,
    /// Event uid.
    pub uid: &'a str,
    /// The value_count field's value.
    pub value: Option<String>,
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// Count (events, distinct values or referenced rules seen) in the satisfying window.
    pub count: u64,
    /// Uids of the window's events, oldest first.
    pub uids: Vec<String>,
    /// Window start and end (event time of its first and last match).
    pub first: DateTime<Utc>,
    /// Last match time.
    pub last: DateTime<Utc>,
}

fn key(id: &str, group: &[String]) -> String {
    format!("{id}|{}", serde_json::Value::from(group.to_vec()))
}

type Entry = (i64, usize, Option<String>, String);

/// The first window (of one timespan, starting at a match) that contains `t` and satisfies
/// the condition: `Some((count, start, last match time))`. Entries are sorted by (time, ref).
/// One pass with two pointers: O(n) for the count types, O(n * refs) for temporal_ordered.
fn holds(spec: &Spec<'_>, entries: &[Entry], t: i64) -> Option<(u64, i64, i64)> {
    let n = entries.len();
    let needed = match spec.typ {
        CorrelationType::TemporalOrdered => spec.n_refs as u64,
        _ => spec.threshold.max(1),
    };
    // next[j][i]: the first index >= i whose ref is j (temporal_ordered only).
    let next: Vec<Vec<usize>> = if spec.typ == CorrelationType::TemporalOrdered {
        (0..spec.n_refs)
            .map(|j| {
                let mut v = vec![n; n + 1];
                for i in (0..n).rev() {
                    v[i] = if entries[i].1 == j { i } else { v[i + 1] };
                }
                v
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut values: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut refs = vec![0usize; spec.n_refs];
    let mut end = 0usize; // exclusive end of the window
    let mut prev_start = 0usize; // entries before this index were removed from the counters
    for si in 0..n {
        let start = entries[si].0;
        if si > 0 && entries[si - 1].0 == start {
            continue; // one window per distinct start time
        }
        // Drop the entries before si from the counters.
        for e in &entries[prev_start..si] {
            if let Some(v) = e.2.as_deref()
                && let Some(c) = values.get_mut(v)
            {
                *c -= 1;
                if *c == 0 {
                    values.remove(v);
                }
            }
            if let Some(r) = refs.get_mut(e.1) {
                *r -= 1;
            }
        }
        prev_start = si;
        if end < si {
            end = si;
        }
        while end < n && entries[end].0 <= start + spec.span_ms {
            if let Some(v) = entries[end].2.as_deref() {
                *values.entry(v).or_insert(0) += 1;
            }
            if let Some(r) = refs.get_mut(entries[end].1) {
                *r += 1;
            }
            end += 1;
        }
        if start < t - spec.span_ms {
            continue;
        }
        if start > t {
            break;
        }
        let count = match spec.typ {
            CorrelationType::EventCount => (end - si) as u64,
            CorrelationType::ValueCount => values.len() as u64,
            CorrelationType::Temporal => refs.iter().filter(|c| **c > 0).count() as u64,
            CorrelationType::TemporalOrdered => {
                let mut p = si;
                let mut ok = true;
                for table in &next {
                    let idx = table[p.min(n)];
                    if idx >= end {
                        ok = false;
                        break;
                    }
                    p = idx + 1;
                }
                if ok { spec.n_refs as u64 } else { 0 }
            }
        };
        if count >= needed {
            // INVARIANT: the window always holds its own start entry, so end > si.
            return Some((count, start, entries[end - 1].0));
        }
    }
    None
}

/// Records one match and tells whether the correlation fires for its group.
pub fn observe(
    store: &dyn StateStore,
    spec: &Spec<'_>,
    obs: &Observation<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Fired>, StateError> {
    let key = key(spec.id, obs.group);
    let t = obs.time.timestamp_millis();
    let ttl = Duration::milliseconds(spec.span_ms.max(60_000) * 2) + Duration::hours(1);
    for _ in 0..CAS_TRIES {
        let current = store.get(NAMESPACE, &key, now)?;
        let (mut w, version) = match &current {
            Some(v) => match serde_json::from_slice::<Window>(&v.value) {
                Ok(w) => (w, Some(v.version)),
                Err(e) => {
                    return Err(StateError::Corrupt {
                        namespace: NAMESPACE.to_string(),
                        key,
                        message: e.to_string(),
                    });
                }
            },
            None => (Window::default(), None),
        };
        if w.e.iter().any(|e| e.1 == obs.ref_pos && e.3 == obs.uid) {
            return Ok(None);
        }
        w.e.push((t, obs.ref_pos, obs.value.clone(), obs.uid.to_string()));
        w.e.sort_by_key(|e| (e.0, e.1));
        let newest = w.e.last().map_or(t, |e| e.0);
        w.e.retain(|e| e.0 >= newest - spec.span_ms);
        if w.e.len() > MAX_ENTRIES {
            let excess = w.e.len() - MAX_ENTRIES;
            w.e.drain(..excess);
        }
        let mut fired = None;
        let quiet = w.f.is_some_and(|f| t <= f);
        let kept = w.e.iter().any(|e| e.0 == t && e.3 == obs.uid);
        if !quiet
            && kept
            && let Some((count, start, last)) = holds(spec, &w.e, t)
        {
            let uids =
                w.e.iter()
                    .filter(|e| e.0 >= start && e.0 <= start + spec.span_ms)
                    .map(|e| e.3.clone())
                    .collect();
            w.f = Some(t + spec.span_ms);
            fired = Some(Fired {
                count,
                uids,
                first: DateTime::from_timestamp_millis(start).unwrap_or(obs.time),
                last: DateTime::from_timestamp_millis(last).unwrap_or(obs.time),
            });
        }
        let bytes = serde_json::to_vec(&w).map_err(|e| StateError::Corrupt {
            namespace: NAMESPACE.to_string(),
            key: key.clone(),
            message: e.to_string(),
        })?;
        match store.compare_and_set(NAMESPACE, &key, version, &bytes, Some(now + ttl), now)? {
            CasOutcome::Written(_) => return Ok(fired),
            CasOutcome::Conflict(_) => continue,
        }
    }
    Err(StateError::Backend {
        backend: store.name(),
        message: format!("correlation state {key}: too much contention (busy)"),
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn spec(typ: CorrelationType, threshold: u64, n_refs: usize) -> Spec<'static> {
        Spec {
            id: "c",
            typ,
            span_ms: 600_000,
            threshold,
            n_refs,
        }
    }

    fn obs<'a>(
        group: &'a [String],
        pos: usize,
        s: i64,
        uid: &'a str,
        v: Option<&str>,
    ) -> Observation<'a> {
        Observation {
            group,
            ref_pos: pos,
            time: at(s),
            uid,
            value: v.map(String::from),
        }
    }

    #[test]
    fn event_count_counts_out_of_order_and_ignores_replays() {
        let store = MemoryStore::new();
        let sp = spec(CorrelationType::EventCount, 3, 1);
        let g = vec!["k".to_string()];
        let now = at(0);
        assert!(
            observe(&store, &sp, &obs(&g, 0, 300, "a", None), now)
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 300, "a", None), now)
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 900, "b", None), now)
                .unwrap()
                .is_none()
        );
        // Late event between the two: a window [300, 900] holds three.
        let f = observe(&store, &sp, &obs(&g, 0, 500, "c", None), now)
            .unwrap()
            .unwrap();
        assert_eq!(f.count, 3);
        assert_eq!(f.uids, vec!["a", "c", "b"]);
        // Quiet after firing.
        assert!(
            observe(&store, &sp, &obs(&g, 0, 400, "d", None), now)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn windows_longer_than_span_do_not_fire() {
        let store = MemoryStore::new();
        let sp = spec(CorrelationType::EventCount, 2, 1);
        let g = vec!["k".to_string()];
        assert!(
            observe(&store, &sp, &obs(&g, 0, 0, "a", None), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 601, "b", None), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 1300, "c", None), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 1201, "d", None), at(0))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn value_count_needs_distinct_values() {
        let store = MemoryStore::new();
        let sp = spec(CorrelationType::ValueCount, 3, 1);
        let g = vec!["1.2.3.4".to_string()];
        assert!(
            observe(&store, &sp, &obs(&g, 0, 1, "a", Some("u1")), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 2, "b", Some("u1")), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 3, "c", Some("u2")), at(0))
                .unwrap()
                .is_none()
        );
        let f = observe(&store, &sp, &obs(&g, 0, 4, "d", Some("u3")), at(0))
            .unwrap()
            .unwrap();
        assert_eq!(f.count, 3);
    }

    #[test]
    fn temporal_ordered_respects_order() {
        let store = MemoryStore::new();
        let sp = spec(CorrelationType::TemporalOrdered, 1, 2);
        let g = vec!["alice".to_string()];
        // Success before failure: no.
        assert!(
            observe(&store, &sp, &obs(&g, 1, 10, "s1", None), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 20, "f1", None), at(0))
                .unwrap()
                .is_none()
        );
        // Then a success after the failure: yes.
        assert!(
            observe(&store, &sp, &obs(&g, 1, 30, "s2", None), at(0))
                .unwrap()
                .is_some()
        );
        let sp = Spec {
            id: "t",
            ..spec(CorrelationType::Temporal, 2, 2)
        };
        assert!(
            observe(&store, &sp, &obs(&g, 1, 10, "s1", None), at(0))
                .unwrap()
                .is_none()
        );
        assert!(
            observe(&store, &sp, &obs(&g, 0, 20, "f1", None), at(0))
                .unwrap()
                .is_some()
        );
    }

    /// The plain definition: some window [s, s + span] starting at a match time in
    /// [t - span, t] satisfies the condition.
    fn reference(spec: &Spec<'_>, entries: &[Entry], t: i64) -> bool {
        entries
            .iter()
            .map(|e| e.0)
            .filter(|s| *s >= t - spec.span_ms && *s <= t)
            .any(|s| {
                let w: Vec<&Entry> = entries
                    .iter()
                    .filter(|e| e.0 >= s && e.0 <= s + spec.span_ms)
                    .collect();
                match spec.typ {
                    CorrelationType::EventCount => w.len() as u64 >= spec.threshold,
                    CorrelationType::ValueCount => {
                        let mut v: Vec<&str> = w.iter().filter_map(|e| e.2.as_deref()).collect();
                        v.sort_unstable();
                        v.dedup();
                        v.len() as u64 >= spec.threshold
                    }
                    CorrelationType::Temporal => {
                        (0..spec.n_refs)
                            .filter(|r| w.iter().any(|e| e.1 == *r))
                            .count() as u64
                            >= spec.threshold
                    }
                    CorrelationType::TemporalOrdered => {
                        let mut next = 0;
                        for e in &w {
                            if next < spec.n_refs && e.1 == next {
                                next += 1;
                            }
                        }
                        next == spec.n_refs
                    }
                }
            })
    }

    proptest::proptest! {
        #[test]
        fn holds_agrees_with_the_definition(
            raw in proptest::collection::vec((0i64..50, 0usize..3, 0u8..4), 0..40),
            t_pick in 0usize..40,
            typ in 0u8..4,
            threshold in 1u64..5,
        ) {
            let mut entries: Vec<Entry> = raw
                .iter()
                .enumerate()
                .map(|(i, (t, r, v))| (*t, *r, Some(format!("v{v}")), format!("u{i}")))
                .collect();
            entries.sort_by_key(|e| (e.0, e.1));
            let typ = [CorrelationType::EventCount, CorrelationType::ValueCount,
                CorrelationType::Temporal, CorrelationType::TemporalOrdered][typ as usize];
            let sp = Spec { id: "p", typ, span_ms: 10, threshold, n_refs: 3 };
            let t = entries.get(t_pick).map_or(0, |e| e.0);
            proptest::prop_assert_eq!(holds(&sp, &entries, t).is_some(), reference(&sp, &entries, t));
        }
    }

    #[test]
    fn state_survives_a_new_store_handle() {
        // Two "processes" sharing one store see one window.
        let store = MemoryStore::new();
        let sp = spec(CorrelationType::EventCount, 2, 1);
        let g = vec!["k".to_string()];
        assert!(
            observe(&store, &sp, &obs(&g, 0, 1, "a", None), at(0))
                .unwrap()
                .is_none()
        );
        let shared: &dyn StateStore = &store;
        assert!(
            observe(shared, &sp, &obs(&g, 0, 2, "b", None), at(5))
                .unwrap()
                .is_some()
        );
    }
}
