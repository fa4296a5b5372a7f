//! Google credentials from `[google]` through `google-cloud-auth`, against an in-process
//! Google that checks what it is sent: a service-account key file (written per test with a
//! TEST-ONLY RSA key generated at run time, `token_uri` on the stub) whose delegation JWTs
//! the OAuth token endpoint verifies (RS256 signature with the public key, `iss`, `sub`,
//! `scope`, `aud`); the self-signed JWTs `google-cloud-auth` sends Cloud Logging for a
//! service-account key (verified the same way); an external account (workload identity
//! federation: a subject-token file traded at an STS stub) whose token authorises IAM
//! Credentials `signJwt` for keyless delegation (and impersonates the service account for
//! Cloud Logging); the metadata server of a Google Cloud host. Then the sources read their
//! events with exactly the tokens the stub issued; two tests run the `picket` binary with
//! Application Default Credentials.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{SecondsFormat, Utc};
use picket::cloud::Clients;
use picket::cloud::rate::RateLimiter;
use picket::config::Config;
use serde_json::{Value, json};

use super::google_sources::catch_all_rules;
use super::source_common::{finding_events, run_until_caught_up};
use crate::util::stub::{Reply, Request, Stub};

const SA: &str = "picket@proj-1.iam.gserviceaccount.com";
const ADMIN: &str = "admin@corp.example";
const PROJECT: &str = "proj-1";
const REPORTS_SCOPE: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";
const LOGGING_SCOPE: &str = "https://www.googleapis.com/auth/logging.read";

/// A TEST-ONLY RSA key, generated for one test: its PKCS#8 PEM (for the key file) and its
/// public key (for the stub's checks).
struct TestKey {
    pem: String,
    public: Vec<u8>,
}

impl TestKey {
    fn generate() -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        TestKey {
            pem,
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    /// The claims of `jwt` when its RS256 signature is this key's, else a panic.
    fn verify(&self, jwt: &str) -> Value {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "a compact JWS");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("signed by the service account's key");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
    }

    /// A service-account key file for [`SA`] whose `token_uri` is `token_uri`.
    fn key_file(&self, dir: &Path, token_uri: &str) -> std::path::PathBuf {
        let path = dir.join("sa-key.json");
        let key = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key-1",
            "private_key": self.pem,
            "client_email": SA,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        });
        std::fs::write(&path, serde_json::to_string_pretty(&key).unwrap()).unwrap();
        path
    }
}

fn form<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    form(query, name)
}

/// The in-process Google: token endpoint, STS, IAM Credentials, Reports, Cloud Logging.
struct Google {
    key: Option<TestKey>,
    stub_url: String,
    /// Token endpoint answers to give before the real one (503s, an `invalid_grant`).
    token_faults: Vec<Reply>,
    /// STS answers to give to Cloud Logging token requests before the real one.
    sts_faults: Vec<Reply>,
    /// Delegated tokens issued.
    issued: usize,
    activities: Vec<Value>,
    entries: Vec<Value>,
    /// The token `signJwt` accepts.
    signer_token: &'static str,
    /// The token Cloud Logging accepts from a keyless credential.
    logging_token: &'static str,
    /// The bearer tokens the Reports and Logging APIs saw.
    seen: Vec<(String, String)>,
}

const DELEGATED: &str = "ya29.delegated-admin";
const FEDERATED: &str = "ya29.federated-from-sts";
const IMPERSONATED: &str = "ya29.service-account-impersonated";
const METADATA: &str = "ya29.from-the-metadata-server";

