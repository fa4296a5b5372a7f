//! `google_sign_out`: Directory API `POST users/{userKey}/signOut` ends every web and device
//! session of the user. The API has no read-back for it, so a 2xx is the verification. Not
//! undoable.

use reqwest::Method;
use serde_json::json;

use super::google::Google;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::GoogleApi;

/// The action over the Directory API.
pub struct GoogleSignOut {
    google: Google,
}

impl GoogleSignOut {
    /// Over the shared Google clients.
    pub fn new(api: GoogleApi) -> Self {
        GoogleSignOut {
            google: Google::new(ActionKind::GoogleSignOut.name(), api),
        }
    }
}

#[async_trait::async_trait]
impl Action for GoogleSignOut {
    fn kind(&self) -> ActionKind {
        ActionKind::GoogleSignOut
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        self.google
            .admin(
                Method::POST,
                &format!("{}/signOut", Google::user(t)),
                None,
                &[],
            )
            .await?;
        Ok(Change {
            before: serde_json::Value::Null,
            after: json!({"signed_out": true}),
        })
    }

    async fn verify(&self, _: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        // The Directory API exposes no session state to read back; the 2xx is all there is.
        Ok(true)
    }

    async fn undo(&self, _: &ActionTarget, _: &Change) -> Result<(), ActionError> {
        Err(self.google.irreversible("ended sessions"))
    }
}
