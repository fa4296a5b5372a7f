//! Test data for the identity detectors (built with `cfg(test)` or the `testgen` feature):
//!
//! * [`signin_event`] and friends: small event builders for unit tests.
//! * [`Month::generate`]: a labelled month of RAW provider records (CloudTrail `ConsoleLogin`
//!   and `CreateAccessKey`, Graph `signIn` and `directoryAudit`, Google Reports `login` and
//!   `token` activities) for many users across AWS, Entra and Google, with ground truth:
//!   legitimate flights at feasible speeds, VPN egress from trusted ranges, coarse mobile
//!   geolocation, IPv6, private addresses, password sprays, attacker sign-ins from hosting
//!   ranges, post-compromise and phishing consents, benign consents of allowed apps.
//! * Synthetic MaxMind City and ASN databases for that month, written by [`mmdb_writer`].
//!
//! Each generated record also carries the [`IdentityEvent`] a normalizer makes of it (the
//! stand-in for record shapes whose normalizer has not landed; a test checks the two agree
//! once it has). [`Month::events`] runs the records through `normalize/` where it can and
//! through the real `enrich::Enricher` built by [`enricher`] over the synthetic databases.
//!
//! To add a scenario: a function like `attack` that pushes records and labels into [`Month`].

pub mod mmdb_writer;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::json::{Raw, Value, json};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ipnet::IpNet;

use self::mmdb_writer::{MmdbWriter, asn_record, city_record};
use super::history::great_circle_km;
use crate::model::{
    Activity, Actor, Asn, AuthFacts, Endpoint, EventClass, GeoLocation, IdentityEvent, OAuthGrant,
    PrincipalType, RecordKind, Status,
};

/// Start of the generated month and of unit-test clocks: 2026-01-01T00:00:00Z.
pub const EPOCH: i64 = 1_767_225_600;

/// `EPOCH` plus `min` minutes.
pub fn at(min: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(EPOCH + min * 60, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A bare event of `kind` and `activity` for `key` at minute `min`.
pub fn bare_event(
    uid: &str,
    key: &str,
    min: i64,
    kind: RecordKind,
    activity: Activity,
) -> IdentityEvent {
    IdentityEvent {
        time: at(min),
        kind,
        class: match activity {
            Activity::SignIn => EventClass::Authentication,
            Activity::CredentialCreate | Activity::MfaChange => EventClass::AccountChange,
            Activity::ConsentGrant | Activity::PrivilegeGrant => EventClass::UserAccess,
            _ => EventClass::ApiActivity,
        },
        activity,
        status: Status::Success,
        status_detail: None,
        account: None,
        region: None,
        actor: Actor {
            key: key.to_string(),
            email: Some(key.to_string()),
            principal_type: PrincipalType::User,
            ..Actor::default()
        },
        src: Endpoint::default(),
        action: String::new(),
        service: None,
        targets: Vec::new(),
        auth: AuthFacts::default(),
        oauth: None,
        uid: uid.to_string(),
        raw: Raw::default(),
    }
}

/// A successful interactive Entra sign-in, already enriched with a city-level location.
pub fn signin_event(
    uid: &str,
    key: &str,
    min: i64,
    cc: &str,
    lat: f64,
    lon: f64,
    asn: u32,
) -> IdentityEvent {
    let mut e = bare_event(uid, key, min, RecordKind::EntraSignin, Activity::SignIn);
    e.action = "Sign-in activity".into();
    e.auth.interactive = Some(true);
    e.src.ip = Some(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 160)));
    e.src.geo = Some(GeoLocation {
        city: Some(format!("City-{cc}")),
        country: Some(cc.to_string()),
        lat,
        lon,
        radius_km: Some(20.0),
    });
    e.src.asn = Some(Asn {
        number: asn,
        org: Some(format!("AS{asn} org")),
    });
    e
}

/// A deterministic pseudo-random generator (SplitMix64): no dependency, same month every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (`lo` when empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// A uuid-shaped id.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// A synthetic city with its address blocks.
#[derive(Debug, Clone, Copy)]
pub struct City {
    /// Name.
    pub name: &'static str,
    /// ISO country code.
    pub cc: &'static str,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

const fn c(name: &'static str, cc: &'static str, lat: f64, lon: f64) -> City {
    City { name, cc, lat, lon }
}

/// Cities people live in and travel to (index = block number).
pub const CITIES: &[City] = &[
    c("London", "GB", 51.5074, -0.1278),
    c("Paris", "FR", 48.8566, 2.3522),
    c("Berlin", "DE", 52.52, 13.405),
    c("Frankfurt", "DE", 50.1109, 8.6821),
    c("Madrid", "ES", 40.4168, -3.7038),
    c("Rome", "IT", 41.9028, 12.4964),
    c("Amsterdam", "NL", 52.3676, 4.9041),
    c("Stockholm", "SE", 59.3293, 18.0686),
    c("Warsaw", "PL", 52.2297, 21.0122),
    c("Dublin", "IE", 53.3498, -6.2603),
    c("New York", "US", 40.7128, -74.006),
    c("Chicago", "US", 41.8781, -87.6298),
    c("San Francisco", "US", 37.7749, -122.4194),
    c("Seattle", "US", 47.6062, -122.3321),
    c("Austin", "US", 30.2672, -97.7431),
    c("Toronto", "CA", 43.6532, -79.3832),
    c("Sao Paulo", "BR", -23.5505, -46.6333),
    c("Tokyo", "JP", 35.6762, 139.6503),
    c("Bangalore", "IN", 12.9716, 77.5946),
    c("Sydney", "AU", -33.8688, 151.2093),
];

/// Where attackers' hosting providers are (index into a separate block range) and their ASNs.
pub const ATTACKER_CITIES: &[(City, u32, &str)] = &[
    (c("Lagos", "NG", 6.5244, 3.3792), 16276, "OVH SAS"),
    (c("Moscow", "RU", 55.7558, 37.6173), 9009, "M247 Europe SRL"),
    (
        c("Singapore", "SG", 1.3521, 103.8198),
        14061,
        "DIGITALOCEAN-ASN",
    ),
    (
        c("Ho Chi Minh City", "VN", 10.8231, 106.6297),
        20473,
        "AS-CHOOPA",
    ),
    (
        c("Johannesburg", "ZA", -26.2041, 28.0473),
        24940,
        "Hetzner Online GmbH",
    ),
    (c("Dubai", "AE", 25.2048, 55.2708), 16509, "AMAZON-02"),
    (
        c("Hong Kong", "HK", 22.3193, 114.1694),
        63949,
        "Akamai Connected Cloud",
    ),
];

/// Country centroids for country-level (coarse) mobile records.
pub const CENTROIDS: &[(&str, f64, f64)] = &[
    ("GB", 54.0, -2.0),
    ("FR", 46.2, 2.2),
    ("DE", 51.1, 10.4),
    ("ES", 40.4, -3.7),
    ("IT", 42.8, 12.8),
    ("NL", 52.1, 5.3),
    ("SE", 62.0, 15.0),
    ("PL", 52.0, 19.1),
    ("IE", 53.4, -8.2),
    ("US", 37.751, -97.822),
    ("CA", 56.1, -106.3),
    ("BR", -14.2, -51.9),
    ("JP", 36.2, 138.25),
    ("IN", 20.6, 79.0),
    ("AU", -25.3, 133.8),
];

/// Radius of country-level records (km).
pub const COARSE_RADIUS: u16 = 1000;
/// The corporate VPN egress (trusted), geolocated to Ashburn.
pub const VPN_NET: &str = "193.0.0.0/16";
/// Allowed app ids in the generated tenant.
pub const ALLOWED_APPS: &[(&str, &str)] = &[
    ("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile"),
    (
        "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "Contoso Mail Archiver",
    ),
    (
        "1050466722345-allowed.apps.googleusercontent.com",
        "Contoso Drive Backup",
    ),
];
/// Malicious app ids.
pub const MALICIOUS_APPS: &[(&str, &str)] = &[
    ("9b1f2c3d-0000-4abc-8def-0123456789ab", "Secure Mail Viewer"),
    ("5e6f7a8b-1111-4bcd-9ef0-123456789abc", "PDF Document Sign"),
    (
        "8877665544-evil.apps.googleusercontent.com",
        "Docs Reader Pro",
    ),
];

fn city_v4(i: usize) -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(81, i as u8, 0, 0), 16).unwrap_or_default())
}
fn city_v6(i: usize) -> IpNet {
    IpNet::V6(
        ipnet::Ipv6Net::new(
            Ipv6Addr::new(0x2a02, 0x1000 + i as u16, 0, 0, 0, 0, 0, 0),
            32,
        )
        .unwrap_or_default(),
    )
}
fn mobile_v4(i: usize) -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(91, i as u8, 0, 0), 16).unwrap_or_default())
}
fn hosting_v4(i: usize) -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(45, 10 + i as u8, 0, 0), 16).unwrap_or_default())
}
fn vpn() -> IpNet {
    VPN_NET
        .parse()
        .unwrap_or_else(|_| IpNet::V4(ipnet::Ipv4Net::default()))
}

