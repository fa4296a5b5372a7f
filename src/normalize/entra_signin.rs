//! Microsoft Entra sign-ins as Microsoft Graph returns them (`signIn`, v1.0 and beta) ->
//! [`IdentityEvent`]s. [`build`] is shared with the Azure Monitor export (`properties` of a
//! SignInLogs record is the same object).
//!
//! Mapping: `createdDateTime` -> time, `id` -> uid, `status.errorCode` 0 -> Success (else
//! Failure, `status_detail` = "code: failureReason"), `userPrincipalName` -> actor email and
//! key, `ipAddress`/`userAgent` -> src, `clientAppUsed` -> auth.client_app,
//! `riskEventTypes_v2` (else `riskEventTypes`) and `riskLevelDuringSignIn` (low/medium/high,
//! as `riskLevelDuringSignIn:<level>`) -> auth.risk. Interactivity: `isInteractive` when the
//! record has it (beta), else `signInEventTypes` (beta), else true (v1.0 lists only
//! interactive sign-ins). MFA: see [`mfa`]. `service` names the log the sign-in belongs in
//! (`SignInLogs`, `NonInteractiveUserSignInLogs`, `ServicePrincipalSignInLogs`,
//! `ManagedIdentitySignInLogs`), like the Azure Monitor category.
//!
//! To read one more field: add it to [`build`] and a fixture showing it.

use crate::json::{JsonContainerTrait, JsonValueTrait, Value};
use chrono::{DateTime, Utc};

use super::NormalizeError;
use super::util::{
    Root, bool_at, class_of, endpoint, get, identity_key, is_email, is_nil_guid, req_str, req_time,
    require_object, str_at, string_at, text_at,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, PrincipalType, RecordKind, Status, Target,
};

const KIND: RecordKind = RecordKind::EntraSignin;

/// Normalizes one Graph `signIn` into one event.
pub fn normalize(raw: Value) -> Result<Vec<IdentityEvent>, NormalizeError> {
    require_object(&raw, KIND)?;
    let mut event = build(&raw, &GRAPH, None)?;
    event.raw = raw;
    Ok(vec![event])
}

/// Where a sign-in's required fields are, for error messages.
pub(crate) struct Fields {
    /// The record kind errors report.
    pub kind: RecordKind,
    /// The path of `id`.
    pub id: &'static str,
    /// The path of `createdDateTime`.
    pub time: &'static str,
}

/// Required fields of a Graph `signIn`.
const GRAPH: Fields = Fields {
    kind: KIND,
    id: "id",
    time: "createdDateTime",
};

