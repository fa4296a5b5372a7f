//! `entra_remove_oauth_grant`: finds the user's delegated `oauth2PermissionGrant` for the app
//! (`$filter=clientId eq '{service principal}' and principalId eq '{user}'`) and deletes it.
//! Undo re-creates the grants it deleted (same client, resource, consent type and scopes).

use reqwest::Method;
use serde_json::{Value, json};

use super::entra::Graph;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::{Api, urlencode};

/// The action over Graph.
pub struct EntraRemoveOauthGrant {
    graph: Graph,
}

impl EntraRemoveOauthGrant {
    /// Over the shared Graph client.
    pub fn new(api: Api) -> Self {
        EntraRemoveOauthGrant {
            graph: Graph::new(ActionKind::EntraRemoveOauthGrant.name(), api),
        }
    }

    async fn grants(&self, t: &ActionTarget) -> Result<Vec<Value>, ActionError> {
        let (sp, _) = self.graph.service_principal(&self.graph.app(t)?).await?;
        let user = self.graph.user_id(t).await?;
        let filter = urlencode(&format!("clientId eq '{sp}' and principalId eq '{user}'"));
        let (_, v) = self
            .graph
            .get(&format!("/oauth2PermissionGrants?$filter={filter}"), &[])
            .await?;
        Ok(v["value"].as_array().cloned().unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl Action for EntraRemoveOauthGrant {
    fn kind(&self) -> ActionKind {
        ActionKind::EntraRemoveOauthGrant
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let grants = self.grants(t).await?;
        for g in &grants {
            let id = g["id"].as_str().unwrap_or_default();
            // 404: removed meanwhile, which is what we want.
            self.graph
                .send(
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

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        Ok(self.grants(t).await?.is_empty())
    }

    async fn undo(&self, _: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        for g in change.before["grants"].as_array().into_iter().flatten() {
            let body = json!({
                "clientId": g["clientId"],
                "consentType": g["consentType"],
                "principalId": g["principalId"],
                "resourceId": g["resourceId"],
                "scope": g["scope"],
            });
            self.graph
                .send(Method::POST, "/oauth2PermissionGrants", Some(&body), &[])
                .await?;
        }
        Ok(())
    }
}
