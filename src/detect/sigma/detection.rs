//! A rule's compiled `detection:` block: searches (maps, lists of maps, keyword lists) of
//! field matches with their modifiers, and the condition over them. Compiled once at load
//! (regexes built, literals folded, field names resolved to raw paths per record kind);
//! evaluation on a raw record allocates only for non-string values.
//!
//! To add a modifier: parse it in [`Mods::parse`], apply it in `compile_value`, and add a
//! test below; unknown modifiers fail the rule's load by name.

use std::net::IpAddr;

use crate::json::{JsonNumberTrait, JsonValueTrait, Value, ValueRef};
use ipnet::IpNet;
use serde_norway::Value as Yaml;

use super::condition::{self, Cond};
use super::mapping::Resolved;
use super::path::{FieldPath, Record, string_form};
use super::pattern::{self, Anchor, StrPattern};
use crate::model::RecordKind;

/// How many record kinds there are (paths are stored per kind).
pub const N_KINDS: usize = RecordKind::ALL.len();

/// Raw paths of one Sigma field, per record kind (index = `RecordKind as usize`); several
/// paths for one kind are alternatives (any).
pub type KindPaths = [Vec<FieldPath>; N_KINDS];

/// The index of a kind in [`KindPaths`].
pub fn kind_idx(k: RecordKind) -> usize {
    k as usize
}

/// Resolves a Sigma field name to raw paths, or says why it cannot.
pub trait Resolver {
    /// The paths (and value translations) of `field` per kind, or the reason it has none.
    fn resolve(&self, field: &str) -> Result<Resolved, String>;
}

/// Numeric comparison of `gt`/`gte`/`lt`/`lte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One compiled value of a field match.
#[derive(Debug, Clone)]
enum VMatch {
    Str(StrPattern),
    Null,
    Num(Cmp, f64),
    Cidr(IpNet),
    FieldRef {
        paths: Box<KindPaths>,
        anchor: Anchor,
        cased: bool,
    },
}

/// One `field|modifiers: values` entry (or a keyword list when `keyword`).
#[derive(Debug, Clone)]
pub struct FieldMatch {
    /// The Sigma field name (empty for keywords).
    pub field: String,
    paths: Box<KindPaths>,
    /// Per original value, its alternatives (transform variants).
    groups: Vec<Vec<VMatch>>,
    /// Groups compiled with a kind's value translations, for the kinds that have some.
    kind_groups: Vec<(usize, Vec<Vec<VMatch>>)>,
    all: bool,
    exists: Option<bool>,
    keyword: bool,
}

/// One named search.
#[derive(Debug, Clone)]
pub enum Search {
    /// A map: every field match.
    Map(Vec<FieldMatch>),
    /// A list of maps: any of them.
    AnyMap(Vec<Vec<FieldMatch>>),
}

/// A compiled detection.
#[derive(Debug, Clone)]
pub struct Detection {
    /// Search names in declaration order.
    pub names: Vec<String>,
    /// Searches, by the same index.
    pub searches: Vec<Search>,
    /// The condition.
    pub cond: Cond,
}

#[derive(Debug, Default)]
struct Mods {
    anchor: Option<Anchor>,
    all: bool,
    cased: bool,
    re: Option<(bool, bool, bool)>,
    cidr: bool,
    exists: bool,
    cmp: Option<Cmp>,
    fieldref: bool,
    transforms: Vec<Transform>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Base64,
    Base64Offset,
    Windash,
    Utf16Le,
    Utf16Be,
    Utf16Bom,
}