/// Builds the event from a `signIn` object `s` (with `raw` left `Null`). `time` overrides
/// `createdDateTime` (Azure Monitor records carry their own `time`).
pub(crate) fn build(
    s: &Value,
    f: &Fields,
    time: Option<DateTime<Utc>>,
) -> Result<IdentityEvent, NormalizeError> {
    let time = match time {
        Some(t) => t,
        None => req_time(s, f.time, f.kind)?,
    };
    let uid = req_str(s, f.id, f.kind)?.to_owned();
    let s = &crate::json::Fields::new(s);

    let event_types: Vec<&str> = get(s, "signInEventTypes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let sp_id = string_at(s, "servicePrincipalId").filter(|x| !is_nil_guid(x));
    let is_sp = event_types
        .iter()
        .any(|t| matches!(*t, "servicePrincipal" | "managedIdentity"))
        || (str_at(s, "userPrincipalName").is_none()
            && str_at(s, "userId").is_none()
            && sp_id.is_some());
    let interactive = bool_at(s, "isInteractive").or_else(|| {
        if is_sp {
            Some(false)
        } else if event_types.is_empty() {
            Some(true)
        } else {
            Some(event_types.contains(&"interactiveUser"))
        }
    });
    let service = if event_types.contains(&"managedIdentity") {
        "ManagedIdentitySignInLogs"
    } else if is_sp {
        "ServicePrincipalSignInLogs"
    } else if interactive == Some(false) {
        "NonInteractiveUserSignInLogs"
    } else {
        "SignInLogs"
    };

    let (status, status_detail) = status(s);
    let upn = string_at(s, "userPrincipalName");
    let actor = if is_sp {
        let uid = sp_id.or_else(|| string_at(s, "appId"));
        Actor {
            key: identity_key(None, &[uid.as_deref()]),
            uid,
            name: string_at(s, "servicePrincipalName").or_else(|| string_at(s, "appDisplayName")),
            email: None,
            principal_type: PrincipalType::ServicePrincipal,
            account: string_at(s, "resourceTenantId"),
            credential_id: string_at(s, "servicePrincipalCredentialKeyId"),
            session_issuer: None,
        }
    } else {
        let uid = string_at(s, "userId").filter(|x| !is_nil_guid(x));
        let email = upn.clone().filter(|u| is_email(u));
        Actor {
            key: identity_key(email.as_deref(), &[uid.as_deref(), upn.as_deref()]),
            uid,
            name: string_at(s, "userDisplayName"),
            email,
            principal_type: PrincipalType::User,
            account: string_at(s, "homeTenantId").or_else(|| string_at(s, "resourceTenantId")),
            credential_id: None,
            session_issuer: None,
        }
    };

    let mut risk: Vec<String> = ["riskEventTypes_v2", "riskEventTypes"]
        .iter()
        .filter_map(|p| get(s, p).and_then(Value::as_array))
        .find(|a| !a.is_empty())
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(level @ ("low" | "medium" | "high")) = str_at(s, "riskLevelDuringSignIn") {
        risk.push(format!("riskLevelDuringSignIn:{level}"));
    }
    let (mfa, mfa_failed) = mfa(s, status);

    let mut targets = Vec::new();
    if let Some(app) = string_at(s, "appId") {
        targets.push(Target {
            uid: Some(app),
            name: string_at(s, "appDisplayName"),
            kind: Some("application".to_owned()),
        });
    }
    if let Some(res) = string_at(s, "resourceId") {
        targets.push(Target {
            uid: Some(res),
            name: string_at(s, "resourceDisplayName"),
            kind: Some("resource".to_owned()),
        });
    }

    let activity = Activity::SignIn;
    Ok(IdentityEvent {
        time,
        kind: f.kind,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account: string_at(s, "resourceTenantId").or_else(|| actor.account.clone()),
        region: None,
        actor,
        src: endpoint(str_at(s, "ipAddress"), str_at(s, "userAgent")),
        action: "Sign-in activity".to_owned(),
        service: Some(service.to_owned()),
        targets,
        auth: AuthFacts {
            mfa,
            interactive,
            mfa_failed,
            risk,
            client_app: string_at(s, "clientAppUsed"),
        },
        oauth: None,
        uid,
        raw: Value::new(),
    })
}

/// `status.errorCode` (number or string) 0 -> Success, other -> Failure with
/// "code: failureReason"; no status -> Unknown.
fn status<'a>(s: impl Root<'a>) -> (Status, Option<String>) {
    match text_at(s, "status.errorCode") {
        Some(code) if code == "0" => (Status::Success, None),
        Some(code) => {
            let detail = match str_at(s, "status.failureReason") {
                Some(reason) => format!("{code}: {reason}"),
                None => code,
            };
            (Status::Failure, Some(detail))
        }
        None => (Status::Unknown, None),
    }
}

/// Entra error codes that mean the MFA step itself failed (500121: strong authentication
/// failed; 50088/50074 are "MFA required" interrupts and are not failures of MFA).
const MFA_FAILURE_CODES: &[&str] = &["500121", "50158"];

