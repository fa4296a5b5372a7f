//! `aws_revoke_role_sessions`: what the IAM console's "Revoke active sessions" does: an inline
//! role policy `AWSRevokeOlderSessions` denying every action to sessions whose
//! `aws:TokenIssueTime` is earlier than now. New sessions (after the owner re-authenticates)
//! work. Undo restores the previous inline policy of that name, or deletes it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::aws::{REVOKE_POLICY_NAME, name_of, role_arn};
use super::{Action, ActionError, ActionKind, ActionTarget, Change, sdk_err};

const NAME: &str = "aws_revoke_role_sessions";

/// The action over an IAM client.
pub struct AwsRevokeRoleSessions {
    iam: aws_sdk_iam::Client,
}

/// The deny-older-sessions policy document for a cut-off time.
pub fn revoke_policy(cutoff: DateTime<Utc>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff.to_rfc3339_opts(SecondsFormat::Secs, true)}}
        }]
    })
}

/// IAM returns policy documents URL-encoded; emulators may not.
pub fn decode_policy(doc: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(doc) {
        return Some(v);
    }
    let mut bytes = Vec::with_capacity(doc.len());
    let b = doc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    serde_json::from_slice(&bytes).ok()
}

impl AwsRevokeRoleSessions {
    /// Over a shared IAM client.
    pub fn new(iam: aws_sdk_iam::Client) -> Self {
        AwsRevokeRoleSessions { iam }
    }

    fn role(t: &ActionTarget) -> Result<String, ActionError> {
        role_arn(&t.principal)
            .as_deref()
            .and_then(name_of)
            .map(str::to_string)
            .ok_or_else(|| ActionError::Target {
                action: NAME,
                message: format!("{} is not a role or role session", t.principal),
            })
    }

    async fn current(&self, role: &str) -> Result<Option<Value>, ActionError> {
        match self
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(REVOKE_POLICY_NAME)
            .send()
            .await
        {
            Ok(out) => Ok(decode_policy(out.policy_document())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_err(NAME, e)),
        }
    }
}

#[async_trait::async_trait]
impl Action for AwsRevokeRoleSessions {
    fn kind(&self) -> ActionKind {
        ActionKind::AwsRevokeRoleSessions
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let role = Self::role(t)?;
        let before = self.current(&role).await?.unwrap_or(Value::Null);
        let doc = revoke_policy(Utc::now());
        self.iam
            .put_role_policy()
            .role_name(&role)
            .policy_name(REVOKE_POLICY_NAME)
            .policy_document(doc.to_string())
            .send()
            .await
            .map_err(|e| sdk_err(NAME, e))?;
        Ok(Change { before, after: doc })
    }

    async fn verify(&self, t: &ActionTarget, change: &Change) -> Result<bool, ActionError> {
        let role = Self::role(t)?;
        let Some(now) = self.current(&role).await? else {
            return Ok(false);
        };
        let cutoff = |v: &Value| {
            v["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
                .as_str()
                .map(str::to_string)
        };
        Ok(now["Statement"][0]["Effect"] == "Deny"
            && cutoff(&now) >= cutoff(&change.after)
            && cutoff(&now).is_some())
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        let role = Self::role(t)?;
        if change.before.is_null() {
            match self
                .iam
                .delete_role_policy()
                .role_name(&role)
                .policy_name(REVOKE_POLICY_NAME)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_no_such_entity_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(sdk_err(NAME, e)),
            }
        } else {
            self.iam
                .put_role_policy()
                .role_name(&role)
                .policy_name(REVOKE_POLICY_NAME)
                .policy_document(change.before.to_string())
                .send()
                .await
                .map_err(|e| sdk_err(NAME, e))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_documents_decode() {
        let v = decode_policy("%7B%22Version%22%3A%222012-10-17%22%7D").unwrap();
        assert_eq!(v["Version"], "2012-10-17");
    }
}
