//! Protected identities for the Responder: the `[identities] protected` globs (matched by the
//! shared matcher in [`crate::enrich::identities`]) plus the ones that are protected in every
//! configuration: root, break-glass accounts and picket's own roles.

use crate::enrich::{Identities, IdentitiesConfig};

/// Globs that are protected in every configuration.
pub const ALWAYS_PROTECTED: &[&str] = &[
    "arn:aws:iam::*:root",
    "arn:aws:sts::*:root",
    "*break-glass*",
    "*breakglass*",
    "*break_glass*",
    "arn:aws:iam::*:role/picket*",
    "arn:aws:sts::*:assumed-role/picket*",
    "arn:aws:iam::*:role/*/picket*",
];

/// The compiled protected list.
#[derive(Debug, Clone)]
pub struct Protected {
    identities: Identities,
}

impl Protected {
    /// The configured globs plus [`ALWAYS_PROTECTED`]. A list that does not load (an empty
    /// glob, a broken alias table) is an error, and the Responder then touches nothing.
    pub fn new(config: &IdentitiesConfig) -> Result<Protected, String> {
        let mut with_defaults = config.clone();
        with_defaults
            .protected
            .extend(ALWAYS_PROTECTED.iter().map(|g| g.to_string()));
        Identities::from_config(&with_defaults)
            .map(|identities| Protected { identities })
            .map_err(|e| e.to_string())
    }

    /// The first of `names` (principal, identity key, aliases) that is protected.
    pub fn matches<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<String> {
        names
            .into_iter()
            .find(|n| self.identities.is_protected(n))
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protected(globs: &[&str]) -> Result<Protected, String> {
        Protected::new(&IdentitiesConfig {
            protected: globs.iter().map(|s| s.to_string()).collect(),
            ..IdentitiesConfig::default()
        })
    }

    #[test]
    fn defaults_are_always_protected() {
        let p = protected(&[]).unwrap();
        assert!(p.matches(["arn:aws:iam::1:root"]).is_some());
        assert!(p.matches(["Breakglass@corp.example"]).is_some());
        assert!(
            p.matches(["arn:aws:sts::1:assumed-role/picket-responder/x"])
                .is_some()
        );
        assert!(p.matches(["alice@corp.example"]).is_none());
    }

    #[test]
    fn configured_globs_match_and_empty_ones_fail_the_load() {
        let p = protected(&["*@admins.corp.example"]).unwrap();
        assert_eq!(
            p.matches(["x", "Bob@Admins.corp.example"]).as_deref(),
            Some("Bob@Admins.corp.example")
        );
        assert!(protected(&[" "]).is_err());
    }
}
