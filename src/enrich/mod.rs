//! Enrichment: what picket knows about an event beyond the record itself. After normalize,
//! before detect, [`Enricher::enrich`] sets on each [`IdentityEvent`]:
//! - `src.private` / `src.trusted` from [`networks`] (special-purpose ranges, `[networks]
//!   trusted`),
//! - `src.geo` / `src.asn` from [`geoip`] (none for private/reserved addresses),
//! - `actor.key` through `[identities.aliases]` ([`identities`]).
//!
//! To add an enrichment: a file with its `FooConfig` and a `Foo` built from it, a field on
//! [`Enricher`] set in [`Enricher::from_config`], one call in [`Enricher::enrich`], and the
//! event field it fills in `model/event.rs`.

pub mod geoip;
pub mod identities;
pub mod networks;

pub use geoip::{DbKind, GeoDatabase, GeoIp, GeoipConfig, STALE_AFTER_DAYS};
pub use identities::{Identities, IdentitiesConfig};
pub use networks::{Networks, NetworksConfig, is_private_or_reserved};

use crate::model::IdentityEvent;

/// Errors building the enricher from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// A geo-IP database cannot be used.
    #[error("geoip database {origin}: {message}")]
    Geoip {
        /// The path (or the origin given for bytes).
        origin: String,
        /// What is wrong.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// An entry of `[networks] trusted` is not a network.
    #[error("networks.trusted[{index}] = {entry:?}: {message}")]
    Network {
        /// Position in the list.
        index: usize,
        /// The entry as written.
        entry: String,
        /// Why it does not parse.
        message: String,
    },
    /// An entry of `[identities.aliases]` is unusable.
    #[error("identities.aliases.{principal:?}: {message}")]
    Alias {
        /// The principal (the alias's key).
        principal: String,
        /// What is wrong.
        message: String,
    },
    /// An entry of `[identities] protected` is unusable.
    #[error("identities.protected[{index}] = {entry:?}: {message}")]
    Protected {
        /// Position in the list.
        index: usize,
        /// The entry as written.
        entry: String,
        /// What is wrong.
        message: String,
    },
}

impl EnrichError {
    /// Whether retrying may help: never, these are configuration or file problems.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Everything enrichment needs, built once from the configuration and shared by batches.
#[derive(Debug, Default)]
pub struct Enricher {
    /// City/ASN databases; `None`: no `[geoip]` configured, events get no location.
    pub geoip: Option<GeoIp>,
    /// Trusted networks.
    pub networks: Networks,
    /// Aliases and protected principals.
    pub identities: Identities,
}

impl Enricher {
    /// Builds the enricher: opens the databases, parses networks, aliases and patterns.
    /// Paths were already resolved by the config loader.
    pub fn from_config(
        geoip: &GeoipConfig,
        networks: &NetworksConfig,
        identities: &IdentitiesConfig,
    ) -> Result<Enricher, EnrichError> {
        Ok(Enricher {
            geoip: GeoIp::from_config(geoip)?,
            networks: Networks::from_config(networks)?,
            identities: Identities::from_config(identities)?,
        })
    }

