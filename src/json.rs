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
/// count). Most records have fewer opening brackets in all than the limit, which a SIMD
/// search shows without following strings.
pub fn too_deep(bytes: &[u8]) -> bool {
    if memchr::memchr2_iter(b'[', b'{', bytes)
        .nth(MAX_DEPTH)
        .is_none()
    {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn errors_never_quote_the_input() {
        let err = parse(b"{\"password\": \"hunter2\" x}").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("line 1 column"), "{err}");
    }
}
