//! Geo-IP lookups from MaxMind-format databases: a City database (GeoIP2/GeoLite2 City,
//! DB-IP Lite City) gives [`GeoLocation`] with its accuracy radius, an ASN database
//! (GeoLite2 ASN, GeoIP2 ISP, DB-IP Lite ASN) gives [`Asn`].
//!
//! Lookups decode only the fields picket uses, borrowing strings from the database, so one
//! lookup is a tree walk plus a few small decodes. Measured (`geoip_lookup_cost`, optimized,
//! on the test databases): about 0.5 µs for city + ASN of one address, a small share of the
//! 3 µs per event a 300k events/s/core pipeline allows, so there is no cache; private and
//! reserved addresses skip the lookup altogether. An address the database does not hold, or a
//! lookup error, is `None`.
//!
//! To support another database schema: add a record struct beside `CityRecord` and a
//! lookup method, and accept its `database_type` in [`DbKind::accepts`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EnrichError;
use crate::model::{Asn, GeoLocation};

/// A database older than this many days is stale (wrong travel verdicts): a later check
/// raises a low finding.
pub const STALE_AFTER_DAYS: i64 = 45;

/// `[geoip]` of `picket.toml`. Paths are resolved by the config loader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoipConfig {
    /// City database (`GeoLite2-City.mmdb`): location, country and accuracy radius.
    #[serde(default)]
    pub city: Option<PathBuf>,
    /// ASN database (`GeoLite2-ASN.mmdb`): the network that owns an address.
    #[serde(default)]
    pub asn: Option<PathBuf>,
}

/// Which schema a database must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// City (or Enterprise) records: `city`, `country`, `location`.
    City,
    /// ASN (or ISP) records: `autonomous_system_number`, `autonomous_system_organization`.
    Asn,
}

impl DbKind {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DbKind::City => "city",
            DbKind::Asn => "asn",
        }
    }

    /// Whether a database with metadata `database_type` has this schema.
    pub fn accepts(self, database_type: &str) -> bool {
        let t = database_type.to_ascii_lowercase();
        match self {
            DbKind::City => t.contains("city") || t.contains("enterprise"),
            DbKind::Asn => t.contains("asn") || t.contains("isp"),
        }
    }
}

/// One open MaxMind-format database.
pub struct GeoDatabase {
    reader: maxminddb::Reader<Vec<u8>>,
    origin: String,
    kind: DbKind,
    build_time: DateTime<Utc>,
}

impl std::fmt::Debug for GeoDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDatabase")
            .field("origin", &self.origin)
            .field("kind", &self.kind)
            .field("database_type", &self.database_type())
            .field("build_time", &self.build_time)
            .finish()
    }
}

impl GeoDatabase {
    /// Reads the database at `path` (wholly into memory) and checks it has the `kind` schema.
    pub fn open(path: &Path, kind: DbKind) -> Result<GeoDatabase, EnrichError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| EnrichError::Geoip {
            origin: origin.clone(),
            message: "cannot read the file".to_string(),
            source: Some(Box::new(e)),
        })?;
        GeoDatabase::from_bytes(bytes, kind, origin)
    }

    /// Opens a database held in memory (fetched from S3, embedded); `origin` names it in errors.
    pub fn from_bytes(
        bytes: Vec<u8>,
        kind: DbKind,
        origin: impl Into<String>,
    ) -> Result<GeoDatabase, EnrichError> {
        let origin = origin.into();
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| EnrichError::Geoip {
            origin: origin.clone(),
            message: "not a valid MaxMind database".to_string(),
            source: Some(Box::new(e)),
        })?;
        let meta = reader.metadata();
        if !kind.accepts(&meta.database_type) {
            return Err(EnrichError::Geoip {
                origin,
                message: format!(
                    "is a {:?} database, expected a {} database",
                    meta.database_type,
                    kind.as_str()
                ),
                source: None,
            });
        }
        let build_time = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
            .ok_or_else(|| EnrichError::Geoip {
                origin: origin.clone(),
                message: format!("build_epoch {} is out of range", meta.build_epoch),
                source: None,
            })?;
        Ok(GeoDatabase {
            reader,
            origin,
            kind,
            build_time,
        })
    }

    /// Where the database came from (a path or the origin given to `from_bytes`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The schema it was opened as.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The metadata's `database_type` (`GeoLite2-City`, `GeoLite2-ASN`, ...).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built (metadata `build_epoch`).
    pub fn build_time(&self) -> DateTime<Utc> {
        self.build_time
    }

    /// Whether the database is older than [`STALE_AFTER_DAYS`] at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        now - self.build_time > chrono::Duration::days(STALE_AFTER_DAYS)
    }

    fn decode<'a, T: Deserialize<'a>>(&'a self, ip: IpAddr) -> Option<T> {
        let result = self
            .reader
            .lookup(ip.to_canonical())
            .and_then(|r| r.decode::<T>());
        match result {
            Ok(found) => found,
            Err(e) => {
                // Per-address, not per-database: at debug so a bad range cannot flood the log.
                tracing::debug!(origin = %self.origin, %ip, error = %e, "geoip lookup failed");
                None
            }
        }
    }
}

