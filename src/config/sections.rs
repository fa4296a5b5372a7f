//! The sections of `picket.toml` that belong to no single component, and the checks run on
//! the whole file after parsing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RawConfig;
use crate::model::Severity;

/// Collects resolution errors as (key path, message).
pub struct Checker<'a> {
    /// Folder relative paths resolve against.
    pub base_dir: &'a Path,
    /// Problems found.
    pub errors: Vec<(String, String)>,
}

impl Checker<'_> {
    /// Makes a path absolute against the config folder.
    pub fn path(&self, p: &mut PathBuf) {
        if p.is_relative() && !p.as_os_str().is_empty() {
            *p = self.base_dir.join(&*p);
        }
    }

    /// Records a problem.
    pub fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push((key.into(), message.into()));
    }

    /// Records "must be at least `min`" for `key` when `value` is below it.
    pub fn at_least(&mut self, key: String, value: u64, min: u64) {
        if value < min {
            self.error(key, format!("must be at least {min}"));
        }
    }

    /// Records "must be between `lo` and `hi`" for `key` when `value` is outside.
    pub fn between(&mut self, key: String, value: u64, lo: u64, hi: u64) {
        if !(lo..=hi).contains(&value) {
            self.error(key, format!("must be between {lo} and {hi}"));
        }
    }

    /// Records "is not a URL" for `key` when it is set and does not parse.
    pub fn url(&mut self, key: String, value: Option<&str>) {
        if let Some(u) = value
            && reqwest::Url::parse(u).is_err()
        {
            self.error(key, format!("`{u}` is not a URL"));
        }
    }
}

/// `[detect.rules]`: Sigma rule folders.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// Extra rule folders, loaded after the shipped pack.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Load the rule pack shipped with picket (default true).
    #[serde(default = "yes")]
    pub builtin: bool,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection {
            paths: Vec::new(),
            builtin: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// `[detect]`: rules and the tuning of built-in detectors.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectSection {
    /// Sigma rules.
    #[serde(default)]
    pub rules: RulesSection,
    /// `impossible-travel` tuning.
    #[serde(default)]
    pub impossible_travel: Option<toml::Table>,
    /// `oauth-consent` tuning.
    #[serde(default)]
    pub oauth_consent: Option<toml::Table>,
    /// `account-takeover` tuning.
    #[serde(default)]
    pub account_takeover: Option<toml::Table>,
    /// `new-country` tuning.
    #[serde(default)]
    pub new_country: Option<toml::Table>,
    /// `first-seen-asn` tuning.
    #[serde(default)]
    pub first_seen_asn: Option<toml::Table>,
}

/// `[aws]`: client settings shared by every AWS component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    /// Region (default: the SDK's provider chain).
    pub region: Option<String>,
    /// Endpoint override: emulators, VPC endpoints.
    pub endpoint_url: Option<String>,
    /// Named profile for local use.
    pub profile: Option<String>,
}

/// `[azure]`: Microsoft Entra / Graph client settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSection {
    /// Directory (tenant) id.
    pub tenant_id: Option<String>,
    /// Application (client) id.
    pub client_id: Option<String>,
    /// `client_secret`, `workload_identity`, `managed_identity` (`client_certificate` is a
    /// build error: azure_identity needs OpenSSL for it).
    pub credential: Option<String>,
    /// Token authority (default `https://login.microsoftonline.com`).
    pub authority_host: Option<String>,
    /// Graph base URL (default `https://graph.microsoft.com`).
    pub graph_base_url: Option<String>,
    /// Client secret for `credential = "client_secret"`, as a reference (`env:VAR`).
    pub client_secret: Option<super::SecretRef>,
}

