//! Any JSON through shape detection and every normalizer: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use picket::model::RecordKind;
use picket::normalize::{detect_kind, normalize};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = detect_kind(&value);
    for kind in RecordKind::ALL {
        let _ = normalize(*kind, value.clone());
    }
});
