//! The rule author's tools behind `picket rules test | lint | list`: inline test cases
//! (`<stem>.cases.json` beside `<stem>.yml`), a linter whose report ends with
//! `loaded: N, rejected: M`, and a listing.
//!
//! Cases file: `{"cases": [{"name": "...", "match": true, "event": {<raw record>}}, ...]}`; a
//! case may instead carry `"events": [...]` (a sequence, for correlations), `"rule": "<id>"`
//! to test one rule of the file, and `"kind": "<record kind>"` when the shape is ambiguous.
//! To add a lint check: one more push in [`lint_set`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::json::{JsonValueTrait, Value};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::SigmaDetector;
use super::ruleset::{RuleError, RuleSet, documents};
use crate::detect::{DetectContext, Detector};
use crate::model::{Actor, IdentityEvent, RecordKind};
use crate::state::MemoryStore;

/// One case of a cases file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it shows.
    pub name: String,
    /// Whether the rule(s) of the file must fire.
    #[serde(rename = "match")]
    pub expect: bool,
    /// One raw record.
    #[serde(default)]
    pub event: Option<Value>,
    /// A sequence of raw records (correlations).
    #[serde(default)]
    pub events: Option<Vec<Value>>,
    /// Only this rule id of the file.
    #[serde(default)]
    pub rule: Option<String>,
    /// The record kind, when detection by shape is not wanted.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    cases: Vec<Case>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The cases file.
    pub file: PathBuf,
    /// The case name.
    pub name: String,
    /// Expected to fire.
    pub expected: bool,
    /// Did fire.
    pub actual: bool,
    /// Why the case could not run.
    pub error: Option<String>,
}

impl CaseResult {
    /// Passed: ran and matched the expectation.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.expected == self.actual
    }
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed() { "ok" } else { "FAIL" };
        write!(f, "{verdict} {}: {}", self.file.display(), self.name)?;
        match &self.error {
            Some(e) => write!(f, " ({e})"),
            None if !self.passed() => write!(
                f,
                " (expected match={}, got {})",
                self.expected, self.actual
            ),
            None => Ok(()),
        }
    }
}

/// The cases file of a rule file.
pub fn cases_path(rule_file: &Path) -> PathBuf {
    let stem = rule_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    rule_file.with_file_name(format!("{stem}.cases.json"))
}

fn str_at<'a>(raw: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(raw, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// An [`IdentityEvent`] for a raw record: the normalizer's when it accepts the record, else a
/// minimal one (time, uid and actor read from the common fields of each kind).
pub fn event_for(kind: RecordKind, raw: &Value, fallback_uid: &str) -> IdentityEvent {
    if let Ok(mut events) = crate::normalize::normalize(kind, raw.clone())
        && !events.is_empty()
    {
        let mut e = events.remove(0);
        e.raw = raw.clone().into();
        return e;
    }
    let rec = super::view_record(kind, raw);
    let view = rec.value();
    let time = [
        "eventTime",
        "createdDateTime",
        "activityDateTime",
        "time",
        "id.time",
        "timestamp",
    ]
    .iter()
    .find_map(|p| str_at(view, p))
    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc));
    let uid = [
        "eventID",
        "id.uniqueQualifier",
        "insertId",
        "id",
        "properties.id",
    ]
    .iter()
    .find_map(|p| str_at(view, p))
    .unwrap_or(fallback_uid)
    .to_string();
    let actor = [
        "userIdentity.arn",
        "userPrincipalName",
        "properties.userPrincipalName",
        "initiatedBy.user.userPrincipalName",
        "actor.email",
        "protoPayload.authenticationInfo.principalEmail",
    ]
    .iter()
    .find_map(|p| str_at(view, p))
    .unwrap_or_default()
    .to_lowercase();
    IdentityEvent {
        time,
        kind,
        class: crate::model::EventClass::ApiActivity,
        activity: crate::model::Activity::ApiCall,
        status: crate::model::Status::Unknown,
        status_detail: None,
        account: None,
        region: None,
        actor: Actor {
            key: actor,
            ..Actor::default()
        },
        src: Default::default(),
        action: String::new(),
        service: None,
        targets: Vec::new(),
        auth: Default::default(),
        oauth: None,
        uid,
        raw: raw.clone().into(),
    }
}

