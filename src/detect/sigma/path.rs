//! Field paths into raw JSON records: `userIdentity.type`, `events.name` (any element of an
//! array), `events.parameters[name=SETTING_NAME].value` (the element of a list of name/value
//! objects whose `name` is `SETTING_NAME`).
//!
//! To add a new step kind: add a [`Step`] variant, parse it in [`FieldPath::parse`] and walk
//! it in `walk`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use smallvec::SmallVec;

use crate::json::{Fields, JsonContainerTrait, JsonValueTrait, Object, Raw, Value, ValueRef};

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
    /// The same for every path of the same text (see [`path_id`]): a record's memo key.
    id: u32,
}

/// The number of each path text parsed in this process, so that a record walks each path once
/// however many rules and selections ask for it.
fn path_id(text: &str) -> u32 {
    static IDS: LazyLock<Mutex<HashMap<Box<str>, u32>>> = LazyLock::new(Default::default);
    // A panic elsewhere cannot leave the map half-updated: one insert.
    let mut ids = IDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&id) = ids.get(text) {
        return id;
    }
    let id = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    ids.insert(text.into(), id);
    id
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
            id: path_id(text),
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the path ends in a `[key=value]` step, which offers only the (object)
    /// elements it selects.
    pub fn reaches_objects_only(&self) -> bool {
        matches!(self.steps.last(), Some(Step::Where { .. }))
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
        // The values are copied out of the memo before `f` runs: `f` may walk other paths of
        // the same record (`fieldref`).
        let values: SmallVec<[&'v Value; 8]> = {
            let mut memo = rec.memo.borrow_mut();
            let span = match memo.ids.iter().position(|&id| id == self.id) {
                Some(i) => memo.spans[i],
                None => {
                    let start = memo.values.len();
                    self.walk_all(rec, &mut memo.values);
                    let span = (start as u32, memo.values.len() as u32);
                    memo.ids.push(self.id);
                    memo.spans.push(span);
                    span
                }
            };
            match memo.values.get(span.0 as usize..span.1 as usize) {
                None | Some([]) => return false,
                Some(&[one]) => {
                    drop(memo);
                    return f(one);
                }
                Some(many) => many.into(),
            }
        };
        values.into_iter().any(f)
    }

    /// Every value the path reaches, in the order [`FieldPath::any`] offers them.
    fn walk_all<'v>(&self, rec: &Record<'v>, out: &mut SmallVec<[&'v Value; 32]>) {
        let f = &mut |v| {
            out.push(v);
            false
        };
        // The first step looks up the root's index; a root that is no object (or an empty
        // one) has no index and is walked as any value.
        match self.steps.split_first() {
            Some((step, rest)) if !rec.fields.is_empty() => {
                step_into(step, |k| rec.fields.member(k), rest, f);
            }
            _ => {
                walk(rec.value, &self.steps, f);
            }
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
    fields: Index<'v>,
    /// The values of each path walked so far: rules share paths (`eventName`, `userAgent`,
    /// a mapping's alternatives), and the index walks its keys before the rules do.
    memo: RefCell<Memo<'v>>,
}

/// A record's root index: the one its [`Raw`] carries, or one of its own.
enum Index<'v> {
    Shared(&'v Fields<'v>),
    Own(Fields<'v>),
}

impl<'v> std::ops::Deref for Index<'v> {
    type Target = Fields<'v>;

    fn deref(&self) -> &Fields<'v> {
        match self {
            Index::Shared(f) => f,
            Index::Own(f) => f,
        }
    }
}

/// Path id -> span of `values`.
#[derive(Default)]
struct Memo<'v> {
    ids: SmallVec<[u32; 32]>,
    spans: SmallVec<[(u32, u32); 32]>,
    values: SmallVec<[&'v Value; 32]>,
}

impl<'v> Record<'v> {
    /// Indexes `value` as it is ([`super::view_record`] unwraps envelopes first).
    pub fn new(value: &'v Value) -> Record<'v> {
        Record {
            value,
            fields: Index::Own(Fields::new(value)),
            memo: RefCell::default(),
        }
    }

    /// A raw record as it is, with the index it carries.
    pub fn indexed(raw: &'v Raw) -> Record<'v> {
        Record {
            value: raw.value(),
            fields: Index::Shared(raw.fields()),
            memo: RefCell::default(),
        }
    }

    /// Indexes `value` instead (an envelope's inner record).
    pub fn reindex(&mut self, value: &'v Value) {
        self.value = value;
        match &mut self.fields {
            Index::Own(f) => f.reset(value),
            shared => *shared = Index::Own(Fields::new(value)),
        }
        let memo = self.memo.get_mut();
        memo.ids.clear();
        memo.spans.clear();
        memo.values.clear();
    }

    /// The record.
    pub fn value(&self) -> &'v Value {
        self.value
    }

    /// The root member named exactly `key` (as `Value::get`), through the index.
    pub fn field(&self, key: &str) -> Option<&'v Value> {
        self.fields.get(key)
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
    // One pass: an exact match anywhere wins, else the first folded one. (Two lookups, exact
    // then folded, walked a missing key's object twice.)
    let mut folded = None;
    for (k, v) in obj.iter() {
        if k.len() != key.len() {
            continue;
        }
        if k == key {
            return Some(v);
        }
        if folded.is_none() && k.eq_ignore_ascii_case(key) {
            folded = Some(v);
        }
    }
    folded
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
    // Two type tests: cheaper than `as_ref`, which unpacks every kind of value.
    if let Some(obj) = v.as_object() {
        return step_into(step, |k| member(obj, k), rest, f);
    }
    if let Some(items) = v.as_array() {
        return items.iter().any(|item| walk(item, steps, f));
    }
    false
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
    if let Some(s) = v.as_str() {
        return Some(Cow::Borrowed(s));
    }
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
    fn a_record_remembers_each_path_and_paths_may_nest() {
        let v = json!({"a": {"b": [1, 2]}, "c": "x", "d": {"B": 3}});
        let rec = Record::new(&v);
        let ab = FieldPath::parse("a.b").unwrap();
        let same = FieldPath::parse("a.b").unwrap();
        let c = FieldPath::parse("c").unwrap();
        let db = FieldPath::parse("d.b").unwrap();
        let values = |p: &FieldPath| {
            let mut out = Vec::new();
            p.any(&rec, &mut |x| {
                out.push(x.to_string());
                false
            });
            out
        };
        for _ in 0..2 {
            assert_eq!(values(&ab), ["[1,2]", "1", "2"]);
            assert_eq!(values(&same), ["[1,2]", "1", "2"]);
            assert_eq!(values(&c), ["\"x\""]);
            assert_eq!(values(&db), ["3"], "keys fold to ASCII lower case");
        }
        // `f` may walk other paths of the same record (as `fieldref` does), and stops early.
        let mut seen = 0;
        assert!(ab.any(&rec, &mut |x| {
            seen += 1;
            c.exists(&rec) && db.any(&rec, &mut |y| y == x || x.as_u64() == Some(1))
        }));
        assert_eq!(seen, 2, "stops at the first element that matches");
        assert!(!FieldPath::parse("a.nope").unwrap().exists(&rec));
    }

    #[test]
    fn leaf_array_offered_whole_and_per_element() {
        let v = json!({"a": [1, 2]});
        assert_eq!(collect("a", &v), vec!["[1,2]", "1", "2"]);
    }
}