fn handle(g: &Mutex<Google>, r: &Request) -> Reply {
    let mut g = g.lock().unwrap();
    let bearer = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/token") => {
            assert_eq!(
                form(&r.body, "grant_type"),
                Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
            );
            let jwt = form(&r.body, "assertion").unwrap();
            let claims = match &g.key {
                Some(k) => k.verify(jwt),
                // Keyless: signJwt below answered with the claims it was given, unsigned.
                None => serde_json::from_slice(
                    &URL_SAFE_NO_PAD
                        .decode(jwt.split('.').nth(1).unwrap())
                        .unwrap(),
                )
                .unwrap(),
            };
            assert_eq!(claims["iss"], SA);
            assert_eq!(claims["sub"], ADMIN);
            assert_eq!(claims["aud"], format!("{}/token", g.stub_url));
            assert_eq!(
                claims["scope"], REPORTS_SCOPE,
                "the configured admin_scopes"
            );
            assert_eq!(
                claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
                3600
            );
            if !g.token_faults.is_empty() {
                return g.token_faults.remove(0);
            }
            g.issued += 1;
            Reply::json(
                200,
                json!({"access_token": DELEGATED, "expires_in": 3599, "token_type": "Bearer"}),
            )
        }
        ("POST", "/sts") => {
            assert_eq!(
                form(&r.body, "grant_type"),
                Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange")
            );
            // A file's token, or google-cloud-auth's serialized, signed AWS GetCallerIdentity.
            let subject = form(&r.body, "subject_token").unwrap();
            assert!(
                subject == "aws-signed-request"
                    || (subject.contains("GetCallerIdentity")
                        && subject.contains("AWS4-HMAC-SHA256")
                        && subject.contains("AKIDPICKETTEST")),
                "{subject}"
            );
            assert!(
                form(&r.body, "audience").is_some_and(|a| a.contains("workloadIdentityPools")),
                "{}",
                r.body
            );
            let for_logging = form(&r.body, "scope").is_some_and(|s| s.contains("logging.read"));
            if for_logging && !g.sts_faults.is_empty() {
                return g.sts_faults.remove(0);
            }
            Reply::json(
                200,
                json!({
                    "access_token": FEDERATED,
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                }),
            )
        }
        ("POST", p) if p == format!("/v1/projects/-/serviceAccounts/{SA}:generateAccessToken") => {
            assert_eq!(bearer, FEDERATED, "impersonation by the federated identity");
            let expire = (Utc::now() + chrono::Duration::hours(1))
                .to_rfc3339_opts(SecondsFormat::Secs, true);
            Reply::json(
                200,
                json!({"accessToken": IMPERSONATED, "expireTime": expire}),
            )
        }
        ("POST", p) if p == format!("/v1/projects/-/serviceAccounts/{SA}:signJwt") => {
            assert_eq!(
                bearer, g.signer_token,
                "signJwt authorised by the source token"
            );
            let payload = r.json()["payload"].as_str().unwrap().to_string();
            let jwt = format!(
                "{}.{}.c2ln",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(payload)
            );
            Reply::json(200, json!({"keyId": "k1", "signedJwt": jwt}))
        }
        ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") => {
            assert_eq!(r.header("metadata-flavor"), Some("Google"));
            let scopes = param(&r.query, "scopes").unwrap_or_default();
            // Logging asks for its narrow scope; signJwt's source for cloud-platform.
            let token = if scopes.contains("logging.read") {
                "ya29.from-the-metadata-server-logging"
            } else {
                assert!(scopes.contains("cloud-platform"), "{scopes}");
                METADATA
            };
            Reply::json(
                200,
                json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
            )
        }
        ("GET", p) if p.starts_with("/admin/reports/v1/activity/users/all/applications/") => {
            g.seen.push(("reports".into(), bearer.clone()));
            if bearer != DELEGATED {
                return Reply::json(401, json!({"error": {"code": 401}}));
            }
            let app = p.rsplit('/').next().unwrap().to_string();
            let max: usize = param(&r.query, "maxResults").unwrap().parse().unwrap();
            let offset: usize = param(&r.query, "pageToken").map_or(0, |t| t.parse().unwrap());
            let hits: Vec<&Value> = g
                .activities
                .iter()
                .filter(|a| a["id"]["applicationName"] == app)
                .collect();
            let end = (offset + max).min(hits.len());
            let mut body = json!({"kind": "admin#reports#activities"});
            if end > offset {
                body["items"] = json!(hits[offset..end]);
            }
            if end < hits.len() {
                body["nextPageToken"] = json!(end.to_string());
            }
            Reply::json(200, body)
        }
        ("POST", "/v2/entries:list") => {
            g.seen.push(("logging".into(), bearer.clone()));
            let ok = match &g.key {
                Some(k) => {
                    // google-cloud-auth's token for a service-account key: a self-signed JWT.
                    let claims = k.verify(&bearer);
                    assert_eq!(claims["iss"], SA);
                    assert_eq!(claims["sub"], SA);
                    assert_eq!(claims["scope"], LOGGING_SCOPE, "the narrowest scope");
                    true
                }
                None => bearer == g.logging_token,
            };
            if !ok {
                return Reply::json(401, json!({"error": {"code": 401}}));
            }
            let b = r.json();
            let size = b["pageSize"].as_u64().unwrap() as usize;
            let offset: usize = b["pageToken"].as_str().map_or(0, |t| t.parse().unwrap());
            let end = (offset + size).min(g.entries.len());
            let mut body = json!({"entries": g.entries[offset.min(end)..end]});
            if end < g.entries.len() {
                body["nextPageToken"] = json!(end.to_string());
            }
            Reply::json(200, body)
        }
        _ => Reply::json(404, json!({"error": {"code": 404}})),
    }
}

