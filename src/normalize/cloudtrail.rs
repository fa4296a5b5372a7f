//! AWS CloudTrail records -> [`IdentityEvent`]s, also when a record arrives inside an
//! EventBridge envelope (`detail-type` "AWS API Call via CloudTrail", "AWS Console Sign In
//! via CloudTrail", ...): the event is then built from `detail`, and `raw` is the inner
//! CloudTrail record so rules see the CloudTrail shape.
//!
//! Mapping: `eventTime` -> time, `eventID` -> uid, `eventName` -> action, `eventSource` ->
//! service, `awsRegion` -> region, `recipientAccountId` -> account; `errorCode` -> Failure
//! with `status_detail = errorCode`; `ConsoleLogin` -> a sign-in whose outcome is
//! `responseElements.ConsoleLogin` and whose MFA is `additionalEventData.MFAUsed`. The actor
//! follows `userIdentity.type` (see [`actor`]). Activities come from the [`activity`] table.
//!
//! To classify one more API: add its `eventName` to the table in [`activity`].

use crate::json::{JsonValueMutTrait, Raw, Value};

use super::NormalizeError;
use super::util::{
    array_of, bool_of, class_of, endpoint, identity_key, is_email, member, members, parse_bool,
    require_object, required_str, required_time, str_at, str_of, string_at, string_of,
};
use crate::model::{
    Activity, Actor, AuthFacts, IdentityEvent, PrincipalType, RecordKind, Status, Target,
};

const KIND: RecordKind = RecordKind::Cloudtrail;

members! {
    /// The members of a CloudTrail record the event is built from (and an envelope's
    /// `detail-type`).
    Record {
        time: "eventTime",
        id: "eventID",
        name: "eventName",
        source: "eventSource",
        error_code: "errorCode",
        error_message: "errorMessage",
        account: "recipientAccountId",
        region: "awsRegion",
        ip: "sourceIPAddress",
        user_agent: "userAgent",
        identity: "userIdentity",
        response: "responseElements",
        additional: "additionalEventData",
        resources: "resources",
        params: "requestParameters",
        detail_type: "detail-type",
    }
}

members! {
    /// The members of `userIdentity` the actor is built from.
    Identity {
        ty: "type",
        arn: "arn",
        account: "accountId",
        access_key: "accessKeyId",
        credential: "credentialId",
        principal_id: "principalId",
        user_name: "userName",
        invoked_by: "invokedBy",
        on_behalf_of: "onBehalfOf",
        session: "sessionContext",
    }
}

members! {
    /// `userIdentity.sessionContext`.
    Session {
        issuer: "sessionIssuer",
        attributes: "attributes",
    }
}

members! {
    /// The `requestParameters` that name a target.
    Params {
        user_name: "userName",
        role_name: "roleName",
        group_name: "groupName",
        policy_arn: "policyArn",
        trail_name: "trailName",
        name: "name",
    }
}

members! {
    /// An element of `resources[]`.
    Resource {
        arn: "ARN",
        ty: "type",
    }
}

/// Normalizes one CloudTrail record (or EventBridge envelope of one) into one event.
pub fn normalize(raw: impl Into<Raw>) -> Result<Vec<IdentityEvent>, NormalizeError> {
    let raw: Raw = raw.into();
    require_object(&raw, KIND)?;
    let r = Record::in_fields(raw.fields());
    if str_of(r.detail_type).is_some() {
        let record = Raw::new(unwrap_envelope(raw.into_value())?);
        let mut event = from_record(&Record::in_fields(record.fields()))?;
        event.raw = record;
        return Ok(vec![event]);
    }
    let mut event = from_record(&r)?;
    event.raw = raw;
    Ok(vec![event])
}

/// The inner CloudTrail record of an EventBridge envelope.
fn unwrap_envelope(mut envelope: Value) -> Result<Value, NormalizeError> {
    let detail_type = str_at(&envelope, "detail-type").unwrap_or_default();
    if !detail_type.ends_with("via CloudTrail") {
        return Err(NormalizeError::Invalid {
            kind: KIND,
            field: "detail-type",
            message: format!("not a CloudTrail event: {detail_type:?}"),
        });
    }
    let envelope_id = string_at(&envelope, "id");
    let envelope_time = string_at(&envelope, "time");
    let mut detail = envelope
        .as_object_mut()
        .and_then(|o| o.remove(&"detail"))
        .ok_or(NormalizeError::Missing {
            kind: KIND,
            field: "detail",
        })?;
    let Some(obj) = detail.as_object_mut() else {
        return Err(NormalizeError::Invalid {
            kind: KIND,
            field: "detail",
            message: "expected a JSON object".to_owned(),
        });
    };
    // EventBridge copies the whole record into `detail`; should a producer drop the id or
    // time there, the envelope's own are the best stand-in.
    if let (false, Some(id)) = (obj.contains_key(&"eventID"), envelope_id) {
        obj.insert("eventID", id.as_str());
    }
    if let (false, Some(t)) = (obj.contains_key(&"eventTime"), envelope_time) {
        obj.insert("eventTime", t.as_str());
    }
    Ok(detail)
}