impl Mods {
    fn parse(mods: &[&str]) -> Result<Mods, String> {
        let mut m = Mods::default();
        for &name in mods {
            let set_anchor = |m: &mut Mods, a| {
                if m.anchor.is_some() {
                    return Err(format!("conflicting modifier '{name}'"));
                }
                m.anchor = Some(a);
                Ok(())
            };
            match name {
                "contains" => set_anchor(&mut m, Anchor::Contains)?,
                "startswith" => set_anchor(&mut m, Anchor::Start)?,
                "endswith" => set_anchor(&mut m, Anchor::End)?,
                "all" => m.all = true,
                "cased" => m.cased = true,
                "re" => m.re = Some((false, false, false)),
                "i" | "m" | "s" => {
                    let Some(flags) = m.re.as_mut() else {
                        return Err(format!("modifier '{name}' only follows 're'"));
                    };
                    match name {
                        "i" => flags.0 = true,
                        "m" => flags.1 = true,
                        _ => flags.2 = true,
                    }
                }
                "cidr" => m.cidr = true,
                "exists" => m.exists = true,
                "gt" => m.cmp = Some(Cmp::Gt),
                "gte" => m.cmp = Some(Cmp::Gte),
                "lt" => m.cmp = Some(Cmp::Lt),
                "lte" => m.cmp = Some(Cmp::Lte),
                "fieldref" => m.fieldref = true,
                "base64" => m.transforms.push(Transform::Base64),
                "base64offset" => m.transforms.push(Transform::Base64Offset),
                "windash" => m.transforms.push(Transform::Windash),
                "wide" | "utf16le" => m.transforms.push(Transform::Utf16Le),
                "utf16be" => m.transforms.push(Transform::Utf16Be),
                "utf16" => m.transforms.push(Transform::Utf16Bom),
                "expand" => return Err("unsupported modifier 'expand'".to_string()),
                other => return Err(format!("unknown modifier '{other}'")),
            }
        }
        let kinds = [
            m.re.is_some(),
            m.cidr,
            m.exists,
            m.cmp.is_some(),
            m.fieldref,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if kinds > 1 {
            return Err(format!("incompatible modifiers '{}'", mods.join("|")));
        }
        if kinds == 1 && (!m.transforms.is_empty() || (m.anchor.is_some() && !m.fieldref)) {
            return Err(format!("incompatible modifiers '{}'", mods.join("|")));
        }
        if m.transforms.iter().any(|t| {
            matches!(
                t,
                Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16Bom
            )
        }) && !m
            .transforms
            .iter()
            .any(|t| matches!(t, Transform::Base64 | Transform::Base64Offset))
        {
            return Err(
                "modifier 'utf16*'/'wide' needs a following 'base64' or 'base64offset'".to_string(),
            );
        }
        Ok(m)
    }
}

/// The scalar text of a YAML value (`None` for null), or an error for structures.
fn scalar(v: &Yaml) -> Result<Option<String>, String> {
    match v {
        Yaml::Null => Ok(None),
        Yaml::Bool(b) => Ok(Some(b.to_string())),
        Yaml::Number(n) => Ok(Some(n.to_string())),
        Yaml::String(s) => Ok(Some(s.clone())),
        Yaml::Tagged(t) => scalar(&t.value),
        Yaml::Sequence(_) | Yaml::Mapping(_) => {
            Err("a value must be a scalar or a list of scalars".to_string())
        }
    }
}

fn compile_value(
    v: &Yaml,
    m: &Mods,
    resolver: &dyn Resolver,
    translate: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Vec<VMatch>, String> {
    let Some(mut text) = scalar(v)? else {
        return Ok(vec![VMatch::Null]);
    };
    if let Some(raw) = translate.and_then(|t| t.get(&text.to_lowercase())) {
        text = raw.clone();
    }
    if let Some((i, ml, s)) = m.re {
        return Ok(vec![VMatch::Str(StrPattern::regex(&text, i, ml, s)?)]);
    }
    if m.cidr {
        let net = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("invalid cidr `{text}`"))?;
        return Ok(vec![VMatch::Cidr(net)]);
    }
    if let Some(cmp) = m.cmp {
        let n = text
            .parse::<f64>()
            .map_err(|_| format!("'{cmp:?}' needs a number, got `{text}`").to_lowercase())?;
        return Ok(vec![VMatch::Num(cmp, n)]);
    }
    if m.fieldref {
        let resolved = resolver.resolve(&text)?;
        return Ok(vec![VMatch::FieldRef {
            paths: Box::new(resolved.paths),
            anchor: m.anchor.unwrap_or(Anchor::Exact),
            cased: m.cased,
        }]);
    }
    let mut variants: Vec<Vec<u8>> = vec![text.into_bytes()];
    let mut literal = false;
    let mut cased = m.cased;
    for t in &m.transforms {
        variants = match t {
            Transform::Windash => variants
                .iter()
                .flat_map(|b| pattern::windash(&String::from_utf8_lossy(b)))
                .map(String::into_bytes)
                .collect(),
            Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16Bom => variants
                .iter()
                .map(|b| {
                    let s = String::from_utf8_lossy(b);
                    let mut out = Vec::new();
                    if *t == Transform::Utf16Bom {
                        out.extend_from_slice(&[0xFF, 0xFE]);
                    }
                    for u in s.encode_utf16() {
                        if *t == Transform::Utf16Be {
                            out.extend_from_slice(&u.to_be_bytes());
                        } else {
                            out.extend_from_slice(&u.to_le_bytes());
                        }
                    }
                    out
                })
                .collect(),
            Transform::Base64 => {
                literal = true;
                cased = true;
                variants
                    .iter()
                    .map(|b| pattern::base64(b).into_bytes())
                    .collect()
            }
            Transform::Base64Offset => {
                literal = true;
                cased = true;
                variants
                    .iter()
                    .flat_map(|b| pattern::base64_offsets(b))
                    .map(String::into_bytes)
                    .collect()
            }
        };
    }
    let anchor = m.anchor.unwrap_or(Anchor::Exact);
    variants
        .into_iter()
        .map(|b| {
            let s =
                String::from_utf8(b).map_err(|_| "transformed value is not text".to_string())?;
            Ok(VMatch::Str(StrPattern::sigma(&s, anchor, cased, literal)?))
        })
        .collect()
}

fn compile_field(
    key: &str,
    value: &Yaml,
    resolver: &dyn Resolver,
    keyword: bool,
) -> Result<FieldMatch, String> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("").to_string();
    let mods: Vec<&str> = parts.collect();
    let keyword = keyword || field.is_empty();
    let mut m = Mods::parse(&mods)?;
    if keyword && m.anchor.is_none() && m.re.is_none() {
        m.anchor = Some(Anchor::Contains);
    }
    if keyword && (m.exists || m.fieldref) {
        return Err("keyword searches cannot use 'exists' or 'fieldref'".to_string());
    }
    let resolved = if keyword {
        Resolved {
            paths: std::array::from_fn(|_| Vec::new()),
            values: std::array::from_fn(|_| None),
        }
    } else {
        resolver.resolve(&field)?
    };
    let paths = Box::new(resolved.paths);
    let values: Vec<&Yaml> = match value {
        Yaml::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    if values.is_empty() {
        return Err(format!("field '{field}': empty value list"));
    }
    if m.exists {
        let [v] = values.as_slice() else {
            return Err(format!("field '{field}': 'exists' takes one boolean"));
        };
        let b = match v {
            Yaml::Bool(b) => *b,
            Yaml::String(s) if s.eq_ignore_ascii_case("true") => true,
            Yaml::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(format!("field '{field}': 'exists' takes true or false")),
        };
        return Ok(FieldMatch {
            field,
            paths,
            groups: Vec::new(),
            kind_groups: Vec::new(),
            all: false,
            exists: Some(b),
            keyword,
        });
    }
    let compile = |translate| {
        values
            .iter()
            .map(|v| compile_value(v, &m, resolver, translate))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                if field.is_empty() {
                    e
                } else {
                    format!("field '{field}': {e}")
                }
            })
    };
    let groups = compile(None)?;
    let mut kind_groups = Vec::new();
    for (k, t) in resolved.values.iter().enumerate() {
        if let Some(t) = t {
            kind_groups.push((k, compile(Some(t))?));
        }
    }
    Ok(FieldMatch {
        field,
        paths,
        groups,
        kind_groups,
        all: m.all,
        exists: None,
        keyword,
    })
}

