//! Loading a rule pack: files -> documents -> compiled rules and bound correlations, and the
//! index that picks candidate rules for a record without trying every rule.
//!
//! The index: per record kind, rules are keyed by the folded literals they require at
//! discriminating raw paths (`eventName`, `eventSource`, `activityDisplayName`,
//! `operationName`, `protoPayload.methodName`, `events.name`, ...); a record looks up its own
//! values at those paths, and a rule is tried only when the record holds a required literal
//! at every one of them. A rule whose condition is a disjunction (`1 of selection_*`, `a or
//! (b and c)`) is keyed per alternative. Rules that can match without such a literal sit in
//! the kind's fallback list, tried on every record. To index on one more field, add its raw
//! path to [`DISCRIMINATING`]: a field with few values, whose usual value rules do not ask for.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::json::{JsonValueTrait, Value};
use serde::Deserialize;

use super::detection::{FieldMatch, N_KINDS, kind_idx};
use super::mapping::{MappingResolver, Mappings, Resolved};
use super::path::{FieldPath, Record, string_form};
use super::rule::{Correlation, CorrelationType, Document, Rule, parse_document};
use crate::model::RecordKind;

/// Raw paths whose literal values index rules.
pub const DISCRIMINATING: &[&str] = &[
    "eventName",
    "protoPayload.methodName",
    "activityDisplayName",
    "properties.activityDisplayName",
    "operationName",
    "events.name",
    "protoPayload.metadata.event.eventName",
    "eventSource",
    "protoPayload.serviceName",
    "id.applicationName",
    "properties.category",
    "category",
    "status.errorCode",
    "properties.status.errorCode",
    "resultType",
    "riskEventTypes_v2",
    "riskEventTypes",
    "properties.riskEventTypes_v2",
    "properties.riskEventTypes",
    "userIdentity.type",
    "authenticationRequirement",
    "properties.authenticationRequirement",
    "deviceDetail.isCompliant",
    "properties.deviceDetail.isCompliant",
    "resourceDisplayName",
    "properties.resourceDisplayName",
    // Sign-in fields with a few values, the usual one of which rules do not look for.
    "clientAppUsed",
    "properties.clientAppUsed",
    "authenticationProtocol",
    "properties.authenticationProtocol",
    "riskLevelDuringSignIn",
    "properties.riskLevelDuringSignIn",
    "riskState",
    "properties.riskState",
];

/// Why a rule (or file) did not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{reason}", path.display(), rule.as_ref().map(|r| format!("rule '{r}': ")).unwrap_or_default())]
pub struct RuleError {
    /// The file.
    pub path: PathBuf,
    /// The rule's title (or id), when the document got that far.
    pub rule: Option<String>,
    /// What is wrong or unsupported.
    pub reason: String,
}

/// Where a correlation's group value comes from for one referenced rule.
#[derive(Debug, Clone)]
pub(crate) enum GroupSource {
    /// Read from the base rule's record via its mapping.
    Paths(Box<Resolved>),
    /// Taken from the referenced correlation's group key, at this position.
    Inner(usize),
}

/// What a correlation refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A detection rule (index into `rules`).
    Rule(usize),
    /// Another correlation (index into `correlations`).
    Corr(usize),
}

/// One referenced rule of a correlation, bound.
#[derive(Debug, Clone)]
pub(crate) struct CorrRef {
    pub target: Target,
    pub group: Vec<GroupSource>,
    /// value_count's field, for rule targets.
    pub value: Option<Box<Resolved>>,
}

/// A correlation with its references resolved.
#[derive(Debug, Clone)]
pub struct BoundCorrelation {
    /// The correlation as written.
    pub corr: Correlation,
    pub(crate) refs: Vec<CorrRef>,
}

/// Index keys by folded literal, with the set of the literals' lengths: most values a record
/// holds at a keyed path are the usual ones no rule asks for, and most of those differ in
/// length from every literal, so they are dismissed before being folded and hashed.
/// Literals are rule text, not input: a fast hasher is safe (the map never grows from records).
#[derive(Debug, Default, Clone)]
struct LiteralMap {
    keys: HashMap<Box<str>, Vec<u32>, foldhash::fast::RandomState>,
    /// Bit `n` set when a literal is `n` bytes long (bit 63: 63 bytes or more).
    lengths: u64,
    /// Whether a literal is the JSON text of an array or object (starts with `[` or `{`):
    /// else an array or object a path reaches is not spelled out to be looked up.
    structured: bool,
}