fn from_record(r: &Record<'_>) -> Result<IdentityEvent, NormalizeError> {
    let time = required_time(r.time, "eventTime", KIND)?;
    let uid = required_str(r.id, "eventID", KIND)?.to_owned();
    let action = required_str(r.name, "eventName", KIND)?;
    let activity = activity(action);

    let identity = Identity::of(r.identity);
    let session = Session::of(identity.session);
    let actor = actor(&identity, &session);
    let error_code = str_of(r.error_code);
    let (status, status_detail, auth) = if action == "ConsoleLogin" {
        console_login(r, error_code)
    } else {
        let auth = AuthFacts {
            mfa: bool_of(member(session.attributes, "mfaAuthenticated")),
            mfa_failed: action == "CheckMfa"
                && str_of(member(r.response, "CheckMfa")) == Some("Failure"),
            ..AuthFacts::default()
        };
        match error_code {
            Some(code) => (Status::Failure, Some(code.to_owned()), auth),
            None if auth.mfa_failed => (Status::Failure, Some("Failure".to_owned()), auth),
            None => (Status::Success, None, auth),
        }
    };

    Ok(IdentityEvent {
        time,
        kind: KIND,
        class: class_of(activity),
        activity,
        status,
        status_detail,
        account: string_of(r.account).or_else(|| actor.account.clone()),
        region: string_of(r.region),
        src: endpoint(str_of(r.ip), str_of(r.user_agent)),
        actor,
        action: action.to_owned(),
        service: string_of(r.source),
        targets: targets(r, action),
        auth,
        oauth: None,
        uid,
        raw: Raw::default(),
    })
}

/// Outcome and auth facts of a `ConsoleLogin`: `responseElements.ConsoleLogin` is
/// `Success`/`Failure` (an `errorCode`/`errorMessage` also means failure); MFA is
/// `additionalEventData.MFAUsed` (`Yes`/`No`). A failed login that had reached the MFA step
/// (`MFAUsed: Yes`) counts as an MFA failure.
fn console_login(r: &Record<'_>, error_code: Option<&str>) -> (Status, Option<String>, AuthFacts) {
    let result = str_of(member(r.response, "ConsoleLogin"));
    let failed = result == Some("Failure") || error_code.is_some();
    let status = match (failed, result) {
        (true, _) => Status::Failure,
        (false, Some("Success")) => Status::Success,
        _ => Status::Unknown,
    };
    let detail = failed.then(|| {
        error_code
            .or_else(|| str_of(r.error_message))
            .unwrap_or("Failure")
            .to_owned()
    });
    let mfa = str_of(member(r.additional, "MFAUsed")).and_then(parse_bool);
    let auth = AuthFacts {
        mfa,
        interactive: Some(true),
        mfa_failed: failed && mfa == Some(true),
        ..AuthFacts::default()
    };
    (status, detail, auth)
}