fn fixture(path: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn activities(n: usize) -> Vec<Value> {
    let doc = fixture("tests/fixtures/google/hand-written/login-token-admin.json");
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let mut v = doc["items"][0].clone();
            v["id"]["uniqueQualifier"] = json!(format!("{}", 7_000_000 + i));
            v["id"]["time"] = json!(
                (now - chrono::Duration::seconds(60 + i as i64))
                    .to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            v
        })
        .collect()
}

fn entries(n: usize) -> Vec<Value> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let mut v =
                fixture("tests/fixtures/gcp/csa/google.cloud.audit.AuditLog.setIamPolicy.json");
            v["insertId"] = json!(format!("auth-{i:04}"));
            v["timestamp"] = json!(
                (now - chrono::Duration::seconds(600 - i as i64))
                    .to_rfc3339_opts(SecondsFormat::Micros, true)
            );
            v["logName"] = json!(format!(
                "projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity"
            ));
            v
        })
        .collect()
}

/// The stub's service-account key written as a key file in `dir`, its token endpoint the
/// stub's.
fn stub_key_file(g: &Mutex<Google>, stub: &Stub, dir: &Path) -> std::path::PathBuf {
    g.lock()
        .unwrap()
        .key
        .as_ref()
        .unwrap()
        .key_file(dir, &format!("{}/token", stub.url))
}

async fn google(key: Option<TestKey>) -> (Arc<Mutex<Google>>, Stub) {
    let g = Arc::new(Mutex::new(Google {
        key,
        stub_url: String::new(),
        token_faults: Vec::new(),
        sts_faults: Vec::new(),
        logging_token: FEDERATED,
        signer_token: FEDERATED,
        issued: 0,
        activities: activities(25),
        entries: entries(30),
        seen: Vec::new(),
    }));
    let stub = Stub::start({
        let g = g.clone();
        move |r| handle(&g, r)
    })
    .await;
    g.lock().unwrap().stub_url = stub.url.clone();
    (g, stub)
}

/// A working folder whose `picket.toml` has `google` as its `[google]` section and one
/// source, with catch-all rules (every event is a finding).
fn workdir(dir: &Path, google: &str, source: &str) {
    catch_all_rules(dir);
    std::fs::write(
        dir.join("picket.toml"),
        format!(
            "[google]\n{google}\n\n[detect.rules]\nbuiltin = false\npaths = [\"rules\"]\n\n\
             [[sources]]\n{source}\n\n[[notify]]\ntype = \"jsonl\"\npath = \"findings.jsonl\"\n"
        ),
    )
    .unwrap();
}

