//! The Google actions through the shared HTTP client: Workspace Admin SDK Directory API
//! `google_revoke_tokens` (`DELETE users/{user}/tokens/{clientId}`), `google_sign_out`
//! (`POST users/{user}/signOut`), `google_suspend_user` (`PUT users/{user}` with
//! `suspended = true`), and the GCP IAM API `gcp_disable_service_account_key`
//! (`POST .../keys/{key}:disable`).
//!
//! They share the Google plumbing, so they live in one file; each is a variant of
//! [`ActionKind`].

use reqwest::Method;
use serde_json::{Value, json};

use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::CloudError;
use crate::cloud::token::{Api, GoogleApi, urlencode};

/// One Google action.
pub struct Google {
    kind: ActionKind,
    api: GoogleApi,
}

const DIRECTORY: &str = "/admin/directory/v1";

impl Google {
    /// `kind` must be one of the `google_*` / `gcp_*` actions.
    pub fn new(kind: ActionKind, api: GoogleApi) -> Google {
        Google { kind, api }
    }

    fn err(&self, e: CloudError) -> ActionError {
        ActionError::Cloud {
            action: self.kind.name(),
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }

    async fn call(
        &self,
        api: &Api,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<(u16, Value), ActionError> {
        let a = api
            .call(method, path, body, ok)
            .await
            .map_err(|e| self.err(e))?;
        let v = if a.body.trim().is_empty() {
            Value::Null
        } else {
            a.json(path).map_err(|e| self.err(e))?
        };
        Ok((a.status, v))
    }

    fn user(t: &ActionTarget) -> String {
        format!("{DIRECTORY}/users/{}", urlencode(&t.principal))
    }

    fn token_path(&self, t: &ActionTarget) -> Result<String, ActionError> {
        let app = t.app.as_deref().ok_or_else(|| ActionError::Target {
            action: self.kind.name(),
            message: "the finding names no OAuth client id".into(),
        })?;
        Ok(format!("{}/tokens/{}", Self::user(t), urlencode(app)))
    }

    fn key_path(&self, t: &ActionTarget) -> Result<String, ActionError> {
        let key = t.credential.as_deref().ok_or_else(|| ActionError::Target {
            action: self.kind.name(),
            message: "the finding names no service-account key".into(),
        })?;
        Ok(format!(
            "/v1/projects/-/serviceAccounts/{}/keys/{}",
            urlencode(&t.principal),
            urlencode(key)
        ))
    }

    async fn suspended(&self, t: &ActionTarget) -> Result<Option<bool>, ActionError> {
        let (_, v) = self
            .call(
                &self.api.admin,
                Method::GET,
                &format!("{}?fields=primaryEmail,suspended", Self::user(t)),
                None,
                &[],
            )
            .await?;
        Ok(v["suspended"].as_bool())
    }
}

#[async_trait::async_trait]
impl Action for Google {
    fn kind(&self) -> ActionKind {
        self.kind
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        match self.kind {
            ActionKind::GoogleRevokeTokens => {
                let path = self.token_path(t)?;
                let (status, before) = self
                    .call(&self.api.admin, Method::GET, &path, None, &[404])
                    .await?;
                if status != 404 {
                    self.call(&self.api.admin, Method::DELETE, &path, None, &[404])
                        .await?;
                }
                Ok(Change {
                    before: if status == 404 { Value::Null } else { before },
                    after: Value::Null,
                })
            }
            ActionKind::GoogleSignOut => {
                self.call(
                    &self.api.admin,
                    Method::POST,
                    &format!("{}/signOut", Self::user(t)),
                    None,
                    &[],
                )
                .await?;
                Ok(Change {
                    before: Value::Null,
                    after: json!({"signed_out": true}),
                })
            }
            ActionKind::GoogleSuspendUser => {
                let before = self.suspended(t).await?;
                self.call(
                    &self.api.admin,
                    Method::PUT,
                    &Self::user(t),
                    Some(&json!({"suspended": true})),
                    &[],
                )
                .await?;
                Ok(Change {
                    before: json!({"suspended": before}),
                    after: json!({"suspended": true}),
                })
            }
            ActionKind::GcpDisableServiceAccountKey => {
                let path = self.key_path(t)?;
                let (_, before) = self
                    .call(&self.api.iam, Method::GET, &path, None, &[])
                    .await?;
                self.call(
                    &self.api.iam,
                    Method::POST,
                    &format!("{path}:disable"),
                    Some(&json!({})),
                    &[],
                )
                .await?;
                Ok(Change {
                    before: json!({"disabled": before["disabled"].as_bool().unwrap_or(false)}),
                    after: json!({"disabled": true}),
                })
            }
            other => Err(ActionError::Target {
                action: other.name(),
                message: "not a Google action".into(),
            }),
        }
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        match self.kind {
            ActionKind::GoogleRevokeTokens => {
                let (status, _) = self
                    .call(
                        &self.api.admin,
                        Method::GET,
                        &self.token_path(t)?,
                        None,
                        &[404],
                    )
                    .await?;
                Ok(status == 404)
            }
            // The Directory API has no read-back for sign-out; the 2xx is all there is.
            ActionKind::GoogleSignOut => Ok(true),
            ActionKind::GoogleSuspendUser => Ok(self.suspended(t).await? == Some(true)),
            ActionKind::GcpDisableServiceAccountKey => {
                let (_, v) = self
                    .call(&self.api.iam, Method::GET, &self.key_path(t)?, None, &[])
                    .await?;
                Ok(v["disabled"] == json!(true))
            }
            _ => Ok(false),
        }
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        match self.kind {
            ActionKind::GoogleSuspendUser => {
                if change.before["suspended"] != json!(true) {
                    self.call(
                        &self.api.admin,
                        Method::PUT,
                        &Self::user(t),
                        Some(&json!({"suspended": false})),
                        &[],
                    )
                    .await?;
                }
                Ok(())
            }
            ActionKind::GcpDisableServiceAccountKey => {
                if change.before["disabled"] != json!(true) {
                    let path = self.key_path(t)?;
                    self.call(
                        &self.api.iam,
                        Method::POST,
                        &format!("{path}:enable"),
                        Some(&json!({})),
                        &[],
                    )
                    .await?;
                }
                Ok(())
            }
            other => Err(ActionError::Target {
                action: other.name(),
                message: "revoked tokens and ended sessions cannot come back".into(),
            }),
        }
    }
}
