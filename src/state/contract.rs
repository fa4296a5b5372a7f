//! The one contract every [`StateStore`] backend must meet: a model-based property test
//! (random operation sequences against a tiny reference model, results compared step by step)
//! plus targeted tests for TTLs, versions, compare-and-set, counters and listing.
//!
//! A new backend joins by calling [`run_contract`] from its own tests with a function that
//! makes a fresh, empty store. Outside the crate (integration tests against an emulator) the
//! module is there with the `contract` feature, which the crate's tests turn on.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::{CasOutcome, CounterOutcome, StateStore, Versioned, decode_count, window_bucket};

/// Runs the whole contract against stores made by `make` (each call: a fresh, empty store).
pub fn run_contract(make: &dyn Fn() -> Box<dyn StateStore>) {
    versions_start_at_one_and_grow_by_one(&*make());
    ttl_expiry_behaves_as_absent(&*make());
    cas_conflict_returns_current(&*make());
    put_if_absent_has_one_winner(&*make());
    counter_limit_is_never_exceeded(&*make());
    counter_windows_roll_over(&*make());
    list_is_sorted_prefix_bounded_and_skips_expired(&*make());
    get_many_answers_like_get(&*make());
    model_based(make);
}

fn base() -> DateTime<Utc> {
    // INVARIANT: a fixed, valid timestamp.
    Utc.timestamp_opt(1_795_000_020, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    base() + Duration::seconds(secs)
}

fn v(value: &[u8], version: u64) -> Versioned {
    Versioned {
        value: value.to_vec(),
        version,
    }
}

fn versions_start_at_one_and_grow_by_one(s: &dyn StateStore) {
    assert_eq!(s.get("n", "k", at(0)).unwrap(), None);
    assert_eq!(s.put("n", "k", b"a", None, at(0)).unwrap(), 1);
    assert_eq!(s.put("n", "k", b"b", None, at(1)).unwrap(), 2);
    assert_eq!(
        s.compare_and_set("n", "k", Some(2), b"c", None, at(2))
            .unwrap(),
        CasOutcome::Written(3)
    );
    assert_eq!(s.get("n", "k", at(3)).unwrap(), Some(v(b"c", 3)));
    s.delete("n", "k").unwrap();
    s.delete("n", "k").unwrap(); // absent is fine
    assert_eq!(s.get("n", "k", at(4)).unwrap(), None);
    assert_eq!(s.put("n", "k", b"d", None, at(5)).unwrap(), 1);
    // Namespaces are separate.
    assert_eq!(s.get("other", "k", at(5)).unwrap(), None);
    assert_eq!(s.put("other", "k", b"e", None, at(5)).unwrap(), 1);
}

fn ttl_expiry_behaves_as_absent(s: &dyn StateStore) {
    let exp = at(10);
    let just_before = exp - Duration::nanoseconds(1);
    assert_eq!(s.put("n", "k", b"a", Some(exp), at(0)).unwrap(), 1);
    assert_eq!(s.get("n", "k", just_before).unwrap(), Some(v(b"a", 1)));
    assert_eq!(s.list("n", "", 10, just_before).unwrap().len(), 1);
    // Expiry is exclusive: at the instant itself the value is gone.
    assert_eq!(s.get("n", "k", exp).unwrap(), None);
    assert!(s.list("n", "", 10, exp).unwrap().is_empty());
    assert_eq!(
        s.compare_and_set("n", "k", Some(1), b"x", None, exp)
            .unwrap(),
        CasOutcome::Conflict(None)
    );
    // An expired value does not block an insert, and its version does not carry over.
    assert!(s.put_if_absent("n", "k", b"b", Some(at(20)), exp).unwrap());
    assert_eq!(s.get("n", "k", at(11)).unwrap(), Some(v(b"b", 1)));
    assert_eq!(s.put("n", "k", b"c", None, at(25)).unwrap(), 1);
    // No expiry: lives forever; a put may add one.
    assert_eq!(s.get("n", "k", at(1_000_000)).unwrap(), Some(v(b"c", 1)));
    assert_eq!(s.put("n", "k", b"d", Some(at(30)), at(26)).unwrap(), 2);
    assert_eq!(s.get("n", "k", at(30)).unwrap(), None);
    // A value written already expired is absent at once.
    assert_eq!(s.put("n", "dead", b"x", Some(at(5)), at(5)).unwrap(), 1);
    assert_eq!(s.get("n", "dead", at(5)).unwrap(), None);
}

fn cas_conflict_returns_current(s: &dyn StateStore) {
    assert_eq!(
        s.compare_and_set("n", "k", Some(1), b"x", None, at(0))
            .unwrap(),
        CasOutcome::Conflict(None)
    );
    assert_eq!(
        s.compare_and_set("n", "k", None, b"a", None, at(0))
            .unwrap(),
        CasOutcome::Written(1)
    );
    assert_eq!(
        s.compare_and_set("n", "k", None, b"b", None, at(1))
            .unwrap(),
        CasOutcome::Conflict(Some(v(b"a", 1)))
    );
    assert_eq!(
        s.compare_and_set("n", "k", Some(7), b"b", None, at(1))
            .unwrap(),
        CasOutcome::Conflict(Some(v(b"a", 1)))
    );
    assert_eq!(s.get("n", "k", at(1)).unwrap(), Some(v(b"a", 1)));
    assert_eq!(
        s.compare_and_set("n", "k", Some(1), b"b", Some(at(5)), at(1))
            .unwrap(),
        CasOutcome::Written(2)
    );
    assert_eq!(s.get("n", "k", at(4)).unwrap(), Some(v(b"b", 2)));
}

fn put_if_absent_has_one_winner(s: &dyn StateStore) {
    assert!(
        s.put_if_absent("dedup", "e1", b"first", None, at(0))
            .unwrap()
    );
    assert!(
        !s.put_if_absent("dedup", "e1", b"second", None, at(1))
            .unwrap()
    );
    assert_eq!(s.get("dedup", "e1", at(2)).unwrap(), Some(v(b"first", 1)));
}

fn counter_limit_is_never_exceeded(s: &dyn StateStore) {
    for n in 1..=3 {
        assert_eq!(
            s.incr_window("c", "k", 60, at(1), Some(3)).unwrap(),
            CounterOutcome::Counted(n)
        );
    }
    for _ in 0..5 {
        assert_eq!(
            s.incr_window("c", "k", 60, at(2), Some(3)).unwrap(),
            CounterOutcome::LimitReached(3)
        );
    }
    // A higher limit (or none) counts on from where the window is.
    assert_eq!(
        s.incr_window("c", "k", 60, at(3), Some(4)).unwrap(),
        CounterOutcome::Counted(4)
    );
    assert_eq!(
        s.incr_window("c", "k", 60, at(3), None).unwrap(),
        CounterOutcome::Counted(5)
    );
    let (bucket, expires) = window_bucket("k", 60, at(1));
    let stored = s.get("c", &bucket, at(3)).unwrap().unwrap();
    assert_eq!(decode_count("c", &bucket, &stored.value).unwrap(), 5);
    assert_eq!(stored.version, 5);
    // The window's entry expires one window after the window closes.
    assert!(s.get("c", &bucket, expires).unwrap().is_none());
    // A zero limit refuses without leaving an entry behind.
    assert_eq!(
        s.incr_window("c", "zero", 60, at(1), Some(0)).unwrap(),
        CounterOutcome::LimitReached(0)
    );
    assert_eq!(s.list("c", "zero", 10, at(1)).unwrap(), vec![]);
}

fn counter_windows_roll_over(s: &dyn StateStore) {
    // base() is a multiple of 60 s: at(0)..at(59) is one window.
    assert_eq!(base().timestamp() % 60, 0);
    assert_eq!(
        s.incr_window("c", "k", 60, at(0), Some(2)).unwrap(),
        CounterOutcome::Counted(1)
    );
    assert_eq!(
        s.incr_window("c", "k", 60, at(59), Some(2)).unwrap(),
        CounterOutcome::Counted(2)
    );
    assert_eq!(
        s.incr_window("c", "k", 60, at(59), Some(2)).unwrap(),
        CounterOutcome::LimitReached(2)
    );
    assert_eq!(
        s.incr_window("c", "k", 60, at(60), Some(2)).unwrap(),
        CounterOutcome::Counted(1)
    );
    // The earlier window still holds its count (late events land in their own window).
    assert_eq!(
        s.incr_window("c", "k", 60, at(30), Some(2)).unwrap(),
        CounterOutcome::LimitReached(2)
    );
    // Another key, another window length: independent.
    assert_eq!(
        s.incr_window("c", "other", 60, at(0), Some(2)).unwrap(),
        CounterOutcome::Counted(1)
    );
    assert_eq!(
        s.incr_window("c", "k", 3600, at(0), Some(2)).unwrap(),
        CounterOutcome::Counted(1)
    );
    // Events before the epoch fall in their own (negative) window.
    let before_epoch = Utc.timestamp_opt(-1, 0).unwrap();
    assert_eq!(
        s.incr_window("c", "k", 60, before_epoch, None).unwrap(),
        CounterOutcome::Counted(1)
    );
}

fn get_many_answers_like_get(s: &dyn StateStore) {
    assert_eq!(s.get_many("n", &[], at(0)).unwrap(), Vec::new());
    // More keys than one statement of a batching backend reads, some absent, one expired,
    // one in another namespace, one asked twice.
    let keys: Vec<String> = (0..300).map(|i| format!("k{i:03}")).collect();
    for (i, k) in keys.iter().enumerate() {
        match i % 3 {
            0 => {}
            1 => {
                s.put("n", k, k.as_bytes(), None, at(0)).unwrap();
            }
            _ => {
                s.put("n", k, b"x", None, at(0)).unwrap();
                s.put("n", k, k.as_bytes(), Some(at(10)), at(1)).unwrap();
            }
        }
    }
    s.put("other", "k000", b"elsewhere", None, at(0)).unwrap();
    s.put("n", "gone", b"old", Some(at(5)), at(0)).unwrap();
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).rev().collect();
    asked.extend(["gone", "k001", ""]);
    for now in [at(2), at(10)] {
        let want: Vec<Option<Versioned>> =
            asked.iter().map(|k| s.get("n", k, now).unwrap()).collect();
        assert_eq!(s.get_many("n", &asked, now).unwrap(), want, "at {now}");
    }
    let short = s.get_many("n", &["k001", "k002", "k003"], at(2)).unwrap();
    assert_eq!(
        short,
        [Some(v(b"k001", 1)), Some(v(b"k002", 2)), None],
        "in the order asked"
    );
}

