//! The Google actions against in-process Admin SDK Directory and IAM APIs following the
//! documented contracts: `DELETE users/{userKey}/tokens/{clientId}`, `POST
//! users/{userKey}/signOut`, `PUT users/{userKey}` with `suspended`, and
//! `projects/-/serviceAccounts/{email}/keys/{key}:disable` / `:enable`.

use std::sync::{Arc, Mutex};

use picket::clock::Clock;
use picket::cloud::Clients;
use picket::cloud::token::{Api, GoogleApi, StaticToken};
use picket::config::{PlaybookSection, RespondMode, RespondSection, Secret};
use picket::enrich::IdentitiesConfig;
use picket::model::{Actor, PrincipalType, Severity};
use picket::respond::{Responder, Status};
use picket::state::MemoryStore;
use serde_json::json;

use super::common::takeover;
use crate::util::stub::{Reply, Request, Stub};

const SA: &str = "deployer@proj-1.iam.gserviceaccount.com";

#[derive(Default)]
struct Google {
    token_present: bool,
    suspended: bool,
    signed_out: u32,
    key_disabled: bool,
}

fn handle(g: &Mutex<Google>, r: &Request) -> Reply {
    if r.header("authorization") != Some("Bearer goog-token") {
        return Reply::json(401, json!({"error": {"code": 401}}));
    }
    let mut g = g.lock().unwrap();
    let user = "/admin/directory/v1/users/alice@corp.example";
    let token = format!("{user}/tokens/app-evil-1");
    let key = format!("/v1/projects/-/serviceAccounts/{SA}/keys/key-123");
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", p) if p == token => {
            if g.token_present {
                Reply::json(
                    200,
                    json!({"kind": "admin#directory#token", "clientId": "app-evil-1", "scopes": ["https://mail.google.com/"]}),
                )
            } else {
                Reply::json(
                    404,
                    json!({"error": {"code": 404, "message": "Resource Not Found"}}),
                )
            }
        }
        ("DELETE", p) if p == token => {
            g.token_present = false;
            Reply::empty(204)
        }
        ("POST", p) if p == format!("{user}/signOut") => {
            g.signed_out += 1;
            Reply::empty(204)
        }
        ("GET", p) if p == user => Reply::json(
            200,
            json!({"primaryEmail": "alice@corp.example", "suspended": g.suspended}),
        ),
        ("PUT", p) if p == user => {
            g.suspended = r.json()["suspended"].as_bool().unwrap_or(g.suspended);
            Reply::json(
                200,
                json!({"primaryEmail": "alice@corp.example", "suspended": g.suspended}),
            )
        }
        ("GET", p) if p == key => Reply::json(
            200,
            json!({"name": format!("projects/proj-1/serviceAccounts/{SA}/keys/key-123"), "disabled": g.key_disabled}),
        ),
        ("POST", p) if p == format!("{key}:disable") => {
            g.key_disabled = true;
            Reply::json(200, json!({}))
        }
        ("POST", p) if p == format!("{key}:enable") => {
            g.key_disabled = false;
            Reply::json(200, json!({}))
        }
        _ => Reply::json(404, json!({"error": {"code": 404}})),
    }
}

fn responder(url: &str, actions: &[&str]) -> Responder {
    let http = picket::cloud::http::client(std::time::Duration::from_secs(10)).unwrap();
    let tokens = Arc::new(StaticToken(Secret::new("goog-token")));
    let api = |base: String| Api {
        http: http.clone(),
        base_url: base,
        tokens: tokens.clone(),
    };
    let clients = Clients {
        google: Some(GoogleApi {
            admin: api(url.to_string()),
            iam: api(url.to_string()),
            logging: api(url.to_string()),
            subject: None,
        }),
        ..Clients::default()
    };
    let section = RespondSection {
        mode: RespondMode::Enforce,
        max_actions_per_hour: 100,
        max_actions_per_identity: 100,
        playbook: vec![PlaybookSection {
            on: vec!["account-takeover".into(), "impossible-travel".into()],
            min_severity: Severity::High,
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }],
    };
    Responder::new(
        &section,
        &IdentitiesConfig::default(),
        &clients,
        Arc::new(MemoryStore::new()),
        Arc::new(Clock::System),
        false,
    )
    .unwrap()
}