/// MFA facts: `Some(true)` when a second factor shows in `mfaDetail.authMethod` or a
/// succeeded non-password `authenticationDetails` step, or the sign-in succeeded under
/// `authenticationRequirement: multiFactorAuthentication`; `Some(false)` for
/// `singleFactorAuthentication`. MFA failed when the error code says so or a second-factor
/// step did not succeed.
pub(crate) fn mfa<'a>(s: impl Root<'a>, status: Status) -> (Option<bool>, bool) {
    let steps = get(s, "authenticationDetails")
        .and_then(Value::as_array)
        .map(|a| &a[..])
        .unwrap_or_default();
    let is_second_factor = |step: &Value| {
        let requirement = str_at(step, "authenticationStepRequirement").unwrap_or_default();
        let method = str_at(step, "authenticationMethod").unwrap_or_default();
        requirement.to_ascii_lowercase().contains("factor")
            || !(method.is_empty()
                || method.eq_ignore_ascii_case("Password")
                || method.eq_ignore_ascii_case("Previously satisfied"))
    };
    let second_ok = steps
        .iter()
        .any(|st| is_second_factor(st) && bool_at(st, "succeeded") == Some(true));
    let second_failed = steps
        .iter()
        .any(|st| is_second_factor(st) && bool_at(st, "succeeded") == Some(false));
    let code_failed =
        text_at(s, "status.errorCode").is_some_and(|c| MFA_FAILURE_CODES.contains(&c.as_str()));
    let requirement = str_at(s, "authenticationRequirement");
    let satisfied_mfa_requirement =
        requirement == Some("multiFactorAuthentication") && status == Status::Success;
    let mfa =
        if str_at(s, "mfaDetail.authMethod").is_some() || second_ok || satisfied_mfa_requirement {
            Some(true)
        } else if requirement == Some("singleFactorAuthentication") {
            Some(false)
        } else {
            None
        };
    (mfa, code_failed || second_failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonValueMutTrait, json};

    fn base() -> Value {
        json!({
            "id": "s-1", "createdDateTime": "2024-03-01T09:00:00Z",
            "userPrincipalName": "Alice@Contoso.com", "userId": "u-1", "appId": "a-1",
            "ipAddress": "203.0.113.9", "clientAppUsed": "Browser",
            "status": {"errorCode": 0}
        })
    }

    fn one(v: Value) -> IdentityEvent {
        let mut out = normalize(v).expect("normalizes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn v1_signin_is_interactive_success() {
        let e = one(base());
        assert_eq!(e.actor.key, "alice@contoso.com");
        assert_eq!(
            (e.status, e.auth.interactive),
            (Status::Success, Some(true))
        );
        assert_eq!(e.auth.client_app.as_deref(), Some("Browser"));
        assert!(e.is_interactive_signin_success());
        assert_eq!(e.service.as_deref(), Some("SignInLogs"));
    }

    #[test]
    fn beta_non_interactive_and_event_types() {
        let mut v = base();
        v["isInteractive"] = json!(false);
        let e = one(v);
        assert_eq!(e.auth.interactive, Some(false));
        assert_eq!(e.service.as_deref(), Some("NonInteractiveUserSignInLogs"));
        let mut v = base();
        v["signInEventTypes"] = json!(["nonInteractiveUser"]);
        assert_eq!(one(v).auth.interactive, Some(false));
    }

    #[test]
    fn failure_risk_and_mfa() {
        let mut v = base();
        v["status"] = json!({"errorCode": 500121, "failureReason": "Authentication failed during strong authentication request."});
        v["riskEventTypes_v2"] = json!(["unfamiliarFeatures", "anonymizedIPAddress"]);
        v["riskLevelDuringSignIn"] = json!("medium");
        v["authenticationRequirement"] = json!("multiFactorAuthentication");
        let e = one(v);
        assert_eq!(e.status, Status::Failure);
        assert!(
            e.status_detail
                .as_deref()
                .is_some_and(|d| d.starts_with("500121: "))
        );
        assert!(e.auth.mfa_failed);
        assert_eq!(e.auth.mfa, None);
        assert_eq!(
            e.auth.risk,
            [
                "unfamiliarFeatures",
                "anonymizedIPAddress",
                "riskLevelDuringSignIn:medium"
            ]
        );

        let mut v = base();
        v["riskEventTypes"] = json!(["leakedCredentials"]);
        v["mfaDetail"] = json!({"authMethod": "PhoneAppNotification", "authDetail": null});
        let e = one(v);
        assert_eq!((e.auth.mfa, e.auth.mfa_failed), (Some(true), false));
        assert_eq!(e.auth.risk, ["leakedCredentials"]);

        let mut v = base();
        v["authenticationRequirement"] = json!("singleFactorAuthentication");
        v["authenticationDetails"] = json!([{"authenticationMethod": "Password", "succeeded": true, "authenticationStepRequirement": "Primary authentication"}]);
        assert_eq!(one(v).auth.mfa, Some(false));

        let mut v = base();
        v["status"] = json!({"errorCode": 50074});
        v["authenticationDetails"] = json!([
            {"authenticationMethod": "Password", "succeeded": true},
            {"authenticationMethod": "Mobile app notification", "succeeded": false, "authenticationStepRequirement": "Multifactor authentication"}]);
        let e = one(v);
        assert!(e.auth.mfa_failed);
        assert_eq!(e.status, Status::Failure);
    }

    #[test]
    fn service_principal_signin() {
        let v = json!({"id": "s-2", "createdDateTime": "2024-03-01T09:00:00Z", "appId": "a-2",
            "servicePrincipalId": "sp-2", "servicePrincipalName": "robot", "signInEventTypes": ["servicePrincipal"],
            "status": {"errorCode": 0}, "ipAddress": "20.1.2.3"});
        let e = one(v);
        assert_eq!(e.actor.principal_type, PrincipalType::ServicePrincipal);
        assert_eq!(
            (e.actor.key.as_str(), e.auth.interactive),
            ("sp-2", Some(false))
        );
        assert_eq!(e.service.as_deref(), Some("ServicePrincipalSignInLogs"));
    }

    #[test]
    fn missing_fields_are_named() {
        let mut v = base();
        v.as_object_mut().map(|o| o.remove(&"createdDateTime"));
        assert_eq!(
            normalize(v),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "createdDateTime"
            })
        );
        let mut v = base();
        v["id"] = json!({});
        assert!(matches!(
            normalize(v),
            Err(NormalizeError::Invalid { field: "id", .. })
        ));
    }
}