fn host_in(net: IpNet, rng: &mut Rng) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let base = u32::from(n.network());
            IpAddr::V4(Ipv4Addr::from(base + 1 + (rng.next_u64() % 60_000) as u32))
        }
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            IpAddr::V6(Ipv6Addr::from(base + 1 + u128::from(rng.next_u64())))
        }
    }
}

fn centroid(cc: &str) -> (f64, f64) {
    CENTROIDS
        .iter()
        .find(|(c, _, _)| *c == cc)
        .map_or((0.0, 0.0), |(_, lat, lon)| (*lat, *lon))
}

/// Writes the synthetic City and ASN databases for [`CITIES`], the coarse mobile blocks, the
/// attackers' hosting blocks and the VPN.
pub fn write_databases() -> Result<(Vec<u8>, Vec<u8>), mmdb_writer::MmdbWriteError> {
    let mut city = MmdbWriter::new(
        "GeoLite2-City",
        "picket synthetic city database",
        EPOCH as u64,
    );
    let mut asn = MmdbWriter::new(
        "GeoLite2-ASN",
        "picket synthetic ASN database",
        EPOCH as u64,
    );
    for (i, c) in CITIES.iter().enumerate() {
        let radius = [5u16, 10, 20, 50, 100][i % 5];
        city.insert(
            city_v4(i),
            city_record(Some(c.name), c.cc, c.lat, c.lon, radius),
        );
        city.insert(
            city_v6(i),
            city_record(Some(c.name), c.cc, c.lat, c.lon, radius),
        );
        let org = format!("{} Telecom {}", c.cc, c.name);
        asn.insert(city_v4(i), asn_record(3000 + i as u32, &org));
        asn.insert(city_v6(i), asn_record(3000 + i as u32, &org));
    }
    for (i, (cc, lat, lon)) in CENTROIDS.iter().enumerate() {
        city.insert(
            mobile_v4(i),
            city_record(None, cc, *lat, *lon, COARSE_RADIUS),
        );
        asn.insert(
            mobile_v4(i),
            asn_record(5000 + i as u32, &format!("{cc} Mobile")),
        );
    }
    for (i, (c, number, org)) in ATTACKER_CITIES.iter().enumerate() {
        city.insert(
            hosting_v4(i),
            city_record(Some(c.name), c.cc, c.lat, c.lon, 20),
        );
        asn.insert(hosting_v4(i), asn_record(*number, org));
    }
    city.insert(
        vpn(),
        city_record(Some("Ashburn"), "US", 39.0438, -77.4874, 10),
    );
    asn.insert(vpn(), asn_record(64_600, "Contoso Corporate VPN"));
    Ok((city.to_bytes()?, asn.to_bytes()?))
}

/// The real [`crate::enrich::Enricher`] over the synthetic databases, with the VPN as the
/// trusted network and every generated AWS user aliased to its email (as
/// `[identities.aliases]` would do).
pub fn enricher(users: usize) -> Result<crate::enrich::Enricher, crate::enrich::EnrichError> {
    use crate::enrich::{DbKind, GeoDatabase, GeoIp, Identities, IdentitiesConfig, Networks};
    let (city, asn) = write_databases().map_err(|e| crate::enrich::EnrichError::Geoip {
        origin: "testgen".into(),
        message: e.to_string(),
        source: None,
    })?;
    let aliases = (0..users)
        .map(|i| {
            (
                format!("arn:aws:iam::{AWS_ACCOUNT}:user/user{i}"),
                format!("user{i}@corp.example"),
            )
        })
        .collect();
    Ok(crate::enrich::Enricher {
        geoip: Some(GeoIp::new(
            Some(GeoDatabase::from_bytes(
                city,
                DbKind::City,
                "synthetic city",
            )?),
            Some(GeoDatabase::from_bytes(asn, DbKind::Asn, "synthetic asn")?),
        )?),
        networks: Networks::new(&[VPN_NET])?,
        identities: Identities::from_config(&IdentitiesConfig {
            protected: Vec::new(),
            aliases,
        })?,
    })
}