/// The fields of a City record picket reads (the rest is skipped while decoding).
#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

/// City and ASN lookups; either database may be absent.
#[derive(Debug, Default)]
pub struct GeoIp {
    city: Option<GeoDatabase>,
    asn: Option<GeoDatabase>,
}

impl GeoIp {
    /// Combines already opened databases (each must have the matching [`DbKind`]).
    pub fn new(city: Option<GeoDatabase>, asn: Option<GeoDatabase>) -> Result<GeoIp, EnrichError> {
        for (db, want) in [(&city, DbKind::City), (&asn, DbKind::Asn)] {
            if let Some(db) = db
                && db.kind != want
            {
                return Err(EnrichError::Geoip {
                    origin: db.origin.clone(),
                    message: format!(
                        "opened as a {} database but given as the {} one",
                        db.kind.as_str(),
                        want.as_str()
                    ),
                    source: None,
                });
            }
        }
        Ok(GeoIp { city, asn })
    }

    /// Opens the configured databases; `None` when neither is configured.
    pub fn from_config(config: &GeoipConfig) -> Result<Option<GeoIp>, EnrichError> {
        if config.city.is_none() && config.asn.is_none() {
            return Ok(None);
        }
        let city = config
            .city
            .as_deref()
            .map(|p| GeoDatabase::open(p, DbKind::City))
            .transpose()?;
        let asn = config
            .asn
            .as_deref()
            .map(|p| GeoDatabase::open(p, DbKind::Asn))
            .transpose()?;
        GeoIp::new(city, asn).map(Some)
    }

    /// The open databases (city first).
    pub fn databases(&self) -> impl Iterator<Item = &GeoDatabase> {
        self.city.iter().chain(self.asn.iter())
    }

    /// The build time of the oldest open database (what a staleness check compares).
    pub fn build_time(&self) -> Option<DateTime<Utc>> {
        self.databases().map(GeoDatabase::build_time).min()
    }

    /// Where `ip` is, per the City database. `None`: no City database, an address it does not
    /// hold, or a record without coordinates.
    pub fn city(&self, ip: IpAddr) -> Option<GeoLocation> {
        let rec: CityRecord<'_> = self.city.as_ref()?.decode(ip)?;
        let loc = rec.location?;
        let (lat, lon) = (loc.latitude?, loc.longitude?);
        if !(lat.is_finite() && lon.is_finite()) {
            return None;
        }
        Some(GeoLocation {
            city: rec
                .city
                .and_then(|c| c.names)
                .and_then(|n| n.en)
                .map(str::to_string),
            country: rec.country.and_then(|c| c.iso_code).map(str::to_string),
            lat,
            lon,
            radius_km: loc.accuracy_radius.map(f64::from),
        })
    }

