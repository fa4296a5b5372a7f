//! Identity detectors end to end: golden scenarios (findings as JSON under
//! `tests/golden/detect/`, rewritten with `PICKET_BLESS=1`) and property tests of impossible
//! travel (feasible itineraries never alarm; one injected hop gives exactly that pair, in any
//! delivery order, processed once or twice).

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use geo::{Destination, Haversine, Point};
use picket::detect::account_takeover::AccountTakeoverConfig;
use picket::detect::first_seen_asn::FirstSeenAsnConfig;
use picket::detect::impossible_travel::ImpossibleTravelConfig;
use picket::detect::new_country::NewCountryConfig;
use picket::detect::oauth_consent::OauthConsentConfig;
use picket::detect::{DetectContext, Detector};
use picket::model::{
    Activity, Actor, Asn, AuthFacts, Endpoint, EventClass, Finding, GeoLocation, IdentityEvent,
    OAuthGrant, PrincipalType, RecordKind, Status,
};
use picket::state::MemoryStore;
use proptest::prelude::*;

const EPOCH: i64 = 1_767_225_600;

fn at(min: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(EPOCH + min * 60, 0).unwrap()
}

fn event(uid: &str, key: &str, min: i64, kind: RecordKind, activity: Activity) -> IdentityEvent {
    IdentityEvent {
        time: at(min),
        kind,
        class: EventClass::Authentication,
        activity,
        status: Status::Success,
        status_detail: None,
        account: Some("tenant-1".into()),
        region: None,
        actor: Actor {
            key: key.into(),
            email: Some(key.into()),
            principal_type: PrincipalType::User,
            ..Actor::default()
        },
        src: Endpoint::default(),
        action: match kind {
            RecordKind::Cloudtrail => "ConsoleLogin".into(),
            RecordKind::GoogleReports => "login_success".into(),
            _ => "Sign-in activity".into(),
        },
        service: None,
        targets: vec![],
        auth: AuthFacts {
            interactive: Some(true),
            ..AuthFacts::default()
        },
        oauth: None,
        uid: uid.into(),
        raw: picket::json::Raw::default(),
    }
}

#[allow(clippy::too_many_arguments)]
fn signin(
    uid: &str,
    key: &str,
    min: i64,
    kind: RecordKind,
    ip: &str,
    place: (Option<&str>, &str, f64, f64, f64),
    asn: (u32, &str),
) -> IdentityEvent {
    let mut e = event(uid, key, min, kind, Activity::SignIn);
    e.src.ip = Some(ip.parse().unwrap());
    e.src.raw = Some(ip.into());
    e.src.geo = Some(GeoLocation {
        city: place.0.map(str::to_string),
        country: Some(place.1.into()),
        lat: place.2,
        lon: place.3,
        radius_km: Some(place.4),
    });
    e.src.asn = Some(Asn {
        number: asn.0,
        org: Some(asn.1.into()),
    });
    e
}

fn consent(uid: &str, key: &str, min: i64, app: &str, scopes: &[&str]) -> IdentityEvent {
    let mut e = event(
        uid,
        key,
        min,
        RecordKind::EntraAudit,
        Activity::ConsentGrant,
    );
    e.class = EventClass::UserAccess;
    e.action = "Consent to application".into();
    e.auth = AuthFacts::default();
    e.oauth = Some(OAuthGrant {
        app_id: Some(app.into()),
        app_name: Some(format!("App {app}")),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..OAuthGrant::default()
    });
    e
}

fn detectors() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(ImpossibleTravelConfig::default().build().unwrap()),
        Box::new(
            OauthConsentConfig {
                allowed_apps: vec!["allowed-app".into()],
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

/// Every detector sees every event; every finding goes (transitively) to every detector.
fn run(detectors: &mut [Box<dyn Detector>], events: &[IdentityEvent]) -> Vec<Finding> {
    let store = MemoryStore::new();
    let cx = DetectContext {
        state: &store,
        now: at(0),
    };
    let mut out = Vec::new();
    for e in events {
        let mut queue = Vec::new();
        for d in detectors.iter_mut() {
            queue.extend(d.on_event(e, &cx).unwrap());
        }
        while let Some(f) = queue.pop() {
            for d in detectors.iter_mut() {
                queue.extend(d.on_finding(&f, &cx).unwrap());
            }
            out.push(f);
        }
    }
    out
}

fn golden(name: &str, findings: &[Finding]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/detect")
        .join(format!("{name}.json"));
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| (&a.detector, &a.uid).cmp(&(&b.detector, &b.uid)));
    let actual = serde_json::to_string_pretty(&sorted).unwrap() + "\n";
    if std::env::var_os("PICKET_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with PICKET_BLESS=1)", path.display()));
    assert_eq!(
        actual, expected,
        "golden {name} differs (PICKET_BLESS=1 rewrites)"
    );
}