fn run_case(set: &RuleSet, file_ids: &BTreeSet<String>, case: &Case) -> Result<bool, String> {
    let records: Vec<&Value> = match (&case.event, &case.events) {
        (Some(e), None) => vec![e],
        (None, Some(es)) if !es.is_empty() => es.iter().collect(),
        _ => return Err("a case needs exactly one of `event` or a non-empty `events`".to_string()),
    };
    let wanted: BTreeSet<String> = match &case.rule {
        Some(id) if file_ids.contains(id) => [id.clone()].into(),
        Some(id) => return Err(format!("rule `{id}` is not in this file")),
        None => file_ids.clone(),
    };
    let forced = match &case.kind {
        Some(k) => Some(RecordKind::parse(k).ok_or_else(|| format!("unknown kind `{k}`"))?),
        None => None,
    };
    let store = MemoryStore::new();
    let mut detector = SigmaDetector::new(set.clone()).report_silent(true);
    let mut fired = false;
    for (i, raw) in records.into_iter().enumerate() {
        let kind = forced
            .or_else(|| crate::normalize::detect_kind(raw))
            .ok_or_else(|| format!("event {i}: unknown record shape"))?;
        let event = event_for(kind, raw, &format!("case-event-{i}"));
        // Base rules that only feed correlations still count for single-event cases.
        if case.events.is_none() {
            let rec = super::view_record(kind, raw);
            fired |= set
                .rules()
                .iter()
                .any(|r| wanted.contains(&r.meta.id) && r.matches_record(kind, &rec));
        }
        let cx = DetectContext {
            state: &store,
            now: event.time,
        };
        let findings = detector.on_event(&event, &cx).map_err(|e| e.to_string())?;
        fired |= findings.iter().any(|f| wanted.contains(&f.detector));
    }
    Ok(fired)
}

/// Runs every cases file beside the loaded rule files.
pub fn test_cases(set: &RuleSet) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for file in &set.files {
        let cpath = cases_path(file);
        if !cpath.exists() {
            continue;
        }
        let file_ids: BTreeSet<String> = set
            .rules()
            .iter()
            .filter(|r| &r.meta.path == file)
            .map(|r| r.meta.id.clone())
            .chain(
                set.correlations()
                    .iter()
                    .filter(|c| &c.corr.meta.path == file)
                    .map(|c| c.corr.meta.id.clone()),
            )
            .collect();
        let parsed = std::fs::read_to_string(&cpath)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                if crate::json::too_deep(t.as_bytes()) {
                    return Err("nested deeper than 64 levels".to_string());
                }
                sonic_rs::from_str::<CasesFile>(&t).map_err(|e| e.to_string())
            });
        let cases = match parsed {
            Ok(c) => c.cases,
            Err(e) => {
                out.push(CaseResult {
                    file: cpath.clone(),
                    name: "(file)".to_string(),
                    expected: true,
                    actual: false,
                    error: Some(e),
                });
                continue;
            }
        };
        for case in cases {
            let (actual, error) = if file_ids.is_empty() {
                (false, Some("no rule of this file loaded".to_string()))
            } else {
                match run_case(set, &file_ids, &case) {
                    Ok(a) => (a, None),
                    Err(e) => (false, Some(e)),
                }
            };
            out.push(CaseResult {
                file: cpath.clone(),
                name: case.name.clone(),
                expected: case.expect,
                actual,
                error,
            });
        }
    }
    out
}

/// A lint finding that does not stop a rule from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintIssue {
    /// The file.
    pub path: PathBuf,
    /// The rule title.
    pub rule: Option<String>,
    /// What is missing or odd.
    pub message: String,
}

/// What `picket rules lint` prints.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    /// Rules and correlations that loaded.
    pub loaded: usize,
    /// Rules that did not, with the reason.
    pub rejected: Vec<RuleError>,
    /// Warnings about loaded rules.
    pub warnings: Vec<LintIssue>,
    /// Failed cases.
    pub failed_cases: Vec<CaseResult>,
}

impl LintReport {
    /// Nothing rejected and no failed case.
    pub fn ok(&self) -> bool {
        self.rejected.is_empty() && self.failed_cases.is_empty()
    }
}

impl std::fmt::Display for LintReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for w in &self.warnings {
            let rule = w
                .rule
                .as_ref()
                .map(|r| format!("rule '{r}': "))
                .unwrap_or_default();
            writeln!(f, "warning: {}: {rule}{}", w.path.display(), w.message)?;
        }
        for c in &self.failed_cases {
            writeln!(f, "case {c}")?;
        }
        for e in &self.rejected {
            writeln!(f, "rejected: {e}")?;
        }
        writeln!(
            f,
            "loaded: {}, rejected: {}",
            self.loaded,
            self.rejected.len()
        )
    }
}

