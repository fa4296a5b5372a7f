//! One state row and one cache entry per identity for the per-identity detectors (impossible
//! travel, new country, first-seen ASN): [`IdentityProfile`] holds each one's part, and
//! [`Profiles`] is the [`CachedState`] they share.
//!
//! Each of those detectors looks at almost every sign-in of the identity, so with a row and a
//! cache each, one event cost three cache lookups (three cache misses in a large tenant) and a
//! transaction wrote three rows per identity. Sharing, the first detector's lookup brings the
//! entry in and the others find it as the last one used; the end of a transaction writes one
//! row per identity, with a compare-and-set against the version read as before, so the store
//! stays the source of truth across processes.
//!
//! To give another per-identity detector its state here: a field in [`IdentityProfile`]
//! written and read after the others (old rows end before it: read it as empty then), and a
//! [`Profiles`] handle in the detector.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Duration;

use super::codec::{Stored, Writer, read_whole};
use super::history::{CachedState, SeenProfile};
use super::impossible_travel::TravelHistory;
use super::{DetectContext, DetectError};

/// State namespace (and the name in state errors) of the shared profiles.
pub const NS: &str = "identity-profile";

/// Format byte of a stored [`IdentityProfile`].
const PROFILE_FORMAT: u8 = 0xB3;

/// Everything the per-identity detectors keep about one identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityProfile {
    /// `impossible-travel`: recent located sign-ins, countries, failed MFA times.
    pub(crate) travel: TravelHistory,
    /// `new-country`: countries signed in from.
    pub(crate) countries: SeenProfile,
    /// `first-seen-asn`: networks (`AS3320`) signed in from.
    pub(crate) asns: SeenProfile,
}

impl Stored for IdentityProfile {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut w = Writer::new(out, PROFILE_FORMAT);
        self.travel.write(&mut w);
        self.countries.write(&mut w);
        self.asns.write(&mut w);
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        read_whole(bytes, PROFILE_FORMAT, |r| {
            Ok(IdentityProfile {
                travel: TravelHistory::read(r)?,
                countries: SeenProfile::read(r)?,
                asns: SeenProfile::read(r)?,
            })
        })
    }
}

/// The profiles cache, shared by the detectors built together
/// ([`identity_detectors`](super::builtin::identity_detectors)); a detector built alone has
/// one of its own. Every method locks it for the call: the detectors run one after the other
/// on the pipeline's thread, so the lock is never contended.
#[derive(Debug, Clone)]
pub struct Profiles(Arc<Mutex<CachedState<IdentityProfile>>>);

impl Default for Profiles {
    /// An empty cache; each detector using it [`Profiles::widen`]s it to its settings.
    fn default() -> Self {
        Profiles(Arc::new(Mutex::new(
            CachedState::new(NS, NS, 1, Duration::days(1)).with_legacy(LEGACY_NS, read_legacy),
        )))
    }
}

/// The namespaces each detector kept its own rows in before profiles were shared.
const LEGACY_NS: &[&str] = &[TRAVEL_NS, COUNTRIES_NS, ASNS_NS];
const TRAVEL_NS: &str = "impossible-travel";
const COUNTRIES_NS: &str = "new-country";
const ASNS_NS: &str = "first-seen-asn";

/// An identity's profile from the rows older pickets wrote (`None` when it has none), so
/// that an upgrade keeps what the detectors had learnt.
fn read_legacy(cx: &DetectContext<'_>, key: &str) -> Result<Option<IdentityProfile>, DetectError> {
    fn part<T: Stored + Default>(
        cx: &DetectContext<'_>,
        ns: &str,
        key: &str,
    ) -> Result<Option<T>, DetectError> {
        let Some(v) = cx
            .state
            .get(ns, key, cx.now)
            .map_err(|e| DetectError::State {
                detector: NS.to_string(),
                source: e,
            })?
        else {
            return Ok(None);
        };
        T::decode(&v.value)
            .map(Some)
            .map_err(|e| DetectError::Internal {
                detector: NS.to_string(),
                message: format!("state {ns}/{key} does not decode: {e}"),
            })
    }
    let travel = part::<TravelHistory>(cx, TRAVEL_NS, key)?;
    let countries = part::<SeenProfile>(cx, COUNTRIES_NS, key)?;
    let asns = part::<SeenProfile>(cx, ASNS_NS, key)?;
    if travel.is_none() && countries.is_none() && asns.is_none() {
        return Ok(None);
    }
    Ok(Some(IdentityProfile {
        travel: travel.unwrap_or_default(),
        countries: countries.unwrap_or_default(),
        asns: asns.unwrap_or_default(),
    }))
}

