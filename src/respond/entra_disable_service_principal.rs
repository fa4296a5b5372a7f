//! `entra_disable_service_principal`: finds the app's service principal
//! (`$filter=appId eq '...'`) and sets `accountEnabled = false`, so no token is issued for
//! it in this tenant. Undo re-enables it when it was enabled before.

use reqwest::Method;
use serde_json::json;

use super::entra::Graph;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::{Api, urlencode};

/// The action over Graph.
pub struct EntraDisableServicePrincipal {
    graph: Graph,
}

impl EntraDisableServicePrincipal {
    /// Over the shared Graph client.
    pub fn new(api: Api) -> Self {
        EntraDisableServicePrincipal {
            graph: Graph::new(ActionKind::EntraDisableServicePrincipal.name(), api),
        }
    }

    async fn set(&self, id: &str, enabled: bool) -> Result<(), ActionError> {
        self.graph
            .send(
                Method::PATCH,
                &format!("/servicePrincipals/{}", urlencode(id)),
                Some(&json!({"accountEnabled": enabled})),
                &[],
            )
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Action for EntraDisableServicePrincipal {
    fn kind(&self) -> ActionKind {
        ActionKind::EntraDisableServicePrincipal
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let (id, sp) = self.graph.service_principal(&self.graph.app(t)?).await?;
        self.set(&id, false).await?;
        Ok(Change {
            before: json!({"id": id, "accountEnabled": sp["accountEnabled"]}),
            after: json!({"id": id, "accountEnabled": false}),
        })
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        let (_, sp) = self.graph.service_principal(&self.graph.app(t)?).await?;
        Ok(sp["accountEnabled"] == json!(false))
    }

    async fn undo(&self, _: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        if change.before["accountEnabled"] != json!(false) {
            self.set(change.before["id"].as_str().unwrap_or_default(), true)
                .await?;
        }
        Ok(())
    }
}
