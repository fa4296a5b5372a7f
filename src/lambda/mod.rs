//! The serverless form (feature `lambda`): one binary, `picket-lambda`, serves the three
//! Lambda functions of `terraform/modules/picket`, chosen by the function's handler setting
//! (`$_HANDLER`):
//!
//! ```text
//!  EventBridge schedule ─► poll ───────────────┐  every [[sources]] once, cursors committed
//!  SQS: S3 notifications of CloudTrail objects,├─► respond queue ─► respond ─► Responder, [[notify]]
//!  EventBridge CloudTrail events ─► ingest ────┘   (findings)       (the only writer)
//! ```
//!
//! - [`poll`]: runs [`crate::run::Runner`] once, as `picket run --once` does.
//! - [`ingest`]: an SQS batch of S3 notifications (CloudTrail log objects) and EventBridge
//!   CloudTrail events, or one such event invoked directly; each message is its own pipeline
//!   batch, and a failed message is reported in `batchItemFailures` so only it is redelivered.
//! - [`respond`]: an SQS batch of findings, each through the one Responder (playbooks,
//!   guardrails, ledger) and then the configured notifiers, so every alert says what picket
//!   did.
//!
//! With `PICKET_RESPOND_QUEUE_URL` set, poll and ingest hand every new finding to that queue
//! (the `sqs` notifier, delivery required: a finding that could not be queued fails its
//! message); without it they respond and notify themselves, as `picket run` does.
//!
//! Everything else is the CLI's code: the configuration (`picket.toml` in the package, else
//! the embedded defaults) with the deployment's names from the environment ([`LambdaEnv`]),
//! the pipeline, the rules and the state store (DynamoDB). Secrets: for every
//! `<VAR>_SECRET_ARN` in the environment the secret is fetched from Secrets Manager once per
//! container and answers `env:<VAR>` references. Errors say whether a retry helps
//! ([`LambdaError::is_retryable`], and the error type reported to Lambda).
//!
//! To add a handler: a variant in [`Handler`], a file with its state and `invoke`, and its
//! arm in [`Function::init`] and [`Function::invoke`].

pub mod ingest;
pub mod metrics;
pub mod poll;
pub mod respond;
pub mod secrets;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::alert::{NotifyConfig, Router};
use crate::app::{self, AppError};
use crate::clock::Clock;
use crate::cloud::Clients;
use crate::config::{Config, ConfigError, RespondMode};
use crate::model::Severity;
use crate::pipeline::{Pipeline, PipelineError};
use crate::run::RunError;
use crate::state::{StateConfig, StateError, StateStore};

/// Which function this process serves: the function's handler setting (`$_HANDLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// Scheduled polling of every configured source.
    Poll,
    /// CloudTrail objects and events from SQS / EventBridge.
    Ingest,
    /// Findings from the respond queue: actions under the guardrails, then alerts.
    Respond,
}

impl Handler {
    /// Every handler, for contract tests (the Terraform module names each).
    pub const ALL: &'static [Handler] = &[Handler::Poll, Handler::Ingest, Handler::Respond];

    /// The handler setting's value.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Poll => "poll",
            Handler::Ingest => "ingest",
            Handler::Respond => "respond",
        }
    }

    /// The handler named `s`.
    pub fn parse(s: &str) -> Option<Handler> {
        Handler::ALL.iter().copied().find(|h| h.name() == s)
    }
}

/// Why a function could not start or an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The configuration or the environment is wrong: no retry helps until it is fixed.
    #[error("configuration: {0}")]
    Config(String),
    /// A component could not be built.
    #[error(transparent)]
    App(#[from] AppError),
    /// The state store failed.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// A batch failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The poll loop failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The invocation's payload is not an event this handler takes.
    #[error("event: {0}")]
    Event(String),
    /// A message's input could not be read.
    #[error("{message}")]
    Input {
        /// What failed.
        message: String,
        /// Whether a later attempt may succeed (throttling, network) or the input is poison.
        retryable: bool,
    },
    /// Sources failed this interval (they were counted, and reported when unhealthy).
    #[error("sources failed: {}", .0.join(", "))]
    Sources(Vec<String>),
}

