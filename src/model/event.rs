//! `IdentityEvent`: the one provider-neutral, OCSF-shaped event every normalizer produces
//! and every detector reads.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The cloud (or SaaS) a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Amazon Web Services (CloudTrail).
    Aws,
    /// Microsoft Entra ID and the Azure control plane it authorizes (Entra sign-in and audit
    /// logs, Graph or Azure Monitor export; the Azure activity log).
    Entra,
    /// Google Workspace (Admin SDK Reports API).
    GoogleWorkspace,
    /// Google Cloud (Cloud Audit Logs).
    Gcp,
    /// Microsoft 365 (the Unified Audit Log of Exchange, SharePoint, Entra, Defender...).
    Microsoft365,
    /// Okta (System Log).
    Okta,
}

impl Provider {
    /// The OCSF `cloud.provider` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "AWS",
            Provider::Entra => "Azure",
            Provider::GoogleWorkspace => "Google Workspace",
            Provider::Gcp => "GCP",
            Provider::Microsoft365 => "Microsoft 365",
            Provider::Okta => "Okta",
        }
    }
}

/// The raw record shape an event was normalized from. Sigma logsources map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// An AWS CloudTrail record (also when it arrived inside an EventBridge envelope).
    Cloudtrail,
    /// A Microsoft Graph `signIn` (v1.0 or beta).
    EntraSignin,
    /// A Microsoft Graph `directoryAudit`.
    EntraAudit,
    /// An Azure Monitor diagnostic-settings export record of sign-in logs.
    AzureMonitorSignin,
    /// An Azure Monitor diagnostic-settings export record of audit logs.
    AzureMonitorAudit,
    /// A Google Workspace Reports API activity (`admin#reports#activity`).
    GoogleReports,
    /// A GCP Cloud Audit Logs `LogEntry` with a `protoPayload`.
    GcpAudit,
    /// An Azure activity log record (Azure Resource Manager control plane): diagnostic-settings
    /// export, REST `eventData`, activity log alert payload or Log Analytics `AzureActivity` row.
    AzureActivity,
    /// A Microsoft 365 Unified Audit Log record (Office 365 Management Activity API).
    M365Audit,
    /// An Okta System Log event.
    Okta,
}

impl RecordKind {
    /// Every kind, for contract tests and `--kind` help.
    pub const ALL: &'static [RecordKind] = &[
        RecordKind::Cloudtrail,
        RecordKind::EntraSignin,
        RecordKind::EntraAudit,
        RecordKind::AzureMonitorSignin,
        RecordKind::AzureMonitorAudit,
        RecordKind::GoogleReports,
        RecordKind::GcpAudit,
        RecordKind::AzureActivity,
        RecordKind::M365Audit,
        RecordKind::Okta,
    ];

    /// The stable name used in config, mappings and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Cloudtrail => "cloudtrail",
            RecordKind::EntraSignin => "entra_signin",
            RecordKind::EntraAudit => "entra_audit",
            RecordKind::AzureMonitorSignin => "azure_monitor_signin",
            RecordKind::AzureMonitorAudit => "azure_monitor_audit",
            RecordKind::GoogleReports => "google_reports",
            RecordKind::GcpAudit => "gcp_audit",
            RecordKind::AzureActivity => "azure_activity",
            RecordKind::M365Audit => "m365_audit",
            RecordKind::Okta => "okta",
        }
    }

    /// Parses the name produced by [`RecordKind::as_str`].
    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The provider whose records have this shape.
    pub fn provider(self) -> Provider {
        match self {
            RecordKind::Cloudtrail => Provider::Aws,
            RecordKind::EntraSignin
            | RecordKind::EntraAudit
            | RecordKind::AzureMonitorSignin
            | RecordKind::AzureMonitorAudit
            | RecordKind::AzureActivity => Provider::Entra,
            RecordKind::GoogleReports => Provider::GoogleWorkspace,
            RecordKind::GcpAudit => Provider::Gcp,
            RecordKind::M365Audit => Provider::Microsoft365,
            RecordKind::Okta => Provider::Okta,
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OCSF event class of a normalized event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventClass {
    /// OCSF 3002 Authentication: sign-ins.
    Authentication,
    /// OCSF 3001 Account Change: credentials, MFA, passwords, enable/disable.
    AccountChange,
    /// OCSF 3005 User Access Management / 3006 Group Management: privileges, roles, consents.
    UserAccess,
    /// OCSF 6003 API Activity: everything else a control plane logs.
    ApiActivity,
}

impl EventClass {
    /// The OCSF `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            EventClass::Authentication => 3002,
            EventClass::AccountChange => 3001,
            EventClass::UserAccess => 3005,
            EventClass::ApiActivity => 6003,
        }
    }
}

/// What an event did, at the granularity detectors need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// An interactive or non-interactive sign-in / logon.
    SignIn,
    /// An OAuth consent or authorization granted to an application.
    ConsentGrant,
    /// A credential was created: access key, password/login profile, app secret or certificate.
    CredentialCreate,
    /// An MFA / authentication method was changed, deactivated or removed.
    MfaChange,
    /// A privilege was granted: admin policy, role membership, IAM binding.
    PrivilegeGrant,
    /// Logging or detection was weakened: trail stopped, sink deleted, detector disabled.
    LoggingChange,
    /// Any other control-plane call.
    ApiCall,
}

/// Whether the logged operation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It succeeded.
    Success,
    /// It failed (error code, failure reason, non-zero result).
    Failure,
    /// The record does not say.
    #[default]
    Unknown,
}

