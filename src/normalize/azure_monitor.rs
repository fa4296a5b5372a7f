//! Entra sign-in and audit logs as exported by Azure Monitor diagnostic settings (to a
//! storage account or event hub: `time`, `category`, `tenantId`, `properties`) ->
//! [`IdentityEvent`]s. `properties` is the Graph `signIn` / `directoryAudit` object, so the
//! work is done by [`super::entra_signin::build`] and [`super::entra_audit::build`]; this
//! file adds what the envelope knows:
//! - time = `time`; account = `tenantId`; `callerIpAddress` when `properties` has no IP;
//! - the category decides interactivity: `SignInLogs` is interactive,
//!   `NonInteractiveUserSignInLogs`, `ServicePrincipalSignInLogs` and
//!   `ManagedIdentitySignInLogs` are not; service = the category;
//! - `resultType` "0" is success (when `properties.status` is absent).
//!
//! Also accepted: rows of the Log Analytics `AuditLogs` table (PascalCase columns,
//! `InitiatedBy` / `TargetResources` / `AdditionalDetails` as JSON strings), as Sentinel
//! exports and the OTRF datasets hold them.
//!
//! To add a category: a match arm in [`normalize`].

use crate::json::{Fields, JsonValueTrait, Object, Raw, Value};

use super::NormalizeError;
use super::util::{is_nil_guid, req_str, req_time, require_object, str_at, string_at, text_at};
use super::{entra_audit, entra_signin};
use crate::model::{IdentityEvent, RecordKind, Status};

/// Normalizes one Azure Monitor export record (or Log Analytics AuditLogs row) into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, RecordKind::AzureMonitorSignin)?;
    if raw.get("properties").is_none() && raw.get("ActivityDisplayName").is_some() {
        return log_analytics_audit(raw.into_value());
    }
    let kind_guess = match str_at(&raw, "category") {
        Some("AuditLogs") => RecordKind::AzureMonitorAudit,
        _ => RecordKind::AzureMonitorSignin,
    };
    let category = req_str(&raw, "category", kind_guess)?;
    let props = match raw.get("properties") {
        Some(p) if p.is_object() => p,
        Some(other) => {
            return Err(NormalizeError::Invalid {
                kind: kind_guess,
                field: "properties",
                message: format!(
                    "expected a JSON object, found {}",
                    super::util::type_name(other)
                ),
            });
        }
        None => {
            return Err(NormalizeError::Missing {
                kind: kind_guess,
                field: "properties",
            });
        }
    };
    let time = req_time(&raw, "time", kind_guess)?;
    let mut event = match category {
        "SignInLogs"
        | "NonInteractiveUserSignInLogs"
        | "ServicePrincipalSignInLogs"
        | "ManagedIdentitySignInLogs" => {
            let mut e = entra_signin::build(
                &Fields::new(props),
                RecordKind::AzureMonitorSignin,
                Some(time),
            )
            .map_err(in_properties)?;
            e.auth.interactive = Some(category == "SignInLogs");
            e.service = Some(category.to_owned());
            if e.status == Status::Unknown {
                match text_at(&raw, "resultType") {
                    Some(code) if code == "0" => e.status = Status::Success,
                    Some(code) => {
                        e.status = Status::Failure;
                        e.status_detail = Some(match str_at(&raw, "resultDescription") {
                            Some(d) => format!("{code}: {d}"),
                            None => code,
                        });
                    }
                    None => {}
                }
            }
            e
        }
        "AuditLogs" => entra_audit::build(
            &Fields::new(props),
            RecordKind::AzureMonitorAudit,
            Some(time),
        )
        .map_err(in_properties)?,
        other => {
            return Err(NormalizeError::Invalid {
                kind: kind_guess,
                field: "category",
                message: format!("not an Entra sign-in or audit category: {other:?}"),
            });
        }
    };
    if event.src.raw.is_none()
        && let Some(ip) = str_at(&raw, "callerIpAddress")
    {
        let ua = event.src.user_agent.take();
        event.src = super::util::endpoint(Some(ip), ua.as_deref());
    }
    if let Some(tenant) = string_at(&raw, "tenantId").filter(|t| !is_nil_guid(t)) {
        event.account = Some(tenant);
    }
    event.raw = raw;
    Ok(vec![event])
}

