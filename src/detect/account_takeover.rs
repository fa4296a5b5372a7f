//! Account takeover incident (`account-takeover`): a risky sign-in finding followed, within
//! `window_hours` of event time, by a persistence or escalation step of the same identity —
//! a risky OAuth consent finding, or a raw credential creation (access key, login profile,
//! app secret), MFA change, privilege grant or consent event — becomes ONE critical finding
//! that references every piece of evidence known when it fires.
//!
//! Both halves are kept per identity in the state store, so the order they are processed in
//! does not matter (a follow-up delivered before the sign-in finding still correlates). Once
//! an incident is open for an identity, further risky sign-ins and follow-ups inside its
//! window are reported as updates of the open incident (`data.incident` = its uid), so a grant
//! made after the incident fired is contained too; a later window opens a new incident. The incident's uid derives from
//! the anchoring risky sign-in's evidence, so it is the same whichever follow-up came first;
//! its evidence is every piece known when it fires; an update carries everything known then
//! (risky sign-ins alone inside an open window are absorbed).
//!
//! Risky sign-in findings are recognised by [`RiskySignins`]: a configurable list of detector /
//! rule ids, a configurable list of tags in `finding.data.tags`, and a heuristic (ATT&CK T1078
//! with only sign-in evidence).
//!
//! To add a follow-up kind: map its `Activity` in [`follow_up_kind`], or list the detector
//! producing it in `followup_detectors`.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::history::{CachedState, DetectorConfigError};
use super::oauth_consent::span;
use super::{DetectContext, DetectError, Detector};
use crate::model::{
    Activity, Actor, Attack, Evidence, Finding, IdentityEvent, PrincipalType, Severity, Status,
    finding_uid,
};

/// Detector id.
pub const ID: &str = "account-takeover";
const NS: &str = "account-takeover";
const MAX_RISKY: usize = 8;
const MAX_FOLLOW_UPS: usize = 16;
const MAX_INCIDENTS: usize = 4;

/// Detector ids whose findings are risky sign-ins by default.
pub const DEFAULT_RISKY_SIGNIN_DETECTORS: &[&str] = &["impossible-travel"];
/// Tags (in a finding's `data.tags`) that mark a risky sign-in rule by default.
pub const DEFAULT_RISKY_SIGNIN_TAGS: &[&str] =
    &["picket.risky-signin", "risky-signin", "risky_signin"];
/// Detectors whose findings are follow-ups by default.
pub const DEFAULT_FOLLOWUP_DETECTORS: &[&str] = &["oauth-consent"];

/// Detectors whose findings are never risky sign-ins (they are follow-ups or context).
const NEVER_RISKY: &[&str] = &[ID, "oauth-consent", "new-country", "first-seen-asn"];

/// Recognises risky sign-in findings.
#[derive(Debug, Clone)]
pub struct RiskySignins {
    ids: Vec<String>,
    tags: Vec<String>,
    min_severity: Severity,
}

impl RiskySignins {
    /// From detector / rule ids and tags (both compared case-insensitively), and the least
    /// severity at which the ATT&CK heuristic counts a finding.
    pub fn new(ids: &[String], tags: &[String], min_severity: Severity) -> Self {
        RiskySignins {
            ids: ids.iter().map(|s| s.to_ascii_lowercase()).collect(),
            tags: tags.iter().map(|s| s.to_ascii_lowercase()).collect(),
            min_severity,
        }
    }

    /// Whether the finding is about a risky sign-in.
    pub fn is_risky_signin(&self, f: &Finding) -> bool {
        let detector = f.detector.to_ascii_lowercase();
        if NEVER_RISKY.contains(&detector.as_str()) {
            return false;
        }
        if self.ids.contains(&detector) {
            return true;
        }
        let tagged = f
            .data
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .any(|t| self.tags.contains(&t.to_ascii_lowercase()))
            });
        if tagged {
            return true;
        }
        // Heuristic: a Valid Accounts finding of at least `min_severity` built only on
        // sign-ins (Entra ID Protection risk, Google suspicious login, brute force then
        // success). The default (high) leaves out weaker signals such as a console login
        // without MFA.
        let valid_accounts = f.attacks.iter().any(|a| a.technique.starts_with("T1078"));
        valid_accounts
            && f.severity >= self.min_severity
            && !f.evidence.is_empty()
            && f.evidence.iter().all(|e| looks_like_signin(&e.action))
    }
}

