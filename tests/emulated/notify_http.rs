//! Slack (incoming webhook and bot token with threads) and signed webhooks against a real
//! HTTP listener on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use picket::alert::slack::{Delivery, Slack};
use picket::alert::webhook::{SIGNATURE_HEADER, Webhook, verify};
use picket::alert::{Notifier, Route, Router};
use picket::cloud::retry::RetryPolicy;
use picket::config::Secret;
use serde_json::json;

use super::common::{assert_neutralised, takeover};
use crate::util::stub::{Reply, Stub};

fn http() -> reqwest::Client {
    picket::cloud::http::client(std::time::Duration::from_secs(10)).unwrap()
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        base: std::time::Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn slack_webhook_gets_block_kit_with_hostile_strings_neutralised() {
    let stub = Stub::start(|_| Reply::empty(200)).await;
    let mut f = takeover("alice@corp.example", 1);
    f.data.insert(
        "response".into(),
        json!([{"id": "abc123", "action": "entra_revoke_sessions", "target": "alice@corp.example",
                "status": "verified", "undo": null},
               {"id": "def456", "action": "aws_deactivate_access_keys", "target": "arn:aws:iam::1:user/alice",
                "status": "verified", "undo": "picket respond undo def456"}]),
    );
    let slack = Slack::new(
        http(),
        Delivery::Webhook(Secret::new(format!("{}/services/T0/B0/secret", stub.url))),
        fast_retry(),
    );
    slack.notify(&f).await.unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/services/T0/B0/secret");
    assert!(reqs[0].query.is_empty());
    let body = reqs[0].json();
    let text = body.to_string();
    assert_neutralised(&text);
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        text.contains("alice＠corp.example") || text.contains("alice"),
        "{text}"
    );
    assert!(
        text.contains("London, GB") && text.contains("Sydney, AU"),
        "{text}"
    );
    assert!(text.contains("16994 km"), "{text}");
    assert!(text.contains("T1078.004"), "{text}");
    assert!(text.contains("picket respond undo def456"), "{text}");
}

#[tokio::test]
async fn slack_bot_threads_follow_ups_and_retries_429() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let stub = Stub::start(move |r| {
        assert_eq!(r.header("authorization"), Some("Bearer xoxb-test"));
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            return Reply {
                status: 429,
                headers: vec![("retry-after", "0".into())],
                body: String::new(),
            };
        }
        Reply::json(
            200,
            json!({"ok": true, "channel": "C1", "ts": format!("1700000000.00000{n}")}),
        )
    })
    .await;
    let slack = Slack::new(
        http(),
        Delivery::Bot {
            token: Secret::new("xoxb-test"),
            channel: "C1".into(),
            api_base_url: stub.url.clone(),
        },
        fast_retry(),
    );
    slack
        .notify(&takeover("bob@corp.example", 1))
        .await
        .unwrap();
    slack
        .notify(&takeover("bob@corp.example", 2))
        .await
        .unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 3, "one 429, then two posts");
    assert!(reqs.iter().all(|r| r.path == "/chat.postMessage"));
    assert_eq!(reqs[1].json()["channel"], "C1");
    assert!(reqs[1].json().get("thread_ts").is_none());
    assert_eq!(
        reqs[2].json()["thread_ts"],
        "1700000000.000001",
        "follow-up is a reply"
    );
}

#[tokio::test]
async fn webhook_posts_signed_ocsf() {
    let stub = Stub::start(|_| Reply::empty(204)).await;
    let hook = Webhook::new(
        http(),
        Secret::new(format!("{}/hook", stub.url)),
        Some(Secret::new("s3cret")),
        fast_retry(),
    );
    let f = takeover("carol@corp.example", 1);
    hook.notify(&f).await.unwrap();
    let r = &stub.requests()[0];
    let sig = r.header(SIGNATURE_HEADER).expect("signed");
    assert!(sig.starts_with("sha256="));
    assert!(verify(b"s3cret", r.body.as_bytes(), sig));
    assert!(!verify(b"other", r.body.as_bytes(), sig));
    let v = r.json();
    assert_eq!(v["class_uid"], 2004);
    assert_eq!(v["finding_info"]["uid"], f.uid.as_str());
}