fn list_is_sorted_prefix_bounded_and_skips_expired(s: &dyn StateStore) {
    for key in [
        "b", "a/2", "a/10", "a/1", "ab", "a", "a/\u{e9}", "a/Z", "a0",
    ] {
        s.put("n", key, key.as_bytes(), None, at(0)).unwrap();
    }
    s.put("n", "a/3", b"x", Some(at(5)), at(0)).unwrap();
    s.put("m", "a/4", b"x", None, at(0)).unwrap();
    let keys = |prefix: &str, limit: usize, now: DateTime<Utc>| -> Vec<String> {
        s.list("n", prefix, limit, now)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        keys("a/", 100, at(1)),
        ["a/1", "a/10", "a/2", "a/3", "a/Z", "a/\u{e9}"]
    );
    assert_eq!(
        keys("a/", 100, at(5)),
        ["a/1", "a/10", "a/2", "a/Z", "a/\u{e9}"]
    );
    assert_eq!(keys("a/", 2, at(5)), ["a/1", "a/10"]);
    assert_eq!(keys("a/", 0, at(5)), Vec::<String>::new());
    assert_eq!(
        keys("", 100, at(5)),
        [
            "a", "a/1", "a/10", "a/2", "a/Z", "a/\u{e9}", "a0", "ab", "b"
        ]
    );
    assert_eq!(keys("ab", 100, at(5)), ["ab"]);
    assert_eq!(keys("c", 100, at(5)), Vec::<String>::new());
    let listed = s.list("n", "a/1", 100, at(5)).unwrap();
    assert_eq!(
        listed,
        vec![
            ("a/1".to_string(), v(b"a/1", 1)),
            ("a/10".to_string(), v(b"a/10", 1)),
        ]
    );
}

