//! Microsoft 365 Unified Audit Log records, as the Office 365 Management Activity API returns
//! them, -> [`IdentityEvent`]s. Also accepted: a record wrapped as `Search-UnifiedAuditLog`
//! and Microsoft-Extractor-Suite export it (`RecordType`, `CreationDate`, `UserIds`,
//! `Operations`, `AuditData` as an object or a JSON string); the event is built from
//! `AuditData`, and `raw` is `AuditData` so rules see the UAL shape.
//!
//! Mapping: `CreationTime` (no offset: UTC) -> time, `Id` -> uid, `Operation` -> action,
//! `Workload` -> service, `OrganizationId` -> account; `ResultStatus` -> status (`Success`,
//! `Succeeded`, `True` / `Failed`, `False`; `PartiallySucceeded` and absent are `Unknown`),
//! with `LogonError` / `ErrorNumber` as detail; `UserId` (a UPN for people) and `UserKey` ->
//! actor, `UserType` decides its type; `ClientIP` / `ActorIpAddress` (with a `:port` or
//! `[v6]:port` suffix removed) and the `UserAgent` extended property -> src; `ObjectId` ->
//! target.
//!
//! Activities:
//! - `UserLoggedIn` / `UserLoginFailed` -> SignIn. `RequestType` (extended property) decides
//!   interactivity: `OAuth2:Token` (a token redeemed) is not interactive, `Login:*`,
//!   `OAuth2:Authorize`, `SAS:*`, `Kmsi:*`, `Cmsi:*` are; the `SAS:*` MFA steps set `mfa`.
//! - `AzureActiveDirectory` workload: the operation without its trailing period goes through
//!   the Entra audit table ([`super::entra_audit::activity`]), `ModifiedProperties` playing
//!   the target's modified properties, so `Consent to application.` is a ConsentGrant with its
//!   scopes, `Add member to role.` a PrivilegeGrant, `Disable Strong Authentication.` an
//!   MfaChange.
//! - Exchange: see [`exchange_activity`]. Forwarding addresses set by `Set-Mailbox` or an
//!   inbox rule are added as targets of kind `forwarding_address`.
//!
//! Also accepted: rows of the Log Analytics `OfficeActivity` table (Sentinel exports, the OTRF
//! datasets): `TimeGenerated`, `OfficeId`, `OfficeWorkload`, `OfficeObjectId`,
//! `Client_IPAddress`, and the list columns as JSON strings; the row is read as the UAL record
//! it came from, and `raw` stays the row.
//!
//! To classify one more Exchange cmdlet: add it to [`exchange_activity`].

use std::net::IpAddr;

use crate::json::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait, Raw, Value, json};

use super::NormalizeError;
use super::entra_audit;
use super::util::{
    class_of, get, identity_key, is_email, is_nil_guid, parse_bool, parse_ip, req_str, req_time,
    require_object, str_at, string_at, text_at,
};
use crate::model::{
    Activity, Actor, AuthFacts, Endpoint, IdentityEvent, PrincipalType, RecordKind, Status, Target,
};

const KIND: RecordKind = RecordKind::M365Audit;

/// Normalizes one UAL record (or a `Search-UnifiedAuditLog` wrapper of one) into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    if raw.get("CreationTime").is_none() && raw.get("OfficeWorkload").is_some() {
        let mut event = build(&from_log_analytics(&raw)).map_err(|e| match e {
            NormalizeError::Missing { kind, field } => NormalizeError::Missing {
                kind,
                field: la_column(field),
            },
            NormalizeError::Invalid {
                kind,
                field,
                message,
            } => NormalizeError::Invalid {
                kind,
                field: la_column(field),
                message,
            },
            other => other,
        })?;
        event.raw = raw;
        return Ok(vec![event]);
    }
    let record = match raw.get("AuditData") {
        Some(_) if raw.get("CreationTime").is_none() => Raw::new(unwrap(raw.into_value())?),
        _ => raw,
    };
    let mut event = build(&record)?;
    event.raw = record;
    Ok(vec![event])
}