fn looks_like_signin(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    ["sign-in", "signin", "consolelogin", "login", "logon"]
        .iter()
        .any(|k| a.contains(k))
}

/// The follow-up kind of a raw event, if it is one.
pub fn follow_up_kind(event: &IdentityEvent) -> Option<&'static str> {
    if event.status == Status::Failure {
        return None;
    }
    match event.activity {
        Activity::CredentialCreate => Some("credential_create"),
        Activity::MfaChange => Some("mfa_change"),
        Activity::PrivilegeGrant => Some("privilege_grant"),
        Activity::ConsentGrant => Some("consent_grant"),
        _ => None,
    }
}

/// `[detect.account_takeover]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountTakeoverConfig {
    /// How long (hours, event time) after a risky sign-in a follow-up step still correlates.
    pub window_hours: u64,
    /// Detector or rule ids whose findings are risky sign-ins.
    pub risky_signin_detectors: Vec<String>,
    /// Finding tags (`data.tags`, e.g. from a Sigma rule's `tags`) marking a risky sign-in.
    pub risky_signin_tags: Vec<String>,
    /// Least severity at which a Valid Accounts (T1078) finding built only on sign-ins counts
    /// as a risky sign-in without being listed.
    pub risky_signin_min_severity: Severity,
    /// Detector or rule ids whose findings are follow-up steps (besides raw events).
    pub followup_detectors: Vec<String>,
    /// How long an idle identity's correlation state stays in the store (days, wall clock).
    pub state_ttl_days: u64,
    /// Identities kept in the in-process state cache.
    pub cache_identities: usize,
}

impl Default for AccountTakeoverConfig {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        AccountTakeoverConfig {
            window_hours: 6,
            risky_signin_detectors: strings(DEFAULT_RISKY_SIGNIN_DETECTORS),
            risky_signin_tags: strings(DEFAULT_RISKY_SIGNIN_TAGS),
            risky_signin_min_severity: Severity::High,
            followup_detectors: strings(DEFAULT_FOLLOWUP_DETECTORS),
            state_ttl_days: 7,
            cache_identities: 100_000,
        }
    }
}

