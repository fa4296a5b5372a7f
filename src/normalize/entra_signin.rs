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

use crate::json::{Fields, JsonContainerTrait, JsonValueTrait, Raw, Value};
use chrono::{DateTime, Utc};

use super::NormalizeError;
use super::util::{
    array_of, bool_of, class_of, endpoint, identity_key, is_email, is_nil_guid, member, members,
    require_object, required_str, required_time, str_of, string_of, text_of,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, PrincipalType, RecordKind, Status, Target,
};

const KIND: RecordKind = RecordKind::EntraSignin;

/// Normalizes one Graph `signIn` into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let mut event = build(raw.fields(), KIND, None)?;
    event.raw = raw;
    Ok(vec![event])
}

members! {
    /// The members of a `signIn` the event is built from.
    SignIn {
        id: "id",
        time: "createdDateTime",
        event_types: "signInEventTypes",
        sp_id: "servicePrincipalId",
        upn: "userPrincipalName",
        user_id: "userId",
        is_interactive: "isInteractive",
        app_id: "appId",
        app_name: "appDisplayName",
        sp_name: "servicePrincipalName",
        resource_tenant: "resourceTenantId",
        home_tenant: "homeTenantId",
        sp_credential: "servicePrincipalCredentialKeyId",
        user_name: "userDisplayName",
        risk_v2: "riskEventTypes_v2",
        risk: "riskEventTypes",
        risk_level: "riskLevelDuringSignIn",
        resource_id: "resourceId",
        resource_name: "resourceDisplayName",
        ip: "ipAddress",
        user_agent: "userAgent",
        client_app: "clientAppUsed",
        status: "status",
        steps: "authenticationDetails",
        requirement: "authenticationRequirement",
        mfa_detail: "mfaDetail",
    }
}

members! {
    /// `status`.
    SignInStatus {
        error_code: "errorCode",
        failure_reason: "failureReason",
    }
}

members! {
    /// An element of `authenticationDetails[]`.
    Step {
        requirement: "authenticationStepRequirement",
        method: "authenticationMethod",
        succeeded: "succeeded",
    }
}

