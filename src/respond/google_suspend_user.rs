//! `google_suspend_user`: Directory API `PUT users/{userKey}` with `suspended = true`;
//! verified by reading `suspended` back; undo un-suspends a user that was not suspended.

use reqwest::Method;
use serde_json::json;

use super::google::Google;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::GoogleApi;

/// The action over the Directory API.
pub struct GoogleSuspendUser {
    google: Google,
}

impl GoogleSuspendUser {
    /// Over the shared Google clients.
    pub fn new(api: GoogleApi) -> Self {
        GoogleSuspendUser {
            google: Google::new(ActionKind::GoogleSuspendUser.name(), api),
        }
    }

    async fn suspended(&self, t: &ActionTarget) -> Result<Option<bool>, ActionError> {
        let (_, v) = self
            .google
            .admin(
                Method::GET,
                &format!("{}?fields=primaryEmail,suspended", Google::user(t)),
                None,
                &[],
            )
            .await?;
        Ok(v["suspended"].as_bool())
    }

    async fn set(&self, t: &ActionTarget, suspended: bool) -> Result<(), ActionError> {
        self.google
            .admin(
                Method::PUT,
                &Google::user(t),
                Some(&json!({"suspended": suspended})),
                &[],
            )
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Action for GoogleSuspendUser {
    fn kind(&self) -> ActionKind {
        ActionKind::GoogleSuspendUser
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let before = self.suspended(t).await?;
        self.set(t, true).await?;
        Ok(Change {
            before: json!({"suspended": before}),
            after: json!({"suspended": true}),
        })
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        Ok(self.suspended(t).await? == Some(true))
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        if change.before["suspended"] != json!(true) {
            self.set(t, false).await?;
        }
        Ok(())
    }
}
