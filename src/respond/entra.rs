//! Microsoft Graph plumbing shared by the `entra_*` actions: calls through the shared HTTP
//! client and retry helper, with the action's name in every error.

use reqwest::Method;
use serde_json::Value;

use super::{ActionError, ActionTarget};
use crate::cloud::CloudError;
use crate::cloud::token::{Api, urlencode};

/// Graph v1.0 for one action.
pub struct Graph {
    action: &'static str,
    api: Api,
}

impl Graph {
    /// Graph calls on behalf of `action`.
    pub fn new(action: &'static str, api: Api) -> Graph {
        Graph { action, api }
    }

    fn err(&self, e: CloudError) -> ActionError {
        ActionError::Cloud {
            action: self.action,
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }

    /// `GET path`; statuses in `ok` besides 2xx are answers.
    pub async fn get(&self, path: &str, ok: &[u16]) -> Result<(u16, Value), ActionError> {
        let a = self
            .api
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

    /// Any other method; returns the status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<u16, ActionError> {
        Ok(self
            .api
            .call(method, path, body, ok)
            .await
            .map_err(|e| self.err(e))?
            .status)
    }

    /// `/users/{id or UPN}` of a target.
    pub fn user_path(t: &ActionTarget) -> String {
        format!("/users/{}", urlencode(&t.principal))
    }

    /// The target's application id, or an error saying the finding names none.
    pub fn app(&self, t: &ActionTarget) -> Result<String, ActionError> {
        t.app.clone().ok_or_else(|| ActionError::Target {
            action: self.action,
            message: "the finding names no application id".into(),
        })
    }

    /// The service principal (object id, object) of an app id.
    pub async fn service_principal(&self, app: &str) -> Result<(String, Value), ActionError> {
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
                action: self.action,
                message: format!("no service principal for app {app}"),
            })?;
        let id = sp["id"].as_str().unwrap_or_default().to_string();
        Ok((id, sp))
    }

    /// The object id of the target user.
    pub async fn user_id(&self, t: &ActionTarget) -> Result<String, ActionError> {
        let (_, v) = self
            .get(&format!("{}?$select=id", Self::user_path(t)), &[])
            .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ActionError::Target {
                action: self.action,
                message: format!("user {} has no id", t.principal),
            })
    }

    /// `accountEnabled` of a user or service principal path.
    pub async fn enabled(&self, path: &str) -> Result<Option<bool>, ActionError> {
        let (_, v) = self
            .get(&format!("{path}?$select=id,accountEnabled"), &[])
            .await?;
        Ok(v["accountEnabled"].as_bool())
    }
}