impl LiteralMap {
    fn length_bit(len: usize) -> u64 {
        1 << len.min(63)
    }

    /// The keys of literal `l` (folded), to add to.
    fn keys_of(&mut self, l: &str) -> &mut Vec<u32> {
        self.lengths |= Self::length_bit(l.len());
        self.structured |= l.starts_with(['[', '{']);
        self.keys.entry(l.into()).or_default()
    }

    /// Whether some literal is as long as `value` (folding keeps the length in bytes).
    fn may_hold(&self, value: &str) -> bool {
        self.lengths & Self::length_bit(value.len()) != 0
    }

    /// The keys of the folded value.
    fn get(&self, folded: &str) -> &[u32] {
        self.keys.get(folded).map_or(&[][..], Vec::as_slice)
    }
}

/// The rule index of one record kind. Each alternative set of required matches of a rule
/// ([`super::detection::Detection::alternatives`]) is a *set*; each plain equality of a set on
/// [`DISCRIMINATING`] paths is a *key* of it. A record is a candidate for a rule when it holds
/// a literal of every key of one of the rule's sets; a rule with a set without keys is in
/// `fallback`, tried on every record. Requiring every key, not only the most selective one,
/// keeps a rule on `eventSource` and `eventName`, or on a sign-in's result and its
/// authentication requirement, from being tried on every record that has one of the two.
#[derive(Debug, Default, Clone)]
struct KindIndex {
    /// The keyed paths, with the keys each folded literal satisfies.
    keyed: Vec<(FieldPath, LiteralMap)>,
    /// Key -> its set.
    key_set: Vec<u32>,
    /// Set -> (how many keys it has, its rule).
    sets: Vec<(u32, u32)>,
    fallback: Vec<u32>,
}

/// The candidate rules [`RuleSet::candidates`] found for a record, and the counters it reuses
/// from record to record.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Rule indices (sorted, unique).
    pub rules: Vec<u32>,
    epoch: u32,
    /// Key -> the epoch it was last satisfied in.
    key_seen: Vec<u32>,
    /// Set -> (epoch, keys satisfied in it).
    set_hits: Vec<(u32, u32)>,
    /// A value folded to lower case, reused from value to value.
    folded: String,
}

impl Candidates {
    /// Starts a record: counters of earlier records no longer count.
    fn next_record(&mut self, keys: usize, sets: usize) {
        if self.key_seen.len() < keys {
            self.key_seen.resize(keys, 0);
        }
        if self.set_hits.len() < sets {
            self.set_hits.resize(sets, (0, 0));
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.key_seen.fill(0);
            self.set_hits.fill((0, 0));
            self.epoch = 1;
        }
        self.rules.clear();
    }
}

/// A loaded, indexed rule pack.
#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    correlations: Vec<BoundCorrelation>,
    /// For each rule: the (correlation, ref position) pairs it feeds.
    pub(crate) rule_feeds: Vec<Vec<(usize, usize)>>,
    /// For each correlation: the (correlation, ref position) pairs it feeds.
    pub(crate) corr_feeds: Vec<Vec<(usize, usize)>>,
    index: Vec<KindIndex>,
    /// Rules files that were read (for cases lookup).
    pub files: Vec<PathBuf>,
    mappings: Mappings,
}

/// Folders under a rule path that hold other YAML than rules: field mappings and the tuning
/// of the built-in (stateful) detectors.
pub const NOT_RULE_FOLDERS: &[&str] = &["mappings", "stateful"];

/// Every rule file under the given paths (recursive, sorted), skipping [`NOT_RULE_FOLDERS`].
pub fn rule_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<RuleError>) {
    fn walk(p: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<RuleError>) {
        if p.is_dir() {
            if p.file_name()
                .is_some_and(|n| NOT_RULE_FOLDERS.iter().any(|x| n == *x))
            {
                return;
            }
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut entries: Vec<PathBuf> =
                        rd.filter_map(Result::ok).map(|e| e.path()).collect();
                    entries.sort();
                    for e in entries {
                        walk(&e, out, errors);
                    }
                }
                Err(e) => errors.push(RuleError {
                    path: p.to_path_buf(),
                    rule: None,
                    reason: format!("cannot read folder: {e}"),
                }),
            }
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p.to_path_buf());
        } else if !p.exists() {
            errors.push(RuleError {
                path: p.to_path_buf(),
                rule: None,
                reason: "no such file or folder".to_string(),
            });
        }
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        walk(p, &mut out, &mut errors);
    }
    (out, errors)
}

