//! The AWS actions through the real `aws-sdk-iam` against moto server: the Responder in
//! enforce mode changes moto's state, verify reads it back, undo restores it, and a protected
//! principal is never touched.

use std::sync::Arc;

use aws_sdk_iam::types::StatusType;
use chrono::Utc;
use picket::clock::Clock;
use picket::cloud::Clients;
use picket::config::{PlaybookSection, RespondMode, RespondSection};
use picket::enrich::IdentitiesConfig;
use picket::model::{Actor, Evidence, Finding, PrincipalType, Provider, Severity};
use picket::respond::{Responder, Status};
use picket::state::{MemoryStore, StateStore};

use crate::util::emulators::{aws_config, moto};

pub const ACCOUNT: &str = "123456789012";

/// Creates an IAM user with an access key and a console password; returns the key id.
pub async fn seed_user(iam: &aws_sdk_iam::Client, name: &str) -> String {
    iam.create_user().user_name(name).send().await.unwrap();
    iam.create_login_profile()
        .user_name(name)
        .password("Initial-Passw0rd!")
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
    key.access_key().unwrap().access_key_id().to_string()
}

/// A finding of `detector` about an IAM user (or role session) `arn`, built on a successful
/// console sign-in.
pub fn aws_finding(arn: &str, key: Option<&str>, n: u32) -> Finding {
    let ev = Evidence {
        uid: format!("{arn}-{n}"),
        time: Utc::now(),
        provider: Provider::Aws,
        action: "ConsoleLogin".into(),
        success: true,
        src_ip: Some("81.2.69.142".into()),
        user_agent: None,
        geo: None,
        asn: None,
    };
    let mut f = Finding::new("account-takeover", "takeover", Severity::High, vec![ev]);
    f.identity = Some(arn.to_lowercase());
    f.actor = Some(Actor {
        key: arn.to_lowercase(),
        uid: Some(arn.to_string()),
        principal_type: PrincipalType::User,
        credential_id: key.map(str::to_string),
        ..Actor::default()
    });
    f
}

pub fn section(
    mode: RespondMode,
    actions: &[&str],
    per_hour: u64,
    per_identity: u64,
) -> RespondSection {
    RespondSection {
        mode,
        max_actions_per_hour: per_hour,
        max_actions_per_identity: per_identity,
        playbook: vec![PlaybookSection {
            on: vec!["account-takeover".into()],
            min_severity: Severity::High,
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }],
    }
}

pub async fn responder(
    sdk: &aws_config::SdkConfig,
    section: &RespondSection,
    protected: &[&str],
) -> (Responder, Arc<dyn StateStore>) {
    let clients = Clients {
        aws: Some(sdk.clone()),
        ..Clients::default()
    };
    let identities = IdentitiesConfig {
        protected: protected.iter().map(|s| s.to_string()).collect(),
        ..IdentitiesConfig::default()
    };
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let r = Responder::new(
        section,
        &identities,
        &clients,
        state.clone(),
        Arc::new(Clock::System),
        false,
    )
    .unwrap();
    (r, state)
}

async fn key_status(iam: &aws_sdk_iam::Client, user: &str) -> Vec<String> {
    iam.list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|k| k.status().unwrap().as_str().to_string())
        .collect()
}

async fn has_login_profile(iam: &aws_sdk_iam::Client, user: &str) -> bool {
    iam.get_login_profile().user_name(user).send().await.is_ok()
}

