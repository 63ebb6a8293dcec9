//! Process-level testnets: real `phalanx` processes on loopback.
//!
//! A [`Cluster`] generates node homes with the real CLI (`phalanx testnet`,
//! free ports chosen by the operating system), starts each validator as a
//! child process with its log in `<dir>/node<i>.log`, and can kill (SIGKILL),
//! stop (SIGTERM), pause (SIGSTOP) and restart them. Waiting is always for a
//! condition with a deadline, polled over JSON-RPC; a missed deadline fails
//! with what was awaited and the node's last log lines.
//!
//! Dropping a cluster kills its processes; its directory is removed unless
//! `PHALANX_KEEP_TESTNET` is set (then its path is printed).

use anyhow::{Context as _, bail};
use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use serde_json::Value;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(50);

/// One validator process.
pub struct NodeProc {
    pub home: PathBuf,
    pub rpc: String,
    pub log: PathBuf,
    /// Arguments appended to `phalanx start --home H` on every start of this
    /// node (for example its `--fault` flags).
    pub start_args: Vec<String>,
    child: Option<Child>,
}

/// A local testnet of real processes.
pub struct Cluster {
    bin: PathBuf,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    pub nodes: Vec<NodeProc>,
    /// Environment for every start (e.g. log filters).
    pub env: Vec<(String, String)>,
}

