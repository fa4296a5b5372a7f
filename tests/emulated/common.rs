//! Findings for the emulated tests, with the hostile strings every notifier must neutralise.

use chrono::{TimeZone, Utc};
use picket::model::{
    Actor, Attack, Evidence, Finding, GeoLocation, PrincipalType, Provider, Severity,
};

/// Strings an attacker controls (user names, app names, user agents) in every test.
pub const HOSTILE: &[&str] = &[
    "<!channel>",
    "*x*",
    "<https://evil|click>",
    "<img src=x onerror=alert(1)>",
    "\u{202E}",
];

/// An account-takeover finding for `who` (an email), built on successful sign-ins from
/// London and Sydney, with hostile strings in the actor name, user agent and title.
pub fn takeover(who: &str, n: u32) -> Finding {
    let ev = |i: u32, city: &str, cc: &str, lat: f64, lon: f64| Evidence {
        uid: format!("{who}-{n}-{i}"),
        time: Utc.with_ymd_and_hms(2026, 11, 1, 8 + i, 0, 0).unwrap(),
        provider: Provider::Entra,
        action: "Sign-in activity".into(),
        success: true,
        src_ip: Some(format!("81.2.69.{}", 100 + i)),
        user_agent: Some("Mozilla <https://evil|click> *x* <!channel>".into()),
        geo: Some(GeoLocation {
            city: Some(city.into()),
            country: Some(cc.into()),
            lat,
            lon,
            radius_km: Some(20.0),
        }),
        asn: None,
    };
    let mut f = Finding::new(
        "account-takeover",
        "Account takeover <!channel> *x* <img src=x onerror=alert(1)> \u{202E}gnp.exe",
        Severity::High,
        vec![
            ev(0, "London", "GB", 51.5, -0.12),
            ev(1, "Sydney", "AU", -33.87, 151.2),
        ],
    );
    f.identity = Some(who.to_string());
    f.actor = Some(Actor {
        key: who.to_string(),
        uid: None,
        name: Some("<!channel> <https://evil|click>".into()),
        email: Some(who.to_string()),
        principal_type: PrincipalType::User,
        ..Actor::default()
    });
    f.attacks = Attack::from_tags(["attack.initial-access", "attack.t1078.004"]);
    f.data
        .insert("distance_km".into(), serde_json::json!(16994.0));
    f.data
        .insert("speed_kmh".into(), serde_json::json!(16994.0));
    f.data
        .insert("app_id".into(), serde_json::json!("app-evil-1"));
    f
}

/// Asserts none of the hostile strings survived in `text`.
pub fn assert_neutralised(text: &str) {
    for bad in HOSTILE {
        assert!(!text.contains(bad), "{bad:?} arrived intact in: {text}");
    }
}
