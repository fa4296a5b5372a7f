//! The Entra actions against an in-process Microsoft Graph that follows the documented
//! contracts (v1.0): `revokeSignInSessions`, `PATCH /users/{id}`, `oauth2PermissionGrants`
//! with `$filter` on clientId and principalId, `servicePrincipals?$filter=appId eq '...'`,
//! bearer tokens, and a 429 with Retry-After on the first call.

use std::sync::{Arc, Mutex};

use picket::clock::Clock;
use picket::cloud::Clients;
use picket::cloud::token::{Api, StaticToken};
use picket::config::{PlaybookSection, RespondMode, RespondSection, Secret};
use picket::enrich::IdentitiesConfig;
use picket::model::Severity;
use picket::respond::{Responder, Status};
use picket::state::MemoryStore;
use serde_json::{Value, json};

use super::common::takeover;
use crate::util::stub::{Reply, Stub};

const USER_ID: &str = "6e7b768e-07e2-4810-8459-485f84f8f204";
const SP_ID: &str = "sp-0001";

struct Graph {
    user: Value,
    sp: Value,
    grants: Vec<Value>,
    throttled: bool,
}

fn graph() -> Arc<Mutex<Graph>> {
    Arc::new(Mutex::new(Graph {
        user: json!({"id": USER_ID, "userPrincipalName": "alice@corp.example", "accountEnabled": true,
                     "signInSessionsValidFromDateTime": "2020-01-01T00:00:00Z"}),
        sp: json!({"id": SP_ID, "appId": "app-evil-1", "accountEnabled": true}),
        grants: vec![
            json!({"id": "grant-1", "clientId": SP_ID, "consentType": "Principal", "principalId": USER_ID,
                   "resourceId": "graph-sp", "scope": "Mail.Read offline_access"}),
            json!({"id": "grant-other", "clientId": "sp-other", "consentType": "Principal", "principalId": USER_ID,
                   "resourceId": "graph-sp", "scope": "User.Read"}),
        ],
        throttled: false,
    }))
}

fn handle(g: &Mutex<Graph>, r: &crate::util::stub::Request) -> Reply {
    if r.header("authorization") != Some("Bearer graph-token") {
        return Reply::json(
            401,
            json!({"error": {"code": "InvalidAuthenticationToken"}}),
        );
    }
    let mut g = g.lock().unwrap();
    if !g.throttled {
        g.throttled = true;
        return Reply {
            status: 429,
            headers: vec![("retry-after", "0".into())],
            body: json!({"error": {"code": "TooManyRequests"}}).to_string(),
        };
    }
    let path = r.path.strip_prefix("/v1.0").unwrap_or(&r.path);
    let user_paths = [
        "/users/alice@corp.example".to_string(),
        format!("/users/{USER_ID}"),
    ];
    match (r.method.as_str(), path) {
        ("POST", p)
            if user_paths
                .iter()
                .any(|u| p == format!("{u}/revokeSignInSessions")) =>
        {
            g.user["signInSessionsValidFromDateTime"] = json!(chrono::Utc::now().to_rfc3339());
            Reply::json(
                200,
                json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}),
            )
        }
        ("GET", p) if user_paths.iter().any(|u| u == p) => Reply::json(200, g.user.clone()),
        ("PATCH", p) if user_paths.iter().any(|u| u == p) => {
            if let Some(b) = r.json()["accountEnabled"].as_bool() {
                g.user["accountEnabled"] = json!(b);
            }
            Reply::empty(204)
        }
        ("GET", "/servicePrincipals") => {
            let want = format!("appId eq '{}'", g.sp["appId"].as_str().unwrap());
            let hit = r.query.contains(&want);
            Reply::json(
                200,
                json!({"value": if hit { vec![g.sp.clone()] } else { vec![] }}),
            )
        }
        ("PATCH", p) if p == format!("/servicePrincipals/{SP_ID}") => {
            g.sp["accountEnabled"] = r.json()["accountEnabled"].clone();
            Reply::empty(204)
        }
        ("GET", "/oauth2PermissionGrants") => {
            let value: Vec<Value> = g
                .grants
                .iter()
                .filter(|x| {
                    r.query.contains(&format!(
                        "clientId eq '{}'",
                        x["clientId"].as_str().unwrap()
                    )) && r.query.contains(&format!(
                        "principalId eq '{}'",
                        x["principalId"].as_str().unwrap()
                    ))
                })
                .cloned()
                .collect();
            Reply::json(200, json!({"value": value}))
        }
        ("DELETE", p) if p.starts_with("/oauth2PermissionGrants/") => {
            let id = p.trim_start_matches("/oauth2PermissionGrants/");
            let before = g.grants.len();
            g.grants.retain(|x| x["id"] != id);
            if g.grants.len() == before {
                Reply::empty(404)
            } else {
                Reply::empty(204)
            }
        }
        ("POST", "/oauth2PermissionGrants") => {
            let mut b = r.json();
            b["id"] = json!(format!("grant-{}", g.grants.len() + 10));
            g.grants.push(b.clone());
            Reply::json(201, b)
        }
        _ => Reply::json(404, json!({"error": {"code": "Request_ResourceNotFound"}})),
    }
}

