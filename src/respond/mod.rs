//! Response: playbooks map findings to actions; the [`Responder`](responder::Responder) runs
//! them under guardrails (dry-run by default, protected identities, blast radius with a latch,
//! account actions only on successful sign-ins, once-only per action, target and incident);
//! the [`ledger`] records every step for `picket respond list / undo / reset`.
//!
//! Actions never check guardrails themselves: they plan without side effects, apply
//! idempotently, read the state back in `verify`, and undo where the cloud allows.
//!
//! To add an action: one `<cloud>_<verb>.rs` implementing [`Action`] behind its feature, one
//! variant in [`ActionKind`] (name, permissions, scope, target, plan), and its arm in
//! [`ActionKind::build`]; the contract tests walk [`ActionKind::ALL`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloud::Clients;
use crate::model::{Finding, PrincipalType, Provider};

pub mod ledger;
pub mod protect;
pub mod responder;

#[cfg(feature = "aws")]
pub mod aws_deactivate_access_keys;
#[cfg(feature = "aws")]
pub mod aws_disable_console_login;
#[cfg(feature = "aws")]
pub mod aws_quarantine_principal;
#[cfg(feature = "aws")]
pub mod aws_revoke_role_sessions;
#[cfg(feature = "azure")]
pub mod entra;
#[cfg(feature = "azure")]
pub mod entra_disable_service_principal;
#[cfg(feature = "azure")]
pub mod entra_disable_user;
#[cfg(feature = "azure")]
pub mod entra_remove_oauth_grant;
#[cfg(feature = "azure")]
pub mod entra_revoke_sessions;
#[cfg(feature = "gcp")]
pub mod gcp_disable_service_account_key;
#[cfg(feature = "gcp")]
pub mod google;
#[cfg(feature = "gcp")]
pub mod google_revoke_tokens;
#[cfg(feature = "gcp")]
pub mod google_sign_out;
#[cfg(feature = "gcp")]
pub mod google_suspend_user;

pub use ledger::{Ledger, LedgerEntry, Status};
pub use protect::Protected;
pub use responder::{Outcome, Responder};

/// Errors of an action's cloud calls.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The cloud refused or failed.
    #[error("{action}: {message}")]
    Cloud {
        /// Action name.
        action: &'static str,
        /// What happened (no secrets).
        message: String,
        /// Whether a retry may help.
        retryable: bool,
    },
    /// The target does not fit the action (a user where a role is needed).
    #[error("{action}: {message}")]
    Target {
        /// Action name.
        action: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ActionError {
    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ActionError::Cloud {
                retryable: true,
                ..
            }
        )
    }
}

/// Errors of the response stage.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The state store failed.
    #[error("respond: {0}")]
    State(#[from] crate::state::StateError),
    /// An action could not be built (feature off, client missing).
    #[error("{0}")]
    Build(String),
    /// A ledger entry is unknown or unusable.
    #[error("ledger entry {id}: {message}")]
    Ledger {
        /// Entry id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// An action failed.
    #[error(transparent)]
    Action(#[from] ActionError),
}

/// How far an action reaches: account actions lock a person or app out and need stronger
/// evidence (successful sign-ins, never impossible travel alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Ends sessions / tokens; the person signs in again.
    Session,
    /// Disables one credential (an access key, a grant, a service-account key).
    Credential,
    /// Disables or quarantines the account itself.
    Account,
}

/// Who an action acts on, resolved from a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTarget {
    /// The provider's principal: IAM ARN, Entra object id or UPN, Google email.
    pub principal: String,
    /// The identity key of the finding (for per-identity limits and protection).
    pub identity: String,
    /// A credential id (access key id, service-account key id), when the action needs one.
    #[serde(default)]
    pub credential: Option<String>,
    /// An OAuth client / application id, when the action needs one.
    #[serde(default)]
    pub app: Option<String>,
}

impl ActionTarget {
    /// A short label for alerts and the ledger.
    pub fn label(&self) -> String {
        let mut s = self.principal.clone();
        if let Some(c) = &self.credential {
            s.push_str(&format!(" key {c}"));
        }
        if let Some(a) = &self.app {
            s.push_str(&format!(" app {a}"));
        }
        s
    }
}

