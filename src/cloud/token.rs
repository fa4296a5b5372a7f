//! Bearer tokens for Microsoft Graph and the Google APIs, behind [`TokenProvider`] so tests
//! inject a fixed token and deployments plug in a real credential flow.
//!
//! Shipped providers: [`StaticToken`] (a token from the environment or a test),
//! [`DelegatedToken`] (Google Workspace domain-wide delegation: a JWT with `sub` signed by a
//! [`JwtSigner`] — the service-account key locally, or IAM Credentials `signJwt`
//! ([`IamSignJwt`]) without a key — then the JWT-bearer grant), with feature `gcp`
//! `cloud::gcp::GoogleTokens` (Google's own tokens from `google-cloud-auth`: Application
//! Default Credentials, key files, workload identity federation, the metadata server) and,
//! with feature `azure`, `cloud::azure::EntraTokens` (Microsoft Entra through
//! `azure_identity`). To add one: implement [`TokenProvider`].

use std::sync::Arc;

use tokio::sync::Mutex;

use super::CloudError;
use crate::config::Secret;

/// A source of bearer tokens for one audience.
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// A currently valid access token.
    async fn token(&self) -> Result<Secret, CloudError>;
}

/// A fixed token.
pub struct StaticToken(pub Secret);

#[async_trait::async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self) -> Result<Secret, CloudError> {
        Ok(self.0.clone())
    }
}

/// Signs JWTs as a Google service account, for domain-wide delegation.
#[async_trait::async_trait]
pub trait JwtSigner: Send + Sync {
    /// The service account the JWTs are issued by (`iss`).
    fn issuer(&self) -> &str;
    /// Names the signer in errors: the service account and where its key is (never the key).
    fn describe(&self) -> String;
    /// The signed JWT (compact form) of `claims`.
    async fn sign(&self, claims: &serde_json::Value) -> Result<String, CloudError>;
}

/// Keyless signing: IAM Credentials `signJwt` as `service_account`, authorised by the `source`
/// token (the service account's own, from workload identity federation or the metadata
/// server through `google-cloud-auth`); needs `roles/iam.serviceAccountTokenCreator` on it.
pub struct IamSignJwt {
    api: Api,
    service_account: String,
}

impl IamSignJwt {
    /// `signJwt` at `iamcredentials_base_url` with tokens from `source`.
    pub fn new(
        http: reqwest::Client,
        source: Arc<dyn TokenProvider>,
        iamcredentials_base_url: String,
        service_account: String,
    ) -> IamSignJwt {
        IamSignJwt {
            api: Api {
                http,
                base_url: iamcredentials_base_url,
                tokens: source,
            },
            service_account,
        }
    }
}

#[async_trait::async_trait]
impl JwtSigner for IamSignJwt {
    fn issuer(&self) -> &str {
        &self.service_account
    }

    fn describe(&self) -> String {
        format!("service account {} (IAM signJwt)", self.service_account)
    }

    async fn sign(&self, claims: &serde_json::Value) -> Result<String, CloudError> {
        let signed = self
            .api
            .call(
                reqwest::Method::POST,
                &format!(
                    "/v1/projects/-/serviceAccounts/{}:signJwt",
                    urlencode(&self.service_account)
                ),
                Some(&serde_json::json!({"payload": claims.to_string()})),
                &[],
            )
            .await?
            .json("signJwt")?;
        signed["signedJwt"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| token_err("signJwt answered without signedJwt"))
    }
}

/// Google Workspace domain-wide delegation: a JWT of the service account (`iss`, `sub` = the
/// admin to act as, `scope`, `aud` = token endpoint, `iat`, `exp`) signed by a [`JwtSigner`]
/// (the service-account key locally, or IAM Credentials `signJwt` without a key) and traded
/// at the OAuth token endpoint (`urn:ietf:params:oauth:grant-type:jwt-bearer`). Cached until a
/// minute before expiry; one request at a time.
pub struct DelegatedToken {
    http: reqwest::Client,
    signer: Arc<dyn JwtSigner>,
    subject: String,
    scopes: Vec<String>,
    token_url: String,
    cached: Mutex<Option<(Secret, chrono::DateTime<chrono::Utc>)>>,
}

/// Google's IAM Credentials API.
pub const IAMCREDENTIALS_BASE_URL: &str = "https://iamcredentials.googleapis.com";
/// Google's OAuth token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

