//! Okta System Log events (`/api/v1/logs`, event hooks and log streams carry the same
//! `LogEvent` object) -> [`IdentityEvent`]s.
//!
//! Mapping: `published` -> time, `uuid` -> uid, `eventType` -> action, its first segment
//! (`user`, `app`, `policy`, `system`...) -> service; `outcome.result` -> status (`SUCCESS`,
//! `ALLOW` / `FAILURE`, `DENY`; `CHALLENGE`, `SKIPPED`, `UNKNOWN` are `Unknown`) with
//! `outcome.reason` as detail; `actor` -> actor (`alternateId` is the login, an email for
//! people; `type` `User` / `PublicClientApp`, `AppInstance`, `Client` / `SystemPrincipal`);
//! `client.ipAddress` and `client.userAgent.rawUserAgent` -> src; `target[]` -> targets.
//! Sign-ins (`user.session.start`, `user.authentication.*`): only `user.session.start` is
//! interactive (the one event of a person signing in; the `user.authentication.*` steps and
//! app SSO belong to a session already counted); MFA from `user.authentication.auth_via_mfa`,
//! `authenticationContext.authenticationProvider: FACTOR_PROVIDER` or
//! `debugContext.debugData.factor`; risk flags from `securityContext.isProxy`,
//! `debugContext.debugData.threatSuspected` and the `risk` level.
//! Activities: see [`activity`]; consents get `oauth` from their targets and debug data.
//!
//! To classify one more event type: add it to [`activity`].

use crate::json::{JsonContainerTrait, Raw, Value};

use super::NormalizeError;
use super::util::{
    bool_at, class_of, endpoint, get, identity_key, is_email, req_str, req_time, require_object,
    str_at, string_at,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, OAuthGrant, PrincipalType, RecordKind, Status,
    Target,
};

const KIND: RecordKind = RecordKind::Okta;

/// Normalizes one System Log event into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let mut event = build(&raw)?;
    event.raw = raw;
    Ok(vec![event])
}

fn build(r: &Value) -> Result<IdentityEvent, NormalizeError> {
    let time = req_time(r, "published", KIND)?;
    let uid = req_str(r, "uuid", KIND)?.to_owned();
    let action = req_str(r, "eventType", KIND)?.to_owned();
    let activity = activity(&action);
    let status = match str_at(r, "outcome.result")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("SUCCESS" | "ALLOW") => Status::Success,
        Some("FAILURE" | "DENY") => Status::Failure,
        _ => Status::Unknown,
    };
    let status_detail = (status == Status::Failure)
        .then(|| string_at(r, "outcome.reason"))
        .flatten();
    let targets: Vec<Target> = targets_raw(r)
        .iter()
        .map(|t| Target {
            uid: string_at(t, "id"),
            name: string_at(t, "alternateId").or_else(|| string_at(t, "displayName")),
            kind: string_at(t, "type"),
        })
        .collect();
    let auth = if activity == Activity::SignIn {
        signin_facts(r, &action, status)
    } else {
        AuthFacts::default()
    };
    let oauth = (activity == Activity::ConsentGrant).then(|| oauth_grant(r, &action));
    Ok(IdentityEvent {
        time,
        kind: KIND,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account: None,
        region: None,
        src: endpoint(
            str_at(r, "client.ipAddress"),
            str_at(r, "client.userAgent.rawUserAgent"),
        ),
        actor: actor(r),
        service: action.split('.').next().map(str::to_owned),
        action,
        targets,
        auth,
        oauth,
        uid,
        raw: Raw::default(),
    })
}

fn targets_raw(r: &Value) -> &[Value] {
    get(r, "target")
        .and_then(Value::as_array)
        .map(|a| &a[..])
        .unwrap_or_default()
}

fn signin_facts(r: &Value, action: &str, status: Status) -> AuthFacts {
    let via_mfa = action == "user.authentication.auth_via_mfa";
    let factor = str_at(r, "authenticationContext.authenticationProvider")
        == Some("FACTOR_PROVIDER")
        || str_at(r, "debugContext.debugData.factor").is_some();
    let mfa = ((via_mfa || factor) && status == Status::Success).then_some(true);
    let mut risk = Vec::new();
    if bool_at(r, "securityContext.isProxy") == Some(true) {
        risk.push("anonymizing_proxy".to_owned());
    }
    if bool_at(r, "debugContext.debugData.threatSuspected") == Some(true) {
        risk.push("threat_suspected".to_owned());
    }
    // `risk` is logged as `{level=HIGH, reasons=...}`.
    if let Some(level) = str_at(r, "debugContext.debugData.risk").and_then(|s| {
        let (_, rest) = s.split_once("level=")?;
        rest.split([',', '}'])
            .next()
            .map(|l| l.trim().to_ascii_lowercase())
    }) && matches!(level.as_str(), "medium" | "high")
    {
        risk.push(format!("risk_{level}"));
    }
    AuthFacts {
        mfa,
        interactive: Some(action == "user.session.start"),
        mfa_failed: status == Status::Failure
            && (via_mfa || factor || action == "user.mfa.okta_verify.deny_push"),
        risk,
        client_app: None,
    }
}

