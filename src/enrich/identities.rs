//! Who is who: `[identities.aliases]` link other principals (an IAM user ARN, a Google
//! profile id) to one identity key (a lowercased email/UPN), so one human is one identity
//! across clouds; `[identities] protected` lists the principals responses must never touch.
//!
//! Alias lookup: ARNs (`arn:...`) match exactly; emails/UPNs (anything else with an `@`)
//! match case-insensitively; other ids (object ids, profile ids) match exactly. Identity keys
//! (the alias targets) are stored lowercased.
//!
//! Protected patterns are globs: `*` matches any run of characters (including `/` and `:`),
//! `?` exactly one; matching is case-insensitive. The matcher is the small one in this file
//! (no dependency): patterns are short and the guardrail checks a handful per action.
//!
//! To add a kind of principal with its own matching rule: extend `principal_form` and its
//! tests.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::EnrichError;
use crate::model::Actor;

/// `[identities]` of `picket.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesConfig {
    /// Glob patterns (`*`, `?`; case-insensitive) of principals that responses never act on:
    /// break-glass accounts, `arn:aws:iam::*:root`, the admins who would undo a mistake.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Other principal -> identity key (email/UPN), e.g.
    /// `"arn:aws:iam::123456789012:user/alice" = "alice@corp.example"`.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

/// How a principal string is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// ARNs and opaque ids: byte for byte.
    Exact,
    /// Emails and UPNs: case-insensitive.
    Folded,
}

/// How `principal` is compared: ARNs exactly, emails/UPNs case-insensitively, others exactly.
fn principal_form(principal: &str) -> Form {
    if principal.starts_with("arn:") || !principal.contains('@') {
        Form::Exact
    } else {
        Form::Folded
    }
}

/// Principal -> identity key. Looked up for up to five principals of every event, so hashed
/// with foldhash rather than std's SipHash.
type AliasMap = HashMap<String, String, foldhash::fast::RandomState>;

/// The longest principal [`Identities::alias`] folds in a stack buffer.
const FOLD_ON_STACK: usize = 128;

/// The alias table and the protected patterns, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    exact: AliasMap,
    folded: AliasMap,
    protected: Vec<Glob>,
}

impl Identities {
    /// Validates and indexes `[identities]`: empty entries and aliases that collide once case
    /// is folded (`Alice@x` and `alice@x` to different keys) are errors.
    pub fn from_config(config: &IdentitiesConfig) -> Result<Identities, EnrichError> {
        let mut exact = AliasMap::default();
        let mut folded = AliasMap::default();
        for (principal, key) in &config.aliases {
            let alias_err = |message: &str| EnrichError::Alias {
                principal: principal.clone(),
                message: message.to_string(),
            };
            if principal.trim().is_empty() {
                return Err(alias_err("the principal is empty"));
            }
            let key = key.trim().to_lowercase();
            if key.is_empty() {
                return Err(alias_err("the identity key is empty"));
            }
            match principal_form(principal) {
                Form::Exact => {
                    exact.insert(principal.clone(), key);
                }
                Form::Folded => {
                    let lower = principal.to_lowercase();
                    if let Some(previous) = folded.get(&lower)
                        && *previous != key
                    {
                        return Err(alias_err(&format!(
                            "differs only in case from another alias that maps to {previous:?}"
                        )));
                    }
                    folded.insert(lower, key);
                }
            }
        }
        let mut protected = Vec::with_capacity(config.protected.len());
        for (index, pattern) in config.protected.iter().enumerate() {
            if pattern.trim().is_empty() {
                return Err(EnrichError::Protected {
                    index,
                    entry: pattern.clone(),
                    message: "the pattern is empty".to_string(),
                });
            }
            protected.push(Glob::new(pattern.trim()));
        }
        Ok(Identities {
            exact,
            folded,
            protected,
        })
    }

    /// The identity key `principal` is an alias of, if any.
    pub fn alias(&self, principal: &str) -> Option<&str> {
        // Most deployments have no alias table: no lookup, no lowercased copy.
        if self.exact.is_empty() && self.folded.is_empty() {
            return None;
        }
        match principal_form(principal) {
            Form::Exact => self.exact.get(principal),
            Form::Folded if self.folded.is_empty() => None,
            // The usual email or UPN is short ASCII: folded on the stack, not in a new String.
            Form::Folded if principal.is_ascii() && principal.len() <= FOLD_ON_STACK => {
                let mut buf = [0u8; FOLD_ON_STACK];
                let folded = &mut buf[..principal.len()];
                folded.copy_from_slice(principal.as_bytes());
                folded.make_ascii_lowercase();
                std::str::from_utf8(folded)
                    .ok()
                    .and_then(|key| self.folded.get(key))
            }
            Form::Folded => self.folded.get(&principal.to_lowercase()),
        }
        .map(String::as_str)
    }

    /// The identity key of `actor`: the first alias found for `uid`, `email`, `name`,
    /// `session_issuer`, then the current `key` (in that order); without an alias, the key
    /// the normalizer set, else the lowercased email, else the uid, else the name (else empty).
    pub fn resolve_key(&self, actor: &Actor) -> String {
        self.resolved_key(actor)
            .unwrap_or_else(|| actor.key.clone())
    }