const ALICE: &str = "alice@corp.example";
const LONDON: (Option<&str>, &str, f64, f64, f64) = (Some("London"), "GB", 51.5074, -0.1278, 20.0);
const LAGOS: (Option<&str>, &str, f64, f64, f64) = (Some("Lagos"), "NG", 6.5244, 3.3792, 50.0);
const BT: (u32, &str) = (2856, "British Telecommunications PLC");
const DO: (u32, &str) = (14061, "DIGITALOCEAN-ASN");

/// The story: alice in London (Entra), the attacker signs in to the AWS console from a
/// DigitalOcean address in Lagos 40 minutes later, consents a mail app and creates a key.
fn takeover_story() -> Vec<IdentityEvent> {
    let mut key = event(
        "ct-key",
        ALICE,
        75,
        RecordKind::Cloudtrail,
        Activity::CredentialCreate,
    );
    key.class = EventClass::AccountChange;
    key.action = "CreateAccessKey".into();
    key.auth = AuthFacts::default();
    key.src.ip = Some("203.0.113.66".parse().unwrap());
    vec![
        signin(
            "entra-1",
            ALICE,
            -1440,
            RecordKind::EntraSignin,
            "81.2.69.160",
            LONDON,
            BT,
        ),
        signin(
            "entra-2",
            ALICE,
            0,
            RecordKind::EntraSignin,
            "2a02:c7f:1::5",
            LONDON,
            BT,
        ),
        signin(
            "ct-login",
            ALICE,
            40,
            RecordKind::Cloudtrail,
            "45.10.1.2",
            LAGOS,
            DO,
        ),
        consent(
            "audit-consent",
            ALICE,
            60,
            "9b1f2c3d-evil",
            &["https://graph.microsoft.com/Mail.Read", "offline_access"],
        ),
        key,
    ]
}

#[test]
fn golden_account_takeover_story() {
    let findings = run(&mut detectors(), &takeover_story());
    let ids: Vec<&str> = findings.iter().map(|f| f.detector.as_str()).collect();
    assert_eq!(
        ids.iter().filter(|d| **d == "impossible-travel").count(),
        1,
        "{ids:?}"
    );
    assert_eq!(ids.iter().filter(|d| **d == "oauth-consent").count(), 1);
    let ato: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.detector == "account-takeover" && !f.data.contains_key("incident"))
        .collect();
    assert_eq!(ato.len(), 1);
    let uids: Vec<&str> = ato[0].evidence.iter().map(|e| e.uid.as_str()).collect();
    assert_eq!(uids, ["entra-2", "ct-login", "audit-consent"]);
    let travel = findings
        .iter()
        .find(|f| f.detector == "impossible-travel")
        .unwrap();
    assert_eq!(travel.data["cross_provider"], true);
    assert_eq!(
        travel.severity,
        picket::model::Severity::Critical,
        "hosting ASN + new country"
    );
    let consent = findings
        .iter()
        .find(|f| f.detector == "oauth-consent")
        .unwrap();
    assert!(consent.data["after_risky_signin"].is_string());
    golden("account_takeover_story", &findings);
}

