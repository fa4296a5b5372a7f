//! The Microsoft Entra actions, over Microsoft Graph v1.0 through the shared HTTP client:
//! `entra_revoke_sessions` (`POST /users/{id}/revokeSignInSessions`, verified through
//! `signInSessionsValidFromDateTime`), `entra_disable_user` (`PATCH /users/{id}`
//! `accountEnabled = false`), `entra_remove_oauth_grant` (find the user's
//! `oauth2PermissionGrant` for the app's service principal, `DELETE` it; undo re-creates it)
//! and `entra_disable_service_principal` (`PATCH /servicePrincipals/{id}`).
//!
//! The four share their Graph plumbing, so they live in one file; each is a variant of
//! [`ActionKind`].

use reqwest::Method;
use serde_json::{Value, json};

use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::CloudError;
use crate::cloud::token::{Api, urlencode};

/// One Entra action over a Graph client.
pub struct Entra {
    kind: ActionKind,
    graph: Api,
}

impl Entra {
    /// `kind` must be one of the `entra_*` actions.
    pub fn new(kind: ActionKind, graph: Api) -> Entra {
        Entra { kind, graph }
    }

    fn err(&self, e: CloudError) -> ActionError {
        ActionError::Cloud {
            action: self.kind.name(),
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }

    async fn get(&self, path: &str, ok: &[u16]) -> Result<(u16, Value), ActionError> {
        let a = self
            .graph
            .call(Method::GET, path, None, ok)
            .await
            .map_err(|e| self.err(e))?;
        let v = if a.body.trim().is_empty() {
            Value::Null
        } else {
            a.json(path).map_err(|e| self.err(e))?
        };
        Ok((a.status, v))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<u16, ActionError> {
        Ok(self
            .graph
            .call(method, path, body, ok)
            .await
            .map_err(|e| self.err(e))?
            .status)
    }

    fn user_path(t: &ActionTarget) -> String {
        format!("/users/{}", urlencode(&t.principal))
    }

    fn app(&self, t: &ActionTarget) -> Result<String, ActionError> {
        t.app.clone().ok_or_else(|| ActionError::Target {
            action: self.kind.name(),
            message: "the finding names no application id".into(),
        })
    }

    /// The service principal (object id, accountEnabled) of an app id.
    async fn service_principal(&self, app: &str) -> Result<(String, Value), ActionError> {
        let filter = urlencode(&format!("appId eq '{}'", app.replace('\'', "''")));
        let (_, v) = self
            .get(
                &format!("/servicePrincipals?$filter={filter}&$select=id,appId,accountEnabled"),
                &[],
            )
            .await?;
        let sp = v["value"]
            .get(0)
            .cloned()
            .ok_or_else(|| ActionError::Target {
                action: self.kind.name(),
                message: format!("no service principal for app {app}"),
            })?;
        let id = sp["id"].as_str().unwrap_or_default().to_string();
        Ok((id, sp))
    }

    async fn user_id(&self, t: &ActionTarget) -> Result<String, ActionError> {
        let (_, v) = self
            .get(&format!("{}?$select=id", Self::user_path(t)), &[])
            .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ActionError::Target {
                action: self.kind.name(),
                message: format!("user {} has no id", t.principal),
            })
    }

    async fn grants(&self, t: &ActionTarget) -> Result<Vec<Value>, ActionError> {
        let (sp, _) = self.service_principal(&self.app(t)?).await?;
        let user = self.user_id(t).await?;
        let filter = urlencode(&format!("clientId eq '{sp}' and principalId eq '{user}'"));
        let (_, v) = self
            .get(&format!("/oauth2PermissionGrants?$filter={filter}"), &[])
            .await?;
        Ok(v["value"].as_array().cloned().unwrap_or_default())
    }

    async fn enabled(&self, path: &str) -> Result<Option<bool>, ActionError> {
        let (_, v) = self
            .get(&format!("{path}?$select=id,accountEnabled"), &[])
            .await?;
        Ok(v["accountEnabled"].as_bool())
    }
}

#[async_trait::async_trait]
impl Action for Entra {
    fn kind(&self) -> ActionKind {
        self.kind
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        match self.kind {
            ActionKind::EntraRevokeSessions => {
                let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let path = format!("{}/revokeSignInSessions", Self::user_path(t));
                self.send(Method::POST, &path, None, &[]).await?;
                Ok(Change {
                    before: Value::Null,
                    after: json!({"revoked_at": at}),
                })
            }
            ActionKind::EntraDisableUser => {
                let path = Self::user_path(t);
                let before = self.enabled(&path).await?;
                self.send(
                    Method::PATCH,
                    &path,
                    Some(&json!({"accountEnabled": false})),
                    &[],
                )
                .await?;
                Ok(Change {
                    before: json!({"accountEnabled": before}),
                    after: json!({"accountEnabled": false}),
                })
            }
            ActionKind::EntraRemoveOauthGrant => {
                let grants = self.grants(t).await?;
                for g in &grants {
                    let id = g["id"].as_str().unwrap_or_default();
                    // 404: removed meanwhile, which is what we want.
                    self.send(
                        Method::DELETE,
                        &format!("/oauth2PermissionGrants/{}", urlencode(id)),
                        None,
                        &[404],
                    )
                    .await?;
                }
                Ok(Change {
                    before: json!({"grants": grants}),
                    after: json!({"grants": []}),
                })
            }
            ActionKind::EntraDisableServicePrincipal => {
                let (id, sp) = self.service_principal(&self.app(t)?).await?;
                self.send(
                    Method::PATCH,
                    &format!("/servicePrincipals/{}", urlencode(&id)),
                    Some(&json!({"accountEnabled": false})),
                    &[],
                )
                .await?;
                Ok(Change {
                    before: json!({"id": id, "accountEnabled": sp["accountEnabled"]}),
                    after: json!({"id": id, "accountEnabled": false}),
                })
            }
            other => Err(ActionError::Target {
                action: other.name(),
                message: "not an Entra action".into(),
            }),
        }
    }