impl LambdaError {
    /// Whether a retry may help: throttling, the network, a state store hiccup; never a wrong
    /// configuration or a poisoned message.
    pub fn is_retryable(&self) -> bool {
        match self {
            LambdaError::Config(_) | LambdaError::App(_) | LambdaError::Event(_) => false,
            LambdaError::State(e) => e.is_retryable(),
            LambdaError::Pipeline(e) => e.is_retryable(),
            LambdaError::Run(e) => e.is_retryable(),
            LambdaError::Input { retryable, .. } => *retryable,
            LambdaError::Sources(_) => true,
        }
    }

    /// The error type reported to Lambda: `Retryable.<kind>` or `Permanent.<kind>`.
    pub fn error_type(&self) -> String {
        let kind = match self {
            LambdaError::Config(_) => "Config",
            LambdaError::App(_) => "Build",
            LambdaError::State(_) => "State",
            LambdaError::Pipeline(_) => "Pipeline",
            LambdaError::Run(_) => "Run",
            LambdaError::Event(_) => "Event",
            LambdaError::Input { .. } => "Input",
            LambdaError::Sources(_) => "Sources",
        };
        let retry = if self.is_retryable() {
            "Retryable"
        } else {
            "Permanent"
        };
        format!("{retry}.{kind}")
    }
}

impl From<LambdaError> for lambda_runtime::Diagnostic {
    fn from(e: LambdaError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type(),
            error_message: e.to_string(),
        }
    }
}

