//! Microsoft Entra app credentials and Graph clients, built once from `[azure]`: one
//! [`Entra`] per process hands out a Graph [`Api`] per tenant (a multi-tenant app reads the
//! sign-in logs of several directories with one registration).
//!
//! Tokens come from `azure_identity` (client secret, client assertion / workload identity
//! federation, managed identity), sent through the one shared reqwest client ([`Transport`]),
//! and reach the rest of the code as a [`TokenProvider`] ([`EntraTokens`]).

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, HttpClient, Method, Request, StatusCode,
    headers::{HeaderName, HeaderValue, Headers},
};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::CloudError;
use super::token::{Api, TokenProvider};
use crate::config::Secret;

/// Entra's public-cloud authority.
pub const AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Microsoft Graph.
pub const GRAPH_BASE_URL: &str = "https://graph.microsoft.com";

/// How the app proves itself to Entra.
pub enum Credential {
    /// A client secret (`ClientSecretCredential`).
    Secret(Secret),
    /// A federated assertion (workload identity federation, e.g. the AWS STS web-identity JWT),
    /// fetched for every token request (`ClientAssertionCredential`).
    Assertion(Arc<dyn TokenProvider>),
    /// A federated token file (`AZURE_FEDERATED_TOKEN_FILE`, `WorkloadIdentityCredential`).
    TokenFile(std::path::PathBuf),
    /// The managed identity of the host (`ManagedIdentityCredential`); the client id, when
    /// given, names a user-assigned identity.
    ManagedIdentity,
}

/// azure_core's transport over the shared reqwest client. `azure_identity` only accepts an
/// `https` authority; a plain-http authority on a loopback host (a local stub) is given to it
/// as `https` and sent back to `http` here, so `[azure] authority_host` is honoured as written.
#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    /// (`https://host:port`, `http://host:port`) origins to send in plain http.
    plain: Vec<(String, String)>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport over `http`.
    pub fn new(http: reqwest::Client) -> Transport {
        Transport {
            http,
            plain: Vec::new(),
        }
    }

    /// Sends requests for `from` (an origin, `https://host:port`) to `to` instead: tests point
    /// fixed endpoints (the IMDS address of managed identity) at a local stub.
    pub fn redirect(mut self, from: &str, to: &str) -> Transport {
        self.plain.push((
            from.trim_end_matches('/').to_string(),
            to.trim_end_matches('/').to_string(),
        ));
        self
    }

    /// The authority `azure_identity` accepts for `authority` (`https`), registering the
    /// plain-http rewrite when `authority` is `http://` on a loopback host.
    fn authority(&mut self, authority: &str) -> Result<String, CloudError> {
        let authority = authority.trim_end_matches('/');
        let Some(rest) = authority.strip_prefix("http://") else {
            return Ok(authority.to_string());
        };
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(token_err(format!(
                "authority_host {authority}: plain http only on a loopback host"
            )));
        }
        let https = format!("https://{rest}");
        if !self.plain.iter().any(|(f, _)| *f == https) {
            self.plain.push((https.clone(), authority.to_string()));
        }
        Ok(https)
    }

    fn options(&self) -> ClientOptions {
        ClientOptions {
            transport: Some(azure_core::http::Transport::new(Arc::new(self.clone()))),
            ..Default::default()
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for Transport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        use azure_core::error::{Error, ErrorKind};
        let mut url = request.url().to_string();
        for (from, to) in &self.plain {
            if let Some(rest) = url.strip_prefix(from.as_str())
                && (rest.is_empty() || rest.starts_with(['/', '?']))
            {
                url = format!("{to}{rest}");
                break;
            }
        }
        let method = match request.method() {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
            other => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    format!("method {other:?} is not supported"),
                ));
            }
        };
        let mut req = self.http.request(method, &url);
        for (name, value) in request.headers().iter() {
            req = req.header(name.as_str(), value.as_str());
        }
        match request.body() {
            Body::Bytes(bytes) => req = req.body(bytes.to_vec()),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streamed request bodies are not supported",
                ));
            }
        }
        let answer = req.send().await.map_err(|e| {
            let kind = if e.is_connect() {
                ErrorKind::Connection
            } else {
                ErrorKind::Io
            };
            Error::with_error(kind, e, "request failed")
        })?;
        let status = StatusCode::from(answer.status().as_u16());
        let mut headers = Headers::new();
        for (k, v) in answer.headers() {
            if let Ok(v) = v.to_str() {
                headers.insert(
                    HeaderName::from(k.as_str().to_owned()),
                    HeaderValue::from(v.to_owned()),
                );
            }
        }
        let body = answer
            .bytes()
            .await
            .map_err(|e| Error::with_error(ErrorKind::Io, e, "reading the answer"))?;
        Ok(AsyncRawResponse::from_bytes(status, headers, body))
    }
}

