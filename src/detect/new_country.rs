//! New country (`new-country`): a successful sign-in of an identity from a country it has not
//! signed in from before, once the identity has `learning_days` of history. Low severity: it
//! is context for an analyst and for correlations, not an alarm on its own.
//!
//! State: a [`SeenProfile`](super::history::SeenProfile) per identity (countries with
//! first/last seen in event time), capped at `max_countries` (least recently seen evicted), in
//! the identity's shared [`IdentityProfile`](super::profile::IdentityProfile). The same event
//! processed twice finds its country known and reports nothing.
//!
//! To add another first-seen detector: copy this file, change `value_of` and the texts
//! (`first_seen_asn.rs` is the other one).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::history::{DetectorConfigError, Observation};
use super::profile::Profiles;
use super::{DetectContext, DetectError, Detector};
use crate::model::{Attack, Evidence, Finding, IdentityEvent, Severity};

/// Detector id.
pub const ID: &str = "new-country";

/// `[detect.new_country]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewCountryConfig {
    /// Days of history (event time, since the identity's first sign-in) before new countries
    /// are reported.
    pub learning_days: u64,
    /// Countries kept per identity.
    pub max_countries: usize,
    /// Only interactive sign-ins (token refreshes follow the device, not the person).
    pub interactive_only: bool,
    /// How long an idle identity's state stays in the store (days, wall clock). The
    /// per-identity detectors share one row per identity, kept as long as the longest of
    /// their settings asks.
    pub state_ttl_days: u64,
    /// Identities kept in the in-process state cache (shared by the per-identity detectors,
    /// sized by the largest of their settings).
    pub cache_identities: usize,
}

impl Default for NewCountryConfig {
    fn default() -> Self {
        NewCountryConfig {
            learning_days: 14,
            max_countries: 32,
            interactive_only: true,
            state_ttl_days: 180,
            cache_identities: 100_000,
        }
    }
}

impl NewCountryConfig {
    /// Validates the settings and builds the detector, with a profiles cache of its own.
    pub fn build(&self) -> Result<NewCountry, DetectorConfigError> {
        self.build_with(&Profiles::default())
    }

    /// [`NewCountryConfig::build`] keeping state in `profiles`, which the other per-identity
    /// detectors share.
    pub fn build_with(&self, profiles: &Profiles) -> Result<NewCountry, DetectorConfigError> {
        if self.max_countries == 0 {
            return Err(DetectorConfigError {
                detector: ID,
                key: "max_countries".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(NewCountry {
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

/// Whether a sign-in is one the first-seen detectors learn from.
pub(crate) fn learnable(event: &IdentityEvent, interactive_only: bool) -> bool {
    event.activity == crate::model::Activity::SignIn
        && event.status == crate::model::Status::Success
        && (!interactive_only || event.auth.interactive.unwrap_or(false))
        && !event.src.trusted
        && !event.src.private
        && !event.actor.key.is_empty()
}

/// The country code of the sign-in, uppercased.
fn value_of(event: &IdentityEvent) -> Option<String> {
    event
        .src
        .geo
        .as_ref()
        .and_then(|g| g.country.as_deref())
        .map(str::to_ascii_uppercase)
}

/// The new-country detector.
pub struct NewCountry {
    config: NewCountryConfig,
    state: Profiles,
}

impl Detector for NewCountry {
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
            .filter(|e| {
                learnable(e, interactive_only)
                    && e.src.geo.as_ref().is_some_and(|g| g.country.is_some())
            })
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
        let Some(country) = value_of(event) else {
            return Ok(Vec::new());
        };
        let learning = Duration::days(self.config.learning_days as i64);
        let cap = self.config.max_countries;
        let (obs, known) = self.state.update(&event.actor.key, cx, |profile| {
            let p = &mut profile.countries;
            // The countries known before this one, only needed (and copied) for a new one.
            let known: Vec<String> = if p.values.iter().any(|s| s.key == *country) {
                Vec::new()
            } else {
                p.values.iter().map(|s| s.key.to_string()).collect()
            };
            let (obs, changed) = p.observe(&country, event.time, learning, cap);
            ((obs, known), changed)
        })?;
        if obs != Observation::New {
            return Ok(Vec::new());
        }
        let key = event.actor.key.clone();
        let mut f = Finding::new(
            ID,
            format!("{key} signed in from a new country: {country}"),
            Severity::Low,
            vec![Evidence::of(event)],
        );
        f.description = "First sign-in of this identity from this country after the learning \
                         period. Often travel; together with other signals, a compromise."
            .into();
        f.identity = Some(key);
        f.actor = Some(event.actor.clone());
        f.attacks = vec![Attack {
            technique: "T1078.004".into(),
            tactic: Some("initial-access".into()),
        }];
        f.data.insert("country".into(), json!(country));
        f.data.insert("known_countries".into(), json!(known));
        Ok(vec![f])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testgen::signin_event;
    use crate::state::MemoryStore;

    #[test]
    fn reports_after_learning_once() {
        let store = MemoryStore::new();
        let mut d = NewCountryConfig::default().build().unwrap();
        let cx = DetectContext {
            state: &store,
            now: chrono::Utc::now(),
        };
        let day = 24 * 60;
        let mut run = |uid: &str, min: i64, cc: &str| {
            let e = signin_event(uid, "u@x", min, cc, 50.0, 8.0, 3320);
            d.on_event(&e, &cx).unwrap()
        };
        assert!(run("a", 0, "DE").is_empty());
        assert!(run("b", 2 * day, "FR").is_empty(), "still learning");
        assert!(run("c", 20 * day, "DE").is_empty(), "known");
        let f = run("d", 21 * day, "US");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Low);
        assert!(run("d", 21 * day, "US").is_empty(), "duplicate");
        assert!(run("e", 22 * day, "US").is_empty(), "now known");
    }
}