// ---- model-based property test ----

const KEYS: &[&str] = &["", "a", "ab", "abc", "b", "ba", "\u{e9}"];
const NAMESPACES: &[&str] = &["x", "y", "c"];
const PREFIXES: &[&str] = &["", "a", "ab", "b", "k", "z", "\u{e9}"];
const COUNTER_KEYS: &[&str] = &["k1", "k2"];
const WINDOWS: &[u64] = &[1, 7, 60];

#[derive(Debug, Clone)]
enum Op {
    /// Moves `now` forward by this many nanoseconds.
    Advance(i64),
    Get(usize, usize),
    Put(usize, usize, Vec<u8>, Option<i64>),
    PutIfAbsent(usize, usize, Vec<u8>, Option<i64>),
    /// Compare-and-set with a random expected version.
    Cas(usize, usize, Option<u64>, Vec<u8>, Option<i64>),
    /// Compare-and-set with the version the model holds now (mostly succeeds).
    CasCurrent(usize, usize, Vec<u8>, Option<i64>),
    Delete(usize, usize),
    List(usize, usize, usize),
    /// Counter: key, window, offset of `at` from now (ns; never before the window that holds
    /// `now - window`, so the bucket is live at `now`), limit.
    Incr(usize, usize, i64, Option<u64>),
}