impl Month {
    /// The month's events, enriched: each record through `normalize::normalize` when the
    /// normalizer for its shape handles it, else the generator's own stand-in event. Returns
    /// the events and how many came from the real normalizers.
    pub fn events(&self, enricher: &crate::enrich::Enricher) -> (Vec<IdentityEvent>, usize) {
        let mut out = Vec::with_capacity(self.records.len());
        let mut normalized = 0;
        for g in &self.records {
            let mut e = match crate::normalize::normalize(g.event.kind, g.event.raw.clone()) {
                Ok(mut v) if v.len() == 1 => {
                    normalized += 1;
                    v.remove(0)
                }
                _ => g.event.clone(),
            };
            enricher.enrich(&mut e);
            out.push(e);
        }
        (out, normalized)
    }

    /// [`Month::events`] consuming the month, each event without its raw record (the
    /// identity detectors never read it): a month of 100,000 users fits in memory this way.
    pub fn into_events(self, enricher: &crate::enrich::Enricher) -> (Vec<IdentityEvent>, usize) {
        let mut out = Vec::with_capacity(self.records.len());
        let mut normalized = 0;
        for g in self.records {
            let mut event = g.event;
            let raw = std::mem::take(&mut event.raw).into_value();
            let mut e = match crate::normalize::normalize(event.kind, raw) {
                Ok(mut v) if v.len() == 1 => {
                    normalized += 1;
                    v.remove(0)
                }
                _ => event,
            };
            e.raw = Raw::default();
            enricher.enrich(&mut e);
            out.push(e);
        }
        (out, normalized)
    }
}

/// Ground truth of a generated month.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Attacker sign-in uids (any impossible-travel finding must contain one).
    pub attacker_signins: BTreeSet<String>,
    /// Impossible pairs that must be found: (earlier uid, later uid).
    pub travel_pairs: BTreeSet<(String, String)>,
    /// Consent event uids that must be reported as risky.
    pub risky_consents: BTreeSet<String>,
    /// Identities that suffered a takeover with a follow-up step within the window.
    pub takeovers: BTreeSet<String>,
}

/// One generated record: the raw provider record, and the event a normalizer makes of it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// When the record becomes available to picket (event time plus provider delay).
    pub delivered: DateTime<Utc>,
    /// The event (not yet enriched); `event.raw` holds the raw provider record.
    pub event: IdentityEvent,
}

/// A labelled month.
#[derive(Debug, Clone, Default)]
pub struct Month {
    /// Records in delivery order.
    pub records: Vec<Generated>,
    /// Ground truth.
    pub truth: Truth,
    /// Users generated.
    pub users: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cloud {
    Aws,
    Entra,
    Google,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    Isp4,
    Isp6,
    Mobile,
    Vpn,
    Private,
}

/// A sign-in slot of a user with its database position (for feasibility).
#[derive(Debug, Clone)]
struct Slot {
    min: i64,
    city: usize,
    src: Src,
    cloud: Cloud,
}

struct Ctx {
    rng: Rng,
    month: Month,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Database position and radius of an address block kind in a city.
fn position(city: usize, src: Src) -> Option<(f64, f64, f64, &'static str)> {
    let c = CITIES[city];
    let radius = f64::from([5u16, 10, 20, 50, 100][city % 5]);
    match src {
        Src::Isp4 | Src::Isp6 => Some((c.lat, c.lon, radius, c.cc)),
        Src::Mobile => {
            let (lat, lon) = centroid(c.cc);
            Some((lat, lon, f64::from(COARSE_RADIUS), c.cc))
        }
        Src::Vpn | Src::Private => None,
    }
}

fn address(city: usize, src: Src, rng: &mut Rng) -> IpAddr {
    match src {
        Src::Isp4 => host_in(city_v4(city), rng),
        Src::Isp6 => host_in(city_v6(city), rng),
        Src::Mobile => {
            let cc = CITIES[city].cc;
            let i = CENTROIDS.iter().position(|(c, _, _)| *c == cc).unwrap_or(0);
            host_in(mobile_v4(i), rng)
        }
        Src::Vpn => host_in(vpn(), rng),
        Src::Private => IpAddr::V4(Ipv4Addr::new(10, (rng.next_u64() % 200) as u8, 1, 7)),
    }
}

const UA: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36";
const TENANT: &str = "8f2c1e5a-3b4d-4c6e-9f01-23456789abcd";
const AWS_ACCOUNT: &str = "111122223333";
const GOOGLE_CUSTOMER: &str = "C03az79cb";

struct User {
    idx: usize,
    email: String,
    home: usize,
    aws: bool,
    google: bool,
}

impl Ctx {
    fn push(&mut self, mut event: IdentityEvent, raw: Value) {
        let lag = match event.provider() {
            crate::model::Provider::Aws => self.rng.range(5, 16),
            crate::model::Provider::Entra => self.rng.range(0, 6),
            _ => {
                if self.rng.chance(0.3) {
                    self.rng.range(30, 180)
                } else {
                    self.rng.range(1, 20)
                }
            }
        };
        event.raw = raw.into();
        self.month.records.push(Generated {
            delivered: event.time + Duration::minutes(lag),
            event,
        });
    }

