//! Secrets in configuration: webhook URLs, tokens, SMTP passwords. The file holds only a
//! reference (`env:VAR`); the value is read from the environment when the config is built and
//! lives in a [`Secret`], whose `Debug` and `Display` print `***` so it never reaches a log.
//!
//! In Lambda the value of `env:VAR` may come from AWS Secrets Manager instead: the start-up
//! fetches the secret named by `VAR_SECRET_ARN` once per container and [`provide`]s it, so one
//! `picket.toml` works on a laptop (the variable) and in Lambda (the secret).
//!
//! To add a reference scheme (files, other vaults): one arm in [`SecretRef::resolve`].

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// Values for `env:` references fetched at start-up (Lambda: Secrets Manager).
static PROVIDED: OnceLock<HashMap<String, Secret>> = OnceLock::new();

/// Makes `values` (variable name -> secret) the answer to `env:VAR` references before the
/// environment is consulted. Once per process; returns false if values were already given.
pub fn provide(values: HashMap<String, Secret>) -> bool {
    PROVIDED.set(values).is_ok()
}

/// A secret value. Printing it in any form shows `***`; [`Secret::expose`] is the one way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (tests, values resolved from a reference).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (an HTTP header, an SMTP login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Why a secret reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The reference is not of a known form.
    #[error(
        "`{0}` is not a secret reference; write `env:VARIABLE` (secrets are never stored in the file)"
    )]
    NotAReference(String),
    /// The environment variable is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    Unset(String),
}

/// A reference to a secret as written in `picket.toml`: `env:VAR`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SecretRef {
    var: String,
}

impl TryFrom<String> for SecretRef {
    type Error = SecretError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.strip_prefix("env:") {
            Some(var) if !var.is_empty() && !var.contains(char::is_whitespace) => Ok(SecretRef {
                var: var.to_string(),
            }),
            // INVARIANT: the clear value is not echoed back: only its length.
            _ => Err(SecretError::NotAReference(format!(
                "<{} characters>",
                s.chars().count()
            ))),
        }
    }
}

impl SecretRef {
    /// A reference to an environment variable.
    pub fn env(var: impl Into<String>) -> SecretRef {
        SecretRef { var: var.into() }
    }

    /// The variable it names.
    pub fn var(&self) -> &str {
        &self.var
    }

    /// Reads the secret: a value [`provide`]d at start-up, else the environment variable.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        if let Some(v) = PROVIDED.get().and_then(|m| m.get(&self.var)) {
            return Ok(v.clone());
        }
        std::env::var(&self.var)
            .map(Secret)
            .map_err(|_| SecretError::Unset(self.var.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "xoxb-very-secret");
    }

    #[test]
    fn only_env_references_are_accepted_and_clear_values_are_not_echoed() {
        assert_eq!(
            SecretRef::try_from("env:SLACK_TOKEN".to_string())
                .unwrap()
                .var(),
            "SLACK_TOKEN"
        );
        let e = SecretRef::try_from("https://hooks.slack.com/services/T/B/X".to_string())
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hooks.slack.com"), "{e}");
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        let r = SecretRef::env("PICKET_TEST_SURELY_UNSET_VARIABLE");
        assert_eq!(
            r.resolve().unwrap_err(),
            SecretError::Unset("PICKET_TEST_SURELY_UNSET_VARIABLE".into())
        );
    }
}