impl AccountTakeoverConfig {
    /// Validates the settings and builds the detector.
    pub fn build(&self) -> Result<AccountTakeover, DetectorConfigError> {
        if self.window_hours == 0 {
            return Err(DetectorConfigError {
                detector: ID,
                key: "window_hours".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(AccountTakeover {
            window_secs: self.window_hours as i64 * 3600,
            risky: RiskySignins::new(
                &self.risky_signin_detectors,
                &self.risky_signin_tags,
                self.risky_signin_min_severity,
            ),
            followup: self
                .followup_detectors
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            state: CachedState::new(
                ID,
                NS,
                self.cache_identities,
                Duration::days(self.state_ttl_days.max(1) as i64),
            ),
        })
    }
}

/// A risky sign-in finding, remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Risky {
    #[serde(rename = "u")]
    uid: String,
    #[serde(rename = "d")]
    detector: String,
    #[serde(rename = "s")]
    start: i64,
    #[serde(rename = "e")]
    end: i64,
    #[serde(rename = "v")]
    evidence: Vec<Evidence>,
}

/// A follow-up step, remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FollowUp {
    /// Event uid (or finding uid for multi-event findings).
    #[serde(rename = "u")]
    uid: String,
    #[serde(rename = "k")]
    kind: String,
    #[serde(rename = "t")]
    time: i64,
    #[serde(rename = "v")]
    evidence: Vec<Evidence>,
    /// For consents: the application (client) id granted, so a playbook can remove the grant.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    /// For consents: the application's display name (attacker-controlled).
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    app_name: Option<String>,
}

/// An incident already reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Incident {
    #[serde(rename = "s")]
    start: i64,
    #[serde(rename = "e")]
    end: i64,
    /// The incident finding's uid (updates refer to it).
    #[serde(rename = "u", default)]
    uid: String,
    /// Evidence uids of the anchoring risky sign-in (update uids derive from them).
    #[serde(rename = "a", default)]
    anchor: Vec<String>,
    /// Follow-ups already reported in this incident (the first finding or an update).
    #[serde(rename = "f", default)]
    reported: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct AtoState {
    #[serde(rename = "r", default)]
    risky: Vec<Risky>,
    #[serde(rename = "f", default)]
    follow_ups: Vec<FollowUp>,
    #[serde(rename = "i", default)]
    incidents: Vec<Incident>,
}

super::codec::json_stored!(AtoState);

enum Item {
    Risky(Risky),
    FollowUp(FollowUp),
}

/// The account-takeover correlation.
pub struct AccountTakeover {
    window_secs: i64,
    risky: RiskySignins,
    followup: Vec<String>,
    state: CachedState<AtoState>,
}

impl AccountTakeover {
    fn ingest(
        &mut self,
        key: &str,
        item: Item,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        let window = self.window_secs;
        self.state.update(key, cx, |s| {
            let changed = match &item {
                Item::Risky(r) => {
                    if s.risky.iter().any(|x| x.uid == r.uid) {
                        false
                    } else {
                        s.risky.push(r.clone());
                        s.risky.sort_by_key(|x| (x.start, x.uid.clone()));
                        if s.risky.len() > MAX_RISKY {
                            s.risky.remove(0);
                        }
                        true
                    }
                }
                Item::FollowUp(f) => match s.follow_ups.iter_mut().find(|x| x.uid == f.uid) {
                    Some(x) if x.kind != f.kind && f.kind == "risky_consent" => {
                        x.kind = f.kind.clone();
                        if x.app_id.is_none() {
                            x.app_id = f.app_id.clone();
                            x.app_name = f.app_name.clone();
                        }
                        true
                    }
                    Some(_) => false,
                    None => {
                        s.follow_ups.push(f.clone());
                        s.follow_ups.sort_by_key(|x| (x.time, x.uid.clone()));
                        if s.follow_ups.len() > MAX_FOLLOW_UPS {
                            s.follow_ups.remove(0);
                        }
                        true
                    }
                },
            };
            if !changed {
                return (Vec::new(), false);
            }
            let mut findings = Vec::new();
            let anchors: Vec<Risky> = s.risky.clone();
            for r in &anchors {
                let (start, end) = (r.start, r.end + window);
                if s.incidents
                    .iter()
                    .any(|i| r.start >= i.start && r.start <= i.end)
                {
                    continue;
                }
                let follow: Vec<&FollowUp> = s
                    .follow_ups
                    .iter()
                    .filter(|f| f.time >= start && f.time <= end)
                    .collect();
                if follow.is_empty() {
                    continue;
                }
                let risky: Vec<&Risky> = s
                    .risky
                    .iter()
                    .filter(|x| x.start >= start && x.start <= end)
                    .collect();
                // The incident is the risky sign-in plus the first step (in event time); each
                // later step is an update. Which findings exist then does not depend on the
                // order the pieces were processed in.
                let f = incident(key, window, r, &risky, &follow[..1]);
                let mut inc = Incident {
                    start,
                    end,
                    uid: f.uid.clone(),
                    anchor: r.evidence.iter().map(|e| e.uid.clone()).collect(),
                    reported: vec![follow[0].uid.clone()],
                };
                findings.push(f);
                for (i, extra) in follow.iter().enumerate().skip(1) {
                    findings.push(update(key, window, &inc, extra, &risky, &follow[..=i]));
                    inc.reported.push(extra.uid.clone());
                }
                s.incidents.push(inc);
                if s.incidents.len() > MAX_INCIDENTS {
                    s.incidents.remove(0);
                }
            }
            // A new step inside an incident already reported: an update, so the new grant or
            // key is contained too (and the Slack thread gets a follow-up).
            if let Item::FollowUp(new) = &item {
                let followups = s.follow_ups.clone();
                let risky_all = s.risky.clone();
                for inc in s.incidents.iter_mut() {
                    if new.time < inc.start
                        || new.time > inc.end
                        || inc.uid.is_empty()
                        || inc.reported.contains(&new.uid)
                        || findings.iter().any(|f| f.uid == inc.uid)
                    {
                        continue;
                    }
                    let follow: Vec<&FollowUp> = followups
                        .iter()
                        .filter(|f| f.time >= inc.start && f.time <= inc.end)
                        .filter(|f| (f.time, &f.uid) <= (new.time, &new.uid))
                        .collect();
                    let risky: Vec<&Risky> = risky_all
                        .iter()
                        .filter(|x| x.start >= inc.start && x.start <= inc.end)
                        .collect();
                    findings.push(update(key, window, inc, new, &risky, &follow));
                    inc.reported.push(new.uid.clone());
                }
            }
            (findings, true)
        })
    }
}

/// The incident finding. Its uid derives from the anchoring risky sign-in's evidence (not
/// from every piece), so the incident keeps its id whichever follow-up arrived first.
fn incident(
    key: &str,
    window: i64,
    anchor: &Risky,
    risky: &[&Risky],
    follow: &[&FollowUp],
) -> Finding {
    let mut evidence: Vec<Evidence> = Vec::new();
    for e in risky
        .iter()
        .flat_map(|r| r.evidence.iter())
        .chain(follow.iter().flat_map(|f| f.evidence.iter()))
    {
        if !evidence.iter().any(|x| x.uid == e.uid) {
            evidence.push(e.clone());
        }
    }
    evidence.sort_by(|a, b| (a.time, &a.uid).cmp(&(b.time, &b.uid)));
    let mut kinds: Vec<&str> = follow.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut f = Finding::new(
        ID,
        format!(
            "Account takeover: {key}: risky sign-in followed by {}",
            kinds.join(", ")
        ),
        Severity::Critical,
        evidence,
    );
    f.description = "A risky sign-in (impossible travel or a provider risk signal) was followed \
                     within hours by a step that keeps or widens access: an OAuth consent, a new \
                     access key or password, an MFA change or a privilege grant. Treat the \
                     account as compromised: revoke sessions, remove the new grants and keys, \
                     reset credentials and review what the sessions did."
        .into();
    f.uid = finding_uid(ID, anchor.evidence.iter().map(|e| e.uid.as_str()));
    f.identity = Some(key.to_string());
    f.actor = Some(Actor {
        key: key.to_string(),
        principal_type: PrincipalType::User,
        ..Actor::default()
    });
    f.attacks = vec![
        Attack {
            technique: "T1078.004".into(),
            tactic: Some("initial-access".into()),
        },
        Attack {
            technique: "T1098".into(),
            tactic: Some("persistence".into()),
        },
        Attack {
            technique: "T1528".into(),
            tactic: Some("credential-access".into()),
        },
    ];
    let data = json!({
        "risky_signins": risky.iter().map(|r| json!({"finding": r.uid, "detector": r.detector})).collect::<Vec<_>>(),
        "follow_ups": follow.iter().map(|f| json!({"uid": f.uid, "kind": f.kind, "time": f.evidence.first().map(|e| e.time)})).collect::<Vec<_>>(),
        "window_hours": window / 3600,
    });
    if let Value::Object(map) = data {
        f.data = map;
    }
    // The application of the newest consent step, for `entra_remove_oauth_grant` and friends.
    if let Some(step) = follow.iter().rev().find(|x| x.app_id.is_some()) {
        f.data.insert("app_id".into(), json!(step.app_id));
        if let Some(name) = &step.app_name {
            f.data.insert("app_name".into(), json!(name));
        }
    }
    f
}

/// An update of an open incident: everything known now, titled by the new step. Its uid
/// derives from the anchor and the new step; `data.incident` names the incident it updates.
fn update(
    key: &str,
    window: i64,
    inc: &Incident,
    new: &FollowUp,
    risky: &[&Risky],
    follow: &[&FollowUp],
) -> Finding {
    let anchor = Risky {
        uid: String::new(),
        detector: String::new(),
        start: inc.start,
        end: inc.end,
        evidence: Vec::new(),
    };
    let mut f = incident(key, window, &anchor, risky, follow);
    f.title = format!(
        "Account takeover (update): {key}: {} during the open incident",
        new.kind
    );
    f.uid = finding_uid(
        ID,
        inc.anchor
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(new.uid.as_str())),
    );
    f.data.insert("incident".into(), json!(inc.uid));
    f.data.insert("update_for".into(), json!(new.uid));
    f
}