fn config_errors(errors: &[ConfigError]) -> LambdaError {
    LambdaError::Config(
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// What the deployment says through the environment. `terraform/modules/picket` sets these
/// (its README lists them); names only, never secret values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LambdaEnv {
    /// `_HANDLER`: `poll`, `ingest` or `respond`.
    pub handler: String,
    /// `PICKET_CONFIG`: the config file; default `picket.toml` in the package, else the
    /// embedded defaults.
    pub config: Option<PathBuf>,
    /// `LAMBDA_TASK_ROOT`: where Lambda unpacked the package (`/var/task`).
    pub task_root: PathBuf,
    /// `PICKET_STATE_BACKEND`: `dynamodb` (the only backend that outlives a container).
    pub state_backend: Option<String>,
    /// `PICKET_TABLE`: the DynamoDB state table.
    pub table: Option<String>,
    /// `PICKET_RESPOND_QUEUE_URL`: where poll and ingest hand their findings.
    pub respond_queue_url: Option<String>,
    /// `PICKET_RESPOND_MODE`: `dry-run` or `enforce`; replaces `[respond] mode`.
    pub respond_mode: Option<String>,
    /// `PICKET_SES_FROM`: the verified SES sender; replaces `from` of `ses = true` email.
    pub ses_from: Option<String>,
    /// `PICKET_METRICS_NAMESPACE`: CloudWatch namespace of the embedded-format metrics.
    pub metrics_namespace: Option<String>,
    /// Every `<VAR>_SECRET_ARN`: (`VAR`, secret ARN or name), sorted.
    pub secrets: Vec<(String, String)>,
}

/// The suffix of variables that name a Secrets Manager secret for `env:<VAR>`.
pub const SECRET_ARN_SUFFIX: &str = "_SECRET_ARN";

impl LambdaEnv {
    /// The `PICKET_*` variables read (besides `<VAR>_SECRET_ARN`).
    pub const VARIABLES: &'static [&'static str] = &[
        "PICKET_CONFIG",
        "PICKET_STATE_BACKEND",
        "PICKET_TABLE",
        "PICKET_RESPOND_QUEUE_URL",
        "PICKET_RESPOND_MODE",
        "PICKET_SES_FROM",
        "PICKET_METRICS_NAMESPACE",
    ];

    /// Reads the process environment.
    pub fn from_env() -> LambdaEnv {
        LambdaEnv::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> LambdaEnv {
        let mut env = LambdaEnv {
            task_root: PathBuf::from("."),
            ..LambdaEnv::default()
        };
        let some = |v: String| Some(v).filter(|v| !v.trim().is_empty());
        for (k, v) in vars {
            match k.as_str() {
                "_HANDLER" => env.handler = v,
                "PICKET_CONFIG" => env.config = some(v).map(PathBuf::from),
                "LAMBDA_TASK_ROOT" => env.task_root = PathBuf::from(v),
                "PICKET_STATE_BACKEND" => env.state_backend = some(v),
                "PICKET_TABLE" => env.table = some(v),
                "PICKET_RESPOND_QUEUE_URL" => env.respond_queue_url = some(v),
                "PICKET_RESPOND_MODE" => env.respond_mode = some(v),
                "PICKET_SES_FROM" => env.ses_from = some(v),
                "PICKET_METRICS_NAMESPACE" => env.metrics_namespace = some(v),
                _ => {
                    if let Some(var) = k.strip_suffix(SECRET_ARN_SUFFIX)
                        && !var.is_empty()
                        && !v.trim().is_empty()
                    {
                        env.secrets.push((var.to_string(), v));
                    }
                }
            }
        }
        env.secrets.sort();
        env
    }

    /// The configuration: the packaged file (or the embedded defaults) with the deployment's
    /// names applied. In Lambda the state must outlive the container: SQLite is refused.
    pub fn config(&self) -> Result<Config, LambdaError> {
        let packaged = self.task_root.join("picket.toml");
        let mut config = match &self.config {
            Some(path) => Config::load(path),
            None if packaged.is_file() => Config::load(&packaged),
            None => Config::embedded(&self.task_root),
        }
        .map_err(|e| config_errors(&e))?;
        let raw = &mut config.raw;
        match (self.state_backend.as_deref(), &self.table) {
            (None, None) => {}
            (Some("dynamodb") | None, Some(table)) => {
                let endpoint_url = match &raw.state {
                    StateConfig::Dynamodb { endpoint_url, .. } => endpoint_url.clone(),
                    _ => None,
                };
                raw.state = StateConfig::Dynamodb {
                    table: table.clone(),
                    endpoint_url,
                };
            }
            (Some("dynamodb"), None) => {
                return Err(LambdaError::Config(
                    "PICKET_STATE_BACKEND=dynamodb needs PICKET_TABLE".into(),
                ));
            }
            (Some(other), _) => {
                return Err(LambdaError::Config(format!(
                    "PICKET_STATE_BACKEND=`{other}`: in Lambda only `dynamodb` keeps state"
                )));
            }
        }
        if matches!(raw.state, StateConfig::Sqlite { .. }) {
            return Err(LambdaError::Config(
                "the state is SQLite, which a Lambda container loses: set PICKET_STATE_BACKEND=dynamodb \
                 and PICKET_TABLE (terraform/modules/picket does), or [state] backend = \"dynamodb\""
                    .into(),
            ));
        }
        if let Some(mode) = &self.respond_mode {
            raw.respond.mode = match mode.as_str() {
                "dry-run" => RespondMode::DryRun,
                "enforce" => RespondMode::Enforce,
                other => {
                    return Err(LambdaError::Config(format!(
                        "PICKET_RESPOND_MODE=`{other}`: expected dry-run or enforce"
                    )));
                }
            };
        }
        if let Some(from) = &self.ses_from {
            for n in &mut raw.notify {
                if let NotifyConfig::Email {
                    ses: true, from: f, ..
                } = n
                {
                    *f = from.clone();
                }
            }
        }
        Ok(config)
    }
}

/// A started function: its handler's state, built once per container.
pub struct Function {
    inner: Inner,
    started: Instant,
    invocations: u64,
}

enum Inner {
    Poll(poll::Poll),
    Ingest(ingest::Ingest),
    Respond(respond::Respond),
}

impl Function {
    /// Builds everything a handler needs, once per container: config, clients (secrets
    /// fetched), state store, pipeline. `started` is when the process started (for the
    /// cold-start figures in the logs).
    pub async fn init(env: &LambdaEnv, started: Instant) -> Result<Function, LambdaError> {
        let handler = Handler::parse(&env.handler).ok_or_else(|| {
            LambdaError::Config(format!(
                "handler `{}` is not one of poll, ingest, respond (the function's handler setting, $_HANDLER)",
                env.handler
            ))
        })?;
        let config = env.config()?;
        let sdk = crate::cloud::aws::sdk_config(&config.raw.aws, None).await;
        if !env.secrets.is_empty() {
            let values = secrets::fetch(&sdk, &env.secrets).await;
            crate::config::secret::provide(values);
        }
        let clients = app::clients_with_aws(&config, sdk).await?;
        let state = app::state(&config, &clients)?;
        let inner = match handler {
            Handler::Poll => Inner::Poll(poll::Poll::new(
                detecting_pipeline(&config, &clients, &state, env)?,
                app::sources(&config, &clients, &state)?,
                env.metrics_namespace.clone(),
            )?),
            Handler::Ingest => Inner::Ingest(ingest::Ingest::new(
                detecting_pipeline(&config, &clients, &state, env)?,
                &clients,
                env.metrics_namespace.clone(),
            )?),
            Handler::Respond => Inner::Respond(respond::Respond::new(&config, &clients, &state)?),
        };
        tracing::info!(
            handler = handler.name(),
            init_ms = started.elapsed().as_millis() as u64,
            state = state_name(&config.raw.state),
            respond_queue = env.respond_queue_url.is_some(),
            secrets = env.secrets.len(),
            "picket-lambda ready"
        );
        Ok(Function {
            inner,
            started,
            invocations: 0,
        })
    }

    /// Handles one invocation's payload.
    pub async fn invoke(&mut self, payload: Value) -> Result<Value, LambdaError> {
        let t = Instant::now();
        let out = match &mut self.inner {
            Inner::Poll(p) => p.invoke(payload).await,
            Inner::Ingest(i) => i.invoke(payload).await,
            Inner::Respond(r) => r.invoke(payload).await,
        };
        self.invocations += 1;
        let peak_rss_kb = peak_rss_kb();
        if self.invocations == 1 {
            // The cold-start share picket controls: process start to first invocation done.
            tracing::info!(
                since_start_ms = self.started.elapsed().as_millis() as u64,
                duration_ms = t.elapsed().as_millis() as u64,
                peak_rss_kb,
                "first invocation done"
            );
        } else {
            tracing::info!(
                duration_ms = t.elapsed().as_millis() as u64,
                peak_rss_kb,
                "invocation done"
            );
        }
        if let Err(e) = &out {
            tracing::error!(error = %e, retryable = e.is_retryable(), "invocation failed");
        }
        out
    }
}

fn state_name(s: &StateConfig) -> &'static str {
    match s {
        StateConfig::Sqlite { .. } => "sqlite",
        StateConfig::Memory {} => "memory",
        StateConfig::Dynamodb { .. } => "dynamodb",
    }
}