    /// A sign-in record of `cloud` (raw record and event).
    fn signin(
        &mut self,
        u: &User,
        cloud: Cloud,
        min: i64,
        ip: IpAddr,
        ok: bool,
        mfa_failed: bool,
    ) -> String {
        let uid = self.rng.uuid();
        let t = at(min);
        let kind = match cloud {
            Cloud::Aws => RecordKind::Cloudtrail,
            Cloud::Entra => RecordKind::EntraSignin,
            Cloud::Google => RecordKind::GoogleReports,
        };
        let mut e = bare_event(&uid, &u.email, 0, kind, Activity::SignIn);
        e.time = t;
        e.status = if ok { Status::Success } else { Status::Failure };
        e.src.ip = Some(ip);
        e.src.raw = Some(ip.to_string());
        e.src.user_agent = Some(UA.to_string());
        e.auth.interactive = Some(true);
        e.auth.mfa_failed = mfa_failed;
        let user = format!("user{}", u.idx);
        let raw = match cloud {
            Cloud::Aws => {
                e.action = "ConsoleLogin".into();
                e.service = Some("signin.amazonaws.com".into());
                e.account = Some(AWS_ACCOUNT.into());
                e.actor.uid = Some(format!("arn:aws:iam::{AWS_ACCOUNT}:user/{user}"));
                json!({
                    "eventVersion": "1.09",
                    "userIdentity": {"type": "IAMUser", "principalId": format!("AIDA{:016X}", u.idx),
                        "arn": format!("arn:aws:iam::{AWS_ACCOUNT}:user/{user}"), "accountId": AWS_ACCOUNT, "userName": user},
                    "eventTime": iso(t), "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
                    "awsRegion": "us-east-1", "sourceIPAddress": ip.to_string(), "userAgent": UA,
                    "errorMessage": if ok { Value::new() } else { json!("Failed authentication") },
                    "requestParameters": null,
                    "responseElements": {"ConsoleLogin": if ok { "Success" } else { "Failure" }},
                    "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": if ok || mfa_failed { "Yes" } else { "No" }},
                    "eventID": uid, "readOnly": false, "eventType": "AwsConsoleSignIn", "managementEvent": true,
                    "recipientAccountId": AWS_ACCOUNT, "eventCategory": "Management"
                })
            }
            Cloud::Entra => {
                e.action = "Sign-in activity".into();
                e.account = Some(TENANT.into());
                e.actor.uid = Some(format!("00000000-0000-4000-8000-{:012}", u.idx));
                let code = if ok {
                    0
                } else if mfa_failed {
                    500121
                } else {
                    50126
                };
                json!({
                    "id": uid, "createdDateTime": iso(t), "userDisplayName": format!("User {}", u.idx),
                    "userPrincipalName": u.email, "userId": format!("00000000-0000-4000-8000-{:012}", u.idx),
                    "appId": "00000002-0000-0ff1-ce00-000000000000", "appDisplayName": "Office 365 Exchange Online",
                    "ipAddress": ip.to_string(), "clientAppUsed": "Browser", "userAgent": UA,
                    "isInteractive": true, "conditionalAccessStatus": "success",
                    "authenticationRequirement": "multiFactorAuthentication",
                    "status": {"errorCode": code, "failureReason": if ok { "Other." } else if mfa_failed { "Authentication failed during strong authentication request." } else { "Invalid username or password or Invalid on-premise username or password." }},
                    "riskEventTypes_v2": [], "riskLevelDuringSignIn": "none", "tenantId": TENANT
                })
            }
            Cloud::Google => {
                e.action = if ok {
                    "login_success".into()
                } else {
                    "login_failure".into()
                };
                e.service = Some("login".into());
                e.account = Some(GOOGLE_CUSTOMER.into());
                e.actor.uid = Some(format!("1{:020}", u.idx));
                json!({
                    "kind": "admin#reports#activity",
                    "id": {"time": iso(t), "uniqueQualifier": uid, "applicationName": "login", "customerId": GOOGLE_CUSTOMER},
                    "actor": {"email": u.email, "profileId": format!("1{:020}", u.idx)},
                    "ipAddress": ip.to_string(),
                    "events": [{"type": "login", "name": if ok { "login_success" } else { "login_failure" },
                        "parameters": [{"name": "login_type", "value": "google_password"},
                                       {"name": "is_suspicious", "boolValue": false}]}]
                })
            }
        };
        self.push(e, raw);
        uid
    }

