//! TEMPORARY stub, replaced by the enrichment module.
use crate::model::IdentityEvent;
/// Stub.
#[derive(Default)]
pub struct Enricher;
impl Enricher {
    /// Stub.
    pub fn enrich(&self, _e: &mut IdentityEvent) {}
}
