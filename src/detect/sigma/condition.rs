//! Sigma `condition` expressions: `and`, `or`, `not`, parentheses, `1 of sel*`,
//! `all of sel*`, `1 of them`, `all of them` (and `N of ...`). Aggregations after `|` are a
//! named, unsupported feature. Identifiers resolve to search indices at parse time.
//!
//! To add an operator: a token in `lex`, a [`Cond`] variant, its parse rule and its arm in
//! [`Cond::eval`].

/// A compiled condition over searches (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// One search.
    Ref(usize),
    /// Negation.
    Not(Box<Cond>),
    /// Every operand.
    And(Vec<Cond>),
    /// Any operand.
    Or(Vec<Cond>),
    /// At least `n` of the searches.
    AtLeast(usize, Vec<usize>),
    /// Every one of the searches.
    All(Vec<usize>),
}

impl Cond {
    /// Evaluates with `search(i)` telling whether search `i` matched.
    pub fn eval(&self, search: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Ref(i) => search(*i),
            Cond::Not(c) => !c.eval(search),
            Cond::And(cs) => cs.iter().all(|c| c.eval(search)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(search)),
            Cond::AtLeast(n, ids) => {
                let mut hits = 0;
                for &i in ids {
                    if search(i) {
                        hits += 1;
                        if hits >= *n {
                            return true;
                        }
                    }
                }
                false
            }
            Cond::All(ids) => ids.iter().all(|&i| search(i)),
        }
    }

    /// For indexing: sets of searches such that, whenever the condition holds, every search
    /// of at least one set matched (a necessary condition in disjunctive form over the positive
    /// searches). `None` when the condition can hold with no search matching (`not x`, `all of
    /// []`). A conjunction whose sets would multiply past [`MAX_ALTERNATIVES`] keeps the sets of
    /// its conjunct with the fewest.
    pub fn alternatives(&self) -> Option<Vec<Vec<usize>>> {
        match self {
            Cond::Ref(i) => Some(vec![vec![*i]]),
            Cond::Not(_) => None,
            Cond::All(ids) if !ids.is_empty() => Some(vec![ids.clone()]),
            Cond::AtLeast(n, ids) if *n >= 1 && !ids.is_empty() => {
                Some(ids.iter().map(|i| vec![*i]).collect())
            }
            Cond::All(_) | Cond::AtLeast(..) => None,
            Cond::Or(cs) => {
                let mut out = Vec::new();
                for c in cs {
                    out.extend(c.alternatives()?);
                }
                Some(out)
            }
            Cond::And(cs) => {
                let parts: Vec<Vec<Vec<usize>>> =
                    cs.iter().filter_map(Cond::alternatives).collect();
                if parts.is_empty() {
                    return None;
                }
                let mut sets = vec![Vec::new()];
                for part in &parts {
                    if sets.len() * part.len() > MAX_ALTERNATIVES {
                        return parts.into_iter().min_by_key(Vec::len);
                    }
                    sets = sets
                        .iter()
                        .flat_map(|a| part.iter().map(move |b| [a.as_slice(), b].concat()))
                        .collect();
                }
                Some(sets)
            }
        }
    }
}

/// At most this many alternative search sets per condition for indexing (see
/// [`Cond::alternatives`]).
pub const MAX_ALTERNATIVES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    And,
    Or,
    Not,
    Open,
    Close,
    Of(Quant),
    Pipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quant {
    N(usize),
    All,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' | '|' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let lower = w.to_ascii_lowercase();
        let quant = if lower == "all" {
            Some(Quant::All)
        } else {
            lower.parse::<usize>().ok().map(Quant::N)
        };
        if let (Some(q), Some(next)) = (quant, words.get(i + 1))
            && next.eq_ignore_ascii_case("of")
        {
            out.push(Tok::Of(q));
            i += 2;
            continue;
        }
        out.push(match lower.as_str() {
            "and" => Tok::And,
            "or" => Tok::Or,
            "not" => Tok::Not,
            "(" => Tok::Open,
            ")" => Tok::Close,
            "|" => Tok::Pipe,
            _ => Tok::Ident(w.to_string()),
        });
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    names: &'a [String],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Cond, String> {
        let tok = self.peek().cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Open) => {
                let c = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("condition: missing `)`".to_string());
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Of(q)) => {
                let Some(Tok::Ident(target)) = self.peek().cloned() else {
                    return Err("condition: `of` needs a selection pattern or `them`".to_string());
                };
                self.pos += 1;
                let ids = self.expand(&target)?;
                Ok(match q {
                    Quant::All => Cond::All(ids),
                    Quant::N(0) => return Err("condition: `0 of` is meaningless".to_string()),
                    Quant::N(n) => Cond::AtLeast(n, ids),
                })
            }
            Some(Tok::Ident(name)) => {
                let idx = self
                    .names
                    .iter()
                    .position(|n| *n == name)
                    .ok_or_else(|| format!("condition refers to unknown search `{name}`"))?;
                Ok(Cond::Ref(idx))
            }
            Some(Tok::Pipe) => Err("unsupported condition aggregation '|'".to_string()),
            Some(t) => Err(format!("condition: unexpected `{t:?}`")),
            None => Err("condition: unexpected end".to_string()),
        }
    }

    fn expand(&self, target: &str) -> Result<Vec<usize>, String> {
        let ids: Vec<usize> = if target == "them" {
            (0..self.names.len())
                .filter(|&i| !self.names[i].starts_with('_'))
                .collect()
        } else if let Some(prefix) = target.strip_suffix('*') {
            if prefix.contains('*') {
                return Err(format!("condition: unsupported pattern `{target}`"));
            }
            (0..self.names.len())
                .filter(|&i| self.names[i].starts_with(prefix))
                .collect()
        } else {
            (0..self.names.len())
                .filter(|&i| self.names[i] == target)
                .collect()
        };
        if ids.is_empty() {
            return Err(format!("condition: `{target}` matches no search"));
        }
        Ok(ids)
    }
}