fn token_err(message: impl Into<String>) -> CloudError {
    CloudError::Token {
        audience: "graph",
        message: message.into(),
    }
}

/// A [`TokenProvider`] over an `azure_identity` credential for one scope (the credential
/// caches and refreshes its tokens).
pub struct EntraTokens {
    credential: Arc<dyn TokenCredential>,
    scope: String,
}

impl EntraTokens {
    /// Tokens for `scope` from `credential`.
    pub fn new(credential: Arc<dyn TokenCredential>, scope: String) -> EntraTokens {
        EntraTokens { credential, scope }
    }
}

#[async_trait::async_trait]
impl TokenProvider for EntraTokens {
    async fn token(&self) -> Result<Secret, CloudError> {
        let t = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| token_err(e.to_string()))?;
        Ok(Secret::new(t.token.secret()))
    }
}

/// A federated assertion from a [`TokenProvider`] (the AWS STS web-identity JWT).
struct Assertion(Arc<dyn TokenProvider>);

impl fmt::Debug for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assertion").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ClientAssertion for Assertion {
    async fn secret(
        &self,
        _options: Option<azure_core::http::ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.0
            .token()
            .await
            .map(|s| s.expose().to_string())
            .map_err(|e| {
                azure_core::error::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    e.to_string(),
                )
            })
    }
}

/// An Entra app registration: its client id and credential, and the default tenant and hosts.
pub struct Entra {
    transport: Transport,
    http: reqwest::Client,
    client_id: String,
    credential: Credential,
    /// Default tenant (`[azure] tenant_id`).
    pub tenant_id: Option<String>,
    /// Default authority host.
    pub authority_host: String,
    /// Default Graph root (without `/v1.0`).
    pub graph_base_url: String,
}

impl Entra {
    /// An app over the shared HTTP client.
    pub fn new(
        http: reqwest::Client,
        client_id: String,
        credential: Credential,
        tenant_id: Option<String>,
        authority_host: Option<String>,
        graph_base_url: Option<String>,
    ) -> Entra {
        Entra::with_transport(
            Transport::new(http),
            client_id,
            credential,
            tenant_id,
            authority_host,
            graph_base_url,
        )
    }

    /// An app whose token requests go through `transport` (tests redirect fixed endpoints).
    pub fn with_transport(
        transport: Transport,
        client_id: String,
        credential: Credential,
        tenant_id: Option<String>,
        authority_host: Option<String>,
        graph_base_url: Option<String>,
    ) -> Entra {
        Entra {
            http: transport.http.clone(),
            transport,
            client_id,
            credential,
            tenant_id,
            authority_host: authority_host.unwrap_or_else(|| AUTHORITY_HOST.into()),
            graph_base_url: graph_base_url.unwrap_or_else(|| GRAPH_BASE_URL.into()),
        }
    }

