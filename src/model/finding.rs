//! `Finding`: what a detector reports. Rendered as an OCSF Detection Finding by `ocsf.rs`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::{Actor, Asn, GeoLocation, IdentityEvent, Provider};

/// Finding severity, in OCSF's scale.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    #[default]
    Informational,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: &'static [Severity] = &[
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// OCSF `severity_id`.
    pub fn id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// Lowercase name, as in config and Sigma `level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a config or Sigma level (`informational`, `low`, ..., `critical`).
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .iter()
            .copied()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// One step up, saturating at critical.
    pub fn raise(self) -> Severity {
        match self {
            Severity::Informational => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A MITRE ATT&CK technique a finding maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attack {
    /// Technique id, e.g. `T1078.004`.
    pub technique: String,
    /// Tactic name, e.g. `initial-access`, when known.
    pub tactic: Option<String>,
}

impl Attack {
    /// Parses Sigma-style tags (`attack.t1078.004`, `attack.initial-access`) into techniques,
    /// attaching the first tactic tag to each technique.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<Attack> {
        let mut techniques = Vec::new();
        let mut tactic = None;
        for tag in tags {
            let Some(rest) = tag.strip_prefix("attack.") else {
                continue;
            };
            let is_technique = rest.len() >= 5
                && rest.as_bytes()[0].eq_ignore_ascii_case(&b't')
                && rest[1..5].bytes().all(|b| b.is_ascii_digit());
            if is_technique {
                techniques.push(rest.to_ascii_uppercase());
            } else if tactic.is_none() && !rest.starts_with('g') && !rest.starts_with('s') {
                tactic = Some(rest.to_string());
            }
        }
        techniques
            .into_iter()
            .map(|technique| Attack {
                technique,
                tactic: tactic.clone(),
            })
            .collect()
    }
}

/// One piece of evidence: an event a finding is built on, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The provider event id.
    pub uid: String,
    /// Event time.
    pub time: DateTime<Utc>,
    /// Provider.
    pub provider: Provider,
    /// The operation (eventName, activityDisplayName, ...).
    pub action: String,
    /// Success of the operation.
    pub success: bool,
    /// Source address as logged.
    pub src_ip: Option<String>,
    /// User agent as logged (attacker-controlled).
    pub user_agent: Option<String>,
    /// Location of the source address.
    pub geo: Option<GeoLocation>,
    /// Network of the source address.
    pub asn: Option<Asn>,
}

impl Evidence {
    /// Summarises an event as evidence.
    pub fn of(event: &IdentityEvent) -> Evidence {
        Evidence {
            uid: event.uid.clone(),
            time: event.time,
            provider: event.provider(),
            action: event.action.clone(),
            success: event.status == super::event::Status::Success,
            src_ip: event
                .src
                .ip
                .map(|ip| ip.to_string())
                .or_else(|| event.src.raw.clone()),
            user_agent: event.src.user_agent.clone(),
            geo: event.src.geo.clone(),
            asn: event.src.asn.clone(),
        }
    }
}

/// What a detector found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic id: the same detector and evidence always give the same uid.
    pub uid: String,
    /// Detector id (`impossible-travel`, ...) or Sigma rule id.
    pub detector: String,
    /// One-line title.
    pub title: String,
    /// Why it matters and what to do.
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Event time of the newest evidence.
    pub time: DateTime<Utc>,
    /// The identity key the finding is about, when it is about one.
    pub identity: Option<String>,
    /// The actor of the (newest) evidence.
    pub actor: Option<Actor>,
    /// ATT&CK techniques.
    pub attacks: Vec<Attack>,
    /// The events it is built on.
    pub evidence: Vec<Evidence>,
    /// Detector-specific facts (distance, speed, scopes, counts).
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Finding {
    /// Builds a finding whose uid derives from `detector` and the evidence uids, so a replay
    /// of the same events produces the same id.
    pub fn new(
        detector: impl Into<String>,
        title: impl Into<String>,
        severity: Severity,
        evidence: Vec<Evidence>,
    ) -> Finding {
        let detector = detector.into();
        let uid = finding_uid(&detector, evidence.iter().map(|e| e.uid.as_str()));
        let time = evidence
            .iter()
            .map(|e| e.time)
            .max()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        Finding {
            uid,
            detector,
            title: title.into(),
            description: String::new(),
            severity,
            time,
            identity: None,
            actor: None,
            attacks: Vec::new(),
            evidence,
            data: serde_json::Map::new(),
        }
    }
}

/// The deterministic finding id: SHA-256 over the detector id and the sorted evidence uids.
pub fn finding_uid<'a>(detector: &str, evidence: impl IntoIterator<Item = &'a str>) -> String {
    let mut uids: Vec<&str> = evidence.into_iter().collect();
    uids.sort_unstable();
    uids.dedup();
    let mut h = Sha256::new();
    h.update(detector.as_bytes());
    for uid in uids {
        h.update([0u8]);
        h.update(uid.as_bytes());
    }
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_uid_ignores_evidence_order() {
        assert_eq!(
            finding_uid("impossible-travel", ["a", "b"]),
            finding_uid("impossible-travel", ["b", "a"])
        );
        assert_ne!(
            finding_uid("impossible-travel", ["a", "b"]),
            finding_uid("oauth-consent", ["a", "b"])
        );
    }

    #[test]
    fn attack_tags_parse() {
        let a = Attack::from_tags(["attack.initial-access", "attack.t1078.004", "attack.t1110"]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].technique, "T1078.004");
        assert_eq!(a[0].tactic.as_deref(), Some("initial-access"));
    }

    #[test]
    fn severity_orders_and_raises() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!(Severity::High.raise(), Severity::Critical);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
    }
}
