//! Placeholder until the normalizer lands.
use serde_json::Value;

use super::NormalizeError;
use crate::model::IdentityEvent;

/// Normalizes one record.
pub fn normalize(_raw: Value) -> Result<Vec<IdentityEvent>, NormalizeError> {
    Err(NormalizeError::UnknownShape)
}
