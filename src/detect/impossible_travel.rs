//! Impossible travel (`impossible-travel`): two successful interactive sign-ins of one
//! identity — across clouds, since the actor key is alias-mapped — whose great-circle distance
//! less both accuracy radii, over the event-time gap between them, exceeds `max_speed_kmh`.
//!
//! Each eligible sign-in is inserted into a bounded per-identity history (sorted by event
//! time, keyed by event uid) and compared with its previous and next neighbour there, so a
//! sign-in delivered hours late is still compared with its true neighbours, and the same event
//! processed twice finds itself already present and reports nothing.
//!
//! Not eligible: failures, API calls, non-interactive sign-ins, trusted or private addresses
//! and unlocated addresses. A country-level location (no city, or a radius of at least
//! `coarse_radius_km`) never pairs with a location in its own country.
//!
//! To add a severity signal: compute it in `ImpossibleTravel::severity` from the two history
//! entries and the history, and name it in the finding's `severity_reasons`.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::codec::{Reader, Stored, Writer, is_json, json_decode, read_whole};
use super::history::{DetectorConfigError, SeenProfile, great_circle_km};
use super::profile::Profiles;
use super::{DetectContext, DetectError, Detector};
use crate::model::{
    Activity, Actor, Asn, Attack, Evidence, Finding, GeoLocation, IdentityEvent, PrincipalType,
    Provider, Severity,
};

/// Detector id.
pub const ID: &str = "impossible-travel";
/// User agents are kept in history up to this many characters.
const MAX_USER_AGENT: usize = 160;
/// MFA failure times kept per identity.
const MAX_MFA_FAILURES: usize = 8;

/// Autonomous systems of hosting / datacenter / VPN providers: a sign-in from one of them is
/// more likely an attacker's proxy than a traveller.
pub const DEFAULT_HOSTING_ASNS: &[u32] = &[
    16509, 14618, 8987, // Amazon / AWS
    396982, 19527, // Google Cloud
    8075,  // Microsoft / Azure
    14061, // DigitalOcean
    16276, // OVH
    24940, // Hetzner
    63949, // Linode / Akamai Connected Cloud
    20473, // Vultr / Choopa
    9009,  // M247
    60781, 28753,  // Leaseweb
    51167,  // Contabo
    12876,  // Scaleway
    45102,  // Alibaba Cloud
    132203, // Tencent Cloud
    31898,  // Oracle Cloud
    53667,  // FranTech / BuyVM
    62240,  // Clouvider
    212238, // Datacamp / CDN77
];

/// Words in an ASN organisation name that mark a hosting provider (whole words, any case).
pub const DEFAULT_HOSTING_KEYWORDS: &[&str] = &[
    "amazon",
    "aws",
    "google cloud",
    "azure",
    "digitalocean",
    "ovh",
    "hetzner",
    "linode",
    "akamai connected cloud",
    "vultr",
    "choopa",
    "m247",
    "leaseweb",
    "contabo",
    "scaleway",
    "alibaba",
    "tencent cloud",
    "oracle cloud",
    "hosting",
    "datacenter",
    "data center",
    "vps",
];

/// `[detect.impossible_travel]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImpossibleTravelConfig {
    /// Fastest plausible travel speed (km/h); above it a pair of sign-ins is impossible.
    /// 1000 is a fast airliner with no time on the ground.
    pub max_speed_kmh: f64,
    /// A location whose accuracy radius is at least this (km), or that has no city, is
    /// country-level and never pairs with a location in its own country.
    pub coarse_radius_km: f64,
    /// Most sign-ins kept per identity (oldest dropped first).
    pub history_max: usize,
    /// Sign-ins older than this (hours, event time) behind the identity's newest one are
    /// dropped; this bounds how late an event may arrive and still meet its neighbours.
    pub history_retention_hours: u64,
    /// How long an idle identity's state stays in the store (days, wall clock). The
    /// per-identity detectors share one row per identity, kept as long as the longest of
    /// their settings asks.
    pub state_ttl_days: u64,
    /// Identities kept in the in-process state cache (shared by the per-identity detectors,
    /// sized by the largest of their settings).
    pub cache_identities: usize,
    /// Countries remembered per identity for the "new country" severity signal.
    pub max_countries: usize,
    /// A failed MFA of the identity this long (minutes) before the pair raises severity.
    pub mfa_failure_window_minutes: u64,
    /// Hosting / datacenter ASNs; a side from one raises severity. Replaces the default list.
    pub hosting_asns: Vec<u32>,
    /// Organisation-name keywords of hosting providers (whole words, any case). Replaces the
    /// default list.
    pub hosting_org_keywords: Vec<String>,
}

