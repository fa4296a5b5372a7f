//! GCP Cloud Audit Logs (`LogEntry` with a `protoPayload` of type
//! `google.cloud.audit.AuditLog`) -> [`IdentityEvent`]s.
//!
//! Mapping: uid = `insertId`, time = `timestamp`, action = `protoPayload.methodName`,
//! service = `protoPayload.serviceName`, actor = `authenticationInfo.principalEmail` (a
//! `*.gserviceaccount.com` email is a ServicePrincipal, others Users; the first
//! `serviceAccountDelegationInfo` principal is the session issuer; `serviceAccountKeyName` is
//! the credential), src = `requestMetadata.callerIp` (also `private`, `gce-internal-ip`:
//! kept raw, not parsed) and `callerSuppliedUserAgent`, status = `status.code` non-zero ->
//! Failure (detail = message or code), account = `resource.labels.project_id` (else the
//! parent in `logName`), targets = `resourceName`. Workspace logins exported to Cloud
//! Logging (`google.login.LoginService.loginSuccess`/`loginFailure`) are sign-ins, with
//! `is_suspicious` and `login_challenge_method` read from `metadata.event[]`.
//!
//! To classify one more method: add it to [`activity`].

use crate::json::{JsonContainerTrait, JsonValueTrait, Raw, Value};

use super::NormalizeError;
use super::util::{
    bool_at, class_of, endpoint, get, identity_key, is_email, req_id, req_str, req_time,
    require_object, str_at, string_at, text_at,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, PrincipalType, RecordKind, Status, Target,
};

const KIND: RecordKind = RecordKind::GcpAudit;
const AUDIT_LOG_TYPE: &str = "type.googleapis.com/google.cloud.audit.AuditLog";

/// Normalizes one audit `LogEntry` into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let p = match raw.get("protoPayload") {
        Some(p) if p.is_object() => p,
        Some(other) => {
            return Err(NormalizeError::Invalid {
                kind: KIND,
                field: "protoPayload",
                message: format!(
                    "expected a JSON object, found {}",
                    super::util::type_name(other)
                ),
            });
        }
        None => {
            return Err(NormalizeError::Missing {
                kind: KIND,
                field: "protoPayload",
            });
        }
    };
    if let Some(t) = str_at(p, "@type")
        && t != AUDIT_LOG_TYPE
    {
        return Err(NormalizeError::Invalid {
            kind: KIND,
            field: "protoPayload.@type",
            message: format!("not an AuditLog: {}", super::util::truncate(t, 80)),
        });
    }
    let uid = req_id(&raw, "insertId", KIND)?;
    let time = req_time(&raw, "timestamp", KIND)?;
    let action = req_str(p, "methodName", KIND)
        .map_err(|e| rename(e, "protoPayload.methodName"))?
        .to_owned();
    let activity = activity(&action, p);
    let is_login = action.starts_with("google.login.LoginService.");

    let (mut status, mut status_detail) = match text_at(p, "status.code") {
        Some(code) if code != "0" => (
            Status::Failure,
            Some(string_at(p, "status.message").unwrap_or(code)),
        ),
        _ => (Status::Success, None),
    };
    let login_event = get(p, "metadata.event")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    if action == "google.login.LoginService.loginFailure" {
        status = Status::Failure;
        status_detail =
            status_detail.or_else(|| login_event.and_then(|e| param_str(e, "login_failure_type")));
    }
    let auth = match (is_login, login_event) {
        (true, ev) => {
            let methods = ev
                .map(|e| param_list(e, "login_challenge_method"))
                .unwrap_or_default();
            let suspicious = ev
                .and_then(|e| param(e, "is_suspicious"))
                .and_then(|p| bool_at(p, "boolValue"));
            AuthFacts {
                mfa: (!methods.is_empty()).then(|| methods.iter().any(|m| m != "password")),
                interactive: Some(true),
                mfa_failed: false,
                risk: if suspicious == Some(true) {
                    vec!["is_suspicious".to_owned()]
                } else {
                    Vec::new()
                },
                client_app: None,
            }
        }
        (false, _) => AuthFacts::default(),
    };

    let targets = string_at(p, "resourceName")
        .map(|r| {
            vec![Target {
                uid: Some(r),
                name: None,
                kind: string_at(&raw, "resource.type"),
            }]
        })
        .unwrap_or_default();
    let account = string_at(&raw, "resource.labels.project_id").or_else(|| {
        let log = str_at(&raw, "logName")?;
        let mut parts = log.splitn(3, '/');
        Some(format!("{}/{}", parts.next()?, parts.next()?))
    });

    Ok(IdentityEvent {
        time,
        kind: KIND,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        actor: actor(p, account.as_deref()),
        account,
        region: string_at(&raw, "resource.labels.location")
            .or_else(|| string_at(&raw, "resource.labels.region"))
            .or_else(|| string_at(&raw, "resource.labels.zone")),
        src: endpoint(
            str_at(p, "requestMetadata.callerIp"),
            str_at(p, "requestMetadata.callerSuppliedUserAgent"),
        ),
        action,
        service: string_at(p, "serviceName"),
        targets,
        auth,
        oauth: None,
        uid,
        raw,
    })
    .map(|e| vec![e])
}