/// The acting principal, by `userIdentity.type`:
/// - `IAMUser`: uid = ARN (principalId when no ARN is logged), name = userName (an email-shaped userName is the email), User.
/// - `AssumedRole`: uid = session ARN, name = session name, session_issuer = role ARN, Role;
///   a session name that is an email (Identity Center / SSO) is the email.
/// - `FederatedUser`: uid = ARN, name = federated user name, session_issuer = the IAM user, Role.
/// - `Root`: uid = ARN, Root. `AWSAccount`: uid = principalId or accountId, Account.
/// - `AWSService` (and records with only `invokedBy`): uid = invokedBy, Service.
/// - `IdentityCenterUser`: uid = `onBehalfOf.userId`, credential = `credentialId`, User.
/// - `SAMLUser` / `WebIdentityUser`: uid = principalId, name = userName, User.
fn actor(id: &Identity<'_>, session: &Session<'_>) -> Actor {
    let arn = str_of(id.arn);
    let account = str_of(id.account);
    let principal_id = str_of(id.principal_id);
    let user_name = str_of(id.user_name);
    let invoked_by = str_of(id.invoked_by);
    let credential_id = str_of(id.access_key).or_else(|| str_of(id.credential));
    fn last_segment(a: Option<&str>) -> Option<&str> {
        a.and_then(|a| a.rsplit('/').next())
    }
    let (principal_type, uid, name) = match str_of(id.ty) {
        // Failed console logins log no ARN: the principalId (AIDA...) is the stable id.
        Some("IAMUser") => (PrincipalType::User, arn.or(principal_id), user_name),
        Some("AssumedRole") => (PrincipalType::Role, arn, last_segment(arn)),
        Some("FederatedUser") => (PrincipalType::Role, arn, last_segment(arn)),
        Some("Root") => (PrincipalType::Root, arn.or(account), user_name),
        Some("AWSAccount") => (PrincipalType::Account, principal_id.or(account), None),
        Some("AWSService") => (PrincipalType::Service, invoked_by, invoked_by),
        Some("IdentityCenterUser") => (
            PrincipalType::User,
            str_of(member(id.on_behalf_of, "userId")).or(principal_id),
            user_name,
        ),
        Some("SAMLUser" | "WebIdentityUser") => (PrincipalType::User, principal_id, user_name),
        Some(_) => (PrincipalType::Unknown, arn.or(principal_id), user_name),
        None => match invoked_by {
            Some(svc) => (PrincipalType::Service, Some(svc), Some(svc)),
            None => (PrincipalType::Account, account, None),
        },
    };
    let email = name.filter(|n| is_email(n));
    Actor {
        key: identity_key(email, &[uid, account]),
        uid: uid.map(str::to_owned),
        name: name.map(str::to_owned),
        email: email.map(str::to_owned),
        principal_type,
        account: account.map(str::to_owned),
        credential_id: credential_id.map(str::to_owned),
        session_issuer: string_of(member(session.issuer, "arn")),
    }
}

/// What the call acted on: `resources[]` (ARN + type), then the IAM names and trail name in
/// `requestParameters`.
fn targets(r: &Record<'_>, action: &str) -> Vec<Target> {
    let mut out: Vec<Target> = array_of(r.resources)
        .iter()
        .filter_map(|res| {
            let res = Resource::of(Some(res));
            Some(Target {
                uid: Some(string_of(res.arn)?),
                name: None,
                kind: string_of(res.ty),
            })
        })
        .collect();
    let params = Params::of(r.params);
    let mut push = |v: Option<&Value>, kind: &str| {
        if let Some(v) = str_of(v) {
            out.push(Target {
                uid: Some(v.to_owned()),
                name: Some(v.to_owned()),
                kind: Some(kind.to_owned()),
            });
        }
    };
    push(params.user_name, "user");
    push(params.role_name, "role");
    push(params.group_name, "group");
    push(params.policy_arn, "policy");
    push(params.trail_name, "trail");
    if matches!(
        action,
        "StopLogging" | "DeleteTrail" | "UpdateTrail" | "PutEventSelectors"
    ) {
        push(params.name, "trail");
    }
    out
}

