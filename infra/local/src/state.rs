//! The running local stack, as one file: what `switchboard-local up`
//! runs with (its PID, the gateway's and moto's URLs, the table, every
//! queue, each function's environment and each provider's signing keys),
//! written once the stack is up and removed when it stops.
//!
//! Every other command (`env`, `sign`, `events`, `watch`, `replay`,
//! `reprocess`) reads it instead of recomputing the stack from its own
//! environment, so what they see is what the stack runs with, from any
//! terminal and any directory of the repository. The file lives at
//! `<repository>/.local/stack.json` unless `SWITCHBOARD_STATE` (or
//! `--state`) names another; a file whose process has gone (or whose
//! gateway no longer answers) is stale and counts as no stack.

use crate::devkeys::DEFAULT_TENANT;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchboard_providers::registry;
use switchboard_types::Provider;

/// The variable that names the state file instead of the repository's.
pub const STATE_VARIABLE: &str = "SWITCHBOARD_STATE";

/// The variable naming the repository when a command runs outside it
/// (`infra/bin/switchboard-local` sets it).
pub const ROOT_VARIABLE: &str = "SWITCHBOARD_ROOT";

/// The state file's path within the repository.
pub const STATE_FILE: &str = ".local/stack.json";

/// The dev secrets' path within the repository ([`crate::devkeys`]).
pub const SECRETS_FILE: &str = ".local/dev-secrets.json";

/// What a running local stack runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackState {
    /// The process serving it.
    pub pid: u32,
    /// Its stack name (prefixes every resource name).
    pub stack: String,
    /// When it came up (RFC 3339).
    pub started_at: String,
    /// The gateway's base URL (`http://127.0.0.1:3000`).
    pub gateway: String,
    /// moto's URL, before the limits proxy ([`crate::local_sdk_config_at`]).
    pub endpoint: String,
    /// The events table.
    pub table: String,
    /// Every queue's URL by its name.
    pub queues: BTreeMap<String, String>,
    /// Each function's environment as the stack runs it, by binary.
    pub functions: BTreeMap<String, BTreeMap<String, String>>,
    /// The stack process's AWS proxy ([`crate::aws_limits`]), which checks
    /// every call signed as a function's role against it ([`crate::iam`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The access key id of each function's role, by binary: what
    /// `replay` and `reprocess` sign with, as those Lambdas do.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_keys: BTreeMap<String, String>,
    /// What signs requests for each provider.
    pub providers: Vec<ProviderKeys>,
}

/// What signs a provider's requests on the running stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderKeys {
    /// The provider.
    pub provider: Provider,
    /// What signs its requests as the default tenant (for a URL token,
    /// the token); none when every configured key carries a tenant label.
    #[serde(default)]
    pub signing: Option<String>,
    /// What signs as each tenant label, for schemes whose keys carry one.
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// Whether the tenant comes from the body instead (Partoo).
    #[serde(default)]
    pub tenant_from_body: bool,
}

impl ProviderKeys {
    /// What signs requests as `tenant`: the key labelled so, or for `None`
    /// and `default` the default tenant's key (unlabelled, else labelled
    /// `default`).
    pub fn signing_for(&self, tenant: Option<&str>) -> Result<&str> {
        let d = registry::descriptor(self.provider);
        let labels = || self.tenants.keys().map(String::as_str).collect::<Vec<_>>();
        match tenant.filter(|t| *t != DEFAULT_TENANT) {
            Some(_) if self.tenant_from_body => bail!(
                "{} keys carry no tenant label: its events' tenant comes from the body",
                d.display_name
            ),
            Some(tenant) => self
                .tenants
                .get(tenant)
                .map(String::as_str)
                .with_context(|| {
                    format!(
                        "no {} key of the running stack is labelled {tenant:?} (labelled: {})",
                        d.display_name,
                        if self.tenants.is_empty() {
                            "none".to_owned()
                        } else {
                            labels().join(", ")
                        }
                    )
                }),
            None => self
                .signing
                .as_deref()
                .or_else(|| self.tenants.get(DEFAULT_TENANT).map(String::as_str))
                .with_context(|| {
                    format!(
                        "every {} key of the running stack carries a tenant label, so none \
                         signs as the default tenant: pass --tenant {}",
                        d.display_name,
                        labels().join(" or --tenant ")
                    )
                }),
        }
    }
}

impl StackState {
    /// The recorded keys of `provider`.
    pub fn keys(&self, provider: Provider) -> Result<&ProviderKeys> {
        self.providers
            .iter()
            .find(|k| k.provider == provider)
            .with_context(|| format!("the running stack recorded no {provider} keys"))
    }

    /// The environment the stack runs function `binary` with.
    pub fn function_env(&self, binary: &str) -> Result<&BTreeMap<String, String>> {
        self.functions
            .get(binary)
            .with_context(|| format!("the running stack has no {binary} function"))
    }