    /// Enriches one event in place. Idempotent: every field it sets is recomputed.
    pub fn enrich(&self, event: &mut IdentityEvent) {
        let src = &mut event.src;
        match src.ip {
            Some(ip) => {
                src.private = is_private_or_reserved(ip);
                src.trusted = self.networks.is_trusted(ip);
                let geoip = self.geoip.as_ref().filter(|_| !src.private);
                src.geo = geoip.and_then(|g| g.city(ip));
                src.asn = geoip.and_then(|g| g.asn(ip));
            }
            None => {
                src.private = false;
                src.trusted = false;
                src.geo = None;
                src.asn = None;
            }
        }
        if let Some(key) = self.identities.resolved_key(&event.actor) {
            event.actor.key = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::model::{
        Activity, Actor, AuthFacts, Endpoint, EventClass, PrincipalType, RecordKind, Status,
    };

    fn event(ip: Option<&str>, actor: Actor) -> IdentityEvent {
        IdentityEvent {
            time: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            kind: RecordKind::Cloudtrail,
            class: EventClass::Authentication,
            activity: Activity::SignIn,
            status: Status::Success,
            status_detail: None,
            account: Some("123456789012".into()),
            region: None,
            actor,
            src: Endpoint {
                ip: ip.map(|s| s.parse().unwrap()),
                raw: ip.map(str::to_string),
                ..Endpoint::default()
            },
            action: "ConsoleLogin".into(),
            service: None,
            targets: vec![],
            auth: AuthFacts::default(),
            oauth: None,
            uid: "e1".into(),
            raw: crate::json::Raw::default(),
        }
    }

    fn enricher() -> Enricher {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            "arn:aws:iam::123456789012:user/alice".to_string(),
            "alice@corp.example".to_string(),
        );
        Enricher::from_config(
            &GeoipConfig {
                city: Some(geoip::tests::asset("GeoLite2-City-Test.mmdb")),
                asn: Some(geoip::tests::asset("GeoLite2-ASN-Test.mmdb")),
            },
            &NetworksConfig {
                trusted: vec!["81.2.69.160/27".into(), "203.0.113.0/24".into()],
            },
            &IdentitiesConfig {
                protected: vec!["breakglass@corp.example".into()],
                aliases,
            },
        )
        .unwrap()
    }

    fn alice() -> Actor {
        Actor {
            key: "arn:aws:iam::123456789012:user/alice".into(),
            uid: Some("arn:aws:iam::123456789012:user/alice".into()),
            name: Some("alice".into()),
            principal_type: PrincipalType::User,
            ..Actor::default()
        }
    }

    #[test]
    fn public_address_gets_geo_asn_and_alias_key() {
        let e = enricher();
        let mut ev = event(Some("89.160.20.113"), alice());
        e.enrich(&mut ev);
        assert!(!ev.src.private && !ev.src.trusted);
        let geo = ev.src.geo.as_ref().unwrap();
        assert_eq!(geo.city.as_deref(), Some("Linköping"));
        assert_eq!(geo.country.as_deref(), Some("SE"));
        assert_eq!(geo.radius_km, Some(76.0));
        assert_eq!(ev.src.asn.as_ref().unwrap().number, 29518);
        assert_eq!(ev.actor.key, "alice@corp.example");
        // Idempotent.
        let once = ev.clone();
        e.enrich(&mut ev);
        assert_eq!(ev, once);
    }

    #[test]
    fn trusted_address_is_flagged_and_still_located() {
        let e = enricher();
        let mut ev = event(Some("81.2.69.170"), Actor::default());
        e.enrich(&mut ev);
        assert!(ev.src.trusted && !ev.src.private);
        assert_eq!(ev.src.geo.unwrap().city.as_deref(), Some("London"));
    }

    #[test]
    fn private_and_documentation_addresses_get_no_lookup() {
        let e = enricher();
        for addr in ["10.1.2.3", "::ffff:192.168.0.1", "fd00::1", "203.0.113.9"] {
            let mut ev = event(Some(addr), Actor::default());
            ev.src.geo = Some(crate::model::GeoLocation {
                city: None,
                country: Some("XX".into()),
                lat: 0.0,
                lon: 0.0,
                radius_km: None,
            });
            e.enrich(&mut ev);
            assert!(ev.src.private, "{addr}");
            assert_eq!(ev.src.geo, None, "{addr}");
            assert_eq!(ev.src.asn, None, "{addr}");
        }
        // 203.0.113.0/24 is both documentation space and configured as trusted.
        let mut ev = event(Some("203.0.113.9"), Actor::default());
        e.enrich(&mut ev);
        assert!(ev.src.trusted);
    }

    #[test]
    fn no_address_and_unknown_address() {
        let e = enricher();
        let mut ev = event(None, alice());
        e.enrich(&mut ev);
        assert!(!ev.src.private && !ev.src.trusted && ev.src.geo.is_none());
        let mut ev = event(Some("8.8.8.8"), Actor::default());
        e.enrich(&mut ev);
        assert!(!ev.src.private && ev.src.geo.is_none() && ev.src.asn.is_none());
    }

    #[test]
    fn without_geoip_only_flags_and_keys() {
        let e = Enricher::from_config(
            &GeoipConfig::default(),
            &NetworksConfig::default(),
            &IdentitiesConfig::default(),
        )
        .unwrap();
        assert!(e.geoip.is_none());
        let mut ev = event(Some("81.2.69.142"), alice());
        e.enrich(&mut ev);
        assert!(ev.src.geo.is_none());
        assert_eq!(ev.actor.key, "arn:aws:iam::123456789012:user/alice");
    }

    #[test]
    fn config_sections_parse_with_design_names_and_reject_unknown_keys() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Sections {
            geoip: GeoipConfig,
            networks: NetworksConfig,
            identities: IdentitiesConfig,
        }
        let s: Sections = toml::from_str(
            r#"
            [geoip]
            city = "GeoLite2-City.mmdb"
            asn  = "GeoLite2-ASN.mmdb"
            [networks]
            trusted = ["203.0.113.0/24"]
            [identities]
            protected = ["breakglass@corp.example", "arn:aws:iam::*:root"]
            [identities.aliases]
            "arn:aws:iam::123456789012:user/alice" = "alice@corp.example"
            "#,
        )
        .unwrap();
        assert_eq!(
            s.geoip.city.as_deref(),
            Some(std::path::Path::new("GeoLite2-City.mmdb"))
        );
        assert_eq!(s.networks.trusted, ["203.0.113.0/24"]);
        assert_eq!(s.identities.protected.len(), 2);
        assert_eq!(
            s.identities.aliases["arn:aws:iam::123456789012:user/alice"],
            "alice@corp.example"
        );
        assert!(toml::from_str::<GeoipConfig>("city = \"x\"\ncountry = \"y\"").is_err());
        assert!(toml::from_str::<NetworksConfig>("trused = []").is_err());
        assert!(toml::from_str::<IdentitiesConfig>("protect = []").is_err());
    }

    #[test]
    fn enricher_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Enricher>();
    }

    #[test]
    fn from_config_reports_the_bad_part() {
        let err = Enricher::from_config(
            &GeoipConfig::default(),
            &NetworksConfig {
                trusted: vec!["10.0.0.0/8".into(), "vpn".into()],
            },
            &IdentitiesConfig::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "networks.trusted[1] = \"vpn\": not an IP address or CIDR"
        );
        assert!(!err.is_retryable());
    }
}
