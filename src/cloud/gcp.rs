//! Google credentials and API clients, built once from `[google]` (feature `gcp`).
//!
//! Google's own tokens (Cloud Logging, IAM, and the source token of keyless domain-wide
//! delegation) come from `google-cloud-auth` ([`GoogleTokens`]): Application Default
//! Credentials (the `GOOGLE_APPLICATION_CREDENTIALS` file — service-account key, authorized
//! user, external account / workload identity federation, impersonated service account —
//! gcloud's file, else the metadata server of GCE, GKE, Cloud Run) or an explicit
//! `key_file`. For a service-account key, `google-cloud-auth` sends self-signed JWTs as
//! bearer tokens (no token endpoint round trip).
//!
//! The Admin SDK (Reports, Directory) answers only a Workspace admin: domain-wide delegation,
//! a JWT with `sub` that `google-cloud-auth` 1.19 cannot mint (its service-account JWTs fix
//! `sub` to the service account). [`DelegatedToken`] does that exchange; the JWT is signed
//! by the service-account key through `google-cloud-auth`'s signer ([`KeySigner`], local
//! RS256 over the process's rustls crypto provider: no second crypto stack), or without a
//! key by IAM Credentials `signJwt` ([`IamSignJwt`]) authorised by the `google-cloud-auth`
//! token.
//!
//! `google-cloud-auth` sends its own requests (metadata server, STS, OAuth refresh) through
//! a reqwest client of its own: same reqwest and rustls versions, its timeouts and retries.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use google_cloud_auth::credentials::{
    AccessTokenCredentials, Builder as AdcBuilder, external_account,
    external_account_authorized_user, impersonated, service_account, user_account,
};

use super::CloudError;
use super::token::{
    Api, DelegatedToken, GOOGLE_TOKEN_URL, GoogleApi, IAMCREDENTIALS_BASE_URL, IamSignJwt,
    JwtSigner, StaticToken, TokenProvider,
};
use crate::config::{GoogleCredentials, GoogleSection, Secret};

/// Default scope of the service account's own token (IAM, IAM Credentials).
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Default scope of the Cloud Logging token: read-only.
pub const LOGGING_READ_SCOPE: &str = "https://www.googleapis.com/auth/logging.read";
/// The Admin SDK.
pub const ADMIN_BASE_URL: &str = "https://admin.googleapis.com";
/// Cloud Logging.
pub const LOGGING_BASE_URL: &str = "https://logging.googleapis.com";
/// IAM.
pub const IAM_BASE_URL: &str = "https://iam.googleapis.com";

/// The environment variable naming the Application Default Credentials file.
pub const ADC_ENV: &str = "GOOGLE_APPLICATION_CREDENTIALS";

fn token_err(message: impl Into<String>) -> CloudError {
    CloudError::Token {
        audience: "google",
        message: message.into(),
    }
}

/// `message` and its causes, for errors of `google-cloud-auth` (whose messages name no key
/// material: key parsing errors say what was wrong, not what was there).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

/// A Google credentials file read into memory. It may hold a private key: `Debug` shows the
/// path and type only, and errors about it never quote its content.
pub struct CredentialsFile {
    path: PathBuf,
    kind: String,
    json: serde_json::Value,
}

impl fmt::Debug for CredentialsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsFile")
            .field("path", &self.path)
            .field("type", &self.kind)
            .finish_non_exhaustive()
    }
}