async fn attached(iam: &aws_sdk_iam::Client, user: &str) -> Vec<String> {
    iam.list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .map(|p| p.policy_name().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn user_actions_change_moto_state_and_undo_restores_it() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let key = seed_user(&iam, "alice").await;
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::Enforce,
            &[
                "aws_deactivate_access_keys",
                "aws_disable_console_login",
                "aws_quarantine_principal",
            ],
            100,
            100,
        ),
        &[],
    )
    .await;
    let arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let out = r.respond(&aws_finding(&arn, Some(&key), 1)).await.unwrap();
    let statuses: Vec<&str> = out.notes.iter().map(|n| n.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["verified", "verified", "verified"],
        "{:#?}",
        out.notes
    );
    assert_eq!(key_status(&iam, "alice").await, ["Inactive"]);
    assert!(!has_login_profile(&iam, "alice").await);
    assert_eq!(
        attached(&iam, "alice").await,
        ["picket-quarantine-deny-all"]
    );
    let policy = iam
        .get_policy()
        .policy_arn(format!(
            "arn:aws:iam::{ACCOUNT}:policy/picket-quarantine-deny-all"
        ))
        .send()
        .await
        .unwrap();
    assert!(policy.policy().is_some());

    // The ledger recorded finding, target and what changed.
    let (entry, _) = r
        .ledger()
        .get(&out.notes[0].id, Utc::now())
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, Status::Verified);
    assert_eq!(entry.target.principal, arn);
    assert_eq!(entry.finding, aws_finding(&arn, Some(&key), 1).uid);
    let change = entry.change.unwrap();
    assert_eq!(change.before[&key], "Active");
    assert_eq!(change.after[&key], "Inactive");

    // Every step has an undo command; undo restores moto's state.
    for note in &out.notes {
        assert_eq!(
            note.undo.as_deref(),
            Some(format!("picket respond undo {}", note.id).as_str())
        );
        let e = r.undo(&note.id).await.unwrap();
        assert_eq!(e.status, Status::Undone);
    }
    assert_eq!(key_status(&iam, "alice").await, ["Active"]);
    assert!(has_login_profile(&iam, "alice").await);
    assert!(attached(&iam, "alice").await.is_empty());
    // Undoing twice is refused, not repeated.
    assert!(r.undo(&out.notes[0].id).await.is_err());
}