/// What an action would do: computed without side effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Action name.
    pub action: String,
    /// Target label.
    pub target: String,
    /// One sentence: what changes.
    pub summary: String,
    /// Whether `undo` can reverse it.
    pub undoable: bool,
}

/// What an apply changed: enough to verify and undo it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// State before (what undo restores).
    pub before: Value,
    /// State after.
    pub after: Value,
}

/// Maps an identity key to the principals aliased to it and back (`[identities.aliases]`).
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    to_identity: BTreeMap<String, String>,
    by_identity: BTreeMap<String, Vec<String>>,
}

impl Aliases {
    /// From `[identities.aliases]` (principal -> identity key).
    pub fn new(map: &BTreeMap<String, String>) -> Aliases {
        let mut a = Aliases::default();
        for (principal, identity) in map {
            let id = identity.to_lowercase();
            a.to_identity.insert(principal.clone(), id.clone());
            a.by_identity.entry(id).or_default().push(principal.clone());
        }
        a
    }

    /// The principals linked to an identity key.
    pub fn principals(&self, identity: &str) -> &[String] {
        self.by_identity
            .get(&identity.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The identity a principal is linked to.
    pub fn identity(&self, principal: &str) -> Option<&str> {
        self.to_identity.get(principal).map(String::as_str)
    }
}

/// An executable response action. Guardrails are not its business: the Responder decides
/// whether it runs at all.
#[async_trait::async_trait]
pub trait Action: Send + Sync {
    /// Which action this is.
    fn kind(&self) -> ActionKind;
    /// The action's config name.
    fn name(&self) -> &'static str {
        self.kind().name()
    }
    /// The cloud permissions it needs (checked against the Terraform policies).
    fn permissions(&self) -> &'static [&'static str] {
        self.kind().permissions()
    }
    /// What it would do to `target`; no side effects.
    fn plan(&self, target: &ActionTarget) -> Plan {
        self.kind().plan(target)
    }
    /// Does it. Idempotent: applying twice leaves the same state and succeeds.
    async fn apply(&self, target: &ActionTarget) -> Result<Change, ActionError>;
    /// Reads the state back: true when the change is in effect.
    async fn verify(&self, target: &ActionTarget, change: &Change) -> Result<bool, ActionError>;
    /// Reverses `change` where the cloud allows it.
    async fn undo(&self, target: &ActionTarget, change: &Change) -> Result<(), ActionError>;
}

/// The registry of response actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Set the IAM user's access keys (the finding's, or all) to Inactive.
    AwsDeactivateAccessKeys,
    /// Deny everything to role sessions issued before now (the console's "revoke sessions").
    AwsRevokeRoleSessions,
    /// Delete the IAM user's console password (login profile).
    AwsDisableConsoleLogin,
    /// Attach a deny-all customer-managed policy to the user or role.
    AwsQuarantinePrincipal,
    /// Graph `revokeSignInSessions`.
    EntraRevokeSessions,
    /// Graph: `accountEnabled = false` on the user.
    EntraDisableUser,
    /// Graph: delete the user's `oauth2PermissionGrant` for the app.
    EntraRemoveOauthGrant,
    /// Graph: `accountEnabled = false` on the app's service principal.
    EntraDisableServicePrincipal,
    /// Directory API: delete the user's tokens for the OAuth client.
    GoogleRevokeTokens,
    /// Directory API: sign the user out of every session.
    GoogleSignOut,
    /// Directory API: suspend the user.
    GoogleSuspendUser,
    /// IAM API: disable the service-account key.
    GcpDisableServiceAccountKey,
}

/// The command that reverses a ledger entry.
pub fn undo_command(id: &str) -> String {
    format!("picket respond undo {id}")
}

fn is_email(s: &str) -> bool {
    s.contains('@') && !s.starts_with("arn:")
}