impl CredentialsFile {
    /// Reads `path`: JSON with a `type`.
    pub fn read(path: &Path) -> Result<CredentialsFile, CloudError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| token_err(format!("{}: {e}", path.display())))?;
        // serde_json's messages may quote the text: only the position is reported.
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            token_err(format!(
                "{}: not a JSON credentials file ({:?} error at line {} column {})",
                path.display(),
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let kind = json["type"]
            .as_str()
            .ok_or_else(|| {
                token_err(format!(
                    "{}: no `type` (service_account, authorized_user, external_account, ...)",
                    path.display()
                ))
            })?
            .to_string();
        Ok(CredentialsFile {
            path: path.to_path_buf(),
            kind,
            json,
        })
    }

    fn duplicate(&self) -> CredentialsFile {
        CredentialsFile {
            path: self.path.clone(),
            kind: self.kind.clone(),
            json: self.json.clone(),
        }
    }

    /// An external account that impersonates a service account: that service account's email
    /// (from `service_account_impersonation_url`) and the file without the impersonation,
    /// whose tokens are the federated identity's own.
    fn federated(&self) -> Option<(String, CredentialsFile)> {
        if self.kind != "external_account" {
            return None;
        }
        let url = self.field("service_account_impersonation_url")?;
        let email = url
            .rsplit_once("/serviceAccounts/")?
            .1
            .split(':')
            .next()
            .filter(|e| !e.is_empty())?
            .to_string();
        let mut json = self.json.clone();
        if let Some(o) = json.as_object_mut() {
            o.remove("service_account_impersonation_url");
            o.remove("service_account_impersonation");
        }
        Some((
            email,
            CredentialsFile {
                path: self.path.clone(),
                kind: self.kind.clone(),
                json,
            },
        ))
    }

    /// The file's `type` (`service_account`, `external_account`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.json[name].as_str().filter(|s| !s.is_empty())
    }

    fn describe(&self) -> String {
        format!("key file {} ({})", self.path.display(), self.kind)
    }

    /// `google-cloud-auth` credentials of this file for `scopes`.
    fn credentials(&self, scopes: &[String]) -> Result<AccessTokenCredentials, CloudError> {
        let json = self.json.clone();
        let scopes = scopes.to_vec();
        let built = match self.kind.as_str() {
            "service_account" => service_account::Builder::new(json)
                .with_access_specifier(service_account::AccessSpecifier::from_scopes(scopes))
                .build_access_token_credentials(),
            "authorized_user" => user_account::Builder::new(json)
                .with_scopes(scopes)
                .build_access_token_credentials(),
            "external_account" => external_account::Builder::new(json)
                .with_scopes(scopes)
                .build_access_token_credentials(),
            // Workforce identity federation: the file carries its scopes.
            "external_account_authorized_user" => {
                external_account_authorized_user::Builder::new(json)
                    .build_access_token_credentials()
            }
            "impersonated_service_account" => impersonated::Builder::new(json)
                .with_scopes(scopes)
                .build_access_token_credentials(),
            other => {
                return Err(token_err(format!(
                    "{}: credentials of type `{other}` are not supported (service_account, \
                     authorized_user, external_account, external_account_authorized_user, \
                     impersonated_service_account)",
                    self.path.display()
                )));
            }
        };
        built.map_err(|e| token_err(format!("{}: {}", self.describe(), chain(&e))))
    }
}

/// Where `[google]` tokens come from.
pub enum Credentials {
    /// Application Default Credentials; `file` is the `GOOGLE_APPLICATION_CREDENTIALS` file
    /// when one is named (read to tell a service-account key, which signs delegation JWTs
    /// itself, from keyless credentials).
    Adc {
        /// The ADC file.
        file: Option<CredentialsFile>,
    },
    /// An explicit credentials file.
    File(CredentialsFile),
    /// A fixed token (development, tests).
    Token(Secret),
}

impl Credentials {
    /// Application Default Credentials, reading the file `GOOGLE_APPLICATION_CREDENTIALS`
    /// names, if any.
    pub fn adc() -> Result<Credentials, CloudError> {
        let file = match std::env::var_os(ADC_ENV).filter(|p| !p.is_empty()) {
            Some(p) => Some(
                CredentialsFile::read(Path::new(&p))
                    .map_err(|e| token_err(format!("{ADC_ENV}: {}", message(e))))?,
            ),
            None => None,
        };
        Ok(Credentials::Adc { file })
    }