fn compile_map(
    map: &serde_norway::Mapping,
    resolver: &dyn Resolver,
) -> Result<Vec<FieldMatch>, String> {
    map.iter()
        .map(|(k, v)| {
            let key = scalar(k)?.unwrap_or_default();
            compile_field(&key, v, resolver, false)
        })
        .collect()
}

fn compile_search(v: &Yaml, resolver: &dyn Resolver) -> Result<Search, String> {
    match v {
        Yaml::Mapping(map) => Ok(Search::Map(compile_map(map, resolver)?)),
        Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) => {
            let maps = items
                .iter()
                .filter_map(|i| i.as_mapping())
                .map(|m| compile_map(m, resolver))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Search::AnyMap(maps))
        }
        Yaml::Sequence(items)
            if items
                .iter()
                .all(|i| !matches!(i, Yaml::Mapping(_) | Yaml::Sequence(_))) =>
        {
            Ok(Search::Map(vec![compile_field("", v, resolver, true)?]))
        }
        Yaml::Sequence(_) => Err("a search list mixes maps and keywords".to_string()),
        Yaml::Tagged(t) => compile_search(&t.value, resolver),
        scalar_value => Ok(Search::Map(vec![compile_field(
            "",
            scalar_value,
            resolver,
            true,
        )?])),
    }
}