impl ActionKind {
    /// Every action.
    pub const ALL: &'static [ActionKind] = &[
        ActionKind::AwsDeactivateAccessKeys,
        ActionKind::AwsRevokeRoleSessions,
        ActionKind::AwsDisableConsoleLogin,
        ActionKind::AwsQuarantinePrincipal,
        ActionKind::EntraRevokeSessions,
        ActionKind::EntraDisableUser,
        ActionKind::EntraRemoveOauthGrant,
        ActionKind::EntraDisableServicePrincipal,
        ActionKind::GoogleRevokeTokens,
        ActionKind::GoogleSignOut,
        ActionKind::GoogleSuspendUser,
        ActionKind::GcpDisableServiceAccountKey,
    ];

    /// The config name (also the file stem).
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::AwsDeactivateAccessKeys => "aws_deactivate_access_keys",
            ActionKind::AwsRevokeRoleSessions => "aws_revoke_role_sessions",
            ActionKind::AwsDisableConsoleLogin => "aws_disable_console_login",
            ActionKind::AwsQuarantinePrincipal => "aws_quarantine_principal",
            ActionKind::EntraRevokeSessions => "entra_revoke_sessions",
            ActionKind::EntraDisableUser => "entra_disable_user",
            ActionKind::EntraRemoveOauthGrant => "entra_remove_oauth_grant",
            ActionKind::EntraDisableServicePrincipal => "entra_disable_service_principal",
            ActionKind::GoogleRevokeTokens => "google_revoke_tokens",
            ActionKind::GoogleSignOut => "google_sign_out",
            ActionKind::GoogleSuspendUser => "google_suspend_user",
            ActionKind::GcpDisableServiceAccountKey => "gcp_disable_service_account_key",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.iter().copied().find(|k| k.name() == s)
    }

    /// The cargo feature that carries it.
    pub fn feature(self) -> &'static str {
        match self.provider() {
            Provider::Aws => "aws",
            Provider::Entra => "azure",
            // Every other action acts in Google Workspace or GCP.
            _ => "gcp",
        }
    }

    /// The cloud it acts in.
    pub fn provider(self) -> Provider {
        use ActionKind::*;
        match self {
            AwsDeactivateAccessKeys
            | AwsRevokeRoleSessions
            | AwsDisableConsoleLogin
            | AwsQuarantinePrincipal => Provider::Aws,
            EntraRevokeSessions
            | EntraDisableUser
            | EntraRemoveOauthGrant
            | EntraDisableServicePrincipal => Provider::Entra,
            GoogleRevokeTokens | GoogleSignOut | GoogleSuspendUser => Provider::GoogleWorkspace,
            GcpDisableServiceAccountKey => Provider::Gcp,
        }
    }

    /// How far it reaches.
    pub fn scope(self) -> Scope {
        use ActionKind::*;
        match self {
            AwsRevokeRoleSessions | EntraRevokeSessions | GoogleSignOut => Scope::Session,
            // Disabling an app's service principal locks no person out: it is how an illicit
            // consent is contained, so it counts with the credentials.
            AwsDeactivateAccessKeys
            | EntraRemoveOauthGrant
            | EntraDisableServicePrincipal
            | GoogleRevokeTokens
            | GcpDisableServiceAccountKey => Scope::Credential,
            AwsDisableConsoleLogin
            | AwsQuarantinePrincipal
            | EntraDisableUser
            | GoogleSuspendUser => Scope::Account,
        }
    }

    /// The permissions it needs, in the cloud's own spelling.
    pub fn permissions(self) -> &'static [&'static str] {
        use ActionKind::*;
        match self {
            AwsDeactivateAccessKeys => &["iam:ListAccessKeys", "iam:UpdateAccessKey"],
            AwsRevokeRoleSessions => &[
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
            ],
            AwsDisableConsoleLogin => &[
                "iam:GetLoginProfile",
                "iam:DeleteLoginProfile",
                "iam:CreateLoginProfile",
            ],
            AwsQuarantinePrincipal => &[
                "iam:CreatePolicy",
                "iam:GetPolicy",
                "iam:AttachUserPolicy",
                "iam:AttachRolePolicy",
                "iam:DetachUserPolicy",
                "iam:DetachRolePolicy",
                "iam:ListAttachedUserPolicies",
                "iam:ListAttachedRolePolicies",
            ],
            EntraRevokeSessions => &["User.RevokeSessions.All", "Directory.Read.All"],
            EntraDisableUser => &["User.EnableDisableAccount.All", "Directory.Read.All"],
            EntraRemoveOauthGrant => &[
                "DelegatedPermissionGrant.ReadWrite.All",
                "Directory.Read.All",
            ],
            EntraDisableServicePrincipal => &["Application.ReadWrite.All"],
            GoogleRevokeTokens => {
                &["https://www.googleapis.com/auth/admin.directory.user.security"]
            }
            GoogleSignOut => &["https://www.googleapis.com/auth/admin.directory.user.security"],
            GoogleSuspendUser => &["https://www.googleapis.com/auth/admin.directory.user"],
            GcpDisableServiceAccountKey => &[
                "iam.serviceAccountKeys.disable",
                "iam.serviceAccountKeys.enable",
                "iam.serviceAccountKeys.get",
            ],
        }
    }

    /// Resolves whom this action would act on for a finding; `None` when the finding names
    /// no principal of the right kind (the step is then skipped, and says so).
    pub fn target(self, f: &Finding, aliases: &Aliases) -> Option<ActionTarget> {
        let actor = f.actor.as_ref();
        let identity = f
            .identity
            .clone()
            .or_else(|| actor.map(|a| a.key.clone()))?
            .to_lowercase();
        let app = ["app_id", "client_id"]
            .iter()
            .find_map(|k| f.data.get(*k).and_then(Value::as_str))
            .map(str::to_string);
        let actor_uid = actor.and_then(|a| a.uid.clone());
        let aws_principal = || {
            actor_uid
                .clone()
                .filter(|u| u.starts_with("arn:aws:"))
                .or_else(|| {
                    aliases
                        .principals(&identity)
                        .iter()
                        .find(|p| p.starts_with("arn:aws:"))
                        .cloned()
                })
        };
        let email = || {
            actor
                .and_then(|a| a.email.clone())
                .filter(|e| is_email(e))
                .map(|e| e.to_lowercase())
                .or_else(|| Some(identity.clone()).filter(|i| is_email(i)))
        };
        let mk = |principal: String| ActionTarget {
            principal,
            identity: identity.clone(),
            credential: None,
            app: None,
        };
        use ActionKind::*;
        match self {
            AwsDeactivateAccessKeys => {
                let p = aws_principal().filter(|p| p.contains(":user/"))?;
                let key = actor
                    .and_then(|a| a.credential_id.clone())
                    .filter(|k| k.starts_with("AKIA"));
                Some(ActionTarget {
                    credential: key,
                    ..mk(p)
                })
            }
            AwsDisableConsoleLogin => aws_principal().filter(|p| p.contains(":user/")).map(mk),
            AwsRevokeRoleSessions => {
                let p = aws_principal()?;
                let session = actor.and_then(|a| a.session_issuer.clone());
                aws::role_arn(&p)
                    .or_else(|| session.as_deref().and_then(aws::role_arn))
                    .map(mk)
            }
            AwsQuarantinePrincipal => aws_principal()
                .and_then(|p| {
                    if p.contains(":user/") {
                        Some(p)
                    } else {
                        aws::role_arn(&p)
                    }
                })
                .map(mk),
            EntraRevokeSessions | EntraDisableUser => {
                let p = actor
                    .filter(|_| f.evidence.iter().any(|e| e.provider == Provider::Entra))
                    .and_then(|a| a.email.clone())
                    .or_else(email)?;
                Some(mk(p.to_lowercase()))
            }
            EntraRemoveOauthGrant => Some(ActionTarget {
                app: Some(app?),
                ..mk(email()?)
            }),
            EntraDisableServicePrincipal => Some(ActionTarget {
                app: Some(app.clone()?),
                ..mk(app?)
            }),
            GoogleRevokeTokens => Some(ActionTarget {
                app: Some(app?),
                ..mk(email()?)
            }),
            GoogleSignOut | GoogleSuspendUser => email().map(mk),
            GcpDisableServiceAccountKey => {
                let a = actor.filter(|a| a.principal_type == PrincipalType::ServicePrincipal)?;
                let sa = a
                    .email
                    .clone()
                    .or(a.uid.clone())
                    .filter(|e| e.ends_with(".gserviceaccount.com"))?;
                Some(ActionTarget {
                    credential: Some(a.credential_id.clone()?),
                    ..mk(sa)
                })
            }
        }
    }

    /// What it would do, in one sentence; no side effects.
    pub fn plan(self, t: &ActionTarget) -> Plan {
        use ActionKind::*;
        let p = &t.principal;
        let summary = match self {
            AwsDeactivateAccessKeys => match &t.credential {
                Some(k) => format!("set access key {k} of {p} to Inactive"),
                None => format!("set every access key of {p} to Inactive"),
            },
            AwsRevokeRoleSessions => format!(
                "deny all actions to sessions of {p} issued before now (inline policy {})",
                aws::REVOKE_POLICY_NAME
            ),
            AwsDisableConsoleLogin => format!("delete the console password (login profile) of {p}"),
            AwsQuarantinePrincipal => format!(
                "attach the deny-all policy {} to {p}",
                aws::QUARANTINE_POLICY_NAME
            ),
            EntraRevokeSessions => format!("revoke every sign-in session and refresh token of {p}"),
            EntraDisableUser => format!("disable the Entra account {p} (accountEnabled = false)"),
            EntraRemoveOauthGrant => format!(
                "delete the delegated permission grant of {p} to app {}",
                t.app.as_deref().unwrap_or("?")
            ),
            EntraDisableServicePrincipal => format!("disable the service principal of app {p}"),
            GoogleRevokeTokens => format!(
                "delete the OAuth tokens {p} issued to client {}",
                t.app.as_deref().unwrap_or("?")
            ),
            GoogleSignOut => format!("sign {p} out of every Google session"),
            GoogleSuspendUser => format!("suspend the Google account {p}"),
            GcpDisableServiceAccountKey => format!(
                "disable key {} of service account {p}",
                t.credential.as_deref().unwrap_or("?")
            ),
        };
        Plan {
            action: self.name().to_string(),
            target: t.label(),
            summary,
            // Ended sessions and deleted tokens cannot come back; everything else can.
            undoable: !matches!(
                self,
                EntraRevokeSessions | GoogleRevokeTokens | GoogleSignOut
            ),
        }
    }

    /// Builds the executable action over the shared clients. A build without the action's
    /// feature returns an error that says which feature it needs.
    pub fn build(self, clients: &Clients) -> Result<Arc<dyn Action>, RespondError> {
        build_action(self, clients)
    }
}

