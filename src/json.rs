//! The raw record type: a provider's JSON record, parsed once and read by the normalizers,
//! the Sigma engine and the outputs.
//!
//! `sonic-rs`'s `Value` keeps a record's whole tree in one arena (one allocation to free) and
//! parses with SIMD: about four times the speed of a `serde_json::Value` on the CloudTrail,
//! Entra and Workspace records of the replay mix (`cargo bench --no-default-features --bench
//! replay -- json`). Everything else picket reads or writes as JSON (configs, API responses,
//! state, outputs) stays `serde_json`.

pub use sonic_rs::{
    Array, JsonContainerTrait, JsonNumberTrait, JsonValueMutTrait, JsonValueTrait, Object, Value,
    ValueRef, json, to_value,
};

/// How deep arrays and objects may nest in a raw record. Deeper input is refused before
/// sonic-rs parses it, because its parser (and every walk over a tree) recurses: a crafted
/// record nested 100,000 deep would overflow the stack. Provider records nest far less
/// (CloudTrail, Graph, Reports and `LogEntry` records stay under 20 levels); 64 leaves room and
/// keeps a debug build's parser, with its large frames, inside a 2 MiB thread stack.
pub const MAX_DEPTH: usize = 64;

/// Parses one JSON value. The error is serde_json's message (line and column), never a
/// fragment of the input: a record may hold anything a log holds, and sonic-rs's own messages
/// quote the bytes around the error.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    if too_deep(bytes) {
        return Err("nested deeper than 64 levels".to_string());
    }
    sonic_rs::from_slice::<Value>(bytes).map_err(|e| {
        let own = e.to_string();
        message(bytes, own.split("\n\n").next().unwrap_or_default())
    })
}

/// serde_json's message on `bytes`, else `fallback` (what serde_json accepts and picket does
/// not).
fn message(bytes: &[u8], fallback: &str) -> String {
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Err(e) => e.to_string(),
        Ok(_) => fallback.to_string(),
    }
}

/// Whether arrays and objects nest deeper than [`MAX_DEPTH`] (brackets in strings do not
/// count). Most records have fewer opening brackets in all than the limit, which a count
/// the compiler vectorises shows without following strings.
pub fn too_deep(bytes: &[u8]) -> bool {
    if brackets_at_most(bytes, MAX_DEPTH) {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether `bytes` hold at most `limit` opening brackets (`[` or `{`). Counted in blocks of
/// 128 bytes, whose per-block count fits a byte: a loop of compares and adds the compiler
/// turns into SIMD (a `memchr2` search stopped at every bracket and cost four times more).
fn brackets_at_most(bytes: &[u8], limit: usize) -> bool {
    let mut n = 0usize;
    for block in bytes.chunks(128) {
        let in_block: u8 = block
            .iter()
            .map(|&b| u8::from(b == b'[' || b == b'{'))
            .fold(0u8, u8::wrapping_add);
        n += usize::from(in_block);
        if n > limit {
            return false;
        }
    }
    true
}

/// An object's members, indexed once so that each lookup is a probe of a small hash table
/// rather than a walk over the keys' strings: a record's root object has 15 to 40 members,
/// and the normalizers and the Sigma rules look up dozens of fields in it per record.
/// sonic-rs's own lookup compares each key in turn; on the replay mix that was a third of the
/// time per record.
///
/// Built from anything: a non-object gives an index without members.
pub struct Fields<'v> {
    /// The object indexed (`None` for a non-object).
    object: Option<&'v Value>,
    members: Vec<(&'v str, &'v Value)>,
    /// Open addressing over the keys' signatures ([`signature`]), linear probing: slot ->
    /// (signature, member index + 1; 0: empty). Members are inserted in document order, so
    /// along a probe sequence the members of one signature come in document order too (the
    /// first exact match is the first member of that name, as `get` on the object finds it).
    /// `Vec`s, not inline arrays: a [`Raw`] holds its index, which must be covariant.
    slots: Vec<(u32, u32)>,
    /// Whether two members have exactly the same name (ambiguous JSON).
    repeated: bool,
}

impl<'v> Fields<'v> {
    /// Indexes the members of `v` (none when it is not an object).
    pub fn new(v: &'v Value) -> Fields<'v> {
        let mut fields = Fields {
            object: None,
            members: Vec::new(),
            slots: Vec::new(),
            repeated: false,
        };
        fields.reset(v);
        fields
    }

    /// Indexes the members of `v` instead, in place (keeping the allocations).
    pub fn reset(&mut self, v: &'v Value) {
        self.members.clear();
        self.slots.clear();
        self.repeated = false;
        self.object = None;
        let Some(obj) = v.as_object() else {
            return;
        };
        self.object = Some(v);
        // Reserved first: sonic-rs's member iterator gives no size hint, and `extend` alone
        // grew the vector four or five times per record.
        self.members.reserve(obj.len());
        self.members.extend(obj.iter());
        // At most half full, at least 32 slots.
        let size = (self.members.len() * 2).next_power_of_two().max(32);
        self.slots.resize(size, (0, 0));
        let mask = size - 1;
        for (i, &(key, _)) in self.members.iter().enumerate() {
            let sig = signature(key);
            let mut at = home(sig, mask);
            loop {
                let (s, slot) = self.slots[at];
                if slot == 0 {
                    // Member counts are bounded by the document size limit, far below u32.
                    self.slots[at] = (sig, u32::try_from(i + 1).unwrap_or(u32::MAX));
                    break;
                }
                if s == sig && self.members[slot as usize - 1].0 == key {
                    self.repeated = true;
                }
                at = (at + 1) & mask;
            }
        }
    }

    /// The members whose key may be `key` (same signature), in document order.
    #[inline]
    fn maybe(&self, key: &str) -> impl Iterator<Item = (&'v str, &'v Value)> + '_ {
        let sig = signature(key);
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = home(sig, mask);
        std::iter::from_fn(move || {
            loop {
                let (s, slot) = *self.slots.get(at)?;
                if slot == 0 {
                    return None;
                }
                at = (at + 1) & mask;
                if s == sig {
                    return self.members.get(slot as usize - 1).copied();
                }
            }
        })
    }

    /// The first member named exactly `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.maybe(key).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The first member named exactly `key`, else the first whose name equals it ignoring
    /// ASCII case (how Sigma finds fields).
    #[inline]
    pub fn member(&self, key: &str) -> Option<&'v Value> {
        let mut folded = None;
        for (k, v) in self.maybe(key) {
            if k == key {
                return Some(v);
            }
            if folded.is_none() && k.eq_ignore_ascii_case(key) {
                folded = Some(v);
            }
        }
        folded
    }

    /// Whether a member is named exactly `key`.
    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether two members have exactly the same name.
    pub fn repeated(&self) -> bool {
        self.repeated
    }

    /// The object indexed, when it is one.
    pub fn object(&self) -> Option<&'v Value> {
        self.object
    }

    /// The members, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&'v str, &'v Value)> + '_ {
        self.members.iter().copied()
    }
}

