//! Assembly: components built from a [`Config`]. The CLI and the Lambda start-up call these;
//! nothing else decides how a pipeline is put together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::alert::Router;
use crate::clock::Clock;
use crate::config::Config;
use crate::detect::Detector;
use crate::detect::sigma::SigmaDetector;
use crate::enrich::Enricher;
use crate::pipeline::Pipeline;
use crate::state::{MemoryStore, SqliteStore, StateStore};

/// Why a pipeline could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A component could not be built from its config.
    #[error("{component}: {message}")]
    Build {
        /// Which component.
        component: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// The state a replay uses: fresh memory, or the SQLite file given with `--state`.
pub fn replay_state(path: Option<&Path>) -> Result<Arc<dyn StateStore>, AppError> {
    match path {
        None => Ok(Arc::new(MemoryStore::new())),
        Some(p) => Ok(Arc::new(SqliteStore::open(p).map_err(|e| {
            AppError::Build {
                component: "state",
                message: e.to_string(),
            }
        })?)),
    }
}

/// The state store of a config's `[state]`; DynamoDB uses the AWS settings in `clients`.
pub fn state(
    config: &Config,
    clients: &crate::cloud::Clients,
) -> Result<Arc<dyn StateStore>, AppError> {
    config
        .raw
        .state
        .build(clients)
        .map_err(|e| AppError::Build {
            component: "state",
            message: e.to_string(),
        })
}

/// The notifiers of a config's `[[notify]]`; none configured means findings on stdout.
pub fn router(
    config: &Config,
    clients: &crate::cloud::Clients,
    state: &Arc<dyn StateStore>,
) -> Result<Router, AppError> {
    if config.raw.notify.is_empty() {
        return Ok(Router::new(vec![(
            crate::model::Severity::Informational,
            Box::new(crate::alert::stdout::Stdout::new(
                crate::alert::Format::Table,
            )),
        )]));
    }
    Router::from_config(&config.raw.notify, clients, Some(state)).map_err(|e| AppError::Build {
        component: "notify",
        message: e.to_string(),
    })
}

/// The sources of a config's `[[sources]]`, over the shared clients, keeping their cursors in
/// `state`.
pub fn sources(
    config: &Config,
    clients: &crate::cloud::Clients,
    state: &Arc<dyn StateStore>,
) -> Result<Vec<Box<dyn crate::source::Source>>, AppError> {
    config
        .raw
        .sources
        .iter()
        .map(|s| {
            s.build(state.clone(), clients)
                .map_err(|e| AppError::Build {
                    component: "sources",
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Builds the enricher of a config.
pub fn enricher(config: &Config) -> Result<Enricher, AppError> {
    let raw = &config.raw;
    Enricher::from_config(&raw.geoip, &raw.networks, &raw.identities).map_err(|e| AppError::Build {
        component: "enrich",
        message: e.to_string(),
    })
}

/// Builds every detector a config enables: the Sigma rules (shipped pack, `[detect.rules]
/// paths`, then `extra_rules`) first, so that the identity detectors see their findings, then
/// the built-in identity detectors. Rules that do not load are logged with their reasons
/// (`picket rules lint` lists them); the others run.
pub fn detectors(
    config: &Config,
    extra_rules: &[PathBuf],
) -> Result<Vec<Box<dyn Detector>>, AppError> {
    let rules = &config.raw.detect.rules;
    let mut paths = rules.paths.clone();
    paths.extend(extra_rules.iter().cloned());
    let (set, rejected) = crate::detect::pack::load(rules.builtin, &paths);
    for r in &rejected {
        tracing::warn!(rule = %r.path.display(), reason = %r.reason, "rule not loaded");
    }
    let mut out: Vec<Box<dyn Detector>> = vec![Box::new(SigmaDetector::new(set))];
    out.extend(
        crate::detect::builtin::identity_detectors(&config.raw.detect).map_err(|errors| {
            AppError::Build {
                component: "detect",
                message: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })?,
    );
    Ok(out)
}

/// Assembles the whole pipeline.
pub fn pipeline(
    config: &Config,
    extra_rules: &[PathBuf],
    state: Arc<dyn StateStore>,
    router: Router,
    clock: Arc<Clock>,
) -> Result<Pipeline, AppError> {
    Ok(Pipeline::new(
        Arc::new(enricher(config)?),
        detectors(config, extra_rules)?,
        state,
        router,
        clock,
    ))
}

/// Builds the clients a config needs, once: the HTTP client always, the AWS `SdkConfig` when
/// the `aws` feature is on, Graph and Google when their sections name a credential.
pub async fn clients(config: &Config) -> Result<crate::cloud::Clients, AppError> {
    #[cfg(feature = "aws")]
    {
        let sdk = crate::cloud::aws::sdk_config(&config.raw.aws, None).await;
        clients_with_aws(config, sdk).await
    }
    #[cfg(not(feature = "aws"))]
    build_clients(config).await
}

/// [`clients`] over an AWS `SdkConfig` built already (the Lambda start-up needs it before
/// the others, to fetch secrets).
#[cfg(feature = "aws")]
pub async fn clients_with_aws(
    config: &Config,
    sdk: aws_config::SdkConfig,
) -> Result<crate::cloud::Clients, AppError> {
    build_clients(config, sdk).await
}

async fn build_clients(
    config: &Config,
    #[cfg(feature = "aws")] sdk: aws_config::SdkConfig,
) -> Result<crate::cloud::Clients, AppError> {
    let build = |component: &'static str, message: String| AppError::Build { component, message };
    let http = crate::cloud::http::client(crate::cloud::http::DEFAULT_TIMEOUT)
        .map_err(|e| build("http", e.to_string()))?;
    #[cfg(not(any(feature = "azure", feature = "gcp")))]
    let _ = config;
    #[allow(unused_mut)] // no cloud feature: nothing to add
    let mut clients = crate::cloud::Clients {
        http: Some(http.clone()),
        ..Default::default()
    };
    #[cfg(feature = "aws")]
    {
        clients.aws = Some(sdk);
    }
    #[cfg(feature = "azure")]
    if let Some(entra) = entra(config, &clients, &http)? {
        if entra.tenant_id.is_some() {
            clients.graph = Some(
                entra
                    .graph(None, None, None, "v1.0")
                    .map_err(|e| build("azure", e.to_string()))?,
            );
        }
        clients.entra = Some(Arc::new(entra));
    }
    #[cfg(feature = "gcp")]
    if google_wanted(config) {
        let api =
            crate::cloud::gcp::api(&config.raw.google, &http).map_err(|e| AppError::Build {
                component: e.key,
                message: e.message,
            })?;
        clients.google = Some(api);
    }
    Ok(clients)
}

/// Whether a config uses Google: a `[google]` section, a Google source, or a Google response
/// action in a playbook (Application Default Credentials need no section at all).
#[cfg(feature = "gcp")]
fn google_wanted(config: &Config) -> bool {
    use crate::source::SourceConfig;
    let raw = &config.raw;
    raw.google != crate::config::GoogleSection::default()
        || raw.sources.iter().any(|s| {
            matches!(
                s,
                SourceConfig::GoogleReports(_) | SourceConfig::GcpLogging(_)
            )
        })
        || raw
            .respond
            .playbook
            .iter()
            .flat_map(|p| &p.actions)
            .any(|a| {
                crate::respond::ActionKind::parse(a).is_some_and(|k| {
                    matches!(
                        k.provider(),
                        crate::model::Provider::GoogleWorkspace | crate::model::Provider::Gcp
                    )
                })
            })
}

/// The Entra app of `[azure]`, when it names a client id.
#[cfg(feature = "azure")]
fn entra(
    config: &Config,
    clients: &crate::cloud::Clients,
    http: &reqwest::Client,
) -> Result<Option<crate::cloud::azure::Entra>, AppError> {
    use crate::cloud::azure::{Credential, Entra};
    let build = |component: &'static str, message: String| AppError::Build { component, message };
    let az = &config.raw.azure;
    // Managed identity needs no client id (system-assigned); one names a user-assigned identity.
    let client_id = match (&az.client_id, az.credential.as_deref()) {
        (Some(id), _) => id.clone(),
        (None, Some("managed_identity")) => String::new(),
        (None, _) => return Ok(None),
    };
    let credential = match (az.credential.as_deref(), &az.client_secret) {
        (None | Some("client_secret"), Some(secret)) => Credential::Secret(
            secret
                .resolve()
                .map_err(|e| build("azure.client_secret", e.to_string()))?,
        ),
        (Some("workload_identity"), _) => {
            match std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").filter(|p| !p.is_empty()) {
                Some(path) => Credential::TokenFile(path.into()),
                #[cfg(feature = "aws")]
                None => match clients.aws.as_ref() {
                    Some(sdk) => Credential::Assertion(Arc::new(
                        crate::cloud::aws::AwsWebIdentityToken::new(
                            sdk,
                            crate::cloud::aws::ENTRA_AUDIENCE,
                        ),
                    )),
                    None => return Ok(None),
                },
                #[cfg(not(feature = "aws"))]
                None => {
                    return Err(build(
                        "azure.credential",
                        "workload_identity needs AZURE_FEDERATED_TOKEN_FILE or the `aws` \
                         feature (AWS STS web-identity tokens)"
                            .into(),
                    ));
                }
            }
        }
        (Some("managed_identity"), _) => Credential::ManagedIdentity,
        (Some("client_certificate"), _) => {
            return Err(build(
                "azure.credential",
                "client_certificate is not supported: azure_identity signs certificate \
                 assertions with OpenSSL, which picket does not link; use workload_identity \
                 (no secret at all), managed_identity or client_secret"
                    .into(),
            ));
        }
        (None, None) => return Ok(None),
        (Some("client_secret"), None) => {
            return Err(build(
                "azure.client_secret",
                "credential = \"client_secret\" needs client_secret = \"env:VAR\"".into(),
            ));
        }
        (Some(other), _) => {
            return Err(build(
                "azure.credential",
                format!(
                    "unknown credential `{other}` (client_secret, workload_identity, \
                     managed_identity)"
                ),
            ));
        }
    };
    let _ = clients;
    Ok(Some(Entra::new(
        http.clone(),
        client_id,
        credential,
        az.tenant_id.clone(),
        az.authority_host.clone(),
        az.graph_base_url.clone(),
    )))
}

/// Builds the Responder of a config. `force_dry_run` (CLI `--dry-run`) only makes it safer.
pub fn responder(
    config: &Config,
    clients: &crate::cloud::Clients,
    state: Arc<dyn StateStore>,
    force_dry_run: bool,
) -> Result<crate::respond::Responder, AppError> {
    crate::respond::Responder::new(
        &config.raw.respond,
        &config.raw.identities,
        clients,
        state,
        Arc::new(Clock::System),
        force_dry_run,
    )
    .map_err(|e| AppError::Build {
        component: "respond",
        message: e.to_string(),
    })
}