/// The OAuth grant of a consent: the app is the target of type `AppInstance`,
/// `PublicClientApp` or `Client` (id and display name); scopes are targets of type `Scope`
/// (`OAuth2Scope`) and the space- or comma-separated `grantedScopes` / `scopes` of the debug
/// data; `app.oauth2.admin.consent.grant` is an admin consent.
fn oauth_grant(r: &Value, action: &str) -> OAuthGrant {
    let targets = targets_raw(r);
    let app = targets.iter().find(|t| {
        matches!(
            str_at(t, "type"),
            Some("AppInstance" | "PublicClientApp" | "Client" | "OAuth2Client")
        )
    });
    let mut scopes: Vec<String> = targets
        .iter()
        .filter(|t| matches!(str_at(t, "type"), Some("Scope" | "OAuth2Scope")))
        .filter_map(|t| string_at(t, "alternateId").or_else(|| string_at(t, "displayName")))
        .collect();
    for key in ["grantedScopes", "scopes", "requestedScopes"] {
        if !scopes.is_empty() {
            break;
        }
        if let Some(s) = str_at(r, &format!("debugContext.debugData.{key}")) {
            scopes.extend(
                s.split([' ', ','])
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    scopes.retain(|s| seen.insert(s.clone()));
    let admin = action.contains("admin.consent");
    OAuthGrant {
        app_id: app.and_then(|t| string_at(t, "id")),
        app_name: app.and_then(|t| string_at(t, "displayName")),
        scopes,
        admin_consent: admin,
        all_principals: admin,
        publisher_verified: None,
    }
}

/// The acting principal. A failed sign-in of an unknown login has `actor.id` `unknown`: the key
/// is then the typed login (`alternateId`) only when it is email-shaped, else `unknown`, since
/// people type passwords into the username field and a key is stored and alerted on.
fn actor(r: &Value) -> Actor {
    let id = string_at(r, "actor.id").filter(|id| !id.eq_ignore_ascii_case("unknown"));
    let login = string_at(r, "actor.alternateId");
    let principal_type = match str_at(r, "actor.type") {
        Some("User") => PrincipalType::User,
        Some("PublicClientApp" | "AppInstance" | "Client" | "OAuth2Client") => {
            PrincipalType::ServicePrincipal
        }
        Some("SystemPrincipal") => PrincipalType::Service,
        _ => PrincipalType::Unknown,
    };
    let email = login.clone().filter(|l| is_email(l));
    let name = string_at(r, "actor.displayName").or(login.filter(|_| id.is_some()));
    Actor {
        key: identity_key(email.as_deref(), &[id.as_deref(), Some("unknown")]),
        uid: id,
        name,
        email,
        principal_type,
        account: None,
        credential_id: string_at(r, "authenticationContext.externalSessionId"),
        session_issuer: None,
    }
}

/// The activity of an `eventType` (everything else is `ApiCall`):
/// - SignIn: `user.session.start`, `user.authentication.*`, a denied Okta Verify push.
/// - ConsentGrant: `app.oauth2.as.consent.grant`, `app.oauth2.consent.grant`,
///   `app.oauth2.admin.consent.grant`.
/// - MfaChange: `user.mfa.factor.*` (deactivate, reset_all, suspend, update...),
///   `system.mfa.factor.deactivate`, `user.mfa.attempt_bypass`.
/// - PrivilegeGrant: admin roles granted to users or groups, resource-set role bindings.
/// - CredentialCreate: API tokens, password resets and changes, new identity providers.
/// - LoggingChange: log streams deactivated or deleted.
pub(crate) fn activity(event_type: &str) -> Activity {
    match event_type {
        "user.session.start" | "user.mfa.okta_verify.deny_push" => Activity::SignIn,
        t if t.starts_with("user.authentication.") => Activity::SignIn,
        "app.oauth2.as.consent.grant"
        | "app.oauth2.consent.grant"
        | "app.oauth2.admin.consent.grant" => Activity::ConsentGrant,
        "system.mfa.factor.deactivate" | "user.mfa.attempt_bypass" => Activity::MfaChange,
        t if t.starts_with("user.mfa.factor.") => Activity::MfaChange,
        "user.account.privilege.grant"
        | "group.privilege.grant"
        | "iam.resourceset.bindings.add"
        | "iam.role.permissions.add" => Activity::PrivilegeGrant,
        "system.api_token.create"
        | "user.account.reset_password"
        | "user.account.update_password"
        | "system.idp.lifecycle.create" => Activity::CredentialCreate,
        "system.log_stream.lifecycle.deactivate" | "system.log_stream.lifecycle.delete" => {
            Activity::LoggingChange
        }
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

    fn event(event_type: &str, result: &str) -> Value {
        json!({
            "uuid": "u-1", "published": "2026-02-01T09:00:00.123Z", "eventType": event_type,
            "version": "0", "severity": "INFO", "displayMessage": "x",
            "actor": {"id": "00u1", "type": "User", "alternateId": "Dana@Example.com", "displayName": "Dana"},
            "client": {"ipAddress": "203.0.113.20", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
            "outcome": {"result": result, "reason": "INVALID_CREDENTIALS"},
            "target": [{"id": "00u2", "type": "User", "alternateId": "eve@example.com", "displayName": "Eve"}],
            "securityContext": {"isProxy": true},
            "debugContext": {"debugData": {"risk": "{level=HIGH, reasons=Anomalous Device}"}}
        })
    }

    #[test]
    fn session_start_is_the_interactive_sign_in() {
        let e = one(event("user.session.start", "SUCCESS"));
        assert_eq!((e.activity, e.status), (Activity::SignIn, Status::Success));
        assert!(e.is_interactive_signin_success());
        assert_eq!(e.actor.key, "dana@example.com");
        assert_eq!(e.auth.risk, ["anonymizing_proxy", "risk_high"]);
        assert_eq!(e.src.ip, "203.0.113.20".parse().ok());
        assert_eq!(e.service.as_deref(), Some("user"));
        let e = one(event("user.session.start", "FAILURE"));
        assert_eq!(
            (e.status, e.status_detail.as_deref()),
            (Status::Failure, Some("INVALID_CREDENTIALS"))
        );
        let e = one(event("user.authentication.sso", "SUCCESS"));
        assert_eq!(
            (e.activity, e.auth.interactive),
            (Activity::SignIn, Some(false))
        );
        let mut mfa = event("user.authentication.auth_via_mfa", "SUCCESS");
        mfa["debugContext"]["debugData"]["factor"] = json!("OKTA_VERIFY_PUSH");
        assert_eq!(one(mfa.clone()).auth.mfa, Some(true));
        mfa["outcome"]["result"] = json!("FAILURE");
        assert!(one(mfa).auth.mfa_failed);
    }

    #[test]
    fn consent_mfa_and_privilege() {
        let mut c = event("app.oauth2.as.consent.grant", "SUCCESS");
        c["target"] = json!([
            {"id": "0oa9", "type": "AppInstance", "alternateId": "Evil", "displayName": "Evil App"},
            {"id": "scp1", "type": "Scope", "alternateId": "okta.users.read", "displayName": "okta.users.read"}
        ]);
        let e = one(c);
        let o = e.oauth.expect("oauth");
        assert_eq!(
            (o.app_id.as_deref(), o.app_name.as_deref()),
            (Some("0oa9"), Some("Evil App"))
        );
        assert_eq!(o.scopes, ["okta.users.read"]);
        assert!(!o.admin_consent);
        assert_eq!(
            one(event("user.mfa.factor.reset_all", "SUCCESS")).activity,
            Activity::MfaChange
        );
        let e = one(event("user.account.privilege.grant", "SUCCESS"));
        assert_eq!(e.activity, Activity::PrivilegeGrant);
        assert_eq!(e.targets[0].name.as_deref(), Some("eve@example.com"));
        assert_eq!(
            activity("system.api_token.create"),
            Activity::CredentialCreate
        );
        assert_eq!(activity("zone.delete"), Activity::ApiCall);
    }

    #[test]
    fn actor_types_and_missing_fields() {
        let mut e = event("system.api_token.create", "SUCCESS");
        e["actor"] = json!({"id": "0oa1", "type": "PublicClientApp", "alternateId": "svc-client"});
        let ev = one(e.clone());
        assert_eq!(
            (ev.actor.principal_type, ev.actor.key.as_str()),
            (PrincipalType::ServicePrincipal, "0oa1")
        );
        let mut unknown = e.clone();
        unknown["actor"] = json!({"id": "unknown", "type": "User", "alternateId": "jdoe"});
        let ev = one(unknown);
        assert_eq!((ev.actor.uid, ev.actor.key.as_str()), (None, "unknown"));
        e.as_object_mut().map(|o| o.remove(&"uuid"));
        assert_eq!(
            normalize(e),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "uuid"
            })
        );
    }
}