impl Default for ImpossibleTravelConfig {
    fn default() -> Self {
        ImpossibleTravelConfig {
            max_speed_kmh: 1000.0,
            coarse_radius_km: 500.0,
            history_max: 32,
            history_retention_hours: 72,
            state_ttl_days: 30,
            cache_identities: 100_000,
            max_countries: 32,
            mfa_failure_window_minutes: 60,
            hosting_asns: DEFAULT_HOSTING_ASNS.to_vec(),
            hosting_org_keywords: DEFAULT_HOSTING_KEYWORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl ImpossibleTravelConfig {
    /// Validates the settings and builds the detector, with a profiles cache of its own.
    pub fn build(&self) -> Result<ImpossibleTravel, DetectorConfigError> {
        self.build_with(&Profiles::default())
    }

    /// [`ImpossibleTravelConfig::build`] keeping state in `profiles`, which the other
    /// per-identity detectors share.
    pub fn build_with(&self, profiles: &Profiles) -> Result<ImpossibleTravel, DetectorConfigError> {
        let err = |key: &str, message: &str| DetectorConfigError {
            detector: ID,
            key: key.to_string(),
            message: message.to_string(),
        };
        if !(self.max_speed_kmh.is_finite() && self.max_speed_kmh > 0.0) {
            return Err(err("max_speed_kmh", "must be a positive number"));
        }
        if !(self.coarse_radius_km.is_finite() && self.coarse_radius_km >= 0.0) {
            return Err(err("coarse_radius_km", "must be zero or more"));
        }
        if self.history_max < 2 {
            return Err(err("history_max", "must be at least 2"));
        }
        if self.history_retention_hours == 0 {
            return Err(err("history_retention_hours", "must be at least 1"));
        }
        Ok(ImpossibleTravel {
            hosting: HostingNetworks::new(&self.hosting_asns, &self.hosting_org_keywords),
            state: {
                profiles.widen(
                    self.cache_identities,
                    Duration::days(self.state_ttl_days.max(1) as i64),
                );
                profiles.clone()
            },
            config: self.clone(),
        })
    }
}

/// Recognises hosting / datacenter networks by ASN or organisation keyword.
#[derive(Debug, Clone, Default)]
pub struct HostingNetworks {
    asns: HashSet<u32>,
    keywords: Vec<String>,
}

fn words(s: &str) -> String {
    let mut out = String::from(" ");
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

impl HostingNetworks {
    /// From ASNs and organisation keywords.
    pub fn new(asns: &[u32], keywords: &[String]) -> Self {
        HostingNetworks {
            asns: asns.iter().copied().collect(),
            keywords: keywords
                .iter()
                .map(|k| words(k))
                .filter(|k| k.trim() != "")
                .collect(),
        }
    }

    /// Whether the network is a hosting provider's.
    pub fn matches(&self, asn: Option<u32>, org: Option<&str>) -> bool {
        if asn.is_some_and(|n| self.asns.contains(&n)) {
            return true;
        }
        let Some(org) = org else { return false };
        let org = words(org);
        self.keywords.iter().any(|k| org.contains(k.as_str()))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The text fields of a [`SignIn`], in the order they sit in its one string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Uid,
    Action,
    Ip,
    UserAgent,
    Country,
    City,
    AsnOrg,
    Principal,
}

const TEXTS: usize = 8;

/// One eligible sign-in as kept in history: the numbers that comparing sign-ins reads inline,
/// and every text (id, action, address, user agent, place, network, principal) in one
/// string, so that keeping a sign-in costs one allocation instead of eight and a history is a
/// few compact, contiguous entries (the detector touches one per event; memory, not
/// arithmetic, was most of its time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "JsonSignIn", into = "JsonSignIn")]
struct SignIn {
    /// Event time, unix milliseconds.
    time_ms: i64,
    lat: f64,
    lon: f64,
    radius_km: Option<f64>,
    asn: Option<u32>,
    provider: Provider,
    mfa_failed: bool,
    /// Bit `1 << Text as u8`: that text is present (uid and action always are).
    present: u8,
    /// End of each text in `text` (its start is the end of the one before).
    ends: [u32; TEXTS],
    text: Box<str>,
}

/// Builds a [`SignIn`]'s string, one text after the other.
struct TextBuilder {
    text: String,
    present: u8,
    ends: [u32; TEXTS],
    next: usize,
}

impl TextBuilder {
    fn new(capacity: usize) -> TextBuilder {
        TextBuilder {
            text: String::with_capacity(capacity),
            present: 0,
            ends: [0; TEXTS],
            next: 0,
        }
    }

    /// Appends the next text with `write` (nothing written: absent unless `present`).
    fn push(&mut self, present: bool, write: impl FnOnce(&mut String)) {
        if present {
            write(&mut self.text);
            self.present |= 1 << self.next;
        }
        // Texts are cut far below 4 GiB (records are), so the offset fits.
        self.ends[self.next] = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        self.next += 1;
    }

    fn str(&mut self, s: Option<&str>) {
        self.push(s.is_some(), |t| t.push_str(s.unwrap_or_default()));
    }
}

/// What a sign-in is built from besides its texts.
struct Numbers {
    time_ms: i64,
    lat: f64,
    lon: f64,
    radius_km: Option<f64>,
    asn: Option<u32>,
    provider: Provider,
    mfa_failed: bool,
}

impl SignIn {
    fn of(event: &IdentityEvent, geo: &GeoLocation) -> SignIn {
        let ua = event.src.user_agent.as_deref().map(|ua| {
            // No more bytes than the limit in characters: nothing to cut (most agents).
            if ua.len() <= MAX_USER_AGENT {
                return ua;
            }
            match ua.char_indices().nth(MAX_USER_AGENT) {
                Some((end, _)) => &ua[..end],
                None => ua,
            }
        });
        let asn = event.src.asn.as_ref();
        let len = |s: Option<&str>| s.map_or(0, str::len);
        let mut b = TextBuilder::new(
            event.uid.len()
                + event.action.len()
                + 39 // the longest IPv6 address
                + len(event.src.raw.as_deref())
                + len(ua)
                + len(geo.country.as_deref())
                + len(geo.city.as_deref())
                + len(asn.and_then(|a| a.org.as_deref()))
                + len(event.actor.uid.as_deref()),
        );
        b.str(Some(&event.uid));
        b.str(Some(&event.action));
        match event.src.ip {
            Some(ip) => b.push(true, |t| {
                use std::fmt::Write;
                let _ = write!(t, "{ip}");
            }),
            None => b.str(event.src.raw.as_deref()),
        }
        b.str(ua);
        b.str(geo.country.as_deref());
        b.str(geo.city.as_deref());
        b.str(asn.and_then(|a| a.org.as_deref()));
        b.str(event.actor.uid.as_deref());
        SignIn::build(
            Numbers {
                time_ms: event.time.timestamp_millis(),
                lat: geo.lat,
                lon: geo.lon,
                radius_km: geo.radius_km,
                asn: asn.map(|a| a.number),
                provider: event.provider(),
                mfa_failed: event.auth.mfa_failed,
            },
            b,
        )
    }

    fn build(n: Numbers, b: TextBuilder) -> SignIn {
        SignIn {
            time_ms: n.time_ms,
            lat: n.lat,
            lon: n.lon,
            radius_km: n.radius_km,
            asn: n.asn,
            provider: n.provider,
            mfa_failed: n.mfa_failed,
            present: b.present,
            ends: b.ends,
            text: b.text.into_boxed_str(),
        }
    }

    /// From its numbers and texts (in [`Text`] order).
    fn from_parts(n: Numbers, texts: [Option<&str>; TEXTS]) -> SignIn {
        let mut b = TextBuilder::new(texts.iter().map(|t| t.map_or(0, str::len)).sum());
        for t in texts {
            b.str(t);
        }
        SignIn::build(n, b)
    }

    fn get(&self, t: Text) -> Option<&str> {
        let i = t as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }

    #[cfg(test)]
    fn texts(&self) -> [Option<&str>; TEXTS] {
        use Text::*;
        [Uid, Action, Ip, UserAgent, Country, City, AsnOrg, Principal].map(|t| self.get(t))
    }

    #[cfg(test)]
    fn numbers(&self) -> Numbers {
        Numbers {
            time_ms: self.time_ms,
            lat: self.lat,
            lon: self.lon,
            radius_km: self.radius_km,
            asn: self.asn,
            provider: self.provider,
            mfa_failed: self.mfa_failed,
        }
    }

    /// The same sign-in with one text replaced (tests).
    #[cfg(test)]
    fn with(&self, t: Text, value: Option<&str>) -> SignIn {
        let mut texts = self.texts();
        texts[t as usize] = value;
        SignIn::from_parts(self.numbers(), texts)
    }

    fn uid(&self) -> &str {
        self.get(Text::Uid).unwrap_or_default()
    }

    fn action(&self) -> &str {
        self.get(Text::Action).unwrap_or_default()
    }

    fn ip(&self) -> Option<&str> {
        self.get(Text::Ip)
    }

    fn user_agent(&self) -> Option<&str> {
        self.get(Text::UserAgent)
    }

    fn country(&self) -> Option<&str> {
        self.get(Text::Country)
    }

    fn city(&self) -> Option<&str> {
        self.get(Text::City)
    }

    fn has_city(&self) -> bool {
        self.present & (1 << Text::City as u8) != 0
    }

    fn asn_org(&self) -> Option<&str> {
        self.get(Text::AsnOrg)
    }

    fn principal(&self) -> Option<&str> {
        self.get(Text::Principal)
    }

    fn time(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(self.time_ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    fn geo(&self) -> GeoLocation {
        GeoLocation {
            city: self.city().map(str::to_string),
            country: self.country().map(str::to_string),
            lat: self.lat,
            lon: self.lon,
            radius_km: self.radius_km,
        }
    }

    fn evidence(&self) -> Evidence {
        Evidence {
            uid: self.uid().to_string(),
            time: self.time(),
            provider: self.provider,
            action: self.action().to_string(),
            success: true,
            src_ip: self.ip().map(str::to_string),
            user_agent: self.user_agent().map(str::to_string),
            geo: Some(self.geo()),
            asn: self.asn.map(|number| Asn {
                number,
                org: self.asn_org().map(str::to_string),
            }),
        }
    }

    fn place(&self) -> String {
        match (self.city(), self.country()) {
            (Some(city), Some(cc)) => format!("{city}, {cc}"),
            (None, Some(cc)) => cc.to_string(),
            (Some(city), None) => city.to_string(),
            (None, None) => format!("{:.2},{:.2}", self.lat, self.lon),
        }
    }

    fn location_json(&self) -> Value {
        json!({
            "uid": self.uid(),
            "time": self.time(),
            "provider": self.provider,
            "ip": self.ip(),
            "city": self.city(),
            "country": self.country(),
            "lat": self.lat,
            "lon": self.lon,
            "radius_km": self.radius_km,
            "asn": self.asn,
            "asn_org": self.asn_org(),
        })
    }
}

/// A sign-in as older pickets stored it in JSON (short field names), still read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JsonSignIn {
    #[serde(rename = "u")]
    uid: String,
    #[serde(rename = "t")]
    time_ms: i64,
    #[serde(rename = "p")]
    provider: Provider,
    #[serde(rename = "a")]
    action: String,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(rename = "y")]
    lat: f64,
    #[serde(rename = "x")]
    lon: f64,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    radius_km: Option<f64>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    asn_org: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "is_false")]
    mfa_failed: bool,
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
}

impl From<JsonSignIn> for SignIn {
    fn from(j: JsonSignIn) -> SignIn {
        SignIn::from_parts(
            Numbers {
                time_ms: j.time_ms,
                lat: j.lat,
                lon: j.lon,
                radius_km: j.radius_km,
                asn: j.asn,
                provider: j.provider,
                mfa_failed: j.mfa_failed,
            },
            [
                Some(j.uid.as_str()),
                Some(j.action.as_str()),
                j.ip.as_deref(),
                j.user_agent.as_deref(),
                j.country.as_deref(),
                j.city.as_deref(),
                j.asn_org.as_deref(),
                j.principal.as_deref(),
            ],
        )
    }
}

impl From<SignIn> for JsonSignIn {
    fn from(s: SignIn) -> JsonSignIn {
        let own = |t: Option<&str>| t.map(str::to_string);
        JsonSignIn {
            uid: s.uid().to_string(),
            time_ms: s.time_ms,
            provider: s.provider,
            action: s.action().to_string(),
            ip: own(s.ip()),
            user_agent: own(s.user_agent()),
            lat: s.lat,
            lon: s.lon,
            radius_km: s.radius_km,
            country: own(s.country()),
            city: own(s.city()),
            asn: s.asn,
            asn_org: own(s.asn_org()),
            mfa_failed: s.mfa_failed,
            principal: own(s.principal()),
        }
    }
}
/// Per-identity travel history (part of the identity's [`IdentityProfile`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TravelHistory {
    /// Eligible sign-ins sorted by (time, uid).
    #[serde(rename = "e", default)]
    entries: Vec<SignIn>,
    /// Countries the identity signed in from (event time), for the new-country signal.
    #[serde(rename = "c", default)]
    countries: SeenProfile,
    /// Times (unix ms) of recent failed MFA attempts.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    mfa_failures: Vec<i64>,
}

/// Format byte of a stored [`TravelHistory`].
const HISTORY_FORMAT: u8 = 0xB2;

// Flags of one stored sign-in.
const F_SAME_PLACE: u64 = 1;
const F_RADIUS: u64 = 2;
const F_ASN: u64 = 4;
const F_MFA_FAILED: u64 = 8;
const F_UUID: u64 = 16;

fn provider_code(p: Provider) -> u64 {
    match p {
        Provider::Aws => 0,
        Provider::Entra => 1,
        Provider::GoogleWorkspace => 2,
        Provider::Gcp => 3,
        Provider::Microsoft365 => 4,
        Provider::Okta => 5,
    }
}

fn provider_of(code: u64) -> Result<Provider, String> {
    Ok(match code {
        0 => Provider::Aws,
        1 => Provider::Entra,
        2 => Provider::GoogleWorkspace,
        3 => Provider::Gcp,
        4 => Provider::Microsoft365,
        5 => Provider::Okta,
        n => return Err(format!("unknown provider code {n}")),
    })
}

/// The 16 bytes of a lowercase hyphenated UUID (most event ids), to store it in 16 bytes.
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-').map(|&c| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    });
    for o in &mut out {
        *o = (digits.next()?? << 4) | digits.next()??;
    }
    Some(out)
}

fn uuid_string(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(byte >> 4)] as char);
        s.push(HEX[usize::from(byte & 15)] as char);
    }
    s
}

