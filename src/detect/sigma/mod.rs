//! Sigma rules (spec v2) over raw records: the engine behind `detections/` and SigmaHQ's
//! cloud rules, loaded unmodified.
//!
//! - [`pattern`], [`path`], [`condition`], [`detection`]: the matching engine (modifiers,
//!   wildcards, conditions), compiled once per rule.
//! - [`mapping`]: logsource -> record kinds and Sigma field -> raw path
//!   (`detections/mappings/*.yml`).
//! - [`rule`], [`ruleset`]: documents -> rules and correlations, the rule index.
//! - [`correlation`]: event_count / value_count / temporal / temporal_ordered windows in the
//!   state store.
//! - [`author`]: `picket rules test | lint | list`.
//! - [`SigmaDetector`]: the [`Detector`] (id `sigma`) that runs it all and applies the
//!   per-rule `picket: {dedup: ...}` suppression.
//!
//! To support one more Sigma feature: implement it in the engine module it belongs to and add
//! it to the tests there; anything not implemented must fail rule loading with its name.

pub mod author;
pub mod condition;
pub mod correlation;
pub mod detection;
pub mod mapping;
pub mod path;
pub mod pattern;
pub mod rule;
pub mod ruleset;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::json::{JsonValueTrait, Raw};

use crate::detect::{DetectContext, DetectError, Detector};
use crate::model::{Attack, Evidence, Finding, IdentityEvent, RecordKind, Severity, finding_uid};
use crate::state::{CasOutcome, StateStore};
use correlation::{Observation, Spec};
use path::Record;
use rule::{Dedup, Meta};
use ruleset::{GroupSource, RuleSet, Target, first_value};

/// The detector id.
pub const DETECTOR_ID: &str = "sigma";
/// State namespace of per-rule dedup groups.
pub const DEDUP_NAMESPACE: &str = "sigma-dedup";
/// Severity of rules without a `level`.
pub const DEFAULT_SEVERITY: Severity = Severity::Medium;

/// The record rules see, indexed for matching: a CloudTrail record inside an EventBridge
/// envelope, and a Unified Audit Log record inside a `Search-UnifiedAuditLog` wrapper
/// (`AuditData` as an object), are unwrapped. (Normalized events already hold the inner record
/// as `raw`.) The envelope checks use the index the rules use anyway.
pub fn view_record(kind: RecordKind, raw: &crate::json::Value) -> Record<'_> {
    view(kind, Record::new(raw))
}

/// [`view_record`] on a record read with its root index ([`Raw`]), which it reuses.
pub fn view_indexed(kind: RecordKind, raw: &Raw) -> Record<'_> {
    view(kind, Record::indexed(raw))
}

