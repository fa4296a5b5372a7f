//! Azure activity log records (the Azure Resource Manager control plane) -> [`IdentityEvent`]s.
//! One normalizer for the four shapes the same event travels in:
//! - diagnostic-settings export to a storage account or event hub: `time`, `resourceId`,
//!   `operationName`, `category`, `resultType`, `resultSignature`, `callerIpAddress`,
//!   `correlationId`, `identity.claims`, `properties` (`eventCategory`, `message`, `entity`);
//! - the REST `eventData` (`eventTimestamp`, `eventDataId`, `operationName.value`,
//!   `status.value`, `caller`, `claims`, `httpRequest.clientIpAddress`) and the activity log
//!   alert payload (the same names, plain strings, `claims` as a JSON string);
//! - a Log Analytics `AzureActivity` row (`TimeGenerated`, `OperationNameValue`,
//!   `CategoryValue`, `ActivityStatusValue`, `Caller`, `CallerIpAddress`, `Claims`).
//!
//! Mapping: the first present of each list below (see [`first`]); a field may be a string or
//! a `{value, localizedValue}` object. time = `time` / `eventTimestamp` / `TimeGenerated`;
//! action = `OperationNameValue` / `operationName`; uid = `eventDataId` / `EventDataId`, else
//! (the export carries none) `correlationId/operationName/resultType@time`; service = the
//! resource provider (`resourceProviderName` / `ResourceProviderValue`, else the operation's
//! first segment); status = `resultType` / `status` / `ActivityStatusValue` (`Start`,
//! `Accept`, `Started`, `Active` are `Unknown`: the operation has not finished); account = the
//! tenant, else the subscription; target = `resourceId`.
//! Actor: the token claims (UPN, object id, app id, tenant) and `caller`; a token without a
//! UPN whose `idtyp` is `app` (or whose `authorization.evidence.principalType` is
//! `ServicePrincipal`) is a service principal. Activities: see [`activity`].
//!
//! To classify one more operation: add it (lowercase) to the table in [`activity`].

use crate::json::{JsonContainerTrait, JsonValueTrait, Raw, Value};

use super::NormalizeError;
use super::util::{
    class_of, endpoint, get, identity_key, is_email, parse_time, require_object, str_at, truncate,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, PrincipalType, RecordKind, Status, Target,
};

const KIND: RecordKind = RecordKind::AzureActivity;

const UPN_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";
const NAME_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
const OID_CLAIM: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
const TID_CLAIM: &str = "http://schemas.microsoft.com/identity/claims/tenantid";

/// Normalizes one activity log record into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let mut event = build(&raw)?;
    event.raw = raw;
    Ok(vec![event])
}

/// The text of the first of `paths` present, where a value may be a string or an object
/// with a `value` (the REST API's localizable strings).
pub(crate) fn first(r: &Value, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| {
        str_at(r, p)
            .or_else(|| str_at(r, &format!("{p}.value")))
            .map(str::to_owned)
    })
}