/// The `AuditData` of a wrapper, parsed when it is a JSON string.
fn unwrap(mut wrapper: Value) -> Result<Value, NormalizeError> {
    let data = wrapper
        .as_object_mut()
        .and_then(|o| o.remove(&"AuditData"))
        .unwrap_or_default();
    let inner = match data.as_str() {
        Some(s) => crate::json::parse(s.as_bytes()).map_err(|e| NormalizeError::Invalid {
            kind: KIND,
            field: "AuditData",
            message: format!("not JSON: {e}"),
        })?,
        None => data,
    };
    if inner.is_object() {
        Ok(inner)
    } else {
        Err(NormalizeError::Invalid {
            kind: KIND,
            field: "AuditData",
            message: "expected a JSON object".to_owned(),
        })
    }
}

/// `OfficeActivity` columns that are UAL fields under another name.
const LA_RENAMES: &[(&str, &str)] = &[
    ("TimeGenerated", "CreationTime"),
    ("OfficeId", "Id"),
    ("OfficeWorkload", "Workload"),
    ("OfficeObjectId", "ObjectId"),
    ("Client_IPAddress", "ClientIP"),
];

/// The UAL field an `OfficeActivity` column stands for, reversed (for error messages).
fn la_column(field: &'static str) -> &'static str {
    LA_RENAMES
        .iter()
        .find(|(_, ual)| *ual == field)
        .map_or(field, |(column, _)| column)
}

/// An `OfficeActivity` row as the UAL record it came from: renamed columns (a UAL name already
/// present wins), list columns parsed from their JSON strings.
fn from_log_analytics(row: &Value) -> Value {
    let mut out = row.clone();
    let Some(obj) = out.as_object_mut() else {
        return Value::new_object();
    };
    for (column, ual) in LA_RENAMES {
        if !obj.contains_key(ual)
            && let Some(v) = row.get(*column)
        {
            obj.insert(*ual, v.clone());
        }
    }
    for list in [
        "Parameters",
        "ExtendedProperties",
        "ModifiedProperties",
        "OperationProperties",
    ] {
        if let Some(s) = obj.get(&list).and_then(Value::as_str)
            && let Ok(v) = crate::json::parse(s.as_bytes())
            && v.is_array()
        {
            obj.insert(list, v);
        }
    }
    out
}

/// The `Value` of the `{Name, Value}` entry named `name` in the list at `list`.
pub(crate) fn named<'a>(r: &'a Value, list: &str, name: &str) -> Option<&'a str> {
    get(r, list)?
        .as_array()?
        .iter()
        .find(|kv| str_at(kv, "Name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|kv| str_at(kv, "Value"))
}

fn build(r: &Value) -> Result<IdentityEvent, NormalizeError> {
    let time = req_time(r, "CreationTime", KIND)?;
    let uid = req_str(r, "Id", KIND)?.to_owned();
    let action = req_str(r, "Operation", KIND)?.to_owned();
    let workload = string_at(r, "Workload");

    let mut status = match str_at(r, "ResultStatus")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("success" | "succeeded" | "true") => Status::Success,
        Some("failed" | "failure" | "false") => Status::Failure,
        _ => Status::Unknown,
    };
    let mut auth = AuthFacts::default();
    let mut oauth = None;
    let mut targets: Vec<Target> = string_at(r, "ObjectId")
        .map(|id| Target {
            uid: Some(id.clone()),
            name: Some(id),
            kind: None,
        })
        .into_iter()
        .collect();

    let activity = match action.as_str() {
        "UserLoggedIn" | "UserLoginFailed" => {
            if action == "UserLoginFailed" {
                status = Status::Failure;
            }
            auth = signin_facts(r, status);
            Activity::SignIn
        }
        _ if workload.as_deref() == Some("AzureActiveDirectory") => {
            let op = action.trim().trim_end_matches('.');
            let as_targets = entra_targets(r);
            let a = entra_audit::activity(op, &as_targets);
            if a == Activity::ConsentGrant {
                let mut grant = entra_audit::oauth_grant(op, &as_targets);
                if grant.app_name.is_none() {
                    grant.app_name = target_name(r);
                }
                oauth = Some(grant);
            }
            a
        }
        _ => exchange_activity(&action, r),
    };
    for param in [
        "ForwardingSmtpAddress",
        "ForwardingAddress",
        "ForwardTo",
        "ForwardAsAttachmentTo",
        "RedirectTo",
    ] {
        if let Some(v) = named(r, "Parameters", param) {
            targets.push(Target {
                uid: Some(v.to_owned()),
                name: Some(v.to_owned()),
                kind: Some("forwarding_address".to_owned()),
            });
        }
    }
    let status_detail = (status == Status::Failure)
        .then(|| {
            match (string_at(r, "LogonError"), text_at(r, "ErrorNumber")) {
                (Some(e), Some(n)) => Some(format!("{n}: {e}")),
                (e, n) => e.or(n),
            }
            .or_else(|| named(r, "ExtendedProperties", "ResultStatusDetail").map(str::to_owned))
        })
        .flatten();

    let raw_ip = str_at(r, "ClientIP")
        .or_else(|| str_at(r, "ActorIpAddress"))
        .or_else(|| str_at(r, "ClientIPAddress"));
    let src = Endpoint {
        ip: raw_ip.and_then(client_ip),
        raw: raw_ip.map(str::to_owned),
        user_agent: named(r, "ExtendedProperties", "UserAgent")
            .or_else(|| str_at(r, "UserAgent"))
            .map(str::to_owned),
        ..Endpoint::default()
    };
    Ok(IdentityEvent {
        time,
        kind: KIND,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account: string_at(r, "OrganizationId").filter(|o| !is_nil_guid(o)),
        region: None,
        src,
        actor: actor(r),
        action,
        service: workload,
        targets,
        auth,
        oauth,
        uid,
        raw: Raw::default(),
    })
}