    async fn verify(&self, t: &ActionTarget, change: &Change) -> Result<bool, ActionError> {
        match self.kind {
            ActionKind::EntraRevokeSessions => {
                let (_, v) = self
                    .get(
                        &format!(
                            "{}?$select=id,signInSessionsValidFromDateTime",
                            Self::user_path(t)
                        ),
                        &[],
                    )
                    .await?;
                let valid_from = v["signInSessionsValidFromDateTime"]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                let at = change.after["revoked_at"]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                Ok(matches!((valid_from, at), (Some(v), Some(a)) if v >= a))
            }
            ActionKind::EntraDisableUser => {
                Ok(self.enabled(&Self::user_path(t)).await? == Some(false))
            }
            ActionKind::EntraRemoveOauthGrant => Ok(self.grants(t).await?.is_empty()),
            ActionKind::EntraDisableServicePrincipal => {
                let (_, sp) = self.service_principal(&self.app(t)?).await?;
                Ok(sp["accountEnabled"] == json!(false))
            }
            _ => Ok(false),
        }
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        match self.kind {
            ActionKind::EntraDisableUser => {
                if change.before["accountEnabled"] != json!(false) {
                    self.send(
                        Method::PATCH,
                        &Self::user_path(t),
                        Some(&json!({"accountEnabled": true})),
                        &[],
                    )
                    .await?;
                }
                Ok(())
            }
            ActionKind::EntraRemoveOauthGrant => {
                for g in change.before["grants"].as_array().into_iter().flatten() {
                    let body = json!({
                        "clientId": g["clientId"],
                        "consentType": g["consentType"],
                        "principalId": g["principalId"],
                        "resourceId": g["resourceId"],
                        "scope": g["scope"],
                    });
                    self.send(Method::POST, "/oauth2PermissionGrants", Some(&body), &[])
                        .await?;
                }
                Ok(())
            }
            ActionKind::EntraDisableServicePrincipal => {
                if change.before["accountEnabled"] != json!(false) {
                    let id = change.before["id"].as_str().unwrap_or_default();
                    self.send(
                        Method::PATCH,
                        &format!("/servicePrincipals/{}", urlencode(id)),
                        Some(&json!({"accountEnabled": true})),
                        &[],
                    )
                    .await?;
                }
                Ok(())
            }
            other => Err(ActionError::Target {
                action: other.name(),
                message: "revoked sessions cannot come back".into(),
            }),
        }
    }
}