fn view(kind: RecordKind, mut rec: Record<'_>) -> Record<'_> {
    let inner = match kind {
        RecordKind::Cloudtrail if rec.field("detail-type").is_some() => rec.field("detail"),
        RecordKind::M365Audit if rec.field("CreationTime").is_none() => {
            rec.field("AuditData").filter(|d| d.is_object())
        }
        _ => None,
    };
    if let Some(v) = inner {
        rec.reindex(v);
    }
    rec
}

/// The record [`view_record`] indexes, for callers that want the value alone.
pub fn record_view(kind: RecordKind, raw: &crate::json::Value) -> &crate::json::Value {
    view_record(kind, raw).value()
}

/// Runs a [`RuleSet`] on events and reports findings.
pub struct SigmaDetector {
    rules: RuleSet,
    corr_silent: Vec<bool>,
    report_silent: bool,
    scratch: ruleset::Candidates,
}

#[derive(Debug, Serialize, Deserialize)]
struct DedupEntry {
    first_ms: i64,
    count: u64,
    finding: String,
}

impl SigmaDetector {
    /// A detector over a loaded rule set.
    pub fn new(rules: RuleSet) -> SigmaDetector {
        let mut corr_silent = vec![false; rules.correlations().len()];
        for b in rules.correlations() {
            for r in &b.refs {
                if let Target::Corr(ci) = r.target
                    && !b.corr.generate
                {
                    corr_silent[ci] = true;
                }
            }
        }
        SigmaDetector {
            rules,
            corr_silent,
            report_silent: false,
            scratch: ruleset::Candidates::default(),
        }
    }

    /// Also report rules and correlations that only feed other correlations (for case tests).
    pub fn report_silent(mut self, yes: bool) -> SigmaDetector {
        self.report_silent = yes;
        self
    }

    /// The rules it runs.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    fn err(e: crate::state::StateError) -> DetectError {
        DetectError::State {
            detector: DETECTOR_ID.to_string(),
            source: e,
        }
    }

    fn finding(meta: &Meta, event: &IdentityEvent) -> Finding {
        let mut f = Finding::new(
            meta.id.clone(),
            meta.title.clone(),
            meta.level.unwrap_or(DEFAULT_SEVERITY),
            vec![Evidence::of(event)],
        );
        f.description = meta.description.clone().unwrap_or_default();
        f.identity = (!event.actor.key.is_empty()).then(|| event.actor.key.clone());
        f.actor = Some(event.actor.clone());
        f.attacks = Attack::from_tags(meta.tags.iter().map(String::as_str));
        f.data.insert("rule_title".into(), json!(meta.title));
        f.data
            .insert("rule_path".into(), json!(meta.path.display().to_string()));
        if let Some(author) = &meta.author {
            // The Detection Rule License asks that alerts keep the rule's author.
            f.data.insert("rule_author".into(), json!(author));
        }
        f
    }

    /// Dedup: whether this finding is the first of its group in the window (then it is
    /// recorded); later ones are counted into the first.
    fn dedup_admit(
        store: &dyn StateStore,
        rule_id: &str,
        dedup: &Dedup,
        group: &[String],
        time: DateTime<Utc>,
        finding_uid: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, crate::state::StateError> {
        let key = format!("{rule_id}|{}", Value::from(group.to_vec()));
        let t = time.timestamp_millis();
        let window_ms = dedup.window_secs as i64 * 1000;
        let expires = now + Duration::seconds(dedup.window_secs as i64 * 2) + Duration::hours(1);
        for _ in 0..16 {
            let current = store.get(DEDUP_NAMESPACE, &key, now)?;
            let (entry, version) = match &current {
                Some(v) => (
                    serde_json::from_slice::<DedupEntry>(&v.value).ok(),
                    Some(v.version),
                ),
                None => (None, None),
            };
            let (next, admit) = match entry {
                Some(mut e) if (t - e.first_ms).abs() < window_ms => {
                    if e.finding == finding_uid {
                        return Ok(None); // the same finding re-processed: neither new nor counted
                    }
                    e.count += 1;
                    (e, None)
                }
                _ => (
                    DedupEntry {
                        first_ms: t,
                        count: 1,
                        finding: finding_uid.to_string(),
                    },
                    Some(1),
                ),
            };
            let bytes = serde_json::to_vec(&next).unwrap_or_default();
            match store.compare_and_set(
                DEDUP_NAMESPACE,
                &key,
                version,
                &bytes,
                Some(expires),
                now,
            )? {
                CasOutcome::Written(_) => return Ok(admit),
                CasOutcome::Conflict(_) => continue,
            }
        }
        Err(crate::state::StateError::Backend {
            backend: store.name(),
            message: format!("dedup {key}: too much contention (busy)"),
            source: None,
        })
    }

    /// How many matches were counted into a dedup group's finding (for tests and `--stats`).
    pub fn dedup_count(
        store: &dyn StateStore,
        rule_id: &str,
        group: &[String],
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let key = format!("{rule_id}|{}", Value::from(group.to_vec()));
        let v = store.get(DEDUP_NAMESPACE, &key, now).ok()??;
        serde_json::from_slice::<DedupEntry>(&v.value)
            .ok()
            .map(|e| e.count)
    }

    /// Feeds a correlation with one match and follows chains; pushes findings.
    #[allow(clippy::too_many_arguments)]
    fn feed(
        &self,
        ci: usize,
        pos: usize,
        group: Vec<String>,
        value: Option<String>,
        uid: &str,
        event: &IdentityEvent,
        cx: &DetectContext<'_>,
        out: &mut Vec<Finding>,
        depth: usize,
    ) -> Result<(), DetectError> {
        if depth > 8 {
            return Ok(());
        }
        let b = &self.rules.correlations()[ci];
        let spec = Spec {
            id: &b.corr.meta.id,
            typ: b.corr.typ,
            span_ms: b.corr.timespan_secs as i64 * 1000,
            threshold: b.corr.threshold,
            n_refs: b.refs.len(),
        };
        let obs = Observation {
            group: &group,
            ref_pos: pos,
            time: event.time,
            uid,
            value,
        };
        let Some(fired) = correlation::observe(cx.state, &spec, &obs, cx.now).map_err(Self::err)?
        else {
            return Ok(());
        };
        let mut f = Self::finding(&b.corr.meta, event);
        f.uid = finding_uid(&b.corr.meta.id, fired.uids.iter().map(String::as_str));
        f.data
            .insert("correlation".into(), json!(b.corr.typ.as_str()));
        f.data.insert("count".into(), json!(fired.count));
        f.data.insert("window_start".into(), json!(fired.first));
        f.data.insert("window_end".into(), json!(fired.last));
        f.data.insert("related_events".into(), json!(fired.uids));
        let groups: serde_json::Map<String, Value> = b
            .corr
            .group_by
            .iter()
            .cloned()
            .zip(group.iter().map(|g| json!(g)))
            .collect();
        f.data.insert("group".into(), Value::Object(groups));
        for &(cj, pos2) in &self.rules.corr_feeds[ci] {
            let outer = &self.rules.correlations()[cj];
            let og: Vec<String> = outer.refs[pos2]
                .group
                .iter()
                .map(|g| match g {
                    GroupSource::Inner(i) => group.get(*i).cloned().unwrap_or_default(),
                    GroupSource::Paths(_) => String::new(),
                })
                .collect();
            self.feed(cj, pos2, og, None, &f.uid, event, cx, out, depth + 1)?;
        }
        if !self.corr_silent[ci] || self.report_silent {
            let admitted = match &b.corr.meta.picket.dedup {
                Some(d) => Self::dedup_admit(
                    cx.state,
                    &b.corr.meta.id,
                    d,
                    &group,
                    event.time,
                    &f.uid,
                    cx.now,
                )
                .map_err(Self::err)?
                .is_some(),
                None => true,
            };
            if admitted {
                out.push(f);
            }
        }
        Ok(())
    }
}

impl Detector for SigmaDetector {
    fn id(&self) -> &str {
        DETECTOR_ID
    }

    fn on_event(
        &mut self,
        event: &IdentityEvent,
        cx: &DetectContext<'_>,
    ) -> Result<Vec<Finding>, DetectError> {
        let kind = event.kind;
        let raw = view_indexed(kind, &event.raw);
        let raw = &raw;
        let mut cands = std::mem::take(&mut self.scratch);
        self.rules.candidates(kind, raw, &mut cands);
        let mut out = Vec::new();
        let mut result = Ok(());
        for &ri in &cands.rules {
            let ri = ri as usize;
            let rule = &self.rules.rules()[ri];
            if !rule.matches_record(kind, raw) {
                continue;
            }
            tracing::debug!(rule = %rule.meta.id, uid = %event.uid, "sigma rule matched");
            for &(ci, pos) in &self.rules.rule_feeds[ri] {
                let r = &self.rules.correlations()[ci].refs[pos];
                let group: Vec<String> = r
                    .group
                    .iter()
                    .map(|g| match g {
                        GroupSource::Paths(res) => first_value(res, kind, raw).unwrap_or_default(),
                        GroupSource::Inner(_) => String::new(),
                    })
                    .collect();
                let value = r.value.as_ref().and_then(|res| first_value(res, kind, raw));
                if let Err(e) = self.feed(ci, pos, group, value, &event.uid, event, cx, &mut out, 0)
                {
                    result = Err(e);
                }
            }
            if rule.silent && !self.report_silent {
                continue;
            }
            let f = Self::finding(&rule.meta, event);
            match &rule.meta.picket.dedup {
                None => out.push(f),
                Some(d) => {
                    let group: Vec<String> = d
                        .resolved
                        .iter()
                        .map(|res| first_value(res, kind, raw).unwrap_or_default())
                        .collect();
                    match Self::dedup_admit(
                        cx.state,
                        &rule.meta.id,
                        d,
                        &group,
                        event.time,
                        &f.uid,
                        cx.now,
                    ) {
                        Ok(Some(_)) => out.push(f),
                        Ok(None) => {}
                        Err(e) => result = Err(Self::err(e)),
                    }
                }
            }
        }
        self.scratch = cands;
        result.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Value, json};
    use crate::model::{Actor, EventClass};
    use crate::state::MemoryStore;
    use mapping::Mappings;
    use std::path::{Path, PathBuf};

    fn mappings() -> Mappings {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("detections/mappings");
        let (m, errors) = Mappings::load_dir(&dir);
        assert!(errors.is_empty(), "{errors:?}");
        m
    }

    fn set(yaml: &str) -> RuleSet {
        let (set, errors) =
            RuleSet::from_sources(&[(PathBuf::from("t.yml"), yaml.to_string())], &mappings());
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    fn event(raw: Value, minute: u32) -> IdentityEvent {
        let mut e = author::event_for(RecordKind::Cloudtrail, &raw, "x");
        e.time = DateTime::from_timestamp(1_763_632_800 + i64::from(minute) * 60, 0).unwrap();
        e.class = EventClass::ApiActivity;
        e.actor = Actor {
            key: "alice@corp.example".into(),
            ..Actor::default()
        };
        e
    }

    fn ct(name: &str, arn: &str, id: &str) -> Value {
        json!({"eventVersion": "1.08", "eventSource": "iam.amazonaws.com", "eventName": name,
               "userIdentity": {"type": "IAMUser", "arn": arn}, "eventID": id,
               "eventTime": "2025-11-20T10:00:00Z"})
    }

    const RULE: &str = "title: Key Made\nid: r-1\ndescription: d\nauthor: someone\nlevel: high\ntags: [attack.persistence, attack.t1098.001]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: CreateAccessKey\n  condition: sel\n";

    #[test]
    fn findings_carry_rule_metadata() {
        let mut d = SigmaDetector::new(set(RULE));
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: Utc::now(),
        };
        let e = event(ct("CreateAccessKey", "arn:aws:iam::1:user/a", "e1"), 0);
        let f = d.on_event(&e, &cx).unwrap();
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.detector, "r-1");
        assert_eq!(f.title, "Key Made");
        assert_eq!(f.description, "d");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.identity.as_deref(), Some("alice@corp.example"));
        assert_eq!(f.attacks[0].technique, "T1098.001");
        assert_eq!(f.evidence[0].uid, "e1");
        assert_eq!(f.data["rule_author"], serde_json::json!("someone"));
        assert!(
            d.on_event(&event(ct("GetUser", "a", "e2"), 0), &cx)
                .unwrap()
                .is_empty()
        );
        assert_eq!(d.id(), "sigma");
    }

    #[test]
    fn eventbridge_envelope_is_unwrapped() {
        let mut d = SigmaDetector::new(set(RULE));
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: Utc::now(),
        };
        let inner = ct("CreateAccessKey", "arn:aws:iam::1:user/a", "e1");
        let raw = json!({"detail-type": "AWS API Call via CloudTrail", "detail": inner});
        assert_eq!(d.on_event(&event(raw, 0), &cx).unwrap().len(), 1);
    }

    #[test]
    fn dedup_suppresses_and_counts_within_the_window() {
        let rule =
            format!("{RULE}picket:\n  dedup:\n    fields: [userIdentity.arn]\n    window: 1h\n");
        let mut d = SigmaDetector::new(set(&rule));
        let store = MemoryStore::new();
        let now = Utc::now();
        let cx = DetectContext { state: &store, now };
        let a = "arn:aws:iam::1:user/a";
        let fire = |d: &mut SigmaDetector, arn: &str, id: &str, minute| {
            d.on_event(&event(ct("CreateAccessKey", arn, id), minute), &cx)
                .unwrap()
                .len()
        };
        assert_eq!(fire(&mut d, a, "e1", 0), 1);
        assert_eq!(fire(&mut d, a, "e2", 10), 0);
        assert_eq!(fire(&mut d, a, "e3", 59), 0);
        // The same event again (a re-run) is neither a new finding nor counted.
        assert_eq!(fire(&mut d, a, "e1", 0), 0);
        assert_eq!(
            SigmaDetector::dedup_count(&store, "r-1", &[a.to_string()], now),
            Some(3)
        );
        // Another group is its own finding; after the window a new finding starts.
        assert_eq!(fire(&mut d, "arn:aws:iam::1:user/b", "e4", 5), 1);
        assert_eq!(fire(&mut d, a, "e5", 61), 1);
        // A second detector over the same store (another process) sees the group.
        let mut d2 = SigmaDetector::new(set(&rule));
        assert_eq!(fire(&mut d2, a, "e6", 70), 0);
    }

    #[test]
    fn dedup_from_configuration() {
        let mut s = set(RULE);
        assert!(s.set_dedup("nope", &[], 60).is_err());
        assert!(s.set_dedup("r-1", &["bogus".to_string()], 60).is_err());
        s.set_dedup("r-1", &["userIdentity.arn".to_string()], 3600)
            .unwrap();
        let mut d = SigmaDetector::new(s);
        let store = MemoryStore::new();
        let cx = DetectContext {
            state: &store,
            now: Utc::now(),
        };
        let a = "arn:aws:iam::1:user/a";
        assert_eq!(
            d.on_event(&event(ct("CreateAccessKey", a, "e1"), 0), &cx)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            d.on_event(&event(ct("CreateAccessKey", a, "e2"), 1), &cx)
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn unmapped_field_is_rejected_by_name() {
        let bad = "title: T\nid: r-2\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    evntName: CreateAccessKey\n  condition: sel\n";
        let (set, errors) = RuleSet::from_sources(
            &[(PathBuf::from("rules/x.yml"), bad.to_string())],
            &mappings(),
        );
        assert!(set.rules().is_empty());
        assert_eq!(
            errors[0].to_string(),
            "rules/x.yml: rule 'T': search 'sel': field 'evntName' has no mapping for logsource product=aws service=cloudtrail"
        );
    }

    #[test]
    fn several_documents_per_file_and_mapped_fields() {
        let yaml = "title: A\nid: a\nlogsource: {product: azure, service: signinlogs}\ndetection:\n  sel:\n    ResultType: 50126\n    DeviceDetail.isCompliant: 'false'\n  condition: sel\n---\ntitle: B\nid: b\nlogsource: {product: azure, service: signinlogs}\ndetection:\n  sel:\n    Status: Success\n  condition: sel\n";
        let s = set(yaml);
        assert_eq!(s.rules().len(), 2);
        let graph = json!({"createdDateTime": "2025-01-01T00:00:00Z", "userPrincipalName": "a@b",
            "status": {"errorCode": 50126}, "deviceDetail": {"isCompliant": false}});
        let monitor = json!({"time": "2025-01-01T00:00:00Z", "category": "SignInLogs", "resultType": "0",
            "properties": {"status": {"errorCode": 0}, "deviceDetail": {"isCompliant": true}}});
        assert_eq!(s.matching(RecordKind::EntraSignin, &graph), vec![0]);
        assert_eq!(
            s.matching(RecordKind::AzureMonitorSignin, &monitor),
            vec![1]
        );
        // A rule never matches a kind outside its logsource.
        assert!(s.matching(RecordKind::Cloudtrail, &graph).is_empty());
    }
}
