//! Flood: 10,000 forged findings over 1,000 identities against moto. Enforce mode acts no
//! more often than the blast-radius limits allow, never on a protected identity, and sends
//! exactly one breach alert; after that it stays alert-only until reset. Dry run leaves
//! moto's state unchanged.

use picket::config::RespondMode;
use picket::respond::Status;

use super::aws_actions::{ACCOUNT, aws_finding, responder, section, seed_user};
use crate::util::emulators::{aws_config, moto};

const FINDINGS: u32 = 10_000;
const IDENTITIES: u32 = 1_000;
/// Identities that exist in moto (the first ones the flood reaches).
const SEEDED: u32 = 12;

fn name(i: u32) -> String {
    // Every 7th identity is a VIP, protected by glob.
    if i.is_multiple_of(7) {
        format!("vip-{i}")
    } else {
        format!("user-{i}")
    }
}

async fn seeded(iam: &aws_sdk_iam::Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..SEEDED {
        let n = name(i);
        let key = seed_user(iam, &n).await;
        out.push((n, key));
    }
    out
}

async fn inactive_keys(iam: &aws_sdk_iam::Client, users: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (u, _) in users {
        let keys = iam.list_access_keys().user_name(u).send().await.unwrap();
        if keys
            .access_key_metadata()
            .iter()
            .any(|k| k.status().map(|s| s.as_str()) == Some("Inactive"))
        {
            out.push(u.clone());
        }
    }
    out
}

async fn login_profiles(iam: &aws_sdk_iam::Client, users: &[(String, String)]) -> usize {
    let mut n = 0;
    for (u, _) in users {
        n += iam.get_login_profile().user_name(u).send().await.is_ok() as usize;
    }
    n
}

#[tokio::test]
async fn a_flood_of_forged_findings_is_capped_and_latches_once() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let users = seeded(&iam).await;
    let (per_hour, per_identity) = (5, 3);
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::Enforce,
            &["aws_deactivate_access_keys", "aws_disable_console_login"],
            per_hour,
            per_identity,
        ),
        &["arn:aws:iam::*:user/vip-*"],
    )
    .await;
    let mut breaches = Vec::new();
    let mut acted = 0;
    for n in 0..FINDINGS {
        let i = n % IDENTITIES;
        let arn = format!("arn:aws:iam::{ACCOUNT}:user/{}", name(i));
        let key = users.get(i as usize).map(|(_, k)| k.as_str());
        let out = r.respond(&aws_finding(&arn, key, n)).await.unwrap();
        acted += out
            .notes
            .iter()
            .filter(|x| {
                matches!(
                    x.status.as_str(),
                    "verified" | "applied" | "unverified" | "failed"
                )
            })
            .count();
        for note in &out.notes {
            if note.target.contains("vip-") {
                assert_eq!(
                    note.status, "skipped",
                    "protected identity acted on: {note:?}"
                );
            }
        }
        breaches.extend(out.breach);
    }
    assert!(
        acted as u64 <= per_hour,
        "{acted} actions, limit {per_hour}"
    );
    assert!(acted > 0, "the flood never acted at all");
    assert_eq!(breaches.len(), 1, "exactly one breach alert");
    assert_eq!(breaches[0].severity, picket::model::Severity::Critical);
    assert!(breaches[0].description.contains("picket respond reset"));

    // moto agrees: no VIP touched, no more users changed than the limit.
    let inactive = inactive_keys(&iam, &users).await;
    assert!(
        inactive.iter().all(|u| !u.starts_with("vip-")),
        "{inactive:?}"
    );
    let deleted_profiles = users.len() - login_profiles(&iam, &users).await;
    assert!(inactive.len() + deleted_profiles <= per_hour as usize);

    // The ledger holds exactly the actions taken.
    let now = chrono::Utc::now();
    let entries = r.ledger().list(100_000, now).unwrap();
    let enforced = entries
        .iter()
        .filter(|e| e.status != Status::Planned)
        .count();
    assert_eq!(enforced, acted);
    assert!(r.ledger().latch(now).unwrap().is_some());
    // Reset re-opens the latch.
    assert!(r.ledger().reset(now).unwrap());
}

#[tokio::test]
async fn a_dry_run_flood_leaves_moto_unchanged() {
    let moto = moto().await;
    let sdk = aws_config(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let users = seeded(&iam).await;
    let (r, _) = responder(
        &sdk,
        &section(
            RespondMode::DryRun,
            &[
                "aws_deactivate_access_keys",
                "aws_disable_console_login",
                "aws_quarantine_principal",
            ],
            5,
            3,
        ),
        &["arn:aws:iam::*:user/vip-*"],
    )
    .await;
    let mut breaches = 0;
    for n in 0..FINDINGS {
        let i = n % IDENTITIES;
        let arn = format!("arn:aws:iam::{ACCOUNT}:user/{}", name(i));
        let key = users.get(i as usize).map(|(_, k)| k.as_str());
        let out = r.respond(&aws_finding(&arn, key, n)).await.unwrap();
        assert!(
            out.notes
                .iter()
                .all(|x| x.status == "planned" || x.status == "skipped")
        );
        breaches += out.breach.is_some() as usize;
    }
    assert_eq!(breaches, 0);
    assert!(inactive_keys(&iam, &users).await.is_empty());
    assert_eq!(login_profiles(&iam, &users).await, users.len());
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap();
    assert!(policies.policies().is_empty(), "dry run created a policy");
}