impl Status {
    /// The OCSF `status_id`.
    pub fn id(self) -> u8 {
        match self {
            Status::Unknown => 0,
            Status::Success => 1,
            Status::Failure => 2,
        }
    }
}

/// What kind of principal acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalType {
    /// A human user (IAM user, Entra user, Workspace user, Identity Center user).
    User,
    /// An assumed role session or federated user.
    Role,
    /// The AWS account root user.
    Root,
    /// An application, service principal or service account.
    ServicePrincipal,
    /// A cloud service acting on its own (AWSService, Google system).
    Service,
    /// Another account (AWSAccount).
    Account,
    /// Not known.
    #[default]
    Unknown,
}

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// The identity key: lowercased email/UPN where known, else the principal uid, after
    /// `[identities.aliases]` are applied. Detectors and responses use this.
    pub key: String,
    /// The provider's principal id: IAM ARN, Entra object id, Google profile id, SA email.
    pub uid: Option<String>,
    /// Display or user name.
    pub name: Option<String>,
    /// Email or UPN, as logged.
    pub email: Option<String>,
    /// What kind of principal this is.
    pub principal_type: PrincipalType,
    /// AWS account id, Entra tenant id, Google customer id or GCP project that owns the principal.
    pub account: Option<String>,
    /// The access key or session/credential id used, when logged.
    pub credential_id: Option<String>,
    /// For sessions: the principal the session belongs to (role ARN, SAML issuer).
    pub session_issuer: Option<String>,
}

/// A geo-IP location with its uncertainty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoLocation {
    /// City name (English), when the database has one.
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Accuracy radius in kilometres, as the database states it.
    pub radius_km: Option<f64>,
}

/// The network that owns an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asn {
    /// Autonomous system number.
    pub number: u32,
    /// Organisation name.
    pub org: Option<String>,
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The parsed address, when the logged value is an IP address.
    pub ip: Option<IpAddr>,
    /// The logged value as it was (an address, `AWS Internal`, a service name, `private`).
    pub raw: Option<String>,
    /// User agent string, as logged (attacker-controlled).
    pub user_agent: Option<String>,
    /// Location from the city database (enrichment).
    pub geo: Option<GeoLocation>,
    /// Owner network from the ASN database (enrichment).
    pub asn: Option<Asn>,
    /// The address is in `[networks] trusted` (enrichment).
    pub trusted: bool,
    /// The address is private, reserved, shared or documentation space (enrichment).
    pub private: bool,
}

/// What the event acted on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Id of the target (ARN, object id, email, resource name).
    pub uid: Option<String>,
    /// Display name of the target.
    pub name: Option<String>,
    /// What the target is (`user`, `role`, `policy`, `application`, `service_principal`, ...).
    pub kind: Option<String>,
}

/// Authentication facts of a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthFacts {
    /// MFA was used (`Some(false)`: single factor).
    pub mfa: Option<bool>,
    /// The sign-in was interactive (a person at a prompt).
    pub interactive: Option<bool>,
    /// MFA was attempted and failed.
    pub mfa_failed: bool,
    /// Risk flags the provider attached (Entra `riskEventTypes_v2`, Google `is_suspicious`).
    pub risk: Vec<String>,
    /// Client app / protocol (`Browser`, `Exchange ActiveSync`, ...): legacy auth detection.
    pub client_app: Option<String>,
}

/// An OAuth consent or authorization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthGrant {
    /// Application (client) id.
    pub app_id: Option<String>,
    /// Application display name (attacker-controlled).
    pub app_name: Option<String>,
    /// Granted scopes / permissions.
    pub scopes: Vec<String>,
    /// Consent given by an admin (on behalf of the organisation).
    pub admin_consent: bool,
    /// Granted for all principals of the tenant.
    pub all_principals: bool,
    /// Publisher verification, when the record says.
    pub publisher_verified: Option<bool>,
}

/// One normalized audit or sign-in event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityEvent {
    /// When it happened (event time, not ingestion time).
    pub time: DateTime<Utc>,
    /// The raw record's shape.
    pub kind: RecordKind,
    /// OCSF class.
    pub class: EventClass,
    /// What it did, for detectors.
    pub activity: Activity,
    /// Success or failure.
    pub status: Status,
    /// Error code or failure reason, when failed.
    pub status_detail: Option<String>,
    /// The account / tenant / customer / project the event was logged in.
    pub account: Option<String>,
    /// Region, when the provider has one.
    pub region: Option<String>,
    /// Who acted.
    pub actor: Actor,
    /// Where from.
    pub src: Endpoint,
    /// The operation: eventName / activityDisplayName / event name / methodName.
    pub action: String,
    /// The service: eventSource / category / application name / serviceName.
    pub service: Option<String>,
    /// What was acted on.
    pub targets: Vec<Target>,
    /// Sign-in facts.
    pub auth: AuthFacts,
    /// OAuth grant facts, for consent events.
    pub oauth: Option<OAuthGrant>,
    /// The provider's unique event id (CloudTrail eventID, Graph id, uniqueQualifier, insertId).
    pub uid: String,
    /// The raw record the event came from (rules match on it).
    #[serde(skip)]
    pub raw: crate::json::Raw,
}

impl IdentityEvent {
    /// The provider of this event.
    pub fn provider(&self) -> Provider {
        self.kind.provider()
    }

    /// A successful interactive sign-in: the only events impossible travel looks at.
    pub fn is_interactive_signin_success(&self) -> bool {
        self.activity == Activity::SignIn
            && self.status == Status::Success
            && self.auth.interactive.unwrap_or(false)
    }
}
