//! moto server and aiosmtpd, started once per test binary from the venv that
//! `infra/emulators/setup.sh` makes, and stopped when the test binary exits: each runs under
//! a `bash` guard that kills it when its stdin (a pipe held by this process) closes.
//! A missing venv FAILS the test with the command to run; it never skips.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The venv the setup script fills.
pub fn venv() -> PathBuf {
    std::env::var_os("PICKET_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/picket/venv")
        })
}

fn venv_bin(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `bash infra/emulators/setup.sh` (installs the pinned moto server and aiosmtpd)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server process that dies with this test binary.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _guard: ChildStdin,
    /// What it printed on stdout so far.
    pub output: Arc<Mutex<String>>,
}

impl Server {
    fn start(what: &str, program: PathBuf, args: &[String], port: u16) -> Server {
        // The guard: run the server in the background, wait for EOF on our stdin, kill it.
        let script = r#"prog="$1"; shift; "$prog" "$@" </dev/null & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null"#;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("guard")
            .arg(&program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let guard = child.stdin.take().expect("piped stdin");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        wait_for_port(port, what);
        Server {
            port,
            child,
            _guard: guard,
            output,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static MOTO: OnceLock<Server> = OnceLock::new();
static MOTO_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static SMTP: OnceLock<Server> = OnceLock::new();

/// Exclusive use of the shared moto server, reset to empty.
pub struct Moto {
    /// Endpoint URL for the SDK.
    pub endpoint: String,
    _lock: tokio::sync::MutexGuard<'static, ()>,
}

/// Starts moto once per binary (first call), then locks it for one test and resets it.
pub async fn moto() -> Moto {
    let lock = MOTO_LOCK.lock().await;
    let server = MOTO.get_or_init(|| {
        let port = free_port();
        // Serial: moto's threaded server lets concurrent conditional writes race (see
        // infra/emulators/moto_serial.py).
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("infra/emulators/moto_serial.py");
        Server::start(
            "moto_server",
            venv_bin("python"),
            &[
                script.display().to_string(),
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            port,
        )
    });
    let endpoint = server.url();
    let resp = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset"))
        .send()
        .await
        .expect("moto reset");
    assert!(resp.status().is_success(), "moto reset: {}", resp.status());
    Moto {
        endpoint,
        _lock: lock,
    }
}

/// The shared aiosmtpd sink (debugging handler: messages are printed to its stdout).
pub fn smtp() -> &'static Server {
    SMTP.get_or_init(|| {
        let port = free_port();
        Server::start(
            "aiosmtpd",
            venv_bin("python"),
            &[
                "-u".into(),
                "-m".into(),
                "aiosmtpd".into(),
                "-n".into(),
                "-l".into(),
                format!("127.0.0.1:{port}"),
            ],
            port,
        )
    })
}

/// The SDK config for moto (static test credentials, us-east-1).
pub async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    let section = picket::config::AwsSection {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.to_string()),
        profile: None,
    };
    picket::cloud::aws::sdk_config(
        &section,
        Some(picket::cloud::aws::static_credentials("testing", "testing")),
    )
    .await
}