    /// [`Identities::resolve_key`], `None` when that is the key `actor` has already.
    pub fn resolved_key(&self, actor: &Actor) -> Option<String> {
        let candidates = [
            actor.uid.as_deref(),
            actor.email.as_deref(),
            actor.name.as_deref(),
            actor.session_issuer.as_deref(),
            Some(actor.key.as_str()).filter(|k| !k.is_empty()),
        ];
        if let Some(key) = candidates.into_iter().flatten().find_map(|p| self.alias(p)) {
            return (key != actor.key).then(|| key.to_string());
        }
        if !actor.key.is_empty() {
            return None;
        }
        if let Some(email) = actor.email.as_deref().filter(|e| !e.is_empty()) {
            return Some(email.to_lowercase());
        }
        let key = actor
            .uid
            .as_deref()
            .or(actor.name.as_deref())
            .unwrap_or_default();
        (!key.is_empty()).then(|| key.to_string())
    }

    /// Whether `principal` matches a protected pattern (case-insensitive).
    pub fn is_protected(&self, principal: &str) -> bool {
        if self.protected.is_empty() || principal.is_empty() {
            return false;
        }
        let lower = principal.to_lowercase();
        self.protected.iter().any(|g| g.matches(&lower))
    }

    /// Whether any name `actor` goes by (key, uid, email, name, session issuer) is protected:
    /// what the response guardrail asks before touching an identity.
    pub fn is_actor_protected(&self, actor: &Actor) -> bool {
        [
            Some(actor.key.as_str()),
            actor.uid.as_deref(),
            actor.email.as_deref(),
            actor.name.as_deref(),
            actor.session_issuer.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|p| self.is_protected(p))
    }

    /// The protected patterns as configured.
    pub fn protected_patterns(&self) -> impl Iterator<Item = &str> {
        self.protected.iter().map(|g| g.source.as_str())
    }
}

