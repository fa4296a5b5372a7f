//! Compiled string patterns: Sigma wildcards (`*`, `?`, escapes `\*`, `\?`, `\\`), the
//! `contains`/`startswith`/`endswith` shapes, case-insensitivity, and the value transforms
//! (`base64`, `base64offset`, `windash`, `utf16le`/`utf16be`/`utf16`/`wide`).
//!
//! Plain literals compare byte-wise with ASCII case folding (no allocation per event);
//! wildcard patterns and non-ASCII case-insensitive literals compile to one `regex` each.
//! To add a match shape: a [`StrMatch`] variant and its arm in [`StrPattern::is_match`].

use regex::{Regex, RegexBuilder};

/// Where a literal must sit in the haystack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The whole value.
    Exact,
    /// Anywhere (`contains`).
    Contains,
    /// At the start (`startswith`).
    Start,
    /// At the end (`endswith`).
    End,
}

/// One token of a Sigma string value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    Star,
    One,
}

/// Splits a Sigma string into literals and wildcards, honouring `\*`, `\?` and `\\`.
fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                out.push(if c == '*' { Tok::Star } else { Tok::One });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    out
}

/// A compiled string matcher.
#[derive(Debug, Clone)]
pub enum StrMatch {
    /// Equal (ASCII-folded when not cased; the literal is stored folded).
    Exact(Box<str>),
    /// Starts with.
    Prefix(Box<str>),
    /// Ends with.
    Suffix(Box<str>),
    /// Contains.
    Contains(Box<str>),
    /// Anything (a lone `*`).
    Any,
    /// A compiled regex (wildcards, non-ASCII folding, `re`).
    Regex(Regex),
}

/// A string pattern with its case rule.
#[derive(Debug, Clone)]
pub struct StrPattern {
    /// The matcher.
    pub m: StrMatch,
    /// Compare case-sensitively.
    pub cased: bool,
}

impl StrPattern {
    /// Compiles a Sigma string value (wildcards honoured unless `literal`) with an anchor.
    pub fn sigma(
        value: &str,
        anchor: Anchor,
        cased: bool,
        literal: bool,
    ) -> Result<StrPattern, String> {
        let mut toks = if literal {
            if value.is_empty() {
                Vec::new()
            } else {
                vec![Tok::Lit(value.to_string())]
            }
        } else {
            tokenize(value)
        };
        if matches!(anchor, Anchor::Contains | Anchor::End) && toks.first() != Some(&Tok::Star) {
            toks.insert(0, Tok::Star);
        }
        if matches!(anchor, Anchor::Contains | Anchor::Start) && toks.last() != Some(&Tok::Star) {
            toks.push(Tok::Star);
        }
        toks.dedup_by(|a, b| *a == Tok::Star && *b == Tok::Star);
        let simple_ok = |s: &str| cased || s.is_ascii();
        let fold = |s: &str| -> Box<str> {
            if cased {
                s.into()
            } else {
                s.to_ascii_lowercase().into()
            }
        };
        let m = match toks.as_slice() {
            [] => StrMatch::Exact("".into()),
            [Tok::Star] => StrMatch::Any,
            [Tok::Lit(l)] if simple_ok(l) => StrMatch::Exact(fold(l)),
            [Tok::Lit(l), Tok::Star] if simple_ok(l) => StrMatch::Prefix(fold(l)),
            [Tok::Star, Tok::Lit(l)] if simple_ok(l) => StrMatch::Suffix(fold(l)),
            [Tok::Star, Tok::Lit(l), Tok::Star] if simple_ok(l) => StrMatch::Contains(fold(l)),
            toks => {
                let mut re = String::from("^");
                for t in toks {
                    match t {
                        Tok::Lit(l) => re.push_str(&regex::escape(l)),
                        Tok::Star => re.push_str(".*"),
                        Tok::One => re.push('.'),
                    }
                }
                re.push('$');
                let r = RegexBuilder::new(&re)
                    .case_insensitive(!cased)
                    .dot_matches_new_line(true)
                    .build()
                    .map_err(|e| format!("pattern `{value}`: {e}"))?;
                StrMatch::Regex(r)
            }
        };
        Ok(StrPattern { m, cased })
    }

    /// Compiles a `re` value with its `i`, `m`, `s` flags (case-sensitive by default, unanchored).
    pub fn regex(value: &str, i: bool, m: bool, s: bool) -> Result<StrPattern, String> {
        let r = RegexBuilder::new(value)
            .case_insensitive(i)
            .multi_line(m)
            .dot_matches_new_line(s)
            .build()
            .map_err(|e| format!("unsupported or invalid regex `{value}`: {e}"))?;
        Ok(StrPattern {
            m: StrMatch::Regex(r),
            cased: true,
        })
    }

    /// The folded literal when this is an exact, non-regex match (for rule indexing).
    pub fn exact_literal(&self) -> Option<&str> {
        match &self.m {
            StrMatch::Exact(l) if !self.cased => Some(l),
            _ => None,
        }
    }

