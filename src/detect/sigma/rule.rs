//! One Sigma document -> a compiled [`Rule`] or a parsed [`Correlation`], with the
//! picket extension block (`picket: {dedup: {fields: [...], window: 1h}}`).
//!
//! To accept one more top-level key: read it in [`parse_document`]; keys that change
//! semantics picket does not implement (`action: global`, `filter`) are rejected by name.

use std::path::{Path, PathBuf};

use serde_norway::Value as Yaml;

use super::detection::{Detection, Resolver};
use super::mapping::{LogSource, MappingResolver, Mappings, Resolved};
use super::path::Record;
use crate::model::{RecordKind, Severity};

/// Per-rule picket options.
#[derive(Debug, Clone, Default)]
pub struct PicketExt {
    /// One finding per group within a window.
    pub dedup: Option<Dedup>,
}

/// `dedup: {fields: [...], window: 1h}`.
#[derive(Debug, Clone)]
pub struct Dedup {
    /// Sigma field names forming the group.
    pub fields: Vec<String>,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Resolved paths of `fields` (empty for correlations: they use their group key).
    pub(crate) resolved: Vec<Resolved>,
}

/// Metadata common to rules and correlations.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The file it came from.
    pub path: PathBuf,
    /// `id` (findings' detector id).
    pub id: String,
    /// `name` (how correlations refer to it), when given.
    pub name: Option<String>,
    /// `title`.
    pub title: String,
    /// `description`.
    pub description: Option<String>,
    /// `level`.
    pub level: Option<Severity>,
    /// `status`.
    pub status: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `author` (the DRL requires keeping it with alerts).
    pub author: Option<String>,
    /// Picket extension.
    pub picket: PicketExt,
}

/// A compiled detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Metadata.
    pub meta: Meta,
    /// `logsource`.
    pub logsource: LogSource,
    /// The record kinds it applies to.
    pub kinds: Vec<RecordKind>,
    /// The compiled detection.
    pub detection: Detection,
    /// Only feeds correlations (referenced by one without `generate: true`).
    pub silent: bool,
}

impl Rule {
    /// Whether the rule matches a raw record of `kind` (false for kinds it does not cover).
    /// A CloudTrail record in an EventBridge envelope is unwrapped first.
    pub fn matches(&self, kind: RecordKind, raw: &crate::json::Value) -> bool {
        self.matches_record(kind, &super::view_record(kind, raw))
    }

    /// [`Rule::matches`] on a record already unwrapped ([`super::view_record`]) and indexed:
    /// what the detector does once per event for all its candidate rules.
    pub fn matches_record(&self, kind: RecordKind, rec: &Record<'_>) -> bool {
        self.kinds.contains(&kind) && self.detection.matches(kind, rec)
    }
}

/// Correlation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationType {
    /// At least N matching events per group in the timespan.
    EventCount,
    /// At least N distinct values of a field per group in the timespan.
    ValueCount,
    /// Every referenced rule matched per group in the timespan, in any order.
    Temporal,
    /// Every referenced rule matched per group in the timespan, in the listed order.
    TemporalOrdered,
}

impl CorrelationType {
    /// The Sigma name.
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// A correlation rule (Sigma correlation spec), evaluated in event time.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// Metadata.
    pub meta: Meta,
    /// Type.
    pub typ: CorrelationType,
    /// Referenced rules (names or ids), in order.
    pub rules: Vec<String>,
    /// `group-by` fields.
    pub group_by: Vec<String>,
    /// `timespan` in seconds.
    pub timespan_secs: u64,
    /// `condition` threshold: fires when the count is at least this (`gte`; `gt` is +1). For
    /// `temporal` it counts distinct referenced rules (default: all of them).
    pub threshold: u64,
    /// `condition.field` for value_count.
    pub field: Option<String>,
    /// `generate`: referenced rules also report on their own.
    pub generate: bool,
}

/// A parsed document.
#[derive(Debug, Clone)]
pub enum Document {
    /// A detection rule.
    Rule(Box<Rule>),
    /// A correlation rule.
    Correlation(Box<Correlation>),
}

/// Parses `30s`, `5m`, `1h`, `2d`, `1w` into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration `{s}`"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("invalid duration `{s}` (use s, m, h, d, w)")),
    };
    if n == 0 {
        return Err(format!("duration `{s}` must be positive"));
    }
    Ok(n * mult)
}

fn get<'a>(doc: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    doc.as_mapping().and_then(|m| m.get(key))
}