/// The clients `picket run` builds from the folder's `[google]` (no AWS, no Entra).
fn clients(dir: &Path) -> Clients {
    let config = Config::load(&dir.join("picket.toml")).unwrap();
    let http = picket::cloud::http::client(Duration::from_secs(5)).unwrap();
    let mut c = Clients {
        http: Some(http.clone()),
        google: Some(picket::cloud::gcp::api(&config.raw.google, &http).unwrap()),
        ..Clients::default()
    };
    c.rates.reports = RateLimiter::new(1000, Duration::from_secs(1));
    c.rates.logging = RateLimiter::new(1000, Duration::from_secs(1));
    c
}

fn key_section(key_file: &Path, stub: &Stub) -> String {
    format!(
        "credentials = \"key_file\"\nkey_file = \"{}\"\nsubject = \"{ADMIN}\"\n\
         admin_scopes = [\"{REPORTS_SCOPE}\"]\nadmin_base_url = \"{url}\"\n\
         logging_base_url = \"{url}\"\n",
        key_file.display(),
        url = stub.url
    )
}

#[tokio::test]
async fn a_key_file_signs_delegation_locally_and_reports_see_the_traded_token() {
    let (g, stub) = google(Some(TestKey::generate())).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = stub_key_file(&g, &stub, dir.path());
    workdir(
        dir.path(),
        &key_section(&key_file, &stub),
        "type = \"google_reports\"\napplications = [\"login\"]\npage_size = 4",
    );
    let records = run_until_caught_up(dir.path(), &clients(dir.path())).await;
    let g = g.lock().unwrap();
    assert_eq!(records, 25);
    let want: BTreeSet<String> = g
        .activities
        .iter()
        .map(|a| a["id"]["uniqueQualifier"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        finding_events(dir.path())
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>(),
        want
    );
    let reports: Vec<_> = g.seen.iter().filter(|(api, _)| api == "reports").collect();
    // 25 activities in pages of 4, read again from the cursor minus the overlap.
    assert!(reports.len() >= 7, "{} pages", reports.len());
    assert!(reports.iter().all(|(_, t)| t == DELEGATED));
    assert_eq!(g.issued, 1, "one token request for every page");
}

#[tokio::test]
async fn a_key_file_gives_logging_google_cloud_auth_self_signed_tokens() {
    let (g, stub) = google(Some(TestKey::generate())).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = stub_key_file(&g, &stub, dir.path());
    workdir(
        dir.path(),
        &key_section(&key_file, &stub),
        &format!("type = \"gcp_logging\"\nproject = \"{PROJECT}\"\npage_size = 7"),
    );
    let records = run_until_caught_up(dir.path(), &clients(dir.path())).await;
    let g = g.lock().unwrap();
    assert_eq!(records, 30);
    assert_eq!(finding_events(dir.path()).len(), 30);
    let tokens: BTreeSet<&String> = g
        .seen
        .iter()
        .filter(|(api, _)| api == "logging")
        .map(|(_, t)| t)
        .collect();
    // 30 entries in pages of 7 (and again from the cursor minus the overlap), each token
    // verified by the stub.
    assert!(g.seen.len() >= 5, "{} pages", g.seen.len());
    assert_eq!(tokens.len(), 1, "google-cloud-auth caches its token");
    assert_eq!(
        g.issued, 0,
        "no token endpoint for the service account's own"
    );
}

#[tokio::test]
async fn token_endpoint_server_errors_are_retried() {
    let (g, stub) = google(Some(TestKey::generate())).await;
    let dir = tempfile::tempdir().unwrap();
    {
        let mut g = g.lock().unwrap();
        g.token_faults = vec![
            Reply::json(503, json!({"error": "temporarily_unavailable"})),
            Reply::json(500, json!({"error": "internal_failure"})),
        ];
    }
    let key_file = stub_key_file(&g, &stub, dir.path());
    workdir(
        dir.path(),
        &key_section(&key_file, &stub),
        "type = \"google_reports\"\napplications = [\"login\"]",
    );
    let api = clients(dir.path()).google.unwrap();
    assert_eq!(api.admin.tokens.token().await.unwrap().expose(), DELEGATED);
    assert_eq!(
        stub.requests()
            .iter()
            .filter(|r| r.path == "/token")
            .count(),
        3
    );
}

#[tokio::test]
async fn invalid_grant_names_the_credential_and_never_the_key() {
    let key = TestKey::generate();
    let pem_body: String = key.pem.lines().nth(1).unwrap().to_string();
    let (g, stub) = google(Some(key)).await;
    let dir = tempfile::tempdir().unwrap();
    g.lock().unwrap().token_faults = vec![Reply::json(
        400,
        json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
    )];
    let key_file = stub_key_file(&g, &stub, dir.path());
    workdir(
        dir.path(),
        &key_section(&key_file, &stub),
        "type = \"google_reports\"\napplications = [\"login\"]",
    );
    let api = clients(dir.path()).google.unwrap();
    let err = api.admin.tokens.token().await.unwrap_err().to_string();
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains(ADMIN), "names the subject: {err}");
    assert!(err.contains(SA), "names the service account: {err}");
    assert!(
        err.contains(&key_file.display().to_string()),
        "names the key file: {err}"
    );
    assert!(
        !err.contains(&pem_body) && !err.contains("PRIVATE KEY"),
        "{err}"
    );
    assert_eq!(
        stub.requests()
            .iter()
            .filter(|r| r.path == "/token")
            .count(),
        1,
        "a 400 is not retried"
    );
}