/// AWS names shared by the AWS actions (and by plans, which exist without the feature).
pub mod aws {
    /// The inline role policy that revokes older sessions (the IAM console's name).
    pub const REVOKE_POLICY_NAME: &str = "AWSRevokeOlderSessions";
    /// The customer-managed deny-all policy used for quarantine. Named under the default
    /// Terraform `name_prefix` (`picket-*`), the only customer policies the respond role
    /// may attach.
    pub const QUARANTINE_POLICY_NAME: &str = "picket-quarantine-deny-all";

    /// The role ARN of a role or assumed-role ARN (`arn:aws:sts::1:assumed-role/R/s` ->
    /// `arn:aws:iam::1:role/R`).
    pub fn role_arn(arn: &str) -> Option<String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" {
            return None;
        }
        let (partition, account, resource) = (parts[1], parts[4], parts[5]);
        if let Some(rest) = resource.strip_prefix("assumed-role/") {
            let role = rest.split('/').next()?;
            return Some(format!("arn:{partition}:iam::{account}:role/{role}"));
        }
        if resource.starts_with("role/") && parts[2] == "iam" {
            return Some(arn.to_string());
        }
        None
    }

    /// The last path segment of a user or role ARN: its name.
    pub fn name_of(arn: &str) -> Option<&str> {
        let resource = arn.splitn(6, ':').nth(5)?;
        let (kind, rest) = resource.split_once('/')?;
        if !matches!(kind, "user" | "role") {
            return None;
        }
        rest.rsplit('/').next().filter(|s| !s.is_empty())
    }
}