/// A logged client address: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:5678`.
pub(crate) fn client_ip(raw: &str) -> Option<IpAddr> {
    let s = raw.trim();
    if let Some(ip) = parse_ip(s) {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| parse_ip(ip));
    }
    // One colon: IPv4 with a port (IPv6 has several).
    match s.split_once(':') {
        Some((ip, port)) if !port.contains(':') => parse_ip(ip).filter(IpAddr::is_ipv4),
        _ => None,
    }
}

/// Sign-in facts of `UserLoggedIn` / `UserLoginFailed` from the `RequestType` and error.
fn signin_facts(r: &Value, status: Status) -> AuthFacts {
    let request = named(r, "ExtendedProperties", "RequestType").unwrap_or_default();
    let (kind, _) = request.split_once(':').unwrap_or((request, ""));
    let interactive = match kind.to_ascii_lowercase().as_str() {
        "login" | "sas" | "kmsi" | "cmsi" => Some(true),
        "oauth2" if request.eq_ignore_ascii_case("OAuth2:Authorize") => Some(true),
        "oauth2" => Some(false),
        _ => None,
    };
    let is_sas = kind.eq_ignore_ascii_case("sas");
    let error = text_at(r, "ErrorNumber");
    AuthFacts {
        mfa: (is_sas && status == Status::Success).then_some(true),
        interactive,
        mfa_failed: status == Status::Failure && (is_sas || error.as_deref() == Some("500121")),
        risk: Vec::new(),
        client_app: None,
    }
}