    /// Whether `hay` matches.
    pub fn is_match(&self, hay: &str) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if self.cased {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        match &self.m {
            StrMatch::Any => true,
            StrMatch::Exact(l) => eq(hay.as_bytes(), l.as_bytes()),
            StrMatch::Prefix(l) => {
                hay.len() >= l.len() && eq(&hay.as_bytes()[..l.len()], l.as_bytes())
            }
            StrMatch::Suffix(l) => {
                hay.len() >= l.len() && eq(&hay.as_bytes()[hay.len() - l.len()..], l.as_bytes())
            }
            StrMatch::Contains(l) => contains(hay.as_bytes(), l.as_bytes(), self.cased),
            StrMatch::Regex(r) => r.is_match(hay),
        }
    }
}

/// Substring search, ASCII case-folded unless `cased`. SIMD search (`memchr`) for the
/// needle, or, folded, for either case of its first byte.
pub fn contains(hay: &[u8], needle: &[u8], cased: bool) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    if cased {
        return memchr::memmem::find(hay, needle).is_some();
    }
    let starts = &hay[..=hay.len() - needle.len()];
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        starts,
    )
    .any(|i| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The three `base64offset` variants of `bytes`: the stable middle part of its encoding at
/// each of the three byte offsets (as pySigma computes them).
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(bytes);
            let enc = base64(&padded);
            let end_cut = END[(bytes.len() + i) % 3];
            let stop = enc.len().saturating_sub(end_cut);
            enc.get(START[i]..stop).unwrap_or("").to_string()
        })
        .collect()
}

/// `windash`: every `-` at a word start also as `/`, en dash, em dash and horizontal bar.
pub fn windash(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    if value.contains('-') {
        for alt in ['/', '\u{2013}', '\u{2014}', '\u{2015}'] {
            out.push(value.replace('-', &alt.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str, a: Anchor) -> StrPattern {
        StrPattern::sigma(v, a, false, false).unwrap()
    }

    #[test]
    fn shapes_and_case() {
        assert!(m("CreateUser", Anchor::Exact).is_match("createuser"));
        assert!(!m("CreateUser", Anchor::Exact).is_match("createuser2"));
        assert!(m("Get", Anchor::Start).is_match("GetObject"));
        assert!(m("object", Anchor::End).is_match("GetObject"));
        assert!(m("tObj", Anchor::Contains).is_match("GetObject"));
        assert!(
            !StrPattern::sigma("tobj", Anchor::Contains, true, false)
                .unwrap()
                .is_match("GetObject")
        );
        assert!(
            StrPattern::sigma("tOb", Anchor::Contains, true, false)
                .unwrap()
                .is_match("GetObject")
        );
    }

    #[test]
    fn contains_finds_every_position_and_folds_ascii_only() {
        for (hay, needle, cased, want) in [
            ("AttachUserPolicy", "userpol", false, true),
            ("AttachUserPolicy", "userpol", true, false),
            ("AttachUserPolicy", "UserPol", true, true),
            ("xxxxab", "ab", false, true),
            ("ab", "ab", false, true),
            ("a", "ab", false, false),
            ("aab", "ab", false, true),
            ("ba", "ab", false, false),
            ("", "", false, true),
            ("x", "", true, true),
            ("1.2.3.4", ".3", false, true),
            ("ÄB", "äb", false, false),
            ("ÄB", "ÄB", false, true),
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
                "aab",
                false,
                true,
            ),
        ] {
            assert_eq!(
                contains(hay.as_bytes(), needle.as_bytes(), cased),
                want,
                "{hay:?} {needle:?} cased={cased}"
            );
        }
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(m("Get*t", Anchor::Exact).is_match("GetObject"));
        assert!(m("Get?bject", Anchor::Exact).is_match("GetObject"));
        assert!(!m("Get?bject", Anchor::Exact).is_match("GetOObject"));
        assert!(m(r"a\*b", Anchor::Exact).is_match("a*b"));
        assert!(!m(r"a\*b", Anchor::Exact).is_match("axxb"));
        assert!(m(r"a\?", Anchor::Exact).is_match("a?"));
        assert!(m(r"c:\\x", Anchor::Exact).is_match(r"c:\x"));
        assert!(m(r"c:\x", Anchor::Exact).is_match(r"c:\x"));
        assert!(m("*", Anchor::Exact).is_match(""));
        assert!(m("ÄBC", Anchor::Exact).is_match("äbc"));
    }

    #[test]
    fn base64_and_offsets() {
        assert_eq!(base64(b"ping"), "cGluZw==");
        assert_eq!(base64(b"pin"), "cGlu");
        // pySigma's documented example: base64offset of /bin/bash.
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn windash_variants() {
        assert_eq!(windash("-x").len(), 5);
        assert!(windash("-x").contains(&"/x".to_string()));
        assert_eq!(windash("x").len(), 1);
    }
}