fn build(r: &Value) -> Result<IdentityEvent, NormalizeError> {
    let time_field = ["time", "eventTimestamp", "TimeGenerated"]
        .into_iter()
        .find(|f| get(r, f).is_some_and(|v| !v.is_null()))
        .ok_or(NormalizeError::Missing {
            kind: KIND,
            field: "time",
        })?;
    let time_text =
        get(r, time_field)
            .and_then(Value::as_str)
            .ok_or_else(|| NormalizeError::Invalid {
                kind: KIND,
                field: "time",
                message: "expected a string".to_owned(),
            })?;
    let time = parse_time(time_text.trim()).ok_or_else(|| NormalizeError::Invalid {
        kind: KIND,
        field: "time",
        message: format!("not an RFC 3339 timestamp: {:?}", truncate(time_text, 64)),
    })?;
    let action =
        first(r, &["OperationNameValue", "operationName"]).ok_or(NormalizeError::Missing {
            kind: KIND,
            field: "operationName",
        })?;
    let result = first(r, &["resultType", "status", "ActivityStatusValue"]);
    let status = match result.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("success" | "succeeded") => Status::Success,
        Some("failure" | "failed") => Status::Failure,
        _ => Status::Unknown,
    };
    let status_detail = (status == Status::Failure)
        .then(|| {
            first(
                r,
                &[
                    "resultSignature",
                    "subStatus",
                    "ActivitySubstatusValue",
                    "properties.statusCode",
                ],
            )
        })
        .flatten();
    let uid = match first(r, &["eventDataId", "EventDataId", "properties.eventDataId"]) {
        Some(id) => id,
        None => format!(
            "{}/{}/{}@{}",
            first(r, &["correlationId", "CorrelationId"]).unwrap_or_default(),
            action,
            result.as_deref().unwrap_or_default(),
            time_text.trim()
        ),
    };
    let service = first(r, &["resourceProviderName", "ResourceProviderValue"]).or_else(|| {
        action
            .split_once('/')
            .map(|(p, _)| p.to_owned())
            .filter(|p| !p.is_empty())
    });
    let claims = claims(r);
    let actor = actor(r, &claims);
    let ip = first(
        r,
        &[
            "callerIpAddress",
            "CallerIpAddress",
            "httpRequest.clientIpAddress",
        ],
    )
    .or_else(|| http_request_ip(r))
    .or_else(|| str_at(&claims, "ipaddr").map(str::to_owned));
    let account = actor
        .account
        .clone()
        .or_else(|| first(r, &["tenantId", "TenantId"]))
        .or_else(|| first(r, &["subscriptionId", "SubscriptionId"]));
    let region = first(r, &["location", "Location"]).filter(|l| l != "global");
    let activity = activity(&action);
    let targets = first(r, &["resourceId", "ResourceId", "_ResourceId"])
        .map(|id| {
            vec![Target {
                name: id.rsplit('/').next().map(str::to_owned),
                kind: resource_type(&action),
                uid: Some(id),
            }]
        })
        .unwrap_or_default();
    Ok(IdentityEvent {
        time,
        kind: KIND,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account,
        region,
        src: endpoint(ip.as_deref(), None),
        actor,
        action,
        service,
        targets,
        auth: AuthFacts::default(),
        oauth: None,
        uid,
        raw: Raw::default(),
    })
}

/// The token claims: `identity.claims` (export), `claims` (REST: an object; alert payload: a
/// JSON string), `Claims_d` / `Claims` (Log Analytics). `Null` when none parse.
fn claims(r: &Value) -> Value {
    for p in ["identity.claims", "claims", "Claims_d", "Claims"] {
        match get(r, p) {
            Some(v) if v.is_object() => return v.clone(),
            Some(v) => {
                if let Some(s) = v.as_str()
                    && let Ok(v) = crate::json::parse(s.as_bytes())
                    && v.is_object()
                {
                    return v;
                }
            }
            None => {}
        }
    }
    Value::new()
}

/// `httpRequest` logged as a JSON string (activity log alert payload).
fn http_request_ip(r: &Value) -> Option<String> {
    let s = str_at(r, "httpRequest")?;
    let v = crate::json::parse(s.as_bytes()).ok()?;
    str_at(&v, "clientIpAddress").map(str::to_owned)
}

/// A claim by full URI or short name (`upn`, `oid`, `tid`).
fn claim<'a>(claims: &'a Value, uri: &str, short: &str) -> Option<&'a str> {
    claims
        .as_object()
        .and_then(|o| o.get(&uri).or_else(|| o.get(&short)))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn actor(r: &Value, claims: &Value) -> Actor {
    let caller = first(r, &["caller", "Caller"]);
    let upn = claim(claims, UPN_CLAIM, "upn")
        .or_else(|| claim(claims, NAME_CLAIM, "unique_name").filter(|n| is_email(n)))
        .map(str::to_owned)
        .or_else(|| caller.clone().filter(|c| is_email(c)));
    let oid = claim(claims, OID_CLAIM, "oid").map(str::to_owned);
    let app_id = claim(claims, "appid", "azp").map(str::to_owned);
    let evidence_type = first(
        r,
        &[
            "identity.authorization.evidence.principalType",
            "authorization.evidence.principalType",
        ],
    );
    let principal_type = if upn.is_some() {
        PrincipalType::User
    } else if claim(claims, "idtyp", "idtyp") == Some("app")
        || evidence_type.as_deref() == Some("ServicePrincipal")
    {
        PrincipalType::ServicePrincipal
    } else if evidence_type.as_deref() == Some("User") {
        PrincipalType::User
    } else if oid.is_some() || caller.is_some() {
        PrincipalType::Unknown
    } else {
        PrincipalType::Service
    };
    let uid = oid.clone().or_else(|| caller.clone());
    let name = claim(claims, "name", "name")
        .map(str::to_owned)
        .or_else(|| upn.clone())
        .or_else(|| caller.clone());
    Actor {
        key: identity_key(
            upn.as_deref(),
            &[oid.as_deref(), caller.as_deref(), app_id.as_deref()],
        ),
        uid,
        name,
        email: upn,
        principal_type,
        account: claim(claims, TID_CLAIM, "tid").map(str::to_owned),
        credential_id: None,
        session_issuer: app_id,
    }
}