/// `[google]` with an external account (workload identity federation: the subject token comes
/// from a file; on AWS it is a signed GetCallerIdentity request built by google-cloud-auth,
/// the exchange is the same) and keyless delegation.
fn keyless_section(dir: &Path, stub: &Stub, impersonate: bool) -> String {
    let subject = dir.join("subject-token");
    std::fs::write(&subject, "aws-signed-request").unwrap();
    let config = json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/picket-aws/providers/aws",
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": format!("{}/sts", stub.url),
        "credential_source": {"file": subject.display().to_string()},
    });
    let mut config = config;
    // As terraform/modules/gcp_identity's google_credentials_config: the federated identity
    // impersonates the service account, whose email picket takes from the URL.
    let service_account = if impersonate {
        config["service_account_impersonation_url"] = json!(format!(
            "{}/v1/projects/-/serviceAccounts/{SA}:generateAccessToken",
            stub.url
        ));
        String::new()
    } else {
        format!("service_account = \"{SA}\"\n")
    };
    let creds = dir.join("wif.json");
    std::fs::write(&creds, config.to_string()).unwrap();
    format!(
        "key_file = \"{}\"\n{service_account}subject = \"{ADMIN}\"\n\
         admin_scopes = [\"{REPORTS_SCOPE}\"]\ntoken_url = \"{url}/token\"\n\
         iamcredentials_base_url = \"{url}\"\nadmin_base_url = \"{url}\"\n\
         logging_base_url = \"{url}\"\n",
        creds.display(),
        url = stub.url
    )
}

#[tokio::test]
async fn keyless_delegation_signs_through_iam_with_the_federated_token() {
    let (g, stub) = google(None).await;
    g.lock().unwrap().logging_token = IMPERSONATED;
    let dir = tempfile::tempdir().unwrap();
    let section = keyless_section(dir.path(), &stub, true);
    workdir(
        dir.path(),
        &section,
        "type = \"google_reports\"\napplications = [\"login\"]\npage_size = 10",
    );
    let clients = clients(dir.path());
    let records = run_until_caught_up(dir.path(), &clients).await;
    assert_eq!(records, 25);
    // The same credential reads Cloud Logging as the impersonated service account.
    let logging = clients
        .google
        .as_ref()
        .unwrap()
        .logging
        .tokens
        .token()
        .await;
    assert_eq!(logging.unwrap().expose(), IMPERSONATED);
    let g = g.lock().unwrap();
    assert!(
        g.seen
            .iter()
            .filter(|(api, _)| api == "reports")
            .all(|(_, t)| t == DELEGATED)
    );
    assert_eq!(g.issued, 1);
    let paths: Vec<String> = stub.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths.iter().filter(|p| p.ends_with(":signJwt")).count(),
        1,
        "{paths:?}"
    );
}