/// A compiled glob: lowercased pattern characters.
#[derive(Debug, Clone)]
struct Glob {
    source: String,
    chars: Vec<char>,
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        Glob {
            source: pattern.to_string(),
            chars: pattern.to_lowercase().chars().collect(),
        }
    }

    /// Matches an already lowercased string. Linear-time two-pointer match with backtracking
    /// to the last `*` only (no exponential blow-up on patterns like `*a*a*a*b`).
    fn matches(&self, text: &str) -> bool {
        let p = &self.chars;
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(protected: &[&str], aliases: &[(&str, &str)]) -> Identities {
        Identities::from_config(&IdentitiesConfig {
            protected: protected.iter().map(|s| s.to_string()).collect(),
            aliases: aliases
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn glob_matching() {
        let cases = [
            (
                "arn:aws:iam::*:root",
                "arn:aws:iam::123456789012:root",
                true,
            ),
            (
                "arn:aws:iam::*:root",
                "arn:aws:iam::123456789012:user/root",
                false,
            ),
            (
                "arn:aws:iam::*:root",
                "ARN:AWS:IAM::123456789012:ROOT",
                true,
            ),
            ("breakglass@corp.example", "BreakGlass@Corp.Example", true),
            (
                "breakglass@corp.example",
                "breakglass@corp.example.evil",
                false,
            ),
            ("*@admins.corp.example", "bob@admins.corp.example", true),
            ("*@admins.corp.example", "bob@corp.example", false),
            (
                "arn:aws:iam::123456789012:role/Admin?",
                "arn:aws:iam::123456789012:role/Admin1",
                true,
            ),
            (
                "arn:aws:iam::123456789012:role/Admin?",
                "arn:aws:iam::123456789012:role/Admin",
                false,
            ),
            (
                "arn:aws:iam::123456789012:role/Admin?",
                "arn:aws:iam::123456789012:role/Admin12",
                false,
            ),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            (
                "*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("ü*", "Über@corp.example", true),
            ("x", "", false),
        ];
        for (pattern, text, want) in cases {
            let g = Glob::new(pattern);
            assert_eq!(g.matches(&text.to_lowercase()), want, "{pattern} vs {text}");
        }
        assert!(Glob::new("*").matches(""));
    }

    #[test]
    fn protected_checks_every_name_of_an_actor() {
        let i = ids(&["breakglass@corp.example", "arn:aws:iam::*:root"], &[]);
        assert!(i.is_protected("BREAKGLASS@corp.example"));
        assert!(!i.is_protected("alice@corp.example"));
        assert!(!i.is_protected(""));
        let root = Actor {
            key: "arn:aws:iam::123456789012:root".into(),
            uid: Some("arn:aws:iam::123456789012:root".into()),
            ..Actor::default()
        };
        assert!(i.is_actor_protected(&root));
        let session = Actor {
            key: "alice@corp.example".into(),
            session_issuer: Some("arn:aws:iam::999999999999:root".into()),
            ..Actor::default()
        };
        assert!(i.is_actor_protected(&session));
        let alice = Actor {
            key: "alice@corp.example".into(),
            email: Some("alice@corp.example".into()),
            ..Actor::default()
        };
        assert!(!i.is_actor_protected(&alice));
        assert_eq!(
            i.protected_patterns().collect::<Vec<_>>(),
            ["breakglass@corp.example", "arn:aws:iam::*:root"]
        );
    }

    #[test]
    fn aliases_match_arns_exactly_and_emails_case_insensitively() {
        let i = ids(
            &[],
            &[
                ("arn:aws:iam::123456789012:user/alice", "Alice@Corp.Example"),
                ("Alice.Smith@Partner.Example", "alice@corp.example"),
                ("108234567890123456789", "bob@corp.example"),
            ],
        );
        assert_eq!(
            i.alias("arn:aws:iam::123456789012:user/alice"),
            Some("alice@corp.example")
        );
        assert_eq!(i.alias("arn:aws:iam::123456789012:user/Alice"), None);
        assert_eq!(
            i.alias("alice.smith@partner.example"),
            Some("alice@corp.example")
        );
        assert_eq!(
            i.alias("ALICE.SMITH@PARTNER.EXAMPLE"),
            Some("alice@corp.example")
        );
        assert_eq!(i.alias("108234567890123456789"), Some("bob@corp.example"));
        assert_eq!(i.alias("10823456789012345678"), None);
    }

    #[test]
    fn long_and_non_ascii_emails_fold_like_short_ones() {
        let long = format!("{}@Corp.Example", "A".repeat(150));
        let i = ids(
            &[],
            &[
                (long.as_str(), "long@corp.example"),
                ("Zoë.Ünï@Corp.Example", "zoe@corp.example"),
            ],
        );
        assert_eq!(i.alias(&long.to_uppercase()), Some("long@corp.example"));
        assert_eq!(i.alias(&long.to_lowercase()), Some("long@corp.example"));
        assert_eq!(i.alias("ZOË.ÜNÏ@CORP.EXAMPLE"), Some("zoe@corp.example"));
        assert_eq!(i.alias("zoë.ünï@corp.example"), Some("zoe@corp.example"));
        assert_eq!(i.alias("zoe.uni@corp.example"), None);
    }

    #[test]
    fn resolve_key_order_and_fallbacks() {
        let i = ids(
            &[],
            &[
                ("arn:aws:iam::123456789012:user/alice", "alice@corp.example"),
                ("arn:aws:iam::123456789012:role/Shared", "team@corp.example"),
                ("alice-gh", "alice-by-name@corp.example"),
            ],
        );
        // uid wins over name.
        let a = Actor {
            key: "arn:aws:iam::123456789012:user/alice".into(),
            uid: Some("arn:aws:iam::123456789012:user/alice".into()),
            name: Some("alice-gh".into()),
            ..Actor::default()
        };
        assert_eq!(i.resolve_key(&a), "alice@corp.example");
        // name, when uid and email have no alias.
        let b = Actor {
            uid: Some("AIDAEXAMPLE".into()),
            name: Some("alice-gh".into()),
            ..Actor::default()
        };
        assert_eq!(i.resolve_key(&b), "alice-by-name@corp.example");
        // session issuer last.
        let c = Actor {
            uid: Some("arn:aws:sts::123456789012:assumed-role/Shared/s1".into()),
            session_issuer: Some("arn:aws:iam::123456789012:role/Shared".into()),
            ..Actor::default()
        };
        assert_eq!(i.resolve_key(&c), "team@corp.example");
        // No alias: the normalizer's key stays.
        let d = Actor {
            key: "carol@corp.example".into(),
            email: Some("Carol@Corp.Example".into()),
            ..Actor::default()
        };
        assert_eq!(i.resolve_key(&d), "carol@corp.example");
        // No key: lowercased email, else uid, else name.
        let e = Actor {
            email: Some("Dave@Corp.Example".into()),
            uid: Some("u-1".into()),
            ..Actor::default()
        };
        assert_eq!(i.resolve_key(&e), "dave@corp.example");
        let f = Actor {
            uid: Some("u-1".into()),
            name: Some("n".into()),
            ..Actor::default()
        };
        assert_eq!(i.resolve_key(&f), "u-1");
        assert_eq!(i.resolve_key(&Actor::default()), "");
    }

    #[test]
    fn bad_config_entries_are_errors_naming_them() {
        let cfg = |protected: &[&str], aliases: &[(&str, &str)]| IdentitiesConfig {
            protected: protected.iter().map(|s| s.to_string()).collect(),
            aliases: aliases
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        };
        let err = Identities::from_config(&cfg(
            &[],
            &[("Alice@x.example", "a@x"), ("alice@x.example", "b@x")],
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("alice@x.example"), "{err}");
        // Same target in both spellings is fine.
        assert!(
            Identities::from_config(&cfg(
                &[],
                &[("Alice@x.example", "a@x"), ("alice@x.example", "A@X")]
            ))
            .is_ok()
        );
        let err = Identities::from_config(&cfg(&[], &[("arn:aws:iam::1:user/a", " ")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("arn:aws:iam::1:user/a"), "{err}");
        let err = Identities::from_config(&cfg(&["ok@x", ""], &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("protected[1]"), "{err}");
    }
}