/// `[google]`: Google client settings (feature `gcp`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSection {
    /// Where tokens come from: `adc` (Application Default Credentials: the
    /// `GOOGLE_APPLICATION_CREDENTIALS` file, gcloud's, else the metadata server), `key_file`
    /// (the file `key_file`), `access_token` (a fixed token, for development and tests).
    /// Default: `key_file` when `key_file` is set, `access_token` when `access_token` is, else
    /// `adc`.
    pub credentials: Option<String>,
    /// A credentials file: a service-account key, an authorized user, an external account
    /// (workload identity federation) or an impersonated service account. Relative to the
    /// config file.
    pub key_file: Option<PathBuf>,
    /// `credentials = "access_token"`: a pre-minted access token of the service account, as a
    /// reference (`env:VAR`). For development and tests: such tokens live an hour.
    pub access_token: Option<super::SecretRef>,
    /// The service account that signs domain-wide-delegation JWTs for `subject` when the
    /// credential holds no key (IAM Credentials `signJwt`); with a service-account key, the
    /// key's `client_email` (this must then match it or be left out).
    pub service_account: Option<String>,
    /// Workspace admin to impersonate for the Reports and Directory APIs.
    pub subject: Option<String>,
    /// Scopes of the service account's own token for IAM and IAM Credentials (default
    /// `cloud-platform`).
    pub scopes: Option<Vec<String>>,
    /// Scopes of the token for Cloud Logging (default `logging.read`).
    pub logging_scopes: Option<Vec<String>>,
    /// Scopes of the delegated Admin SDK token (default: Reports audit read-only and the
    /// scopes of the Google Workspace response actions); each must be authorised for
    /// domain-wide delegation in the Workspace admin console.
    pub admin_scopes: Option<Vec<String>>,
    /// OAuth token endpoint of domain-wide delegation (default: the key file's `token_uri`,
    /// else `https://oauth2.googleapis.com/token`).
    pub token_url: Option<String>,
    /// Admin SDK base URL (default `https://admin.googleapis.com`).
    pub admin_base_url: Option<String>,
    /// Cloud Logging base URL (default `https://logging.googleapis.com`).
    pub logging_base_url: Option<String>,
    /// IAM API base URL (default `https://iam.googleapis.com`).
    pub iam_base_url: Option<String>,
    /// IAM Credentials API base URL, for `signJwt` (default
    /// `https://iamcredentials.googleapis.com`).
    pub iamcredentials_base_url: Option<String>,
}

/// How `[google]` gets its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleCredentials {
    /// Application Default Credentials.
    Adc,
    /// The credentials file `key_file`.
    KeyFile,
    /// The fixed token `access_token`.
    AccessToken,
}

impl GoogleSection {
    /// The credential kind, `None` when `credentials` names no known kind.
    pub fn kind(&self) -> Option<GoogleCredentials> {
        match self.credentials.as_deref() {
            Some("adc") => Some(GoogleCredentials::Adc),
            Some("key_file") => Some(GoogleCredentials::KeyFile),
            Some("access_token") => Some(GoogleCredentials::AccessToken),
            Some(_) => None,
            None if self.key_file.is_some() => Some(GoogleCredentials::KeyFile),
            None if self.access_token.is_some() => Some(GoogleCredentials::AccessToken),
            None => Some(GoogleCredentials::Adc),
        }
    }

    fn resolve(&mut self, c: &mut Checker<'_>) {
        match self.kind() {
            None => c.error(
                "google.credentials",
                format!(
                    "unknown credentials `{}`; expected one of: adc, key_file, access_token",
                    self.credentials.as_deref().unwrap_or_default()
                ),
            ),
            Some(GoogleCredentials::KeyFile) if self.key_file.is_none() => c.error(
                "google.key_file",
                "credentials = \"key_file\" needs key_file = \"path/to/key.json\"",
            ),
            Some(GoogleCredentials::AccessToken) if self.access_token.is_none() => c.error(
                "google.access_token",
                "credentials = \"access_token\" needs access_token = \"env:VAR\"",
            ),
            Some(_) => {}
        }
        if let Some(p) = &mut self.key_file {
            c.path(p);
            if !p.is_file() {
                c.error("google.key_file", format!("{}: no such file", p.display()));
            }
        }
        for (key, scopes) in [
            ("google.scopes", &self.scopes),
            ("google.logging_scopes", &self.logging_scopes),
            ("google.admin_scopes", &self.admin_scopes),
        ] {
            if scopes.as_ref().is_some_and(Vec::is_empty) {
                c.error(key, "names no scope");
            }
        }
        for (key, url) in [
            ("google.token_url", &self.token_url),
            ("google.admin_base_url", &self.admin_base_url),
            ("google.logging_base_url", &self.logging_base_url),
            ("google.iam_base_url", &self.iam_base_url),
            (
                "google.iamcredentials_base_url",
                &self.iamcredentials_base_url,
            ),
        ] {
            c.url(key.to_string(), url.as_deref());
        }
    }
}