    /// Names the credential in errors.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Adc { file: Some(f) } => {
                format!("application default credentials, {}", f.describe())
            }
            Credentials::Adc { file: None } => {
                "application default credentials (gcloud or the metadata server)".into()
            }
            Credentials::File(f) => f.describe(),
            Credentials::Token(_) => "[google] access_token".into(),
        }
    }

    /// Tokens for `scopes`.
    pub fn tokens(&self, scopes: &[String]) -> Result<Arc<dyn TokenProvider>, CloudError> {
        let scopes = scopes.to_vec();
        let make: Make = match self {
            Credentials::Token(t) => return Ok(Arc::new(StaticToken(t.clone()))),
            Credentials::File(f) => {
                let f = f.duplicate();
                Box::new(move || f.credentials(&scopes))
            }
            Credentials::Adc { .. } => {
                let what = self.describe();
                Box::new(move || {
                    AdcBuilder::default()
                        .with_scopes(scopes.clone())
                        .build_access_token_credentials()
                        .map_err(|e| token_err(format!("{what}: {}", chain(&e))))
                })
            }
        };
        Ok(Arc::new(GoogleTokens::new(make, self.describe())?))
    }

    /// For keyless signing of an external account that impersonates a service account: the
    /// service account and the federated identity's own credentials (the identity that holds
    /// `roles/iam.serviceAccountTokenCreator` on it, as `terraform/modules/gcp_identity`
    /// grants). `None` for any other credential.
    fn federated(&self) -> Option<(String, Credentials)> {
        match self {
            Credentials::Adc { file: Some(f) } | Credentials::File(f) => f
                .federated()
                .map(|(email, file)| (email, Credentials::File(file))),
            _ => None,
        }
    }

    /// The service-account key file, when the credential is one.
    fn key(&self) -> Option<&CredentialsFile> {
        match self {
            Credentials::Adc { file: Some(f) } | Credentials::File(f)
                if f.kind == "service_account" =>
            {
                Some(f)
            }
            _ => None,
        }
    }
}

type Make = Box<dyn Fn() -> Result<AccessTokenCredentials, CloudError> + Send + Sync>;

/// A [`TokenProvider`] over `google-cloud-auth` credentials for one set of scopes (the
/// credentials cache and refresh their tokens). `google-cloud-auth` keeps a permanent error
/// (an STS or OAuth 4xx) for the life of the credentials; these are rebuilt after one, so a
/// fixed IAM binding or pool is picked up by the next request instead of a restart.
pub struct GoogleTokens {
    make: Make,
    current: std::sync::Mutex<AccessTokenCredentials>,
    what: String,
}

impl GoogleTokens {
    fn new(make: Make, what: String) -> Result<GoogleTokens, CloudError> {
        let current = std::sync::Mutex::new(make()?);
        Ok(GoogleTokens {
            make,
            current,
            what,
        })
    }

