//! Microsoft Entra directory audits as Microsoft Graph returns them (`directoryAudit`) ->
//! [`IdentityEvent`]s. [`build`] is shared with the Azure Monitor export (the `properties`
//! of an AuditLogs record is the same object).
//!
//! Mapping: `activityDateTime` -> time, `id` -> uid, `activityDisplayName` -> action,
//! `category` -> service, `result` -> status (`resultReason` as detail when failed),
//! `initiatedBy.user` (User) or `initiatedBy.app` (ServicePrincipal) -> actor,
//! `targetResources[]` -> targets, `additionalDetails` `User-Agent` -> src.user_agent.
//! Activities: see [`activity`]. Consent activities get `oauth` from the modified
//! properties: see [`oauth_grant`].
//!
//! To classify one more activity: add its display name to [`activity`].

use crate::json::{Fields, JsonContainerTrait, JsonValueTrait, Raw, Value};
use chrono::{DateTime, Utc};

use super::NormalizeError;
use super::util::{
    array_of, class_of, endpoint, get, identity_key, is_email, is_guid, is_nil_guid, members,
    parse_bool, require_object, required_str, required_time, status_from_word, str_at, str_of,
    string_at, string_of,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, OAuthGrant, PrincipalType, RecordKind, Status,
    Target,
};

const KIND: RecordKind = RecordKind::EntraAudit;

/// Normalizes one Graph `directoryAudit` into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let mut event = build(raw.fields(), KIND, None)?;
    event.raw = raw;
    Ok(vec![event])
}

members! {
    /// The members of a `directoryAudit` the event is built from.
    Audit {
        id: "id",
        time: "activityDateTime",
        action: "activityDisplayName",
        targets: "targetResources",
        result: "result",
        result_reason: "resultReason",
        details: "additionalDetails",
        initiated_by: "initiatedBy",
        tenant: "tenantId",
        category: "category",
    }
}

members! {
    /// `initiatedBy`.
    InitiatedBy {
        user: "user",
        app: "app",
    }
}

members! {
    /// `initiatedBy.user`.
    User {
        id: "id",
        upn: "userPrincipalName",
        name: "displayName",
        tenant: "homeTenantId",
        ip: "ipAddress",
    }
}

members! {
    /// `initiatedBy.app`.
    App {
        sp_id: "servicePrincipalId",
        app_id: "appId",
        name: "displayName",
        sp_name: "servicePrincipalName",
    }
}

members! {
    /// An element of `targetResources[]`.
    TargetResource {
        ty: "type",
        ty_pascal: "Type",
        id: "id",
        name: "displayName",
        upn: "userPrincipalName",
    }
}

members! {
    /// An element of `additionalDetails[]`.
    Detail {
        key: "key",
        value: "value",
    }
}

/// Builds the event from a `directoryAudit` object `a` (with `raw` left `Null`); errors name
/// `kind`. `time` overrides `activityDateTime`.
pub(crate) fn build(
    a: &Fields<'_>,
    kind: RecordKind,
    time: Option<DateTime<Utc>>,
) -> Result<IdentityEvent, NormalizeError> {
    let m = Audit::in_fields(a);
    let time = match time {
        Some(t) => t,
        None => required_time(m.time, "activityDateTime", kind)?,
    };
    let uid = required_str(m.id, "id", kind)?.to_owned();
    let action = required_str(m.action, "activityDisplayName", kind)?;
    let targets_raw = array_of(m.targets);
    let activity = activity(action, targets_raw);

    let status = status_from_word(str_of(m.result));
    let status_detail = (status == Status::Failure)
        .then(|| string_of(m.result_reason))
        .flatten();

    let user_agent = m.details.and_then(Value::as_array).and_then(|d| {
        d.iter()
            .map(|kv| Detail::of(Some(kv)))
            .find(|kv| str_of(kv.key) == Some("User-Agent"))
            .and_then(|kv| str_of(kv.value))
    });
    let (actor, ip) = actor(&InitiatedBy::of(m.initiated_by));
    let oauth = (activity == Activity::ConsentGrant).then(|| oauth_grant(action, targets_raw));

    Ok(IdentityEvent {
        time,
        kind,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account: string_of(m.tenant),
        region: None,
        src: endpoint(ip, user_agent),
        actor,
        action: action.to_owned(),
        service: string_of(m.category),
        targets: targets_raw
            .iter()
            .map(target)
            .filter(|t| t.uid.is_some() || t.name.is_some())
            .collect(),
        auth: AuthFacts::default(),
        oauth,
        uid,
        raw: Raw::default(),
    })
}