self_cell::self_cell!(
    /// A value and the index of its root members, in one allocation.
    struct Indexed {
        owner: Value,
        #[covariant]
        dependent: Fields,
    }
);

/// A raw record with its root members indexed ([`Fields`]) once, when it is read: the kind
/// detection, replay's ordering, the normalizer and the Sigma rules all look up root fields,
/// and each walking the root's members again cost more than the lookups themselves. Reads as
/// the [`Value`] it holds. The default (`null`, as a new event holds until its record is
/// moved in) allocates nothing.
#[derive(Default)]
pub struct Raw(Option<Indexed>);

/// What a default [`Raw`] reads as.
static NULL: Value = Value::new();
static NO_FIELDS: Fields<'static> = Fields {
    object: None,
    members: Vec::new(),
    slots: Vec::new(),
    repeated: false,
};

impl Raw {
    /// Indexes `value`.
    pub fn new(value: Value) -> Raw {
        Raw(Some(Indexed::new(value, |v| Fields::new(v))))
    }

    /// The record.
    pub fn value(&self) -> &Value {
        match &self.0 {
            Some(cell) => cell.borrow_owner(),
            None => &NULL,
        }
    }

    /// Its root members.
    pub fn fields(&self) -> &Fields<'_> {
        match &self.0 {
            Some(cell) => cell.borrow_dependent(),
            None => &NO_FIELDS,
        }
    }

    /// The record, without its index (to change it).
    pub fn into_value(self) -> Value {
        match self.0 {
            Some(cell) => cell.into_owner(),
            None => Value::new(),
        }
    }
}

