//! `entra_disable_user`: `PATCH /users/{id}` with `accountEnabled = false`; verified by reading
//! it back; undo re-enables an account that was enabled before.

use reqwest::Method;
use serde_json::json;

use super::entra::Graph;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::Api;

/// The action over Graph.
pub struct EntraDisableUser {
    graph: Graph,
}

impl EntraDisableUser {
    /// Over the shared Graph client.
    pub fn new(api: Api) -> Self {
        EntraDisableUser {
            graph: Graph::new(ActionKind::EntraDisableUser.name(), api),
        }
    }
}

#[async_trait::async_trait]
impl Action for EntraDisableUser {
    fn kind(&self) -> ActionKind {
        ActionKind::EntraDisableUser
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let path = Graph::user_path(t);
        let before = self.graph.enabled(&path).await?;
        self.graph
            .send(
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

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        Ok(self.graph.enabled(&Graph::user_path(t)).await? == Some(false))
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        if change.before["accountEnabled"] != json!(false) {
            self.graph
                .send(
                    Method::PATCH,
                    &Graph::user_path(t),
                    Some(&json!({"accountEnabled": true})),
                    &[],
                )
                .await?;
        }
        Ok(())
    }
}
