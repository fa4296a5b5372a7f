//! `google_revoke_tokens`: Directory API `DELETE users/{userKey}/tokens/{clientId}` removes
//! every OAuth token the user issued to the client. Verified by the token's `GET` answering
//! 404. Not undoable: the user would have to consent again.

use reqwest::Method;
use serde_json::Value;

use super::google::Google;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::{GoogleApi, urlencode};

/// The action over the Directory API.
pub struct GoogleRevokeTokens {
    google: Google,
}

impl GoogleRevokeTokens {
    /// Over the shared Google clients.
    pub fn new(api: GoogleApi) -> Self {
        GoogleRevokeTokens {
            google: Google::new(ActionKind::GoogleRevokeTokens.name(), api),
        }
    }

    fn path(&self, t: &ActionTarget) -> Result<String, ActionError> {
        let app = t
            .app
            .as_deref()
            .ok_or_else(|| self.google.missing("OAuth client id"))?;
        Ok(format!("{}/tokens/{}", Google::user(t), urlencode(app)))
    }
}

#[async_trait::async_trait]
impl Action for GoogleRevokeTokens {
    fn kind(&self) -> ActionKind {
        ActionKind::GoogleRevokeTokens
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let path = self.path(t)?;
        let (status, before) = self.google.admin(Method::GET, &path, None, &[404]).await?;
        if status != 404 {
            self.google
                .admin(Method::DELETE, &path, None, &[404])
                .await?;
        }
        Ok(Change {
            before: if status == 404 { Value::Null } else { before },
            after: Value::Null,
        })
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        let (status, _) = self
            .google
            .admin(Method::GET, &self.path(t)?, None, &[404])
            .await?;
        Ok(status == 404)
    }

    async fn undo(&self, _: &ActionTarget, _: &Change) -> Result<(), ActionError> {
        Err(self.google.irreversible("revoked tokens"))
    }
}