    fn current(&self) -> AccessTokenCredentials {
        match self.current.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[async_trait::async_trait]
impl TokenProvider for GoogleTokens {
    async fn token(&self) -> Result<Secret, CloudError> {
        match self.current().access_token().await {
            Ok(t) => Ok(Secret::new(t.token)),
            Err(e) => {
                if !e.is_transient()
                    && let Ok(fresh) = (self.make)()
                {
                    match self.current.lock() {
                        Ok(mut c) => *c = fresh,
                        Err(poisoned) => *poisoned.into_inner() = fresh,
                    }
                }
                Err(token_err(format!("{}: {}", self.what, chain(&e))))
            }
        }
    }
}

/// Signs delegation JWTs with a service-account key through `google-cloud-auth`'s signer
/// (RS256, locally).
pub struct KeySigner {
    signer: google_cloud_auth::signer::Signer,
    email: String,
    key_id: Option<String>,
    path: PathBuf,
}

impl KeySigner {
    /// The signer of a `service_account` key file.
    pub fn new(key: &CredentialsFile) -> Result<KeySigner, CloudError> {
        let email = key
            .field("client_email")
            .ok_or_else(|| token_err(format!("{}: no client_email", key.path.display())))?
            .to_string();
        let signer = service_account::Builder::new(key.json.clone())
            .build_signer()
            .map_err(|e| token_err(format!("{}: {}", key.describe(), chain(&e))))?;
        Ok(KeySigner {
            signer,
            email,
            key_id: key.field("private_key_id").map(str::to_string),
            path: key.path.clone(),
        })
    }
}

#[async_trait::async_trait]
impl JwtSigner for KeySigner {
    fn issuer(&self) -> &str {
        &self.email
    }

    fn describe(&self) -> String {
        format!(
            "service account {} (key file {})",
            self.email,
            self.path.display()
        )
    }

    async fn sign(&self, claims: &serde_json::Value) -> Result<String, CloudError> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = serde_json::json!(kid);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .signer
            .sign(input.as_bytes())
            .await
            .map_err(|e| token_err(format!("signing with the key: {}", chain(&e))))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The scopes of the delegated Admin SDK token when `[google] admin_scopes` is not set:
/// Reports audit read-only and the scopes of every Google Workspace response action.
pub fn default_admin_scopes() -> Vec<String> {
    let mut scopes: Vec<String> = crate::respond::ActionKind::ALL
        .iter()
        .filter(|k| k.provider() == crate::model::Provider::GoogleWorkspace)
        .flat_map(|k| k.permissions().iter().map(|p| p.to_string()))
        .collect();
    scopes.push(crate::source::google_reports::SCOPE.to_string());
    scopes.sort();
    scopes.dedup();
    scopes
}

/// A `[google]` problem: the key it concerns and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct GoogleConfigError {
    /// `google.<field>`.
    pub key: &'static str,
    /// What is wrong (names files, never key material).
    pub message: String,
}

/// The message of a token error, without the `token for google` prefix.
fn message(e: CloudError) -> String {
    match e {
        CloudError::Token { message, .. } => message,
        other => other.to_string(),
    }
}

fn config_err(key: &'static str, e: CloudError) -> GoogleConfigError {
    GoogleConfigError {
        key,
        message: message(e),
    }
}

fn config_msg(key: &'static str, message: impl Into<String>) -> GoogleConfigError {
    GoogleConfigError {
        key,
        message: message.into(),
    }
}

/// The credentials `[google]` names.
pub fn credentials(g: &GoogleSection) -> Result<Credentials, GoogleConfigError> {
    match g.kind() {
        Some(GoogleCredentials::Adc) | None => {
            Credentials::adc().map_err(|e| config_err("google.credentials", e))
        }
        Some(GoogleCredentials::KeyFile) => {
            let path = g.key_file.as_deref().ok_or_else(|| {
                config_msg(
                    "google.key_file",
                    "credentials = \"key_file\" needs key_file = \"path/to/key.json\"",
                )
            })?;
            CredentialsFile::read(path)
                .map(Credentials::File)
                .map_err(|e| config_err("google.key_file", e))
        }
        Some(GoogleCredentials::AccessToken) => {
            let r = g.access_token.as_ref().ok_or_else(|| {
                config_msg(
                    "google.access_token",
                    "credentials = \"access_token\" needs access_token = \"env:VAR\"",
                )
            })?;
            r.resolve()
                .map(Credentials::Token)
                .map_err(|e| config_msg("google.access_token", e.to_string()))
        }
    }
}

/// The Google clients of `[google]` over the shared HTTP client: Cloud Logging and IAM with
/// the service account's own tokens (`logging_scopes`, `scopes`), the Admin SDK with
/// delegated tokens for `subject` (`admin_scopes`), or the service account's own without one.
///
/// Call it within a Tokio runtime: `google-cloud-auth` starts each credential's token refresh
/// task when it is built (and fetches the first token in the background right away).
pub fn api(g: &GoogleSection, http: &reqwest::Client) -> Result<GoogleApi, GoogleConfigError> {
    let creds = credentials(g)?;
    api_with(g, http, &creds)
}

/// [`api`] over credentials given.
pub fn api_with(
    g: &GoogleSection,
    http: &reqwest::Client,
    creds: &Credentials,
) -> Result<GoogleApi, GoogleConfigError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(config_msg(
            "google",
            "the Google clients are built within a Tokio runtime (google-cloud-auth)",
        ));
    }
    let key_of = |kind: Option<GoogleCredentials>| match kind {
        Some(GoogleCredentials::KeyFile) => "google.key_file",
        Some(GoogleCredentials::AccessToken) => "google.access_token",
        _ => "google.credentials",
    };
    let key = key_of(g.kind());
    let scopes = |s: &Option<Vec<String>>, default: &str| {
        s.clone().unwrap_or_else(|| vec![default.to_string()])
    };
    let own = creds
        .tokens(&scopes(&g.scopes, CLOUD_PLATFORM_SCOPE))
        .map_err(|e| config_err(key, e))?;
    let logging = creds
        .tokens(&scopes(&g.logging_scopes, LOGGING_READ_SCOPE))
        .map_err(|e| config_err(key, e))?;
    let admin: Arc<dyn TokenProvider> = match &g.subject {
        None => own.clone(),
        Some(subject) => {
            let signer: Arc<dyn JwtSigner> = match creds.key() {
                Some(k) => {
                    let signer = KeySigner::new(k).map_err(|e| config_err(key, e))?;
                    if let Some(sa) = &g.service_account
                        && *sa != signer.email
                    {
                        return Err(config_msg(
                            "google.service_account",
                            format!(
                                "{sa} is not the key's client_email {} ({}); leave it out",
                                signer.email,
                                k.path.display()
                            ),
                        ));
                    }
                    Arc::new(signer)
                }
                None => {
                    // An impersonating external account signs with the federated identity's
                    // token (it holds Token Creator on the service account); anything else
                    // with its own token.
                    let federated = creds.federated();
                    let sa = g
                        .service_account
                        .clone()
                        .or_else(|| federated.as_ref().map(|(email, _)| email.clone()))
                        .ok_or_else(|| {
                            config_msg(
                                "google.service_account",
                                format!(
                                    "domain-wide delegation for subject {subject} with {} (no \
                                     key) signs through IAM Credentials signJwt: set \
                                     service_account to the service account's email",
                                    creds.describe()
                                ),
                            )
                        })?;
                    let source = match &federated {
                        Some((_, fed)) => fed
                            .tokens(&scopes(&g.scopes, CLOUD_PLATFORM_SCOPE))
                            .map_err(|e| config_err(key, e))?,
                        None => own.clone(),
                    };
                    Arc::new(IamSignJwt::new(
                        http.clone(),
                        source,
                        g.iamcredentials_base_url
                            .clone()
                            .unwrap_or_else(|| IAMCREDENTIALS_BASE_URL.into()),
                        sa,
                    ))
                }
            };
            let token_url = g
                .token_url
                .clone()
                .or_else(|| {
                    creds
                        .key()
                        .and_then(|k| k.field("token_uri").map(String::from))
                })
                .unwrap_or_else(|| GOOGLE_TOKEN_URL.into());
            Arc::new(DelegatedToken::new(
                http.clone(),
                signer,
                subject.clone(),
                g.admin_scopes.clone().unwrap_or_else(default_admin_scopes),
                token_url,
            ))
        }
    };
    let base = |url: &Option<String>, default: &str| {
        url.as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string()
    };
    Ok(GoogleApi {
        admin: Api {
            http: http.clone(),
            base_url: base(&g.admin_base_url, ADMIN_BASE_URL),
            tokens: admin,
        },
        iam: Api {
            http: http.clone(),
            base_url: base(&g.iam_base_url, IAM_BASE_URL),
            tokens: own,
        },
        logging: Api {
            http: http.clone(),
            base_url: base(&g.logging_base_url, LOGGING_BASE_URL),
            tokens: logging,
        },
        subject: g.subject.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(key_file: &Path) -> GoogleSection {
        GoogleSection {
            key_file: Some(key_file.to_path_buf()),
            subject: Some("admin@corp.example".into()),
            ..GoogleSection::default()
        }
    }

    #[test]
    fn credentials_files_never_show_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(
            &path,
            r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n"}"#,
        )
        .unwrap();
        let f = CredentialsFile::read(&path).unwrap();
        let shown = format!("{f:?}");
        assert!(shown.contains("key.json") && shown.contains("service_account"));
        assert!(!shown.contains("SECRET"), "{shown}");

        // A broken file: the position, not the text.
        std::fs::write(&path, "{\"private_key\": \"SECRETSECRET").unwrap();
        let e = CredentialsFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("key.json") && e.contains("line 1"), "{e}");
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[tokio::test]
    async fn key_and_delegation_problems_name_the_field_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let http = reqwest::Client::new();
        // A service-account key without a usable key: named by its file, the key not quoted.
        let path = dir.path().join("broken.json");
        std::fs::write(
            &path,
            r#"{"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com",
                "private_key_id": "k", "project_id": "p",
                "private_key": "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n"}"#,
        )
        .unwrap();
        let api = api(&section(&path), &http).unwrap();
        let e = api.admin.tokens.token().await.unwrap_err().to_string();
        assert!(e.contains("broken.json"), "{e}");
        assert!(e.contains("admin@corp.example"), "{e}");
        assert!(!e.contains("U0VDUkVU"), "{e}");

