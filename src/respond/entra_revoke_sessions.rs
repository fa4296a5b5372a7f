//! `entra_revoke_sessions`: `POST /users/{id}/revokeSignInSessions` invalidates every refresh
//! token and session cookie of the user. Verified by reading `signInSessionsValidFromDateTime`
//! back. Not undoable: ended sessions do not come back (the user signs in again).

use reqwest::Method;
use serde_json::{Value, json};

use super::entra::Graph;
use super::{Action, ActionError, ActionKind, ActionTarget, Change};
use crate::cloud::token::Api;

/// The action over Graph.
pub struct EntraRevokeSessions {
    graph: Graph,
}

impl EntraRevokeSessions {
    /// Over the shared Graph client.
    pub fn new(api: Api) -> Self {
        EntraRevokeSessions {
            graph: Graph::new(ActionKind::EntraRevokeSessions.name(), api),
        }
    }
}

#[async_trait::async_trait]
impl Action for EntraRevokeSessions {
    fn kind(&self) -> ActionKind {
        ActionKind::EntraRevokeSessions
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let path = format!("{}/revokeSignInSessions", Graph::user_path(t));
        self.graph.send(Method::POST, &path, None, &[]).await?;
        Ok(Change {
            before: Value::Null,
            after: json!({"revoked_at": at}),
        })
    }

    async fn verify(&self, t: &ActionTarget, change: &Change) -> Result<bool, ActionError> {
        let (_, v) = self
            .graph
            .get(
                &format!(
                    "{}?$select=id,signInSessionsValidFromDateTime",
                    Graph::user_path(t)
                ),
                &[],
            )
            .await?;
        let parse = |s: Option<&str>| s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let valid_from = parse(v["signInSessionsValidFromDateTime"].as_str());
        let at = parse(change.after["revoked_at"].as_str());
        Ok(matches!((valid_from, at), (Some(v), Some(a)) if v >= a))
    }

    async fn undo(&self, _: &ActionTarget, _: &Change) -> Result<(), ActionError> {
        Err(ActionError::Target {
            action: self.kind().name(),
            message: "revoked sessions cannot come back".into(),
        })
    }
}
