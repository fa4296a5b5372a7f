//! The smallest faithful AWS Lambda Runtime API (the documented `2018-06-01` endpoints a
//! custom runtime calls), in process on 127.0.0.1, and a function process running against it:
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: long-polls for the next invocation; answers
//!   its payload with `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`;
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the result (202);
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: an error, with its
//!   `Lambda-Runtime-Function-Error-Type` (202);
//! - `POST /2018-06-01/runtime/init/error`: the function could not start (202).
//!
//! An unknown request id answers 400, as Lambda does. The harness plays Lambda's part:
//! [`RuntimeApi::invoke`] queues a payload and waits for its outcome.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

/// What an invocation (or the init phase) ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`: the function's result.
    Response(Value),
    /// `/error` or `/init/error`: the error type header and the error document.
    Error {
        /// `Lambda-Runtime-Function-Error-Type`.
        error_type: String,
        /// `{"errorMessage": .., "errorType": ..}`.
        body: Value,
    },
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, Value)>>,
    queued: tokio::sync::Notify,
    outcomes: Mutex<HashMap<String, Outcome>>,
    in_flight: Mutex<Vec<String>>,
    done: tokio::sync::Notify,
    init_error: Mutex<Option<Outcome>>,
    next_id: Mutex<u64>,
}

/// A running Runtime API.
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`: the value of `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:picket-test";

impl RuntimeApi {
    /// Starts the API on a free loopback port, in the current runtime.
    pub async fn start() -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi { addr, shared, task }
    }

    /// Invokes the function with `payload` and waits (at most `timeout`) for its outcome.
    pub async fn invoke_within(&self, payload: Value, timeout: Duration) -> Outcome {
        let id = {
            let mut n = self.shared.next_id.lock().unwrap();
            *n += 1;
            format!("00000000-0000-4000-8000-{:012}", *n)
        };
        self.shared
            .queue
            .lock()
            .unwrap()
            .push_back((id.clone(), payload));
        self.shared.queued.notify_waiters();
        self.shared.queued.notify_one();
        let wait = async {
            loop {
                let done = self.shared.done.notified();
                if let Some(o) = self.shared.outcomes.lock().unwrap().remove(&id) {
                    return o;
                }
                if let Some(o) = self.shared.init_error.lock().unwrap().clone() {
                    return o;
                }
                done.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_else(|_| panic!("invocation {id} got no outcome within {timeout:?}"))
    }

    /// Invokes the function and waits up to two minutes.
    pub async fn invoke(&self, payload: Value) -> Outcome {
        self.invoke_within(payload, Duration::from_secs(120)).await
    }

    /// Waits (at most `timeout`) for an init error.
    pub async fn init_error(&self, timeout: Duration) -> Option<Outcome> {
        let wait = async {
            loop {
                let done = self.shared.done.notified();
                if let Some(o) = self.shared.init_error.lock().unwrap().clone() {
                    return o;
                }
                done.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    loop {
        let queued = s.queued.notified();
        let item = s.queue.lock().unwrap().pop_front();
        if let Some((id, payload)) = item {
            s.in_flight.lock().unwrap().push(id.clone());
            let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
            let mut resp = (StatusCode::OK, payload.to_string()).into_response();
            let h = resp.headers_mut();
            h.insert("content-type", "application/json".parse().unwrap());
            h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            h.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                FUNCTION_ARN.parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                    .parse()
                    .unwrap(),
            );
            return resp;
        }
        queued.await;
    }
}

fn finish(s: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let mut in_flight = s.in_flight.lock().unwrap();
    let Some(i) = in_flight.iter().position(|x| x == id) else {
        return StatusCode::BAD_REQUEST;
    };
    in_flight.remove(i);
    s.outcomes.lock().unwrap().insert(id.to_string(), outcome);
    s.done.notify_waiters();
    StatusCode::ACCEPTED
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&s, &id, Outcome::Response(v))
}

fn error_outcome(headers: &HeaderMap, body: &Bytes) -> Outcome {
    Outcome::Error {
        error_type: headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    }
}

async fn error(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    finish(&s, &id, error_outcome(&headers, &body))
}

async fn init_error(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *s.init_error.lock().unwrap() = Some(error_outcome(&headers, &body));
    s.done.notify_waiters();
    StatusCode::ACCEPTED
}

/// A `picket-lambda` process serving the Runtime API; killed on drop.
pub struct FunctionProcess {
    child: Child,
    /// Every line it wrote (JSON logs and metric lines).
    pub output: Arc<Mutex<Vec<String>>>,
}

impl FunctionProcess {
    /// Starts the built `picket-lambda` (`binary`) for `handler` with `env` added to a
    /// Lambda-like environment (function name, memory, version, Runtime API address).
    pub fn start(
        binary: &str,
        api: &RuntimeApi,
        handler: &str,
        env: &[(&str, String)],
    ) -> FunctionProcess {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
            .env("_HANDLER", handler)
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("picket-{handler}"))
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/picket-{handler}"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PICKET_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start picket-lambda");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        FunctionProcess { child, output }
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// The JSON log lines whose `message` is `message`.
    pub fn logs(&self, message: &str) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("message").and_then(Value::as_str) == Some(message))
            .collect()
    }

    /// The first JSON log line whose `message` is `message`, waiting (at most `timeout`) for
    /// the reader thread to see it.
    pub fn wait_log(&self, message: &str, timeout: Duration) -> Value {
        let start = std::time::Instant::now();
        loop {
            if let Some(v) = self.logs(message).into_iter().next() {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "no log `{message}`: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `timeout`) for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