        // A service_account that is not the key's.
        let mut g = section(&path);
        g.service_account = Some("other@p.iam.gserviceaccount.com".into());
        let e = super::api(&g, &http).err().unwrap();
        assert_eq!(e.key, "google.service_account");
        assert!(e.message.contains("sa@p.iam.gserviceaccount.com"), "{e}");

        // Keyless delegation needs the service account to sign as.
        let path = dir.path().join("user.json");
        std::fs::write(
            &path,
            r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}"#,
        )
        .unwrap();
        let e = super::api(&section(&path), &http).err().unwrap();
        assert_eq!(e.key, "google.service_account");
        assert!(e.message.contains("user.json"), "{e}");

        // An unknown type.
        let path = dir.path().join("odd.json");
        std::fs::write(&path, r#"{"type": "gdch_service_account"}"#).unwrap();
        let e = super::api(&section(&path), &http).err().unwrap();
        assert_eq!(e.key, "google.key_file");
        assert!(e.message.contains("odd.json") && e.message.contains("gdch_service_account"));
    }

    #[test]
    fn an_impersonating_external_account_names_its_service_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wif.json");
        std::fs::write(
            &path,
            r#"{"type": "external_account", "audience": "//iam.googleapis.com/x",
                "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
                "token_url": "https://sts.googleapis.com/v1/token",
                "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
                "credential_source": {"environment_id": "aws1"}}"#,
        )
        .unwrap();
        let f = CredentialsFile::read(&path).unwrap();
        let (email, own) = f.federated().unwrap();
        assert_eq!(email, "sa@p.iam.gserviceaccount.com");
        assert!(own.json.get("service_account_impersonation_url").is_none());
        assert!(f.duplicate().federated().is_some());
    }

    #[test]
    fn default_admin_scopes_cover_reports_and_the_workspace_actions() {
        assert_eq!(
            default_admin_scopes(),
            vec![
                "https://www.googleapis.com/auth/admin.directory.user",
                "https://www.googleapis.com/auth/admin.directory.user.security",
                "https://www.googleapis.com/auth/admin.reports.audit.readonly",
            ]
        );
    }
}