/// `ModifiedProperties` (`Name` / `NewValue`) as Graph `targetResources[].modifiedProperties`
/// (`displayName` / `newValue`), so the Entra audit tables read them.
fn entra_targets(r: &Value) -> Vec<Value> {
    let props: Vec<Value> = get(r, "ModifiedProperties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    json!({
                        "displayName": str_at(p, "Name"),
                        "oldValue": str_at(p, "OldValue"),
                        "newValue": str_at(p, "NewValue"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    vec![json!({"displayName": target_name(r), "modifiedProperties": props})]
}

/// The display name among `Target[]` (UAL logs ids and names there; `Type` 1 is a name).
fn target_name(r: &Value) -> Option<String> {
    get(r, "Target")?
        .as_array()?
        .iter()
        .find(|t| text_at(t, "Type").as_deref() == Some("1"))
        .and_then(|t| string_at(t, "ID"))
}

/// Exchange (and other workloads') cmdlets and operations:
/// - LoggingChange: UAL ingestion or mailbox auditing switched off, mailbox audit retention
///   set below the 90-day default, audit
///   bypass granted, DLP policies removed.
/// - PrivilegeGrant: mailbox delegation (FullAccess, SendAs), management role assignments,
///   role group members, application impersonation.
/// - everything else (inbox rules, forwarding, `Set-CASMailbox`) ApiCall.
pub(crate) fn exchange_activity(operation: &str, r: &Value) -> Activity {
    let param = |n: &str| named(r, "Parameters", n);
    let is_false = |n: &str| param(n).and_then(parse_bool) == Some(false);
    match operation {
        "Set-AdminAuditLogConfig" if is_false("UnifiedAuditLogIngestionEnabled") => {
            Activity::LoggingChange
        }
        "Set-MailboxAuditBypassAssociation"
            if param("AuditBypassEnabled").and_then(parse_bool) == Some(true) =>
        {
            Activity::LoggingChange
        }
        "Set-Mailbox"
            if is_false("AuditEnabled")
                || param("AuditLogAgeLimit").is_some_and(short_retention) =>
        {
            Activity::LoggingChange
        }
        "Set-OrganizationConfig" if param("AuditDisabled").and_then(parse_bool) == Some(true) => {
            Activity::LoggingChange
        }
        "Remove-DlpCompliancePolicy"
        | "Disable-DlpCompliancePolicy"
        | "Remove-ProtectionAlert"
        | "Disable-ProtectionAlert" => Activity::LoggingChange,
        "Add-MailboxPermission"
        | "Add-RecipientPermission"
        | "New-ManagementRoleAssignment"
        | "Add-RoleGroupMember" => Activity::PrivilegeGrant,
        _ => Activity::ApiCall,
    }
}

/// An `AuditLogAgeLimit` (`D.HH:MM:SS` or `HH:MM:SS`) below the 90-day default.
fn short_retention(limit: &str) -> bool {
    let days = match limit.trim().split_once('.') {
        Some((d, _)) => d.parse::<u32>().ok(),
        None => Some(0),
    };
    days.is_some_and(|d| d < 90)
}

/// The acting user: `UserId` (a UPN for people, `NT AUTHORITY\SYSTEM (...)` or an app name
/// otherwise), `UserKey` (PUID or object id). `UserType`: 0 Regular, 1 Reserved, 2 Admin, 3
/// DcAdmin, 4 System, 5 Application, 6 ServicePrincipal, 7 CustomPolicy, 8 SystemPolicy
/// (numbers or their names).
fn actor(r: &Value) -> Actor {
    let user_id = string_at(r, "UserId");
    let user_key = string_at(r, "UserKey");
    let principal_type = match text_at(r, "UserType").as_deref() {
        Some("0" | "1" | "2" | "3" | "Regular" | "Reserved" | "Admin" | "DcAdmin") => {
            PrincipalType::User
        }
        Some("4" | "7" | "8" | "System" | "CustomPolicy" | "SystemPolicy") => {
            PrincipalType::Service
        }
        Some("5" | "6" | "Application" | "ServicePrincipal") => PrincipalType::ServicePrincipal,
        _ => PrincipalType::Unknown,
    };
    let email = user_id.clone().filter(|u| is_email(u));
    Actor {
        key: identity_key(email.as_deref(), &[user_id.as_deref(), user_key.as_deref()]),
        uid: user_key.or_else(|| user_id.clone()),
        name: user_id,
        email,
        principal_type,
        account: string_at(r, "OrganizationId").filter(|o| !is_nil_guid(o)),
        credential_id: None,
        session_issuer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: Value) -> IdentityEvent {
        let mut out = normalize(v).expect("normalizes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    fn login(op: &str, request: &str, extra: Value) -> Value {
        let mut r = json!({
            "CreationTime": "2023-07-23T06:25:34", "Id": "l-1", "Operation": op,
            "OrganizationId": "org-1", "RecordType": 15, "ResultStatus": "Success",
            "UserKey": "key-1", "UserType": 0, "Workload": "AzureActiveDirectory",
            "ClientIP": "[2001:db8::5]:443", "UserId": "Henrietta@Contoso.com",
            "ExtendedProperties": [{"Name": "UserAgent", "Value": "python-requests/2.28.2"},
                                   {"Name": "RequestType", "Value": request}]
        });
        if let (Some(o), Some(x)) = (r.as_object_mut(), extra.as_object()) {
            for (k, v) in x.iter() {
                o.insert(k, v.clone());
            }
        }
        r
    }

    #[test]
    fn sign_ins() {
        let e = one(login("UserLoggedIn", "Login:login", json!({})));
        assert_eq!(
            (e.activity, e.status, e.auth.interactive),
            (Activity::SignIn, Status::Success, Some(true))
        );
        assert!(e.is_interactive_signin_success());
        assert_eq!(e.actor.key, "henrietta@contoso.com");
        assert_eq!(e.src.ip, "2001:db8::5".parse().ok());
        assert_eq!(e.src.user_agent.as_deref(), Some("python-requests/2.28.2"));
        let e = one(login(
            "UserLoginFailed",
            "OAuth2:Token",
            json!({"ResultStatus": "Failed", "ErrorNumber": "50126", "LogonError": "InvalidUserNameOrPassword"}),
        ));
        assert_eq!(
            (e.status, e.status_detail.as_deref(), e.auth.interactive),
            (
                Status::Failure,
                Some("50126: InvalidUserNameOrPassword"),
                Some(false)
            )
        );
        let e = one(login("UserLoggedIn", "SAS:ProcessAuth", json!({})));
        assert_eq!(e.auth.mfa, Some(true));
        let e = one(login(
            "UserLoginFailed",
            "SAS:ProcessAuth",
            json!({"ErrorNumber": "500121"}),
        ));
        assert!(e.auth.mfa_failed);
    }

    #[test]
    fn log_analytics_office_activity_row() {
        let row = json!({
            "TimeGenerated": "2021-08-02T13:32:07Z", "OfficeId": "o-1", "Operation": "New-InboxRule",
            "OfficeWorkload": "Exchange", "ResultStatus": "True", "UserId": "pg@example.com",
            "UserType": "Regular", "Client_IPAddress": "1.2.3.4", "Type": "OfficeActivity",
            "Parameters": "[{\"Name\":\"ForwardTo\",\"Value\":\"x@evil.example\"}]"
        });
        assert_eq!(super::super::detect_kind(&row), Some(KIND));
        let e = one(row.clone());
        assert_eq!(
            (e.uid.as_str(), e.service.as_deref()),
            ("o-1", Some("Exchange"))
        );
        assert_eq!(e.src.ip, "1.2.3.4".parse().ok());
        assert_eq!(e.actor.principal_type, PrincipalType::User);
        assert!(
            e.targets
                .iter()
                .any(|t| t.uid.as_deref() == Some("x@evil.example"))
        );
        assert_eq!(*e.raw, row);
        let mut bad = row;
        bad.as_object_mut().map(|o| o.remove(&"OfficeId"));
        assert_eq!(
            normalize(bad),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "OfficeId"
            })
        );
    }

    #[test]
    fn client_ip_forms() {
        assert_eq!(
            client_ip("41.203.78.171:13738"),
            "41.203.78.171".parse().ok()
        );
        assert_eq!(
            client_ip("2a09:bac5:111:105::1a:89"),
            "2a09:bac5:111:105::1a:89".parse().ok()
        );
        assert_eq!(
            client_ip("[2a09:bac5::9b]:54809"),
            "2a09:bac5::9b".parse().ok()
        );
        assert_eq!(client_ip("104.28.196.199"), "104.28.196.199".parse().ok());
        assert_eq!(client_ip("not an ip:1"), None);
        assert_eq!(client_ip(""), None);
    }

    #[test]
    fn consent_in_the_ual() {
        let r = json!({
            "CreationTime": "2024-01-01T00:00:00", "Id": "c-1", "Operation": "Consent to application.",
            "Workload": "AzureActiveDirectory", "RecordType": 8, "ResultStatus": "Success",
            "UserId": "victim@contoso.com", "UserType": 0, "ObjectId": "sp-1",
            "ModifiedProperties": [
                {"Name": "ConsentContext.IsAdminConsent", "NewValue": "False", "OldValue": ""},
                {"Name": "ConsentAction.Permissions", "NewValue": "[] => [[Id: x, ClientId: sp-1, ConsentType: Principal, Scope:  Mail.Read offline_access, CreatedDateTime: ]]; ", "OldValue": ""},
                {"Name": "TargetId.ServicePrincipalNames", "NewValue": "11111111-2222-3333-4444-555555555555;https://evil.example", "OldValue": ""}
            ],
            "Target": [{"ID": "ServicePrincipal_sp-1", "Type": 2}, {"ID": "Evil Mail Reader", "Type": 1}]
        });
        let e = one(r);
        assert_eq!(e.activity, Activity::ConsentGrant);
        let o = e.oauth.expect("oauth");
        assert_eq!(o.scopes, ["Mail.Read", "offline_access"]);
        assert_eq!(o.app_name.as_deref(), Some("Evil Mail Reader"));
        assert_eq!(
            o.app_id.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert!(!o.admin_consent);
    }

    #[test]
    fn exchange_and_wrapper() {
        let inner = json!({
            "CreationTime": "2024-03-10T21:04:43", "Id": "x-1", "Operation": "Set-Mailbox",
            "Workload": "Exchange", "RecordType": 1, "ResultStatus": "True", "UserType": 2,
            "UserId": "adam@contoso.com", "ClientIP": "41.203.78.171:13738",
            "Parameters": [{"Name": "Identity", "Value": "v"},
                           {"Name": "ForwardingSmtpAddress", "Value": "smtp:x@evil.example"}]
        });
        let e = one(inner.clone());
        assert_eq!((e.activity, e.status), (Activity::ApiCall, Status::Success));
        assert!(
            e.targets
                .iter()
                .any(|t| t.kind.as_deref() == Some("forwarding_address")
                    && t.uid.as_deref() == Some("smtp:x@evil.example"))
        );
        let wrapper = json!({"RecordType": "ExchangeAdmin", "CreationDate": "/Date(1)/",
            "UserIds": "adam@contoso.com", "Operations": "Set-Mailbox",
            "AuditData": inner.to_string()});
        assert_eq!(super::super::detect_kind(&wrapper), Some(KIND));
        let w = one(wrapper);
        assert_eq!(*w.raw, inner);
        assert_eq!(w.uid, "x-1");

        let audit_off = json!({"CreationTime": "2023-05-20T10:54:05", "Id": "a-1",
            "Operation": "Set-AdminAuditLogConfig", "Workload": "Exchange",
            "Parameters": [{"Name": "UnifiedAuditLogIngestionEnabled", "Value": "False"}]});
        assert_eq!(one(audit_off).activity, Activity::LoggingChange);
        let bad = json!({"RecordType": "x", "Operations": "y", "AuditData": "{nope"});
        assert!(matches!(
            normalize(bad),
            Err(NormalizeError::Invalid {
                field: "AuditData",
                ..
            })
        ));
        let mut missing = inner;
        missing.as_object_mut().map(|o| o.remove(&"Id"));
        assert_eq!(
            normalize(missing),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "Id"
            })
        );
    }
}