/// The initiator and its IP: `initiatedBy.user` (id, userPrincipalName, displayName,
/// ipAddress) or `initiatedBy.app` (servicePrincipalId, appId, displayName). The all-zero
/// GUID Entra logs for "no principal" is dropped.
fn actor<'v>(by: &InitiatedBy<'v>) -> (Actor, Option<&'v str>) {
    let real = |v: Option<&'v str>| v.filter(|x| !is_nil_guid(x));
    if let Some(user) = by.user.filter(|u| u.is_object()) {
        let user = User::of(Some(user));
        let uid = real(str_of(user.id));
        let upn = str_of(user.upn);
        let email = upn.filter(|u| is_email(u));
        let has_principal = uid.is_some() || upn.is_some();
        let actor = Actor {
            key: identity_key(email, &[uid, upn]),
            uid: uid.map(str::to_owned),
            name: string_of(user.name),
            email: email.map(str::to_owned),
            principal_type: if has_principal {
                PrincipalType::User
            } else {
                PrincipalType::Unknown
            },
            account: string_of(user.tenant),
            ..Actor::default()
        };
        if has_principal || by.app.is_none_or(Value::is_null) {
            return (actor, str_of(user.ip));
        }
    }
    if let Some(app) = by.app.filter(|u| u.is_object()) {
        let app = App::of(Some(app));
        let uid = real(str_of(app.sp_id)).or_else(|| real(str_of(app.app_id)));
        let actor = Actor {
            key: identity_key(None, &[uid]),
            uid: uid.map(str::to_owned),
            name: str_of(app.name)
                .or_else(|| str_of(app.sp_name))
                .map(str::to_owned),
            principal_type: PrincipalType::ServicePrincipal,
            ..Actor::default()
        };
        return (actor, None);
    }
    (Actor::default(), None)
}

fn target(t: &Value) -> Target {
    let t = TargetResource::of(Some(t));
    let kind = str_of(t.ty)
        .or_else(|| str_of(t.ty_pascal))
        .filter(|k| !k.eq_ignore_ascii_case("N/A"))
        .map(|k| match k {
            "ServicePrincipal" => "service_principal".to_owned(),
            other => other.to_ascii_lowercase(),
        });
    Target {
        uid: str_of(t.id).filter(|x| !is_nil_guid(x)).map(str::to_owned),
        name: str_of(t.name).or_else(|| str_of(t.upn)).map(str::to_owned),
        kind,
    }
}

/// The activity of an `activityDisplayName` (best effort; everything else is `ApiCall`):
/// - ConsentGrant: `Consent to application`, `Add delegated permission grant`,
///   `Add app role assignment to service principal`, `Add OAuth2PermissionGrant`.
/// - CredentialCreate: app/SP credentials (`Add service principal credentials`,
///   `Update application – Certificates and secrets management`), password resets and
///   changes, federation trust changes (`Set domain authentication`, `Set federation settings
///   on domain`: a new token-signing trust is a credential).
/// - MfaChange: security info / authentication method registration, change or deletion,
///   `Disable Strong Authentication`, and `Update user` touching `StrongAuthentication*`.
/// - PrivilegeGrant: directory role membership (incl. PIM and eligible), app/SP owners.
pub(crate) fn activity(action: &str, targets: &[Value]) -> Activity {
    let a = action.trim();
    let lower = a.to_ascii_lowercase();
    match a {
        "Consent to application"
        | "Add delegated permission grant"
        | "Add app role assignment to service principal"
        | "Add OAuth2PermissionGrant" => Activity::ConsentGrant,
        "Add service principal credentials"
        | "Update application – Certificates and secrets management"
        | "Update application - Certificates and secrets management"
        | "Reset password (by admin)"
        | "Reset user password"
        | "Change user password"
        | "Change password (self-service)"
        | "Reset password (self-service)"
        | "Set domain authentication"
        | "Set federation settings on domain" => Activity::CredentialCreate,
        "Disable Strong Authentication" => Activity::MfaChange,
        "Add member to role"
        | "Add eligible member to role"
        | "Add scoped member to role"
        | "Add owner to application"
        | "Add owner to service principal" => Activity::PrivilegeGrant,
        _ if lower.starts_with("add member to role in pim")
            || lower.starts_with("add eligible member to role in pim") =>
        {
            Activity::PrivilegeGrant
        }
        _ if lower.contains("security info") || lower.contains("authentication method") => {
            Activity::MfaChange
        }
        "Update user" if modified_names(targets).any(|n| n.starts_with("StrongAuthentication")) => {
            Activity::MfaChange
        }
        _ => Activity::ApiCall,
    }
}

