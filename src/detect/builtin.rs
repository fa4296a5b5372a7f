//! The built-in identity detectors, built from `[detect.<name>]` tables.
//!
//! [`IdentityDetector`] is the registry: one variant per detector, [`IdentityDetector::ALL`]
//! for contract tests, and [`identity_detectors`] builds every one from the `[detect]`
//! section, reporting every bad table at once. To add a detector: a file with its config and
//! `build()`, a variant here, and its table in `config::DetectSection`.

use serde::de::DeserializeOwned;

use super::Detector;
use super::account_takeover::AccountTakeoverConfig;
use super::first_seen_asn::FirstSeenAsnConfig;
use super::history::DetectorConfigError;
use super::impossible_travel::ImpossibleTravelConfig;
use super::new_country::NewCountryConfig;
use super::oauth_consent::OauthConsentConfig;
use super::profile::Profiles;
use crate::config::DetectSection;

/// The built-in stateful identity detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityDetector {
    /// `impossible-travel`, `[detect.impossible_travel]`.
    ImpossibleTravel,
    /// `oauth-consent`, `[detect.oauth_consent]`.
    OauthConsent,
    /// `account-takeover`, `[detect.account_takeover]`.
    AccountTakeover,
    /// `new-country`, `[detect.new_country]`.
    NewCountry,
    /// `first-seen-asn`, `[detect.first_seen_asn]`.
    FirstSeenAsn,
}

impl IdentityDetector {
    /// Every built-in identity detector, in pipeline order (correlation last is not needed:
    /// findings reach every detector).
    pub const ALL: &'static [IdentityDetector] = &[
        IdentityDetector::ImpossibleTravel,
        IdentityDetector::OauthConsent,
        IdentityDetector::AccountTakeover,
        IdentityDetector::NewCountry,
        IdentityDetector::FirstSeenAsn,
    ];

    /// The detector id, as in findings and playbooks.
    pub fn id(self) -> &'static str {
        match self {
            IdentityDetector::ImpossibleTravel => super::impossible_travel::ID,
            IdentityDetector::OauthConsent => super::oauth_consent::ID,
            IdentityDetector::AccountTakeover => super::account_takeover::ID,
            IdentityDetector::NewCountry => super::new_country::ID,
            IdentityDetector::FirstSeenAsn => super::first_seen_asn::ID,
        }
    }

    /// The config table name under `[detect]`.
    pub fn table(self) -> &'static str {
        match self {
            IdentityDetector::ImpossibleTravel => "impossible_travel",
            IdentityDetector::OauthConsent => "oauth_consent",
            IdentityDetector::AccountTakeover => "account_takeover",
            IdentityDetector::NewCountry => "new_country",
            IdentityDetector::FirstSeenAsn => "first_seen_asn",
        }
    }

    /// Builds the detector from its table (defaults when absent), with state of its own.
    pub fn build(self, section: &DetectSection) -> Result<Box<dyn Detector>, DetectorConfigError> {
        self.build_with(section, &Profiles::default())
    }

    /// [`IdentityDetector::build`]; a per-identity detector (impossible travel, new country,
    /// first-seen ASN) keeps its state in `profiles`, one row and cache entry per identity
    /// shared with the others built with the same `profiles`.
    pub fn build_with(
        self,
        section: &DetectSection,
        profiles: &Profiles,
    ) -> Result<Box<dyn Detector>, DetectorConfigError> {
        fn parse<T: DeserializeOwned + Default>(
            table: &Option<toml::Table>,
            detector: &'static str,
        ) -> Result<T, DetectorConfigError> {
            let Some(t) = table else {
                return Ok(T::default());
            };
            serde_path_to_error::deserialize(toml::Value::Table(t.clone())).map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string().trim_end().to_string();
                // The key at fault: where deserialization stopped, or the unknown one named.
                let key = match crate::config::unknown_field(&message) {
                    Some(f) if path == "." => f.to_string(),
                    Some(f) => format!("{path}.{f}"),
                    None if path == "." => "(table)".to_string(),
                    None => path,
                };
                DetectorConfigError {
                    detector,
                    key,
                    message,
                }
            })
        }
        let id = self.id();
        Ok(match self {
            IdentityDetector::ImpossibleTravel => Box::new(
                parse::<ImpossibleTravelConfig>(&section.impossible_travel, id)?
                    .build_with(profiles)?,
            ),
            IdentityDetector::OauthConsent => {
                Box::new(parse::<OauthConsentConfig>(&section.oauth_consent, id)?.build()?)
            }
            IdentityDetector::AccountTakeover => {
                Box::new(parse::<AccountTakeoverConfig>(&section.account_takeover, id)?.build()?)
            }
            IdentityDetector::NewCountry => {
                Box::new(parse::<NewCountryConfig>(&section.new_country, id)?.build_with(profiles)?)
            }
            IdentityDetector::FirstSeenAsn => Box::new(
                parse::<FirstSeenAsnConfig>(&section.first_seen_asn, id)?.build_with(profiles)?,
            ),
        })
    }
}

/// Builds every built-in identity detector from `[detect]`, the per-identity ones sharing
/// one [`Profiles`] cache; all errors at once.
pub fn identity_detectors(
    section: &DetectSection,
) -> Result<Vec<Box<dyn Detector>>, Vec<DetectorConfigError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let profiles = Profiles::default();
    for d in IdentityDetector::ALL {
        match d.build_with(section, &profiles) {
            Ok(b) => out.push(b),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detector_builds_with_defaults_and_ids_match() {
        let built = identity_detectors(&DetectSection::default()).unwrap();
        let ids: Vec<&str> = built.iter().map(|d| d.id()).collect();
        let expected: Vec<&str> = IdentityDetector::ALL.iter().map(|d| d.id()).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn the_per_identity_detectors_built_together_write_one_profile_row() {
        use crate::detect::DetectContext;
        use crate::detect::profile::{IdentityProfile, NS};
        use crate::state::{MemoryStore, StateStore};
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: chrono::Utc::now(),
        };
        let mut built = identity_detectors(&DetectSection::default()).unwrap();
        let e = crate::detect::testgen::signin_event("a", "u@x", 0, "DE", 50.0, 8.0, 3320);
        for d in &mut built {
            d.on_event(&e, &cx).unwrap();
        }
        let rows = store.list(NS, "", 10, cx.now).unwrap();
        assert_eq!(rows.len(), 1);
        let p =
            <IdentityProfile as crate::detect::codec::Stored>::decode(&rows[0].1.value).unwrap();
        assert_eq!(p.countries.values.len(), 1);
        assert_eq!(p.asns.values.len(), 1);
        for ns in ["impossible-travel", "new-country", "first-seen-asn"] {
            assert!(store.list(ns, "", 10, cx.now).unwrap().is_empty(), "{ns}");
        }
    }

    #[test]
    fn bad_tables_are_all_reported() {
        let section: DetectSection = toml::from_str(
            "[impossible_travel]\nmax_speed_kmh = -1\n[oauth_consent]\nallowed_appz = []\n\
             [new_country]\nlearning_days = 7\n[account_takeover]\nrisky_signin_min_severity = \"high\"\n",
        )
        .unwrap();
        let errors = identity_detectors(&section).err().unwrap();
        let which: Vec<&str> = errors.iter().map(|e| e.detector).collect();
        assert_eq!(which, ["impossible-travel", "oauth-consent"]);
        assert!(errors[1].message.contains("allowed_appz"), "{}", errors[1]);
        assert!(
            errors[0]
                .to_string()
                .starts_with("detect.impossible_travel.max_speed_kmh: "),
            "{}",
            errors[0]
        );
    }
}