/// The pipeline of poll and ingest: handing findings to the respond queue when there is one
/// (delivery required), else the whole chain here, as `picket run` does.
fn detecting_pipeline(
    config: &Config,
    clients: &Clients,
    state: &Arc<dyn StateStore>,
    env: &LambdaEnv,
) -> Result<Pipeline, LambdaError> {
    let clock = Arc::new(Clock::System);
    Ok(match &env.respond_queue_url {
        Some(url) => {
            let queue = NotifyConfig::Sqs {
                queue_url: url.clone(),
                min_severity: Severity::Informational,
            };
            let router = Router::from_config(&[queue], clients, None).map_err(|e| {
                LambdaError::App(AppError::Build {
                    component: "notify",
                    message: e.to_string(),
                })
            })?;
            app::pipeline(config, &[], state.clone(), router, clock)?.require_delivery(true)
        }
        None => {
            let router = app::router(config, clients, state)?;
            let responder = app::responder(config, clients, state.clone(), false)?;
            app::pipeline(config, &[], state.clone(), router, clock)?.with_responder(responder)
        }
    })
}

/// Peak resident memory of this process (`VmHWM`), in kB (Linux).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Tells the Runtime API that the function could not start (`POST /runtime/init/error`), so
/// Lambda reports the reason instead of a bare exit. `api` is `$AWS_LAMBDA_RUNTIME_API`.
pub async fn report_init_error(api: &str, e: &LambdaError) {
    let body = serde_json::json!({
        "errorMessage": e.to_string(),
        "errorType": e.error_type(),
    });
    let client = match crate::cloud::http::client(crate::cloud::http::DEFAULT_TIMEOUT) {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(error = %err, "cannot report the init error");
            return;
        }
    };
    let sent = client
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", e.error_type())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    if let Err(err) = sent {
        tracing::error!(error = %err, "cannot report the init error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> LambdaEnv {
        LambdaEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_environment_names_the_deployment() {
        let e = env(&[
            ("_HANDLER", "ingest"),
            ("PICKET_TABLE", "picket-state"),
            ("PICKET_STATE_BACKEND", "dynamodb"),
            ("PICKET_RESPOND_MODE", "enforce"),
            (
                "PICKET_SLACK_WEBHOOK_URL_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:picket/slack-webhook-url",
            ),
            (
                "PICKET_SMTP_PASSWORD_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:picket/smtp-password",
            ),
            ("_SECRET_ARN", "ignored"),
            ("LAMBDA_TASK_ROOT", "/nonexistent-task-root"),
        ]);
        assert_eq!(Handler::parse(&e.handler), Some(Handler::Ingest));
        let vars: Vec<_> = e.secrets.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(vars, ["PICKET_SLACK_WEBHOOK_URL", "PICKET_SMTP_PASSWORD"]);
        let c = e.config().unwrap();
        assert_eq!(
            c.raw.state,
            StateConfig::Dynamodb {
                table: "picket-state".into(),
                endpoint_url: None
            }
        );
        assert_eq!(c.raw.respond.mode, RespondMode::Enforce);
    }

    #[test]
    fn sqlite_state_and_unknown_values_are_refused_with_the_variable_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("picket.toml"),
            "[state]\nbackend = \"sqlite\"\n",
        )
        .unwrap();
        let root = dir.path().to_str().unwrap();
        let e = env(&[("LAMBDA_TASK_ROOT", root)]).config().unwrap_err();
        assert!(
            e.to_string().contains("PICKET_STATE_BACKEND=dynamodb"),
            "{e}"
        );
        assert!(!e.is_retryable());
        let e = env(&[("PICKET_TABLE", "t-1"), ("PICKET_RESPOND_MODE", "yolo")])
            .config()
            .unwrap_err();
        assert!(e.to_string().contains("PICKET_RESPOND_MODE"), "{e}");
        assert_eq!(e.error_type(), "Permanent.Config");
    }

    /// Every variable the Terraform module gives the functions is one they read, and the
    /// secrets it names answer the references the README's config uses.
    #[test]
    fn the_terraform_environment_is_what_the_functions_read() {
        let main = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("terraform/modules/picket/main.tf"),
        )
        .unwrap();
        let block = &main[main.find("environment = merge(").unwrap()..];
        let block = &block[..block.find("var.environment").unwrap()];
        let names: Vec<&str> = block
            .lines()
            .filter_map(|l| l.trim().split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| k.starts_with("PICKET_"))
            .collect();
        assert!(names.len() >= 8, "{names:?}");
        let mut secret_vars = Vec::new();
        for n in &names {
            match n.strip_suffix(SECRET_ARN_SUFFIX) {
                Some(var) => secret_vars.push(var),
                None => assert!(LambdaEnv::VARIABLES.contains(n), "{n} is not read"),
            }
        }
        assert_eq!(
            secret_vars,
            [
                "PICKET_SLACK_WEBHOOK_URL",
                "PICKET_SLACK_BOT_TOKEN",
                "PICKET_SMTP_PASSWORD"
            ]
        );
    }

    #[test]
    fn the_packaged_config_loads_with_the_module_environment() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/lambda");
        let c = env(&[
            ("LAMBDA_TASK_ROOT", root.to_str().unwrap()),
            ("PICKET_STATE_BACKEND", "dynamodb"),
            ("PICKET_TABLE", "picket-state"),
            ("PICKET_RESPOND_MODE", "dry-run"),
            ("PICKET_SES_FROM", "picket@security.example"),
        ])
        .config()
        .unwrap();
        assert_eq!(c.file, root.join("picket.toml"));
        assert!(matches!(c.raw.state, StateConfig::Dynamodb { .. }));
    }

    #[test]
    fn handler_names_match_the_terraform_module() {
        let main = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("terraform/modules/picket/main.tf"),
        )
        .unwrap();
        for h in Handler::ALL {
            assert!(
                main.contains(&format!(
                    "handler                        = \"{}\"",
                    h.name()
                )),
                "terraform/modules/picket/main.tf has no function with handler {}",
                h.name()
            );
        }
    }
}
