//! Field mappings (`detections/mappings/*.yml`): which record kinds a Sigma logsource covers
//! and where each Sigma field sits in those kinds' raw records. The format is documented in
//! `detections/mappings/README.md`.
//!
//! To support one more logsource: add one YAML file there; no code changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::detection::{KindPaths, N_KINDS, Resolver, kind_idx};
use super::path::FieldPath;
use crate::model::RecordKind;

/// A Sigma `logsource` (the keys picket matches on).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LogSource {
    /// `product`, e.g. `aws`.
    #[serde(default)]
    pub product: Option<String>,
    /// `service`, e.g. `cloudtrail`.
    #[serde(default)]
    pub service: Option<String>,
    /// `category`, rarely used by cloud rules.
    #[serde(default)]
    pub category: Option<String>,
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("product", &self.product),
            ("service", &self.service),
            ("category", &self.category),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        f.write_str(&parts.join(" "))
    }
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

/// One path or a list of alternative paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A field entry: `{kind: path}` or `{paths: {kind: path}, values: {kind: {sigma: raw}}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FieldSpec {
    Full {
        paths: BTreeMap<String, OneOrMany>,
        #[serde(default)]
        values: BTreeMap<String, BTreeMap<String, String>>,
    },
    Simple(BTreeMap<String, OneOrMany>),
}

/// How a kind's own raw field names may be used directly.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeSpec {
    /// Allowed first path segments (case-insensitive); absent: any.
    #[serde(default)]
    fields: Option<Vec<String>>,
    /// Also look the field up under this prefix (`properties` for Azure Monitor exports).
    #[serde(default)]
    prefix: Option<String>,
}

/// A mapping file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    logsource: LogSource,
    kinds: Vec<String>,
    #[serde(default)]
    fields: BTreeMap<String, FieldSpec>,
    #[serde(default)]
    native: BTreeMap<String, NativeSpec>,
}

/// Value translations of one field, per kind (folded Sigma value -> raw value).
pub type ValueMaps = [Option<BTreeMap<String, String>>; N_KINDS];

/// A resolved field: paths and value translations per kind.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Paths per kind.
    pub paths: KindPaths,
    /// Value translations per kind.
    pub values: ValueMaps,
}

/// One loaded mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The logsource it serves.
    pub logsource: LogSource,
    /// The record kinds it covers.
    pub kinds: Vec<RecordKind>,
    fields: Vec<(String, Resolved)>,
    /// `(kind, prefix rewrite)` for `name.*` entries: (sigma prefix, kind, raw prefix).
    prefixes: Vec<(String, RecordKind, String)>,
    native: Vec<(RecordKind, NativeSpec)>,
}

/// An error in a mapping file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct MappingError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn kind_of(path: &Path, name: &str) -> Result<RecordKind, MappingError> {
    RecordKind::parse(name).ok_or_else(|| MappingError {
        path: path.to_path_buf(),
        message: format!("unknown record kind `{name}`"),
    })
}

impl Mapping {
    /// Parses one mapping file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Mapping, MappingError> {
        let err = |message: String| MappingError {
            path: path.to_path_buf(),
            message,
        };
        let file: MappingFile = serde_norway::from_str(text).map_err(|e| err(e.to_string()))?;
        let kinds = file
            .kinds
            .iter()
            .map(|k| kind_of(path, k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fields = Vec::new();
        let mut prefixes = Vec::new();
        for (name, spec) in &file.fields {
            let (paths, values) = match spec {
                FieldSpec::Full { paths, values } => (paths, values.clone()),
                FieldSpec::Simple(paths) => (paths, BTreeMap::new()),
            };
            if let Some(prefix) = name.strip_suffix('*') {
                for (kind, target) in paths {
                    let kind = kind_of(path, kind)?;
                    for t in target.list() {
                        let raw = t.strip_suffix('*').ok_or_else(|| {
                            err(format!("field `{name}`: a `*` entry needs `*` targets"))
                        })?;
                        prefixes.push((prefix.to_string(), kind, raw.to_string()));
                    }
                }
                continue;
            }
            let mut resolved = Resolved {
                paths: std::array::from_fn(|_| Vec::new()),
                values: std::array::from_fn(|_| None),
            };
            for (kind, target) in paths {
                let kind = kind_of(path, kind)?;
                if !kinds.contains(&kind) {
                    return Err(err(format!(
                        "field `{name}`: kind `{kind}` is not in `kinds`"
                    )));
                }
                for t in target.list() {
                    let p = FieldPath::parse(t).map_err(|e| err(format!("field `{name}`: {e}")))?;
                    resolved.paths[kind_idx(kind)].push(p);
                }
            }
            for (kind, map) in values {
                let kind = kind_of(path, &kind)?;
                resolved.values[kind_idx(kind)] = Some(
                    map.into_iter()
                        .map(|(k, v)| (k.to_lowercase(), v))
                        .collect(),
                );
            }
            fields.push((name.clone(), resolved));
        }
        let native = file
            .native
            .iter()
            .map(|(k, spec)| Ok((kind_of(path, k)?, spec.clone())))
            .collect::<Result<Vec<_>, MappingError>>()?;
        Ok(Mapping {
            path: path.to_path_buf(),
            logsource: file.logsource,
            kinds,
            fields,
            prefixes,
            native,
        })
    }

    /// Whether this mapping serves a rule's logsource.
    pub fn serves(&self, ls: &LogSource) -> bool {
        same(&self.logsource.product, &ls.product)
            && same(&self.logsource.service, &ls.service)
            && (self.logsource.category.is_none() || same(&self.logsource.category, &ls.category))
    }

    /// Resolves a Sigma field: explicit entry (exact, then case-insensitive), then prefix
    /// rewrites, then the kinds' native paths.
    pub fn resolve_field(&self, field: &str) -> Result<Resolved, String> {
        let explicit = self.fields.iter().find(|(n, _)| n == field).or_else(|| {
            self.fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(field))
        });
        if let Some((_, r)) = explicit {
            return Ok(r.clone());
        }
        let mut r = Resolved {
            paths: std::array::from_fn(|_| Vec::new()),
            values: std::array::from_fn(|_| None),
        };
        let mut any = false;
        for (prefix, kind, raw) in &self.prefixes {
            if let Some(rest) = field.strip_prefix(prefix.as_str()) {
                let p = FieldPath::parse(&format!("{raw}{rest}"))?;
                r.paths[kind_idx(*kind)].push(p);
                any = true;
            }
        }
        if any {
            return Ok(r);
        }
        let fp = FieldPath::parse(field)?;
        for (kind, spec) in &self.native {
            let allowed = spec
                .fields
                .as_ref()
                .is_none_or(|list| list.iter().any(|f| f.eq_ignore_ascii_case(fp.head())));
            if !allowed {
                continue;
            }
            let slot = &mut r.paths[kind_idx(*kind)];
            match &spec.prefix {
                Some(prefix) => slot.push(FieldPath::parse(&format!("{prefix}.{field}"))?),
                None => slot.push(fp.clone()),
            }
            any = true;
        }
        if any {
            Ok(r)
        } else {
            Err(format!(
                "field '{field}' has no mapping for logsource {}",
                self.logsource
            ))
        }
    }
}