/// Parses one condition string against the search names (in declaration order).
pub fn parse(cond: &str, names: &[String]) -> Result<Cond, String> {
    let toks = lex(cond)?;
    if toks.contains(&Tok::Pipe) {
        return Err("unsupported condition aggregation '|' (use a correlation rule)".to_string());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        names,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("condition: unexpected `{:?}`", p.toks[p.pos]));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["selection", "filter_a", "filter_b", "_hidden"]
            .map(String::from)
            .to_vec()
    }

    fn eval(c: &str, hits: &[bool]) -> bool {
        parse(c, &names()).unwrap().eval(&mut |i| hits[i])
    }

    #[test]
    fn precedence_and_groups() {
        assert!(eval(
            "selection and not 1 of filter_*",
            &[true, false, false, false]
        ));
        assert!(!eval(
            "selection and not 1 of filter_*",
            &[true, false, true, false]
        ));
        assert!(eval(
            "selection or filter_a and filter_b",
            &[true, false, false, false]
        ));
        assert!(!eval(
            "(selection or filter_a) and filter_b",
            &[true, false, false, false]
        ));
        assert!(eval("all of filter*", &[false, true, true, false]));
        assert!(eval("all of them", &[true, true, true, false]));
        assert!(!eval("all of them", &[true, false, true, false]));
        assert!(eval("not not selection", &[true, false, false, false]));
    }

    #[test]
    fn alternatives_are_necessary_search_sets() {
        let alts = |c: &str| parse(c, &names()).unwrap().alternatives();
        assert_eq!(alts("selection and not filter_a"), Some(vec![vec![0]]));
        assert_eq!(alts("selection or filter_a"), Some(vec![vec![0], vec![1]]));
        assert_eq!(alts("1 of filter_*"), Some(vec![vec![1], vec![2]]));
        assert_eq!(alts("all of filter_*"), Some(vec![vec![1, 2]]));
        assert_eq!(
            alts("(selection or filter_a) and filter_b"),
            Some(vec![vec![0, 2], vec![1, 2]])
        );
        assert_eq!(alts("selection or not filter_a"), None);
        assert_eq!(alts("not selection"), None);
        // Every assignment that satisfies a condition satisfies every search of one of its sets.
        for c in [
            "selection and not filter_a",
            "(selection or filter_a) and filter_b",
            "1 of filter_* and not selection",
            "selection or (filter_a and filter_b)",
            "all of them",
            "1 of them",
        ] {
            let sets = alts(c).unwrap();
            for bits in 0..16u32 {
                let hits: Vec<bool> = (0..4).map(|i| bits & (1 << i) != 0).collect();
                if eval(c, &hits) {
                    assert!(
                        sets.iter().any(|s| s.iter().all(|&i| hits[i])),
                        "{c} with {hits:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn them_skips_underscore_names() {
        assert_eq!(
            parse("all of them", &names()).unwrap(),
            Cond::All(vec![0, 1, 2])
        );
    }

    #[test]
    fn errors_are_named() {
        assert!(
            parse("selection | count() > 5", &names())
                .unwrap_err()
                .contains("aggregation '|'")
        );
        assert!(parse("nothere", &names()).unwrap_err().contains("nothere"));
        assert!(parse("(selection", &names()).is_err());
        assert!(parse("1 of zz*", &names()).is_err());
    }
}