fn modified_props(targets: &[Value]) -> impl Iterator<Item = &Value> {
    targets.iter().flat_map(|t| {
        get(t, "modifiedProperties")
            .and_then(Value::as_array)
            .map(|a| &a[..])
            .unwrap_or_default()
    })
}

fn modified_names(targets: &[Value]) -> impl Iterator<Item = &str> {
    modified_props(targets).filter_map(|p| str_at(p, "displayName"))
}

/// The new value of the first modified property named `name`, with its JSON quoting
/// removed (`"\"True\""` -> `True`).
fn modified(targets: &[Value], name: &str) -> Option<String> {
    modified_props(targets)
        .find(|p| str_at(p, "displayName") == Some(name))
        .and_then(|p| str_at(p, "newValue"))
        .map(unquote)
        .filter(|v| !v.trim().is_empty())
}

/// Removes one level of JSON string quoting, as Entra logs modified property values.
pub(crate) fn unquote(s: &str) -> String {
    match serde_json::from_str::<String>(s) {
        Ok(inner) => inner,
        Err(_) => s.trim().trim_matches('"').to_owned(),
    }
}

/// The OAuth grant of a consent activity:
/// - scopes: `ConsentAction.Permissions` (every `Scope:` of the grants after `=>`), else
///   `DelegatedPermissionGrant.Scope`, else `AppRole.Value`; split on spaces, deduplicated.
/// - admin consent: `ConsentContext.IsAdminConsent`, else a tenant-wide grant; app role
///   assignments (application permissions) always need an admin.
/// - all principals: `ConsentContext.OnBehalfOfAll`, or `ConsentType: AllPrincipals`.
/// - app: `Consent to application` targets the client service principal (display name; app
///   id from `TargetId.ServicePrincipalNames`, the GUID entry). For permission grants and app
///   role assignments the first target is the resource API; the client is named by the
///   `ServicePrincipal.AppId` / `ServicePrincipal.DisplayName` properties when logged, else
///   the target whose id is `ServicePrincipal.ObjectID`.
pub(crate) fn oauth_grant(action: &str, targets: &[Value]) -> OAuthGrant {
    let permissions = modified(targets, "ConsentAction.Permissions");
    let parsed = permissions.as_deref().map(parse_permissions);
    let mut scopes: Vec<String> = Vec::new();
    let mut all_principals_type = false;
    if let Some((s, all)) = parsed {
        scopes.extend(s);
        all_principals_type = all;
    }
    if scopes.is_empty()
        && let Some(s) = modified(targets, "DelegatedPermissionGrant.Scope")
    {
        scopes.extend(s.split_whitespace().map(str::to_owned));
    }
    if scopes.is_empty()
        && let Some(s) = modified(targets, "AppRole.Value")
    {
        scopes.extend(s.split_whitespace().map(str::to_owned));
    }
    let mut seen = std::collections::HashSet::new();
    scopes.retain(|s| seen.insert(s.clone()));

    let consent_type = modified(targets, "DelegatedPermissionGrant.ConsentType");
    all_principals_type |= consent_type.as_deref() == Some("AllPrincipals");
    let is_app_role = action.trim() == "Add app role assignment to service principal";
    let all_principals = modified(targets, "ConsentContext.OnBehalfOfAll")
        .and_then(|v| parse_bool(&v))
        .unwrap_or(false)
        || all_principals_type
        || is_app_role;
    let admin_consent = modified(targets, "ConsentContext.IsAdminConsent")
        .and_then(|v| parse_bool(&v))
        .unwrap_or(all_principals_type || is_app_role);

    let (app_id, app_name) = if action.trim() == "Consent to application" {
        let first = targets.first();
        let app_id = modified(targets, "TargetId.ServicePrincipalNames").and_then(|names| {
            names
                .split(';')
                .map(str::trim)
                .find(|n| is_guid(n))
                .map(str::to_owned)
        });
        (app_id, first.and_then(|t| string_at(t, "displayName")))
    } else {
        let object_id = modified(targets, "ServicePrincipal.ObjectID");
        let client = object_id
            .as_deref()
            .and_then(|id| targets.iter().find(|t| str_at(t, "id") == Some(id)));
        (
            modified(targets, "ServicePrincipal.AppId"),
            modified(targets, "ServicePrincipal.DisplayName")
                .or_else(|| client.and_then(|t| string_at(t, "displayName"))),
        )
    };
    OAuthGrant {
        app_id,
        app_name,
        scopes,
        admin_consent,
        all_principals,
        publisher_verified: None,
    }
}