impl Profiles {
    fn lock(&self) -> MutexGuard<'_, CachedState<IdentityProfile>> {
        // A panic mid-update leaves at worst an unflushed change, which the pipeline's
        // rollback discards.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises the cache's capacity (identities) and the rows' lifetime to at least these.
    pub fn widen(&self, capacity: usize, ttl: Duration) {
        self.lock().widen(capacity, ttl);
    }

    /// [`CachedState::update`] of the identity's profile.
    pub fn update<R>(
        &self,
        key: &str,
        cx: &DetectContext<'_>,
        f: impl FnMut(&mut IdentityProfile) -> (R, bool),
    ) -> Result<R, DetectError> {
        self.lock().update(key, cx, f)
    }

    /// [`CachedState::prefetch`].
    pub fn prefetch<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
        cx: &DetectContext<'_>,
    ) -> Result<(), DetectError> {
        self.lock().prefetch(keys, cx)
    }

    /// [`CachedState::set_write_back`].
    pub fn set_write_back(&self, on: bool) {
        self.lock().set_write_back(on);
    }

    /// [`CachedState::flush`]: the first detector's flush writes every changed profile, the
    /// others find nothing left to write.
    pub fn flush(&self, cx: &DetectContext<'_>) -> Result<(), DetectError> {
        self.lock().flush(cx)
    }

    /// [`CachedState::discard`].
    pub fn discard(&self) {
        self.lock().discard();
    }

    /// [`CachedState::is_full_of_changes`].
    pub fn is_full_of_changes(&self) -> bool {
        self.lock().is_full_of_changes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn profile_round_trips_and_refuses_other_bytes() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut p = IdentityProfile::default();
        p.countries.observe("DE", t, Duration::zero(), 4);
        p.asns.observe("AS3320", t, Duration::zero(), 4);
        let mut bytes = Vec::new();
        p.encode(&mut bytes).unwrap();
        assert_eq!(IdentityProfile::decode(&bytes).unwrap(), p);
        for cut in 1..bytes.len() {
            assert!(
                IdentityProfile::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(IdentityProfile::decode(b"{}").is_err());
    }

    #[test]
    fn an_upgrade_reads_the_rows_of_older_pickets_and_writes_one_profile() {
        use crate::state::{MemoryStore, StateStore};
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t,
        };
        let mut countries = SeenProfile::default();
        countries.observe("DE", t, Duration::zero(), 4);
        let mut asns = SeenProfile::default();
        asns.observe("AS3320", t, Duration::zero(), 4);
        let mut bytes = Vec::new();
        countries.encode(&mut bytes).unwrap();
        store.put(COUNTRIES_NS, "u@x", &bytes, None, t).unwrap();
        bytes.clear();
        asns.encode(&mut bytes).unwrap();
        store.put(ASNS_NS, "u@x", &bytes, None, t).unwrap();

        let profiles = Profiles::default();
        let seen = profiles
            .update("u@x", &cx, |p| {
                let seen = (p.countries.clone(), p.asns.clone());
                p.countries.observe("FR", t, Duration::zero(), 4);
                (seen, true)
            })
            .unwrap();
        assert_eq!(seen, (countries.clone(), asns.clone()));
        // Written through as one profile, with both what was read and the change.
        let stored = store.get(NS, "u@x", t).unwrap().unwrap();
        let p = IdentityProfile::decode(&stored.value).unwrap();
        assert_eq!(p.asns, asns);
        assert_eq!(p.countries.values.len(), 2);
        // An identity with no rows anywhere starts empty.
        let empty = profiles.update("v@x", &cx, |p| (p.clone(), false)).unwrap();
        assert_eq!(empty, IdentityProfile::default());
    }
}