#[tokio::test]
async fn a_failing_notifier_does_not_stop_the_others_and_limits_apply() {
    let good = Stub::start(|_| Reply::empty(200)).await;
    let bad = Stub::start(|_| Reply::empty(500)).await;
    let mk = |url: String| -> Box<dyn Notifier> {
        Box::new(Webhook::new(
            http(),
            Secret::new(url),
            None,
            RetryPolicy {
                max_attempts: 2,
                base: std::time::Duration::from_millis(1),
                ..RetryPolicy::default()
            },
        ))
    };
    let mut router = Router::with_routes(vec![
        (Route::default(), mk(bad.url.clone())),
        (
            Route {
                dedup: Some(std::time::Duration::from_secs(600)),
                ..Route::default()
            },
            mk(good.url.clone()),
        ),
        (
            Route {
                detectors: vec!["oauth-consent".into()],
                ..Route::default()
            },
            mk(good.url.clone()),
        ),
    ]);
    assert_eq!(router.send(&takeover("dave@corp.example", 1)).await, 1);
    // Same detector and identity inside the dedup window: held back on the dedup channel.
    router.send(&takeover("dave@corp.example", 2)).await;
    assert_eq!(bad.requests().len(), 4, "two findings, two attempts each");
    assert_eq!(
        good.requests().len(),
        1,
        "dedup held the second; detector route took none"
    );
    assert_eq!(router.suppressed, 1);
    assert_eq!(router.failures, 2);
}

#[tokio::test]
async fn delivery_errors_never_show_a_secret_url() {
    // Nothing listens on port 1: the connection is refused on every attempt.
    let hook = Webhook::new(
        http(),
        Secret::new("http://127.0.0.1:1/hooks/SECRET-TOKEN-123"),
        None,
        fast_retry(),
    );
    let e = hook
        .notify(&takeover("gina@corp.example", 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("SECRET-TOKEN-123"), "{e}");
    assert!(e.contains("127.0.0.1"), "{e}");
    let slack = Slack::new(
        http(),
        Delivery::Webhook(Secret::new(
            "http://127.0.0.1:1/services/T0/B0/SECRET-TOKEN-456",
        )),
        fast_retry(),
    );
    let e = slack
        .notify(&takeover("gina@corp.example", 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("SECRET-TOKEN-456"), "{e}");
}

#[tokio::test]
async fn the_rate_limit_holds_back_floods_but_never_the_breach_alert() {
    let stub = Stub::start(|_| Reply::empty(200)).await;
    let hook: Box<dyn Notifier> = Box::new(Webhook::new(
        http(),
        Secret::new(format!("{}/hook", stub.url)),
        None,
        fast_retry(),
    ));
    let mut router = Router::with_routes(vec![(
        Route {
            max_per_minute: Some(3),
            ..Route::default()
        },
        hook,
    )]);
    for i in 0..10 {
        router
            .send(&takeover(&format!("u{i}@corp.example"), i))
            .await;
    }
    let trigger = takeover("z@corp.example", 99);
    let breach =
        picket::respond::responder::breach_finding("6 actions", &trigger, chrono::Utc::now());
    router.send(&breach).await;
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 4, "three findings and the breach alert");
    assert_eq!(router.suppressed, 7);
    assert_eq!(
        reqs[3].json()["finding_info"]["analytic"]["uid"],
        "respond-guardrail"
    );
}

#[tokio::test]
async fn slack_threads_survive_a_restart_through_the_state_store() {
    use picket::state::{MemoryStore, StateStore};
    let stub =
        Stub::start(|_| Reply::json(200, json!({"ok": true, "ts": "1700000000.000042"}))).await;
    let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let bot = || {
        Slack::new(
            http(),
            Delivery::Bot {
                token: Secret::new("xoxb-test"),
                channel: "C1".into(),
                api_base_url: stub.url.clone(),
            },
            fast_retry(),
        )
        .with_state(Some(state.clone()))
    };
    bot()
        .notify(&takeover("hank@corp.example", 1))
        .await
        .unwrap();
    // A new process (fresh notifier, same state): the follow-up joins the thread.
    bot()
        .notify(&takeover("hank@corp.example", 2))
        .await
        .unwrap();
    let reqs = stub.requests();
    assert!(reqs[0].json().get("thread_ts").is_none());
    assert_eq!(reqs[1].json()["thread_ts"], "1700000000.000042");
}