/// Parses a `ConsentAction.Permissions` value such as
/// `[] => [[Id: x, ClientId: y, PrincipalId: , ResourceId: z, ConsentType: AllPrincipals,
/// Scope:  Mail.Read offline_access, CreatedDateTime: , LastModifiedDateTime: ]]; `
/// into the granted scopes (of the grants after the last `=>`) and whether a grant is for
/// all principals.
pub(crate) fn parse_permissions(value: &str) -> (Vec<String>, bool) {
    let granted = value.rsplit("=>").next().unwrap_or(value);
    let field = |part: &str, name: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = part;
        let needle = format!("{name}:");
        while let Some(pos) = rest.find(&needle) {
            // Only a whole field name: start of text or after '[', ',' or space.
            let boundary = rest[..pos]
                .chars()
                .next_back()
                .is_none_or(|c| matches!(c, '[' | ',' | ' '));
            let after = &rest[pos + needle.len()..];
            let end = after.find([',', ']', ';']).unwrap_or(after.len());
            if boundary {
                out.push(after[..end].trim().to_owned());
            }
            rest = &after[end..];
        }
        out
    };
    let scopes = field(granted, "Scope")
        .iter()
        .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let all = field(granted, "ConsentType")
        .iter()
        .any(|t| t == "AllPrincipals");
    (scopes, all)
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

    fn prop(name: &str, new: &str) -> Value {
        json!({"displayName": name, "oldValue": null, "newValue": new})
    }

    fn consent(props: Vec<Value>) -> Value {
        json!({
            "id": "Directory_1", "category": "ApplicationManagement", "result": "success",
            "activityDisplayName": "Consent to application", "activityDateTime": "2024-02-03T04:05:06Z",
            "loggedByService": "Core Directory",
            "initiatedBy": {"user": {"id": "u-1", "userPrincipalName": "Victim@Contoso.com", "ipAddress": "198.51.100.20"}},
            "targetResources": [{"id": "sp-obj-1", "displayName": "Evil Mail Reader", "type": "ServicePrincipal", "modifiedProperties": props}]
        })
    }

    #[test]
    fn consent_to_application_scopes_and_flags() {
        let e = one(consent(vec![
            prop("ConsentContext.IsAdminConsent", "\"False\""),
            prop("ConsentContext.OnBehalfOfAll", "\"False\""),
            prop(
                "ConsentAction.Permissions",
                "\"[] => [[Id: aBc, ClientId: sp-obj-1, PrincipalId: u-1, ResourceId: graph-1, ConsentType: Principal, Scope:  Mail.Read offline_access User.Read, CreatedDateTime: , LastModifiedDateTime: ]]; \"",
            ),
            prop(
                "TargetId.ServicePrincipalNames",
                "\"1b2c3d4e-0000-4000-8000-00000000abcd;https://evil.example\"",
            ),
        ]));
        assert_eq!(
            (e.activity, e.class),
            (Activity::ConsentGrant, crate::model::EventClass::UserAccess)
        );
        let o = e.oauth.expect("oauth");
        assert_eq!(o.scopes, ["Mail.Read", "offline_access", "User.Read"]);
        assert_eq!(
            o.app_id.as_deref(),
            Some("1b2c3d4e-0000-4000-8000-00000000abcd")
        );
        assert_eq!(o.app_name.as_deref(), Some("Evil Mail Reader"));
        assert!(!o.admin_consent && !o.all_principals);
        assert_eq!(e.actor.key, "victim@contoso.com");
        assert_eq!(e.src.raw.as_deref(), Some("198.51.100.20"));
    }

    #[test]
    fn consent_admin_all_principals_from_grant_type() {
        let e = one(consent(vec![
            prop("ConsentContext.IsAdminConsent", "\"True\""),
            prop(
                "ConsentAction.Permissions",
                "\"[[Id: o, ConsentType: Principal, Scope: User.Read, CreatedDateTime: ]] => [[Id: o, ConsentType: AllPrincipals, Scope:  User.Read Files.ReadWrite.All, CreatedDateTime: ], [Id: p, ConsentType: AllPrincipals, Scope: Mail.Send]]; \"",
            ),
        ]));
        let o = e.oauth.expect("oauth");
        assert_eq!(o.scopes, ["User.Read", "Files.ReadWrite.All", "Mail.Send"]);
        assert!(o.admin_consent && o.all_principals);
    }

    #[test]
    fn permissions_parser_edge_cases() {
        assert_eq!(parse_permissions(""), (vec![], false));
        assert_eq!(parse_permissions("[] => []; "), (vec![], false));
        assert_eq!(
            parse_permissions("Scope: a b]"),
            (vec!["a".to_owned(), "b".to_owned()], false)
        );
        // A field merely ending in "Scope" is not the Scope field.
        assert_eq!(parse_permissions("[[NotScope: x, Scope: y]]").0, ["y"]);
    }

    #[test]
    fn delegated_grant_and_app_role() {
        let mut v = consent(vec![]);
        v["activityDisplayName"] = json!("Add delegated permission grant");
        v["targetResources"] = json!([
            {"id": "graph-sp", "displayName": "Microsoft Graph", "type": "ServicePrincipal", "modifiedProperties": [
                prop("DelegatedPermissionGrant.Scope", "\"User.Read Mail.ReadWrite\""),
                prop("DelegatedPermissionGrant.ConsentType", "\"AllPrincipals\""),
                prop("ServicePrincipal.ObjectID", "\"client-sp\"")]},
            {"id": "client-sp", "displayName": "SimuLandApp", "type": "ServicePrincipal", "modifiedProperties": []}]);
        let o = one(v.clone()).oauth.expect("oauth");
        assert_eq!(o.scopes, ["User.Read", "Mail.ReadWrite"]);
        assert_eq!(o.app_name.as_deref(), Some("SimuLandApp"));
        assert!(o.admin_consent && o.all_principals);

        v["activityDisplayName"] = json!("Add app role assignment to service principal");
        v["targetResources"] = json!([{"id": "graph-sp", "displayName": "Microsoft Graph", "type": "ServicePrincipal", "modifiedProperties": [
            prop("AppRole.Value", "\"Mail.Read\""), prop("ServicePrincipal.AppId", "\"app-9\""), prop("ServicePrincipal.DisplayName", "\"Backdoor\"")]}]);
        let o = one(v).oauth.expect("oauth");
        assert_eq!(
            (
                o.scopes.as_slice(),
                o.app_id.as_deref(),
                o.app_name.as_deref()
            ),
            (
                &["Mail.Read".to_owned()][..],
                Some("app-9"),
                Some("Backdoor")
            )
        );
        assert!(o.admin_consent);
    }

    #[test]
    fn activity_table_and_app_actor() {
        assert_eq!(
            activity("Add member to role", &[]),
            Activity::PrivilegeGrant
        );
        assert_eq!(
            activity("Add member to role in PIM completed (permanent)", &[]),
            Activity::PrivilegeGrant
        );
        assert_eq!(
            activity(
                "Update application – Certificates and secrets management ",
                &[]
            ),
            Activity::CredentialCreate
        );
        assert_eq!(
            activity("Reset password (by admin)", &[]),
            Activity::CredentialCreate
        );
        assert_eq!(
            activity("User deleted security info", &[]),
            Activity::MfaChange
        );
        let t = [json!({"modifiedProperties": [{"displayName": "StrongAuthenticationMethod"}]})];
        assert_eq!(activity("Update user", &t), Activity::MfaChange);
        assert_eq!(activity("Update user", &[]), Activity::ApiCall);
        assert_eq!(activity("Add member to group", &[]), Activity::ApiCall);

        let mut v = consent(vec![]);
        v["activityDisplayName"] = json!("Add service principal credentials");
        v["result"] = json!("failure");
        v["resultReason"] = json!("denied");
        v["initiatedBy"] = json!({"user": null, "app": {"appId": "app-1", "displayName": "Automation", "servicePrincipalId": "sp-1"}});
        let e = one(v);
        assert_eq!(
            (e.actor.principal_type, e.actor.key.as_str()),
            (PrincipalType::ServicePrincipal, "sp-1")
        );
        assert_eq!(
            (e.status, e.status_detail.as_deref()),
            (Status::Failure, Some("denied"))
        );
        assert!(e.oauth.is_none());
    }

    #[test]
    fn missing_fields_are_named() {
        let mut v = consent(vec![]);
        v.as_object_mut().map(|o| o.remove(&"activityDisplayName"));
        assert_eq!(
            normalize(v),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "activityDisplayName"
            })
        );
    }
}