#[tokio::test]
async fn workspace_actions_follow_the_directory_contract() {
    let state = Arc::new(Mutex::new(Google {
        token_present: true,
        ..Google::default()
    }));
    let s = state.clone();
    let stub = Stub::start(move |r| handle(&s, r)).await;
    let r = responder(
        &stub.url,
        &[
            "google_revoke_tokens",
            "google_sign_out",
            "google_suspend_user",
        ],
    );
    let out = r.respond(&takeover("alice@corp.example", 1)).await.unwrap();
    let statuses: Vec<&str> = out.notes.iter().map(|n| n.status.as_str()).collect();
    assert_eq!(statuses, ["verified"; 3], "{:#?}", out.notes);
    {
        let g = state.lock().unwrap();
        assert!(!g.token_present && g.suspended);
        assert_eq!(g.signed_out, 1);
    }
    assert!(stub.requests().iter().any(|q| q.method == "DELETE"
        && q.path == "/admin/directory/v1/users/alice@corp.example/tokens/app-evil-1"));
    let suspend = out
        .notes
        .iter()
        .find(|n| n.action == "google_suspend_user")
        .unwrap();
    assert_eq!(r.undo(&suspend.id).await.unwrap().status, Status::Undone);
    assert!(!state.lock().unwrap().suspended);
}

#[tokio::test]
async fn impossible_travel_alone_signs_out_but_never_suspends() {
    let state = Arc::new(Mutex::new(Google::default()));
    let s = state.clone();
    let stub = Stub::start(move |r| handle(&s, r)).await;
    let r = responder(&stub.url, &["google_sign_out", "google_suspend_user"]);
    let mut f = takeover("alice@corp.example", 2);
    f.detector = "impossible-travel".into();
    let out = r.respond(&f).await.unwrap();
    assert_eq!(out.notes[0].status, "verified");
    assert_eq!(out.notes[1].status, "skipped");
    assert!(!state.lock().unwrap().suspended);
    assert!(stub.requests().iter().all(|q| q.method != "PUT"));
}

#[tokio::test]
async fn service_account_key_is_disabled_and_re_enabled() {
    let state = Arc::new(Mutex::new(Google::default()));
    let s = state.clone();
    let stub = Stub::start(move |r| handle(&s, r)).await;
    let r = responder(&stub.url, &["gcp_disable_service_account_key"]);
    let mut f = takeover(SA, 3);
    f.actor = Some(Actor {
        key: SA.into(),
        uid: Some(SA.into()),
        email: Some(SA.into()),
        principal_type: PrincipalType::ServicePrincipal,
        credential_id: Some("key-123".into()),
        ..Actor::default()
    });
    let out = r.respond(&f).await.unwrap();
    assert_eq!(out.notes[0].status, "verified", "{:#?}", out.notes);
    assert!(state.lock().unwrap().key_disabled);
    r.undo(&out.notes[0].id).await.unwrap();
    assert!(!state.lock().unwrap().key_disabled);
}

#[tokio::test]
async fn delegated_workspace_tokens_are_signed_by_iam_credentials_and_traded() {
    use picket::cloud::token::{DelegatedToken, IamSignJwt, TokenProvider};
    let stub = Stub::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/projects/-/serviceAccounts/picket@proj-1.iam.gserviceaccount.com:signJwt") => {
            assert_eq!(r.header("authorization"), Some("Bearer federated-token"));
            let claims: serde_json::Value =
                serde_json::from_str(r.json()["payload"].as_str().unwrap()).unwrap();
            assert_eq!(claims["iss"], "picket@proj-1.iam.gserviceaccount.com");
            assert_eq!(claims["sub"], "admin@corp.example");
            assert!(claims["scope"].as_str().unwrap().contains("admin.directory.user.security"));
            assert!(claims["aud"].as_str().unwrap().ends_with("/token"));
            Reply::json(200, json!({"keyId": "k1", "signedJwt": "aaa.bbb.ccc"}))
        }
        ("POST", "/token") => {
            assert!(r.body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"), "{}", r.body);
            assert!(r.body.contains("assertion=aaa.bbb.ccc"), "{}", r.body);
            Reply::json(200, json!({"access_token": "ya29.delegated", "expires_in": 3599, "token_type": "Bearer"}))
        }
        _ => Reply::empty(404),
    })
    .await;
    let http = picket::cloud::http::client(std::time::Duration::from_secs(5)).unwrap();
    let provider = DelegatedToken::new(
        http.clone(),
        Arc::new(IamSignJwt::new(
            http,
            Arc::new(StaticToken(Secret::new("federated-token"))),
            stub.url.clone(),
            "picket@proj-1.iam.gserviceaccount.com".into(),
        )),
        "admin@corp.example".into(),
        vec!["https://www.googleapis.com/auth/admin.directory.user.security".into()],
        format!("{}/token", stub.url),
    );
    assert_eq!(provider.token().await.unwrap().expose(), "ya29.delegated");
    assert_eq!(provider.token().await.unwrap().expose(), "ya29.delegated");
    assert_eq!(
        stub.requests().len(),
        2,
        "signed and traded once, then cached"
    );
}