/// A JSON-RPC failure.
#[derive(Debug)]
pub enum RpcError {
    /// The node answered with an error object.
    Rpc {
        code: i32,
        message: String,
        /// The error object's `data`, if it carried any.
        data: Option<Value>,
    },
    /// The node could not be reached.
    Transport(String),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Rpc { code, message, .. } => write!(f, "{message} (code {code})"),
            RpcError::Transport(t) => write!(f, "transport: {t}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// Calls `method` on the node at `rpc` (host:port) with named params.
pub async fn call(rpc: &str, method: &str, params: Value) -> Result<Value, RpcError> {
    call_with_timeout(rpc, method, params, Duration::from_secs(30)).await
}

/// [`call`], giving up after `timeout` (a [`RpcError::Transport`] error).
pub async fn call_with_timeout(rpc: &str, method: &str, params: Value, timeout: Duration) -> Result<Value, RpcError> {
    let client = HttpClientBuilder::default()
        .request_timeout(timeout)
        .build(format!("http://{rpc}"))
        .map_err(|e| RpcError::Transport(e.to_string()))?;
    let mut p = ObjectParams::new();
    if let Value::Object(m) = params {
        for (k, v) in m {
            p.insert(&k, v).expect("JSON values serialise");
        }
    }
    client.request::<Value, _>(method, p).await.map_err(|e| match e {
        ClientError::Call(o) => RpcError::Rpc {
            code: o.code(),
            message: o.message().to_owned(),
            data: o.data().and_then(|d| serde_json::from_str(d.get()).ok()),
        },
        other => {
            // The whole chain of causes: "client error (SendRequest)" alone
            // does not say whether the connection was refused or reset.
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(&other);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            RpcError::Transport(text)
        }
    })
}

impl Cluster {
    /// Generates `n` validator homes with `bin testnet` in a fresh temporary
    /// directory. `extra` is passed to `phalanx testnet` as is.
    pub fn generate(bin: &Path, n: usize, extra: &[&str]) -> anyhow::Result<Cluster> {
        Self::generate_in(bin, n, extra, &std::env::temp_dir())
    }

    /// [`Cluster::generate`] with the directory made inside `parent` (for
    /// example on the real disk rather than a tmpfs), which must exist.
    pub fn generate_in(bin: &Path, n: usize, extra: &[&str], parent: &Path) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("phalanx-testnet-").tempdir_in(parent)?;
        let root = dir.path().to_owned();
        let out = Command::new(bin)
            .args(["testnet", "-n", &n.to_string(), "--base-port", "0", "--output"])
            .arg(&root)
            .args(extra)
            .output()
            .context("running phalanx testnet")?;
        if !out.status.success() {
            bail!("phalanx testnet failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut nodes = Vec::new();
        for i in 0..n {
            let home = root.join(format!("node{i}"));
            let toml = std::fs::read_to_string(home.join("config/node.toml"))?;
            let rpc = listen_addr_of(&toml, "rpc").context("node.toml has no rpc.listen_addr")?;
            nodes.push(NodeProc {
                home,
                rpc,
                log: root.join(format!("node{i}.log")),
                start_args: Vec::new(),
                child: None,
            });
        }
        Ok(Cluster { bin: bin.to_owned(), dir: Some(dir), root, nodes, env: Vec::new() })
    }

    /// Writes the home of a node that joins this chain later (`phalanx init
    /// --genesis`, not in genesis; a raft cluster adds it as a learner),
    /// connecting to every current node. Returns its index; start it with
    /// [`Cluster::start`].
    pub fn add_node(&mut self) -> anyhow::Result<usize> {
        let i = self.nodes.len();
        let home = self.root.join(format!("node{i}"));
        let mut peers = Vec::new();
        for n in &self.nodes {
            let toml = std::fs::read_to_string(n.home.join("config/node.toml"))?;
            peers.push(listen_addr_of(&toml, "p2p").context("node.toml has no p2p.listen_addr")?);
        }
        let out = Command::new(&self.bin)
            .args(["init", "--base-port", "0", "--home"])
            .arg(&home)
            .arg("--genesis")
            .arg(self.nodes[0].home.join("config/genesis.json"))
            .arg("--peers")
            .arg(peers.join(","))
            .output()
            .context("running phalanx init --genesis")?;
        if !out.status.success() {
            bail!("phalanx init --genesis failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let toml = std::fs::read_to_string(home.join("config/node.toml"))?;
        let rpc = listen_addr_of(&toml, "rpc").context("node.toml has no rpc.listen_addr")?;
        self.nodes.push(NodeProc {
            home,
            rpc,
            log: self.root.join(format!("node{i}.log")),
            start_args: Vec::new(),
            child: None,
        });
        Ok(i)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key file of generated client account `j`.
    pub fn client_key(&self, j: usize) -> PathBuf {
        self.root.join("clients").join(format!("client{j}.json"))
    }

    /// Starts node `i` (appending to its log).
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        self.start_with_env(i, &[])
    }

    /// Starts node `i` with extra environment variables.
    pub fn start_with_env(&mut self, i: usize, env: &[(&str, &str)]) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            bail!("node{i} is already running");
        }
        let log = OpenOptions::new().create(true).append(true).open(&node.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["start", "--home"]).arg(&node.home).args(&node.start_args);
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        node.child = Some(cmd.spawn().with_context(|| format!("starting node{i}"))?);
        Ok(())
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    fn signal(&self, i: usize, sig: i32) -> anyhow::Result<()> {
        let child = self.nodes[i].child.as_ref().with_context(|| format!("node{i} is not running"))?;
        // SAFETY: kill(2) on the pid of a child we own.
        if unsafe { libc::kill(child.id() as i32, sig) } != 0 {
            bail!("signal {sig} to node{i}: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let mut child = self.nodes[i].child.take().with_context(|| format!("node{i} is not running"))?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits up to `deadline` for a clean exit.
    pub fn terminate(&mut self, i: usize, deadline: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(i, libc::SIGTERM)?;
        let mut child = self.nodes[i].child.take().expect("signalled above");
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > end {
                let _ = child.kill();
                bail!("node{i} did not exit within {deadline:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, libc::SIGSTOP)
    }
    pub fn resume(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, libc::SIGCONT)
    }

    /// If node `i` exited by itself, its status.
    pub fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        let node = &mut self.nodes[i];
        let status = node.child.as_mut()?.try_wait().ok()??;
        node.child = None;
        Some(status)
    }

    /// Waits up to `deadline` for node `i` to exit by itself.
    pub async fn wait_exit(&mut self, i: usize, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(s) = self.exited(i) {
                return Ok(s);
            }
            if Instant::now() > end {
                bail!("node{i} still running after {deadline:?}\n{}", self.log_tail(i));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.exited(i).is_none() && self.nodes[i].child.is_some()
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    fn log_tail(&self, i: usize) -> String {
        let log = self.log(i);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Node `i`'s metrics address (from its node.toml).
    pub fn metrics_addr(&self, i: usize) -> Option<String> {
        let toml = std::fs::read_to_string(self.nodes[i].home.join("config/node.toml")).ok()?;
        listen_addr_of(&toml, "metrics").filter(|a| !a.is_empty())
    }

    /// Node `i`'s metrics in the Prometheus text format, or `None` when it
    /// serves none or does not answer within 2 s.
    pub fn metrics(&self, i: usize) -> Option<String> {
        use std::io::{Read as _, Write as _};
        let addr = self.metrics_addr(i)?;
        let sock = addr.parse().ok()?;
        let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }

    /// The binary the cluster runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub async fn call(&self, i: usize, method: &str, params: Value) -> Result<Value, RpcError> {
        call(&self.nodes[i].rpc, method, params).await
    }

    /// Node `i`'s committed height, if it answers.
    pub async fn height(&self, i: usize) -> Option<u64> {
        let s = self.call(i, "status", Value::Null).await.ok()?;
        s["sync_info"]["latest_block_height"].as_u64()
    }

    /// Polls `check` until it returns `Some`, failing after `deadline` with
    /// `what` and the logs of `nodes`.
    pub async fn wait_for<T, F, Fut>(
        &self,
        deadline: Duration,
        what: &str,
        nodes: &[usize],
        mut check: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let end = Instant::now() + deadline;
        loop {
            if let Some(v) = check().await {
                return Ok(v);
            }
            if Instant::now() > end {
                let logs: Vec<String> =
                    nodes.iter().map(|&i| format!("--- node{i} log tail:\n{}", self.log_tail(i))).collect();
                bail!("timed out after {deadline:?} waiting for {what}\n{}", logs.join("\n"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until node `i` has committed at least `height`.
    pub async fn wait_height(&self, i: usize, height: u64, deadline: Duration) -> anyhow::Result<u64> {
        self.wait_for(deadline, &format!("node{i} to reach height {height}"), &[i], || async move {
            self.height(i).await.filter(|h| *h >= height)
        })
        .await
    }

    /// Keeps the directory after the cluster is dropped.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
        self.root.clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::env::var_os("PHALANX_KEEP_TESTNET").is_some() {
            eprintln!("testnet kept in {}", self.keep().display());
        }
    }
}

/// `listen_addr` of `[section]` in a node.toml.
pub fn listen_addr_of(node_toml: &str, section: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut inside = false;
    for line in node_toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == header;
        } else if inside && t.starts_with("listen_addr") {
            return t.split('"').nth(1).map(str::to_owned);
        }
    }
    None
}