impl Detection {
    /// Compiles a `detection:` mapping.
    pub fn compile(detection: &Yaml, resolver: &dyn Resolver) -> Result<Detection, String> {
        let Yaml::Mapping(map) = detection else {
            return Err("detection must be a mapping".to_string());
        };
        let mut names = Vec::new();
        let mut searches = Vec::new();
        let mut cond_text: Option<Vec<String>> = None;
        for (k, v) in map {
            let key = scalar(k)?.unwrap_or_default();
            match key.as_str() {
                "condition" => {
                    cond_text = Some(match v {
                        Yaml::Sequence(items) => items
                            .iter()
                            .map(|i| scalar(i).map(Option::unwrap_or_default))
                            .collect::<Result<_, _>>()?,
                        other => vec![scalar(other)?.unwrap_or_default()],
                    });
                }
                "timeframe" => {
                    return Err(
                        "unsupported feature 'timeframe' (use a correlation rule)".to_string()
                    );
                }
                _ => {
                    let search =
                        compile_search(v, resolver).map_err(|e| format!("search '{key}': {e}"))?;
                    names.push(key);
                    searches.push(search);
                }
            }
        }
        let cond_text = cond_text.ok_or("detection has no condition")?;
        let mut conds = cond_text
            .iter()
            .map(|c| condition::parse(c, &names))
            .collect::<Result<Vec<_>, _>>()?;
        let cond = if conds.len() == 1 {
            conds.remove(0)
        } else {
            Cond::Or(conds)
        };
        Ok(Detection {
            names,
            searches,
            cond,
        })
    }

    /// Evaluates on a raw record of `kind`.
    pub fn matches(&self, kind: RecordKind, raw: &Record<'_>) -> bool {
        let k = kind_idx(kind);
        self.cond.eval(&mut |i| match &self.searches[i] {
            Search::Map(fms) => fms.iter().all(|f| f.matches(k, raw)),
            Search::AnyMap(maps) => maps.iter().any(|fms| fms.iter().all(|f| f.matches(k, raw))),
        })
    }

    /// For indexing: sets of field matches such that, whenever the rule matches, every match
    /// of at least one set holds (see [`Cond::alternatives`]; a list-of-maps search adds no
    /// field match to its sets). `None` when the rule can match without any positive search.
    pub fn alternatives(&self) -> Option<Vec<Vec<&FieldMatch>>> {
        let sets = self.cond.alternatives()?;
        Some(
            sets.into_iter()
                .map(|ids| {
                    ids.into_iter()
                        .flat_map(|i| match &self.searches[i] {
                            Search::Map(fms) => fms.as_slice(),
                            Search::AnyMap(_) => &[],
                        })
                        .collect()
                })
                .collect(),
        )
    }

    /// Every field match (for listing fields).
    pub fn fields(&self) -> impl Iterator<Item = &FieldMatch> {
        self.searches.iter().flat_map(|s| match s {
            Search::Map(fms) => fms.iter().collect::<Vec<_>>(),
            Search::AnyMap(maps) => maps.iter().flatten().collect(),
        })
    }
}