/// All loaded mappings.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    /// The mappings, in file order.
    pub list: Vec<Mapping>,
}

impl Mappings {
    /// Loads every `*.yml`/`*.yaml` in `dir` (sorted); every error is returned.
    pub fn load_dir(dir: &Path) -> (Mappings, Vec<MappingError>) {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) => {
                let error = MappingError {
                    path: dir.to_path_buf(),
                    message: format!("cannot read mappings folder: {e}"),
                };
                return (Mappings { list: Vec::new() }, vec![error]);
            }
        };
        files.sort();
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            let is_yaml = f.extension().is_some_and(|e| e == "yml" || e == "yaml");
            if !is_yaml {
                continue;
            }
            match std::fs::read_to_string(&f) {
                Ok(text) => sources.push((f, text)),
                Err(e) => errors.push(MappingError {
                    path: f.clone(),
                    message: e.to_string(),
                }),
            }
        }
        let (mappings, more) = Mappings::from_sources(&sources);
        errors.extend(more);
        (mappings, errors)
    }

    /// Builds mappings from `(path, YAML text)` pairs (the embedded pack, or files).
    pub fn from_sources(sources: &[(PathBuf, String)]) -> (Mappings, Vec<MappingError>) {
        let mut list: Vec<Mapping> = Vec::new();
        let mut errors = Vec::new();
        for (f, text) in sources {
            match Mapping::parse(f, text) {
                Ok(m) => {
                    if list.iter().any(|o| o.logsource == m.logsource) {
                        errors.push(MappingError {
                            path: f.clone(),
                            message: format!("logsource {} is mapped twice", m.logsource),
                        });
                    } else {
                        list.push(m);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        (Mappings { list }, errors)
    }

    /// The mapping serving a logsource.
    pub fn find(&self, ls: &LogSource) -> Option<&Mapping> {
        self.list.iter().find(|m| m.serves(ls))
    }
}

/// Resolver adapter over one mapping.
pub struct MappingResolver<'a>(pub &'a Mapping);

impl Resolver for MappingResolver<'_> {
    fn resolve(&self, field: &str) -> Result<Resolved, String> {
        self.0.resolve_field(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    const M: &str = r#"
logsource: {product: azure, service: signinlogs}
kinds: [entra_signin, azure_monitor_signin]
fields:
  ResultType: {entra_signin: status.errorCode, azure_monitor_signin: [resultType, properties.status.errorCode]}
  Status:
    paths: {entra_signin: status.errorCode}
    values: {entra_signin: {Success: "0"}}
  data.*: {entra_signin: "inner.*"}
native:
  entra_signin: {fields: [userAgent, deviceDetail]}
  azure_monitor_signin: {fields: [userAgent], prefix: properties}
"#;

    #[test]
    fn resolves_explicit_prefix_and_native() {
        let m = Mapping::parse(Path::new("m.yml"), M).unwrap();
        let r = m.resolve_field("resulttype").unwrap();
        assert_eq!(r.paths[kind_idx(RecordKind::AzureMonitorSignin)].len(), 2);
        let r = m.resolve_field("Status").unwrap();
        assert_eq!(
            r.values[kind_idx(RecordKind::EntraSignin)]
                .as_ref()
                .unwrap()["success"],
            "0"
        );
        let r = m.resolve_field("data.x.y").unwrap();
        assert_eq!(
            r.paths[kind_idx(RecordKind::EntraSignin)][0].as_str(),
            "inner.x.y"
        );
        let r = m.resolve_field("userAgent").unwrap();
        assert_eq!(
            r.paths[kind_idx(RecordKind::AzureMonitorSignin)][0].as_str(),
            "properties.userAgent"
        );
        assert!(r.paths[kind_idx(RecordKind::Cloudtrail)].is_empty());
        let e = m.resolve_field("Bogus").unwrap_err();
        assert_eq!(
            e,
            "field 'Bogus' has no mapping for logsource product=azure service=signinlogs"
        );
        let _ = json!(null);
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(Mapping::parse(Path::new("m.yml"), "logsource: {}\nkinds: [nope]\n").is_err());
        assert!(
            Mapping::parse(Path::new("m.yml"), "logsource: {}\nkinds: []\nextra: 1\n").is_err()
        );
    }
}
