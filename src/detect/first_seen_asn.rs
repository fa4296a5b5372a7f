//! First-seen ASN (`first-seen-asn`): a successful sign-in of an identity from a network
//! (autonomous system) it has not signed in from before, once the identity has
//! `learning_days` of history. Low severity context, like `new-country`.
//!
//! State: a [`SeenProfile`](super::history::SeenProfile) per identity (ASNs with first/last
//! seen in event time), capped at `max_asns` (least recently seen evicted), in the identity's
//! shared [`IdentityProfile`](super::profile::IdentityProfile).
//!
//! To add another first-seen detector: see `new_country.rs`.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::history::{DetectorConfigError, Observation};
use super::new_country::learnable;
use super::profile::Profiles;
use super::{DetectContext, DetectError, Detector};
use crate::model::{Attack, Evidence, Finding, IdentityEvent, Severity};

/// Detector id.
pub const ID: &str = "first-seen-asn";

/// `[detect.first_seen_asn]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirstSeenAsnConfig {
    /// Days of history (event time, since the identity's first sign-in) before new networks
    /// are reported.
    pub learning_days: u64,
    /// Networks kept per identity.
    pub max_asns: usize,
    /// Only interactive sign-ins.
    pub interactive_only: bool,
    /// How long an idle identity's state stays in the store (days, wall clock). The
    /// per-identity detectors share one row per identity, kept as long as the longest of
    /// their settings asks.
    pub state_ttl_days: u64,
    /// Identities kept in the in-process state cache (shared by the per-identity detectors,
    /// sized by the largest of their settings).
    pub cache_identities: usize,
}

impl Default for FirstSeenAsnConfig {
    fn default() -> Self {
        FirstSeenAsnConfig {
            learning_days: 14,
            max_asns: 48,
            interactive_only: true,
            state_ttl_days: 180,
            cache_identities: 100_000,
        }
    }
}

impl FirstSeenAsnConfig {
    /// Validates the settings and builds the detector, with a profiles cache of its own.
    pub fn build(&self) -> Result<FirstSeenAsn, DetectorConfigError> {
        self.build_with(&Profiles::default())
    }

    /// [`FirstSeenAsnConfig::build`] keeping state in `profiles`, which the other per-identity
    /// detectors share.
    pub fn build_with(&self, profiles: &Profiles) -> Result<FirstSeenAsn, DetectorConfigError> {
        if self.max_asns == 0 {
            return Err(DetectorConfigError {
                detector: ID,
                key: "max_asns".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(FirstSeenAsn {
            config: self.clone(),
            state: {
                profiles.widen(
                    self.cache_identities,
                    Duration::days(self.state_ttl_days.max(1) as i64),
                );
                profiles.clone()
            },
        })
    }
}

/// The first-seen-ASN detector.
pub struct FirstSeenAsn {
    config: FirstSeenAsnConfig,
    state: Profiles,
}

impl Detector for FirstSeenAsn {
    fn id(&self) -> &str {
        ID
    }

    fn prefetch(
        &mut self,
        events: &[IdentityEvent],
        cx: &DetectContext<'_>,
    ) -> Result<(), DetectError> {
        let interactive_only = self.config.interactive_only;
        let keys = events
            .iter()
            .filter(|e| learnable(e, interactive_only) && e.src.asn.is_some())
            .map(|e| e.actor.key.as_str());
        self.state.prefetch(keys, cx)
    }

    fn set_write_back(&mut self, on: bool) {
        self.state.set_write_back(on);
    }

    fn flush(&mut self, cx: &DetectContext<'_>) -> Result<(), DetectError> {
        self.state.flush(cx)
    }

    fn discard(&mut self) {
        self.state.discard();
    }

    fn wants_flush(&self) -> bool {
        self.state.is_full_of_changes()
    }

    fn on_event(
        &mut self,
        event: &IdentityEvent,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        if !learnable(event, self.config.interactive_only) {
            return Ok(Vec::new());
        }
        let Some(asn) = event.src.asn.as_ref() else {
            return Ok(Vec::new());
        };
        let value = format!("AS{}", asn.number);
        let learning = Duration::days(self.config.learning_days as i64);
        let cap = self.config.max_asns;
        let (obs, changed) = self.state.update(&event.actor.key, cx, |profile| {
            let r = profile.asns.observe(&value, event.time, learning, cap);
            (r, r.1)
        })?;
        let _ = changed;
        if obs != Observation::New {
            return Ok(Vec::new());
        }
        let key = event.actor.key.clone();
        let org = asn.org.as_deref().unwrap_or("unknown organisation");
        let mut f = Finding::new(
            ID,
            format!("{key} signed in from a network not seen before: {value} ({org})"),
            Severity::Low,
            vec![Evidence::of(event)],
        );
        f.description = "First sign-in of this identity from this autonomous system after the \
                         learning period: a new ISP, a VPN, a hosting provider or an attacker."
            .into();
        f.identity = Some(key);
        f.actor = Some(event.actor.clone());
        f.attacks = vec![Attack {
            technique: "T1078.004".into(),
            tactic: Some("initial-access".into()),
        }];
        f.data.insert("asn".into(), json!(asn.number));
        f.data.insert("asn_org".into(), json!(asn.org));
        Ok(vec![f])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testgen::signin_event;
    use crate::state::{MemoryStore, StateStore};

    #[test]
    fn reports_new_asn_after_learning_and_caps_state() {
        let store = MemoryStore::new();
        let mut d = FirstSeenAsnConfig {
            max_asns: 4,
            ..FirstSeenAsnConfig::default()
        }
        .build()
        .unwrap();
        let cx = DetectContext {
            state: &store,
            now: chrono::Utc::now(),
        };
        let day = 24 * 60;
        let mut run = |uid: &str, min: i64, asn: u32| {
            let e = signin_event(uid, "u@x", min, "DE", 50.0, 8.0, asn);
            d.on_event(&e, &cx).unwrap()
        };
        assert!(run("a", 0, 3320).is_empty());
        assert!(run("b", 15 * day, 3320).is_empty());
        assert_eq!(run("c", 15 * day + 1, 14061).len(), 1);
        for (i, asn) in [1u32, 2, 3, 4, 5].into_iter().enumerate() {
            assert_eq!(run(&format!("x{i}"), 16 * day + i as i64, asn).len(), 1);
        }
        let v = store
            .get(crate::detect::profile::NS, "u@x", chrono::Utc::now())
            .unwrap()
            .unwrap();
        let p = <crate::detect::profile::IdentityProfile as crate::detect::codec::Stored>::decode(
            &v.value,
        )
        .unwrap();
        assert_eq!(p.asns.values.len(), 4);
    }
}
