//! `aws_disable_console_login`: deletes the IAM user's login profile (console password),
//! remembering whether one existed. Undo creates a new login profile with a random password
//! that must be reset (the old password cannot come back); an administrator then sets one.

use serde_json::json;

use super::{Action, ActionError, ActionKind, ActionTarget, Change, iam_user, sdk_err};

const NAME: &str = "aws_disable_console_login";

/// The action over an IAM client.
pub struct AwsDisableConsoleLogin {
    iam: aws_sdk_iam::Client,
}

impl AwsDisableConsoleLogin {
    /// Over a shared IAM client.
    pub fn new(iam: aws_sdk_iam::Client) -> Self {
        AwsDisableConsoleLogin { iam }
    }

    async fn exists(&self, user: &str) -> Result<bool, ActionError> {
        match self.iam.get_login_profile().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_err(NAME, e)),
        }
    }
}

#[async_trait::async_trait]
impl Action for AwsDisableConsoleLogin {
    fn kind(&self) -> ActionKind {
        ActionKind::AwsDisableConsoleLogin
    }

    async fn apply(&self, t: &ActionTarget) -> Result<Change, ActionError> {
        let user = iam_user(NAME, t)?;
        let existed = self.exists(&user).await?;
        if existed {
            match self
                .iam
                .delete_login_profile()
                .user_name(&user)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_no_such_entity_exception()) => {}
                Err(e) => return Err(sdk_err(NAME, e)),
            }
        }
        Ok(Change {
            before: json!({"login_profile": existed}),
            after: json!({"login_profile": false}),
        })
    }

    async fn verify(&self, t: &ActionTarget, _: &Change) -> Result<bool, ActionError> {
        Ok(!self.exists(&iam_user(NAME, t)?).await?)
    }

    async fn undo(&self, t: &ActionTarget, change: &Change) -> Result<(), ActionError> {
        let user = iam_user(NAME, t)?;
        if change.before["login_profile"] != json!(true) || self.exists(&user).await? {
            return Ok(());
        }
        // A throwaway password that satisfies common policies; reset is required at sign-in.
        let password = format!("Pk-{:016x}{:016x}!", fastrand::u64(..), fastrand::u64(..));
        self.iam
            .create_login_profile()
            .user_name(&user)
            .password(password)
            .password_reset_required(true)
            .send()
            .await
            .map_err(|e| sdk_err(NAME, e))?;
        Ok(())
    }
}
