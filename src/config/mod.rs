//! `picket.toml`: the schema ([`RawConfig`]) and its resolution into a checked [`Config`].
//!
//! Resolution reports every problem at once, each with the file, the line where known and the
//! key path (`sources[1].path`). Unknown keys are errors. Relative paths resolve against the
//! config file's folder. This module and the Lambda start-up are the only places that read
//! the environment.
//!
//! To add a section: a `FooConfig` (serde, documented fields, `deny_unknown_fields`) owned by
//! its module, one field in [`RawConfig`], and its checks in [`Config::resolve`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::alert::NotifyConfig;
use crate::enrich::{GeoipConfig, IdentitiesConfig, NetworksConfig};
use crate::source::SourceConfig;
use crate::state::StateConfig;

pub mod secret;
pub mod sections;

pub use secret::{Secret, SecretError, SecretRef};
pub use sections::*;

/// The embedded default configuration `picket demo` and a config-less `picket replay` use.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {key}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// One-based line, where known.
    pub line: Option<usize>,
    /// Key path (`sources[1].path`), or `(file)` for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where state lives.
    #[serde(default)]
    pub state: StateConfig,
    /// Geo-IP databases.
    #[serde(default)]
    pub geoip: GeoipConfig,
    /// Trusted networks.
    #[serde(default)]
    pub networks: NetworksConfig,
    /// Identity linking and protected identities.
    #[serde(default)]
    pub identities: IdentitiesConfig,
    /// Detection settings.
    #[serde(default)]
    pub detect: DetectSection,
    /// AWS client settings shared by AWS sources, actions, state and SES.
    #[serde(default)]
    pub aws: AwsSection,
    /// Microsoft Entra / Graph client settings.
    #[serde(default)]
    pub azure: AzureSection,
    /// Google client settings.
    #[serde(default)]
    pub google: GoogleSection,
    /// Where events come from.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Where findings go.
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// Response: mode, guardrails, playbooks.
    #[serde(default)]
    pub respond: RespondSection,
}

/// A checked configuration with absolute paths.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (`<embedded>` for the defaults).
    pub file: PathBuf,
    /// The folder relative paths were resolved against.
    pub base_dir: PathBuf,
    /// The resolved sections.
    pub raw: RawConfig,
}

/// The top-level keys, in the order of [`RawConfig`].
const SECTIONS: &[&str] = &[
    "state",
    "geoip",
    "networks",
    "identities",
    "detect",
    "aws",
    "azure",
    "google",
    "sources",
    "notify",
    "respond",
];

impl Config {
    /// Reads and resolves a config file.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: "(file)".into(),
                message: e.to_string(),
            }]
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, path, &base)
    }

    /// The embedded defaults, with relative paths against `base_dir`.
    pub fn embedded(base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
        Config::parse(DEFAULT_TOML, Path::new("<embedded>"), base_dir)
    }

    /// Parses and resolves config text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
        let err = |line, key: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            line,
            key: key.to_string(),
            message,
        };
        // Syntax first: with spans for every later error.
        let spanned = match toml::de::DeTable::parse(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                return Err(vec![err(line, "(file)", e.message().to_string())]);
            }
        };
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start));
                return Err(vec![err(line, "(file)", e.message().to_string())]);
            }
        };
        let locate = |path: &str| locate(text, spanned.get_ref(), path);

        let mut errors = Vec::new();
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                errors.push(err(
                    locate(key),
                    key,
                    format!("unknown section; expected one of: {}", SECTIONS.join(", ")),
                ));
            }
        }
        let mut raw = RawConfig::default();
        macro_rules! section {
            ($name:literal, $field:ident) => {
                if let Some(v) = table.get($name) {
                    match section::<_>($name, v) {
                        Ok(s) => raw.$field = s,
                        Err((path, message)) => errors.push(err(locate(&path), &path, message)),
                    }
                }
            };
        }
        section!("state", state);
        section!("geoip", geoip);
        section!("networks", networks);
        section!("identities", identities);
        section!("detect", detect);
        section!("aws", aws);
        section!("azure", azure);
        section!("google", google);
        section!("sources", sources);
        section!("notify", notify);
        section!("respond", respond);

        let mut check = sections::Checker {
            base_dir,
            errors: Vec::new(),
        };
        raw.resolve(&mut check);
        for (path, message) in check.errors {
            errors.push(err(locate(&path), &path, message));
        }
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        if errors.is_empty() {
            Ok(Config {
                file: file.to_path_buf(),
                base_dir: base_dir.to_path_buf(),
                raw,
            })
        } else {
            Err(errors)
        }
    }
}

/// Deserializes one section, returning the full key path of the first problem in it.
fn section<T: DeserializeOwned>(name: &str, value: &toml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner.is_empty() || inner == "." {
            name.to_string()
        } else if inner.starts_with('[') {
            format!("{name}{inner}")
        } else {
            format!("{name}.{inner}")
        };
        // A message about an unknown field names it; point at it.
        let message = e.into_inner().to_string().trim_end().to_string();
        let at = if inner == "." { "" } else { inner.as_str() };
        let key = unknown_field(&message).or_else(|| key_by_value(value_at(value, at)?, &message));
        let path = key.map(|f| format!("{path}.{f}")).unwrap_or(path);
        (path, message)
    })
}

/// The value at a path relative to `value` (`[0]`, `a.b[2]`).
fn value_at<'v>(value: &'v toml::Value, path: &str) -> Option<&'v toml::Value> {
    split_path(path)
        .into_iter()
        .try_fold(value, |v, seg| match (v, seg) {
            (toml::Value::Table(t), Seg::Key(k)) => t.get(k),
            (toml::Value::Array(a), Seg::Index(i)) => a.get(i),
            _ => None,
        })
}

