//! `gcp_disable_service_account_key`: IAM API
//! `POST projects/-/serviceAccounts/{email}/keys/{key}:disable`; verified by the key's
//! `disabled` read back; undo calls `:enable` on a key that was enabled before.

use reqwest::Method;
use serde_json::json;

use super::google::Google;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::{GoogleApi, urlencode};

/// The action over the IAM API.
pub struct GcpDisableServiceAccountKey {
    google: Google,
}

impl GcpDisableServiceAccountKey {
    /// Over the shared Google clients.
    pub fn new(api: GoogleApi) -> Self {
        GcpDisableServiceAccountKey {
            google: Google::new(ActionKind::GcpDisableServiceAccountKey.name(), api),
        }
    }

    fn path(&self, t: &ActionTarget) -> Result<String, ActionError> {
        let key = t
            .credential
            .as_deref()
            .ok_or_else(|| self.google.missing("service-account key"))?;
        Ok(format!(
            "/v1/projects/-/serviceAccounts/{}/keys/{}",
            urlencode(&t.principal),
            urlencode(key)
        ))
    }

    async fn disabled(&self, t: &ActionTarget) -> Result<bool, ActionError> {
        let (_, v) = self
            .google
            .iam(Method::GET, &self.path(t)?, None, &[])
            .await?;
        Ok(v["disabled"] == json!(true))
    }
}

#[async_trait::async_trait]
impl Action for GcpDisableServiceAccountKey {
    fn kind(&self) -> ActionKind {
        ActionKind::GcpDisableServiceAccountKey
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let before = self.disabled(t).await?;
        self.google
            .iam(
                Method::POST,
                &format!("{}:disable", self.path(t)?),
                Some(&json!({})),
                &[],
            )
            .await?;
        Ok(Change {
            before: json!({"disabled": before}),
            after: json!({"disabled": true}),
        })
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        self.disabled(t).await
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        if change.before["disabled"] != json!(true) {
            self.google
                .iam(
                    Method::POST,
                    &format!("{}:enable", self.path(t)?),
                    Some(&json!({})),
                    &[],
                )
                .await?;
        }
        Ok(())
    }
}