/// Splits a YAML text into its documents.
pub fn documents(text: &str) -> Result<Vec<serde_norway::Value>, String> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde_norway::Value::deserialize(d).map_err(|e| e.to_string()))
        .filter(|r| !matches!(r, Ok(serde_norway::Value::Null)))
        .collect()
}

impl RuleSet {
    /// Loads every rule under `paths` with the mappings in `mappings_dir`. Every problem is
    /// returned with its file and reason; the rules that did load are usable.
    pub fn load(paths: &[PathBuf], mappings_dir: &Path) -> (RuleSet, Vec<RuleError>) {
        let (mappings, merrs) = Mappings::load_dir(mappings_dir);
        let mut errors: Vec<RuleError> = merrs
            .into_iter()
            .map(|e| RuleError {
                path: e.path,
                rule: None,
                reason: e.message,
            })
            .collect();
        let (files, ferrs) = rule_files(paths);
        errors.extend(ferrs);
        let mut sources = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(t) => sources.push((f, t)),
                Err(e) => errors.push(RuleError {
                    path: f,
                    rule: None,
                    reason: e.to_string(),
                }),
            }
        }
        let (set, errs) = RuleSet::from_sources(&sources, &mappings);
        errors.extend(errs);
        (set, errors)
    }

    /// Builds a rule set from `(path, YAML text)` pairs.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        mappings: &Mappings,
    ) -> (RuleSet, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        let mut corrs = Vec::new();
        let mut files = Vec::new();
        for (path, text) in sources {
            files.push(path.clone());
            let docs = match documents(text) {
                Ok(d) => d,
                Err(reason) => {
                    errors.push(RuleError {
                        path: path.clone(),
                        rule: None,
                        reason,
                    });
                    continue;
                }
            };
            for doc in docs {
                let label = doc
                    .get("title")
                    .or_else(|| doc.get("id"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                match parse_document(path, &doc, mappings) {
                    Ok(Document::Rule(r)) => rules.push(*r),
                    Ok(Document::Correlation(c)) => corrs.push(*c),
                    Err(reason) => errors.push(RuleError {
                        path: path.clone(),
                        rule: label,
                        reason,
                    }),
                }
            }
        }
        // Duplicate ids: the later one is rejected.
        let mut seen = std::collections::HashSet::new();
        rules.retain(|r| {
            let fresh = seen.insert(r.meta.id.clone());
            if !fresh {
                errors.push(RuleError {
                    path: r.meta.path.clone(),
                    rule: Some(r.meta.title.clone()),
                    reason: format!("duplicate rule id {}", r.meta.id),
                });
            }
            fresh
        });
        corrs.retain(|c| {
            let fresh = seen.insert(c.meta.id.clone());
            if !fresh {
                errors.push(RuleError {
                    path: c.meta.path.clone(),
                    rule: Some(c.meta.title.clone()),
                    reason: format!("duplicate rule id {}", c.meta.id),
                });
            }
            fresh
        });
        let mut set = RuleSet {
            rules,
            files,
            mappings: mappings.clone(),
            ..RuleSet::default()
        };
        set.bind_correlations(corrs, mappings, &mut errors);
        set.build_index();
        (set, errors)
    }

    fn bind_correlations(
        &mut self,
        corrs: Vec<Correlation>,
        mappings: &Mappings,
        errors: &mut Vec<RuleError>,
    ) {
        let find_rule = |name: &str| {
            self.rules
                .iter()
                .position(|r| r.meta.name.as_deref() == Some(name) || r.meta.id == name)
        };
        let find_corr = |name: &str| {
            corrs
                .iter()
                .position(|c| c.meta.name.as_deref() == Some(name) || c.meta.id == name)
        };
        let mut bound: Vec<Option<BoundCorrelation>> = Vec::new();
        for c in &corrs {
            let bind = || -> Result<BoundCorrelation, String> {
                let mut refs = Vec::new();
                for name in &c.rules {
                    if let Some(ri) = find_rule(name) {
                        let rule = &self.rules[ri];
                        let mapping = mappings
                            .find(&rule.logsource)
                            .ok_or_else(|| format!("rule '{name}' has no mapping"))?;
                        let res = MappingResolver(mapping);
                        let group = c
                            .group_by
                            .iter()
                            .map(|f| {
                                super::detection::Resolver::resolve(&res, f)
                                    .map(|r| GroupSource::Paths(Box::new(r)))
                                    .map_err(|e| format!("group-by: {e}"))
                            })
                            .collect::<Result<_, _>>()?;
                        let value = match &c.field {
                            Some(f) if c.typ == CorrelationType::ValueCount => Some(Box::new(
                                super::detection::Resolver::resolve(&res, f)
                                    .map_err(|e| format!("condition field: {e}"))?,
                            )),
                            _ => None,
                        };
                        refs.push(CorrRef {
                            target: Target::Rule(ri),
                            group,
                            value,
                        });
                    } else if let Some(ci) = find_corr(name) {
                        if c.typ == CorrelationType::ValueCount {
                            return Err("unsupported: value_count over a correlation".to_string());
                        }
                        let inner = &corrs[ci];
                        let group = c
                            .group_by
                            .iter()
                            .map(|f| {
                                inner
                                    .group_by
                                    .iter()
                                    .position(|g| g == f)
                                    .map(GroupSource::Inner)
                                    .ok_or_else(|| format!("group-by field '{f}' is not in correlation '{name}''s group-by"))
                            })
                            .collect::<Result<_, _>>()?;
                        refs.push(CorrRef {
                            target: Target::Corr(ci),
                            group,
                            value: None,
                        });
                    } else {
                        return Err(format!("correlation refers to unknown rule '{name}'"));
                    }
                }
                Ok(BoundCorrelation {
                    corr: c.clone(),
                    refs,
                })
            };
            match bind() {
                Ok(b) => bound.push(Some(b)),
                Err(reason) => {
                    errors.push(RuleError {
                        path: c.meta.path.clone(),
                        rule: Some(c.meta.title.clone()),
                        reason,
                    });
                    bound.push(None);
                }
            }
        }
        // Drop unbound correlations (and any referring to them), renumbering.
        loop {
            let dead: Vec<usize> = (0..bound.len()).filter(|&i| bound[i].is_none()).collect();
            let mut changed = false;
            for slot in bound.iter_mut() {
                let refers_dead = slot.as_ref().is_some_and(|b| {
                    b.refs
                        .iter()
                        .any(|r| matches!(r.target, Target::Corr(ci) if dead.contains(&ci)))
                });
                if refers_dead {
                    if let Some(b) = slot.take() {
                        errors.push(RuleError {
                            path: b.corr.meta.path.clone(),
                            rule: Some(b.corr.meta.title.clone()),
                            reason: "refers to a correlation that did not load".to_string(),
                        });
                    }
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut renumber = vec![usize::MAX; bound.len()];
        let mut n = 0;
        for (i, b) in bound.iter().enumerate() {
            if b.is_some() {
                renumber[i] = n;
                n += 1;
            }
        }
        let mut list: Vec<BoundCorrelation> = bound.into_iter().flatten().collect();
        for b in &mut list {
            for r in &mut b.refs {
                if let Target::Corr(ci) = r.target {
                    r.target = Target::Corr(renumber[ci]);
                }
            }
        }
        self.rule_feeds = vec![Vec::new(); self.rules.len()];
        self.corr_feeds = vec![Vec::new(); list.len()];
        for (ci, b) in list.iter().enumerate() {
            for (pos, r) in b.refs.iter().enumerate() {
                match r.target {
                    Target::Rule(ri) => {
                        self.rule_feeds[ri].push((ci, pos));
                        if !b.corr.generate {
                            self.rules[ri].silent = true;
                        }
                    }
                    Target::Corr(cj) => self.corr_feeds[cj].push((ci, pos)),
                }
            }
        }
        self.correlations = list;
    }

    fn build_index(&mut self) {
        let mut index = vec![KindIndex::default(); N_KINDS];
        for (ri, rule) in self.rules.iter().enumerate() {
            for &kind in &rule.kinds {
                let ki = &mut index[kind_idx(kind)];
                // One set per alternative of required matches (`1 of sel*`, `a or b`); a rule
                // with an alternative that has no indexable literal is tried on every record.
                let sets: Option<Vec<_>> = rule.detection.alternatives().and_then(|sets| {
                    sets.iter()
                        .map(|set| Some(index_keys(set, kind)).filter(|k| !k.is_empty()))
                        .collect()
                });
                let Some(sets) = sets else {
                    ki.fallback.push(ri as u32);
                    continue;
                };
                for keys in sets {
                    let set = ki.sets.len() as u32;
                    ki.sets.push((keys.len() as u32, ri as u32));
                    for (paths, lits) in keys {
                        let key = ki.key_set.len() as u32;
                        ki.key_set.push(set);
                        for p in paths {
                            let slot = match ki.keyed.iter().position(|(kp, _)| kp == p) {
                                Some(i) => i,
                                None => {
                                    ki.keyed.push((p.clone(), LiteralMap::default()));
                                    ki.keyed.len() - 1
                                }
                            };
                            for l in &lits {
                                let list = ki.keyed[slot].1.keys_of(l);
                                if list.last() != Some(&key) {
                                    list.push(key);
                                }
                            }
                        }
                    }
                }
            }
        }
        self.index = index;
    }

    /// Sets (or replaces) a rule's dedup, e.g. from configuration: one finding per group of
    /// `fields` values within `window_secs`. Correlations group by their own `group-by`.
    pub fn set_dedup(
        &mut self,
        rule_id: &str,
        fields: &[String],
        window_secs: u64,
    ) -> Result<(), String> {
        if window_secs == 0 {
            return Err(format!("rule {rule_id}: dedup window must be positive"));
        }
        if let Some(rule) = self.rules.iter_mut().find(|r| r.meta.id == rule_id) {
            let mapping = self
                .mappings
                .find(&rule.logsource)
                .ok_or_else(|| format!("rule {rule_id}: no mapping"))?;
            let resolved = fields
                .iter()
                .map(|f| {
                    mapping
                        .resolve_field(f)
                        .map_err(|e| format!("rule {rule_id}: dedup: {e}"))
                })
                .collect::<Result<_, _>>()?;
            rule.meta.picket.dedup = Some(super::rule::Dedup {
                fields: fields.to_vec(),
                window_secs,
                resolved,
            });
            return Ok(());
        }
        if let Some(c) = self
            .correlations
            .iter_mut()
            .find(|c| c.corr.meta.id == rule_id)
        {
            c.corr.meta.picket.dedup = Some(super::rule::Dedup {
                fields: fields.to_vec(),
                window_secs,
                resolved: Vec::new(),
            });
            return Ok(());
        }
        Err(format!("no rule with id {rule_id}"))
    }

    /// The detection rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The correlations.
    pub fn correlations(&self) -> &[BoundCorrelation] {
        &self.correlations
    }

    /// How many alternatives of rules of `kind` are indexed by literals, and how many rules
    /// are in the fallback list.
    pub fn index_stats(&self, kind: RecordKind) -> (usize, usize) {
        let ki = &self.index[kind_idx(kind)];
        (ki.sets.len(), ki.fallback.len())
    }

    /// The rules the index cannot exclude for a record, into `out.rules` (sorted, unique).
    pub fn candidates(&self, kind: RecordKind, raw: &Record<'_>, out: &mut Candidates) {
        let Some(ki) = self.index.get(kind_idx(kind)) else {
            out.rules.clear();
            return;
        };
        out.next_record(ki.key_set.len(), ki.sets.len());
        out.rules.extend_from_slice(&ki.fallback);
        let epoch = out.epoch;
        let mut buf = std::mem::take(&mut out.folded);
        // Integers (a sign-in's `errorCode`) are spelled here, without a `String` each.
        let mut digits = itoa::Buffer::new();
        for (path, map) in &ki.keyed {
            path.any(raw, &mut |v| {
                let s = if let Some(s) = v.as_str() {
                    Cow::Borrowed(s)
                } else if let Some(n) = v.as_i64() {
                    Cow::Borrowed(digits.format(n))
                } else if !map.structured && (v.is_array() || v.is_object()) {
                    return false;
                } else {
                    match string_form(v) {
                        Some(s) => s,
                        None => return false,
                    }
                };
                if !map.may_hold(&s) {
                    return false;
                }
                let folded: &str = if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    buf.clear();
                    buf.push_str(&s);
                    buf.make_ascii_lowercase();
                    &buf
                } else {
                    &s
                };
                for &key in map.get(folded) {
                    let seen = &mut out.key_seen[key as usize];
                    if *seen == epoch {
                        continue;
                    }
                    *seen = epoch;
                    let set = ki.key_set[key as usize] as usize;
                    let hits = &mut out.set_hits[set];
                    if hits.0 != epoch {
                        *hits = (epoch, 0);
                    }
                    hits.1 += 1;
                    let (needed, rule) = ki.sets[set];
                    if hits.1 == needed {
                        out.rules.push(rule);
                    }
                }
                false
            });
        }
        out.folded = buf;
        out.rules.sort_unstable();
        out.rules.dedup();
    }

    /// Indices of the rules matching a raw record of `kind`, in rule order.
    pub fn matching(&self, kind: RecordKind, raw: &Value) -> Vec<usize> {
        let rec = super::view_record(kind, raw);
        let mut cands = Candidates::default();
        self.candidates(kind, &rec, &mut cands);
        cands
            .rules
            .into_iter()
            .map(|i| i as usize)
            .filter(|&i| self.rules[i].matches_record(kind, &rec))
            .collect()
    }
}

/// The keys of a set of required matches: each plain equality on [`DISCRIMINATING`] paths,
/// as `(paths, folded literals)`. A match with several alternative paths counts only when all
/// of them are discriminating, and is satisfied on any of them.
fn index_keys<'a>(
    set: &[&'a FieldMatch],
    kind: RecordKind,
) -> Vec<(Vec<&'a FieldPath>, Vec<&'a str>)> {
    let discriminating = |p: &FieldPath| {
        DISCRIMINATING
            .iter()
            .any(|d| d.eq_ignore_ascii_case(p.as_str()))
    };
    set.iter()
        .filter_map(|fm| fm.index_literals(kind))
        .filter(|(paths, _)| paths.iter().all(|p| discriminating(p)))
        .collect()
}

/// The group value of one resolved field on a record: the first non-null value's string form.
pub(crate) fn first_value(res: &Resolved, kind: RecordKind, raw: &Record<'_>) -> Option<String> {
    let mut found = None;
    for p in &res.paths[kind_idx(kind)] {
        p.any(raw, &mut |v| {
            if let Some(s) = string_form(v) {
                found = Some(s.into_owned());
                true
            } else {
                false
            }
        });
        if found.is_some() {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths_dismiss_values_before_lookup() {
        let mut m = LiteralMap::default();
        m.keys_of("consolelogin").push(1);
        m.keys_of(&"x".repeat(70)).push(2);
        assert!(m.may_hold("ConsoleLogin"), "folding keeps the length");
        assert_eq!(m.get("consolelogin"), [1]);
        assert!(!m.may_hold("GetObject"));
        assert!(
            m.may_hold(&"y".repeat(63)),
            "63 bytes and more share one bit"
        );
        assert!(m.get(&"y".repeat(63)).is_empty());
        assert_eq!(m.get(&"x".repeat(70)), [2]);
        assert!(!m.structured);
        m.keys_of("[\"a\"]").push(3);
        assert!(
            m.structured,
            "an array literal makes arrays worth spelling out"
        );
    }

    const RULE: &str = "title: A\nid: a\nname: base_a\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: CreateUser}\n  condition: sel\n";

    fn mappings() -> Mappings {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("detections/mappings");
        Mappings::load_dir(&dir).0
    }

    #[test]
    fn load_walks_folders_and_reports_every_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("aws/deep")).unwrap();
        std::fs::create_dir_all(d.join("stateful")).unwrap();
        std::fs::create_dir_all(d.join("mappings")).unwrap();
        std::fs::write(d.join("aws/deep/a.yaml"), RULE).unwrap();
        std::fs::write(
            d.join("aws/two.yml"),
            RULE.replace("id: a", "id: b").replace("base_a", "base_b")
                + "---\n"
                + &RULE.replace("id: a", "id: c").replace("base_a", "base_c"),
        )
        .unwrap();
        std::fs::write(d.join("aws/broken.yml"), "title: [unclosed\n").unwrap();
        std::fs::write(d.join("aws/dup.yml"), RULE).unwrap();
        std::fs::write(d.join("aws/notes.txt"), "not a rule").unwrap();
        std::fs::write(
            d.join("stateful/impossible_travel.yml"),
            "max_speed_kmh: 900\n",
        )
        .unwrap();
        let mappings_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("detections/mappings");
        let (set, errors) = RuleSet::load(&[d.to_path_buf(), d.join("missing")], &mappings_dir);
        let mut ids: Vec<&str> = set.rules().iter().map(|r| r.meta.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec!["a", "b", "c"]);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:#?}");
        assert!(text.iter().any(|e| e.contains("broken.yml")));
        assert!(text.iter().any(|e| e.contains("duplicate rule id a")));
        assert!(
            text.iter()
                .any(|e| e.contains("missing: no such file or folder"))
        );
    }

    #[test]
    fn disjunctions_are_keyed_per_alternative() {
        let rules = [
            // Two alternatives with their own eventName: keyed under both.
            "title: A\nid: a\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection_a: {eventName: DeleteDetector}\n  selection_b: {eventName: UpdateDetector, requestParameters.enable: false}\n  condition: 1 of selection_*\n",
            // An alternative without a literal: tried on every record.
            "title: B\nid: b\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: DeleteTrail}\n  other: {userAgent|contains: x}\n  condition: sel or other\n",
            // Negated filters add nothing: keyed by userIdentity.type.
            "title: C\nid: c\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {userIdentity.type: Root}\n  filter: {eventType: AwsServiceEvent}\n  condition: sel and not filter\n",
        ];
        let sources: Vec<(PathBuf, String)> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (PathBuf::from(format!("{i}.yml")), r.to_string()))
            .collect();
        let (set, errors) = RuleSet::from_sources(&sources, &mappings());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.index_stats(RecordKind::Cloudtrail), (3, 1));
        let ct = |name: &str, ty: &str| {
            crate::json::json!({"eventVersion": "1.08", "eventSource": "x", "eventName": name,
                "userIdentity": {"type": ty}, "requestParameters": {"enable": false}})
        };
        let ids = |v: &Value| -> Vec<&str> {
            set.matching(RecordKind::Cloudtrail, v)
                .into_iter()
                .map(|i| set.rules()[i].meta.id.as_str())
                .collect()
        };
        assert_eq!(ids(&ct("DeleteDetector", "IAMUser")), ["a"]);
        assert_eq!(ids(&ct("UpdateDetector", "Root")), ["a", "c"]);
        assert_eq!(ids(&ct("DeleteTrail", "IAMUser")), ["b"]);
        assert!(ids(&ct("GetUser", "IAMUser")).is_empty());
        let mut cands = Candidates::default();
        let get_user = ct("GetUser", "IAMUser");
        set.candidates(RecordKind::Cloudtrail, &Record::new(&get_user), &mut cands);
        assert_eq!(cands.rules, [1], "only the fallback rule is tried");
    }

    #[test]
    fn an_alternative_path_that_reaches_only_objects_does_not_unkey_a_plain_literal() {
        // `properties.message` maps to `activityDisplayName` and to the `UserType` modified
        // property (an object): a plain activity name is keyed on the first alone, the one
        // translated object value is not.
        let plain = "title: P\nid: p\nlogsource: {product: azure, service: auditlogs}\ndetection:\n  sel: {properties.message: Add owner to application}\n  condition: sel\n";
        let object = "title: O\nid: o\nlogsource: {product: azure, service: auditlogs}\ndetection:\n  sel:\n    properties.message: '\"displayName\":\"UserType\",\"oldValue\":\"[\\\"Guest\\\"]\",\"newValue\":\"[\\\"Member\\\"]\"'\n  condition: sel\n";
        let sources = [
            (PathBuf::from("p.yml"), plain.to_string()),
            (PathBuf::from("o.yml"), object.to_string()),
        ];
        let (set, errors) = RuleSet::from_sources(&sources, &mappings());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.index_stats(RecordKind::EntraAudit), (1, 1));
        let audit = |name: &str, old: &str, new: &str| {
            crate::json::json!({"id": "x", "category": "UserManagement",
                "activityDisplayName": name, "activityDateTime": "2026-01-01T00:00:00Z",
                "targetResources": [{"modifiedProperties": [{"displayName": "UserType",
                    "oldValue": old, "newValue": new}]}]})
        };
        let ids = |v: &Value| -> Vec<&str> {
            set.matching(RecordKind::EntraAudit, v)
                .into_iter()
                .map(|i| set.rules()[i].meta.id.as_str())
                .collect()
        };
        assert_eq!(ids(&audit("Add owner to application", "", "")), ["p"]);
        assert_eq!(
            ids(&audit("Update user", "[\"Guest\"]", "[\"Member\"]")),
            ["o"]
        );
        assert!(ids(&audit("Update user", "[\"Member\"]", "[\"Guest\"]")).is_empty());
    }

    #[test]
    fn a_rule_is_tried_only_when_every_key_of_an_alternative_holds() {
        let rule = "title: D\nid: d\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventSource: iam.amazonaws.com, userIdentity.type: Root}\n  condition: sel\n";
        let (set, errors) =
            RuleSet::from_sources(&[(PathBuf::from("d.yml"), rule.to_string())], &mappings());
        assert!(errors.is_empty(), "{errors:?}");
        let mut cands = Candidates::default();
        let mut tried = |source: crate::json::Value, ty: &str| {
            let v = crate::json::json!({"eventVersion": "1.08", "eventSource": source,
                "eventName": "GetUser", "userIdentity": {"type": ty}});
            set.candidates(RecordKind::Cloudtrail, &Record::new(&v), &mut cands);
            !cands.rules.is_empty()
        };
        assert!(tried("iam.amazonaws.com".into(), "Root"));
        assert!(
            tried("IAM.amazonaws.com".into(), "root"),
            "literals fold case"
        );
        assert!(!tried("iam.amazonaws.com".into(), "IAMUser"));
        assert!(!tried("s3.amazonaws.com".into(), "Root"));
        // One key met twice (an array offered whole and element by element) is still one.
        let twice = crate::json::json!(["iam.amazonaws.com", "iam.amazonaws.com"]);
        assert!(!tried(twice, "IAMUser"));
        assert!(
            tried("iam.amazonaws.com".into(), "Root"),
            "counters restart per record"
        );
    }

    #[test]
    fn correlation_binding_errors_are_named() {
        let corr = |body: &str| {
            format!("{RULE}---\ntitle: C\nid: corr\nname: corr_c\ncorrelation:\n{body}")
        };
        let load =
            |text: String| RuleSet::from_sources(&[(PathBuf::from("c.yml"), text)], &mappings());
        let (set, errors) = load(corr(
            "  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 2}\n",
        ));
        assert!(set.correlations().is_empty());
        assert!(
            errors[0].reason.contains("unknown rule 'nope'"),
            "{errors:?}"
        );
        let (_, errors) = load(corr(
            "  type: event_count\n  rules: [base_a]\n  group-by: [nosuchfield]\n  timespan: 5m\n  condition: {gte: 2}\n",
        ));
        assert!(
            errors[0].reason.contains("group-by: field 'nosuchfield'"),
            "{errors:?}"
        );
        let (_, errors) = load(corr(
            "  type: event_count\n  rules: [base_a]\n  timespan: 5m\n  condition: {lt: 2}\n",
        ));
        assert!(
            errors[0]
                .reason
                .contains("unsupported correlation condition 'lt'"),
            "{errors:?}"
        );
        let (set, errors) = load(corr(
            "  type: event_count\n  rules: [base_a]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n  condition: {gte: 2}\n",
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.correlations().len(), 1);
        // Referenced without `generate: true`: the base rule only feeds the correlation.
        assert!(set.rules()[0].silent);
        // A chained correlation must group by fields of the inner one.
        let chained = corr(
            "  type: event_count\n  rules: [base_a]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n  condition: {gte: 2}\n",
        ) + "---\ntitle: D\nid: outer\ncorrelation:\n  type: temporal\n  rules: [corr_c, base_a]\n  group-by: [sourceIPAddress]\n  timespan: 5m\n";
        let (set, errors) = load(chained);
        assert_eq!(set.correlations().len(), 1);
        assert!(
            errors[0]
                .reason
                .contains("not in correlation 'corr_c''s group-by"),
            "{errors:?}"
        );
    }
}