impl DelegatedToken {
    /// Tokens acting as `subject` for `scopes`, from `token_url`.
    pub fn new(
        http: reqwest::Client,
        signer: Arc<dyn JwtSigner>,
        subject: String,
        scopes: Vec<String>,
        token_url: String,
    ) -> DelegatedToken {
        DelegatedToken {
            http,
            signer,
            subject,
            scopes,
            token_url,
            cached: Mutex::new(None),
        }
    }

    async fn fetch(&self, now: chrono::DateTime<chrono::Utc>) -> Result<(Secret, i64), CloudError> {
        let claims = serde_json::json!({
            "iss": self.signer.issuer(),
            "sub": self.subject,
            "scope": self.scopes.join(" "),
            "aud": self.token_url,
            "iat": now.timestamp(),
            "exp": now.timestamp() + 3600,
        });
        let jwt = self.signer.sign(&claims).await?;
        let form = format!(
            "grant_type={}&assertion={}",
            urlencode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            urlencode(&jwt)
        );
        let answer = super::http::send(
            &super::retry::RetryPolicy::default(),
            "POST",
            &self.token_url,
            &[],
            || {
                self.http
                    .post(&self.token_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone())
            },
        )
        .await?
        .json(&self.token_url)?;
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("no access_token in the answer"))?;
        Ok((
            Secret::new(token),
            answer["expires_in"].as_i64().unwrap_or(300),
        ))
    }
}

fn token_err(message: impl Into<String>) -> CloudError {
    CloudError::Token {
        audience: "google",
        message: message.into(),
    }
}

#[async_trait::async_trait]
impl TokenProvider for DelegatedToken {
    async fn token(&self) -> Result<Secret, CloudError> {
        let mut cached = self.cached.lock().await;
        let now = chrono::Utc::now();
        if let Some((t, exp)) = &*cached
            && *exp > now
        {
            return Ok(t.clone());
        }
        let (t, secs) = self.fetch(now).await.map_err(|e| {
            token_err(format!(
                "domain-wide delegation as {} by {}: {}",
                self.subject,
                self.signer.describe(),
                match e {
                    CloudError::Token { message, .. } => message,
                    other => other.to_string(),
                }
            ))
        })?;
        *cached = Some((
            t.clone(),
            now + chrono::Duration::seconds((secs - 60).max(0)),
        ));
        Ok(t)
    }
}

/// Percent-encodes a URL component (RFC 3986 unreserved characters pass).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A REST API reached through the shared client: base URL and token source.
#[derive(Clone)]
pub struct Api {
    /// The shared HTTP client.
    pub http: reqwest::Client,
    /// Base URL without trailing slash (`https://graph.microsoft.com/v1.0`).
    pub base_url: String,
    /// Where tokens come from.
    pub tokens: Arc<dyn TokenProvider>,
}

impl Api {
    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url.trim_end_matches('/'), path)
    }

    /// Calls `method path` with a bearer token and an optional JSON body, through the shared
    /// retry helper. Statuses in `ok` (besides 2xx) are answers, not errors.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        ok: &[u16],
    ) -> Result<super::http::Answer, CloudError> {
        self.send(method, &self.url(path), body, ok, None).await
    }

    /// Calls `method url` (an absolute URL: a `@odata.nextLink`) with a bearer token and an
    /// optional JSON body, every attempt within `pace` when given.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        ok: &[u16],
        pace: Option<super::http::Pace<'_>>,
    ) -> Result<super::http::Answer, CloudError> {
        let token = self.tokens.token().await?;
        let body = body.map(|b| b.to_string());
        let build = || {
            let mut req = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose());
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.clone());
            }
            req
        };
        let policy = super::retry::RetryPolicy::default();
        match pace {
            Some(p) => super::http::send_paced(&policy, p, method.as_str(), url, ok, build).await,
            None => super::http::send(&policy, method.as_str(), url, ok, build).await,
        }
    }
}

/// Google: the Admin SDK (Directory, Reports), IAM and Cloud Logging have different hosts.
/// The Admin SDK acts as a Workspace admin (domain-wide delegation); IAM and Logging as the
/// service account itself.
#[derive(Clone)]
pub struct GoogleApi {
    /// Admin SDK (`https://admin.googleapis.com`), tokens for `subject`.
    pub admin: Api,
    /// IAM (`https://iam.googleapis.com`).
    pub iam: Api,
    /// Cloud Logging (`https://logging.googleapis.com`).
    pub logging: Api,
    /// The Workspace admin the Admin SDK tokens act as.
    pub subject: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_escapes_reserved_characters() {
        assert_eq!(urlencode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(urlencode("alice@corp.example"), "alice%40corp.example");
    }
}
