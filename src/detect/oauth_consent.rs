//! Risky OAuth consent (`oauth-consent`): a consent or authorization that grants a risky
//! scope (mail, files, chat, contacts, directory write, Gmail, Drive, admin directory ...) to
//! an application that is not on `allowed_apps`.
//!
//! Consent events are `Activity::ConsentGrant` events with `event.oauth` (Entra `Consent to
//! application`, `Add delegated permission grant`, `Add app role assignment to service
//! principal`; Google token `authorize`). Scopes compare case-insensitively, with the Graph
//! (`https://graph.microsoft.com/`) and Google (`https://www.googleapis.com/auth/`) prefixes
//! removed, so `https://graph.microsoft.com/Mail.Read`, `Mail.Read` and `mail.read` are one
//! scope. A pattern ending in `*` matches by prefix. `offline_access` counts only together
//! with another risky scope.
//!
//! Severity starts at medium and rises one step for each of: the app is first seen in the
//! tenant (a state-store mark), the publisher is known to be unverified, the consent is an
//! admin consent or for all principals, and the consent follows a risky sign-in finding for
//! the same identity within `risky_signin_window_hours` (event time; remembered from
//! `on_finding`).
//!
//! To add a default risky scope: one line in [`DEFAULT_RISKY_SCOPES`] and a case in the tests.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::account_takeover::{
    DEFAULT_RISKY_SIGNIN_DETECTORS, DEFAULT_RISKY_SIGNIN_TAGS, RiskySignins,
};
use super::history::{CachedState, DetectorConfigError};
use super::{DetectContext, DetectError, Detector};
use crate::model::{Activity, Attack, Evidence, Finding, IdentityEvent, Severity, Status};

/// Detector id.
pub const ID: &str = "oauth-consent";
const NS_APPS: &str = "oauth-consent-app";
const NS_RISK: &str = "oauth-consent-risk";
/// Risky sign-ins remembered per identity.
const MAX_RISK_MARKS: usize = 8;

/// Scopes that let an application read or change a person's mail, files, chats or contacts,
/// or the directory. Normalized form (see the module docs).
pub const DEFAULT_RISKY_SCOPES: &[&str] = &[
    // Microsoft Graph / Exchange
    "mail.*",
    "files.*",
    "notes.*",
    "chat.*",
    "chatmessage.*",
    "channelmessage.*",
    "contacts.*",
    "mailboxsettings.*",
    "sites.readwrite.all",
    "sites.fullcontrol.all",
    "directory.readwrite.all",
    "directory.accessasuser.all",
    "user.readwrite.all",
    "group.readwrite.all",
    "groupmember.readwrite.all",
    "application.readwrite.all",
    "approleassignment.readwrite.all",
    "rolemanagement.readwrite.directory",
    "domain.readwrite.all",
    "policy.readwrite.*",
    "ews.accessasuser.all",
    "imap.accessasuser.all",
    "pop.accessasuser.all",
    "smtp.send",
    "full_access_as_app",
    // Google
    "https://mail.google.com/",
    "gmail.*",
    "drive",
    "drive.*",
    "admin.directory.*",
    "cloud-platform",
];

/// Prefixes removed from scopes and patterns before comparing.
const SCOPE_PREFIXES: &[&str] = &[
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000/",
    "https://outlook.office365.com/",
    "https://outlook.office.com/",
    "https://www.googleapis.com/auth/",
];