#[allow(unused_variables)]
fn build_action(kind: ActionKind, clients: &Clients) -> Result<Arc<dyn Action>, RespondError> {
    let missing = |what: &str| RespondError::Build(format!("{}: {what}", kind.name()));
    #[allow(unused_imports)]
    use ActionKind::*;
    match kind {
        #[cfg(feature = "aws")]
        AwsDeactivateAccessKeys
        | AwsRevokeRoleSessions
        | AwsDisableConsoleLogin
        | AwsQuarantinePrincipal => {
            let sdk = clients
                .aws
                .as_ref()
                .ok_or_else(|| missing("no AWS client settings were built"))?;
            let iam = aws_sdk_iam::Client::new(sdk);
            Ok(match kind {
                AwsDeactivateAccessKeys => Arc::new(
                    aws_deactivate_access_keys::AwsDeactivateAccessKeys::new(iam),
                ),
                AwsRevokeRoleSessions => {
                    Arc::new(aws_revoke_role_sessions::AwsRevokeRoleSessions::new(iam))
                }
                AwsDisableConsoleLogin => {
                    Arc::new(aws_disable_console_login::AwsDisableConsoleLogin::new(iam))
                }
                _ => Arc::new(aws_quarantine_principal::AwsQuarantinePrincipal::new(iam)),
            })
        }
        #[cfg(feature = "azure")]
        EntraRevokeSessions
        | EntraDisableUser
        | EntraRemoveOauthGrant
        | EntraDisableServicePrincipal => {
            let api = clients
                .graph
                .clone()
                .ok_or_else(|| missing("no Graph client ([azure]) was built"))?;
            Ok(match kind {
                EntraRevokeSessions => {
                    Arc::new(entra_revoke_sessions::EntraRevokeSessions::new(api))
                }
                EntraDisableUser => Arc::new(entra_disable_user::EntraDisableUser::new(api)),
                EntraRemoveOauthGrant => {
                    Arc::new(entra_remove_oauth_grant::EntraRemoveOauthGrant::new(api))
                }
                _ => Arc::new(
                    entra_disable_service_principal::EntraDisableServicePrincipal::new(api),
                ),
            })
        }
        #[cfg(feature = "gcp")]
        GoogleRevokeTokens | GoogleSignOut | GoogleSuspendUser | GcpDisableServiceAccountKey => {
            let api = clients
                .google
                .clone()
                .ok_or_else(|| missing("no Google client ([google]) was built"))?;
            Ok(match kind {
                GoogleRevokeTokens => Arc::new(google_revoke_tokens::GoogleRevokeTokens::new(api)),
                GoogleSignOut => Arc::new(google_sign_out::GoogleSignOut::new(api)),
                GoogleSuspendUser => Arc::new(google_suspend_user::GoogleSuspendUser::new(api)),
                _ => {
                    Arc::new(gcp_disable_service_account_key::GcpDisableServiceAccountKey::new(api))
                }
            })
        }
        #[allow(unreachable_patterns)]
        other => Err(RespondError::Build(format!(
            "{} needs the `{}` feature",
            other.name(),
            other.feature()
        ))),
    }
}