#[test]
fn golden_account_takeover_late_sign_in() {
    // The AWS console login arrives last (CloudTrail delivery lag): the same incident, the
    // same travel finding, the same ids.
    let mut events = takeover_story();
    let late = events.remove(2);
    events.push(late);
    let findings = run(&mut detectors(), &events);
    let in_order = run(&mut detectors(), &takeover_story());
    let uids = |f: &[Finding]| {
        let mut v: Vec<(String, String)> = f
            .iter()
            .map(|f| (f.detector.clone(), f.uid.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(uids(&findings), uids(&in_order));
    let ato = findings
        .iter()
        .find(|f| f.detector == "account-takeover" && !f.data.contains_key("incident"))
        .unwrap();
    // Both follow-ups were known when the late sign-in completed the picture: the incident
    // holds the first step, an update the second, as when delivered in order.
    assert_eq!(ato.evidence.len(), 3, "travel pair and the first step");
    let update = findings
        .iter()
        .find(|f| f.data.get("incident").and_then(|v| v.as_str()) == Some(ato.uid.as_str()))
        .expect("an update of the incident");
    assert_eq!(update.evidence.len(), 4, "travel pair, consent and key");
    golden("account_takeover_late_sign_in", &findings);
}

#[test]
fn golden_quiet_month_day() {
    // Coarse, trusted, private, failed, non-interactive and allowed-app events: no alarm.
    let us_coarse = (None, "US", 37.751, -97.822, 1000.0);
    let ny = (Some("New York"), "US", 40.7128, -74.006, 10.0);
    let sydney = (Some("Sydney"), "AU", -33.8688, 151.2093, 20.0);
    let mut trusted = signin(
        "t",
        ALICE,
        30,
        RecordKind::EntraSignin,
        "193.0.0.5",
        sydney,
        DO,
    );
    trusted.src.trusted = true;
    let mut private = signin(
        "p",
        ALICE,
        31,
        RecordKind::EntraSignin,
        "10.1.2.3",
        sydney,
        BT,
    );
    private.src.private = true;
    let mut failed = signin(
        "f",
        ALICE,
        32,
        RecordKind::EntraSignin,
        "45.10.1.9",
        LAGOS,
        DO,
    );
    failed.status = Status::Failure;
    let mut refresh = signin(
        "r",
        ALICE,
        33,
        RecordKind::EntraSignin,
        "45.10.1.9",
        LAGOS,
        DO,
    );
    refresh.auth.interactive = Some(false);
    let events = vec![
        signin(
            "ny",
            ALICE,
            0,
            RecordKind::GoogleReports,
            "2600:1::1",
            ny,
            (7922, "COMCAST"),
        ),
        signin(
            "coarse",
            ALICE,
            10,
            RecordKind::EntraSignin,
            "172.58.1.1",
            us_coarse,
            (21928, "T-Mobile"),
        ),
        trusted,
        private,
        failed,
        refresh,
        consent("ok", ALICE, 40, "allowed-app", &["Mail.ReadWrite"]),
        consent(
            "harmless",
            ALICE,
            41,
            "calendar",
            &["openid", "User.Read", "offline_access"],
        ),
    ];
    let findings = run(&mut detectors(), &events);
    assert!(findings.is_empty(), "{findings:#?}");
    golden("quiet_day", &findings);
}

// ---- property tests ------------------------------------------------------------------------

const KINDS: [RecordKind; 3] = [
    RecordKind::Cloudtrail,
    RecordKind::EntraSignin,
    RecordKind::GoogleReports,
];

fn travel_detector(retention_hours: u64) -> Box<dyn Detector> {
    Box::new(
        ImpossibleTravelConfig {
            history_retention_hours: retention_hours,
            ..ImpossibleTravelConfig::default()
        }
        .build()
        .unwrap(),
    )
}

fn pairs(findings: &[Finding]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = findings
        .iter()
        .map(|f| (f.evidence[0].uid.clone(), f.evidence[1].uid.clone()))
        .collect();
    v.sort();
    v
}

#[derive(Debug, Clone)]
struct Hop {
    gap_min: i64,
    bearing: f64,
    speed_frac: f64,
    radius: f64,
    coarse: bool,
    kind: usize,
    v6: bool,
}

fn hop() -> impl Strategy<Value = Hop> {
    (
        1i64..3000,
        0.0f64..360.0,
        0.0f64..1.0,
        0.0f64..200.0,
        prop::bool::weighted(0.15),
        0usize..3,
        any::<bool>(),
    )
        .prop_map(
            |(gap_min, bearing, speed_frac, radius, coarse, kind, v6)| Hop {
                gap_min,
                bearing,
                speed_frac,
                radius,
                coarse,
                kind,
                v6,
            },
        )
}

fn place_event(uid: &str, min: i64, p: Point<f64>, h: &Hop, country: &str) -> IdentityEvent {
    let ip = if h.v6 { "2a02:1000::7" } else { "81.2.3.4" };
    let city = (!h.coarse).then_some("Somewhere");
    let radius = if h.coarse { 1000.0 } else { h.radius };
    signin(
        uid,
        ALICE,
        min,
        KINDS[h.kind],
        ip,
        (city, country, p.y(), p.x(), radius),
        (3320, "Example ISP"),
    )
}

/// An itinerary at no more than 800 km/h on raw distance, with ineligible noise at absurd
/// places in between.
fn feasible_itinerary(start: (f64, f64), hops: &[Hop]) -> Vec<IdentityEvent> {
    let mut p = Point::new(start.1, start.0);
    let mut min = 0;
    let mut out = Vec::new();
    for (i, h) in hops.iter().enumerate() {
        let km = 800.0 * h.speed_frac * (h.gap_min as f64 / 60.0);
        p = Haversine.destination(p, h.bearing, km.min(19_000.0) * 1000.0);
        min += h.gap_min;
        let country = ["GB", "FR", "US"][i % 3];
        out.push(place_event(&format!("s{i}"), min, p, h, country));
        // Noise: trusted, private and failed sign-ins on the far side of the planet.
        let far = Point::new(p.x() + 180.0, -p.y());
        let mut noise = place_event(&format!("n{i}"), min + 1, far, h, "AU");
        match i % 3 {
            0 => noise.src.trusted = true,
            1 => noise.src.private = true,
            _ => noise.status = Status::Failure,
        }
        out.push(noise);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn feasible_itineraries_never_alarm(
        lat in -60.0f64..60.0,
        lon in -180.0f64..180.0,
        hops in prop::collection::vec(hop(), 2..14),
        seed in any::<u64>(),
    ) {
        let events = feasible_itinerary((lat, lon), &hops);
        let mut d = vec![travel_detector(24 * 60)];
        prop_assert!(run(&mut d, &events).is_empty());
        // Shuffled delivery and duplicates: still nothing.
        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        shuffled.extend(events.iter().take(3).cloned());
        let mut d = vec![travel_detector(24 * 60)];
        prop_assert!(run(&mut d, &shuffled).is_empty());
    }

    #[test]
    fn one_infeasible_hop_gives_exactly_that_pair_in_any_order(
        points in prop::collection::vec((-70.0f64..70.0, -180.0f64..180.0, 0.0f64..200.0, 0usize..3, any::<bool>()), 2..10),
        gaps in prop::collection::vec(24i64 * 60..6 * 24 * 60, 10),
        k_pick in any::<prop::sample::Index>(),
        delta_min in 0i64..120,
        bearing in 0.0f64..360.0,
        seed in any::<u64>(),
    ) {
        // Days apart (>= 24 h: any two places on earth are reachable), then one sign-in
        // `delta_min` after point k, far enough away to be impossible with a margin.
        let mut events = Vec::new();
        let mut min = 0;
        let k = k_pick.index(points.len());
        let mut injected = None;
        for (i, (lat, lon, radius, kind, v6)) in points.iter().enumerate() {
            let h = Hop { gap_min: 0, bearing: 0.0, speed_frac: 0.0, radius: *radius, coarse: false, kind: *kind, v6: *v6 };
            let p = Point::new(*lon, *lat);
            events.push(place_event(&format!("p{i}"), min, p, &h, "GB"));
            if i == k {
                let km = (1500.0 * delta_min as f64 / 60.0 + 2.0 * 200.0 + 500.0).min(19_000.0);
                let q = Haversine.destination(p, bearing, km * 1000.0);
                let hx = Hop { kind: (*kind + 1) % 3, v6: !*v6, ..h };
                events.push(place_event("x", min + delta_min, q, &hx, "NG"));
                injected = Some(format!("p{i}"));
            }
            min += gaps[i];
        }
        let Some(pk) = injected else { return Err(TestCaseError::fail("no injection")) };
        let expected = vec![(pk, "x".to_string())];
        let mut d = vec![travel_detector(24 * 60)];
        let in_order = run(&mut d, &events);
        prop_assert_eq!(pairs(&in_order), expected.clone());

        let mut shuffled = events.clone();
        shuffle(&mut shuffled, seed);
        shuffled.extend(events.iter().cloned());
        let mut d = vec![travel_detector(24 * 60)];
        let any_order = run(&mut d, &shuffled);
        prop_assert_eq!(pairs(&any_order), expected);
        prop_assert_eq!(&any_order[0].uid, &in_order[0].uid);
        prop_assert_eq!(&any_order[0].data["distance_km"], &in_order[0].data["distance_km"]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The verdict follows distance minus both radii: just under the limit is quiet, just
    /// over it is a finding, whatever the raw distance.
    #[test]
    fn accuracy_radii_decide_the_verdict(
        lat in -60.0f64..60.0,
        lon in -180.0f64..180.0,
        bearing in 0.0f64..360.0,
        gap_min in 1i64..600,
        r1 in 0.0f64..400.0,
        r2 in 0.0f64..400.0,
        over in any::<bool>(),
    ) {
        let allowed_km = 1000.0 * gap_min as f64 / 60.0;
        let margin = if over { 1.02 } else { 0.98 };
        let km = allowed_km * margin + r1 + r2;
        prop_assume!(km < 19_000.0);
        let a = Point::new(lon, lat);
        let b = Haversine.destination(a, bearing, km * 1000.0);
        let events = vec![
            signin("a", ALICE, 0, RecordKind::EntraSignin, "81.2.3.4", (Some("A"), "GB", a.y(), a.x(), r1), BT),
            signin("b", ALICE, gap_min, RecordKind::Cloudtrail, "2a02::1", (Some("B"), "FR", b.y(), b.x(), r2), BT),
        ];
        let found = run(&mut [travel_detector(72)], &events);
        prop_assert_eq!(found.len(), usize::from(over));
    }

    /// A country-level location never pairs with its own country, however far and fast; with
    /// another country it is judged on distance like any other.
    #[test]
    fn coarse_locations_pair_only_across_countries(
        lat in -60.0f64..60.0,
        lon in -180.0f64..180.0,
        bearing in 0.0f64..360.0,
        km in 3000.0f64..15000.0,
        no_city in any::<bool>(),
        same_country in any::<bool>(),
    ) {
        let a = Point::new(lon, lat);
        let b = Haversine.destination(a, bearing, km * 1000.0);
        // Coarse: no city (radius small) or a city with a radius over the coarse limit.
        let coarse = if no_city { (None, "US", b.y(), b.x(), 100.0) } else { (Some("C"), "US", b.y(), b.x(), 600.0) };
        let other = (Some("Here"), if same_country { "US" } else { "CA" }, a.y(), a.x(), 5.0);
        let events = vec![
            signin("a", ALICE, 0, RecordKind::GoogleReports, "81.2.3.4", other, BT),
            signin("b", ALICE, 30, RecordKind::EntraSignin, "91.0.0.1", coarse, BT),
        ];
        let found = run(&mut [travel_detector(72)], &events);
        let radius = if no_city { 100.0 } else { 600.0 };
        let impossible = (km - radius - 5.0) / 0.5 > 1000.0;
        prop_assert_eq!(found.len(), usize::from(!same_country && impossible));
    }
}

fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

#[test]
fn ipv6_and_cross_cloud_pair_is_found() {
    let ny = (Some("New York"), "US", 40.7128, -74.006, 10.0);
    let events = vec![
        signin(
            "g",
            ALICE,
            0,
            RecordKind::GoogleReports,
            "2600:1::1",
            ny,
            (7922, "COMCAST"),
        ),
        signin(
            "a",
            ALICE,
            90,
            RecordKind::Cloudtrail,
            "2a02:c7f::9",
            LONDON,
            BT,
        ),
    ];
    let f = run(&mut [travel_detector(72)], &events);
    assert_eq!(pairs(&f), vec![("g".to_string(), "a".to_string())]);
    assert_eq!(f[0].data["from"]["ip"], "2600:1::1");
    assert_eq!(f[0].data["cross_provider"], true);
    let _: IpAddr = "2600:1::1".parse().unwrap();
}

/// The bundled demo story, through the real pipeline (normalize, enrich, the identity
/// detectors): one impossible-travel pair, one risky consent, one account-takeover incident.
#[test]
fn demo_story_ends_in_one_account_takeover() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = rt
        .block_on(picket::demo::run(picket::alert::Format::Ocsf))
        .unwrap();
    let uids: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        // Incidents, not their updates (an update names the incident it updates).
        .filter(|v| v["unmapped"]["incident"].is_null())
        .filter_map(|v| {
            v["finding_info"]["analytic"]["uid"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let count = |id: &str| uids.iter().filter(|u| *u == id).count();
    assert_eq!(count("impossible-travel"), 1, "{uids:?}");
    assert_eq!(count("oauth-consent"), 1, "{uids:?}");
    assert_eq!(count("account-takeover"), 1, "{uids:?}");
}
