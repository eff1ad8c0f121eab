//! A Lambda Runtime API emulator on loopback, implementing the endpoints a
//! function binary calls (`/2018-06-01/runtime/...`), so the real
//! `bootstrap` binaries run exactly as Lambda runs them: spawned with
//! `AWS_LAMBDA_RUNTIME_API`, handed one invocation at a time, their
//! responses collected. The local stack runs the SQS-triggered functions
//! through it ([`crate::sqs_source`]); the tests run every function so.

use anyhow::{anyhow, bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`: the handler's result.
    Response(Value),
    /// `/error`: a handler error.
    Error(Value),
}

#[derive(Debug)]
struct Shared {
    function_arn: String,
    deadline: Duration,
    pending: Mutex<VecDeque<(String, String)>>,
    pending_ready: Notify,
    results: Mutex<HashMap<String, Outcome>>,
    result_ready: Notify,
    init_error: Mutex<Option<String>>,
    first_poll: Mutex<Option<Instant>>,
    stdout: Mutex<Vec<String>>,
    stderr: Mutex<Vec<String>>,
}

/// Where a function's output lines go besides being kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// stderr is echoed to this process's stderr (a test's output).
    Stderr,
    /// Both streams are echoed, each line after `<function> | ` (the
    /// local stack's terminal, where CloudWatch Logs would be).
    Prefixed,
}

/// How the function was started, to start it again after a timeout:
/// binary, function name, environment.
type Spawned = (PathBuf, String, HashMap<String, String>);

/// A running emulator and, once spawned, the function process.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    child: Mutex<Option<Child>>,
    spawned: Mutex<Option<Spawned>>,
    counter: AtomicU64,
    echo: Echo,
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Ok(mut first) = shared.first_poll.lock() {
        first.get_or_insert_with(Instant::now);
    }
    loop {
        let ready = shared.pending_ready.notified();
        let item = shared.pending.lock().ok().and_then(|mut p| p.pop_front());
        if let Some((id, body)) = item {
            let mut headers = HeaderMap::new();
            let deadline = chrono::Utc::now().timestamp_millis()
                + i64::try_from(shared.deadline.as_millis()).unwrap_or(i64::MAX);
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("x")),
            );
            headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline));
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_str(&shared.function_arn)
                    .unwrap_or(HeaderValue::from_static("arn:aws:lambda:local")),
            );
            headers.insert(
                "lambda-runtime-trace-id",
                HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
            );
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            return (StatusCode::OK, headers, body);
        }
        ready.await;
    }
}

/// Keeps the function's answer to invocation `id`: its body as JSON (null
/// when it is none), as `kind`.
fn record(shared: &Shared, id: String, body: &[u8], kind: fn(Value) -> Outcome) -> StatusCode {
    let outcome = kind(serde_json::from_slice(body).unwrap_or(Value::Null));
    if let Ok(mut results) = shared.results.lock() {
        results.insert(id, outcome);
    }
    shared.result_ready.notify_waiters();
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, id, &body, Outcome::Response)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, id, &body, Outcome::Error)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut e) = shared.init_error.lock() {
        *e = Some(String::from_utf8_lossy(&body).into_owned());
    }
    shared.result_ready.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts the emulator on a free loopback port for a function whose
    /// invocations have `timeout` (the deadline it tells the function).
    pub async fn start(function_name: &str, timeout: Duration, echo: Echo) -> Result<Self> {
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            deadline: timeout,
            pending: Mutex::default(),
            pending_ready: Notify::new(),
            results: Mutex::default(),
            result_ready: Notify::new(),
            init_error: Mutex::default(),
            first_poll: Mutex::default(),
            stdout: Mutex::default(),
            stderr: Mutex::default(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port for the Runtime API")?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
            child: Mutex::default(),
            spawned: Mutex::default(),
            counter: AtomicU64::new(0),
            echo,
        })
    }

    /// Spawns a function binary against this emulator with `env` (plus the
    /// variables Lambda itself sets).
    pub fn spawn(
        &self,
        binary: &FsPath,
        function_name: &str,
        env: &HashMap<String, String>,
    ) -> Result<()> {
        let mut command = Command::new(binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // Keep what the function prints (its logs and EMF metrics), as
        // CloudWatch Logs would; Lambda sends stderr there too.
        let prefix = format!("{function_name} | ");
        if let Some(stdout) = child.stdout.take() {
            let (shared, echo, prefix) = (self.shared.clone(), self.echo, prefix.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if echo == Echo::Prefixed {
                        println!("{prefix}{line}");
                    }
                    if let Ok(mut out) = shared.stdout.lock() {
                        out.push(line);
                    }
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let (shared, echo) = (self.shared.clone(), self.echo);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match echo {
                        Echo::Stderr => eprintln!("{line}"),
                        Echo::Prefixed => eprintln!("{prefix}{line}"),
                    }
                    if let Ok(mut out) = shared.stderr.lock() {
                        out.push(line);
                    }
                }
            });
        }
        *self.child.lock().map_err(|_| anyhow!("poisoned"))? = Some(child);
        *self.spawned.lock().map_err(|_| anyhow!("poisoned"))? =
            Some((binary.to_owned(), function_name.to_owned(), env.clone()));
        Ok(())
    }

    /// The lines the function has printed to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.shared
            .stdout
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The lines the function has printed to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.shared
            .stderr
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// When the function first asked for an invocation: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.first_poll.lock().ok().and_then(|f| *f)
    }

    fn init_failure(&self) -> Option<String> {
        self.shared.init_error.lock().ok().and_then(|e| e.clone())
    }

    /// Waits up to `limit` for the function to finish its init.
    pub async fn wait_ready(&self, limit: Duration) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.first_poll() {
                return Ok(at);
            }
            if let Some(e) = self.init_failure() {
                bail!("the function failed to initialise: {e}");
            }
            if Instant::now() >= deadline {
                bail!("the function did not poll for work within {limit:?}");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// The function process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(Child::id))
    }

    /// Queues one invocation without waiting for it; returns its request id.
    pub fn enqueue(&self, event: &Value) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("req-{n}");
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.push_back((id.clone(), event.to_string()));
        }
        self.shared.pending_ready.notify_waiters();
        id
    }

    /// Kills the function process (SIGKILL) and waits for it to exit.
    pub async fn kill(&self) {
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
    }

    /// Kills the function process without waiting for it to exit.
    pub fn stop(&self) {
        if let Ok(mut child) = self.child.lock() {
            if let Some(child) = child.as_mut() {
                let _ = child.start_kill();
            }
        }
    }

    /// Sends one invocation and waits up to `limit` for its outcome. When
    /// the function outlasts it, Lambda stops the execution environment
    /// and starts a new one for the next invocation: so does this (the
    /// function is spawned again), and the invocation is an error.
    pub async fn invoke(&self, event: &Value, limit: Duration) -> Result<Outcome> {
        let id = self.enqueue(event);
        let wait = async {
            loop {
                let ready = self.shared.result_ready.notified();
                if let Some(outcome) = self
                    .shared
                    .results
                    .lock()
                    .ok()
                    .and_then(|mut r| r.remove(&id))
                {
                    return Ok(outcome);
                }
                if let Some(e) = self.init_failure() {
                    bail!("the function failed to initialise: {e}");
                }
                // Wake periodically too, in case the process died.
                let _ = tokio::time::timeout(Duration::from_millis(200), ready).await;
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(outcome) => outcome,
            Err(_) => {
                if let Ok(mut pending) = self.shared.pending.lock() {
                    pending.retain(|(queued, _)| *queued != id);
                }
                self.restart().await?;
                bail!("the function did not answer within {limit:?}")
            }
        }
    }

    async fn restart(&self) -> Result<()> {
        self.kill().await;
        let spawned = self.spawned.lock().ok().and_then(|s| s.clone());
        if let Some((binary, name, env)) = spawned {
            self.spawn(&binary, &name, &env)?;
        }
        Ok(())
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}