/// `[detect.oauth_consent]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OauthConsentConfig {
    /// Application (client) ids that may be granted risky scopes (compared case-insensitively).
    pub allowed_apps: Vec<String>,
    /// Risky scopes (`Mail.Read`, `mail.*`, full URIs). When set, replaces the default list.
    pub risky_scopes: Option<Vec<String>>,
    /// A consent this long (hours, event time) after a risky sign-in finding for the same
    /// identity raises severity.
    pub risky_signin_window_hours: u64,
    /// Detector or rule ids whose findings are risky sign-ins.
    pub risky_signin_detectors: Vec<String>,
    /// Finding tags (`data.tags`) that mark a risky sign-in finding.
    pub risky_signin_tags: Vec<String>,
    /// Least severity at which a Valid Accounts (T1078) finding built only on sign-ins counts
    /// as a risky sign-in without being listed.
    pub risky_signin_min_severity: Severity,
    /// How long the first-seen app marks live (days, wall clock).
    pub app_memory_days: u64,
    /// Identities kept in the in-process state cache.
    pub cache_identities: usize,
}

impl Default for OauthConsentConfig {
    fn default() -> Self {
        OauthConsentConfig {
            allowed_apps: Vec::new(),
            risky_scopes: None,
            risky_signin_window_hours: 6,
            risky_signin_detectors: DEFAULT_RISKY_SIGNIN_DETECTORS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            risky_signin_tags: DEFAULT_RISKY_SIGNIN_TAGS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            risky_signin_min_severity: Severity::High,
            app_memory_days: 365,
            cache_identities: 100_000,
        }
    }
}

impl OauthConsentConfig {
    /// Validates the settings and builds the detector.
    pub fn build(&self) -> Result<OauthConsent, DetectorConfigError> {
        let patterns: Vec<String> = match &self.risky_scopes {
            Some(list) => list.iter().map(|s| normalize_scope(s)).collect(),
            None => DEFAULT_RISKY_SCOPES
                .iter()
                .map(|s| normalize_scope(s))
                .collect(),
        };
        if let Some(bad) = patterns.iter().find(|p| p.is_empty() || p.as_str() == "*") {
            return Err(DetectorConfigError {
                detector: ID,
                key: "risky_scopes".into(),
                message: format!("pattern {bad:?} would match nothing or everything"),
            });
        }
        if self.risky_signin_window_hours == 0 {
            return Err(DetectorConfigError {
                detector: ID,
                key: "risky_signin_window_hours".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(OauthConsent {
            allowed: self
                .allowed_apps
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
            patterns,
            window: Duration::hours(self.risky_signin_window_hours as i64),
            app_ttl: Duration::days(self.app_memory_days.max(1) as i64),
            risky: RiskySignins::new(
                &self.risky_signin_detectors,
                &self.risky_signin_tags,
                self.risky_signin_min_severity,
            ),
            marks: CachedState::new(
                ID,
                NS_RISK,
                self.cache_identities,
                Duration::hours(self.risky_signin_window_hours as i64 + 24),
            ),
        })
    }
}

/// Lowercases a scope and removes the Graph / Google URI prefixes.
pub fn normalize_scope(scope: &str) -> String {
    let s = scope.trim().to_lowercase();
    for p in SCOPE_PREFIXES {
        if let Some(rest) = s.strip_prefix(p)
            && !rest.is_empty()
        {
            return rest.to_string();
        }
    }
    s
}

fn scope_matches(pattern: &str, scope: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => scope.starts_with(prefix),
        None => scope == pattern,
    }
}

/// A risky sign-in finding remembered for an identity (event-time span of its evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RiskMark {
    #[serde(rename = "u")]
    uid: String,
    #[serde(rename = "s")]
    start: i64,
    #[serde(rename = "e")]
    end: i64,
}

super::codec::json_stored!(Vec<RiskMark>);

/// The risky OAuth consent detector.
pub struct OauthConsent {
    allowed: Vec<String>,
    patterns: Vec<String>,
    window: Duration,
    app_ttl: Duration,
    risky: RiskySignins,
    marks: CachedState<Vec<RiskMark>>,
}

impl OauthConsent {
    /// The risky scopes among `scopes` (as logged), `offline_access` included only when
    /// another one is risky.
    pub fn risky_scopes(&self, scopes: &[String]) -> Vec<String> {
        let all: Vec<String> = scopes
            .iter()
            .flat_map(|s| s.split(|c: char| c.is_whitespace() || c == ','))
            .filter(|s| !s.is_empty())
            .map(normalize_scope)
            .collect();
        let mut risky: Vec<String> = all
            .iter()
            .filter(|s| s.as_str() != "offline_access")
            .filter(|s| self.patterns.iter().any(|p| scope_matches(p, s)))
            .cloned()
            .collect();
        if !risky.is_empty() && all.iter().any(|s| s == "offline_access") {
            risky.push("offline_access".into());
        }
        risky.sort();
        risky.dedup();
        risky
    }