/// Turns an SDK error into an [`ActionError`] (context shown, retryability kept).
#[cfg(feature = "aws")]
pub(crate) fn sdk_err<E, R>(
    action: &'static str,
    e: aws_sdk_iam::error::SdkError<E, R>,
) -> ActionError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_iam::error::SdkError;
    let retryable = matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_));
    ActionError::Cloud {
        action,
        message: crate::alert::escape::terminal(
            &aws_sdk_iam::error::DisplayErrorContext(&e).to_string(),
        ),
        retryable,
    }
}

/// The IAM user name of a target, or an error saying a user is needed.
#[cfg(feature = "aws")]
pub(crate) fn iam_user(action: &'static str, t: &ActionTarget) -> Result<String, ActionError> {
    if !t.principal.contains(":user/") {
        return Err(ActionError::Target {
            action,
            message: format!("{} is not an IAM user", t.principal),
        });
    }
    aws::name_of(&t.principal)
        .map(str::to_string)
        .ok_or_else(|| ActionError::Target {
            action,
            message: format!("{} has no user name", t.principal),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, Evidence, Severity};

    #[test]
    fn every_action_has_a_unique_name_permissions_and_parses_back() {
        let mut names = std::collections::BTreeSet::new();
        for k in ActionKind::ALL {
            assert!(names.insert(k.name()), "duplicate {}", k.name());
            assert_eq!(ActionKind::parse(k.name()), Some(*k));
            assert!(!k.permissions().is_empty(), "{}", k.name());
            assert!(k.name().starts_with(match k.feature() {
                "aws" => "aws_",
                "azure" => "entra_",
                _ => "g",
            }));
        }
    }

    /// A policy template of `terraform/modules/picket/policies`, parsed as the JSON it is once
    /// each `${...}` is replaced by its variable name (`{{table_arn}}`).
    fn policy(name: &str) -> Vec<serde_json::Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("terraform/modules/picket/policies")
            .join(format!("{name}.json.tftpl"));
        let text = std::fs::read_to_string(&path).unwrap();
        let text = regex::Regex::new(r"\$\{([a-z_]+)\}")
            .unwrap()
            .replace_all(&text, "{{$1}}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Version"], "2012-10-17", "{}", path.display());
        doc["Statement"].as_array().unwrap().clone()
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a.iter().flat_map(strings).collect(),
            _ => Vec::new(),
        }
    }

    /// Every AWS permission an action declares is allowed to the respond role (an Allow
    /// statement, not only named in a Deny), and every Graph permission is requested by the
    /// Entra app. (Google's scopes are granted by domain-wide delegation in the Workspace admin
    /// console, outside Terraform.)
    #[test]
    fn declared_permissions_are_granted_by_the_terraform_policies() {
        let allowed: std::collections::BTreeSet<String> = policy("respond")
            .iter()
            .filter(|st| st["Effect"] == "Allow")
            .flat_map(|st| strings(&st["Action"]))
            .collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("terraform/modules");
        let azure = std::fs::read_to_string(root.join("azure_app/main.tf")).unwrap();
        for k in ActionKind::ALL {
            for p in k.permissions() {
                match k.provider() {
                    Provider::Aws => assert!(
                        allowed.contains(*p),
                        "{} needs {p}, which the respond role is not allowed",
                        k.name()
                    ),
                    Provider::Entra => assert!(
                        azure.contains(&format!("\"{p}\"")),
                        "{} needs {p}, which the Entra app does not request",
                        k.name()
                    ),
                    _ => {}
                }
            }
        }
    }

    /// Every DynamoDB call the state store makes on its data path is allowed on the table to
    /// each function role (table creation is Terraform's, or the emulator's in tests).
    #[test]
    fn every_role_may_make_every_call_of_the_dynamodb_store() {
        let source = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/state/dynamodb.rs"),
        )
        .unwrap();
        let provisioning = ["create_table", "describe_table", "update_time_to_live"];
        let calls: std::collections::BTreeSet<String> =
            regex::Regex::new(r"\.client\s*\.\s*([a-z_]+)\(")
                .unwrap()
                .captures_iter(&source)
                .map(|c| c[1].to_string())
                .filter(|c| !provisioning.contains(&c.as_str()))
                .map(|c| {
                    let pascal: String = c
                        .split('_')
                        .map(|w| w[..1].to_uppercase() + &w[1..])
                        .collect();
                    format!("dynamodb:{pascal}")
                })
                .collect();
        assert!(calls.contains("dynamodb:BatchGetItem"), "{calls:?}");
        for role in ["poll", "ingest", "respond"] {
            let allowed: std::collections::BTreeSet<String> = policy(role)
                .iter()
                .filter(|st| st["Effect"] == "Allow")
                .filter(|st| {
                    strings(&st["Resource"])
                        .iter()
                        .any(|r| r == "{{table_arn}}")
                })
                .flat_map(|st| strings(&st["Action"]))
                .collect();
            for call in &calls {
                assert!(
                    allowed.contains(call),
                    "the {role} role may not {call} on the state table"
                );
            }
        }
    }

    /// The poll and ingest roles read: every action they are allowed is a read, or touches only
    /// picket's own resources (its table, queues, logs, key); and none is a response action's
    /// permission other than a read.
    #[test]
    fn the_read_only_roles_hold_no_write_action() {
        const READ_VERBS: &[&str] = &[
            "Get",
            "List",
            "Describe",
            "Lookup",
            "Query",
            "Receive",
            "ConditionCheck",
            "Decrypt",
        ];
        const OWN: &[&str] = &[
            "{{table_arn}}",
            "{{ingest_queue_arn}}",
            "{{respond_queue_arn}}",
            "{{dead_letter_queue_arn}}",
            "{{log_group_arn}}:*",
            "{{kms_key_arn}}",
        ];
        let response_writes: std::collections::BTreeSet<&str> = ActionKind::ALL
            .iter()
            .filter(|k| k.provider() == Provider::Aws)
            .flat_map(|k| k.permissions().iter().copied())
            .filter(|p| {
                let verb = p.split(':').nth(1).unwrap_or_default();
                !READ_VERBS.iter().any(|r| verb.starts_with(r))
            })
            .collect();
        assert!(response_writes.contains("iam:UpdateAccessKey"));
        for role in ["poll", "ingest"] {
            let statements = policy(role);
            assert!(!statements.is_empty());
            for st in statements.iter().filter(|st| st["Effect"] == "Allow") {
                let resources = strings(&st["Resource"]);
                let own = resources.iter().all(|r| OWN.contains(&r.as_str()));
                for a in strings(&st["Action"]) {
                    let verb = a.split(':').nth(1).unwrap_or_default();
                    let read = READ_VERBS.iter().any(|r| verb.starts_with(r));
                    assert!(
                        read || own,
                        "{role}: {a} ({}) writes outside picket's own resources",
                        st["Sid"]
                    );
                    assert!(!response_writes.contains(a.as_str()), "{role}: {a}");
                    assert!(!a.contains('*'), "{role}: wildcard action {a}");
                }
            }
        }
    }

    #[test]
    fn role_arns_derive_from_sessions() {
        assert_eq!(
            aws::role_arn("arn:aws:sts::123456789012:assumed-role/Admin/alice").as_deref(),
            Some("arn:aws:iam::123456789012:role/Admin")
        );
        assert_eq!(aws::role_arn("arn:aws:iam::123456789012:user/alice"), None);
        assert_eq!(
            aws::name_of("arn:aws:iam::1:user/path/alice"),
            Some("alice")
        );
    }

    #[test]
    fn targets_resolve_through_aliases() {
        let mut f = Finding::new(
            "account-takeover",
            "t",
            Severity::High,
            Vec::<Evidence>::new(),
        );
        f.identity = Some("alice@corp.example".into());
        f.actor = Some(Actor {
            key: "alice@corp.example".into(),
            email: Some("Alice@corp.example".into()),
            ..Actor::default()
        });
        f.data.insert("app_id".into(), serde_json::json!("app-1"));
        let aliases = Aliases::new(&BTreeMap::from([(
            "arn:aws:iam::123456789012:user/alice".to_string(),
            "alice@corp.example".to_string(),
        )]));
        let t = ActionKind::AwsDeactivateAccessKeys
            .target(&f, &aliases)
            .unwrap();
        assert_eq!(t.principal, "arn:aws:iam::123456789012:user/alice");
        assert_eq!(t.credential, None);
        let g = ActionKind::EntraRemoveOauthGrant
            .target(&f, &aliases)
            .unwrap();
        assert_eq!(
            (g.principal.as_str(), g.app.as_deref()),
            ("alice@corp.example", Some("app-1"))
        );
        assert!(
            ActionKind::AwsRevokeRoleSessions
                .target(&f, &aliases)
                .is_none()
        );
        assert!(
            ActionKind::GcpDisableServiceAccountKey
                .target(&f, &aliases)
                .is_none()
        );
    }

    #[cfg(not(feature = "aws"))]
    #[test]
    fn a_build_without_the_feature_says_which_feature() {
        let e = ActionKind::AwsDeactivateAccessKeys
            .build(&Clients::default())
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "aws_deactivate_access_keys needs the `aws` feature");
    }
}