/// Names a field of `properties` by its path from the record.
fn in_properties(e: NormalizeError) -> NormalizeError {
    rename_field(e, |field| match field {
        "id" => "properties.id",
        "activityDisplayName" => "properties.activityDisplayName",
        other => other,
    })
}

fn rename_field(e: NormalizeError, f: impl Fn(&'static str) -> &'static str) -> NormalizeError {
    match e {
        NormalizeError::Missing { kind, field } => NormalizeError::Missing {
            kind,
            field: f(field),
        },
        NormalizeError::Invalid {
            kind,
            field,
            message,
        } => NormalizeError::Invalid {
            kind,
            field: f(field),
            message,
        },
        other => other,
    }
}

/// A Log Analytics `AuditLogs` row, rewritten into `directoryAudit` shape for
/// [`entra_audit::build`]; `raw` stays the row as it was.
fn log_analytics_audit(raw: Value) -> Result<Vec<IdentityEvent>, NormalizeError> {
    const KIND: RecordKind = RecordKind::AzureMonitorAudit;
    let time = req_time(&raw, "ActivityDateTime", KIND)
        .or_else(|_| req_time(&raw, "TimeGenerated", KIND))?;
    let mut audit = Object::new();
    for (column, field) in [
        ("Id", "id"),
        ("ActivityDisplayName", "activityDisplayName"),
        ("Category", "category"),
        ("Result", "result"),
        ("ResultReason", "resultReason"),
        ("LoggedByService", "loggedByService"),
        ("CorrelationId", "correlationId"),
    ] {
        if let Some(v) = raw.get(column) {
            audit.insert(field, v.clone());
        }
    }
    for (column, field, static_field) in [
        ("InitiatedBy", "initiatedBy", "InitiatedBy"),
        ("TargetResources", "targetResources", "TargetResources"),
        (
            "AdditionalDetails",
            "additionalDetails",
            "AdditionalDetails",
        ),
    ] {
        let value = match raw.get(column) {
            Some(v) if v.as_str().is_some_and(|s| !s.trim().is_empty()) => {
                let s = v.as_str().unwrap_or_default();
                crate::json::parse(s.as_bytes()).map_err(|e| NormalizeError::Invalid {
                    kind: KIND,
                    field: static_field,
                    message: format!("not JSON: {e}"),
                })?
            }
            Some(v) => v.clone(),
            None => continue,
        };
        audit.insert(field, value);
    }
    // Field names in errors are the row's columns: rename them back.
    let audit = Value::from(audit);
    let mut event = entra_audit::build(&Fields::new(&audit), KIND, Some(time))
        .map_err(|e| rename_field(e, column_of))?;
    if event.src.user_agent.is_none() {
        event.src.user_agent = string_at(&raw, "UserAgent");
    }
    // Anonymised exports (OTRF) carry the all-zero tenant: no tenant at all.
    event.account = string_at(&raw, "AADTenantId")
        .or_else(|| string_at(&raw, "TenantId"))
        .filter(|t| !is_nil_guid(t));
    event.raw = raw.into();
    Ok(vec![event])
}

/// The row's column of a field of the rewritten row, for errors.
fn column_of(field: &'static str) -> &'static str {
    match field {
        "id" => "Id",
        "activityDateTime" => "ActivityDateTime",
        "activityDisplayName" => "ActivityDisplayName",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonValueMutTrait, json};
    use crate::model::{Activity, PrincipalType};

    fn signin(category: &str) -> Value {
        json!({
            "time": "2024-04-01T12:00:00.1234567Z", "resourceId": "/tenants/t-1/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity", "category": category, "tenantId": "t-1",
            "resultType": "50126", "resultDescription": "Invalid username or password",
            "callerIpAddress": "203.0.113.50",
            "properties": {"id": "p-1", "createdDateTime": "2024-04-01T11:59:59Z",
                "userPrincipalName": "Bob@Contoso.com", "userId": "u-2", "isInteractive": true,
                "appId": "a-1", "ipAddress": "", "clientAppUsed": "Mobile Apps and Desktop clients"}
        })
    }

    #[test]
    fn category_decides_interactivity_and_result_type_status() {
        let e = normalize(signin("SignInLogs")).expect("ok").remove(0);
        assert_eq!(e.kind, RecordKind::AzureMonitorSignin);
        assert_eq!(
            (e.auth.interactive, e.status),
            (Some(true), Status::Failure)
        );
        assert_eq!(
            e.status_detail.as_deref(),
            Some("50126: Invalid username or password")
        );
        assert_eq!(e.src.raw.as_deref(), Some("203.0.113.50"));
        assert_eq!(e.account.as_deref(), Some("t-1"));
        assert_eq!(e.time.to_rfc3339(), "2024-04-01T12:00:00.123456700+00:00");
        let e = normalize(signin("NonInteractiveUserSignInLogs"))
            .expect("ok")
            .remove(0);
        assert_eq!(e.auth.interactive, Some(false));
        assert_eq!(e.service.as_deref(), Some("NonInteractiveUserSignInLogs"));
    }

    #[test]
    fn audit_record_and_errors() {
        let v = json!({"time": "2024-04-01T12:00:00Z", "category": "AuditLogs", "tenantId": "t-1",
            "properties": {"id": "Directory_x", "activityDisplayName": "Add member to role",
                "activityDateTime": "2024-04-01T12:00:00Z", "result": "success",
                "initiatedBy": {"user": {"id": "u-1", "userPrincipalName": "admin@contoso.com"}},
                "targetResources": [{"id": "u-9", "type": "User", "userPrincipalName": "eve@contoso.com"}]}});
        let e = normalize(v.clone()).expect("ok").remove(0);
        assert_eq!(
            (e.kind, e.activity),
            (RecordKind::AzureMonitorAudit, Activity::PrivilegeGrant)
        );
        assert_eq!(e.targets[0].name.as_deref(), Some("eve@contoso.com"));
        let mut bad = v.clone();
        bad["properties"].as_object_mut().map(|o| o.remove(&"id"));
        assert_eq!(
            normalize(bad),
            Err(NormalizeError::Missing {
                kind: RecordKind::AzureMonitorAudit,
                field: "properties.id"
            })
        );
        let mut bad = v;
        bad["category"] = json!("ProvisioningLogs");
        assert!(matches!(
            normalize(bad),
            Err(NormalizeError::Invalid {
                field: "category",
                ..
            })
        ));
    }

    #[test]
    fn log_analytics_row_with_json_string_columns() {
        let row = json!({"TenantId": "t-0", "ActivityDisplayName": "Add delegated permission grant",
            "ActivityDateTime": "2021-08-02T13:27:20.017Z", "Id": "Directory_9", "Result": "success",
            "Category": "ApplicationManagement",
            "InitiatedBy": "{\"user\":{\"id\":\"u-1\",\"userPrincipalName\":\"pgustavo@simulandlabs.com\"}}",
            "TargetResources": "[{\"id\":\"g\",\"displayName\":\"Microsoft Graph\",\"type\":\"ServicePrincipal\",\"modifiedProperties\":[{\"displayName\":\"DelegatedPermissionGrant.Scope\",\"oldValue\":null,\"newValue\":\"\\\"User.Read Mail.ReadWrite\\\"\"}]}]"});
        assert_eq!(
            super::super::detect_kind(&row),
            Some(RecordKind::AzureMonitorAudit)
        );
        let e = normalize(row.clone()).expect("ok").remove(0);
        assert_eq!(e.activity, Activity::ConsentGrant);
        assert_eq!(e.actor.principal_type, PrincipalType::User);
        assert_eq!(
            e.oauth.map(|o| o.scopes),
            Some(vec!["User.Read".to_owned(), "Mail.ReadWrite".to_owned()])
        );
        assert_eq!(*e.raw, row);
        let mut bad = row;
        bad["InitiatedBy"] = json!("{not json");
        assert!(matches!(
            normalize(bad.clone()),
            Err(NormalizeError::Invalid {
                field: "InitiatedBy",
                ..
            })
        ));
        bad.as_object_mut().map(|o| o.remove(&"Id"));
        bad["InitiatedBy"] = json!(null);
        assert_eq!(
            normalize(bad),
            Err(NormalizeError::Missing {
                kind: RecordKind::AzureMonitorAudit,
                field: "Id"
            })
        );
    }
}