    fn first_seen_app(
        &self,
        tenant: &str,
        app: &str,
        event: &IdentityEvent,
        cx: &DetectContext<'_>,
    ) -> Result<bool, DetectError> {
        let key = format!("{tenant}/{}", app.to_ascii_lowercase());
        let err = |source| DetectError::State {
            detector: ID.into(),
            source,
        };
        let expires = Some(cx.now + self.app_ttl);
        if cx
            .state
            .put_if_absent(NS_APPS, &key, event.uid.as_bytes(), expires, cx.now)
            .map_err(err)?
        {
            return Ok(true);
        }
        // Seen before: first-seen only if this very event set the mark (a re-run).
        Ok(cx
            .state
            .get(NS_APPS, &key, cx.now)
            .map_err(err)?
            .is_some_and(|v| v.value == event.uid.as_bytes()))
    }
}

impl Detector for OauthConsent {
    fn id(&self) -> &str {
        ID
    }

    fn set_write_back(&mut self, on: bool) {
        self.marks.set_write_back(on);
    }

    fn flush(&mut self, cx: &DetectContext<'_>) -> Result<(), DetectError> {
        self.marks.flush(cx)
    }

    fn discard(&mut self) {
        self.marks.discard();
    }

    fn wants_flush(&self) -> bool {
        self.marks.is_full_of_changes()
    }

    fn on_event(
        &mut self,
        event: &IdentityEvent,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        if event.activity != Activity::ConsentGrant || event.status == Status::Failure {
            return Ok(Vec::new());
        }
        let Some(grant) = &event.oauth else {
            return Ok(Vec::new());
        };
        let app = grant
            .app_id
            .as_deref()
            .or(grant.app_name.as_deref())
            .unwrap_or("unknown-app")
            .trim()
            .to_string();
        let tenant = event
            .account
            .as_deref()
            .or(event.actor.account.as_deref())
            .unwrap_or("-")
            .to_string();
        // Mark every consented app (allowed or not), so "first seen" means first seen.
        let first_seen = self.first_seen_app(&tenant, &app, event, cx)?;
        let allowed = grant
            .app_id
            .as_deref()
            .is_some_and(|id| self.allowed.contains(&id.trim().to_ascii_lowercase()));
        let risky = self.risky_scopes(&grant.scopes);
        if allowed || risky.is_empty() {
            return Ok(Vec::new());
        }
        let mut severity = Severity::Medium;
        let mut reasons = Vec::new();
        if first_seen {
            severity = severity.raise();
            reasons.push("first_seen_app".to_string());
        }
        if grant.publisher_verified == Some(false) {
            severity = severity.raise();
            reasons.push("unverified_publisher".to_string());
        }
        if grant.admin_consent || grant.all_principals {
            severity = severity.raise();
            reasons.push("admin_consent".to_string());
        }
        let key = event.actor.key.clone();
        let mut after = None;
        if !key.is_empty() {
            let t = event.time.timestamp();
            let window = self.window.num_seconds();
            let marks = self.marks.read_fresh(&key, cx)?;
            after = marks
                .iter()
                .find(|m| t >= m.start && t <= m.end + window)
                .map(|m| m.uid.clone());
        }
        if let Some(uid) = &after {
            severity = severity.raise();
            reasons.push(format!("after_risky_signin:{uid}"));
        }
        let app_label = grant.app_name.as_deref().unwrap_or(app.as_str());
        let who = if key.is_empty() {
            "someone"
        } else {
            key.as_str()
        };
        let mut f = Finding::new(
            ID,
            format!(
                "Risky OAuth consent: {who} granted {} to app {app_label:?}",
                risky.join(", ")
            ),
            severity,
            vec![Evidence::of(event)],
        );
        f.description = "An application that is not on the allowed list was granted access to \
                         mail, files, chats or the directory. Illicit consent grants keep an \
                         attacker's access after a password reset: review the app, remove the \
                         grant and the service principal if it is not known."
            .to_string();
        f.identity = (!key.is_empty()).then_some(key);
        f.actor = Some(event.actor.clone());
        f.attacks = vec![
            Attack {
                technique: "T1528".into(),
                tactic: Some("credential-access".into()),
            },
            Attack {
                technique: "T1550.001".into(),
                tactic: Some("defense-evasion".into()),
            },
        ];
        let data = json!({
            "tenant": tenant,
            "app_id": grant.app_id,
            "app_name": grant.app_name,
            "scopes": grant.scopes,
            "risky_scopes": risky,
            "admin_consent": grant.admin_consent,
            "all_principals": grant.all_principals,
            "publisher_verified": grant.publisher_verified,
            "first_seen_app": first_seen,
            "after_risky_signin": after,
            "severity_reasons": reasons,
        });
        if let Value::Object(map) = data {
            f.data = map;
        }
        Ok(vec![f])
    }

