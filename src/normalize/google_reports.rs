//! Google Workspace Admin SDK Reports API activities (`admin#reports#activity`, e.g. the
//! `login`, `token` and `admin` applications) -> [`IdentityEvent`]s, one per element of
//! `events[]`.
//!
//! Mapping: uid = `id.uniqueQualifier` (plus `#<index>` when the activity holds several
//! events), time = `id.time`, account = `id.customerId`, service = `id.applicationName`,
//! action = the event's `name`, actor = `actor.email` (key) / `actor.profileId` (uid),
//! src = `ipAddress`. Each event's `raw` is the activity with `events` replaced by a
//! one-element array holding only that event. Activities: see [`activity`]; sign-in facts:
//! see [`signin_auth`]; `token` `authorize` fills `oauth` (client_id, app_name, `scope`).
//!
//! To classify one more event: add its (application, name) to [`activity`].

use crate::json::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait, Raw, Value, ValueRef};

use super::NormalizeError;
use super::util::{
    array_of, bool_of, class_of, endpoint, identity_key, is_email, member, members, require_object,
    required_id, required_time, str_of, string_of, text_of,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, OAuthGrant, PrincipalType, RecordKind, Status,
    Target,
};

const KIND: RecordKind = RecordKind::GoogleReports;

members! {
    /// The members of an activity the events are built from.
    Record {
        id: "id",
        actor: "actor",
        ip: "ipAddress",
        events: "events",
    }
}

members! {
    /// The activity's `id`.
    RecordId {
        time: "time",
        qualifier: "uniqueQualifier",
        application: "applicationName",
        customer: "customerId",
    }
}

members! {
    /// The activity's `actor`.
    RecordActor {
        email: "email",
        profile_id: "profileId",
        caller_type: "callerType",
        key: "key",
    }
}

members! {
    /// An element of `events[]`.
    Event {
        name: "name",
        parameters: "parameters",
    }
}