    /// Who owns `ip`, per the ASN database. `None`: no ASN database, or no number for `ip`.
    pub fn asn(&self, ip: IpAddr) -> Option<Asn> {
        let rec: AsnRecord<'_> = self.asn.as_ref()?.decode(ip)?;
        Some(Asn {
            number: rec.autonomous_system_number?,
            org: rec.autonomous_system_organization.map(str::to_string),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The bundled test databases (see `assets/geoip/README.md`).
    pub(crate) fn asset(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/geoip")
            .join(name)
    }

    pub(crate) fn test_geoip(city: &str) -> GeoIp {
        GeoIp::from_config(&GeoipConfig {
            city: Some(asset(city)),
            asn: Some(asset("GeoLite2-ASN-Test.mmdb")),
        })
        .unwrap()
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn loc(city: Option<&str>, country: &str, lat: f64, lon: f64, radius: f64) -> GeoLocation {
        GeoLocation {
            city: city.map(str::to_string),
            country: Some(country.to_string()),
            lat,
            lon,
            radius_km: Some(radius),
        }
    }

    /// Values from MaxMind's `source-data/GeoLite2-City-Test.json`.
    #[test]
    fn geolite2_city_locations() {
        let g = test_geoip("GeoLite2-City-Test.mmdb");
        let cases = [
            (
                "81.2.69.142",
                loc(Some("London"), "GB", 51.5142, -0.0931, 10.0),
            ),
            (
                "81.2.69.143",
                loc(Some("London"), "GB", 51.5142, -0.0931, 10.0),
            ),
            (
                "81.2.69.150",
                loc(Some("London"), "GB", 51.5142, -0.0931, 3.0),
            ),
            (
                "81.2.69.170",
                loc(Some("London"), "GB", 51.5142, -0.0931, 100.0),
            ),
            (
                "175.16.199.0",
                loc(Some("Changchun"), "CN", 43.88, 125.3228, 100.0),
            ),
            (
                "175.16.199.255",
                loc(Some("Changchun"), "CN", 43.88, 125.3228, 100.0),
            ),
            (
                "89.160.20.113",
                loc(Some("Linköping"), "SE", 58.4167, 15.6167, 76.0),
            ),
            (
                "216.160.83.60",
                loc(Some("Milton"), "US", 47.2513, -122.3149, 22.0),
            ),
            (
                "2.125.160.216",
                loc(Some("Boxford"), "GB", 51.75, -1.25, 100.0),
            ),
            // Country-level entries: no city, wide radius.
            ("67.43.156.1", loc(None, "BT", 27.5, 90.5, 534.0)),
            ("202.196.224.5", loc(None, "PH", 13.0, 122.0, 121.0)),
            ("2001:218::1", loc(None, "JP", 35.68536, 139.75309, 100.0)),
            ("2a02:cf40::1", loc(None, "NO", 62.0, 10.0, 100.0)),
            // IPv4-mapped form of London.
            (
                "::ffff:81.2.69.142",
                loc(Some("London"), "GB", 51.5142, -0.0931, 10.0),
            ),
        ];
        for (addr, want) in cases {
            assert_eq!(g.city(ip(addr)), Some(want), "{addr}");
        }
        // Coordinates without a country.
        let vaduz = g.city(ip("2a02:d500::1")).unwrap();
        assert_eq!(
            (vaduz.country, vaduz.lat, vaduz.lon),
            (None, 48.69096, 9.14062)
        );
    }

    /// Values from `source-data/GeoIP2-City-Test.json`, incl. an IPv6 city.
    #[test]
    fn geoip2_city_locations() {
        let g = test_geoip("GeoIP2-City-Test.mmdb");
        assert_eq!(
            g.city(ip("2001:480:10::1")),
            Some(loc(Some("San Diego"), "US", 32.7203, -117.1552, 20.0))
        );
        assert_eq!(
            g.city(ip("214.0.1.7")),
            Some(loc(Some("Melbourne"), "AU", -37.8159, 144.9669, 20.0))
        );
        assert_eq!(
            g.city(ip("149.101.100.3")),
            Some(loc(None, "US", 37.751, -97.822, 1000.0))
        );
        // 2.3.3.0/24 has a record without a location: unlocatable.
        assert_eq!(g.city(ip("2.3.3.1")), None);
    }

    /// Values from `source-data/GeoLite2-ASN-Test.json`.
    #[test]
    fn asn_lookups() {
        let g = test_geoip("GeoLite2-City-Test.mmdb");
        let asn = |number: u32, org: Option<&str>| {
            Some(Asn {
                number,
                org: org.map(str::to_string),
            })
        };
        assert_eq!(g.asn(ip("1.128.0.1")), asn(1221, Some("Telstra Pty Ltd")));
        assert_eq!(g.asn(ip("1.0.0.255")), asn(15169, Some("Google Inc.")));
        assert_eq!(
            g.asn(ip("81.128.0.1")),
            asn(2856, Some("BTnet UK Regional network"))
        );
        assert_eq!(g.asn(ip("89.160.20.113")), asn(29518, Some("Bredband2 AB")));
        // A record without an organisation.
        assert_eq!(g.asn(ip("12.81.96.1")), asn(7018, None));
        assert_eq!(
            g.asn(ip("2001:1700::1")),
            asn(6730, Some("Sunrise Communications AG"))
        );
    }

    #[test]
    fn unknown_addresses_are_none() {
        let g = test_geoip("GeoLite2-City-Test.mmdb");
        for addr in [
            "8.8.8.8",
            "10.0.0.1",
            "::1",
            "2001:db8::1",
            "255.255.255.255",
        ] {
            assert_eq!(g.city(ip(addr)), None, "{addr}");
        }
        assert_eq!(g.asn(ip("10.0.0.1")), None);
        let empty = GeoIp::default();
        assert_eq!(empty.city(ip("81.2.69.142")), None);
        assert_eq!(empty.asn(ip("1.128.0.1")), None);
        assert_eq!(empty.build_time(), None);
    }

    #[test]
    fn metadata_build_time_and_staleness() {
        let g = test_geoip("GeoLite2-City-Test.mmdb");
        let dbs: Vec<_> = g.databases().collect();
        assert_eq!(dbs[0].database_type(), "GeoLite2-City");
        assert_eq!(dbs[1].database_type(), "GeoLite2-ASN");
        let built = g.build_time().unwrap();
        assert!(built == dbs[0].build_time().min(dbs[1].build_time()));
        assert!(built.timestamp() > 1_500_000_000, "{built}");
        assert!(!dbs[0].is_stale(dbs[0].build_time() + chrono::Duration::days(45)));
        assert!(dbs[0].is_stale(dbs[0].build_time() + chrono::Duration::days(46)));
    }

    #[test]
    fn open_errors_name_the_origin() {
        let missing = asset("no-such.mmdb");
        let err = GeoDatabase::open(&missing, DbKind::City)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");

        let broken = asset("GeoIP2-City-Test-Invalid-Node-Count.mmdb");
        let err = GeoDatabase::open(&broken, DbKind::City)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Invalid-Node-Count"), "{err}");

        let err =
            GeoDatabase::from_bytes(b"not a database".to_vec(), DbKind::City, "s3://b/x.mmdb")
                .unwrap_err()
                .to_string();
        assert!(err.contains("s3://b/x.mmdb"), "{err}");

        // An ASN database given as the city one.
        let err = GeoIp::from_config(&GeoipConfig {
            city: Some(asset("GeoLite2-ASN-Test.mmdb")),
            asn: None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("GeoLite2-ASN-Test.mmdb") && err.contains("city"),
            "{err}"
        );
    }

    #[test]
    fn from_bytes_matches_open() {
        let bytes = std::fs::read(asset("GeoLite2-City-Test.mmdb")).unwrap();
        let db = GeoDatabase::from_bytes(bytes, DbKind::City, "embedded").unwrap();
        assert_eq!(db.origin(), "embedded");
        let g = GeoIp::new(Some(db), None).unwrap();
        assert_eq!(
            g.city(ip("81.2.69.142")).unwrap().city.as_deref(),
            Some("London")
        );
        assert_eq!(g.asn(ip("1.128.0.1")), None);
        assert!(
            GeoIp::from_config(&GeoipConfig::default())
                .unwrap()
                .is_none()
        );
    }

    /// A measurement, not an assertion on time: run with
    /// `cargo test --no-default-features --lib geoip_lookup_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement; prints the cost per lookup"]
    fn geoip_lookup_cost() {
        let g = test_geoip("GeoLite2-City-Test.mmdb");
        let addrs: Vec<IpAddr> = [
            "81.2.69.142",
            "175.16.199.1",
            "89.160.20.113",
            "8.8.8.8",
            "2001:218::1",
        ]
        .iter()
        .map(|s| ip(s))
        .collect();
        let n = 200_000;
        let start = std::time::Instant::now();
        let mut found = 0usize;
        for i in 0..n {
            let a = addrs[i % addrs.len()];
            found += usize::from(g.city(a).is_some()) + usize::from(g.asn(a).is_some());
        }
        let per = start.elapsed().as_nanos() / n as u128;
        eprintln!("city+asn lookup: {per} ns per address ({found} hits)");
        assert!(found > 0);
    }
}