impl Detector for AccountTakeover {
    fn id(&self) -> &str {
        ID
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
        let Some(kind) = follow_up_kind(event) else {
            return Ok(Vec::new());
        };
        if event.actor.key.is_empty() {
            return Ok(Vec::new());
        }
        let item = Item::FollowUp(FollowUp {
            uid: event.uid.clone(),
            kind: kind.to_string(),
            time: event.time.timestamp(),
            evidence: vec![Evidence::of(event)],
            app_id: event.oauth.as_ref().and_then(|o| o.app_id.clone()),
            app_name: event.oauth.as_ref().and_then(|o| o.app_name.clone()),
        });
        self.ingest(&event.actor.key, item, cx)
    }

    fn on_finding(
        &mut self,
        finding: &Finding,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        let Some(key) = finding.identity.clone().filter(|k| !k.is_empty()) else {
            return Ok(Vec::new());
        };
        let detector = finding.detector.to_ascii_lowercase();
        let (start, end) = span(finding);
        let item = if self.risky.is_risky_signin(finding) {
            Item::Risky(Risky {
                uid: finding.uid.clone(),
                detector: finding.detector.clone(),
                start: start.timestamp(),
                end: end.timestamp(),
                evidence: finding.evidence.clone(),
            })
        } else if self.followup.contains(&detector) {
            // One-event findings share the event's uid, so the raw event and its finding are
            // one follow-up.
            let uid = match finding.evidence.as_slice() {
                [one] => one.uid.clone(),
                _ => finding.uid.clone(),
            };
            let kind = if detector == "oauth-consent" {
                "risky_consent".to_string()
            } else {
                detector.clone()
            };
            let text = |k: &str| {
                finding
                    .data
                    .get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            Item::FollowUp(FollowUp {
                uid,
                kind,
                time: start.timestamp(),
                evidence: finding.evidence.clone(),
                app_id: text("app_id"),
                app_name: text("app_name"),
            })
        } else {
            return Ok(Vec::new());
        };
        self.ingest(&key, item, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, AuthFacts, Endpoint, EventClass, Provider, RecordKind};
    use crate::state::MemoryStore;
    use chrono::{DateTime, Utc};

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600 + min * 60, 0).unwrap()
    }