    /// Tokens for `scope` in `tenant`, from `authority_host` (default: the app's).
    pub fn tokens(
        &self,
        tenant: &str,
        authority_host: Option<&str>,
        scope: &str,
    ) -> Result<Arc<dyn TokenProvider>, CloudError> {
        let mut transport = self.transport.clone();
        let authority = transport.authority(authority_host.unwrap_or(&self.authority_host))?;
        let mut options = transport.options();
        let mut cloud = azure_core::cloud::CustomConfiguration::default();
        cloud.authority_host = authority;
        options.cloud = Some(Arc::new(cloud.into()));
        let fail = |e: azure_core::Error| token_err(e.to_string());
        let credential: Arc<dyn TokenCredential> = match &self.credential {
            Credential::Secret(s) => ClientSecretCredential::new(
                tenant,
                self.client_id.clone(),
                azure_core::credentials::Secret::new(s.expose().to_string()),
                Some(ClientSecretCredentialOptions {
                    client_options: options,
                }),
            )
            .map_err(fail)?,
            Credential::Assertion(a) => ClientAssertionCredential::new(
                tenant.to_string(),
                self.client_id.clone(),
                Assertion(a.clone()),
                Some(ClientAssertionCredentialOptions {
                    client_options: options,
                }),
            )
            .map_err(fail)?,
            Credential::TokenFile(path) => {
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: options,
                    },
                    client_id: Some(self.client_id.clone()),
                    tenant_id: Some(tenant.to_string()),
                    token_file_path: Some(path.clone()),
                }))
                .map_err(fail)?
            }
            Credential::ManagedIdentity => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: (!self.client_id.is_empty())
                        .then(|| UserAssignedId::ClientId(self.client_id.clone())),
                    client_options: options,
                }))
                .map_err(fail)?
            }
        };
        Ok(Arc::new(EntraTokens::new(credential, scope.to_string())))
    }

    /// Graph (`{root}/{version}`) for `tenant`; `None`s take the app's defaults.
    pub fn graph(
        &self,
        tenant: Option<&str>,
        authority_host: Option<&str>,
        graph_base_url: Option<&str>,
        version: &str,
    ) -> Result<Api, CloudError> {
        let tenant = tenant.or(self.tenant_id.as_deref()).ok_or_else(|| {
            token_err("no tenant: set [azure] tenant_id or the source's tenant_id")
        })?;
        let root = graph_base_url
            .unwrap_or(&self.graph_base_url)
            .trim_end_matches('/');
        Ok(Api {
            http: self.http.clone(),
            base_url: format!("{root}/{version}"),
            tokens: self.tokens(tenant, authority_host, &graph_scope(root))?,
        })
    }
}

/// The token scope of a Graph root: the national cloud's Graph resource when the root is one,
/// else global Graph's (a private endpoint or a test server still serves global Graph).
pub fn graph_scope(root: &str) -> String {
    const CLOUDS: [&str; 4] = [
        "https://graph.microsoft.com",
        "https://graph.microsoft.us",
        "https://dod-graph.microsoft.us",
        "https://microsoftgraph.chinacloudapi.cn",
    ];
    let root = root.trim_end_matches('/');
    let resource = CLOUDS
        .iter()
        .find(|c| root.eq_ignore_ascii_case(c))
        .unwrap_or(&CLOUDS[0]);
    format!("{resource}/.default")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_authorities_only_on_loopback() {
        let http = reqwest::Client::new();
        let mut t = Transport::new(http);
        assert_eq!(
            t.authority("http://127.0.0.1:8080/").unwrap(),
            "https://127.0.0.1:8080"
        );
        assert_eq!(
            t.plain,
            vec![(
                "https://127.0.0.1:8080".to_string(),
                "http://127.0.0.1:8080".to_string()
            )]
        );
        assert_eq!(
            t.authority(AUTHORITY_HOST).unwrap(),
            "https://login.microsoftonline.com"
        );
        assert!(t.authority("http://login.example").is_err());
        assert!(t.authority("http://127.0.0.1.evil.example").is_err());
    }
}