/// The key of `table` whose value a type or value error names, when exactly one holds it.
/// Internally tagged enums (`[state]`, `[[sources]]`, `[[notify]]`) hide the key at fault
/// from the error's path; the message still shows the value (`invalid type: string "soon",
/// expected u64`), as serde's `Unexpected` prints it.
fn key_by_value<'t>(table: &'t toml::Value, message: &str) -> Option<&'t str> {
    let toml::Value::Table(t) = table else {
        return None;
    };
    let shown = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(format!("string {s:?}")),
        toml::Value::Integer(i) => Some(format!("integer `{i}`")),
        toml::Value::Float(f) => Some(format!("floating point `{f:?}`")),
        toml::Value::Boolean(b) => Some(format!("boolean `{b}`")),
        toml::Value::Array(_) => Some("sequence".to_string()),
        toml::Value::Table(_) => Some("map".to_string()),
        toml::Value::Datetime(_) => None,
    };
    let mut holding = t.iter().filter_map(|(k, v)| {
        let shown = shown(v)?;
        ["invalid type: ", "invalid value: "]
            .iter()
            .any(|p| message.starts_with(&format!("{p}{shown},")))
            .then_some(k.as_str())
    });
    let first = holding.next()?;
    holding.next().is_none().then_some(first)
}

pub(crate) fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the line of a key path (`sources[1].path`) in the spanned document: the deepest
/// part of the path that exists.
fn locate(text: &str, table: &toml::de::DeTable<'_>, path: &str) -> Option<usize> {
    use toml::de::DeValue;
    let mut line = None;
    let mut current: Option<&DeValue<'_>> = None;
    for seg in split_path(path) {
        let next = match (current, seg) {
            (None, Seg::Key(k)) => table.get(k).map(|v| (v.span(), v.get_ref())),
            (Some(DeValue::Table(t)), Seg::Key(k)) => t.get(k).map(|v| (v.span(), v.get_ref())),
            (Some(DeValue::Array(a)), Seg::Index(i)) => a.get(i).map(|v| (v.span(), v.get_ref())),
            _ => None,
        };
        match next {
            Some((span, v)) => {
                line = Some(line_of(text, span.start));
                current = Some(v);
            }
            None => break,
        }
    }
    line
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            if let Ok(i) = stripped[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &stripped[end + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_inside_a_tagged_or_detector_table_names_its_key_and_line() {
        let cases = [
            ("[state]\nbackend = \"sqlite\"\npath = 5\n", "state.path", 3),
            (
                "[[sources]]\ntype = \"files\"\npath = \"x\"\ninterval_secs = \"soon\"\n",
                "sources[0].interval_secs",
                4,
            ),
            (
                "[[notify]]\ntype = \"slack\"\nmin_severity = 3\n",
                "notify[0].min_severity",
                3,
            ),
            (
                "[detect.impossible_travel]\nmax_speed_kmh = 900\ncoarse_radius_km = \"far\"\n",
                "detect.impossible_travel.coarse_radius_km",
                3,
            ),
        ];
        for (text, key, line) in cases {
            let errors = parse(text).unwrap_err();
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!(
                (errors[0].key.as_str(), errors[0].line),
                (key, Some(line)),
                "{text}: {}",
                errors[0].message
            );
        }
    }

    fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse(text, Path::new("picket.toml"), Path::new("/etc/picket"))
    }

    #[test]
    fn embedded_defaults_resolve() {
        let c = Config::embedded(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert_eq!(c.raw.respond.mode, RespondMode::DryRun);
    }

    #[test]
    fn reports_every_error_with_line_and_key_path() {
        let text = "\
[state]
backend = \"sqlite\"
path = \"x.db\"

[networks]
trusted = [\"10.0.0.0/8\", \"not-a-cidr\"]

[[sources]]
type = \"files\"
path = \"in\"

[[sources]]
type = \"files\"
pathh = \"typo\"

[bogus]
x = 1
";
        let errors = parse(text).unwrap_err();
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            shown.iter().any(|e| e.starts_with("picket.toml:16: bogus")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("picket.toml:6: networks.trusted[1]")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("picket.toml:14: sources[1].pathh")),
            "{shown:#?}"
        );
        assert_eq!(errors.len(), 3, "{shown:#?}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let c = parse("[state]\nbackend = \"sqlite\"\npath = \"state/picket.db\"\n").unwrap();
        match c.raw.state {
            StateConfig::Sqlite { path } => {
                assert_eq!(path, PathBuf::from("/etc/picket/state/picket.db"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let errors = parse("[state]\nbackend = \n").unwrap_err();
        assert_eq!(errors[0].line, Some(2), "{errors:?}");
    }

    #[test]
    fn google_credentials_are_checked_with_their_keys() {
        let errors = parse("[google]\ncredentials = \"key-file\"\n\n[azure]\n").unwrap_err();
        assert_eq!(errors[0].key, "google.credentials", "{errors:?}");
        assert_eq!(errors[0].line, Some(2));
        assert!(errors[0].message.contains("adc, key_file, access_token"));

        let errors = parse("[google]\ncredentials = \"key_file\"\n").unwrap_err();
        assert_eq!(errors[0].key, "google.key_file", "{errors:?}");

        let errors = parse(
            "[google]\nkey_file = \"keys/sa.json\"\nlogging_scopes = []\ntoken_url = \"nope\"\n",
        )
        .unwrap_err();
        let shown: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.key.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("google.key_file", "/etc/picket/keys/sa.json: no such file"),
                ("google.logging_scopes", "names no scope"),
                ("google.token_url", "`nope` is not a URL"),
            ]
        );

        let c = parse("[google]\nsubject = \"admin@corp.example\"\n").unwrap();
        assert_eq!(c.raw.google.kind(), Some(GoogleCredentials::Adc));
    }
}
