//! The raw record type: a provider's JSON record, parsed once and read by the normalizers,
//! the Sigma engine and the outputs.
//!
//! `sonic-rs`'s `Value` keeps a record's whole tree in one arena (one allocation to free) and
//! parses with SIMD: about five times the speed of a `serde_json::Value` on the CloudTrail,
//! Entra and Workspace records of the replay mix (`cargo bench --no-default-features --bench
//! replay -- json`). Everything else picket reads or writes as JSON (configs, API responses,
//! state, outputs) stays `serde_json`.

pub use sonic_rs::{
    Array, JsonContainerTrait, JsonNumberTrait, JsonValueMutTrait, JsonValueTrait, Object, Value,
    ValueRef, json, to_value,
};

/// Parses one JSON value. The error is serde_json's message (line and column), never a
/// fragment of the input: a record may hold anything a log holds, and sonic-rs's own messages
/// quote the bytes around the error.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    sonic_rs::from_slice::<Value>(bytes).map_err(|e| {
        match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(e) => e.to_string(),
            // Accepted by serde_json, refused by sonic-rs: its message without the quote.
            Ok(_) => e
                .to_string()
                .split("\n\n")
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    })
}