    /// Writes the file whole or not at all (a reader never sees half of it).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let partial = path.with_extension(format!("{}.tmp", self.pid));
        std::fs::write(&partial, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Whether its process is alive and its gateway answers: a PID alone
    /// can be reused by another process once the stack has gone.
    pub fn is_live(&self) -> bool {
        pid_alive(self.pid) && answers(&self.gateway)
    }
}

/// What a state file says.
#[derive(Debug)]
pub enum Status {
    /// A stack is running.
    Running(StackState),
    /// The file names a stack that is gone (killed, or its machine restarted).
    Stale(StackState),
    /// No file.
    None,
}

/// Reads the state file at `path`.
pub fn status(path: &Path) -> Result<Status> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Status::None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let state: StackState = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a state file this version reads: stop the stack that wrote it, \
             or delete the file",
            path.display()
        )
    })?;
    Ok(if state.is_live() {
        Status::Running(state)
    } else {
        Status::Stale(state)
    })
}

/// The running stack's state, or an error that says there is none and how
/// to start one.
pub fn running(path: &Path) -> Result<StackState> {
    match status(path)? {
        Status::Running(state) => Ok(state),
        Status::Stale(state) => bail!(
            "no local stack is running: {} names PID {} ({}), which has stopped; \
             start one with `make local`",
            path.display(),
            state.pid,
            state.gateway
        ),
        Status::None => bail!(
            "no local stack is running (there is no {}): start one with `make local`",
            path.display()
        ),
    }
}

/// Removes the state file if process `pid` wrote it (a stack never removes
/// another's).
pub fn remove_own(path: &Path, pid: u32) {
    let own = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<StackState>(&text).ok())
        .is_some_and(|state| state.pid == pid);
    if own {
        let _ = std::fs::remove_file(path);
    }
}

/// The repository this command runs in: the nearest directory at or above
/// the working directory holding `template.yaml` and `infra/local`, else
/// `SWITCHBOARD_ROOT`.
pub fn repository() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    if let Some(root) = cwd.ancestors().find(|dir| is_repository(dir)) {
        return Ok(root.to_path_buf());
    }
    if let Some(root) = std::env::var_os(ROOT_VARIABLE).map(PathBuf::from) {
        if is_repository(&root) {
            return Ok(root);
        }
        bail!(
            "{ROOT_VARIABLE}={} is not a switchboard repository",
            root.display()
        );
    }
    bail!(
        "{} is not inside a switchboard repository: run switchboard-local from the \
         repository (or through its infra/bin/switchboard-local)",
        cwd.display()
    )
}

fn is_repository(dir: &Path) -> bool {
    dir.join("template.yaml").is_file() && dir.join("infra/local/Cargo.toml").is_file()
}

/// `--state` or `SWITCHBOARD_STATE` when given, else the repository's
/// `.local/stack.json`.
pub fn path(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path),
        None => Ok(repository()?.join(STATE_FILE)),
    }
}

/// Whether process `pid` exists (`kill -0`, as on every Unix).
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether something accepts connections at `url`'s host and port.
fn answers(url: &str) -> bool {
    let authority = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default();
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    addrs
        .iter()
        .any(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(500)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pid: u32, gateway: String) -> StackState {
        StackState {
            pid,
            stack: "s".into(),
            started_at: "2026-12-02T00:00:00Z".into(),
            gateway,
            endpoint: "http://127.0.0.1:1".into(),
            table: "t".into(),
            queues: BTreeMap::new(),
            functions: BTreeMap::new(),
            proxy: None,
            role_keys: BTreeMap::new(),
            providers: Vec::new(),
        }
    }

    #[test]
    fn a_file_is_running_only_while_its_process_lives_and_its_gateway_answers() {
        let dir = std::env::temp_dir().join(format!("state-{}", crate::devkeys::random_token(8)));
        let path = dir.join("stack.json");
        assert!(matches!(status(&path).expect("read"), Status::None));
        assert!(format!("{:#}", running(&path).expect_err("none")).contains("make local"));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let gateway = format!("http://{}", listener.local_addr().expect("addr"));
        state(std::process::id(), gateway.clone())
            .write(&path)
            .expect("write");
        assert!(matches!(status(&path).expect("read"), Status::Running(_)));

        // A process that has exited: stale, with its PID in the message.
        let mut exited = std::process::Command::new("true").spawn().expect("spawn");
        let gone = exited.id();
        exited.wait().expect("exit");
        state(gone, gateway).write(&path).expect("write");
        assert!(matches!(status(&path).expect("read"), Status::Stale(_)));
        let message = format!("{:#}", running(&path).expect_err("stale"));
        assert!(message.contains(&gone.to_string()), "{message}");

        // A live process whose gateway is closed: stale too.
        drop(listener);
        let closed = format!("http://{}", "127.0.0.1:1");
        state(std::process::id(), closed)
            .write(&path)
            .expect("write");
        assert!(matches!(status(&path).expect("read"), Status::Stale(_)));

        // Only the writer removes it.
        remove_own(&path, gone);
        assert!(path.exists());
        remove_own(&path, std::process::id());
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
