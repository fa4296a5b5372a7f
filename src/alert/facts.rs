//! What a human-facing alert (Slack, email) says about a finding, extracted once and raw;
//! each notifier escapes every string for its own target.

use serde::{Deserialize, Serialize};

use crate::model::Finding;

/// The key in `Finding::data` where the Responder records what it did or planned.
pub const RESPONSE_KEY: &str = "response";

/// One response step, as attached to a finding by the Responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseNote {
    /// Ledger id (for `picket respond undo ID`).
    pub id: String,
    /// Action name.
    pub action: String,
    /// The principal acted on.
    pub target: String,
    /// `planned`, `applied`, `verified`, `skipped`, `failed`, ...
    pub status: String,
    /// Why (for skipped and failed steps).
    #[serde(default)]
    pub reason: Option<String>,
    /// The command that reverses it, when one does.
    #[serde(default)]
    pub undo: Option<String>,
}

/// One place a piece of evidence came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// `City, CC` or `CC` or `unknown`.
    pub label: String,
    /// Source address.
    pub ip: Option<String>,
    /// Event time, RFC 3339.
    pub time: String,
    /// The operation.
    pub action: String,
    /// Whether it succeeded.
    pub success: bool,
    /// User agent (attacker-controlled).
    pub user_agent: Option<String>,
    /// `lat,lon` for a map link.
    pub coords: Option<(f64, f64)>,
}

/// Everything a human-facing alert shows, unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Title.
    pub title: String,
    /// `HIGH`, ...
    pub severity: String,
    /// Detector id.
    pub detector: String,
    /// Finding uid.
    pub uid: String,
    /// Identity key, or the actor's uid.
    pub identity: String,
    /// Distance in km, when the detector measured one.
    pub distance_km: Option<f64>,
    /// Speed in km/h, when the detector measured one.
    pub speed_kmh: Option<f64>,
    /// Evidence, oldest first, at most [`MAX_EVIDENCE`].
    pub places: Vec<Place>,
    /// Evidence items not shown.
    pub more_evidence: usize,
    /// ATT&CK technique ids (with tactic).
    pub attacks: Vec<String>,
    /// What picket did or planned.
    pub response: Vec<ResponseNote>,
    /// Description.
    pub description: String,
}

/// Evidence items shown in full.
pub const MAX_EVIDENCE: usize = 5;

fn num(f: &Finding, key: &str) -> Option<f64> {
    f.data.get(key).and_then(|v| v.as_f64())
}

/// Reads the response notes attached to a finding.
pub fn response_notes(f: &Finding) -> Vec<ResponseNote> {
    f.data
        .get(RESPONSE_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

impl Facts {
    /// Extracts the facts of a finding.
    pub fn of(f: &Finding) -> Facts {
        let mut ev: Vec<_> = f.evidence.iter().collect();
        ev.sort_by_key(|e| e.time);
        let places = ev
            .iter()
            .take(MAX_EVIDENCE)
            .map(|e| Place {
                label: e
                    .geo
                    .as_ref()
                    .map(|g| match (&g.city, &g.country) {
                        (Some(c), Some(cc)) => format!("{c}, {cc}"),
                        (None, Some(cc)) => cc.clone(),
                        (Some(c), None) => c.clone(),
                        (None, None) => format!("{:.2},{:.2}", g.lat, g.lon),
                    })
                    .unwrap_or_else(|| "unknown location".into()),
                ip: e.src_ip.clone(),
                time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                action: e.action.clone(),
                success: e.success,
                user_agent: e.user_agent.clone(),
                coords: e.geo.as_ref().map(|g| (g.lat, g.lon)),
            })
            .collect();
        Facts {
            title: f.title.clone(),
            severity: f.severity.as_str().to_uppercase(),
            detector: f.detector.clone(),
            uid: f.uid.clone(),
            identity: f
                .identity
                .clone()
                .or_else(|| f.actor.as_ref().map(|a| a.key.clone()))
                .unwrap_or_else(|| "-".into()),
            distance_km: num(f, "distance_km"),
            speed_kmh: num(f, "speed_kmh"),
            places,
            more_evidence: f.evidence.len().saturating_sub(MAX_EVIDENCE),
            attacks: f
                .attacks
                .iter()
                .map(|a| match &a.tactic {
                    Some(t) => format!("{} ({t})", a.technique),
                    None => a.technique.clone(),
                })
                .collect(),
            response: response_notes(f),
            description: f.description.clone(),
        }
    }

    /// The plain-text rendering (email text part), every field escaped for a terminal.
    pub fn plain_text(&self) -> String {
        use super::escape::terminal as t;
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "[{}] {}", self.severity, t(&self.title));
        let _ = writeln!(s, "identity: {}", t(&self.identity));
        let _ = writeln!(
            s,
            "detector: {}  finding: {}",
            t(&self.detector),
            t(&self.uid)
        );
        if let (Some(d), Some(v)) = (self.distance_km, self.speed_kmh) {
            let _ = writeln!(s, "distance: {d:.0} km at {v:.0} km/h");
        }
        for p in &self.places {
            let _ = writeln!(
                s,
                "- {} {} from {} ({}){}",
                t(&p.time),
                t(&p.action),
                t(p.ip.as_deref().unwrap_or("-")),
                t(&p.label),
                if p.success { "" } else { " FAILED" }
            );
        }
        if self.more_evidence > 0 {
            let _ = writeln!(s, "... and {} more events", self.more_evidence);
        }
        if !self.attacks.is_empty() {
            let _ = writeln!(s, "ATT&CK: {}", t(&self.attacks.join(", ")));
        }
        for r in &self.response {
            let _ = writeln!(
                s,
                "picket: {} {} on {}{}{}",
                t(&r.status),
                t(&r.action),
                t(&r.target),
                r.reason
                    .as_deref()
                    .map(|x| format!(" ({})", t(x)))
                    .unwrap_or_default(),
                r.undo
                    .as_deref()
                    .map(|u| format!("; undo: {}", t(u)))
                    .unwrap_or_default()
            );
        }
        if !self.description.is_empty() {
            let _ = writeln!(s, "\n{}", t(&self.description));
        }
        s
    }
}