#[tokio::test]
async fn revoke_role_sessions_puts_the_token_issue_time_deny_and_undo_removes_it() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("ops")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::Enforce,
            &["aws_revoke_role_sessions"],
            100,
            100,
        ),
        &[],
    )
    .await;
    let before = Utc::now() - chrono::Duration::seconds(2);
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/ops/attacker-session");
    let out = r.respond(&aws_finding(&session, None, 1)).await.unwrap();
    assert_eq!(out.notes[0].status, "verified", "{:#?}", out.notes);
    assert_eq!(
        out.notes[0].target,
        format!("arn:aws:iam::{ACCOUNT}:role/ops")
    );
    let doc = iam
        .get_role_policy()
        .role_name("ops")
        .policy_name("AWSRevokeOlderSessions")
        .send()
        .await
        .unwrap();
    let v =
        picket::respond::aws_revoke_role_sessions::decode_policy(doc.policy_document()).unwrap();
    let st = &v["Statement"][0];
    assert_eq!(st["Effect"], "Deny");
    assert_eq!(st["Action"][0], "*");
    let cutoff = st["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap();
    let cutoff = chrono::DateTime::parse_from_rfc3339(cutoff).unwrap();
    assert!(
        cutoff >= before && cutoff <= Utc::now() + chrono::Duration::seconds(2),
        "{cutoff}"
    );

    r.undo(&out.notes[0].id).await.unwrap();
    assert!(
        iam.get_role_policy()
            .role_name("ops")
            .policy_name("AWSRevokeOlderSessions")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_protected_principal_is_untouched_and_dry_run_changes_nothing() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let bob_key = seed_user(&iam, "bob").await;
    let carol_key = seed_user(&iam, "carol").await;
    let actions = ["aws_deactivate_access_keys", "aws_disable_console_login"];
    let (r, _) = responder(
        &sdk,
        &section(RespondMode::Enforce, &actions, 100, 100),
        &["arn:aws:iam::*:user/bob"],
    )
    .await;
    let out = r
        .respond(&aws_finding(
            &format!("arn:aws:iam::{ACCOUNT}:user/bob"),
            Some(&bob_key),
            1,
        ))
        .await
        .unwrap();
    assert!(
        out.notes
            .iter()
            .all(|n| n.status == "skipped" && n.reason.as_deref().unwrap().contains("protected")),
        "{:#?}",
        out.notes
    );
    assert_eq!(key_status(&iam, "bob").await, ["Active"]);
    assert!(has_login_profile(&iam, "bob").await);

    let (dry, _) = responder(&sdk, &section(RespondMode::DryRun, &actions, 100, 100), &[]).await;
    let out = dry
        .respond(&aws_finding(
            &format!("arn:aws:iam::{ACCOUNT}:user/carol"),
            Some(&carol_key),
            1,
        ))
        .await
        .unwrap();
    assert!(
        out.notes.iter().all(|n| n.status == "planned"),
        "{:#?}",
        out.notes
    );
    assert_eq!(key_status(&iam, "carol").await, ["Active"]);
    assert!(has_login_profile(&iam, "carol").await);
    let _ = StatusType::Active;
}

#[tokio::test]
async fn apply_is_idempotent_and_a_crash_after_apply_is_verified_not_repeated() {
    use picket::respond::{ActionKind, LedgerEntry, ledger::entry_id};
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let key = seed_user(&iam, "dan").await;
    let arn = format!("arn:aws:iam::{ACCOUNT}:user/dan");
    let clients = Clients {
        aws: Some(sdk.clone()),
        ..Clients::default()
    };
    let action = ActionKind::AwsDeactivateAccessKeys.build(&clients).unwrap();
    let f = aws_finding(&arn, Some(&key), 1);
    let aliases = picket::respond::Aliases::default();
    let target = ActionKind::AwsDeactivateAccessKeys
        .target(&f, &aliases)
        .unwrap();
    assert_eq!(target.credential.as_deref(), Some(key.as_str()));

    // A run applied the action and died before recording it: the ledger says pending.
    let first = action.apply(&target).await.unwrap();
    let again = action.apply(&target).await.unwrap();
    assert_eq!(first.after, again.after, "apply is idempotent");
    assert_eq!(key_status(&iam, "dan").await, ["Inactive"]);
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::Enforce,
            &["aws_deactivate_access_keys"],
            100,
            100,
        ),
        &[],
    )
    .await;
    let now = Utc::now();
    let entry = LedgerEntry {
        id: entry_id("aws_deactivate_access_keys", &target, &f.uid),
        action: "aws_deactivate_access_keys".into(),
        plan: ActionKind::AwsDeactivateAccessKeys.plan(&target),
        target: target.clone(),
        finding: f.uid.clone(),
        detector: f.detector.clone(),
        incident: f.uid.clone(),
        status: Status::Pending,
        change: None,
        error: None,
        retryable: false,
        created: now,
        updated: now,
    };
    assert!(r.ledger().claim(&entry, now).unwrap());
    // Someone re-activates the key by hand meanwhile: a re-apply would flip it again; a
    // verify-only recovery must not.
    iam.update_access_key()
        .user_name("dan")
        .access_key_id(&key)
        .status(StatusType::Active)
        .send()
        .await
        .unwrap();
    assert_eq!(r.recover().await.unwrap(), 1);
    let (e, _) = r.ledger().get(&entry.id, Utc::now()).unwrap().unwrap();
    assert_eq!(
        e.status,
        Status::Unverified,
        "verified against moto, not re-applied"
    );
    let out = r.respond(&f).await.unwrap();
    assert_eq!(out.notes[0].status, "skipped", "{:#?}", out.notes);
    assert_eq!(
        key_status(&iam, "dan").await,
        ["Active"],
        "never applied a second time"
    );
}

#[tokio::test]
async fn the_slack_message_shows_what_picket_did_and_the_undo_command() {
    use crate::util::stub::{Reply, Stub};
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let key = seed_user(&iam, "erin").await;
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::Enforce,
            &["aws_deactivate_access_keys"],
            100,
            100,
        ),
        &[],
    )
    .await;
    let mut f = aws_finding(&format!("arn:aws:iam::{ACCOUNT}:user/erin"), Some(&key), 1);
    let out = r.respond(&f).await.unwrap();
    out.attach(&mut f);
    let stub = Stub::start(|_| Reply::empty(200)).await;
    let slack = picket::alert::slack::Slack::new(
        picket::cloud::http::client(std::time::Duration::from_secs(5)).unwrap(),
        picket::alert::slack::Delivery::Webhook(picket::config::Secret::new(format!(
            "{}/services/x",
            stub.url
        ))),
        picket::cloud::retry::RetryPolicy::default(),
    );
    use picket::alert::Notifier;
    slack.notify(&f).await.unwrap();
    let text = stub.requests()[0].body.clone();
    assert!(
        text.contains("aws＿deactivate＿access＿keys")
            || text.contains("aws_deactivate_access_keys"),
        "{text}"
    );
    assert!(
        text.contains(&format!("picket respond undo {}", out.notes[0].id)),
        "{text}"
    );
    assert!(text.contains("verified"), "{text}");
}