fn rename(e: NormalizeError, field: &'static str) -> NormalizeError {
    match e {
        NormalizeError::Missing { kind, .. } => NormalizeError::Missing { kind, field },
        NormalizeError::Invalid { kind, message, .. } => NormalizeError::Invalid {
            kind,
            field,
            message,
        },
        other => other,
    }
}

/// `principalEmail` (key, lowercased), else `principalSubject`; service accounts are
/// ServicePrincipals; a delegation chain's first principal is the session issuer.
fn actor(p: &Value, project: Option<&str>) -> Actor {
    let email = string_at(p, "authenticationInfo.principalEmail");
    let subject = string_at(p, "authenticationInfo.principalSubject");
    let principal_type = match email.as_deref() {
        Some(e) if e.ends_with(".gserviceaccount.com") => PrincipalType::ServicePrincipal,
        Some(_) => PrincipalType::User,
        None if subject.is_some() => PrincipalType::Unknown,
        None => PrincipalType::Unknown,
    };
    let issuer = get(p, "authenticationInfo.serviceAccountDelegationInfo")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|d| string_at(d, "firstPartyPrincipal.principalEmail"));
    let mail = email.clone().filter(|e| is_email(e));
    Actor {
        key: identity_key(mail.as_deref(), &[email.as_deref(), subject.as_deref()]),
        uid: email.clone().or(subject),
        name: None,
        email: mail,
        principal_type,
        account: project.map(str::to_owned),
        credential_id: string_at(p, "authenticationInfo.serviceAccountKeyName"),
        session_issuer: issuer,
    }
}

/// The activity of a `methodName` (best effort; else `ApiCall`):
/// - SignIn: `google.login.LoginService.loginSuccess` / `loginFailure`.
/// - CredentialCreate: service account keys created or uploaded, Workspace password changes.
/// - PrivilegeGrant: any `SetIamPolicy` whose `serviceData.policyDelta` adds a binding (or
///   without a delta), Workspace role assignment.
/// - LoggingChange: sinks, exclusions and log buckets deleted/updated, and subnetwork
///   changes that turn flow logs off.
pub(crate) fn activity(method: &str, p: &Value) -> Activity {
    let short = method.rsplit('.').next().unwrap_or(method);
    match method {
        "google.login.LoginService.loginSuccess" | "google.login.LoginService.loginFailure" => {
            return Activity::SignIn;
        }
        "google.iam.admin.v1.CreateServiceAccountKey"
        | "google.iam.admin.v1.UploadServiceAccountKey"
        | "google.admin.AdminService.changePassword" => return Activity::CredentialCreate,
        "google.admin.AdminService.assignRole"
        | "google.admin.AdminService.grantAdminPrivilege" => {
            return Activity::PrivilegeGrant;
        }
        "google.logging.v2.ConfigServiceV2.DeleteSink"
        | "google.logging.v2.ConfigServiceV2.UpdateSink"
        | "google.logging.v2.ConfigServiceV2.CreateExclusion"
        | "google.logging.v2.ConfigServiceV2.UpdateExclusion"
        | "google.logging.v2.ConfigServiceV2.DeleteBucket"
        | "google.logging.v2.ConfigServiceV2.UpdateBucket" => return Activity::LoggingChange,
        _ => {}
    }
    if short.eq_ignore_ascii_case("SetIamPolicy") {
        let deltas = get(p, "serviceData.policyDelta.bindingDeltas")
            .and_then(Value::as_array)
            .map(|a| &a[..])
            .unwrap_or_default();
        if deltas.is_empty() || deltas.iter().any(|d| str_at(d, "action") == Some("ADD")) {
            return Activity::PrivilegeGrant;
        }
    }
    if method.ends_with("compute.subnetworks.patch")
        && (bool_at(p, "request.enableFlowLogs") == Some(false)
            || bool_at(p, "request.logConfig.enable") == Some(false))
    {
        return Activity::LoggingChange;
    }
    Activity::ApiCall
}

