//! Any bytes through the decoder: no panic, bounded work, every error names its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket::source::decode::{Limits, from_bytes};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_document_bytes: 1 << 20,
        max_line_bytes: 1 << 16,
    };
    for item in from_bytes(data.to_vec(), "fuzz", limits).take(100_000) {
        if let Err(e) = item {
            assert!(e.to_string().starts_with("fuzz"));
        }
    }
});
