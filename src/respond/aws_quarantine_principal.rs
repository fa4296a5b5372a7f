//! `aws_quarantine_principal`: attaches the customer-managed deny-all policy
//! `picket-quarantine-deny-all` (created once per account) to the IAM user or role. Undo
//! detaches it; the policy itself stays for the next quarantine.

use serde_json::json;

use super::aws::{QUARANTINE_POLICY_NAME, name_of, role_arn};
use super::{Action, ActionError, ActionKind, ActionTarget, Change, sdk_err};

const NAME: &str = "aws_quarantine_principal";

/// The action over an IAM client.
pub struct AwsQuarantinePrincipal {
    iam: aws_sdk_iam::Client,
}

/// The quarantine policy document: deny everything.
pub fn deny_all() -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PicketQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}]
    })
}

enum Principal {
    User(String),
    Role(String),
}

impl AwsQuarantinePrincipal {
    /// Over a shared IAM client.
    pub fn new(iam: aws_sdk_iam::Client) -> Self {
        AwsQuarantinePrincipal { iam }
    }

    fn principal(t: &ActionTarget) -> Result<(Principal, String), ActionError> {
        let bad = || ActionError::Target {
            action: NAME,
            message: format!("{} is not an IAM user or role", t.principal),
        };
        let parts: Vec<&str> = t.principal.splitn(6, ':').collect();
        let (partition, account) = match parts.as_slice() {
            ["arn", p, _, _, a, _] => (*p, *a),
            _ => return Err(bad()),
        };
        let policy_arn = format!("arn:{partition}:iam::{account}:policy/{QUARANTINE_POLICY_NAME}");
        if t.principal.contains(":user/") {
            let n = name_of(&t.principal).ok_or_else(bad)?;
            return Ok((Principal::User(n.to_string()), policy_arn));
        }
        let role = role_arn(&t.principal).ok_or_else(bad)?;
        let n = name_of(&role).ok_or_else(bad)?;
        Ok((Principal::Role(n.to_string()), policy_arn))
    }

    async fn ensure_policy(&self, arn: &str) -> Result<(), ActionError> {
        match self.iam.get_policy().policy_arn(arn).send().await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(sdk_err(NAME, e)),
        }
        match self
            .iam
            .create_policy()
            .policy_name(QUARANTINE_POLICY_NAME)
            .description("picket: deny everything to a quarantined principal")
            .policy_document(deny_all().to_string())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_err(NAME, e)),
        }
    }

    async fn attached(&self, p: &Principal, arn: &str) -> Result<bool, ActionError> {
        let arns: Vec<String> = match p {
            Principal::User(u) => self
                .iam
                .list_attached_user_policies()
                .user_name(u)
                .send()
                .await
                .map_err(|e| sdk_err(NAME, e))?
                .attached_policies()
                .iter()
                .filter_map(|a| a.policy_arn().map(str::to_string))
                .collect(),
            Principal::Role(r) => self
                .iam
                .list_attached_role_policies()
                .role_name(r)
                .send()
                .await
                .map_err(|e| sdk_err(NAME, e))?
                .attached_policies()
                .iter()
                .filter_map(|a| a.policy_arn().map(str::to_string))
                .collect(),
        };
        Ok(arns.iter().any(|a| a == arn))
    }
}

#[async_trait::async_trait]
impl Action for AwsQuarantinePrincipal {
    fn kind(&self) -> ActionKind {
        ActionKind::AwsQuarantinePrincipal
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let (p, arn) = Self::principal(t)?;
        self.ensure_policy(&arn).await?;
        let was = self.attached(&p, &arn).await?;
        if !was {
            match &p {
                Principal::User(u) => self
                    .iam
                    .attach_user_policy()
                    .user_name(u)
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_err(NAME, e))?,
                Principal::Role(r) => self
                    .iam
                    .attach_role_policy()
                    .role_name(r)
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_err(NAME, e))?,
            }
        }
        Ok(Change {
            before: json!({"attached": was, "policy_arn": arn}),
            after: json!({"attached": true, "policy_arn": arn}),
        })
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        let (p, arn) = Self::principal(t)?;
        self.attached(&p, &arn).await
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        let (p, arn) = Self::principal(t)?;
        if change.before["attached"] == json!(true) || !self.attached(&p, &arn).await? {
            return Ok(());
        }
        match &p {
            Principal::User(u) => self
                .iam
                .detach_user_policy()
                .user_name(u)
                .policy_arn(&arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_err(NAME, e)),
            Principal::Role(r) => self
                .iam
                .detach_role_policy()
                .role_name(r)
                .policy_arn(&arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_err(NAME, e)),
        }
    }
}