/// Normalizes one Reports API activity into one event per element of `events[]`.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let r = Record::in_fields(raw.fields());
    let id = RecordId::of(r.id);
    let time = required_time(id.time, "id.time", KIND)?;
    let qualifier = required_id(id.qualifier, "id.uniqueQualifier", KIND)?;
    let events = match r.events {
        Some(v) if v.is_array() => array_of(Some(v)),
        Some(other) => {
            return Err(NormalizeError::Invalid {
                kind: KIND,
                field: "events",
                message: format!("expected an array, found {}", super::util::type_name(other)),
            });
        }
        None => {
            return Err(NormalizeError::Missing {
                kind: KIND,
                field: "events",
            });
        }
    };
    let application = str_of(id.application);
    let actor = actor(&RecordActor::of(r.actor), id.customer);
    let several = events.len() > 1;
    let account = string_of(id.customer);
    let src = endpoint(str_of(r.ip), None);
    let mut out = Vec::with_capacity(events.len());
    for (index, ev) in events.iter().enumerate() {
        let e = Event::of(Some(ev));
        let name = match e.name.map(Value::as_ref) {
            Some(ValueRef::String(s)) if !s.trim().is_empty() => s.trim(),
            Some(ValueRef::String(_)) | None | Some(ValueRef::Null) => {
                return Err(NormalizeError::Missing {
                    kind: KIND,
                    field: "events[].name",
                });
            }
            Some(other) => {
                return Err(NormalizeError::Invalid {
                    kind: KIND,
                    field: "events[].name",
                    message: format!(
                        "expected a string, found {}",
                        super::util::ref_type_name(&other)
                    ),
                });
            }
        };
        let params = Params::of(e.parameters);
        let activity = activity(application, name);
        let (status, status_detail) = match name {
            "login_failure" => (Status::Failure, param_str(params.login_failure_type)),
            "login_challenge"
                if param_str(params.login_challenge_status).as_deref()
                    == Some("Challenge Failed") =>
            {
                (Status::Failure, Some("Challenge Failed".to_owned()))
            }
            _ => (Status::Success, None),
        };
        let auth = if application == Some("login") {
            signin_auth(&params, name, status)
        } else {
            AuthFacts::default()
        };
        let oauth = (activity == Activity::ConsentGrant).then(|| OAuthGrant {
            app_id: param_str(params.client_id),
            app_name: param_str(params.app_name),
            scopes: param_list(params.scope),
            ..OAuthGrant::default()
        });
        let mut targets = Vec::new();
        if let Some(app) = oauth.as_ref().and_then(|o| o.app_id.clone()) {
            targets.push(Target {
                uid: Some(app),
                name: oauth.as_ref().and_then(|o| o.app_name.clone()),
                kind: Some("application".to_owned()),
            });
        }
        if let Some(user) = param_str(params.user_email) {
            targets.push(Target {
                uid: Some(user.clone()),
                name: Some(user),
                kind: Some("user".to_owned()),
            });
        }
        if let Some(role) = param_str(params.role_name) {
            targets.push(Target {
                uid: param_str(params.role_id),
                name: Some(role),
                kind: Some("role".to_owned()),
            });
        }
        out.push(IdentityEvent {
            time,
            kind: KIND,
            class: class_of(activity),
            activity,
            status,
            status_detail,
            account: account.clone(),
            region: None,
            actor: actor.clone(),
            src: src.clone(),
            action: name.to_owned(),
            service: application.map(str::to_owned),
            targets,
            auth,
            oauth,
            uid: if several {
                format!("{qualifier}#{index}")
            } else {
                qualifier.clone()
            },
            raw: Raw::default(),
        });
    }
    // Each event's `raw` is the activity with only that event in `events`. A lone event's
    // is the activity as it came: no copy, no rewrite.
    if let [one] = &mut out[..]
        && !r.repeated
    {
        one.raw = raw;
        return Ok(out);
    }
    // Copies of the events read above (the first `events` should the key repeat), before
    // the activity is rewritten.
    let events = events.to_vec();
    let mut raw = raw.into_value();
    if let Some(o) = raw.as_object_mut() {
        o.remove(&"events");
    }
    let last = out.len().saturating_sub(1);
    for (index, (ev, event)) in events.into_iter().zip(&mut out).enumerate() {
        // The last event takes the activity itself.
        let mut one = if index == last {
            std::mem::take(&mut raw)
        } else {
            raw.clone()
        };
        if let Some(o) = one.as_object_mut() {
            o.insert("events", Value::from(vec![ev]));
        }
        event.raw = one.into();
    }
    Ok(out)
}

/// `actor.email` (lowercased: the key) and `actor.profileId`; `callerType: KEY` (an API key
/// or system actor without profile) is a Service. The account is `id.customerId`.
fn actor(a: &RecordActor<'_>, customer: Option<&Value>) -> Actor {
    let email = str_of(a.email).filter(|e| is_email(e));
    let uid = str_of(a.profile_id);
    let principal_type = match str_of(a.caller_type) {
        Some("KEY") => PrincipalType::Service,
        _ if email.is_some() || uid.is_some() => PrincipalType::User,
        _ => PrincipalType::Unknown,
    };
    let key_name = str_of(a.key);
    Actor {
        key: identity_key(email, &[uid, key_name]),
        uid: uid.map(str::to_owned),
        name: key_name.map(str::to_owned),
        email: email.map(str::to_owned),
        principal_type,
        account: string_of(customer),
        ..Actor::default()
    }
}

/// Sign-in facts of a `login` event: interactive; MFA from `login_challenge_method`
/// (`Some(false)` when only `password`, `Some(true)` when a second method shows);
/// `is_suspicious` -> risk; a failed `login_challenge` is an MFA failure.
fn signin_auth(params: &Params<'_>, name: &str, status: Status) -> AuthFacts {
    let methods = param_list(params.login_challenge_method);
    let mfa = (!methods.is_empty()).then(|| {
        methods
            .iter()
            .any(|m| !matches!(m.as_str(), "password" | "none" | "None"))
    });
    let mut risk = Vec::new();
    if param_bool(params.is_suspicious) == Some(true) {
        risk.push("is_suspicious".to_owned());
    }
    AuthFacts {
        mfa,
        interactive: Some(true),
        mfa_failed: name == "login_challenge" && status == Status::Failure,
        risk,
        client_app: None,
    }
}