    fn on_finding(
        &mut self,
        finding: &Finding,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        if finding.detector == ID || !self.risky.is_risky_signin(finding) {
            return Ok(Vec::new());
        }
        let Some(key) = finding.identity.as_deref().filter(|k| !k.is_empty()) else {
            return Ok(Vec::new());
        };
        let (start, end) = span(finding);
        let mark = RiskMark {
            uid: finding.uid.clone(),
            start: start.timestamp(),
            end: end.timestamp(),
        };
        self.marks.update(key, cx, |m| {
            if m.iter().any(|x| x.uid == mark.uid) {
                return ((), false);
            }
            m.push(mark.clone());
            m.sort_by_key(|x| x.end);
            if m.len() > MAX_RISK_MARKS {
                m.remove(0);
            }
            ((), true)
        })?;
        Ok(Vec::new())
    }
}

/// The event-time span of a finding's evidence (its time when it has none).
pub(crate) fn span(finding: &Finding) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = finding
        .evidence
        .iter()
        .map(|e| e.time)
        .min()
        .unwrap_or(finding.time);
    let end = finding
        .evidence
        .iter()
        .map(|e| e.time)
        .max()
        .unwrap_or(finding.time);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, AuthFacts, Endpoint, EventClass, OAuthGrant, RecordKind};
    use crate::state::MemoryStore;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600 + min * 60, 0).unwrap()
    }

    fn consent(uid: &str, min: i64, app: &str, scopes: &[&str]) -> IdentityEvent {
        IdentityEvent {
            time: t(min),
            kind: RecordKind::EntraAudit,
            class: EventClass::UserAccess,
            activity: Activity::ConsentGrant,
            status: Status::Success,
            status_detail: None,
            account: Some("tenant-1".into()),
            region: None,
            actor: Actor {
                key: "bob@corp.example".into(),
                ..Actor::default()
            },
            src: Endpoint::default(),
            action: "Consent to application".into(),
            service: None,
            targets: vec![],
            auth: AuthFacts::default(),
            oauth: Some(OAuthGrant {
                app_id: Some(app.into()),
                app_name: Some("Mail Helper".into()),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                ..OAuthGrant::default()
            }),
            uid: uid.into(),
            raw: crate::json::Raw::default(),
        }
    }

    fn detector(cfg: OauthConsentConfig) -> OauthConsent {
        cfg.build().unwrap()
    }

    #[test]
    fn scopes_normalize_and_match() {
        let d = detector(OauthConsentConfig::default());
        let s = |v: &[&str]| d.risky_scopes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            s(&["https://graph.microsoft.com/Mail.Read"]),
            vec!["mail.read"]
        );
        assert_eq!(
            s(&["openid profile User.Read offline_access"]),
            Vec::<String>::new()
        );
        assert_eq!(
            s(&["Files.ReadWrite.All offline_access"]),
            vec!["files.readwrite.all", "offline_access"]
        );
        assert_eq!(
            s(&["https://mail.google.com/"]),
            vec!["https://mail.google.com/"]
        );
        assert_eq!(
            s(&["https://www.googleapis.com/auth/gmail.readonly"]),
            vec!["gmail.readonly"]
        );
        assert_eq!(
            s(&["https://www.googleapis.com/auth/drive.file"]),
            vec!["drive.file"]
        );
        assert_eq!(
            s(&["DIRECTORY.READWRITE.ALL"]),
            vec!["directory.readwrite.all"]
        );
        assert!(s(&["Directory.Read.All", "email"]).is_empty());
    }

    #[test]
    fn allowed_apps_and_harmless_scopes_are_quiet() {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        let mut d = detector(OauthConsentConfig {
            allowed_apps: vec!["27922004-5251-4030-B22D-91ECD9A37EA4".into()],
            ..OauthConsentConfig::default()
        });
        let ok = consent(
            "a",
            0,
            "27922004-5251-4030-b22d-91ecd9a37ea4",
            &["Mail.ReadWrite"],
        );
        assert!(d.on_event(&ok, &cx).unwrap().is_empty());
        let harmless = consent("b", 0, "other", &["User.Read", "offline_access"]);
        assert!(d.on_event(&harmless, &cx).unwrap().is_empty());
        let bad = consent("c", 0, "evil", &["Mail.Read", "offline_access"]);
        let f = d.on_event(&bad, &cx).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::High, "first-seen app raises");
    }

    #[test]
    fn custom_list_replaces_defaults() {
        let d = detector(OauthConsentConfig {
            risky_scopes: Some(vec!["https://graph.microsoft.com/User.Read".into()]),
            ..OauthConsentConfig::default()
        });
        assert_eq!(d.risky_scopes(&["user.read".into()]), vec!["user.read"]);
        assert!(d.risky_scopes(&["Mail.Read".into()]).is_empty());
    }

    #[test]
    fn severity_signals_and_rerun() {
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        let mut d = detector(OauthConsentConfig::default());
        // A risky sign-in finding for bob at minute 0..10.
        let mut travel = Finding::new(
            "impossible-travel",
            "x",
            Severity::Medium,
            vec![
                Evidence::of(&consent("s1", 0, "x", &[])),
                Evidence::of(&consent("s2", 10, "x", &[])),
            ],
        );
        travel.identity = Some("bob@corp.example".into());
        d.on_finding(&travel, &cx).unwrap();
        let mut e = consent("c", 120, "evil", &["Mail.Send"]);
        if let Some(g) = e.oauth.as_mut() {
            g.admin_consent = true;
            g.publisher_verified = Some(false);
        }
        let f = d.on_event(&e, &cx).unwrap();
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].data["severity_reasons"].as_array().unwrap().len(), 4);
        // The same event again: the same finding, same severity (first-seen mark is its own).
        let again = d.on_event(&e, &cx).unwrap();
        assert_eq!(again, f);
        // Outside the window (7 h after the sign-ins): no after_risky_signin.
        let late = consent("d", 10 + 7 * 60, "evil", &["Mail.Send"]);
        let f = d.on_event(&late, &cx).unwrap();
        assert!(f[0].data["after_risky_signin"].is_null());
        assert_eq!(f[0].severity, Severity::Medium);
    }
}
