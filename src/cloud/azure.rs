//! Microsoft Entra app credentials and Graph clients, built once from `[azure]`: one
//! [`Entra`] per process hands out a Graph [`Api`] per tenant (a multi-tenant app reads the
//! sign-in logs of several directories with one registration).

use std::sync::Arc;

use super::CloudError;
use super::token::{Api, ClientCredentials, ClientProof, TokenProvider};
use crate::config::Secret;

/// Entra's public-cloud authority.
pub const AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Microsoft Graph.
pub const GRAPH_BASE_URL: &str = "https://graph.microsoft.com";

/// How the app proves itself to Entra.
pub enum Credential {
    /// A client secret.
    Secret(Secret),
    /// A federated assertion (workload identity federation), fetched for every token request.
    Assertion(Arc<dyn TokenProvider>),
}

/// An Entra app registration: its client id and credential, and the default tenant and hosts.
pub struct Entra {
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
        Entra {
            http,
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
    ) -> Arc<dyn TokenProvider> {
        let authority = authority_host.unwrap_or(&self.authority_host);
        let proof = match &self.credential {
            Credential::Secret(s) => ClientProof::Secret(s.clone()),
            Credential::Assertion(a) => ClientProof::Assertion(a.clone()),
        };
        Arc::new(ClientCredentials::with_proof(
            self.http.clone(),
            format!(
                "{}/{tenant}/oauth2/v2.0/token",
                authority.trim_end_matches('/')
            ),
            self.client_id.clone(),
            proof,
            scope.to_string(),
        ))
    }

    /// Graph (`{root}/{version}`) for `tenant`; `None`s take the app's defaults.
    pub fn graph(
        &self,
        tenant: Option<&str>,
        authority_host: Option<&str>,
        graph_base_url: Option<&str>,
        version: &str,
    ) -> Result<Api, CloudError> {
        let tenant = tenant
            .or(self.tenant_id.as_deref())
            .ok_or_else(|| CloudError::Token {
                audience: "graph",
                message: "no tenant: set [azure] tenant_id or the source's tenant_id".into(),
            })?;
        let root = graph_base_url
            .unwrap_or(&self.graph_base_url)
            .trim_end_matches('/');
        Ok(Api {
            http: self.http.clone(),
            base_url: format!("{root}/{version}"),
            tokens: self.tokens(tenant, authority_host, &graph_scope(root)),
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
