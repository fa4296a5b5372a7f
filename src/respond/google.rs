//! Google API plumbing shared by the `google_*` (Admin SDK Directory API) and `gcp_*` (IAM
//! API) actions: calls through the shared HTTP client and retry helper, with the action's
//! name in every error.

use reqwest::Method;
use serde_json::Value;

use super::{ActionError, ActionTarget};
use crate::cloud::CloudError;
use crate::cloud::token::{Api, GoogleApi, urlencode};

/// The Directory API path prefix.
pub const DIRECTORY: &str = "/admin/directory/v1";

/// Google APIs for one action.
pub struct Google {
    action: &'static str,
    api: GoogleApi,
}

impl Google {
    /// Google calls on behalf of `action`.
    pub fn new(action: &'static str, api: GoogleApi) -> Google {
        Google { action, api }
    }

    fn err(&self, e: CloudError) -> ActionError {
        ActionError::Cloud {
            action: self.action,
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

    /// A Directory API call.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<(u16, Value), ActionError> {
        self.call(&self.api.admin, method, path, body, ok).await
    }

    /// An IAM API call.
    pub async fn iam(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<(u16, Value), ActionError> {
        self.call(&self.api.iam, method, path, body, ok).await
    }

    /// `users/{userKey}` of a target.
    pub fn user(t: &ActionTarget) -> String {
        format!("{DIRECTORY}/users/{}", urlencode(&t.principal))
    }

    /// An error for a target that lacks what the action needs.
    pub fn missing(&self, what: &str) -> ActionError {
        ActionError::Target {
            action: self.action,
            message: format!("the finding names no {what}"),
        }
    }

    /// An error for an action that cannot be undone.
    pub fn irreversible(&self, what: &str) -> ActionError {
        ActionError::Target {
            action: self.action,
            message: format!("{what} cannot come back"),
        }
    }
}
