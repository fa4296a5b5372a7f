//! Test doubles for notifier consumers.

use std::sync::{Arc, Mutex};

use super::{AlertError, Notifier};
use crate::model::Finding;

/// Keeps every finding it is sent; clones share the list.
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<Finding>>>);

#[async_trait::async_trait]
impl Notifier for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }
    async fn notify(&self, f: &Finding) -> Result<(), AlertError> {
        self.0.lock().unwrap().push(f.clone());
        Ok(())
    }
}