impl Stored for TravelHistory {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), String> {
        self.write(&mut Writer::new(out, HISTORY_FORMAT));
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if is_json(bytes) {
            return json_decode(bytes);
        }
        read_whole(bytes, HISTORY_FORMAT, TravelHistory::read)
    }
}

impl TravelHistory {
    /// Appends the history's fields (also inside an [`IdentityProfile`]).
    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.entries.len() as u64);
        let mut prev: Option<&SignIn> = None;
        for e in &self.entries {
            let same_place = prev.is_some_and(|p| {
                p.lat.to_bits() == e.lat.to_bits()
                    && p.lon.to_bits() == e.lon.to_bits()
                    && p.radius_km.map(f64::to_bits) == e.radius_km.map(f64::to_bits)
            });
            let uuid = uuid_bytes(e.uid());
            let mut flags = 0;
            for (on, flag) in [
                (same_place, F_SAME_PLACE),
                (e.radius_km.is_some(), F_RADIUS),
                (e.asn.is_some(), F_ASN),
                (e.mfa_failed, F_MFA_FAILED),
                (uuid.is_some(), F_UUID),
            ] {
                if on {
                    flags |= flag;
                }
            }
            w.u64(flags);
            match &uuid {
                Some(b) => w.raw(b),
                None => w.str(e.uid()),
            }
            w.i64(e.time_ms - prev.map_or(0, |p| p.time_ms));
            w.u64(provider_code(e.provider));
            let p = |f: fn(&SignIn) -> Option<&str>| prev.and_then(f);
            w.repeat_str(Some(e.action()), p(|s| Some(s.action())));
            w.repeat_str(e.ip(), p(SignIn::ip));
            w.repeat_str(e.user_agent(), p(SignIn::user_agent));
            if !same_place {
                w.f64(e.lat);
                w.f64(e.lon);
                if let Some(r) = e.radius_km {
                    w.f64(r);
                }
            }
            w.repeat_str(e.country(), p(SignIn::country));
            w.repeat_str(e.city(), p(SignIn::city));
            if let Some(asn) = e.asn {
                w.u64(u64::from(asn));
            }
            w.repeat_str(e.asn_org(), p(SignIn::asn_org));
            w.repeat_str(e.principal(), p(SignIn::principal));
            prev = Some(e);
        }
        self.countries.write(w);
        w.u64(self.mfa_failures.len() as u64);
        let mut last = 0;
        for &t in &self.mfa_failures {
            w.i64(t - last);
            last = t;
        }
    }

    /// Reads what [`TravelHistory::write`] wrote.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<TravelHistory, String> {
        let n = r.count()?;
        let mut entries: Vec<SignIn> = Vec::with_capacity(n);
        for _ in 0..n {
            let flags = r.u64()?;
            let prev = entries.last();
            let uid = if flags & F_UUID != 0 {
                uuid_string(&r.raw::<16>()?)
            } else {
                r.str()?
            };
            let time_ms = r.i64()?.wrapping_add(prev.map_or(0, |p| p.time_ms));
            let provider = provider_of(r.u64()?)?;
            let action = r
                .repeat_str(prev.map(SignIn::action))?
                .ok_or("sign-in without an action")?;
            let ip = r.repeat_str(prev.and_then(SignIn::ip))?;
            let user_agent = r.repeat_str(prev.and_then(SignIn::user_agent))?;
            let (lat, lon, radius_km) = if flags & F_SAME_PLACE != 0 {
                let p = prev.ok_or("first sign-in repeats a place")?;
                (p.lat, p.lon, p.radius_km)
            } else {
                let lat = r.f64()?;
                let lon = r.f64()?;
                let radius = if flags & F_RADIUS != 0 {
                    Some(r.f64()?)
                } else {
                    None
                };
                (lat, lon, radius)
            };
            let country = r.repeat_str(prev.and_then(SignIn::country))?;
            let city = r.repeat_str(prev.and_then(SignIn::city))?;
            let asn = if flags & F_ASN != 0 {
                Some(u32::try_from(r.u64()?).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let asn_org = r.repeat_str(prev.and_then(SignIn::asn_org))?;
            let principal = r.repeat_str(prev.and_then(SignIn::principal))?;
            let sign_in = SignIn::from_parts(
                Numbers {
                    time_ms,
                    lat,
                    lon,
                    radius_km,
                    asn,
                    provider,
                    mfa_failed: flags & F_MFA_FAILED != 0,
                },
                [
                    Some(uid.as_str()),
                    Some(action.as_str()),
                    ip.as_deref(),
                    user_agent.as_deref(),
                    country.as_deref(),
                    city.as_deref(),
                    asn_org.as_deref(),
                    principal.as_deref(),
                ],
            );
            entries.push(sign_in);
        }
        let countries = SeenProfile::read(r)?;
        let m = r.count()?;
        let mut mfa_failures = Vec::with_capacity(m);
        let mut last = 0i64;
        for _ in 0..m {
            last = last.wrapping_add(r.i64()?);
            mfa_failures.push(last);
        }
        Ok(TravelHistory {
            entries,
            countries,
            mfa_failures,
        })
    }
}