#[tokio::test]
async fn a_refused_token_exchange_is_tried_again_with_fresh_credentials() {
    let (g, stub) = google(None).await;
    g.lock().unwrap().sts_faults = vec![Reply::json(
        400,
        json!({"error": "invalid_grant", "error_description": "pool disabled"}),
    )];
    let dir = tempfile::tempdir().unwrap();
    let section = keyless_section(dir.path(), &stub, false);
    workdir(
        dir.path(),
        &section,
        &format!("type = \"gcp_logging\"\nproject = \"{PROJECT}\""),
    );
    let google = clients(dir.path()).google.unwrap();
    let err = google.logging.tokens.token().await.unwrap_err().to_string();
    assert!(
        err.contains("wif.json"),
        "names the credentials file: {err}"
    );
    // google-cloud-auth would keep that error for good; picket's next request starts over.
    assert_eq!(
        google.logging.tokens.token().await.unwrap().expose(),
        FEDERATED
    );
}

/// The `[[sources]]` of the binary tests: Reports logins and the project's audit logs.
fn both_sources() -> String {
    format!(
        "type = \"google_reports\"\napplications = [\"login\"]\npage_size = 10\n\n\
         [[sources]]\ntype = \"gcp_logging\"\nproject = \"{PROJECT}\"\npage_size = 10"
    )
}

/// Runs `picket run --config picket.toml --once` in `dir` with quiet logs, no AWS profile or
/// instance metadata and no Google quota project from this machine; `env` sets the rest of
/// the environment.
async fn picket_run_once(
    dir: &Path,
    env: impl FnOnce(&mut std::process::Command) + Send + 'static,
) -> std::process::Output {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_picket"));
        c.args(["run", "--config", "picket.toml", "--once"])
            .current_dir(&dir)
            .env("PICKET_LOG", "warn")
            .env_remove("GOOGLE_CLOUD_QUOTA_PROJECT")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE");
        env(&mut c);
        c.output().unwrap()
    })
    .await
    .unwrap()
}