/// The activity of an (application, event name) pair (best effort; else `ApiCall`):
/// login `login_success`/`login_failure` -> SignIn; login `2sv_*` / `recovery_*` changes ->
/// MfaChange; login `password_edit` and admin `CHANGE_PASSWORD` -> CredentialCreate; token
/// `authorize` -> ConsentGrant; admin role and privilege grants -> PrivilegeGrant; admin
/// 2-step verification enforcement turned off -> MfaChange.
pub(crate) fn activity(application: Option<&str>, name: &str) -> Activity {
    match (application.unwrap_or_default(), name) {
        ("login", "login_success" | "login_failure") => Activity::SignIn,
        ("login", "2sv_disable" | "2sv_enroll" | "recovery_phone_edit" | "recovery_email_edit") => {
            Activity::MfaChange
        }
        ("login", "password_edit") => Activity::CredentialCreate,
        ("token", "authorize") => Activity::ConsentGrant,
        ("admin", "CHANGE_PASSWORD" | "CHANGE_APPLICATION_SETTING_PASSWORD") => {
            Activity::CredentialCreate
        }
        (
            "admin",
            "ASSIGN_ROLE"
            | "GRANT_ADMIN_PRIVILEGE"
            | "GRANT_DELEGATED_ADMIN_PRIVILEGES"
            | "ADD_PRIVILEGE",
        ) => Activity::PrivilegeGrant,
        ("admin", "TURN_OFF_2_STEP_VERIFICATION" | "UNENROLL_USER_FROM_STRONG_AUTH") => {
            Activity::MfaChange
        }
        _ => Activity::ApiCall,
    }
}

/// The parameters of an event that picket reads: the first of each name, found in one walk
/// over `parameters[]`.
#[derive(Default)]
struct Params<'v> {
    login_failure_type: Option<&'v Value>,
    login_challenge_status: Option<&'v Value>,
    login_challenge_method: Option<&'v Value>,
    is_suspicious: Option<&'v Value>,
    client_id: Option<&'v Value>,
    app_name: Option<&'v Value>,
    scope: Option<&'v Value>,
    user_email: Option<&'v Value>,
    role_name: Option<&'v Value>,
    role_id: Option<&'v Value>,
}

impl<'v> Params<'v> {
    fn of(parameters: Option<&'v Value>) -> Self {
        let mut out = Params::default();
        for p in array_of(parameters) {
            let slot = match str_of(member(Some(p), "name")) {
                Some("login_failure_type") => &mut out.login_failure_type,
                Some("login_challenge_status") => &mut out.login_challenge_status,
                Some("login_challenge_method") => &mut out.login_challenge_method,
                Some("is_suspicious") => &mut out.is_suspicious,
                Some("client_id") => &mut out.client_id,
                Some("app_name") => &mut out.app_name,
                Some("scope") => &mut out.scope,
                Some("USER_EMAIL") => &mut out.user_email,
                Some("ROLE_NAME") => &mut out.role_name,
                Some("ROLE_ID") => &mut out.role_id,
                _ => continue,
            };
            slot.get_or_insert(p);
        }
        out
    }
}

/// A parameter's `value` (or `intValue`) as text.
fn param_str(p: Option<&Value>) -> Option<String> {
    let p = Some(p?);
    string_of(member(p, "value")).or_else(|| text_of(member(p, "intValue")))
}