fn responder(url: &str, actions: &[&str], protected: &[&str]) -> Responder {
    let http = picket::cloud::http::client(std::time::Duration::from_secs(10)).unwrap();
    let clients = Clients {
        graph: Some(Api {
            http: http.clone(),
            base_url: format!("{url}/v1.0"),
            tokens: Arc::new(StaticToken(Secret::new("graph-token"))),
        }),
        http: Some(http),
        ..Clients::default()
    };
    let section = RespondSection {
        mode: RespondMode::Enforce,
        max_actions_per_hour: 100,
        max_actions_per_identity: 100,
        playbook: vec![PlaybookSection {
            on: vec!["account-takeover".into()],
            min_severity: Severity::High,
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }],
    };
    let identities = IdentitiesConfig {
        protected: protected.iter().map(|s| s.to_string()).collect(),
        ..IdentitiesConfig::default()
    };
    Responder::new(
        &section,
        &identities,
        &clients,
        Arc::new(MemoryStore::new()),
        Arc::new(Clock::System),
        false,
    )
    .unwrap()
}

#[tokio::test]
async fn entra_actions_follow_the_graph_contract_and_undo() {
    let state = graph();
    let s = state.clone();
    let stub = Stub::start(move |r| handle(&s, r)).await;
    let r = responder(
        &stub.url,
        &[
            "entra_revoke_sessions",
            "entra_remove_oauth_grant",
            "entra_disable_user",
            "entra_disable_service_principal",
        ],
        &[],
    );
    let out = r.respond(&takeover("alice@corp.example", 1)).await.unwrap();
    let statuses: Vec<&str> = out.notes.iter().map(|n| n.status.as_str()).collect();
    assert_eq!(statuses, ["verified"; 4], "{:#?}", out.notes);
    {
        let g = state.lock().unwrap();
        assert_eq!(g.user["accountEnabled"], false);
        assert_eq!(g.sp["accountEnabled"], false);
        assert_eq!(g.grants.len(), 1, "only the other app's grant is left");
        assert_eq!(g.grants[0]["id"], "grant-other");
    }
    let reqs = stub.requests();
    assert_eq!(
        reqs[0].method, "POST",
        "the throttled first call was retried"
    );
    assert_eq!(reqs[0].path, reqs[1].path);
    assert!(
        reqs.iter().any(|q| q.method == "POST"
            && q.path == "/v1.0/users/alice@corp.example/revokeSignInSessions")
    );
    assert!(
        reqs.iter()
            .any(|q| q.method == "DELETE" && q.path == "/v1.0/oauth2PermissionGrants/grant-1")
    );
    assert!(
        reqs.iter()
            .any(|q| q.method == "PATCH" && q.json() == json!({"accountEnabled": false}))
    );
    // Revoked sessions cannot be undone; the rest can.
    assert!(out.notes[0].undo.is_none());
    for n in &out.notes[1..] {
        assert_eq!(r.undo(&n.id).await.unwrap().status, Status::Undone);
    }
    let g = state.lock().unwrap();
    assert_eq!(g.user["accountEnabled"], true);
    assert_eq!(g.sp["accountEnabled"], true);
    assert!(
        g.grants
            .iter()
            .any(|x| x["clientId"] == SP_ID && x["scope"] == "Mail.Read offline_access")
    );
}

#[tokio::test]
async fn protected_entra_users_get_no_request_at_all() {
    let state = graph();
    let s = state.clone();
    let stub = Stub::start(move |r| handle(&s, r)).await;
    let r = responder(
        &stub.url,
        &["entra_revoke_sessions", "entra_disable_user"],
        &["alice@*"],
    );
    let out = r.respond(&takeover("alice@corp.example", 1)).await.unwrap();
    assert!(out.notes.iter().all(|n| n.status == "skipped"));
    assert!(stub.requests().is_empty());
}