fn param<'a>(ev: &'a Value, name: &str) -> Option<&'a Value> {
    get(ev, "parameter")?
        .as_array()?
        .iter()
        .find(|p| str_at(p, "name") == Some(name))
}

fn param_str(ev: &Value, name: &str) -> Option<String> {
    param(ev, name).and_then(|p| string_at(p, "value"))
}

fn param_list(ev: &Value, name: &str) -> Vec<String> {
    param(ev, name)
        .and_then(|p| get(p, "multiStrValue"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonValueMutTrait, json};

    fn entry(method: &str, ip: &str) -> Value {
        json!({"insertId": "i-1", "timestamp": "2024-01-01T00:00:00.123456Z",
            "logName": "projects/p-1/logs/cloudaudit.googleapis.com%2Factivity",
            "resource": {"type": "project", "labels": {"project_id": "p-1"}},
            "protoPayload": {"@type": AUDIT_LOG_TYPE, "methodName": method, "serviceName": "iam.googleapis.com",
                "authenticationInfo": {"principalEmail": "Dev@Example.com"},
                "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": "gcloud"},
                "resourceName": "projects/p-1"}})
    }

    #[test]
    fn private_and_internal_caller_ips() {
        for ip in ["private", "gce-internal-ip"] {
            let e = normalize(entry("google.iam.admin.v1.CreateRole", ip))
                .expect("ok")
                .remove(0);
            assert_eq!((e.src.ip, e.src.raw.as_deref()), (None, Some(ip)));
        }
        let e = normalize(entry("google.iam.admin.v1.CreateRole", "203.0.113.255"))
            .expect("ok")
            .remove(0);
        assert_eq!(e.src.ip, "203.0.113.255".parse().ok());
        assert_eq!(
            (e.actor.key.as_str(), e.account.as_deref()),
            ("dev@example.com", Some("p-1"))
        );
        assert_eq!(e.actor.principal_type, PrincipalType::User);
    }

    #[test]
    fn status_code_failure_and_service_account() {
        let mut v = entry("google.iam.admin.v1.CreateServiceAccountKey", "1.2.3.4");
        v["protoPayload"]["status"] = json!({"code": 7, "message": "PERMISSION_DENIED"});
        v["protoPayload"]["authenticationInfo"] =
            json!({"principalEmail": "sa@p-1.iam.gserviceaccount.com"});
        let e = normalize(v).expect("ok").remove(0);
        assert_eq!(
            (e.status, e.status_detail.as_deref()),
            (Status::Failure, Some("PERMISSION_DENIED"))
        );
        assert_eq!(
            (e.activity, e.actor.principal_type),
            (Activity::CredentialCreate, PrincipalType::ServicePrincipal)
        );
    }

    #[test]
    fn set_iam_policy_add_vs_remove() {
        let mut v = entry("SetIamPolicy", "1.2.3.4");
        v["protoPayload"]["serviceData"] = json!({"policyDelta": {"bindingDeltas": [{"action": "REMOVE", "role": "roles/owner", "member": "user:x@example.com"}]}});
        assert_eq!(
            normalize(v.clone()).expect("ok")[0].activity,
            Activity::ApiCall
        );
        v["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"][0]["action"] =
            json!("ADD");
        assert_eq!(
            normalize(v).expect("ok")[0].activity,
            Activity::PrivilegeGrant
        );
    }

    #[test]
    fn errors_name_fields() {
        let mut v = entry("m", "1.2.3.4");
        v["protoPayload"]
            .as_object_mut()
            .map(|o| o.remove(&"methodName"));
        assert_eq!(
            normalize(v.clone()),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "protoPayload.methodName"
            })
        );
        v["protoPayload"]["@type"] =
            json!("type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry");
        assert!(matches!(
            normalize(v.clone()),
            Err(NormalizeError::Invalid {
                field: "protoPayload.@type",
                ..
            })
        ));
        v.as_object_mut().map(|o| o.remove(&"protoPayload"));
        assert_eq!(
            normalize(v),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "protoPayload"
            })
        );
    }
}