#[derive(Debug, PartialEq)]
enum Out {
    Unit,
    Get(Option<Versioned>),
    Put(u64),
    Inserted(bool),
    Cas(CasOutcome),
    List(Vec<(String, Versioned)>),
    Incr(CounterOutcome),
}

/// An expiry offset from `now` in nanoseconds: mostly seconds ahead, some in the past, some
/// within a few nanoseconds of `now` (the exclusive boundary).
fn expiry() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(None),
        (-2_000i64..20_000).prop_map(|ms| Some(ms * 1_000_000)),
        (-2i64..=2).prop_map(Some),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    let ns = 0..NAMESPACES.len();
    let key = 0..KEYS.len();
    prop_oneof![
        2 => prop_oneof![
            (0i64..15_000).prop_map(|ms| ms * 1_000_000),
            0i64..3,
        ].prop_map(Op::Advance),
        3 => (ns.clone(), key.clone()).prop_map(|(n, k)| Op::Get(n, k)),
        3 => (ns.clone(), key.clone(), value(), expiry()).prop_map(|(n, k, v, e)| Op::Put(n, k, v, e)),
        2 => (ns.clone(), key.clone(), value(), expiry())
            .prop_map(|(n, k, v, e)| Op::PutIfAbsent(n, k, v, e)),
        2 => (ns.clone(), key.clone(), proptest::option::of(0u64..4), value(), expiry())
            .prop_map(|(n, k, x, v, e)| Op::Cas(n, k, x, v, e)),
        2 => (ns.clone(), key.clone(), value(), expiry())
            .prop_map(|(n, k, v, e)| Op::CasCurrent(n, k, v, e)),
        1 => (ns.clone(), key.clone()).prop_map(|(n, k)| Op::Delete(n, k)),
        2 => (ns, 0..PREFIXES.len(), 0usize..5).prop_map(|(n, p, l)| Op::List(n, p, l)),
        3 => (0..COUNTER_KEYS.len(), 0..WINDOWS.len(), 0u64..=1_000_000, proptest::option::of(0u64..5))
            .prop_map(|(k, w, frac, limit)| {
                // Offset in (-window, +2 windows], scaled from `frac` per million.
                let window_ns = (WINDOWS[w] * 1_000_000_000) as i64;
                let off = -window_ns + 1 + (3 * window_ns - 1) * frac as i64 / 1_000_000;
                Op::Incr(k, w, off, limit)
            }),
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    version: u64,
    expires: Option<DateTime<Utc>>,
}

/// The reference: a sorted map, written as plainly as possible.
#[derive(Default)]
struct Model {
    map: BTreeMap<(String, String), Entry>,
}

impl Model {
    fn live(&self, ns: &str, key: &str, now: DateTime<Utc>) -> Option<&Entry> {
        self.map
            .get(&(ns.to_string(), key.to_string()))
            .filter(|e| e.expires.is_none_or(|x| x > now))
    }

    fn set(&mut self, ns: &str, key: &str, value: &[u8], version: u64, exp: Option<DateTime<Utc>>) {
        self.map.insert(
            (ns.to_string(), key.to_string()),
            Entry {
                value: value.to_vec(),
                version,
                expires: exp,
            },
        );
    }