/// The activity of a CloudTrail `eventName` (best effort; everything else is `ApiCall`).
pub(crate) fn activity(event_name: &str) -> Activity {
    match event_name {
        "ConsoleLogin" => Activity::SignIn,
        // New long-lived or temporary credentials, and trust anchors that mint them.
        "CreateAccessKey"
        | "CreateLoginProfile"
        | "UpdateLoginProfile"
        | "CreateServiceSpecificCredential"
        | "UploadSSHPublicKey"
        | "UploadSigningCertificate"
        | "GetFederationToken"
        | "CreateTrustAnchor" => Activity::CredentialCreate,
        "CreateVirtualMFADevice"
        | "EnableMFADevice"
        | "DeactivateMFADevice"
        | "DeleteVirtualMFADevice"
        | "ResyncMFADevice" => Activity::MfaChange,
        "AttachUserPolicy"
        | "AttachRolePolicy"
        | "AttachGroupPolicy"
        | "PutUserPolicy"
        | "PutRolePolicy"
        | "PutGroupPolicy"
        | "AddUserToGroup"
        | "CreatePolicyVersion"
        | "SetDefaultPolicyVersion"
        | "UpdateAssumeRolePolicy" => Activity::PrivilegeGrant,
        // Audit trails, flow/DNS logs, detectors and the organization (its trail) weakened.
        "StopLogging"
        | "DeleteTrail"
        | "UpdateTrail"
        | "PutEventSelectors"
        | "DeleteFlowLogs"
        | "DeleteResolverQueryLogConfig"
        | "DeleteLogGroup"
        | "DeleteDetector"
        | "UpdateDetector"
        | "StopConfigurationRecorder"
        | "DeleteConfigurationRecorder"
        | "DeleteDeliveryChannel"
        | "LeaveOrganization" => Activity::LoggingChange,
        _ => Activity::ApiCall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonContainerTrait, JsonValueMutTrait, json};

    fn one(raw: Value) -> IdentityEvent {
        let mut v = normalize(raw).expect("normalizes");
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn record(identity: Value) -> Value {
        json!({
            "eventVersion": "1.09", "eventTime": "2024-05-01T10:00:00Z", "eventID": "e-1",
            "eventSource": "iam.amazonaws.com", "eventName": "ListUsers",
            "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
            "recipientAccountId": "111122223333", "userIdentity": identity
        })
    }

    #[test]
    fn every_identity_type() {
        let cases = [
            (
                json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/Alice", "userName": "Alice", "accountId": "111122223333", "accessKeyId": "AKIAX"}),
                PrincipalType::User,
                "arn:aws:iam::111122223333:user/Alice",
                None,
            ),
            (
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_1/Alice@Corp.Example", "accountId": "111122223333",
                    "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1"}}}),
                PrincipalType::Role,
                "alice@corp.example",
                Some("Alice@Corp.Example"),
            ),
            (
                json!({"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/r/botocore-session-1", "accountId": "111122223333"}),
                PrincipalType::Role,
                "arn:aws:sts::111122223333:assumed-role/r/botocore-session-1",
                None,
            ),
            (
                json!({"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}),
                PrincipalType::Root,
                "arn:aws:iam::111122223333:root",
                None,
            ),
            (
                json!({"type": "FederatedUser", "arn": "arn:aws:sts::111122223333:federated-user/bob", "accountId": "111122223333",
                    "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:user/fed"}}}),
                PrincipalType::Role,
                "arn:aws:sts::111122223333:federated-user/bob",
                None,
            ),
            (
                json!({"type": "AWSService", "invokedBy": "rds.amazonaws.com"}),
                PrincipalType::Service,
                "rds.amazonaws.com",
                None,
            ),
            (
                json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "444455556666"}),
                PrincipalType::Account,
                "AIDAEXAMPLE",
                None,
            ),
            (
                json!({"type": "IdentityCenterUser", "accountId": "111122223333", "credentialId": "cred-1",
                    "onBehalfOf": {"userId": "544894e8-80c1-707f-60e3-3ba6510dfac1", "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-1"}}),
                PrincipalType::User,
                "544894e8-80c1-707f-60e3-3ba6510dfac1",
                None,
            ),
            (
                json!({"accountId": "111122223333", "invokedBy": "secretsmanager.amazonaws.com"}),
                PrincipalType::Service,
                "secretsmanager.amazonaws.com",
                None,
            ),
        ];
        for (identity, ty, key, email) in cases {
            let e = one(record(identity.clone()));
            assert_eq!(e.actor.principal_type, ty, "{identity}");
            assert_eq!(e.actor.key, key, "{identity}");
            assert_eq!(e.actor.email.as_deref(), email, "{identity}");
        }
        let e = one(record(
            json!({"type": "IdentityCenterUser", "accountId": "1", "credentialId": "cred-1", "onBehalfOf": {"userId": "u"}}),
        ));
        assert_eq!(e.actor.credential_id.as_deref(), Some("cred-1"));
        let e = one(record(
            json!({"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/bob", "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:user/fed"}}}),
        ));
        assert_eq!(
            e.actor.session_issuer.as_deref(),
            Some("arn:aws:iam::1:user/fed")
        );
        assert_eq!(e.actor.name.as_deref(), Some("bob"));
    }

    fn console_login(result: &str, mfa: &str, extra: Value) -> Value {
        let mut r = json!({
            "eventVersion": "1.08", "eventTime": "2024-08-02T08:53:24Z", "eventID": "c-1",
            "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "sourceIPAddress": "225.01.00.16", "userAgent": "Mozilla/5.0",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/u", "accountId": "1", "userName": "u"},
            "responseElements": {"ConsoleLogin": result},
            "additionalEventData": {"MFAUsed": mfa}
        });
        if let (Some(o), Some(x)) = (r.as_object_mut(), extra.as_object()) {
            for (k, v) in x.iter() {
                o.insert(k, v.clone());
            }
        }
        r
    }

    #[test]
    fn console_login_mfa_yes_no_and_failures() {
        let e = one(console_login("Success", "Yes", json!({})));
        assert_eq!(
            (e.activity, e.status, e.auth.mfa, e.auth.interactive),
            (Activity::SignIn, Status::Success, Some(true), Some(true))
        );
        assert!(e.is_interactive_signin_success());
        let e = one(console_login("Success", "No", json!({})));
        assert_eq!(
            (e.status, e.auth.mfa, e.auth.mfa_failed),
            (Status::Success, Some(false), false)
        );
        let e = one(console_login(
            "Failure",
            "No",
            json!({"errorMessage": "Failed authentication"}),
        ));
        assert_eq!(
            (e.status, e.status_detail.as_deref(), e.auth.mfa_failed),
            (Status::Failure, Some("Failed authentication"), false)
        );
        assert_eq!(e.class, crate::model::EventClass::Authentication);
        let e = one(console_login(
            "Failure",
            "Yes",
            json!({"errorMessage": "Failed authentication"}),
        ));
        assert!(e.auth.mfa_failed);
    }

    #[test]
    fn leading_zero_ip_is_kept_raw_but_unparsed() {
        let e = one(console_login("Success", "No", json!({})));
        assert_eq!(e.src.ip, None);
        assert_eq!(e.src.raw.as_deref(), Some("225.01.00.16"));
        let mut r = record(json!({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}));
        r["sourceIPAddress"] = json!("AWS Internal");
        let e = one(r);
        assert_eq!(
            (e.src.ip, e.src.raw.as_deref()),
            (None, Some("AWS Internal"))
        );
    }

    #[test]
    fn error_code_is_failure() {
        let mut r = record(json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/u"}));
        r["errorCode"] = json!("AccessDenied");
        let e = one(r);
        assert_eq!(
            (e.status, e.status_detail.as_deref()),
            (Status::Failure, Some("AccessDenied"))
        );
    }

    #[test]
    fn eventbridge_envelope_yields_the_inner_record_as_raw() {
        let inner = console_login("Success", "Yes", json!({}));
        let envelope = json!({
            "version": "0", "id": "env-1", "detail-type": "AWS Console Sign In via CloudTrail",
            "source": "aws.signin", "account": "1", "time": "2024-08-02T08:53:25Z",
            "region": "us-east-1", "resources": [], "detail": inner.clone()
        });
        assert_eq!(super::super::detect_kind(&envelope), Some(KIND));
        let e = one(envelope);
        assert_eq!(e.uid, "c-1");
        assert_eq!(*e.raw, inner);
        assert_eq!(e.activity, Activity::SignIn);

        let bad = json!({"detail-type": "EC2 Instance State-change Notification", "detail": {}});
        assert!(matches!(
            normalize(bad),
            Err(NormalizeError::Invalid {
                field: "detail-type",
                ..
            })
        ));
        let no_detail = json!({"detail-type": "AWS API Call via CloudTrail"});
        assert_eq!(
            normalize(no_detail),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "detail"
            })
        );
    }

    #[test]
    fn missing_and_wrong_fields_are_named() {
        let mut r = record(json!({"type": "IAMUser"}));
        r.as_object_mut().map(|o| o.remove(&"eventID"));
        assert_eq!(
            normalize(r.clone()),
            Err(NormalizeError::Missing {
                kind: KIND,
                field: "eventID"
            })
        );
        r["eventID"] = json!(7);
        assert!(matches!(
            normalize(r),
            Err(NormalizeError::Invalid {
                field: "eventID",
                ..
            })
        ));
        assert!(matches!(
            normalize(json!([1])),
            Err(NormalizeError::Invalid { field: "$", .. })
        ));
    }

    #[test]
    fn activity_table() {
        assert_eq!(activity("StopLogging"), Activity::LoggingChange);
        assert_eq!(activity("CreateAccessKey"), Activity::CredentialCreate);
        assert_eq!(activity("DeactivateMFADevice"), Activity::MfaChange);
        assert_eq!(activity("AttachUserPolicy"), Activity::PrivilegeGrant);
        assert_eq!(activity("DescribeInstances"), Activity::ApiCall);
    }
}
