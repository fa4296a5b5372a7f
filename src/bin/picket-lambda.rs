//! `picket-lambda`: the Lambda functions of picket's serverless form (runtime
//! `provided.al2023`, packaged as `bootstrap` by `infra/package-lambda.sh`). One binary serves
//! `poll`, `ingest` and `respond`, chosen by the function's handler setting (`$_HANDLER`); see
//! `picket::lambda`. Logs are JSON lines on stdout (`PICKET_LOG` / `RUST_LOG` filter, else
//! Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{LambdaEvent, service_fn};
use picket::lambda::{Function, LambdaEnv, LambdaError};
use serde_json::Value;

fn main() -> ExitCode {
    let started = Instant::now();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(started))
}

async fn serve(started: Instant) -> ExitCode {
    let env = LambdaEnv::from_env();
    let function = match Function::init(&env, started).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, error_type = %e.error_type(), "function could not start");
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                picket::lambda::report_init_error(&api, &e).await;
            }
            return ExitCode::FAILURE;
        }
    };
    // Lambda sends one invocation at a time to a container: the lock is never contended.
    let function = Arc::new(tokio::sync::Mutex::new(function));
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move {
            let mut f = function.lock().await;
            f.invoke(event.payload).await
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the runtime loop ended");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PICKET_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .or_else(|_| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .map_err(|_| ())
                .and_then(|l| EnvFilter::try_new(l.to_lowercase()).map_err(|_| ()))
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

// The handler's error type must be one Lambda can report.
const _: fn(LambdaError) -> lambda_runtime::Diagnostic = Into::into;