/// A parameter's `multiValue` (or a space-separated `value`).
fn param_list(p: Option<&Value>) -> Vec<String> {
    let Some(p) = p else {
        return Vec::new();
    };
    match member(Some(p), "multiValue").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        None => str_of(member(Some(p), "value"))
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

fn param_bool(p: Option<&Value>) -> Option<bool> {
    let p = Some(p?);
    bool_of(member(p, "boolValue")).or_else(|| bool_of(member(p, "value")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonContainerTrait, json};

    fn activity_with(app: &str, events: Value) -> Value {
        json!({"kind": "admin#reports#activity",
            "id": {"time": "2024-06-01T08:00:00.000Z", "uniqueQualifier": "-4321", "applicationName": app, "customerId": "C01"},
            "actor": {"callerType": "USER", "email": "Carol@Example.com", "profileId": "1001"},
            "ipAddress": "2001:db8::7", "events": events})
    }

    #[test]
    fn multi_event_activity_ids_and_raw() {
        let v = activity_with(
            "login",
            json!([
            {"type": "login", "name": "login_success", "parameters": [
                {"name": "login_type", "value": "google_password"},
                {"name": "login_challenge_method", "multiValue": ["password", "google_authenticator"]},
                {"name": "is_suspicious", "boolValue": true}]},
            {"type": "login", "name": "login_verification", "parameters": []}]),
        );
        let out = normalize(v).expect("ok");
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].uid.as_str(), out[1].uid.as_str()),
            ("-4321#0", "-4321#1")
        );
        assert_eq!(out[0].raw["events"].as_array().map(|a| a.len()), Some(1));
        assert_eq!(out[1].raw["events"][0]["name"], "login_verification");
        let e = &out[0];
        assert_eq!(
            (e.activity, e.status, e.auth.mfa),
            (Activity::SignIn, Status::Success, Some(true))
        );
        assert_eq!(e.auth.risk, ["is_suspicious"]);
        assert!(e.is_interactive_signin_success());
        assert_eq!(e.actor.key, "carol@example.com");
        assert_eq!(e.src.ip, "2001:db8::7".parse().ok());
        assert_eq!(out[1].activity, Activity::ApiCall);
    }

    #[test]
    fn repeated_events_key_reads_the_first_consistently() {
        let text = r#"{"kind": "admin#reports#activity",
            "id": {"time": "2024-06-01T08:00:00Z", "uniqueQualifier": "7", "applicationName": "admin"},
            "events": [{"name": "FIRST"}], "events": [{"name": "SECOND"}, {"name": "THIRD"}]}"#;
        let v = crate::json::parse(text.as_bytes()).expect("parses");
        let out = normalize(v).expect("ok");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].action, "FIRST");
        assert_eq!(out[0].raw["events"][0]["name"], "FIRST");
    }

    #[test]
    fn single_event_uid_and_failure() {
        let v = activity_with(
            "login",
            json!([{"name": "login_failure", "parameters": [
            {"name": "login_failure_type", "value": "login_failure_invalid_password"},
            {"name": "login_challenge_method", "multiValue": ["password"]}]}]),
        );
        let e = normalize(v).expect("ok").remove(0);
        assert_eq!(e.uid, "-4321");
        assert_eq!(
            (e.status, e.status_detail.as_deref(), e.auth.mfa),
            (
                Status::Failure,
                Some("login_failure_invalid_password"),
                Some(false)
            )
        );
    }

    #[test]
    fn token_authorize_is_consent() {
        let v = activity_with(
            "token",
            json!([{"type": "auth", "name": "authorize", "parameters": [
            {"name": "client_id", "value": "1234.apps.googleusercontent.com"},
            {"name": "app_name", "value": "Mail Helper"},
            {"name": "scope", "multiValue": ["https://mail.google.com/", "openid"]}]}]),
        );
        let e = normalize(v).expect("ok").remove(0);
        assert_eq!(e.activity, Activity::ConsentGrant);
        let o = e.oauth.expect("oauth");
        assert_eq!(o.app_id.as_deref(), Some("1234.apps.googleusercontent.com"));
        assert_eq!(o.scopes, ["https://mail.google.com/", "openid"]);
        assert!(!o.admin_consent);
    }

    #[test]
    fn errors_name_fields() {
        let mut v = activity_with("admin", json!([]));
        assert_eq!(normalize(v.clone()).map(|e| e.len()), Ok(0));
        v["events"] = json!({});
        assert!(matches!(
            normalize(v.clone()),
            Err(NormalizeError::Invalid {
                field: "events",
                ..
            })
        ));
        v["events"] = json!([{"parameters": []}]);
        assert_eq!(
            normalize(v.clone()),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "events[].name"
            })
        );
        v["id"] = json!({"time": "2024-06-01T08:00:00Z"});
        assert_eq!(
            normalize(v),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "id.uniqueQualifier"
            })
        );
    }
}