const KNOWN_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "related",
    "taxonomy",
    "status",
    "description",
    "license",
    "author",
    "references",
    "date",
    "modified",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
    "tags",
    "scope",
    "correlation",
    "generate",
    "picket",
];

/// Loads and lints the rules under `paths`: load errors, unknown keys, missing
/// level/tags/description, missing or failing cases.
pub fn lint(paths: &[PathBuf], mappings_dir: &Path) -> LintReport {
    let (set, rejected) = RuleSet::load(paths, mappings_dir);
    lint_set(&set, rejected)
}

/// Lints an already loaded set.
pub fn lint_set(set: &RuleSet, rejected: Vec<RuleError>) -> LintReport {
    let mut warnings = Vec::new();
    let metas = set
        .rules()
        .iter()
        .map(|r| &r.meta)
        .chain(set.correlations().iter().map(|c| &c.corr.meta));
    for m in metas {
        let mut warn = |message: &str| {
            warnings.push(LintIssue {
                path: m.path.clone(),
                rule: Some(m.title.clone()),
                message: message.to_string(),
            })
        };
        if m.level.is_none() {
            warn("no `level` (defaults to medium)");
        }
        if m.tags.is_empty() {
            warn("no `tags` (no ATT&CK technique in findings)");
        }
        if m.description.as_deref().is_none_or(str::is_empty) {
            warn("no `description`");
        }
    }
    for file in &set.files {
        if !cases_path(file).exists() {
            warnings.push(LintIssue {
                path: file.clone(),
                rule: None,
                message: format!("no cases file ({})", cases_path(file).display()),
            });
        }
        if let Ok(text) = std::fs::read_to_string(file) {
            for doc in documents(&text).unwrap_or_default() {
                for k in doc.as_mapping().into_iter().flat_map(|m| m.keys()) {
                    let key = k.as_str().unwrap_or("");
                    if !KNOWN_KEYS.contains(&key) {
                        warnings.push(LintIssue {
                            path: file.clone(),
                            rule: doc.get("title").and_then(|t| t.as_str()).map(String::from),
                            message: format!("unknown top-level key `{key}`"),
                        });
                    }
                }
            }
        }
    }
    let failed_cases = test_cases(set)
        .into_iter()
        .filter(|c| !c.passed())
        .collect();
    LintReport {
        loaded: set.rules().len() + set.correlations().len(),
        rejected,
        warnings,
        failed_cases,
    }
}

/// One line of `picket rules list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSummary {
    /// Rule id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Level (`medium` when absent).
    pub level: String,
    /// `product/service`, or `correlation:<type>`.
    pub logsource: String,
    /// ATT&CK technique ids.
    pub attack: Vec<String>,
}

impl std::fmt::Display for RuleSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {:<13} {:<28} {}  [{}]",
            self.id,
            self.level,
            self.logsource,
            self.title,
            self.attack.join(", ")
        )
    }
}

/// Lists the loaded rules and correlations.
pub fn list(set: &RuleSet) -> Vec<RuleSummary> {
    let attack = |tags: &[String]| {
        crate::model::Attack::from_tags(tags.iter().map(String::as_str))
            .into_iter()
            .map(|a| a.technique)
            .collect()
    };
    let level =
        |l: Option<crate::model::Severity>| l.unwrap_or(super::DEFAULT_SEVERITY).to_string();
    set.rules()
        .iter()
        .map(|r| RuleSummary {
            id: r.meta.id.clone(),
            title: r.meta.title.clone(),
            level: level(r.meta.level),
            logsource: format!(
                "{}/{}",
                r.logsource.product.as_deref().unwrap_or("-"),
                r.logsource.service.as_deref().unwrap_or("-")
            ),
            attack: attack(&r.meta.tags),
        })
        .chain(set.correlations().iter().map(|c| RuleSummary {
            id: c.corr.meta.id.clone(),
            title: c.corr.meta.title.clone(),
            level: level(c.corr.meta.level),
            logsource: format!("correlation:{}", c.corr.typ.as_str()),
            attack: attack(&c.corr.meta.tags),
        }))
        .collect()
}
