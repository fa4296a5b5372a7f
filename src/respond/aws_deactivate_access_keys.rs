//! `aws_deactivate_access_keys`: sets the finding's access key (or, when the finding names
//! none, every key of the IAM user) to `Inactive`. Undo sets the keys that were active back
//! to `Active`.

use aws_sdk_iam::types::StatusType;
use serde_json::{Value, json};

use super::{Action, ActionError, ActionKind, ActionTarget, Change, iam_user, sdk_err};

const NAME: &str = "aws_deactivate_access_keys";

/// The action over an IAM client.
pub struct AwsDeactivateAccessKeys {
    iam: aws_sdk_iam::Client,
}

impl AwsDeactivateAccessKeys {
    /// Over a shared IAM client.
    pub fn new(iam: aws_sdk_iam::Client) -> Self {
        AwsDeactivateAccessKeys { iam }
    }

    /// (key id, status) of the user's keys the target covers.
    async fn keys(&self, t: &ActionTarget) -> Result<Vec<(String, String)>, ActionError> {
        let user = iam_user(NAME, t)?;
        let out = self
            .iam
            .list_access_keys()
            .user_name(&user)
            .send()
            .await
            .map_err(|e| sdk_err(NAME, e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| {
                let id = k.access_key_id()?.to_string();
                let status = k
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                Some((id, status))
            })
            .filter(|(id, _)| t.credential.as_ref().is_none_or(|c| c == id))
            .collect())
    }

    async fn set(&self, user: &str, key: &str, status: StatusType) -> Result<(), ActionError> {
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(status)
            .send()
            .await
            .map_err(|e| sdk_err(NAME, e))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Action for AwsDeactivateAccessKeys {
    fn kind(&self) -> ActionKind {
        ActionKind::AwsDeactivateAccessKeys
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let user = iam_user(NAME, t)?;
        let before = self.keys(t).await?;
        if before.is_empty() {
            return Err(ActionError::Target {
                action: NAME,
                message: format!("{user} has no such access key"),
            });
        }
        for (id, status) in &before {
            if status != "Inactive" {
                self.set(&user, id, StatusType::Inactive).await?;
            }
        }
        let to_obj = |v: &[(String, String)]| -> Value {
            Value::Object(v.iter().map(|(k, s)| (k.clone(), json!(s))).collect())
        };
        let after: Vec<_> = before
            .iter()
            .map(|(k, _)| (k.clone(), "Inactive".to_string()))
            .collect();
        Ok(Change {
            before: to_obj(&before),
            after: to_obj(&after),
        })
    }

    async fn verify(&self, t: &ActionTarget, change: &Change) -> Result<bool, ActionError> {
        let now = self.keys(t).await?;
        let expected: Vec<&String> = change
            .after
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        Ok(!now.is_empty()
            && now
                .iter()
                .filter(|(id, _)| expected.is_empty() || expected.contains(&id))
                .all(|(_, s)| s == "Inactive"))
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        let user = iam_user(NAME, t)?;
        if let Some(m) = change.before.as_object() {
            for (key, status) in m {
                if status.as_str() == Some("Active") {
                    self.set(&user, key, StatusType::Active).await?;
                }
            }
        }
        Ok(())
    }
}
