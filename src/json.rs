//! The raw record type: a provider's JSON record, parsed once and read by the normalizers,
//! the Sigma engine and the outputs.
//!
//! `sonic-rs`'s `Value` keeps a record's whole tree in one arena (one allocation to free) and
//! parses with SIMD: about four times the speed of a `serde_json::Value` on the CloudTrail,
//! Entra and Workspace records of the replay mix (`cargo bench --no-default-features --bench
//! replay -- json`). Everything else picket reads or writes as JSON (configs, API responses,
//! state, outputs) stays `serde_json`.

use smallvec::SmallVec;
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

/// An object's members, indexed once so that each lookup is a scan of small integers rather
/// than of the keys' strings: a record's root object has 15 to 40 members, and the normalizers
/// and the Sigma rules look up dozens of fields in it per record. sonic-rs's own lookup
/// compares each key in turn; on the replay mix that was a third of the time per record.
///
/// Built from anything: a non-object gives an index without members.
pub struct Fields<'v> {
    /// Each member's key signature, apart so that a lookup scans one dense array.
    sigs: SmallVec<[u32; 32]>,
    members: SmallVec<[(&'v str, &'v Value); 32]>,
}

impl<'v> Fields<'v> {
    /// Indexes the members of `v` (none when it is not an object).
    pub fn new(v: &'v Value) -> Fields<'v> {
        let mut fields = Fields {
            sigs: SmallVec::new(),
            members: SmallVec::new(),
        };
        fields.reset(v);
        fields
    }

    /// Indexes the members of `v` instead, in place (the index is large enough that moving
    /// a new one costs more than refilling this one).
    pub fn reset(&mut self, v: &'v Value) {
        self.sigs.clear();
        self.members.clear();
        if let Some(obj) = v.as_object() {
            // `extend` reserves once and then writes without a capacity check per member.
            self.members.extend(obj.iter());
            self.sigs
                .extend(self.members.iter().map(|(k, _)| signature(k)));
        }
    }

    /// The members whose key may be `key` (same signature).
    #[inline]
    fn maybe(&self, key: &str) -> impl Iterator<Item = (&'v str, &'v Value)> + '_ {
        let sig = signature(key);
        self.sigs
            .iter()
            .enumerate()
            .filter(move |(_, s)| **s == sig)
            .map(|(i, _)| self.members[i])
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