    /// A consent record (Entra directoryAudit or Google token authorize).
    #[allow(clippy::too_many_arguments)]
    fn consent(
        &mut self,
        u: &User,
        google: bool,
        min: i64,
        ip: IpAddr,
        app: (&str, &str),
        scopes: &[&str],
        admin: bool,
    ) -> String {
        let uid = self.rng.uuid();
        let t = at(min);
        let kind = if google {
            RecordKind::GoogleReports
        } else {
            RecordKind::EntraAudit
        };
        let mut e = bare_event(&uid, &u.email, 0, kind, Activity::ConsentGrant);
        e.time = t;
        e.src.ip = Some(ip);
        e.src.raw = Some(ip.to_string());
        e.oauth = Some(OAuthGrant {
            app_id: Some(app.0.to_string()),
            app_name: Some(app.1.to_string()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            admin_consent: admin,
            all_principals: admin,
            publisher_verified: None,
        });
        let raw = if google {
            e.action = "authorize".into();
            e.service = Some("token".into());
            e.account = Some(GOOGLE_CUSTOMER.into());
            json!({
                "kind": "admin#reports#activity",
                "id": {"time": iso(t), "uniqueQualifier": uid, "applicationName": "token", "customerId": GOOGLE_CUSTOMER},
                "actor": {"email": u.email, "profileId": format!("1{:020}", u.idx)},
                "ipAddress": ip.to_string(),
                "events": [{"type": "auth", "name": "authorize", "parameters": [
                    {"name": "client_id", "value": app.0}, {"name": "app_name", "value": app.1},
                    {"name": "client_type", "value": "WEB"},
                    {"name": "scope", "multiValue": scopes}]}]
            })
        } else {
            e.action = "Consent to application".into();
            e.account = Some(TENANT.into());
            let scope_str = scopes.join(" ");
            json!({
                "id": uid, "category": "ApplicationManagement", "correlationId": uid,
                "result": "success", "resultReason": "", "activityDisplayName": "Consent to application",
                "activityDateTime": iso(t), "loggedByService": "Core Directory", "operationType": "Assign",
                "initiatedBy": {"user": {"id": format!("00000000-0000-4000-8000-{:012}", u.idx),
                    "userPrincipalName": u.email, "ipAddress": ip.to_string()}},
                "targetResources": [{"id": format!("sp-{}", app.0), "displayName": app.1, "type": "ServicePrincipal",
                    "modifiedProperties": [
                        {"displayName": "ConsentContext.IsAdminConsent", "oldValue": null, "newValue": format!("\"{}\"", if admin { "True" } else { "False" })},
                        {"displayName": "ConsentContext.OnBehalfOfAll", "oldValue": null, "newValue": format!("\"{}\"", if admin { "True" } else { "False" })},
                        {"displayName": "ConsentAction.Permissions", "oldValue": null,
                         "newValue": format!("\"[] => [[Id: {uid}, ClientId: sp-{}, PrincipalId: {}, ResourceId: 00000003-0000-0000-c000-000000000000, ConsentType: {}, Scope: {scope_str}, CreatedDateTime: , LastModifiedDateTime ]]; \"", app.0, if admin { String::new() } else { format!("00000000-0000-4000-8000-{:012}", u.idx) }, if admin { "AllPrincipals" } else { "Principal" })},
                        {"displayName": "TargetId.ServicePrincipalNames", "oldValue": null, "newValue": format!("\"{}\"", app.0)}]}],
                "additionalDetails": [{"key": "User-Agent", "value": UA}, {"key": "AppId", "value": app.0}]
            })
        };
        self.push(e, raw);
        uid
    }

    fn create_access_key(&mut self, u: &User, min: i64, ip: IpAddr) {
        let uid = self.rng.uuid();
        let t = at(min);
        let mut e = bare_event(
            &uid,
            &u.email,
            0,
            RecordKind::Cloudtrail,
            Activity::CredentialCreate,
        );
        e.time = t;
        e.src.ip = Some(ip);
        e.action = "CreateAccessKey".into();
        e.service = Some("iam.amazonaws.com".into());
        e.account = Some(AWS_ACCOUNT.into());
        let user = format!("user{}", u.idx);
        e.actor.uid = Some(format!("arn:aws:iam::{AWS_ACCOUNT}:user/{user}"));
        let raw = json!({
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::{AWS_ACCOUNT}:user/{user}"), "accountId": AWS_ACCOUNT, "userName": user},
            "eventTime": iso(t), "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
            "awsRegion": "us-east-1", "sourceIPAddress": ip.to_string(), "userAgent": "aws-cli/2.22.0",
            "requestParameters": {"userName": user},
            "responseElements": {"accessKey": {"accessKeyId": format!("AKIA{:016X}", self.rng.next_u64() >> 1), "status": "Active", "userName": user}},
            "eventID": uid, "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true,
            "recipientAccountId": AWS_ACCOUNT, "eventCategory": "Management"
        });
        self.push(e, raw);
    }
}

/// One user's legitimate month: sign-in slots, feasible by construction.
fn legit_slots(rng: &mut Rng, u: &User) -> Vec<Slot> {
    let clouds: Vec<Cloud> = [
        Some(Cloud::Entra),
        u.aws.then_some(Cloud::Aws),
        u.google.then_some(Cloud::Google),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Trips: 15% of users travel once or twice.
    let mut trips: Vec<(i64, i64, usize)> = Vec::new();
    if rng.chance(0.15) {
        let n = rng.range(1, 3);
        let mut day = rng.range(1, 10);
        for _ in 0..n {
            let len = rng.range(2, 6);
            let dest = rng.range(0, CITIES.len() as i64) as usize;
            if dest != u.home {
                trips.push((day, day + len, dest));
            }
            day += len + rng.range(3, 8);
        }
    }
    let tz = (CITIES[u.home].lon / 15.0).round() as i64;
    let mut slots = Vec::new();
    for day in 0..30i64 {
        let city = trips
            .iter()
            .find(|(a, b, _)| day >= *a && day < *b)
            .map_or(u.home, |t| t.2);
        let weekend = day % 7 >= 5;
        let n = if weekend {
            rng.range(0, 2)
        } else {
            rng.range(1, 4)
        };
        for _ in 0..n {
            let local_hour = rng.range(7, 20);
            let min = day * 1440 + (local_hour - tz) * 60 + rng.range(0, 60);
            let src = match rng.range(0, 100) {
                0..=54 => Src::Isp4,
                55..=69 => Src::Isp6,
                70..=79 => Src::Mobile,
                80..=91 => Src::Vpn,
                _ => Src::Private,
            };
            let cloud = clouds[rng.range(0, clouds.len() as i64) as usize];
            slots.push(Slot {
                min,
                city,
                src,
                cloud,
            });
        }
    }
    slots.sort_by_key(|s| s.min);
    // Enforce feasibility between consecutive located sign-ins on raw database distance
    // (no radii subtracted: conservative) at 800 km/h plus 30 minutes on the ground.
    let mut last: Option<(i64, f64, f64)> = None;
    let mut prev_min = i64::MIN;
    for s in &mut slots {
        if s.min <= prev_min {
            s.min = prev_min + rng.range(1, 30);
        }
        if let Some((lat, lon, _, _)) = position(s.city, s.src) {
            if let Some((t, plat, plon)) = last {
                let d = great_circle_km(plat, plon, lat, lon);
                let need = t + (d / 800.0 * 60.0).ceil() as i64 + if d > 1.0 { 30 } else { 0 };
                if s.min < need {
                    s.min = need + rng.range(0, 30);
                }
            }
            last = Some((s.min, lat, lon));
        }
        prev_min = s.min;
    }
    slots
}

impl Month {
    /// Generates a labelled month for `users` users (deterministic for a seed).
    pub fn generate(users: usize, seed: u64) -> Month {
        Month::generate_users(0..users, seed)
    }

    /// [`Month::generate`] for the users numbered `users` only: a large tenant generated in
    /// slices, so that only one slice's raw records are in memory at once.
    pub fn generate_users(users: std::ops::Range<usize>, seed: u64) -> Month {
        let mut cx = Ctx {
            rng: Rng::new(seed),
            month: Month {
                users: users.end,
                ..Month::default()
            },
        };
        let all: Vec<User> = users
            .map(|idx| User {
                idx,
                email: format!("user{idx}@corp.example"),
                home: idx % CITIES.len(),
                aws: idx % 5 < 2,
                google: idx.is_multiple_of(2),
            })
            .collect();
        for u in &all {
            let slots = legit_slots(&mut cx.rng, u);
            let mut located: Vec<(i64, String, f64, f64, f64, &'static str)> = Vec::new();
            for s in &slots {
                let ip = address(s.city, s.src, &mut cx.rng);
                let uid = cx.signin(u, s.cloud, s.min, ip, true, false);
                if let Some((lat, lon, r, cc)) = position(s.city, s.src) {
                    located.push((s.min, uid, lat, lon, r, cc));
                }
            }
            // Attacks on every 25th user.
            if u.idx % 25 == 7 {
                attack(&mut cx, u, &located);
            }
            // Phishing consents (no prior compromise): every 40th user.
            if u.idx % 40 == 3 {
                let min = cx.rng.range(0, 30 * 1440);
                let ip = address(u.home, Src::Isp4, &mut cx.rng);
                let google = u.google && cx.rng.chance(0.5);
                let (app, scopes): ((&str, &str), &[&str]) = if google {
                    (
                        MALICIOUS_APPS[2],
                        &["https://www.googleapis.com/auth/gmail.readonly", "openid"],
                    )
                } else {
                    (
                        MALICIOUS_APPS[1],
                        &["Files.ReadWrite.All", "offline_access", "User.Read"],
                    )
                };
                let uid = cx.consent(u, google, min, ip, app, scopes, false);
                cx.month.truth.risky_consents.insert(uid);
            }
            // Benign consents: allowed apps with broad scopes, other apps with harmless ones.
            if u.idx.is_multiple_of(3) {
                let min = cx.rng.range(0, 30 * 1440);
                let ip = address(u.home, Src::Isp4, &mut cx.rng);
                if u.google && cx.rng.chance(0.3) {
                    cx.consent(
                        u,
                        true,
                        min,
                        ip,
                        ALLOWED_APPS[2],
                        &["https://www.googleapis.com/auth/drive"],
                        false,
                    );
                } else {
                    let app = ALLOWED_APPS[(u.idx / 3) % 2];
                    cx.consent(
                        u,
                        false,
                        min,
                        ip,
                        app,
                        &[
                            "https://graph.microsoft.com/Mail.ReadWrite",
                            "offline_access",
                        ],
                        u.idx.is_multiple_of(99),
                    );
                }
            }
            if u.idx % 5 == 1 {
                let min = cx.rng.range(0, 30 * 1440);
                let ip = address(u.home, Src::Isp6, &mut cx.rng);
                if u.google {
                    cx.consent(
                        u,
                        true,
                        min,
                        ip,
                        ("4455-zoom.apps.googleusercontent.com", "Zoom"),
                        &[
                            "openid",
                            "https://www.googleapis.com/auth/userinfo.email",
                            "https://www.googleapis.com/auth/calendar.readonly",
                        ],
                        false,
                    );
                } else {
                    cx.consent(
                        u,
                        false,
                        min,
                        ip,
                        ("0f3a6a1e-2222-4f00-9000-abcdefabcdef", "Team Calendar"),
                        &[
                            "openid",
                            "profile",
                            "User.Read",
                            "Calendars.Read",
                            "offline_access",
                        ],
                        false,
                    );
                }
            }
            // Developers create access keys now and then (no compromise).
            if u.aws && u.idx.is_multiple_of(17) {
                let min = cx.rng.range(0, 30 * 1440);
                let ip = address(u.home, Src::Vpn, &mut cx.rng);
                cx.create_access_key(u, min, ip);
            }
        }
        // Password sprays from hosting ranges: failed sign-ins only.
        for (campaign, day) in [(0usize, 4i64), (1, 13), (4, 22)] {
            let start = day * 1440 + 120;
            for u in all.iter().step_by(3) {
                let min = start + cx.rng.range(0, 90);
                let ip = host_in(hosting_v4(campaign), &mut cx.rng);
                let cloud = if u.aws && cx.rng.chance(0.2) {
                    Cloud::Aws
                } else {
                    Cloud::Entra
                };
                cx.signin(u, cloud, min, ip, false, false);
            }
        }
        let mut month = cx.month;
        month
            .records
            .sort_by(|a, b| (a.delivered, &a.event.uid).cmp(&(b.delivered, &b.event.uid)));
        month
    }
}

impl Month {
    /// Writes the month as files `picket replay` reads: one JSON Lines file per record shape
    /// (`cloudtrail.jsonl`, `entra-signins.jsonl`, `entra-audits.jsonl`,
    /// `google-reports.jsonl`) in delivery order, the synthetic `GeoLite2-City.mmdb` and
    /// `GeoLite2-ASN.mmdb`, and `truth.json` (labels; the trusted VPN range and allowed apps
    /// to configure).
    pub fn write_files(&self, dir: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(dir)?;
        let names = [
            (RecordKind::Cloudtrail, "cloudtrail.jsonl"),
            (RecordKind::EntraSignin, "entra-signins.jsonl"),
            (RecordKind::EntraAudit, "entra-audits.jsonl"),
            (RecordKind::GoogleReports, "google-reports.jsonl"),
        ];
        for (kind, name) in names {
            let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(name))?);
            for g in self.records.iter().filter(|g| g.event.kind == kind) {
                serde_json::to_writer(&mut out, &g.event.raw)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        let (city, asn) = write_databases().map_err(std::io::Error::other)?;
        std::fs::write(dir.join("GeoLite2-City.mmdb"), city)?;
        std::fs::write(dir.join("GeoLite2-ASN.mmdb"), asn)?;
        let truth = json!({
            "users": self.users,
            "trusted": [VPN_NET],
            "allowed_apps": ALLOWED_APPS.iter().map(|a| a.0).collect::<Vec<_>>(),
            "attacker_signins": self.truth.attacker_signins,
            "travel_pairs": self.truth.travel_pairs,
            "risky_consents": self.truth.risky_consents,
            "takeovers": self.truth.takeovers,
        });
        std::fs::write(
            dir.join("truth.json"),
            serde_json::to_vec_pretty(&truth).map_err(std::io::Error::other)?,
        )
    }
}

/// An attacker sign-in from a hosting range far away between two of the user's located
/// sign-ins, then (mostly) a post-compromise step.
fn attack(cx: &mut Ctx, u: &User, located: &[(i64, String, f64, f64, f64, &'static str)]) {
    if located.len() < 4 {
        return;
    }
    for _ in 0..50 {
        let k = cx.rng.range(1, located.len() as i64 - 1) as usize;
        let a = &located[k];
        let b = located.get(k + 1);
        let min = a.0 + cx.rng.range(20, 50);
        if b.is_some_and(|b| b.0 <= min + 5) {
            continue;
        }
        let h = cx.rng.range(0, ATTACKER_CITIES.len() as i64) as usize;
        let (hc, _, _) = ATTACKER_CITIES[h];
        if hc.cc == a.5 || b.is_some_and(|b| b.5 == hc.cc) {
            continue;
        }
        let speed = |p: &(i64, String, f64, f64, f64, &'static str), gap_min: i64| {
            let d = great_circle_km(p.2, p.3, hc.lat, hc.lon) - p.4 - 20.0;
            d.max(0.0) / (gap_min.max(1) as f64 / 60.0)
        };
        if speed(a, min - a.0) < 1500.0 {
            continue;
        }
        let b_impossible = match b {
            Some(b) => {
                let s = speed(b, b.0 - min);
                if s > 700.0 && s < 1500.0 {
                    continue; // ambiguous: try another placement
                }
                s >= 1500.0
            }
            None => false,
        };
        let clouds: Vec<Cloud> = [
            Some(Cloud::Entra),
            u.aws.then_some(Cloud::Aws),
            u.google.then_some(Cloud::Google),
        ]
        .into_iter()
        .flatten()
        .collect();
        let cloud = clouds[cx.rng.range(0, clouds.len() as i64) as usize];
        let ip = host_in(hosting_v4(h), &mut cx.rng);
        if cx.rng.chance(0.3) {
            cx.signin(u, Cloud::Entra, min - 2, ip, false, true);
        }
        let atk = cx.signin(u, cloud, min, ip, true, false);
        let truth = &mut cx.month.truth;
        truth.attacker_signins.insert(atk.clone());
        truth.travel_pairs.insert((a.1.clone(), atk.clone()));
        if let (Some(b), true) = (b, b_impossible) {
            truth.travel_pairs.insert((atk.clone(), b.1.clone()));
        }
        // Post-compromise steps for 4 of 5 attacked users, within the 6 h window.
        if (u.idx / 25) % 5 != 2 {
            let step = min + cx.rng.range(10, 300);
            if u.google && u.idx.is_multiple_of(2) && cx.rng.chance(0.5) {
                let uid = cx.consent(
                    u,
                    true,
                    step,
                    ip,
                    MALICIOUS_APPS[2],
                    &["https://mail.google.com/"],
                    false,
                );
                cx.month.truth.risky_consents.insert(uid);
            } else {
                let uid = cx.consent(
                    u,
                    false,
                    step,
                    ip,
                    MALICIOUS_APPS[0],
                    &["Mail.Read", "Mail.Send", "offline_access"],
                    false,
                );
                cx.month.truth.risky_consents.insert(uid);
            }
            if u.aws {
                cx.create_access_key(u, step + 7, ip);
            }
            cx.month.truth.takeovers.insert(u.email.clone());
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::account_takeover::AccountTakeoverConfig;
    use crate::detect::first_seen_asn::FirstSeenAsnConfig;
    use crate::detect::impossible_travel::ImpossibleTravelConfig;
    use crate::detect::new_country::NewCountryConfig;
    use crate::detect::oauth_consent::OauthConsentConfig;
    use crate::detect::{DetectContext, Detector};
    use crate::json::JsonValueTrait;
    use crate::model::Finding;
    use crate::state::{MemoryStore, StateStore};

    /// Runs events through detectors the way the pipeline does: every detector sees every
    /// event, then every finding (transitively) goes to every detector's `on_finding`.
    pub(crate) fn run_all(
        detectors: &mut [Box<dyn Detector>],
        events: &[IdentityEvent],
        cx: &DetectContext<'_>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for e in events {
            let mut queue = Vec::new();
            for d in detectors.iter_mut() {
                queue.extend(d.on_event(e, cx).unwrap());
            }
            while let Some(f) = queue.pop() {
                for d in detectors.iter_mut() {
                    queue.extend(d.on_finding(&f, cx).unwrap());
                }
                out.push(f);
            }
        }
        out
    }

    fn detectors() -> Vec<Box<dyn Detector>> {
        vec![
            Box::new(ImpossibleTravelConfig::default().build().unwrap()),
            Box::new(
                OauthConsentConfig {
                    allowed_apps: ALLOWED_APPS.iter().map(|a| a.0.to_string()).collect(),
                    ..OauthConsentConfig::default()
                }
                .build()
                .unwrap(),
            ),
            Box::new(AccountTakeoverConfig::default().build().unwrap()),
            Box::new(NewCountryConfig::default().build().unwrap()),
            Box::new(FirstSeenAsnConfig::default().build().unwrap()),
        ]
    }

    #[test]
    fn labelled_month_precision_and_recall() {
        let month = Month::generate(1000, 42);
        let (events, normalized) = month.events(&enricher(month.users).unwrap());
        eprintln!(
            "labelled month: {} records, {normalized} through normalize/, the rest through the generator's stand-in events",
            events.len()
        );
        // The month has what it promises.
        let count = |p: &dyn Fn(&IdentityEvent) -> bool| events.iter().filter(|e| p(e)).count();
        assert!(count(&|e| e.src.trusted) > 1000);
        assert!(count(&|e| e.src.private) > 1000);
        assert!(count(&|e| matches!(e.src.ip, Some(IpAddr::V6(_)))) > 1000);
        assert!(count(&|e| e.src.geo.as_ref().is_some_and(|g| g.city.is_none())) > 1000);
        assert!(count(&|e| e.status == Status::Failure) > 500);
        assert!(count(&|e| e.kind == RecordKind::Cloudtrail) > 1000);
        assert!(count(&|e| e.kind == RecordKind::GoogleReports) > 1000);
        let out_of_order = month
            .records
            .windows(2)
            .filter(|w| w[1].event.time < w[0].event.time)
            .count();
        assert!(
            out_of_order > 100,
            "delivery must not be in event-time order"
        );

        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: at(0),
        };
        let mut ds = detectors();
        let findings = run_all(&mut ds, &events, &cx);
        let truth = &month.truth;

        // Impossible travel: a finding is right when one side is an attacker sign-in.
        let travel: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.detector == "impossible-travel")
            .collect();
        let tp = travel
            .iter()
            .filter(|f| {
                f.evidence
                    .iter()
                    .any(|e| truth.attacker_signins.contains(&e.uid))
            })
            .count();
        let fp = travel.len() - tp;
        let found: BTreeSet<(String, String)> = travel
            .iter()
            .map(|f| (f.evidence[0].uid.clone(), f.evidence[1].uid.clone()))
            .collect();
        let missed = truth
            .travel_pairs
            .iter()
            .filter(|p| !found.contains(*p))
            .count();
        let recall_hits = truth.travel_pairs.len() - missed;
        eprintln!(
            "impossible-travel: {} findings, TP {tp}, FP {fp}, expected pairs {}, found {recall_hits}, FN {missed}",
            travel.len(),
            truth.travel_pairs.len()
        );

        // Risky consent.
        let consents: BTreeSet<String> = findings
            .iter()
            .filter(|f| f.detector == "oauth-consent")
            .map(|f| f.evidence[0].uid.clone())
            .collect();
        let ctp = consents.intersection(&truth.risky_consents).count();
        let cfp = consents.len() - ctp;
        let cfn = truth.risky_consents.len() - ctp;
        let total_consents = count(&|e| e.activity == Activity::ConsentGrant);
        eprintln!(
            "oauth-consent: {} consents, {} findings, TP {ctp}, FP {cfp}, FN {cfn}, TN {}",
            total_consents,
            consents.len(),
            total_consents - ctp - cfp - cfn
        );

        let takeovers: BTreeSet<String> = findings
            .iter()
            .filter(|f| f.detector == "account-takeover")
            .filter_map(|f| f.identity.clone())
            .collect();
        let ato = findings
            .iter()
            .filter(|f| f.detector == "account-takeover" && !f.data.contains_key("incident"))
            .count();
        eprintln!(
            "account-takeover: {ato} findings for {} identities, expected {}",
            takeovers.len(),
            truth.takeovers.len()
        );
        let context = |id: &str| findings.iter().filter(|f| f.detector == id).count();
        eprintln!(
            "context: new-country {}, first-seen-asn {}; {} events, {} users",
            context("new-country"),
            context("first-seen-asn"),
            events.len(),
            month.users
        );

        assert!(
            truth.travel_pairs.len() >= 40,
            "{}",
            truth.travel_pairs.len()
        );
        assert_eq!(fp, 0, "impossible-travel precision must be 1.0");
        assert_eq!(missed, 0, "impossible-travel recall must be 1.0");
        assert_eq!(found, truth.travel_pairs, "exactly the labelled pairs");
        assert!(truth.risky_consents.len() >= 40);
        assert_eq!(cfp, 0, "oauth-consent precision must be 1.0");
        assert_eq!(cfn, 0, "oauth-consent recall must be 1.0");
        assert_eq!(
            takeovers, truth.takeovers,
            "one incident per compromised identity"
        );
        assert_eq!(ato, truth.takeovers.len());
    }

    /// State bytes per identity after a busy few days: 8 sign-ins (3 clouds, 3 cities, IPv4 and
    /// IPv6, 3 networks) and one consent each, through all five identity detectors.
    fn state_bytes_per_identity(identities: usize) -> (f64, Vec<(&'static str, usize)>) {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: at(0),
        };
        let mut ds = detectors();
        let mut rng = Rng::new(5);
        let kinds = [
            RecordKind::EntraSignin,
            RecordKind::Cloudtrail,
            RecordKind::GoogleReports,
        ];
        for i in 0..identities {
            let key = format!("user{i}@corp.example");
            let home = i % CITIES.len();
            let away = (i + 3) % CITIES.len();
            let mut events = Vec::new();
            for n in 0..8i64 {
                let city = if n == 4 || n == 5 { away } else { home };
                let c = CITIES[city];
                let min = n * 9 * 60 + (n / 4) * 1440 + if n >= 6 { 1440 } else { 0 };
                let mut e = signin_event(
                    &rng.uuid(),
                    &key,
                    min,
                    c.cc,
                    c.lat,
                    c.lon,
                    3000 + (n % 3) as u32,
                );
                e.kind = kinds[(n % 3) as usize];
                e.src.ip = Some(if n % 2 == 0 {
                    host_in(city_v4(city), &mut rng)
                } else {
                    host_in(city_v6(city), &mut rng)
                });
                e.src.user_agent = Some(UA.to_string());
                e.actor.uid = Some(format!("00000000-0000-4000-8000-{i:012}"));
                events.push(e);
            }
            let mut consent = bare_event(
                &rng.uuid(),
                &key,
                100,
                RecordKind::EntraAudit,
                Activity::ConsentGrant,
            );
            consent.oauth = Some(OAuthGrant {
                app_id: Some(ALLOWED_APPS[0].0.to_string()),
                scopes: vec!["Mail.Read".into()],
                ..OAuthGrant::default()
            });
            events.push(consent);
            run_all(&mut ds, &events, &cx);
        }
        let mut per_ns = Vec::new();
        let mut total = 0usize;
        for ns in [
            "impossible-travel",
            "oauth-consent-app",
            "oauth-consent-risk",
            "account-takeover",
            "new-country",
            "first-seen-asn",
        ] {
            let bytes: usize = store
                .list(ns, "", usize::MAX, at(0))
                .unwrap()
                .iter()
                .map(|(k, v)| k.len() + v.value.len())
                .sum();
            per_ns.push((ns, bytes));
            total += bytes;
        }
        (total as f64 / identities as f64, per_ns)
    }

    #[test]
    fn state_stays_compact() {
        let (per_identity, per_ns) = state_bytes_per_identity(1_000);
        eprintln!("state: {per_identity:.0} bytes per identity at 1,000 identities: {per_ns:?}");
        assert!(per_identity < 4_096.0, "{per_identity} bytes per identity");
    }

    /// `cargo test --no-default-features --lib -- --ignored state_at_100k --nocapture`
    #[test]
    #[ignore = "slow in debug builds; run by hand for the state-size figure"]
    fn state_at_100k_identities() {
        let (per_identity, per_ns) = state_bytes_per_identity(100_000);
        eprintln!("state: {per_identity:.0} bytes per identity at 100,000 identities: {per_ns:?}");
        assert!(per_identity < 4_096.0);
    }

    /// Once the normalizers handle a shape, their event must agree with the generator's
    /// stand-in on everything the detectors read (shapes not handled yet are skipped and
    /// counted).
    #[test]
    fn normalizers_agree_with_the_stand_in_events() {
        let month = Month::generate(200, 42);
        let identities = enricher(month.users).unwrap().identities;
        let (mut compared, mut disagree) = (0, Vec::new());
        for g in &month.records {
            assert_eq!(
                crate::normalize::detect_kind(&g.event.raw),
                Some(g.event.kind)
            );
            let Ok(mut v) = crate::normalize::normalize(g.event.kind, g.event.raw.clone()) else {
                continue;
            };
            compared += 1;
            assert_eq!(v.len(), 1);
            let n = v.remove(0);
            let e = &g.event;
            let key = identities.resolve_key(&n.actor);
            let grant = |o: &Option<OAuthGrant>| {
                o.as_ref().map(|o| {
                    (
                        o.app_id.clone(),
                        o.scopes.clone(),
                        o.admin_consent,
                        o.all_principals,
                    )
                })
            };
            let same = n.uid == e.uid
                && n.time == e.time
                && key == e.actor.key
                && n.activity == e.activity
                && n.status == e.status
                && n.is_interactive_signin_success() == e.is_interactive_signin_success()
                && n.src.ip == e.src.ip
                && n.auth.mfa_failed == e.auth.mfa_failed
                && grant(&n.oauth) == grant(&e.oauth);
            if !same {
                disagree.push(e.uid.clone());
            }
        }
        eprintln!(
            "normalizers compared on {compared} of {} records",
            month.records.len()
        );
        assert!(
            disagree.is_empty(),
            "{} disagree: {:?}",
            disagree.len(),
            &disagree[..disagree.len().min(5)]
        );
    }

    #[test]
    fn month_files_round_trip() {
        let month = Month::generate(40, 3);
        let dir = tempfile::tempdir().unwrap();
        month.write_files(dir.path()).unwrap();
        let lines = |name: &str| {
            std::fs::read_to_string(dir.path().join(name))
                .unwrap()
                .lines()
                .filter(|l| crate::json::parse(l.as_bytes()).is_ok_and(|v| v.is_object()))
                .count()
        };
        let total = lines("cloudtrail.jsonl")
            + lines("entra-signins.jsonl")
            + lines("entra-audits.jsonl")
            + lines("google-reports.jsonl");
        assert_eq!(total, month.records.len());
        let city = std::fs::read(dir.path().join("GeoLite2-City.mmdb")).unwrap();
        maxminddb::Reader::from_source(city)
            .unwrap()
            .verify()
            .unwrap();
    }

    /// Writes the 1,000-user month to `target/labelled-month/` for `picket replay`.
    #[test]
    #[ignore = "writes files for manual replay"]
    fn write_labelled_month() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/labelled-month");
        Month::generate(1000, 42).write_files(&dir).unwrap();
    }

    #[test]
    fn generation_is_deterministic_and_raw_records_look_right() {
        let a = Month::generate(30, 7);
        let b = Month::generate(30, 7);
        assert_eq!(a.records.len(), b.records.len());
        assert!(
            a.records
                .iter()
                .zip(&b.records)
                .all(|(x, y)| x.event == y.event && x.event.raw == y.event.raw)
        );
        let ct = a
            .records
            .iter()
            .find(|g| g.event.kind == RecordKind::Cloudtrail)
            .unwrap();
        assert_eq!(ct.event.raw["eventName"], "ConsoleLogin");
        assert_eq!(ct.event.raw["eventID"], ct.event.uid.as_str());
        let g = a
            .records
            .iter()
            .find(|g| g.event.kind == RecordKind::EntraSignin)
            .unwrap();
        assert_eq!(g.event.raw["id"], g.event.uid.as_str());
        assert!(g.event.raw["status"]["errorCode"].is_number());
    }
}