/// Calls `f` on every scalar leaf of a record until it returns true.
fn any_leaf(v: &Value, f: &mut dyn FnMut(&Value) -> bool) -> bool {
    match v.as_ref() {
        ValueRef::Object(o) => o.iter().any(|(_, x)| any_leaf(x, f)),
        ValueRef::Array(a) => a.iter().any(|x| any_leaf(x, f)),
        _ => f(v),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v.as_ref() {
        ValueRef::Number(n) => n.as_f64(),
        ValueRef::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl VMatch {
    fn on(&self, v: &Value, k: usize, raw: &Record<'_>) -> bool {
        match self {
            VMatch::Str(p) if let Some(s) = v.as_str() => p.is_match(s),
            // A number matches by its JSON spelling, as every other value (`10` is not
            // `10.0`, as in pySigma's backends); integers are spelled without allocating.
            VMatch::Str(p) => match v.as_ref() {
                ValueRef::Number(n) if let Some(i) = n.as_i64() => {
                    p.is_match(itoa::Buffer::new().format(i))
                }
                ValueRef::Number(n) if let Some(u) = n.as_u64() => {
                    p.is_match(itoa::Buffer::new().format(u))
                }
                _ => string_form(v).is_some_and(|s| p.is_match(&s)),
            },
            VMatch::Null => v.is_null(),
            VMatch::Num(cmp, n) => as_f64(v).is_some_and(|x| match cmp {
                Cmp::Gt => x > *n,
                Cmp::Gte => x >= *n,
                Cmp::Lt => x < *n,
                Cmp::Lte => x <= *n,
            }),
            VMatch::Cidr(net) => v
                .as_str()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| net.contains(&ip)),
            VMatch::FieldRef {
                paths,
                anchor,
                cased,
            } => {
                let Some(hay) = string_form(v) else {
                    return false;
                };
                paths[k].iter().any(|p| {
                    p.any(raw, &mut |o| {
                        string_form(o).is_some_and(|needle| {
                            let (h, n) = (hay.as_bytes(), needle.as_bytes());
                            let eq = |a: &[u8], b: &[u8]| {
                                if *cased {
                                    a == b
                                } else {
                                    a.eq_ignore_ascii_case(b)
                                }
                            };
                            match anchor {
                                Anchor::Exact => eq(h, n),
                                Anchor::Start => h.len() >= n.len() && eq(&h[..n.len()], n),
                                Anchor::End => h.len() >= n.len() && eq(&h[h.len() - n.len()..], n),
                                Anchor::Contains => pattern::contains(h, n, *cased),
                            }
                        })
                    })
                })
            }
        }
    }
}

impl FieldMatch {
    /// The folded literals this match requires at one of its paths of `kind`, when it is a
    /// plain equality (used by the rule index), with the paths where one of them may be
    /// found: a path ending in a `[key=value]` step reaches only objects, whose text starts
    /// with `{`, so it is left out when no literal does (a mapping may give a field such a
    /// path beside a plain one, for one special value).
    pub fn index_literals(&self, kind: RecordKind) -> Option<(Vec<&FieldPath>, Vec<&str>)> {
        if self.keyword || self.exists.is_some() || (self.all && self.groups.len() > 1) {
            return None;
        }
        let paths = self.paths[kind_idx(kind)].as_slice();
        if paths.is_empty() {
            return None;
        }
        let mut lits = Vec::new();
        for g in self.groups_for(kind_idx(kind)) {
            for vm in g {
                match vm {
                    VMatch::Str(p) => lits.push(p.exact_literal()?),
                    _ => return None,
                }
            }
        }
        let objects_only = |p: &FieldPath| p.reaches_objects_only();
        let may_match: Vec<&FieldPath> = paths
            .iter()
            .filter(|p| !objects_only(p) || lits.iter().any(|l| l.starts_with('{')))
            .collect();
        if may_match.is_empty() {
            // The match cannot hold; index it as written (the rule is then tried as before).
            return Some((paths.iter().collect(), lits));
        }
        Some((may_match, lits))
    }

    fn groups_for(&self, k: usize) -> &[Vec<VMatch>] {
        self.kind_groups
            .iter()
            .find(|(kk, _)| *kk == k)
            .map_or(&self.groups, |(_, g)| g)
    }

    /// The raw paths of this field for `kind`.
    pub fn paths(&self, kind: RecordKind) -> &[FieldPath] {
        &self.paths[kind_idx(kind)]
    }

    fn group_matches(&self, group: &[VMatch], k: usize, raw: &Record<'_>) -> bool {
        if self.keyword {
            return group
                .iter()
                .any(|vm| any_leaf(raw.value(), &mut |v| vm.on(v, k, raw)));
        }
        let paths = &self.paths[k];
        if group.iter().any(|vm| matches!(vm, VMatch::Null))
            && !paths.iter().any(|p| p.any(raw, &mut |v| !v.is_null()))
        {
            return true;
        }
        // Each path is walked once for the whole value list (a list of twenty event names
        // is twenty comparisons on one value, not twenty walks).
        paths.iter().any(|p| {
            p.any(raw, &mut |v| {
                group
                    .iter()
                    .any(|vm| !matches!(vm, VMatch::Null) && vm.on(v, k, raw))
            })
        })
    }

    fn matches(&self, k: usize, raw: &Record<'_>) -> bool {
        if let Some(want) = self.exists {
            return self.paths[k].iter().any(|p| p.exists(raw)) == want;
        }
        let groups = self.groups_for(k);
        if self.all {
            groups.iter().all(|g| self.group_matches(g, k, raw))
        } else {
            groups.iter().any(|g| self.group_matches(g, k, raw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    /// Every field maps to itself for every kind.
    struct Raw;
    impl Resolver for Raw {
        fn resolve(&self, field: &str) -> Result<Resolved, String> {
            let p = FieldPath::parse(field)?;
            Ok(Resolved {
                paths: std::array::from_fn(|_| vec![p.clone()]),
                values: std::array::from_fn(|_| None),
            })
        }
    }

    fn det(yaml: &str) -> Result<Detection, String> {
        let y: Yaml = serde_norway::from_str(yaml).unwrap();
        Detection::compile(&y, &Raw)
    }

    fn hit(yaml: &str, raw: Value) -> bool {
        det(yaml)
            .unwrap()
            .matches(RecordKind::Cloudtrail, &Record::new(&raw))
    }

    #[test]
    fn maps_lists_and_value_lists() {
        let y = "sel:\n  eventName: [CreateUser, DeleteUser]\n  eventSource: iam.amazonaws.com\ncondition: sel";
        assert!(hit(
            y,
            json!({"eventName": "deleteuser", "eventSource": "iam.amazonaws.com"})
        ));
        assert!(!hit(
            y,
            json!({"eventName": "GetUser", "eventSource": "iam.amazonaws.com"})
        ));
        let y = "sel:\n  - a: 1\n  - b: 2\ncondition: sel";
        assert!(hit(y, json!({"b": 2})));
        assert!(!hit(y, json!({"a": 2})));
    }

    #[test]
    fn modifiers() {
        let y = "sel:\n  ua|contains|all: [aws-cli, boto]\ncondition: sel";
        assert!(hit(y, json!({"ua": "Boto3 aws-cli/2"})));
        assert!(!hit(y, json!({"ua": "aws-cli/2"})));
        let y = "sel:\n  ip|cidr: 10.0.0.0/8\ncondition: sel";
        assert!(hit(y, json!({"ip": "10.1.2.3"})));
        assert!(!hit(y, json!({"ip": "11.1.2.3"})));
        let y = "sel:\n  n|gte: 5\ncondition: sel";
        assert!(hit(y, json!({"n": "7"})));
        assert!(!hit(y, json!({"n": 4})));
        let y = "sel:\n  x|re|i: '^ab+c$'\ncondition: sel";
        assert!(hit(y, json!({"x": "ABBC"})));
        let y = "sel:\n  x|re: '^ab+c$'\ncondition: sel";
        assert!(!hit(y, json!({"x": "ABBC"})));
        let y = "sel:\n  x|cased: Abc\ncondition: sel";
        assert!(!hit(y, json!({"x": "abc"})));
        let y = "sel:\n  x|exists: true\ncondition: sel";
        assert!(hit(y, json!({"x": null})));
        assert!(!hit(y, json!({"y": 1})));
        let y = "sel:\n  a|fieldref: b\ncondition: sel";
        assert!(hit(y, json!({"a": "Same", "b": "same"})));
        assert!(!hit(y, json!({"a": "x", "b": "y"})));
        let y = "sel:\n  cmd|base64offset|contains: /bin/bash\ncondition: sel";
        assert!(hit(y, json!({"cmd": "echo L2Jpbi9iYXNo | base64 -d"})));
        let y = "sel:\n  cmd|windash|contains: ' -enc '\ncondition: sel";
        assert!(hit(y, json!({"cmd": "powershell /enc xyz"})));
        let y = "sel:\n  cmd|utf16le|base64: 'a'\ncondition: sel";
        assert!(hit(y, json!({"cmd": "YQA="})));
    }

    #[test]
    fn null_numbers_bools_nested_and_arrays() {
        let y = "sel:\n  d.t: null\ncondition: sel";
        assert!(hit(y, json!({"d": {}})));
        assert!(hit(y, json!({"d": {"t": null}})));
        assert!(!hit(y, json!({"d": {"t": "x"}})));
        let y = "sel:\n  code: 50126\n  ok: false\ncondition: sel";
        assert!(hit(y, json!({"code": "50126", "ok": false})));
        assert!(hit(y, json!({"code": 50126, "ok": "False"})));
        let y = "sel:\n  events.name: CHANGE_PASSWORD\ncondition: sel";
        assert!(hit(
            y,
            json!({"events": [{"name": "LOGIN"}, {"name": "change_password"}]})
        ));
        let y = "sel:\n  l: '[]'\ncondition: sel";
        assert!(hit(y, json!({"l": []})));
        // Numbers match by their JSON spelling (as pySigma's backends compare them).
        let raw = |text: &str| crate::json::parse(text.as_bytes()).unwrap();
        let y = "sel:\n  n: 10\ncondition: sel";
        assert!(hit(y, raw(r#"{"n": 10}"#)));
        assert!(hit(y, raw(r#"{"n": "10"}"#)));
        assert!(!hit(y, raw(r#"{"n": 10.0}"#)), "10.0 is not spelled 10");
        assert!(!hit(y, raw(r#"{"n": -10}"#)));
        let y = "sel:\n  n: -3\ncondition: sel";
        assert!(hit(y, raw(r#"{"n": -3}"#)));
        let y = "sel:\n  n: 1.5\ncondition: sel";
        assert!(hit(y, raw(r#"{"n": 1.5}"#)));
        let y = "sel:\n  n|startswith: 18446744073709551\ncondition: sel";
        assert!(
            hit(y, raw(r#"{"n": 18446744073709551615}"#)),
            "u64 beyond i64"
        );
    }

    #[test]
    fn keywords() {
        let y = "keywords:\n  - 'Delete*Bucket'\n  - nothing\ncondition: keywords";
        assert!(hit(y, json!({"a": {"b": "DeleteMyBucket"}})));
        let y = "keywords:\n  - 'bucket'\ncondition: keywords";
        assert!(hit(y, json!({"a": ["the Bucket was"]})));
        assert!(!hit(y, json!({"a": "nope"})));
        let y = "sel:\n  '|all': [foo, bar]\ncondition: sel";
        assert!(hit(y, json!({"a": "foo", "b": "bar"})));
        assert!(!hit(y, json!({"a": "foo"})));
    }

    #[test]
    fn unsupported_is_named() {
        assert_eq!(
            det("sel:\n  a|expand: '%x%'\ncondition: sel").unwrap_err(),
            "search 'sel': unsupported modifier 'expand'"
        );
        assert!(
            det("sel:\n  a|frob: x\ncondition: sel")
                .unwrap_err()
                .contains("unknown modifier 'frob'")
        );
        assert!(
            det("sel:\n  a: x\ncondition: sel | count() > 3")
                .unwrap_err()
                .contains("aggregation")
        );
        assert!(
            det("sel:\n  a: x\ntimeframe: 5m\ncondition: sel")
                .unwrap_err()
                .contains("timeframe")
        );
        assert!(
            det("sel:\n  a|re: '(?<=x)y'\ncondition: sel")
                .unwrap_err()
                .contains("regex")
        );
        assert!(
            det("sel:\n  a|re|contains: 'x'\ncondition: sel")
                .unwrap_err()
                .contains("incompatible")
        );
    }
}