/// The geometry of one compared pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// Great-circle distance between the two locations (km).
    pub distance_km: f64,
    /// Distance less both accuracy radii, floored at zero (km).
    pub adjusted_km: f64,
    /// Event-time gap (seconds).
    pub gap_seconds: f64,
    /// Required speed (km/h); `None` when the gap is zero.
    pub speed_kmh: Option<f64>,
}

/// What [`assess`] reads of a location, borrowed.
#[derive(Debug, Clone, Copy)]
struct Place<'a> {
    has_city: bool,
    country: Option<&'a str>,
    lat: f64,
    lon: f64,
    radius_km: Option<f64>,
}

impl<'a> Place<'a> {
    fn of(g: &'a GeoLocation) -> Place<'a> {
        Place {
            has_city: g.city.is_some(),
            country: g.country.as_deref(),
            lat: g.lat,
            lon: g.lon,
            radius_km: g.radius_km,
        }
    }

    fn of_signin(s: &'a SignIn) -> Place<'a> {
        Place {
            has_city: s.has_city(),
            country: s.country(),
            lat: s.lat,
            lon: s.lon,
            radius_km: s.radius_km,
        }
    }
}

/// Compares two located sign-ins. `Some` when travelling between them is impossible.
pub fn assess(
    a: (&GeoLocation, DateTime<Utc>),
    b: (&GeoLocation, DateTime<Utc>),
    max_speed_kmh: f64,
    coarse_radius_km: f64,
) -> Option<Assessment> {
    assess_places(
        Place::of(a.0),
        Place::of(b.0),
        (b.1 - a.1).num_milliseconds(),
        max_speed_kmh,
        coarse_radius_km,
    )
}

/// [`assess`] of two places `gap_ms` apart (either sign).
fn assess_places(
    ga: Place<'_>,
    gb: Place<'_>,
    gap_ms: i64,
    max_speed_kmh: f64,
    coarse_radius_km: f64,
) -> Option<Assessment> {
    let coarse = |g: &Place<'_>| !g.has_city || g.radius_km.unwrap_or(0.0) >= coarse_radius_km;
    let same_country = match (ga.country, gb.country) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    if (coarse(&ga) || coarse(&gb)) && same_country {
        return None;
    }
    let distance_km = great_circle_km(ga.lat, ga.lon, gb.lat, gb.lon);
    let radii = ga.radius_km.unwrap_or(0.0).max(0.0) + gb.radius_km.unwrap_or(0.0).max(0.0);
    let adjusted_km = (distance_km - radii).max(0.0);
    if adjusted_km.is_nan() || adjusted_km <= 0.0 {
        return None;
    }
    let gap_seconds = (gap_ms.unsigned_abs() as f64) / 1000.0;
    if gap_seconds == 0.0 {
        return Some(Assessment {
            distance_km,
            adjusted_km,
            gap_seconds,
            speed_kmh: None,
        });
    }
    let speed = adjusted_km / (gap_seconds / 3600.0);
    (speed > max_speed_kmh).then_some(Assessment {
        distance_km,
        adjusted_km,
        gap_seconds,
        speed_kmh: Some(speed),
    })
}

/// The impossible-travel detector.
pub struct ImpossibleTravel {
    config: ImpossibleTravelConfig,
    hosting: HostingNetworks,
    state: Profiles,
}

fn eligible_geo(event: &IdentityEvent) -> Option<&GeoLocation> {
    if !event.is_interactive_signin_success()
        || event.src.trusted
        || event.src.private
        || event.actor.key.is_empty()
    {
        return None;
    }
    event
        .src
        .geo
        .as_ref()
        .filter(|g| g.lat.is_finite() && g.lon.is_finite())
}

impl ImpossibleTravel {
    fn severity(
        config: &ImpossibleTravelConfig,
        hosting: &HostingNetworks,
        h: &TravelHistory,
        a: &SignIn,
        b: &SignIn,
    ) -> (Severity, Vec<String>) {
        let mut severity = Severity::Medium;
        let mut reasons = Vec::new();
        let hosted: Vec<&SignIn> = [a, b]
            .into_iter()
            .filter(|s| hosting.matches(s.asn, s.asn_org()))
            .collect();
        if !hosted.is_empty() {
            severity = severity.raise();
            reasons.push(format!("hosting_asn:{}", hosted[0].uid()));
        }
        let since = h.countries.since.unwrap_or(i64::MAX);
        let new_country = [a, b].into_iter().find(|s| {
            let t = s.time_ms.div_euclid(1000);
            s.country().is_some_and(|cc| {
                since < t
                    && h.countries
                        .values
                        .iter()
                        .find(|v| v.key == *cc)
                        .is_none_or(|v| v.first >= t)
            })
        });
        if let Some(s) = new_country {
            severity = severity.raise();
            reasons.push(format!("new_country:{}", s.uid()));
        }
        let window = config.mfa_failure_window_minutes as i64 * 60_000;
        let mfa_failed = a.mfa_failed
            || b.mfa_failed
            || h.mfa_failures
                .iter()
                .any(|&t| t >= a.time_ms - window && t <= b.time_ms);
        if mfa_failed {
            severity = severity.raise();
            reasons.push("mfa_failed".to_string());
        }
        (severity, reasons)
    }

    fn finding(
        config: &ImpossibleTravelConfig,
        hosting: &HostingNetworks,
        key: &str,
        h: &TravelHistory,
        a: &SignIn,
        b: &SignIn,
        x: Assessment,
    ) -> Finding {
        let (severity, reasons) = Self::severity(config, hosting, h, a, b);
        let minutes = x.gap_seconds / 60.0;
        let title = format!(
            "Impossible travel: {key} signed in from {} and {} ({:.0} km apart) {:.0} min apart",
            a.place(),
            b.place(),
            x.distance_km,
            minutes
        );
        let mut f = Finding::new(ID, title, severity, vec![a.evidence(), b.evidence()]);
        f.description = format!(
            "The same identity signed in successfully from two places too far apart for the time \
             between them (needs {} against a limit of {:.0} km/h, after subtracting both \
             geolocation accuracy radii). One of the sessions is likely an attacker using stolen \
             credentials: confirm with the user, revoke sessions and reset credentials if not.",
            x.speed_kmh.map_or_else(
                || "simultaneous sign-ins".to_string(),
                |s| format!("{s:.0} km/h")
            ),
            config.max_speed_kmh
        );
        f.identity = Some(key.to_string());
        f.actor = Some(Actor {
            key: key.to_string(),
            uid: b.principal().map(str::to_string),
            principal_type: PrincipalType::User,
            ..Actor::default()
        });
        f.attacks = vec![
            Attack {
                technique: "T1078".to_string(),
                tactic: Some("initial-access".to_string()),
            },
            Attack {
                technique: "T1078.004".to_string(),
                tactic: Some("initial-access".to_string()),
            },
        ];
        let round = |v: f64| (v * 10.0).round() / 10.0;
        let data = json!({
            "from": a.location_json(),
            "to": b.location_json(),
            "distance_km": round(x.distance_km),
            "distance_less_radii_km": round(x.adjusted_km),
            "time_gap_seconds": x.gap_seconds,
            "speed_kmh": x.speed_kmh.map(round),
            "max_speed_kmh": config.max_speed_kmh,
            "cross_provider": a.provider != b.provider,
            "severity_reasons": reasons,
        });
        if let Value::Object(map) = data {
            f.data = map;
        }
        f
    }
}

impl Detector for ImpossibleTravel {
    fn id(&self) -> &str {
        ID
    }

    fn prefetch(
        &mut self,
        events: &[IdentityEvent],
        cx: &DetectContext<'_>,
    ) -> Result<(), DetectError> {
        let keys = events
            .iter()
            .filter(|e| {
                eligible_geo(e).is_some() || (e.activity == Activity::SignIn && e.auth.mfa_failed)
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
        let ImpossibleTravel {
            config,
            hosting,
            state,
        } = self;
        if event.activity == Activity::SignIn
            && event.auth.mfa_failed
            && !event.actor.key.is_empty()
        {
            let t = event.time.timestamp_millis();
            state.update(&event.actor.key, cx, |p| {
                let h = &mut p.travel;
                if h.mfa_failures.contains(&t) {
                    return ((), false);
                }
                h.mfa_failures.push(t);
                h.mfa_failures.sort_unstable();
                if h.mfa_failures.len() > MAX_MFA_FAILURES {
                    h.mfa_failures.remove(0);
                }
                ((), true)
            })?;
        }
        let Some(geo) = eligible_geo(event) else {
            return Ok(Vec::new());
        };
        let key = event.actor.key.as_str();
        let time_ms = event.time.timestamp_millis();
        let uid = event.uid.as_str();
        let retention_ms = config.history_retention_hours as i64 * 3_600_000;
        state.update(key, cx, |p| {
            let h = &mut p.travel;
            // Time first: ids are compared only between sign-ins of the same millisecond.
            let pos = h.entries.partition_point(|e| {
                e.time_ms < time_ms || (e.time_ms == time_ms && e.uid() < uid)
            });
            // The same sign-in again (the history is sorted by time and id, so it would sit
            // right here): a binary search instead of comparing every id.
            if h.entries
                .get(pos)
                .is_some_and(|e| e.time_ms == time_ms && e.uid() == uid)
            {
                return (Vec::new(), false);
            }
            // Built here, once the sign-in is known to be new (most are, and it moves in).
            h.entries.insert(pos, SignIn::of(event, geo));
            if let Some(cc) = &geo.country {
                h.countries
                    .observe(cc, event.time, Duration::zero(), config.max_countries);
            }
            let mut pairs = Vec::new();
            if pos > 0 {
                pairs.push((pos - 1, pos));
            }
            if pos + 1 < h.entries.len() {
                pairs.push((pos, pos + 1));
            }
            let mut findings = Vec::new();
            for (i, j) in pairs {
                let (a, b) = (&h.entries[i], &h.entries[j]);
                if let Some(x) = assess_places(
                    Place::of_signin(a),
                    Place::of_signin(b),
                    b.time_ms - a.time_ms,
                    config.max_speed_kmh,
                    config.coarse_radius_km,
                ) {
                    findings.push(Self::finding(config, hosting, key, h, a, b, x));
                }
            }
            // Bound the history: by age behind the newest sign-in, then by count.
            if let Some(newest) = h.entries.last().map(|e| e.time_ms) {
                h.entries.retain(|e| e.time_ms >= newest - retention_ms);
                h.mfa_failures.retain(|&t| t >= newest - retention_ms);
            }
            let excess = h.entries.len().saturating_sub(config.history_max);
            h.entries.drain(..excess);
            (findings, true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthFacts, Endpoint, EventClass, RecordKind, Status};
    use crate::state::{MemoryStore, StateStore};

    fn geo(city: Option<&str>, cc: &str, lat: f64, lon: f64, r: f64) -> GeoLocation {
        GeoLocation {
            city: city.map(str::to_string),
            country: Some(cc.to_string()),
            lat,
            lon,
            radius_km: Some(r),
        }
    }

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600 + min * 60, 0).unwrap()
    }

    fn signin(uid: &str, min: i64, g: GeoLocation) -> IdentityEvent {
        IdentityEvent {
            time: t(min),
            kind: RecordKind::EntraSignin,
            class: EventClass::Authentication,
            activity: Activity::SignIn,
            status: Status::Success,
            status_detail: None,
            account: None,
            region: None,
            actor: Actor {
                key: "alice@corp.example".into(),
                ..Actor::default()
            },
            src: Endpoint {
                ip: Some("81.2.69.160".parse().unwrap()),
                geo: Some(g),
                asn: Some(Asn {
                    number: 3320,
                    org: Some("Deutsche Telekom AG".into()),
                }),
                ..Endpoint::default()
            },
            action: "Sign-in activity".into(),
            service: None,
            targets: vec![],
            auth: AuthFacts {
                interactive: Some(true),
                ..AuthFacts::default()
            },
            oauth: None,
            uid: uid.into(),
            raw: crate::json::Raw::default(),
        }
    }

    fn london() -> GeoLocation {
        geo(Some("London"), "GB", 51.5074, -0.1278, 20.0)
    }
    fn sydney() -> GeoLocation {
        geo(Some("Sydney"), "AU", -33.8688, 151.2093, 20.0)
    }

    fn run(events: &[IdentityEvent]) -> Vec<Finding> {
        let store = MemoryStore::new();
        let mut d = ImpossibleTravelConfig::default().build().unwrap();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        events
            .iter()
            .flat_map(|e| d.on_event(e, &cx).unwrap())
            .collect()
    }

    #[test]
    fn london_then_sydney_in_an_hour_is_impossible() {
        let f = run(&[signin("a", 0, london()), signin("b", 60, sydney())]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].evidence.len(), 2);
        // Sydney is a new country for alice: one step above medium.
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].data["severity_reasons"][0], "new_country:b");
        assert!(f[0].data["speed_kmh"].as_f64().unwrap() > 10_000.0);
        // Both countries known from earlier days: medium.
        let f = run(&[
            signin("s0", -4000, sydney()),
            signin("l0", -2000, london()),
            signin("a", 0, sydney()),
            signin("b", 5, london()),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Medium, "{:?}", f[0].data);
    }

    #[test]
    fn late_event_meets_both_neighbours_and_duplicates_are_silent() {
        // London 0, London 600; Sydney at 60 arrives last: two pairs.
        let s = signin("s", 60, sydney());
        let f = run(&[
            signin("a", 0, london()),
            signin("b", 600, london()),
            s.clone(),
            s.clone(),
        ]);
        assert_eq!(f.len(), 2);
        let mut pairs: Vec<Vec<&str>> = f
            .iter()
            .map(|f| f.evidence.iter().map(|e| e.uid.as_str()).collect())
            .collect();
        pairs.sort();
        assert_eq!(pairs, vec![vec!["a", "s"], vec!["s", "b"]]);
    }

    #[test]
    fn ineligible_sign_ins_are_ignored() {
        let mut trusted = signin("b", 60, sydney());
        trusted.src.trusted = true;
        let mut private = signin("c", 61, sydney());
        private.src.private = true;
        let mut failed = signin("d", 62, sydney());
        failed.status = Status::Failure;
        let mut api = signin("e", 63, sydney());
        api.activity = Activity::ApiCall;
        let mut unlocated = signin("f", 64, sydney());
        unlocated.src.geo = None;
        let mut non_interactive = signin("g", 65, sydney());
        non_interactive.auth.interactive = Some(false);
        let f = run(&[
            signin("a", 0, london()),
            trusted,
            private,
            failed,
            api,
            unlocated,
            non_interactive,
        ]);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn coarse_location_never_pairs_within_its_country() {
        let country_only = geo(None, "US", 37.751, -97.822, 1000.0);
        let new_york = geo(Some("New York"), "US", 40.7128, -74.0060, 10.0);
        assert!(
            run(&[
                signin("a", 0, new_york.clone()),
                signin("b", 5, country_only)
            ])
            .is_empty()
        );
        // A coarse location in another country still pairs: Kansas centroid vs Berlin.
        let de = geo(Some("Berlin"), "DE", 52.52, 13.405, 10.0);
        let coarse_us = geo(Some("Wichita"), "US", 37.751, -97.822, 600.0);
        assert_eq!(
            run(&[signin("a", 0, de), signin("b", 30, coarse_us)]).len(),
            1
        );
    }

    #[test]
    fn accuracy_radii_absorb_distance() {
        // 870 km apart in 30 minutes, but with radii of 500 km each: feasible.
        let paris = geo(Some("Paris"), "FR", 48.8566, 2.3522, 450.0);
        let berlin = geo(Some("Berlin"), "DE", 52.52, 13.405, 450.0);
        assert!(
            run(&[
                signin("a", 0, paris.clone()),
                signin("b", 30, berlin.clone())
            ])
            .is_empty()
        );
        let paris = geo(Some("Paris"), "FR", 48.8566, 2.3522, 5.0);
        let berlin = geo(Some("Berlin"), "DE", 52.52, 13.405, 5.0);
        assert_eq!(
            run(&[signin("a", 0, paris), signin("b", 30, berlin)]).len(),
            1
        );
    }

    #[test]
    fn zero_gap_is_impossible_only_with_distance_left() {
        let f = run(&[signin("a", 0, london()), signin("b", 0, sydney())]);
        assert_eq!(f.len(), 1);
        assert!(f[0].data["speed_kmh"].is_null());
        assert!(run(&[signin("a", 0, london()), signin("b", 0, london())]).is_empty());
    }

    #[test]
    fn hosting_asn_new_country_and_mfa_failure_raise_severity() {
        let mut attacker = signin("b", 60, sydney());
        attacker.src.asn = Some(Asn {
            number: 14061,
            org: Some("DIGITALOCEAN-ASN".into()),
        });
        attacker.auth.mfa_failed = true;
        let f = run(&[
            signin("a0", -600, london()),
            signin("a", 0, london()),
            attacker,
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Critical);
        let reasons = f[0].data["severity_reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
    }

    #[test]
    fn hosting_keywords_match_whole_words() {
        let h = HostingNetworks::new(&[], &["aws".into(), "google cloud".into()]);
        assert!(h.matches(Some(1), Some("AWS-EU")));
        assert!(h.matches(None, Some("Google Cloud Platform")));
        assert!(!h.matches(None, Some("Dawson Communications")));
        assert!(!h.matches(None, None));
    }

    #[test]
    fn config_rejects_nonsense_and_unknown_keys() {
        let bad = ImpossibleTravelConfig {
            max_speed_kmh: 0.0,
            ..ImpossibleTravelConfig::default()
        };
        assert!(bad.build().is_err());
        let parsed: Result<ImpossibleTravelConfig, _> =
            toml::from_str("max_speed_kmh = 900\nbogus = 1");
        assert!(parsed.is_err());
        let parsed: ImpossibleTravelConfig = toml::from_str("max_speed_kmh = 900").unwrap();
        assert_eq!(parsed.max_speed_kmh, 900.0);
        assert_eq!(parsed.coarse_radius_km, 500.0);
    }

    #[test]
    fn history_round_trips_binary_and_reads_the_old_json() {
        let mut h = TravelHistory::default();
        let a = SignIn::of(
            &signin("1b4e28ba-2fa1-11d2-883f-0016d3cca427", 0, london()),
            &london(),
        )
        .with(Text::UserAgent, Some("Mozilla/5.0"))
        .with(
            Text::Principal,
            Some("00000000-0000-4000-8000-000000000001"),
        );
        let mut b = a.with(Text::Uid, Some("1B4E28BA-2FA1-11D2-883F-0016D3CCA427"));
        b.time_ms -= 5;
        let mut c = SignIn::of(&signin("ev:ü", 90, sydney()), &sydney()).with(Text::City, None);
        c.radius_km = None;
        c.asn = None;
        c.mfa_failed = true;
        c.provider = Provider::Okta;
        let d = c
            .with(Text::Uid, Some("1b4e28ba-2fa1-11d2-883f-0016d3cca42"))
            .with(Text::Ip, None);
        assert_eq!(
            (d.uid(), d.ip(), d.city(), d.country(), d.action()),
            (
                "1b4e28ba-2fa1-11d2-883f-0016d3cca42",
                None,
                None,
                Some("AU"),
                "Sign-in activity"
            )
        );
        h.entries = vec![b, a, c, d];
        h.countries.observe("GB", t(0), Duration::zero(), 4);
        h.mfa_failures = vec![t(-3).timestamp_millis(), t(1).timestamp_millis()];
        let mut bytes = Vec::new();
        h.encode(&mut bytes).unwrap();
        assert_eq!(TravelHistory::decode(&bytes).unwrap(), h);
        let json = serde_json::to_vec(&h).unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        assert_eq!(TravelHistory::decode(&json).unwrap(), h);
        assert_eq!(
            TravelHistory::decode(&[HISTORY_FORMAT, 0, 0, 0, 0]).unwrap(),
            TravelHistory::default()
        );
        for cut in 1..bytes.len() {
            assert!(
                TravelHistory::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn history_stays_bounded() {
        let store = MemoryStore::new();
        let mut d = ImpossibleTravelConfig::default().build().unwrap();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        for i in 0..200 {
            d.on_event(&signin(&format!("e{i}"), i * 10, london()), &cx)
                .unwrap();
        }
        let v = store
            .get(crate::detect::profile::NS, "alice@corp.example", t(0))
            .unwrap()
            .unwrap();
        let h = crate::detect::profile::IdentityProfile::decode(&v.value)
            .unwrap()
            .travel;
        assert_eq!(h.entries.len(), 32);
        assert!(v.value.len() < 32 * 100, "{} bytes", v.value.len());
    }
}