impl std::ops::Deref for Raw {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl From<Value> for Raw {
    fn from(value: Value) -> Raw {
        Raw::new(value)
    }
}

impl Clone for Raw {
    fn clone(&self) -> Raw {
        Raw::new(self.value().clone())
    }
}

impl PartialEq for Raw {
    fn eq(&self, other: &Raw) -> bool {
        self.value() == other.value()
    }
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// The slot a signature's probe sequence starts at (`mask`: the table size less one).
#[inline]
fn home(sig: u32, mask: usize) -> usize {
    (u64::from(sig).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

/// A key's length and its first and last four bytes with ASCII case folded away (and a few
/// unlike bytes folded together): equal for keys equal ignoring case, different for most
/// others. Only ever a filter before comparing the keys themselves.
#[inline]
fn signature(key: &str) -> u32 {
    let b = key.as_bytes();
    let n = b.len();
    let ends = match n {
        0 => 0,
        1..4 => u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
        _ => {
            let word =
                |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
            word(0) << 32 | word(n - 4)
        }
    };
    let x = (ends | 0x2020_2020_2020_2020) ^ (n as u64).rotate_right(8);
    (x ^ x >> 29) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_find_exact_then_folded_members() {
        // Parsed, so that members keep the document's order (`json!` sorts them).
        let v = parse(
            r#"{"eventName": 1, "EVENTNAME": 2, "Type": 3, "type": 4, "a": 5,
            "userIdentity": 6, "eventTime": 7, "awsRegion": 8, "ünï": 9}"#
                .as_bytes(),
        )
        .unwrap();
        let f = Fields::new(&v);
        assert_eq!(f.get("eventName").and_then(|v| v.as_u64()), Some(1));
        assert_eq!(f.get("eventname"), None);
        assert_eq!(f.member("eventname").and_then(|v| v.as_u64()), Some(1));
        assert_eq!(f.member("EVENTNAME").and_then(|v| v.as_u64()), Some(2));
        assert_eq!(f.member("type").and_then(|v| v.as_u64()), Some(4));
        assert_eq!(f.member("TYPE").and_then(|v| v.as_u64()), Some(3));
        assert_eq!(f.member("A").and_then(|v| v.as_u64()), Some(5));
        assert_eq!(f.member("ÜNÏ"), None, "only ASCII case folds");
        assert_eq!(f.member("ünï").and_then(|v| v.as_u64()), Some(9));
        for (k, want) in [("eventTime", 7), ("awsRegion", 8), ("userIdentity", 6)] {
            assert_eq!(f.get(k).and_then(|v| v.as_u64()), Some(want));
        }
        assert!(f.get("").is_none() && f.member("eventNam").is_none());
        assert!(Fields::new(&json!([1, 2])).is_empty());
        // More members than are kept inline.
        let wide: Value = to_value(
            &(0..100)
                .map(|i| (format!("k{i}"), i))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap();
        let f = Fields::new(&wide);
        assert_eq!(f.member("K77").and_then(|v| v.as_u64()), Some(77));
        assert!((0..100).all(|i| f.get(&format!("k{i}")).and_then(|v| v.as_u64()) == Some(i)));
        assert!(!f.repeated());
    }

    #[test]
    fn fields_keep_document_order_among_repeated_names() {
        let v = parse(br#"{"b": 0, "a": 1, "A": 2, "a": 3, "c": 4}"#).unwrap();
        let f = Fields::new(&v);
        assert!(f.repeated());
        assert_eq!(f.get("a").and_then(|v| v.as_u64()), Some(1));
        assert_eq!(f.member("A").and_then(|v| v.as_u64()), Some(2));
        let keys: Vec<&str> = f.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "A", "a", "c"]);
        let once = parse(br#"{"a": 1, "A": 2}"#).unwrap();
        assert!(!Fields::new(&once).repeated(), "only exact names repeat");
    }

    #[test]
    fn raw_records_carry_their_index() {
        let raw = Raw::new(parse(br#"{"eventName": "x", "n": 1}"#).unwrap());
        assert_eq!(
            raw.fields().get("eventName").and_then(|v| v.as_str()),
            Some("x")
        );
        assert_eq!(
            raw.get("n").and_then(|v| v.as_u64()),
            Some(1),
            "reads as its value"
        );
        let copy = raw.clone();
        assert_eq!(copy, raw);
        assert_eq!(copy.fields().get("n").and_then(|v| v.as_u64()), Some(1));
        assert_eq!(raw.into_value()["eventName"].as_str(), Some("x"));
        let none = Raw::default();
        assert!(none.is_null() && none.fields().is_empty() && none.fields().object().is_none());
        assert!(Raw::new(json!([1])).fields().is_empty());
    }

    fn nested(n: usize) -> String {
        format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // 63 arrays in the object: 64 levels, the most allowed.
        assert!(parse(nested(63).as_bytes()).is_ok());
        let err = parse(nested(64).as_bytes()).unwrap_err();
        assert_eq!(err, "nested deeper than 64 levels");
        // Far beyond any stack: refused, not a crash.
        assert!(parse(nested(1_000_000).as_bytes()).is_err());
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(!too_deep(text.as_bytes()));
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn bracket_count_is_exact_across_blocks() {
        // 64 brackets spread over blocks of 128 bytes (some in one block, some across).
        for gap in [0usize, 1, 3, 127, 128, 200] {
            let mut text = Vec::new();
            for i in 0..65 {
                text.extend(std::iter::repeat_n(b' ', gap));
                text.push(if i % 2 == 0 { b'[' } else { b'{' });
            }
            assert!(!brackets_at_most(&text, 64), "65 brackets, gap {gap}");
            text.pop();
            assert!(brackets_at_most(&text, 64), "64 brackets, gap {gap}");
        }
        // A whole block of brackets (128 in one byte-sized count) and then some.
        assert!(!brackets_at_most(&[b'{'; 300], 299));
        assert!(brackets_at_most(&[b'{'; 300], 300));
    }

    #[test]
    fn errors_never_quote_the_input() {
        let err = parse(b"{\"password\": \"hunter2\" x}").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("line 1 column"), "{err}");
    }
}