fn get_str(doc: &Yaml, key: &str) -> Result<Option<String>, String> {
    match get(doc, key) {
        None | Some(Yaml::Null) => Ok(None),
        Some(Yaml::String(s)) => Ok(Some(s.clone())),
        Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
        Some(Yaml::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn get_list(doc: &Yaml, key: &str) -> Result<Vec<String>, String> {
    match get(doc, key) {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::String(s)) => Ok(vec![s.clone()]),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => Ok(s.clone()),
                Yaml::Number(n) => Ok(n.to_string()),
                _ => Err(format!("`{key}` must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(format!("`{key}` must be a list of strings")),
    }
}

fn parse_meta(path: &Path, doc: &Yaml) -> Result<Meta, String> {
    let title = get_str(doc, "title")?.ok_or("missing `title`")?;
    let id = get_str(doc, "id")?.ok_or("missing `id`")?;
    let level = match get_str(doc, "level")? {
        None => None,
        Some(l) => Some(Severity::parse(&l).ok_or_else(|| format!("unknown level `{l}`"))?),
    };
    Ok(Meta {
        path: path.to_path_buf(),
        id,
        name: get_str(doc, "name")?,
        title,
        description: get_str(doc, "description")?,
        level,
        status: get_str(doc, "status")?,
        tags: get_list(doc, "tags")?,
        author: get_str(doc, "author")?,
        picket: PicketExt::default(),
    })
}

fn parse_picket(doc: &Yaml, resolver: Option<&dyn Resolver>) -> Result<PicketExt, String> {
    let Some(block) = get(doc, "picket") else {
        return Ok(PicketExt::default());
    };
    let map = block.as_mapping().ok_or("`picket` must be a mapping")?;
    let mut ext = PicketExt::default();
    for (k, v) in map {
        match k.as_str() {
            Some("dedup") => {
                let fields = get_list(v, "fields")?;
                let window = get_str(v, "window")?.ok_or("picket.dedup needs `window`")?;
                let window_secs = parse_duration(&window)?;
                let resolved = match resolver {
                    Some(r) => fields
                        .iter()
                        .map(|f| r.resolve(f).map_err(|e| format!("picket.dedup: {e}")))
                        .collect::<Result<_, _>>()?,
                    None => Vec::new(),
                };
                ext.dedup = Some(Dedup {
                    fields,
                    window_secs,
                    resolved,
                });
            }
            other => return Err(format!("unknown picket option `{}`", other.unwrap_or("?"))),
        }
    }
    Ok(ext)
}

/// Takes every field name as a raw path, for every kind (engine checks without a mapping).
pub struct RawResolver;

impl Resolver for RawResolver {
    fn resolve(&self, field: &str) -> Result<Resolved, String> {
        let p = super::path::FieldPath::parse(field)?;
        Ok(Resolved {
            paths: std::array::from_fn(|_| vec![p.clone()]),
            values: std::array::from_fn(|_| None),
        })
    }
}

/// Parses and compiles one YAML document.
pub fn parse_document(path: &Path, doc: &Yaml, mappings: &Mappings) -> Result<Document, String> {
    if !doc.is_mapping() {
        return Err("a rule document must be a mapping".to_string());
    }
    if let Some(action) = get_str(doc, "action")? {
        return Err(format!(
            "unsupported feature 'action: {action}' (rule collections)"
        ));
    }
    if get(doc, "filter").is_some() {
        return Err("unsupported feature 'filter' (meta filter rules)".to_string());
    }
    if let Some(corr) = get(doc, "correlation") {
        let mut meta = parse_meta(path, doc)?;
        meta.picket = parse_picket(doc, None)?;
        return parse_correlation(meta, corr).map(|c| Document::Correlation(Box::new(c)));
    }
    let mut meta = parse_meta(path, doc)?;
    let logsource: LogSource = match get(doc, "logsource") {
        Some(ls) => serde_norway::from_value(ls.clone()).map_err(|e| format!("logsource: {e}"))?,
        None => return Err("missing `logsource`".to_string()),
    };
    let detection = get(doc, "detection").ok_or("missing `detection`")?;
    let Some(mapping) = mappings.find(&logsource) else {
        // Still check the detection against the engine, so an unsupported feature is named
        // even for logsources picket cannot read.
        Detection::compile(detection, &RawResolver)?;
        return Err(format!("logsource {logsource}: no record kind"));
    };
    let resolver = MappingResolver(mapping);
    let detection = Detection::compile(detection, &resolver)?;
    meta.picket = parse_picket(doc, Some(&resolver))?;
    Ok(Document::Rule(Box::new(Rule {
        meta,
        logsource,
        kinds: mapping.kinds.clone(),
        detection,
        silent: false,
    })))
}

fn parse_correlation(meta: Meta, c: &Yaml) -> Result<Correlation, String> {
    let typ = match get_str(c, "type")?.as_deref() {
        Some("event_count") => CorrelationType::EventCount,
        Some("value_count") => CorrelationType::ValueCount,
        Some("temporal") => CorrelationType::Temporal,
        Some("temporal_ordered") => CorrelationType::TemporalOrdered,
        Some(other) => return Err(format!("unsupported correlation type '{other}'")),
        None => return Err("correlation: missing `type`".to_string()),
    };
    if get(c, "aliases").is_some() {
        return Err("unsupported correlation feature 'aliases'".to_string());
    }
    let rules = get_list(c, "rules")?;
    if rules.is_empty() {
        return Err("correlation: `rules` is empty".to_string());
    }
    let group_by = get_list(c, "group-by")?;
    let timespan = get_str(c, "timespan")?.ok_or("correlation: missing `timespan`")?;
    let timespan_secs = parse_duration(&timespan)?;
    let generate = matches!(get(c, "generate"), Some(Yaml::Bool(true)));
    let mut threshold = 1;
    let mut field = None;
    match get(c, "condition") {
        None if matches!(
            typ,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        ) => {}
        None => return Err("correlation: missing `condition`".to_string()),
        Some(cond) => {
            let map = cond
                .as_mapping()
                .ok_or("correlation: `condition` must be a mapping")?;
            for (k, v) in map {
                let key = k.as_str().unwrap_or("");
                let num = || {
                    v.as_u64()
                        .ok_or(format!("correlation: `{key}` needs a whole number"))
                };
                match key {
                    "gte" => threshold = num()?,
                    "gt" => threshold = num()? + 1,
                    "eq" | "neq" | "lt" | "lte" => {
                        return Err(format!(
                            "unsupported correlation condition '{key}' (only gte/gt can fire in a stream)"
                        ));
                    }
                    "field" => field = Some(get_str(cond, "field")?.unwrap_or_default()),
                    other => return Err(format!("correlation: unknown condition key `{other}`")),
                }
            }
        }
    }
    let explicit = get(c, "condition").is_some();
    match typ {
        CorrelationType::Temporal if !explicit => threshold = rules.len() as u64,
        CorrelationType::TemporalOrdered if explicit && threshold != rules.len() as u64 => {
            return Err(
                "unsupported: temporal_ordered with a condition other than all rules".to_string(),
            );
        }
        _ => {}
    }
    if typ == CorrelationType::ValueCount && field.is_none() {
        return Err("correlation value_count: condition needs `field`".to_string());
    }
    if typ == CorrelationType::TemporalOrdered && rules.len() < 2 {
        return Err("correlation temporal_ordered needs at least two rules".to_string());
    }
    Ok(Correlation {
        meta,
        typ,
        rules,
        group_by,
        timespan_secs,
        threshold: threshold.max(1),
        field,
        generate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corr(body: &str) -> Result<Correlation, String> {
        let doc: Yaml =
            serde_norway::from_str(&format!("title: t\nid: c\ncorrelation:\n{body}")).unwrap();
        match parse_document(Path::new("c.yml"), &doc, &Mappings::default())? {
            Document::Correlation(c) => Ok(*c),
            Document::Rule(_) => panic!("not a correlation"),
        }
    }

    #[test]
    fn correlation_conditions() {
        let c = corr("  type: temporal\n  rules: [a, b, c]\n  timespan: 1h\n").unwrap();
        assert_eq!(c.threshold, 3);
        let c =
            corr("  type: temporal\n  rules: [a, b, c]\n  timespan: 1h\n  condition: {gte: 2}\n")
                .unwrap();
        assert_eq!(c.threshold, 2);
        let c = corr("  type: event_count\n  rules: [a]\n  timespan: 1h\n  condition: {gt: 4}\n")
            .unwrap();
        assert_eq!((c.threshold, c.timespan_secs), (5, 3600));
        assert!(
            corr("  type: value_count\n  rules: [a]\n  timespan: 1h\n  condition: {gte: 4}\n")
                .unwrap_err()
                .contains("field")
        );
        assert!(
            corr(
                "  type: temporal_ordered\n  rules: [a, b]\n  timespan: 1h\n  condition: {gte: 1}\n"
            )
            .is_err()
        );
        assert!(corr("  type: event_count\n  rules: [a]\n  timespan: 1h\n  aliases: {}\n  condition: {gte: 1}\n").unwrap_err().contains("'aliases'"));
        assert!(
            corr("  type: sequence\n  rules: [a]\n  timespan: 1h\n")
                .unwrap_err()
                .contains("'sequence'")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("0m").is_err());
    }

    #[test]
    fn unknown_logsource_and_collections_are_named() {
        let doc: Yaml = serde_norway::from_str(
            "title: t\nid: x\nlogsource: {product: okta, service: okta}\ndetection: {sel: {a: 1}, condition: sel}",
        )
        .unwrap();
        let Err(e) = parse_document(Path::new("r.yml"), &doc, &Mappings::default()) else {
            panic!("okta loaded")
        };
        assert_eq!(e, "logsource product=okta service=okta: no record kind");
        let doc: Yaml = serde_norway::from_str("action: global\ntitle: t").unwrap();
        let Err(e) = parse_document(Path::new("r.yml"), &doc, &Mappings::default()) else {
            panic!("collection loaded")
        };
        assert!(e.contains("action: global"));
    }
}