    fn apply(&mut self, op: &Op, now: DateTime<Utc>) -> Out {
        let exp = |e: &Option<i64>| e.map(|ns| now + Duration::nanoseconds(ns));
        let ver = |e: &Entry| Versioned {
            value: e.value.clone(),
            version: e.version,
        };
        match op {
            Op::Advance(_) => Out::Unit,
            Op::Get(n, k) => Out::Get(self.live(NAMESPACES[*n], KEYS[*k], now).map(ver)),
            Op::Put(n, k, val, e) => {
                let (ns, key) = (NAMESPACES[*n], KEYS[*k]);
                let version = self.live(ns, key, now).map_or(1, |e| e.version + 1);
                self.set(ns, key, val, version, exp(e));
                Out::Put(version)
            }
            Op::PutIfAbsent(n, k, val, e) => {
                let (ns, key) = (NAMESPACES[*n], KEYS[*k]);
                if self.live(ns, key, now).is_some() {
                    return Out::Inserted(false);
                }
                self.set(ns, key, val, 1, exp(e));
                Out::Inserted(true)
            }
            Op::Cas(n, k, expected, val, e) => self.cas(*n, *k, *expected, val, exp(e), now),
            Op::CasCurrent(n, k, val, e) => {
                let current = self.live(NAMESPACES[*n], KEYS[*k], now).map(|e| e.version);
                self.cas(*n, *k, current, val, exp(e), now)
            }
            Op::Delete(n, k) => {
                self.map
                    .remove(&(NAMESPACES[*n].to_string(), KEYS[*k].to_string()));
                Out::Unit
            }
            Op::List(n, p, limit) => {
                let (ns, prefix) = (NAMESPACES[*n], PREFIXES[*p]);
                let mut out: Vec<_> = self
                    .map
                    .iter()
                    .filter(|((n2, k2), e)| {
                        n2 == ns && k2.starts_with(prefix) && e.expires.is_none_or(|x| x > now)
                    })
                    .map(|((_, k2), e)| (k2.clone(), ver(e)))
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out.truncate(*limit);
                Out::List(out)
            }
            Op::Incr(k, w, off, limit) => {
                let when = now + Duration::nanoseconds(*off);
                let (bucket, expires) = window_bucket(COUNTER_KEYS[*k], WINDOWS[*w], when);
                let key = ("c".to_string(), bucket);
                let (count, version) = self.map.get(&key).map_or((0, 0), |e| {
                    let bytes: [u8; 8] = e.value.as_slice().try_into().unwrap_or([0xff; 8]);
                    (u64::from_be_bytes(bytes), e.version)
                });
                if limit.is_some_and(|l| count >= l) {
                    return Out::Incr(CounterOutcome::LimitReached(count));
                }
                self.map.insert(
                    key,
                    Entry {
                        value: (count + 1).to_be_bytes().to_vec(),
                        version: version + 1,
                        expires: Some(expires),
                    },
                );
                Out::Incr(CounterOutcome::Counted(count + 1))
            }
        }
    }