/// The real binary with Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`
/// names the service-account key, `[google]` names no credential at all.
#[tokio::test]
async fn picket_run_reads_both_sources_with_application_default_credentials() {
    let (g, stub) = google(Some(TestKey::generate())).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = stub_key_file(&g, &stub, dir.path());
    workdir(
        dir.path(),
        &format!(
            "subject = \"{ADMIN}\"\nadmin_scopes = [\"{REPORTS_SCOPE}\"]\n\
             admin_base_url = \"{url}\"\nlogging_base_url = \"{url}\"\n",
            url = stub.url
        ),
        &both_sources(),
    );
    let out = picket_run_once(dir.path(), move |c| {
        c.env("GOOGLE_APPLICATION_CREDENTIALS", &key_file);
        c.env("AWS_ACCESS_KEY_ID", "testing");
        c.env("AWS_SECRET_ACCESS_KEY", "testing");
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "picket run --once: {stderr}");
    assert_eq!(finding_events(dir.path()).len(), 25 + 30, "{stderr}");
    let g = g.lock().unwrap();
    assert_eq!(g.issued, 1);
    assert!(
        g.seen
            .iter()
            .filter(|(api, _)| api == "reports")
            .all(|(_, t)| t == DELEGATED)
    );
    assert!(g.seen.iter().any(|(api, _)| api == "logging"));
}

/// The real binary on a Google Cloud host: no credentials file anywhere, so
/// `google-cloud-auth` asks the metadata server (`GCE_METADATA_HOST` points it at the stub),
/// and delegation signs through `signJwt` with the metadata server's token.
#[tokio::test]
async fn picket_run_on_a_google_cloud_host_uses_the_metadata_server() {
    let (g, stub) = google(None).await;
    {
        let mut g = g.lock().unwrap();
        g.signer_token = METADATA;
        g.logging_token = "ya29.from-the-metadata-server-logging";
    }
    let dir = tempfile::tempdir().unwrap();
    workdir(
        dir.path(),
        &format!(
            "credentials = \"adc\"\nservice_account = \"{SA}\"\nsubject = \"{ADMIN}\"\n\
             admin_scopes = [\"{REPORTS_SCOPE}\"]\ntoken_url = \"{url}/token\"\n\
             iamcredentials_base_url = \"{url}\"\nadmin_base_url = \"{url}\"\n\
             logging_base_url = \"{url}\"\n",
            url = stub.url
        ),
        &both_sources(),
    );
    let host = stub.url.trim_start_matches("http://").to_string();
    let home = dir.path().to_path_buf();
    let out = picket_run_once(dir.path(), move |c| {
        c.env("GCE_METADATA_HOST", host);
        c.env("HOME", home);
        c.env_remove("GOOGLE_APPLICATION_CREDENTIALS");
        c.env_remove("CLOUDSDK_CONFIG");
        c.env("AWS_ACCESS_KEY_ID", "testing");
        c.env("AWS_SECRET_ACCESS_KEY", "testing");
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "picket run --once: {stderr}");
    assert_eq!(finding_events(dir.path()).len(), 25 + 30, "{stderr}");
    let g = g.lock().unwrap();
    assert_eq!(g.issued, 1);
    assert!(g.seen.iter().any(|(api, _)| api == "logging"));
}

/// The real binary as the Lambda functions run it: `[google] key_file` is the
/// `google_credentials_config` of terraform/modules/gcp_identity (AWS environment credentials
/// signed into a GetCallerIdentity request, exchanged at STS, then service-account
/// impersonation), the AWS credentials and region in the environment.
#[tokio::test]
async fn picket_run_with_aws_workload_identity_federation() {
    let (g, stub) = google(None).await;
    g.lock().unwrap().logging_token = IMPERSONATED;
    let dir = tempfile::tempdir().unwrap();
    let wif = json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/picket-aws/providers/aws",
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": format!("{}/sts", stub.url),
        "service_account_impersonation_url": format!(
            "{}/v1/projects/-/serviceAccounts/{SA}:generateAccessToken",
            stub.url
        ),
        "credential_source": {
            "environment_id": "aws1",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        },
    });
    std::fs::write(dir.path().join("google-credentials.json"), wif.to_string()).unwrap();
    workdir(
        dir.path(),
        &format!(
            "key_file = \"google-credentials.json\"\nsubject = \"{ADMIN}\"\n\
             admin_scopes = [\"{REPORTS_SCOPE}\"]\ntoken_url = \"{url}/token\"\n\
             iamcredentials_base_url = \"{url}\"\nadmin_base_url = \"{url}\"\n\
             logging_base_url = \"{url}\"\n",
            url = stub.url
        ),
        &both_sources(),
    );
    let out = picket_run_once(dir.path(), move |c| {
        c.env_remove("GOOGLE_APPLICATION_CREDENTIALS");
        c.env("AWS_ACCESS_KEY_ID", "AKIDPICKETTEST");
        c.env("AWS_SECRET_ACCESS_KEY", "testing");
        c.env("AWS_SESSION_TOKEN", "session");
        c.env("AWS_REGION", "us-east-1");
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "picket run --once: {stderr}");
    assert_eq!(finding_events(dir.path()).len(), 25 + 30, "{stderr}");
    let g = g.lock().unwrap();
    assert_eq!(g.issued, 1);
    let paths: Vec<String> = stub.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.iter().any(|p| p.ends_with(":generateAccessToken")));
    assert!(paths.iter().any(|p| p.ends_with(":signJwt")));
}
