//! Protected identities: globs over ARNs, UPNs and emails that no action ever touches.
//! Root, break-glass accounts and picket's own roles are always protected, whatever the
//! config says. (`*` matches any run of characters, `?` one; case-insensitive.)
//!
//! Written here because the shared identity matcher (`enrich/identities.rs`) had not landed
//! on main when the Responder was written; swap it in when it does.

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

/// A compiled list of protected identity globs.
#[derive(Debug, Clone)]
pub struct Protected {
    globs: Vec<String>,
}

/// A glob that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protected identity glob `{glob}`: {message}")]
pub struct GlobError {
    /// The glob.
    pub glob: String,
    /// What is wrong.
    pub message: String,
}

impl Protected {
    /// The configured globs plus [`ALWAYS_PROTECTED`]. Empty globs are refused: a list that
    /// cannot be loaded must stop all action, not protect nothing.
    pub fn new<S: AsRef<str>>(configured: &[S]) -> Result<Protected, GlobError> {
        let mut globs: Vec<String> = ALWAYS_PROTECTED.iter().map(|g| g.to_string()).collect();
        for g in configured {
            let g = g.as_ref().trim();
            if g.is_empty() {
                return Err(GlobError {
                    glob: g.to_string(),
                    message: "empty".into(),
                });
            }
            if g == "*" {
                // Legal, and means: touch nobody.
                tracing::info!("every identity is protected: response actions will not run");
            }
            globs.push(g.to_lowercase());
        }
        Ok(Protected { globs })
    }

    /// Whether any of `names` (principal, identity key, aliases) is protected.
    pub fn matches<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<String> {
        for n in names {
            let n = n.to_lowercase();
            if let Some(g) = self.globs.iter().find(|g| glob_match(g, &n)) {
                return Some(g.clone());
            }
        }
        None
    }
}

/// `*` and `?` glob match (iterative, linear backtracking).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_arns_and_emails() {
        assert!(glob_match(
            "arn:aws:iam::*:root",
            "arn:aws:iam::123456789012:root"
        ));
        assert!(glob_match(
            "*@admins.corp.example",
            "bob@admins.corp.example"
        ));
        assert!(glob_match("user-?", "user-1"));
        assert!(!glob_match("user-?", "user-12"));
        assert!(!glob_match(
            "arn:aws:iam::*:root",
            "arn:aws:iam::1:user/root-ish"
        ));
    }

    #[test]
    fn defaults_are_always_protected() {
        let p = Protected::new::<&str>(&[]).unwrap();
        assert!(p.matches(["arn:aws:iam::1:root"]).is_some());
        assert!(p.matches(["Breakglass@corp.example"]).is_some());
        assert!(
            p.matches(["arn:aws:sts::1:assumed-role/picket-responder/x"])
                .is_some()
        );
        assert!(p.matches(["alice@corp.example"]).is_none());
        assert!(Protected::new(&[""]).is_err());
    }
}
