//! Field paths into raw JSON records: `userIdentity.type`, `events.name` (any element of an
//! array), `events.parameters[name=SETTING_NAME].value` (the element of a list of name/value
//! objects whose `name` is `SETTING_NAME`).
//!
//! To add a new step kind: add a [`Step`] variant, parse it in [`FieldPath::parse`] and walk
//! it in `walk`.

use std::borrow::Cow;

use crate::json::{Fields, JsonContainerTrait, JsonValueTrait, Object, Value, ValueRef};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object key (exact, else ASCII case-insensitive). Arrays on the way fan out.
    Key(Box<str>),
    /// Into an array of objects: the elements whose `key` equals `name` (case-insensitive).
    Where {
        /// The array's key.
        array: Box<str>,
        /// The element key holding the name.
        key: Box<str>,
        /// The wanted name.
        name: Box<str>,
    },
}

/// A parsed field path, walked over raw records without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    steps: Vec<Step>,
    text: Box<str>,
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl FieldPath {
    /// Parses `a.b.c` and `a[key=value].b`. Empty segments are an error.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let mut steps = Vec::new();
        for seg in split_segments(text) {
            if seg.is_empty() {
                return Err(format!("field path `{text}` has an empty segment"));
            }
            if let Some(open) = seg.find('[') {
                let inner = seg[open + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| format!("field path `{text}`: unclosed `[`"))?;
                let (key, name) = inner
                    .split_once('=')
                    .ok_or_else(|| format!("field path `{text}`: expected `[key=value]`"))?;
                steps.push(Step::Where {
                    array: seg[..open].into(),
                    key: key.into(),
                    name: name.into(),
                });
            } else {
                steps.push(Step::Key(seg.into()));
            }
        }
        if steps.is_empty() {
            return Err("empty field path".to_string());
        }
        Ok(FieldPath {
            steps,
            text: text.into(),
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first key of the path.
    pub fn head(&self) -> &str {
        // INVARIANT: `parse` never builds a path without steps.
        match &self.steps[0] {
            Step::Key(k) => k,
            Step::Where { array, .. } => array,
        }
    }

    /// Calls `f` on every value the path reaches (arrays fan out: any element; a leaf array is
    /// offered whole and then element by element) until `f` returns true. Returns whether it did.
    pub fn any<'v>(&self, rec: &Record<'v>, f: &mut dyn FnMut(&'v Value) -> bool) -> bool {
        // The first step looks up the root's index; a root that is no object (or an empty
        // one) has no index and is walked as any value.
        match self.steps.split_first() {
            Some((step, rest)) if !rec.fields.is_empty() => {
                step_into(step, |k| rec.fields.member(k), rest, f)
            }
            _ => walk(rec.value, &self.steps, f),
        }
    }

    /// Whether the path reaches at least one value (null included).
    pub fn exists(&self, rec: &Record<'_>) -> bool {
        self.any(rec, &mut |_| true)
    }
}

/// A record as rules read it, its root object's members indexed once: every rule and the
/// rule index look up the same few root fields.
pub struct Record<'v> {
    value: &'v Value,
    fields: Fields<'v>,
}

impl<'v> Record<'v> {
    /// Indexes `value`, which should be what [`super::record_view`] gives.
    pub fn new(value: &'v Value) -> Record<'v> {
        Record {
            value,
            fields: Fields::new(value),
        }
    }

    /// The record.
    pub fn value(&self) -> &'v Value {
        self.value
    }
}

/// Splits on dots outside `[...]`.
fn split_segments(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// Object member by exact key, else by ASCII case-insensitive key.
pub(crate) fn member<'v>(obj: &'v Object, key: &str) -> Option<&'v Value> {
    obj.get(&key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn walk<'v>(v: &'v Value, steps: &[Step], f: &mut dyn FnMut(&'v Value) -> bool) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        if f(v) {
            return true;
        }
        if let Some(items) = v.as_array() {
            return items.iter().any(|item| walk(item, steps, f));
        }
        return false;
    };
    match v.as_ref() {
        ValueRef::Array(items) => items.iter().any(|item| walk(item, steps, f)),
        ValueRef::Object(obj) => step_into(step, |k| member(obj, k), rest, f),
        _ => false,
    }
}

/// One step into an object whose members `member` finds, then the `rest` of the path.
fn step_into<'v>(
    step: &Step,
    member: impl Fn(&str) -> Option<&'v Value>,
    rest: &[Step],
    f: &mut dyn FnMut(&'v Value) -> bool,
) -> bool {
    match step {
        Step::Key(k) => member(k).is_some_and(|next| walk(next, rest, f)),
        Step::Where { array, key, name } => {
            let Some(items) = member(array).and_then(Value::as_array) else {
                return false;
            };
            items.iter().any(|item| {
                let named = item
                    .as_object()
                    .and_then(|o| self::member(o, key))
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name));
                named && walk(item, rest, f)
            })
        }
    }
}

/// The string form of a scalar or structure, as Sigma compares it: strings as they are,
/// numbers and booleans in their JSON spelling, objects and arrays as compact JSON. `None`
/// for null.
pub fn string_form(v: &Value) -> Option<Cow<'_, str>> {
    match v.as_ref() {
        ValueRef::Null => None,
        ValueRef::String(s) => Some(Cow::Borrowed(s)),
        ValueRef::Bool(true) => Some(Cow::Borrowed("true")),
        ValueRef::Bool(false) => Some(Cow::Borrowed("false")),
        ValueRef::Number(n) => Some(Cow::Owned(n.to_string())),
        ValueRef::Array(_) | ValueRef::Object(_) => Some(Cow::Owned(v.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    fn collect(path: &str, v: &Value) -> Vec<String> {
        let p = FieldPath::parse(path).unwrap();
        let mut out = Vec::new();
        p.any(&Record::new(v), &mut |x| {
            out.push(x.to_string());
            false
        });
        out
    }

    #[test]
    fn nested_arrays_and_case() {
        let v = json!({"userIdentity": {"type": "Root"}, "events": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(collect("userIdentity.type", &v), vec!["\"Root\""]);
        assert_eq!(collect("UserIdentity.Type", &v), vec!["\"Root\""]);
        assert_eq!(collect("events.name", &v), vec!["\"a\"", "\"b\""]);
        assert!(collect("events.nope", &v).is_empty());
    }

    #[test]
    fn where_step_selects_named_parameter() {
        let v = json!({"events": [{"parameters": [
            {"name": "SETTING_NAME", "value": "X"}, {"name": "NEW_VALUE", "value": "Y"}]}]});
        assert_eq!(
            collect("events.parameters[name=NEW_VALUE].value", &v),
            vec!["\"Y\""]
        );
        assert!(FieldPath::parse("a[b].c").is_err());
        assert!(FieldPath::parse("a..c").is_err());
    }

    #[test]
    fn leaf_array_offered_whole_and_per_element() {
        let v = json!({"a": [1, 2]});
        assert_eq!(collect("a", &v), vec!["[1,2]", "1", "2"]);
    }
}