    fn cas(
        &mut self,
        n: usize,
        k: usize,
        expected: Option<u64>,
        val: &[u8],
        exp: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Out {
        let (ns, key) = (NAMESPACES[n], KEYS[k]);
        let current = self.live(ns, key, now).cloned();
        if current.as_ref().map(|e| e.version) != expected {
            return Out::Cas(CasOutcome::Conflict(current.map(|e| Versioned {
                value: e.value,
                version: e.version,
            })));
        }
        let version = expected.map_or(1, |v| v + 1);
        self.set(ns, key, val, version, exp);
        Out::Cas(CasOutcome::Written(version))
    }
}

fn apply_store(s: &dyn StateStore, model: &Model, op: &Op, now: DateTime<Utc>) -> Out {
    let exp = |e: &Option<i64>| e.map(|ns| now + Duration::nanoseconds(ns));
    let r = match op {
        Op::Advance(_) => Ok(Out::Unit),
        Op::Get(n, k) => s.get(NAMESPACES[*n], KEYS[*k], now).map(Out::Get),
        Op::Put(n, k, val, e) => s
            .put(NAMESPACES[*n], KEYS[*k], val, exp(e), now)
            .map(Out::Put),
        Op::PutIfAbsent(n, k, val, e) => s
            .put_if_absent(NAMESPACES[*n], KEYS[*k], val, exp(e), now)
            .map(Out::Inserted),
        Op::Cas(n, k, expected, val, e) => s
            .compare_and_set(NAMESPACES[*n], KEYS[*k], *expected, val, exp(e), now)
            .map(Out::Cas),
        Op::CasCurrent(n, k, val, e) => {
            // The version the store should hold, taken from the model before it applies.
            let expected = model.live(NAMESPACES[*n], KEYS[*k], now).map(|e| e.version);
            s.compare_and_set(NAMESPACES[*n], KEYS[*k], expected, val, exp(e), now)
                .map(Out::Cas)
        }
        Op::Delete(n, k) => s.delete(NAMESPACES[*n], KEYS[*k]).map(|()| Out::Unit),
        Op::List(n, p, limit) => s
            .list(NAMESPACES[*n], PREFIXES[*p], *limit, now)
            .map(Out::List),
        Op::Incr(k, w, off, limit) => s
            .incr_window(
                "c",
                COUNTER_KEYS[*k],
                WINDOWS[*w],
                now + Duration::nanoseconds(*off),
                *limit,
            )
            .map(Out::Incr),
    };
    r.unwrap_or_else(|e| panic!("{} failed on {op:?}: {e}", s.name()))
}

fn model_based(make: &dyn Fn() -> Box<dyn StateStore>) {
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0i64..1_000_000_000, proptest::collection::vec(op(), 1..80));
    let result = runner.run(&strategy, |(start_ns, ops)| {
        let store = make();
        let mut model = Model::default();
        let mut now = base() + Duration::nanoseconds(start_ns);
        for (i, op) in ops.iter().enumerate() {
            if let Op::Advance(ns) = op {
                now += Duration::nanoseconds(*ns);
            }
            let got = apply_store(&*store, &model, op, now);
            let want = model.apply(op, now);
            prop_assert_eq!(got, want, "step {} {:?} at {}", i, op, now);
        }
        // Finally every namespace lists the same.
        for (n, name) in NAMESPACES.iter().enumerate() {
            let got = apply_store(&*store, &model, &Op::List(n, 0, usize::MAX), now);
            let want = model.apply(&Op::List(n, 0, usize::MAX), now);
            prop_assert_eq!(got, want, "final list of {}", name);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{}", e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model itself must be able to fail: a store that forgets version bumps is caught.
    #[test]
    fn contract_catches_a_broken_store() {
        struct Forgetful(crate::state::MemoryStore);
        impl StateStore for Forgetful {
            fn name(&self) -> &'static str {
                "forgetful"
            }
            fn get(
                &self,
                ns: &str,
                key: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<Versioned>, crate::state::StateError> {
                self.0.get(ns, key, now)
            }
            fn put(
                &self,
                ns: &str,
                key: &str,
                value: &[u8],
                expires: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<u64, crate::state::StateError> {
                // Bug: expiry ignored.
                self.0.put(
                    ns,
                    key,
                    value,
                    expires.map(|_| now + Duration::days(365)),
                    now,
                )
            }
            fn put_if_absent(
                &self,
                ns: &str,
                key: &str,
                value: &[u8],
                expires: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<bool, crate::state::StateError> {
                self.0.put_if_absent(ns, key, value, expires, now)
            }
            fn compare_and_set(
                &self,
                ns: &str,
                key: &str,
                expected: Option<u64>,
                value: &[u8],
                expires: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<CasOutcome, crate::state::StateError> {
                self.0
                    .compare_and_set(ns, key, expected, value, expires, now)
            }
            fn delete(&self, ns: &str, key: &str) -> Result<(), crate::state::StateError> {
                self.0.delete(ns, key)
            }
            fn list(
                &self,
                ns: &str,
                prefix: &str,
                limit: usize,
                now: DateTime<Utc>,
            ) -> Result<Vec<(String, Versioned)>, crate::state::StateError> {
                self.0.list(ns, prefix, limit, now)
            }
            fn incr_window(
                &self,
                ns: &str,
                key: &str,
                window_secs: u64,
                at: DateTime<Utc>,
                limit: Option<u64>,
            ) -> Result<CounterOutcome, crate::state::StateError> {
                self.0.incr_window(ns, key, window_secs, at, limit)
            }
        }
        let make =
            || -> Box<dyn StateStore> { Box::new(Forgetful(crate::state::MemoryStore::new())) };
        let r = std::panic::catch_unwind(|| model_based(&make));
        assert!(
            r.is_err(),
            "the model-based test accepted a store that ignores expiry"
        );
    }
}