/// Builds the event from a `signIn` object `s` (with `raw` left `Null`); errors name `kind`.
/// `time` overrides `createdDateTime` (Azure Monitor records carry their own `time`).
pub(crate) fn build(
    s: &Fields<'_>,
    kind: RecordKind,
    time: Option<DateTime<Utc>>,
) -> Result<IdentityEvent, NormalizeError> {
    let p = SignIn::in_fields(s);
    let time = match time {
        Some(t) => t,
        None => required_time(p.time, "createdDateTime", kind)?,
    };
    let uid = required_str(p.id, "id", kind)?.to_owned();

    let event_types = || array_of(p.event_types).iter().filter_map(Value::as_str);
    let has_type = |name: &str| event_types().any(|t| t == name);
    let sp_id = str_of(p.sp_id).filter(|x| !is_nil_guid(x));
    let upn = str_of(p.upn);
    let is_sp = event_types().any(|t| matches!(t, "servicePrincipal" | "managedIdentity"))
        || (upn.is_none() && str_of(p.user_id).is_none() && sp_id.is_some());
    let interactive = bool_of(p.is_interactive).or_else(|| {
        if is_sp {
            Some(false)
        } else if event_types().next().is_none() {
            Some(true)
        } else {
            Some(has_type("interactiveUser"))
        }
    });
    let service = if has_type("managedIdentity") {
        "ManagedIdentitySignInLogs"
    } else if is_sp {
        "ServicePrincipalSignInLogs"
    } else if interactive == Some(false) {
        "NonInteractiveUserSignInLogs"
    } else {
        "SignInLogs"
    };

    let st = SignInStatus::of(p.status);
    let code = text_of(st.error_code);
    let status_detail = match code.as_deref() {
        Some("0") | None => None,
        Some(code) => Some(match str_of(st.failure_reason) {
            Some(reason) => format!("{code}: {reason}"),
            None => code.to_owned(),
        }),
    };
    let status = match code.as_deref() {
        Some("0") => Status::Success,
        Some(_) => Status::Failure,
        None => Status::Unknown,
    };
    let actor = if is_sp {
        let uid = sp_id.or_else(|| str_of(p.app_id));
        Actor {
            key: identity_key(None, &[uid]),
            uid: uid.map(str::to_owned),
            name: str_of(p.sp_name)
                .or_else(|| str_of(p.app_name))
                .map(str::to_owned),
            email: None,
            principal_type: PrincipalType::ServicePrincipal,
            account: string_of(p.resource_tenant),
            credential_id: string_of(p.sp_credential),
            session_issuer: None,
        }
    } else {
        let uid = str_of(p.user_id).filter(|x| !is_nil_guid(x));
        let email = upn.filter(|u| is_email(u));
        Actor {
            key: identity_key(email, &[uid, upn]),
            uid: uid.map(str::to_owned),
            name: string_of(p.user_name),
            email: email.map(str::to_owned),
            principal_type: PrincipalType::User,
            account: str_of(p.home_tenant)
                .or_else(|| str_of(p.resource_tenant))
                .map(str::to_owned),
            credential_id: None,
            session_issuer: None,
        }
    };

    let mut risk: Vec<String> = [p.risk_v2, p.risk]
        .into_iter()
        .filter_map(|v| v.and_then(Value::as_array))
        .find(|a| !a.is_empty())
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(level @ ("low" | "medium" | "high")) = str_of(p.risk_level) {
        risk.push(format!("riskLevelDuringSignIn:{level}"));
    }
    let (mfa, mfa_failed) = mfa(&p, code.as_deref(), status);

    let mut targets = Vec::new();
    if let Some(app) = string_of(p.app_id) {
        targets.push(Target {
            uid: Some(app),
            name: string_of(p.app_name),
            kind: Some("application".to_owned()),
        });
    }
    if let Some(res) = string_of(p.resource_id) {
        targets.push(Target {
            uid: Some(res),
            name: string_of(p.resource_name),
            kind: Some("resource".to_owned()),
        });
    }

    let activity = Activity::SignIn;
    Ok(IdentityEvent {
        time,
        kind,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account: string_of(p.resource_tenant).or_else(|| actor.account.clone()),
        region: None,
        actor,
        src: endpoint(str_of(p.ip), str_of(p.user_agent)),
        action: "Sign-in activity".to_owned(),
        service: Some(service.to_owned()),
        targets,
        auth: AuthFacts {
            mfa,
            interactive,
            mfa_failed,
            risk,
            client_app: string_of(p.client_app),
        },
        oauth: None,
        uid,
        raw: Raw::default(),
    })
}

/// Entra error codes that mean the MFA step itself failed (500121: strong authentication
/// failed; 50088/50074 are "MFA required" interrupts and are not failures of MFA).
const MFA_FAILURE_CODES: &[&str] = &["500121", "50158"];

/// MFA facts: `Some(true)` when a second factor shows in `mfaDetail.authMethod` or a
/// succeeded non-password `authenticationDetails` step, or the sign-in succeeded under
/// `authenticationRequirement: multiFactorAuthentication`; `Some(false)` for
/// `singleFactorAuthentication`. MFA failed when the error code (`status.errorCode`, as
/// text) says so or a second-factor step did not succeed.
fn mfa(s: &SignIn<'_>, code: Option<&str>, status: Status) -> (Option<bool>, bool) {
    let (mut second_ok, mut second_failed) = (false, false);
    for step in array_of(s.steps) {
        let step = Step::of(Some(step));
        let requirement = str_of(step.requirement).unwrap_or_default();
        let method = str_of(step.method).unwrap_or_default();
        let second_factor = requirement
            .as_bytes()
            .windows(6)
            .any(|w| w.eq_ignore_ascii_case(b"factor"))
            || !(method.is_empty()
                || method.eq_ignore_ascii_case("Password")
                || method.eq_ignore_ascii_case("Previously satisfied"));
        if second_factor {
            match bool_of(step.succeeded) {
                Some(true) => second_ok = true,
                Some(false) => second_failed = true,
                None => {}
            }
        }
    }
    let code_failed = code.is_some_and(|c| MFA_FAILURE_CODES.contains(&c));
    let requirement = str_of(s.requirement);
    let satisfied_mfa_requirement =
        requirement == Some("multiFactorAuthentication") && status == Status::Success;
    let mfa = if str_of(member(s.mfa_detail, "authMethod")).is_some()
        || second_ok
        || satisfied_mfa_requirement
    {
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
