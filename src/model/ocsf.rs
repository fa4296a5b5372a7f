//! OCSF rendering: a [`Finding`] as an OCSF 1.3 Detection Finding (class 2004), the JSON
//! picket writes to JSON Lines, webhooks and SIEMs.

use serde_json::{Map, Value, json};

use super::{Finding, GeoLocation, PrincipalType};

/// OCSF schema version picket writes.
pub const OCSF_VERSION: &str = "1.3.0";
/// Detection Finding class uid.
pub const DETECTION_FINDING: u32 = 2004;

fn location(geo: &GeoLocation) -> Value {
    let mut m = Map::new();
    if let Some(c) = &geo.city {
        m.insert("city".into(), json!(c));
    }
    if let Some(c) = &geo.country {
        m.insert("country".into(), json!(c));
    }
    m.insert("lat".into(), json!(geo.lat));
    m.insert("long".into(), json!(geo.lon));
    if let Some(r) = geo.radius_km {
        m.insert("accuracy_radius_km".into(), json!(r));
    }
    Value::Object(m)
}

fn user_type(t: PrincipalType) -> (&'static str, u8) {
    match t {
        PrincipalType::User => ("User", 1),
        PrincipalType::Root => ("Admin", 2),
        PrincipalType::Role | PrincipalType::ServicePrincipal | PrincipalType::Service => {
            ("System", 3)
        }
        PrincipalType::Account | PrincipalType::Unknown => ("Unknown", 0),
    }
}

/// Renders a finding as an OCSF Detection Finding.
pub fn detection_finding(f: &Finding) -> Value {
    let ms = f.time.timestamp_millis();
    let mut finding_info = json!({
        "uid": f.uid,
        "title": f.title,
        "desc": f.description,
        "analytic": {
            "uid": f.detector,
            "name": f.detector,
            "type_id": 1,
            "type": "Rule",
        },
        "related_events": f.evidence.iter().map(|e| json!({
            "uid": e.uid,
            "time": e.time.timestamp_millis(),
            "type": e.action,
            "product_uid": e.provider.as_str(),
        })).collect::<Vec<_>>(),
        "attacks": f.attacks.iter().map(|a| {
            let mut at = json!({"technique": {"uid": a.technique}, "version": "v15"});
            if let Some(t) = &a.tactic {
                at["tactic"] = json!({"name": t});
            }
            at
        }).collect::<Vec<_>>(),
    });
    if let (Some(first), Some(last)) = (
        f.evidence.iter().map(|e| e.time).min(),
        f.evidence.iter().map(|e| e.time).max(),
    ) {
        finding_info["first_seen_time"] = json!(first.timestamp_millis());
        finding_info["last_seen_time"] = json!(last.timestamp_millis());
    }
    let mut out = json!({
        "class_uid": DETECTION_FINDING,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": DETECTION_FINDING * 100 + 1,
        "type_name": "Detection Finding: Create",
        "severity_id": f.severity.id(),
        "severity": capitalize(f.severity.as_str()),
        "status_id": 1,
        "status": "New",
        "time": ms,
        "time_dt": f.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "message": f.title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "picket",
                "vendor_name": "picket",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": finding_info,
        "evidences": f.evidence.iter().map(|e| {
            let mut src = Map::new();
            if let Some(ip) = &e.src_ip {
                src.insert("ip".into(), json!(ip));
            }
            if let Some(g) = &e.geo {
                src.insert("location".into(), location(g));
            }
            if let Some(a) = &e.asn {
                src.insert("autonomous_system".into(), json!({"number": a.number, "name": a.org}));
            }
            let mut ev = json!({
                "src_endpoint": Value::Object(src),
                "api": {"operation": e.action},
                "data": {"event_uid": e.uid, "time": e.time.timestamp_millis(), "success": e.success},
            });
            if let Some(ua) = &e.user_agent {
                ev["http_request"] = json!({"user_agent": ua});
            }
            ev
        }).collect::<Vec<_>>(),
    });
    if let Some(a) = &f.actor {
        let (type_name, type_id) = user_type(a.principal_type);
        let mut user = json!({
            "uid": a.uid.clone().unwrap_or_else(|| a.key.clone()),
            "type": type_name,
            "type_id": type_id,
        });
        if let Some(n) = &a.name {
            user["name"] = json!(n);
        }
        if let Some(e) = &a.email {
            user["email_addr"] = json!(e);
        }
        if let Some(acct) = &a.account {
            user["account"] = json!({"uid": acct});
        }
        out["actor"] = json!({"user": user});
    }
    let mut unmapped = f.data.clone();
    if let Some(id) = &f.identity {
        unmapped.insert("identity".into(), json!(id));
    }
    if !unmapped.is_empty() {
        out["unmapped"] = Value::Object(unmapped);
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::model::{Attack, Evidence, Provider, Severity};

    #[test]
    fn renders_the_contract_fields() {
        let ev = Evidence {
            uid: "ev-1".into(),
            time: Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap(),
            provider: Provider::Aws,
            action: "ConsoleLogin".into(),
            success: true,
            src_ip: Some("81.2.69.142".into()),
            user_agent: None,
            geo: None,
            asn: None,
        };
        let mut f = Finding::new("impossible-travel", "t", Severity::High, vec![ev]);
        f.attacks = Attack::from_tags(["attack.initial-access", "attack.t1078"]);
        f.identity = Some("alice@corp.example".into());
        let v = detection_finding(&f);
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["finding_info"]["analytic"]["uid"], "impossible-travel");
        assert_eq!(v["finding_info"]["related_events"][0]["uid"], "ev-1");
        assert_eq!(v["finding_info"]["attacks"][0]["technique"]["uid"], "T1078");
        assert_eq!(v["finding_info"]["uid"], f.uid.as_str());
        assert_eq!(v["unmapped"]["identity"], "alice@corp.example");
    }
}