/// `MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE` -> `MICROSOFT.NETWORK/NETWORKSECURITYGROUPS`.
fn resource_type(action: &str) -> Option<String> {
    action
        .rsplit_once('/')
        .map(|(t, _)| t.to_owned())
        .filter(|t| t.contains('/'))
}

/// The activity of an operation (case-insensitive; everything else is `ApiCall`):
/// - PrivilegeGrant: role assignments and custom role definitions written, classic
///   administrators added, the global admin's `elevateAccess`.
/// - LoggingChange: diagnostic settings and log profiles deleted, activity log alerts and Log
///   Analytics workspaces deleted, Defender alert suppression rules written, flow logs
///   deleted.
/// - CredentialCreate: storage account keys regenerated.
pub(crate) fn activity(operation: &str) -> Activity {
    let op = operation.trim().to_ascii_lowercase();
    match op.as_str() {
        "microsoft.authorization/roleassignments/write"
        | "microsoft.authorization/roledefinitions/write"
        | "microsoft.authorization/classicadministrators/write"
        | "microsoft.authorization/elevateaccess/action" => Activity::PrivilegeGrant,
        "microsoft.insights/logprofiles/delete"
        | "microsoft.insights/activitylogalerts/delete"
        | "microsoft.operationalinsights/workspaces/delete"
        | "microsoft.security/alertssuppressionrules/write"
        | "microsoft.network/networkwatchers/flowlogs/delete" => Activity::LoggingChange,
        // Diagnostic settings live under any resource: `.../providers/microsoft.insights/...`.
        _ if op.ends_with("microsoft.insights/diagnosticsettings/delete") => {
            Activity::LoggingChange
        }
        "microsoft.storage/storageaccounts/regeneratekey/action" => Activity::CredentialCreate,
        _ => Activity::ApiCall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonValueMutTrait, json};

    fn one(v: Value) -> IdentityEvent {
        let mut out = normalize(v).expect("normalizes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    fn export(op: &str, result: &str, claims: Value) -> Value {
        json!({
            "time": "2026-03-01T10:00:00.1234567Z",
            "resourceId": "/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG1",
            "operationName": op, "category": "Administrative", "resultType": result,
            "resultSignature": "Failed.Forbidden", "callerIpAddress": "198.51.100.9",
            "correlationId": "c-1", "level": "Information", "location": "westeurope",
            "identity": {"claims": claims},
            "properties": {"eventCategory": "Administrative"}
        })
    }

    fn user_claims() -> Value {
        json!({UPN_CLAIM: "Alice@Contoso.com", OID_CLAIM: "oid-1", TID_CLAIM: "tenant-1",
               "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "name": "Alice"})
    }

    #[test]
    fn export_record_user_and_status() {
        let e = one(export(
            "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
            "Success",
            user_claims(),
        ));
        assert_eq!(e.activity, Activity::PrivilegeGrant);
        assert_eq!(e.status, Status::Success);
        assert_eq!(e.actor.key, "alice@contoso.com");
        assert_eq!(e.actor.principal_type, PrincipalType::User);
        assert_eq!(e.account.as_deref(), Some("tenant-1"));
        assert_eq!(e.service.as_deref(), Some("MICROSOFT.AUTHORIZATION"));
        assert_eq!(e.region.as_deref(), Some("westeurope"));
        assert_eq!(e.src.ip, "198.51.100.9".parse().ok());
        assert_eq!(
            e.uid,
            "c-1/MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE/Success@2026-03-01T10:00:00.1234567Z"
        );
        assert_eq!(e.targets[0].name.as_deref(), Some("NSG1"));

        let e = one(export("x/y/write", "Failure", user_claims()));
        assert_eq!(
            (e.status, e.status_detail.as_deref()),
            (Status::Failure, Some("Failed.Forbidden"))
        );
        let e = one(export("x/y/write", "Start", user_claims()));
        assert_eq!((e.status, e.status_detail), (Status::Unknown, None));
    }

    #[test]
    fn service_principal_and_rest_shape() {
        let e = one(export(
            "Microsoft.Insights/diagnosticSettings/delete",
            "Success",
            json!({OID_CLAIM: "sp-oid", "appid": "app-1", "idtyp": "app"}),
        ));
        assert_eq!(e.activity, Activity::LoggingChange);
        assert_eq!(
            (e.actor.principal_type, e.actor.key.as_str()),
            (PrincipalType::ServicePrincipal, "sp-oid")
        );
        let rest = json!({
            "eventTimestamp": "2026-03-01T10:00:00Z", "eventDataId": "ed-1",
            "operationName": {"value": "Microsoft.Authorization/elevateAccess/action", "localizedValue": "Elevate"},
            "status": {"value": "Succeeded"}, "caller": "bob@contoso.com",
            "claims": "{\"upn\": \"bob@contoso.com\"}",
            "resourceProviderName": {"value": "Microsoft.Authorization"},
            "httpRequest": {"clientIpAddress": "203.0.113.5"}, "subscriptionId": "sub-1"
        });
        assert_eq!(super::super::detect_kind(&rest), Some(KIND));
        let e = one(rest);
        assert_eq!(e.uid, "ed-1");
        assert_eq!(e.activity, Activity::PrivilegeGrant);
        assert_eq!(e.status, Status::Success);
        assert_eq!(e.actor.key, "bob@contoso.com");
        assert_eq!(e.account.as_deref(), Some("sub-1"));
        assert_eq!(e.src.raw.as_deref(), Some("203.0.113.5"));
    }

    #[test]
    fn log_analytics_row() {
        let row = json!({
            "TimeGenerated": "2026-03-01T10:00:00Z", "EventDataId": "ed-2",
            "OperationName": "Create role assignment",
            "OperationNameValue": "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
            "CategoryValue": "Administrative", "ActivityStatusValue": "Failure",
            "ActivitySubstatusValue": "Forbidden", "Caller": "carol@contoso.com",
            "CallerIpAddress": "192.0.2.1", "Claims": "{}", "TenantId": "t-2"
        });
        assert_eq!(super::super::detect_kind(&row), Some(KIND));
        let e = one(row);
        assert_eq!(e.action, "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE");
        assert_eq!(
            (e.status, e.status_detail.as_deref()),
            (Status::Failure, Some("Forbidden"))
        );
        assert_eq!(e.actor.key, "carol@contoso.com");
        assert_eq!(e.account.as_deref(), Some("t-2"));
    }

    #[test]
    fn activity_table_and_missing_fields() {
        assert_eq!(
            activity(
                "MICROSOFT.NETWORK/NSG/PROVIDERS/MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/DELETE"
            ),
            Activity::LoggingChange
        );
        assert_eq!(
            activity("Microsoft.Storage/storageAccounts/regenerateKey/action"),
            Activity::CredentialCreate
        );
        assert_eq!(
            activity("MICROSOFT.KEYVAULT/VAULTS/SECRETS/WRITE"),
            Activity::ApiCall
        );
        let mut r = export("a/b/write", "Success", Value::new());
        r.as_object_mut().map(|o| o.remove(&"operationName"));
        assert_eq!(
            normalize(r.clone()),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "operationName"
            })
        );
        r["time"] = json!("yesterday");
        assert!(matches!(
            normalize(r),
            Err(NormalizeError::Invalid { field: "time", .. })
        ));
        assert!(matches!(
            normalize(json!(1)),
            Err(NormalizeError::Invalid { field: "$", .. })
        ));
    }
}