    fn event(uid: &str, min: i64, activity: Activity) -> IdentityEvent {
        IdentityEvent {
            time: t(min),
            kind: RecordKind::Cloudtrail,
            class: EventClass::AccountChange,
            activity,
            status: Status::Success,
            status_detail: None,
            account: None,
            region: None,
            actor: Actor {
                key: "carol@corp.example".into(),
                ..Actor::default()
            },
            src: Endpoint::default(),
            action: "CreateAccessKey".into(),
            service: None,
            targets: vec![],
            auth: AuthFacts::default(),
            oauth: None,
            uid: uid.into(),
            raw: crate::json::Raw::default(),
        }
    }

    fn ev(uid: &str, min: i64, action: &str) -> Evidence {
        Evidence {
            uid: uid.into(),
            time: t(min),
            provider: Provider::Entra,
            action: action.into(),
            success: true,
            src_ip: None,
            user_agent: None,
            geo: None,
            asn: None,
        }
    }

    fn travel(min: i64) -> Finding {
        let mut f = Finding::new(
            "impossible-travel",
            "travel",
            Severity::Medium,
            vec![
                ev("s1", min - 30, "Sign-in activity"),
                ev("s2", min, "Sign-in activity"),
            ],
        );
        f.identity = Some("carol@corp.example".into());
        f
    }