/// Whether response actions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RespondMode {
    /// Plan and record, change nothing (the default).
    #[default]
    DryRun,
    /// Act, within the guardrails.
    Enforce,
}

/// One `[[respond.playbook]]`: which findings trigger which actions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSection {
    /// Detector or rule ids.
    pub on: Vec<String>,
    /// Lowest severity that triggers it.
    #[serde(default = "high")]
    pub min_severity: Severity,
    /// Action names, run in order.
    pub actions: Vec<String>,
}

fn high() -> Severity {
    Severity::High
}

/// `[respond]`: mode, guardrails and playbooks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondSection {
    /// `dry-run` (default) or `enforce`.
    #[serde(default)]
    pub mode: RespondMode,
    /// Blast radius: actions per hour, all identities together.
    #[serde(default = "five")]
    pub max_actions_per_hour: u64,
    /// Blast radius: actions per identity per hour.
    #[serde(default = "three")]
    pub max_actions_per_identity: u64,
    /// Playbooks.
    #[serde(default)]
    pub playbook: Vec<PlaybookSection>,
}

fn five() -> u64 {
    5
}
fn three() -> u64 {
    3
}

impl Default for RespondSection {
    fn default() -> Self {
        RespondSection {
            mode: RespondMode::DryRun,
            max_actions_per_hour: five(),
            max_actions_per_identity: three(),
            playbook: Vec::new(),
        }
    }
}

impl RawConfig {
    /// Resolves relative paths and checks what serde cannot.
    pub fn resolve(&mut self, c: &mut Checker<'_>) {
        self.state.resolve(c);
        self.google.resolve(c);
        for (key, p) in [
            ("geoip.city", &mut self.geoip.city),
            ("geoip.asn", &mut self.geoip.asn),
        ] {
            if let Some(p) = p {
                c.path(p);
                if !p.is_file() {
                    c.error(key, format!("{}: no such file", p.display()));
                }
            }
        }
        for (i, cidr) in self.networks.trusted.iter().enumerate() {
            if cidr.parse::<ipnet::IpNet>().is_err() && cidr.parse::<std::net::IpAddr>().is_err() {
                c.error(
                    format!("networks.trusted[{i}]"),
                    format!("`{cidr}` is not a CIDR range or address"),
                );
            }
        }
        for (from, to) in &self.identities.aliases {
            if to.trim().is_empty() {
                c.error(format!("identities.aliases.{from}"), "empty identity key");
            }
        }
        for (i, p) in self.detect.rules.paths.iter_mut().enumerate() {
            c.path(p);
            if !p.exists() {
                c.error(
                    format!("detect.rules.paths[{i}]"),
                    format!("{}: no such folder", p.display()),
                );
            }
        }
        for d in crate::detect::builtin::IdentityDetector::ALL {
            if let Err(e) = d.build(&self.detect) {
                let key = if e.key == "(table)" {
                    format!("detect.{}", d.table())
                } else {
                    format!("detect.{}.{}", d.table(), e.key)
                };
                c.error(key, e.message.clone());
            }
        }
        for (i, s) in self.sources.iter_mut().enumerate() {
            s.resolve(&format!("sources[{i}]"), c);
        }
        for n in &mut self.notify {
            if let crate::alert::NotifyConfig::Jsonl { path, .. } = n {
                c.path(path);
            }
        }
        for (i, p) in self.respond.playbook.iter().enumerate() {
            if p.on.is_empty() {
                c.error(
                    format!("respond.playbook[{i}].on"),
                    "names no detector or rule",
                );
            }
            for (j, a) in p.actions.iter().enumerate() {
                if crate::respond::ActionKind::parse(a).is_none() {
                    c.error(
                        format!("respond.playbook[{i}].actions[{j}]"),
                        format!(
                            "unknown action `{a}`; expected one of: {}",
                            crate::respond::ActionKind::ALL
                                .iter()
                                .map(|k| k.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }
}