/// A stub of Entra's v2.0 token endpoint (`POST /{tenant}/oauth2/v2.0/token`, form
/// `client_id`, `grant_type=client_credentials`, `scope`, and `client_secret` or
/// `client_assertion_type` + `client_assertion`), of the IMDS managed-identity endpoint
/// (`GET /metadata/identity/oauth2/token?resource=`, header `Metadata: true`) and of Graph
/// `GET /v1.0/users/u-1`, which answers only to the bearer token the endpoints hand out.
fn entra_stub(
    check: fn(&crate::util::stub::Request),
) -> impl Fn(&crate::util::stub::Request) -> Reply + Send + Sync + 'static {
    move |r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/tenant-1/oauth2/v2.0/token") => {
            assert!(
                r.body.contains("grant_type=client_credentials"),
                "{}",
                r.body
            );
            assert!(r.body.contains("client_id=client-1"), "{}", r.body);
            assert!(
                r.body
                    .contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
                "{}",
                r.body
            );
            check(r);
            Reply::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "eyJ0.entra"}),
            )
        }
        ("GET", "/metadata/identity/oauth2/token") => {
            assert!(
                r.headers
                    .iter()
                    .any(|(k, v)| k == "metadata" && v == "true"),
                "{:?}",
                r.headers
            );
            assert!(
                r.query.contains("resource=https://graph.microsoft.com"),
                "{}",
                r.query
            );
            check(r);
            Reply::json(
                200,
                json!({"token_type": "Bearer", "expires_in": "3599", "expires_on": (chrono::Utc::now().timestamp() + 3599).to_string(), "resource": "https://graph.microsoft.com", "access_token": "eyJ0.entra"}),
            )
        }
        ("GET", "/v1.0/users/u-1") => {
            let auth = r.headers.iter().find(|(k, _)| k == "authorization");
            if auth.map(|(_, v)| v.as_str()) == Some("Bearer eyJ0.entra") {
                Reply::json(200, json!({"id": "u-1", "accountEnabled": true}))
            } else {
                Reply::json(
                    401,
                    json!({"error": {"code": "InvalidAuthenticationToken"}}),
                )
            }
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Graph through `entra` (tenant-1, authority and Graph on the stub): two calls, one token.
async fn graph_user_through(stub: &Stub, entra: picket::cloud::azure::Entra) {
    let graph = entra.graph(Some("tenant-1"), None, None, "v1.0").unwrap();
    for _ in 0..2 {
        let user = graph
            .call(reqwest::Method::GET, "/users/u-1", None, &[])
            .await
            .unwrap()
            .json("user")
            .unwrap();
        assert_eq!(user["id"], "u-1");
    }
    let tokens = stub
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .count();
    assert_eq!(tokens, 1, "the credential caches its token");
}

fn entra(stub: &Stub, credential: picket::cloud::azure::Credential) -> picket::cloud::azure::Entra {
    picket::cloud::azure::Entra::new(
        picket::cloud::http::client(std::time::Duration::from_secs(5)).unwrap(),
        "client-1".into(),
        credential,
        None,
        Some(stub.url.clone()),
        Some(stub.url.clone()),
    )
}

#[tokio::test]
async fn client_secret_credential_gets_graph_tokens() {
    let stub = Stub::start(entra_stub(|r| {
        if r.path.ends_with("/token") {
            assert!(r.body.contains("client_secret=s%26cret"), "{}", r.body);
        }
    }))
    .await;
    let e = entra(
        &stub,
        picket::cloud::azure::Credential::Secret(Secret::new("s&cret")),
    );
    graph_user_through(&stub, e).await;
}

#[tokio::test]
async fn federated_assertions_replace_the_client_secret() {
    let stub = Stub::start(entra_stub(|r| {
        if r.path.ends_with("/token") {
            assert!(r.body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"), "{}", r.body);
            assert!(r.body.contains("client_assertion=eyJ.aws.sts"), "{}", r.body);
            assert!(!r.body.contains("client_secret"), "{}", r.body);
        }
    }))
    .await;
    let e = entra(
        &stub,
        picket::cloud::azure::Credential::Assertion(Arc::new(StaticToken(Secret::new(
            "eyJ.aws.sts",
        )))),
    );
    graph_user_through(&stub, e).await;
}

#[tokio::test]
async fn federated_token_files_are_client_assertions() {
    let stub = Stub::start(entra_stub(|r| {
        if r.path.ends_with("/token") {
            assert!(r.body.contains("client_assertion=eyJ.k8s.sa"), "{}", r.body);
            assert!(!r.body.contains("client_secret"), "{}", r.body);
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "eyJ.k8s.sa").unwrap();
    let e = entra(&stub, picket::cloud::azure::Credential::TokenFile(file));
    graph_user_through(&stub, e).await;
}

#[tokio::test]
async fn managed_identity_gets_graph_tokens_from_imds() {
    let stub = Stub::start(entra_stub(|r| {
        if r.path.ends_with("/token") {
            assert!(r.query.contains("client_id=client-1"), "{}", r.query);
        }
    }))
    .await;
    let transport = picket::cloud::azure::Transport::new(
        picket::cloud::http::client(std::time::Duration::from_secs(5)).unwrap(),
    )
    .redirect("http://169.254.169.254", &stub.url);
    let e = picket::cloud::azure::Entra::with_transport(
        transport,
        "client-1".into(),
        picket::cloud::azure::Credential::ManagedIdentity,
        None,
        None,
        Some(stub.url.clone()),
    );
    graph_user_through(&stub, e).await;
}