    fn setup() -> (MemoryStore, AccountTakeover) {
        (
            MemoryStore::new(),
            AccountTakeoverConfig::default().build().unwrap(),
        )
    }

    #[test]
    fn travel_then_key_creation_is_one_incident() {
        let (store, mut d) = setup();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        assert!(d.on_finding(&travel(0), &cx).unwrap().is_empty());
        let f = d
            .on_event(&event("k1", 30, Activity::CredentialCreate), &cx)
            .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].evidence.len(), 3);
        // A new follow-up inside the window is an update of the same incident.
        let u = d
            .on_event(&event("m1", 60, Activity::MfaChange), &cx)
            .unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].data["incident"], serde_json::json!(f[0].uid));
        assert_ne!(u[0].uid, f[0].uid);
        assert_eq!(u[0].evidence.len(), 4, "travel pair, key, MFA change");
        assert!(u[0].title.contains("update"));
        // A duplicate of the first follow-up is silent too.
        assert!(
            d.on_event(&event("k1", 30, Activity::CredentialCreate), &cx)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn reversed_order_gives_the_same_incident() {
        let (store, mut d) = setup();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        let first = d
            .on_event(&event("k1", 30, Activity::CredentialCreate), &cx)
            .unwrap();
        assert!(first.is_empty());
        let f = d.on_finding(&travel(0), &cx).unwrap();
        assert_eq!(f.len(), 1);
        let (store2, mut d2) = setup();
        let cx2 = DetectContext {
            state: &store2,
            now: t(0),
        };
        d2.on_finding(&travel(0), &cx2).unwrap();
        let g = d2
            .on_event(&event("k1", 30, Activity::CredentialCreate), &cx2)
            .unwrap();
        assert_eq!(f, g);
    }

    #[test]
    fn outside_the_window_or_failed_or_other_identity_is_not_an_incident() {
        let (store, mut d) = setup();
        let cx = DetectContext {
            state: &store,
            now: t(0),
        };
        d.on_finding(&travel(0), &cx).unwrap();
        assert!(
            d.on_event(&event("late", 7 * 60, Activity::PrivilegeGrant), &cx)
                .unwrap()
                .is_empty()
        );
        let mut failed = event("failed", 10, Activity::CredentialCreate);
        failed.status = Status::Failure;
        assert!(d.on_event(&failed, &cx).unwrap().is_empty());
        let mut other = event("other", 10, Activity::CredentialCreate);
        other.actor.key = "dave@corp.example".into();
        assert!(d.on_event(&other, &cx).unwrap().is_empty());
        let before = event("before", -120, Activity::CredentialCreate);
        assert!(d.on_event(&before, &cx).unwrap().is_empty());
    }

    #[test]
    fn risky_signin_recognition() {
        let r = RiskySignins::new(
            &["rule-123".into()],
            &["picket.risky-signin".into()],
            Severity::High,
        );
        let mut f = Finding::new("rule-123", "x", Severity::Low, vec![]);
        assert!(r.is_risky_signin(&f));
        f.detector = "other".into();
        assert!(!r.is_risky_signin(&f));
        f.data.insert(
            "tags".into(),
            json!(["attack.t1078", "picket.risky-signin"]),
        );
        assert!(r.is_risky_signin(&f));
        let mut h = Finding::new(
            "entra-risky",
            "x",
            Severity::High,
            vec![ev("a", 0, "Sign-in activity")],
        );
        h.attacks = Attack::from_tags(["attack.initial-access", "attack.t1078.004"]);
        assert!(r.is_risky_signin(&h));
        h.severity = Severity::Medium;
        assert!(!r.is_risky_signin(&h), "below the heuristic's severity");
        h.severity = Severity::High;
        h.evidence = vec![ev("b", 0, "CreateAccessKey")];
        assert!(!r.is_risky_signin(&h));
        let consent = Finding::new("oauth-consent", "x", Severity::High, vec![]);
        assert!(
            !RiskySignins::new(&["oauth-consent".into()], &[], Severity::High)
                .is_risky_signin(&consent)
        );
    }
}
