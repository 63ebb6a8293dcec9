//! `node.toml`: the settings of one node (addresses, limits, logging), which may differ
//! from node to node of the same chain.
//!
//! Every section and every field is optional and takes the default documented on it, so
//! a file holding only `moniker = "node0"` is complete. Unknown sections and fields are
//! refused, so a misspelt setting is an error and not a silently ignored line.
//!
//! Invariants of a config that passed [`NodeConfig::validate`] (each refused with a
//! [`ConfigError`] naming `node.toml` and the field):
//! - `moniker`, `data_dir` and `log.level` are not empty;
//! - every address (`p2p.listen_addr`, each of `p2p.persistent_peers`, `rpc.listen_addr`,
//!   and `metrics.listen_addr` unless it is empty) parses as [`std::net::SocketAddr`];
//! - every interval, timeout and limit that would make the node useless at zero is positive.
//!
//! [`NodeConfig::to_toml`] writes a commented file that parses back to an equal config.

use crate::error::ConfigError;
use crate::files;
use crate::home::NODE_TOML;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

const FILE: &str = NODE_TOML;
const MIB: usize = 1024 * 1024;

/// How log lines are written. Written `"plain"` or `"json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The name used in `node.toml`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogFormat::Plain => "plain",
            LogFormat::Json => "json",
        }
    }
}

/// `[p2p]`: how this node reaches the other validators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Where to accept peer connections, IP:port. Default `"127.0.0.1:26656"`.
    pub listen_addr: String,
    /// Peers to keep connected to, each IP:port. Default none.
    pub persistent_peers: Vec<String>,
    /// Pause between redials of a disconnected persistent peer, in ms. Default 1000; positive.
    pub dial_interval_ms: u64,
}

impl Default for P2pConfig {
    fn default() -> P2pConfig {
        P2pConfig { listen_addr: "127.0.0.1:26656".into(), persistent_peers: Vec::new(), dial_interval_ms: 1000 }
    }
}

/// `[rpc]`: the JSON-RPC server for clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Where to serve RPC, IP:port. Default `"127.0.0.1:26657"`.
    pub listen_addr: String,
    /// Most client connections at once. Default 256; positive.
    pub max_connections: u32,
    /// Largest request body, in bytes. Default 10 MiB; positive.
    pub max_request_bytes: u32,
    /// How long a call that waits for its transaction to commit waits, in ms. Default 15000; positive.
    pub commit_timeout_ms: u64,
    /// Serve the `admin_*` methods (Raft membership changes). Enable only
    /// where operators alone can reach `listen_addr`. Default false.
    pub admin: bool,
}

impl Default for RpcConfig {
    fn default() -> RpcConfig {
        RpcConfig {
            listen_addr: "127.0.0.1:26657".into(),
            max_connections: 256,
            max_request_bytes: 10 * 1024 * 1024,
            commit_timeout_ms: 15_000,
            admin: false,
        }
    }
}

/// `[mempool]`: the pool of transactions waiting for a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most transactions held. Default 50000; positive.
    pub max_txs: usize,
    /// Most bytes of transactions held. Default 128 MiB; positive.
    pub max_bytes: usize,
    /// How far past an account's next nonce a transaction may be and still be kept. Default 64.
    pub max_nonce_gap: u64,
    /// Whether to forward new transactions to peers. Default true.
    pub gossip: bool,
}

impl Default for MempoolConfig {
    fn default() -> MempoolConfig {
        MempoolConfig { max_txs: 50_000, max_bytes: 128 * MIB, max_nonce_gap: 64, gossip: true }
    }
}

/// `[consensus]`: this node's local consensus settings (the shared ones are in genesis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusConfig {
    /// How long to wait for a peer to answer a block sync request, in ms. Default 2000; positive.
    pub sync_timeout_ms: u64,
    /// Raft: applied log entries kept in memory for slow followers before
    /// the log is compacted; a follower further behind installs a state
    /// snapshot. Default 1024; positive.
    pub raft_log_keep: u64,
}

impl Default for ConsensusConfig {
    fn default() -> ConsensusConfig {
        ConsensusConfig { sync_timeout_ms: 2000, raft_log_keep: 1024 }
    }
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Line format. Default `plain`.
    pub format: LogFormat,
    /// Level filter, e.g. `"info"` or `"info,phalanx_consensus=debug"`. Default `"info"`; not empty.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { format: LogFormat::Plain, level: "info".into() }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to serve metrics, IP:port; empty (the default) disables them.
    pub listen_addr: String,
}

/// `[faults]`: Byzantine fault injection, for testnets only (see
/// [`crate::faults`]). Off by default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Faults to inject, e.g. `["equivocate", "delay=200"]`. Default none.
    pub kinds: Vec<String>,
    /// The committed height from which the faults act. Default 0.
    pub from_height: u64,
}

/// The whole of `node.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name in logs and status. Must be set (not empty).
    #[serde(default)]
    pub moniker: String,
    /// Database directory. Default `"data"`; relative to the home directory unless absolute.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// `[p2p]`.
    #[serde(default)]
    pub p2p: P2pConfig,
    /// `[rpc]`.
    #[serde(default)]
    pub rpc: RpcConfig,
    /// `[mempool]`.
    #[serde(default)]
    pub mempool: MempoolConfig,
    /// `[consensus]`.
    #[serde(default)]
    pub consensus: ConsensusConfig,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[faults]`.
    #[serde(default)]
    pub faults: FaultsConfig,
}

fn default_data_dir() -> String {
    "data".into()
}

impl NodeConfig {
    /// Every setting at its default, named `moniker`.
    pub fn default_for(moniker: &str) -> NodeConfig {
        NodeConfig {
            moniker: moniker.into(),
            data_dir: default_data_dir(),
            p2p: P2pConfig::default(),
            rpc: RpcConfig::default(),
            mempool: MempoolConfig::default(),
            consensus: ConsensusConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            faults: FaultsConfig::default(),
        }
    }

    /// Checks every rule in the module doc; the error names `node.toml` and the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.moniker.trim().is_empty() {
            return Err(field("moniker", "must be set to a name for this node, e.g. moniker = \"node0\""));
        }
        if self.data_dir.trim().is_empty() {
            return Err(field("data_dir", "must not be empty (the default is \"data\")"));
        }
        self.validate_p2p()?;
        self.validate_rpc()?;
        positive("mempool.max_txs", self.mempool.max_txs as u64)?;
        positive("mempool.max_bytes", self.mempool.max_bytes as u64)?;
        positive("consensus.sync_timeout_ms", self.consensus.sync_timeout_ms)?;
        positive("consensus.raft_log_keep", self.consensus.raft_log_keep)?;
        if self.log.level.trim().is_empty() {
            return Err(field("log.level", "must not be empty, e.g. \"info\""));
        }
        if !self.metrics.listen_addr.is_empty() {
            socket_addr("metrics.listen_addr", &self.metrics.listen_addr)?;
        }
        crate::faults::parse_faults(&self.faults.kinds).map_err(|e| field("faults.kinds", e))?;
        Ok(())
    }

    fn validate_p2p(&self) -> Result<(), ConfigError> {
        socket_addr("p2p.listen_addr", &self.p2p.listen_addr)?;
        for (i, peer) in self.p2p.persistent_peers.iter().enumerate() {
            socket_addr(&format!("p2p.persistent_peers[{i}]"), peer)?;
        }
        positive("p2p.dial_interval_ms", self.p2p.dial_interval_ms)
    }

    fn validate_rpc(&self) -> Result<(), ConfigError> {
        socket_addr("rpc.listen_addr", &self.rpc.listen_addr)?;
        if self.rpc.admin && !self.rpc.listen_addr.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback()) {
            return Err(field(
                "rpc.admin",
                format!(
                    "the admin methods are served only on a loopback rpc.listen_addr (127.0.0.1 or [::1]), not {:?}",
                    self.rpc.listen_addr
                ),
            ));
        }
        positive("rpc.max_connections", self.rpc.max_connections.into())?;
        positive("rpc.max_request_bytes", self.rpc.max_request_bytes.into())?;
        positive("rpc.commit_timeout_ms", self.rpc.commit_timeout_ms)
    }

    /// Parses and validates `node.toml` text. Syntax and type errors give line and column.
    pub fn from_toml(text: &str) -> Result<NodeConfig, ConfigError> {
        let node: NodeConfig = files::parse_toml(FILE, text)?;
        node.validate()?;
        Ok(node)
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        NodeConfig::from_toml(&files::read_text(FILE, path)?)
    }

    /// Writes [`NodeConfig::to_toml`] to `path`, atomically (temporary file and rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        files::write_atomically(FILE, path, &self.to_toml())
    }

    /// The file's contents: every setting with a comment above it saying what it does and
    /// its default. Parses back to a config equal to `self`.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# Phalanx node configuration.\n\
             # Every setting is optional: one left out takes the default given in its comment.\n\n",
        );
        self.write_top_level(&mut out);
        self.write_p2p_and_rpc(&mut out);
        self.write_mempool_and_consensus(&mut out);
        self.write_log_and_metrics(&mut out);
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }

    fn write_top_level(&self, out: &mut String) {
        setting(out, "A name for this node, shown in logs and status. Required.", "moniker", &quoted(&self.moniker));
        setting(
            out,
            "Database directory; a relative path is resolved against the home directory (default \"data\").",
            "data_dir",
            &quoted(&self.data_dir),
        );
    }

    fn write_p2p_and_rpc(&self, out: &mut String) {
        let (p2p, rpc) = (&self.p2p, &self.rpc);
        let d = (P2pConfig::default(), RpcConfig::default());
        section(out, "p2p", "How this node reaches the other validators.");
        let help = format!("Address (IP:port) to accept peer connections on (default {}).", quoted(&d.0.listen_addr));
        setting(out, &help, "listen_addr", &quoted(&p2p.listen_addr));
        let help = "Peers (IP:port) to stay connected to, e.g. [\"10.0.0.2:26656\", \"10.0.0.3:26656\"] (default []).";
        setting(out, help, "persistent_peers", &quoted_list(&p2p.persistent_peers));
        let help =
            format!("Milliseconds between redials of a lost persistent peer (default {}).", d.0.dial_interval_ms);
        setting(out, &help, "dial_interval_ms", &p2p.dial_interval_ms.to_string());

        section(out, "rpc", "The JSON-RPC server for clients.");
        let help = format!("Address (IP:port) to serve RPC on (default {}).", quoted(&d.1.listen_addr));
        setting(out, &help, "listen_addr", &quoted(&rpc.listen_addr));
        let help = format!("Most client connections served at once (default {}).", d.1.max_connections);
        setting(out, &help, "max_connections", &rpc.max_connections.to_string());
        let help = format!("Largest request body in bytes (default {} = 10 MiB).", d.1.max_request_bytes);
        setting(out, &help, "max_request_bytes", &rpc.max_request_bytes.to_string());
        let help = format!(
            "Milliseconds a call that waits for its transaction to commit waits before giving up (default {}).",
            d.1.commit_timeout_ms
        );
        setting(out, &help, "commit_timeout_ms", &rpc.commit_timeout_ms.to_string());
        let help = "Serve the admin_* methods (raft membership changes); enable only where operators alone can reach this address (default false).";
        setting(out, help, "admin", &rpc.admin.to_string());
    }

    fn write_mempool_and_consensus(&self, out: &mut String) {
        let (mempool, d) = (&self.mempool, MempoolConfig::default());
        section(out, "mempool", "Transactions waiting to be put in a block.");
        let help = format!("Most transactions held (default {}).", d.max_txs);
        setting(out, &help, "max_txs", &mempool.max_txs.to_string());
        let help = format!("Most bytes of transactions held (default {} = 128 MiB).", d.max_bytes);
        setting(out, &help, "max_bytes", &mempool.max_bytes.to_string());
        let help = format!(
            "How far past an account's next nonce a transaction may be and still be kept (default {}).",
            d.max_nonce_gap
        );
        setting(out, &help, "max_nonce_gap", &mempool.max_nonce_gap.to_string());
        let help = format!("Whether to forward new transactions to peers (default {}).", d.gossip);
        setting(out, &help, "gossip", &mempool.gossip.to_string());

        section(out, "consensus", "This node's own consensus settings (the chain-wide ones are in genesis.json).");
        let help = format!(
            "Milliseconds to wait for a peer to answer a block sync request (default {}).",
            ConsensusConfig::default().sync_timeout_ms
        );
        setting(out, &help, "sync_timeout_ms", &self.consensus.sync_timeout_ms.to_string());
        let help = format!(
            "Raft: applied log entries kept for slow followers before compaction; a follower further behind installs a state snapshot (default {}).",
            ConsensusConfig::default().raft_log_keep
        );
        setting(out, &help, "raft_log_keep", &self.consensus.raft_log_keep.to_string());
    }

    fn write_log_and_metrics(&self, out: &mut String) {
        section(out, "log", "What is logged and how.");
        let help = "Line format: \"plain\" for people or \"json\" for log collectors (default \"plain\").";
        setting(out, help, "format", &quoted(self.log.format.as_str()));
        let help = "Level filter, e.g. \"info\" or \"info,phalanx_consensus=debug\" (default \"info\").";
        setting(out, help, "level", &quoted(&self.log.level));

        section(out, "metrics", "The Prometheus metrics endpoint.");
        let help = "Address (IP:port) to serve metrics on; \"\" disables metrics (default \"\").";
        setting(out, help, "listen_addr", &quoted(&self.metrics.listen_addr));

        section(
            out,
            "faults",
            "Byzantine fault injection, for testnets only: makes this validator misbehave on purpose.",
        );
        let help = "Faults to inject (default [], none). Any of: equivocate, double-vote, withhold, bad-signature, invalid-block, stale-proposal, delay=MS, drop=P, amnesia, tx-flood=RATE.";
        setting(out, help, "kinds", &quoted_list(&self.faults.kinds));
        let help = "Committed height from which the faults act (default 0).";
        setting(out, help, "from_height", &self.faults.from_height.to_string());
    }
}

fn field(name: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::field(FILE, name, message)
}

fn positive(name: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 { Err(field(name, "must be > 0")) } else { Ok(()) }
}

fn socket_addr(name: &str, value: &str) -> Result<(), ConfigError> {
    match value.parse::<SocketAddr>() {
        Ok(_) => Ok(()),
        Err(_) => Err(field(name, format!("{value:?} is not an IP:port address"))),
    }
}

/// Appends a `[name]` header and a comment saying what the section is for.
fn section(out: &mut String, name: &str, help: &str) {
    let _ = write!(out, "[{name}]\n# {help}\n\n");
}

/// Appends `# help` then `key = value` (a value already in TOML syntax), then a blank line.
fn setting(out: &mut String, help: &str, key: &str, value: &str) {
    let _ = write!(out, "# {help}\n{key} = {value}\n\n");
}

/// `s` as a TOML basic string, escaping what TOML requires.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `items` as a one-line TOML array of strings.
fn quoted_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(edit: impl FnOnce(&mut NodeConfig)) -> String {
        let mut node = NodeConfig::default_for("node0");
        edit(&mut node);
        node.validate().expect_err("must be refused").to_string()
    }

    fn parse_refused(text: &str) -> String {
        NodeConfig::from_toml(text).expect_err("must be refused").to_string()
    }

    fn unusual() -> NodeConfig {
        let mut node = NodeConfig::default_for("we\"ird \\ mönïker\t\u{7f}\u{1}\n");
        node.data_dir = "/var/lib/phalanx data".into();
        node.p2p.persistent_peers = vec!["127.0.0.1:26666".into(), "[::1]:26676".into()];
        node.p2p.dial_interval_ms = 7;
        node.rpc = RpcConfig {
            listen_addr: "[::1]:1".into(),
            max_connections: 1,
            max_request_bytes: 2,
            commit_timeout_ms: 3,
            admin: true,
        };
        node.mempool = MempoolConfig { max_txs: 4, max_bytes: 5, max_nonce_gap: 0, gossip: false };
        node.consensus.sync_timeout_ms = 6;
        node.consensus.raft_log_keep = 7;
        node.log = LogConfig { format: LogFormat::Json, level: "debug,libp2p=warn".into() };
        node.metrics.listen_addr = "127.0.0.1:9100".into();
        node.faults = FaultsConfig { kinds: vec!["equivocate".into(), "delay=20".into()], from_height: 8 };
        node
    }

    #[test]
    fn defaults_validate() {
        let node = NodeConfig::default_for("node0");
        node.validate().unwrap();
        assert_eq!(node.data_dir, "data");
        assert_eq!(node.p2p.listen_addr, "127.0.0.1:26656");
        assert_eq!(node.rpc, RpcConfig::default());
        assert_eq!((node.rpc.max_connections, node.rpc.max_request_bytes), (256, 10_485_760));
        assert_eq!((node.mempool.max_txs, node.mempool.max_bytes), (50_000, 134_217_728));
        assert_eq!(node.log.level, "info");
        assert_eq!(node.metrics.listen_addr, "");
    }

    #[test]
    fn a_file_with_only_a_moniker_is_complete() {
        assert_eq!(NodeConfig::from_toml("moniker = \"x\"\n").unwrap(), NodeConfig::default_for("x"));
        let partial = NodeConfig::from_toml("moniker = \"x\"\n[rpc]\nmax_connections = 3\n").unwrap();
        assert_eq!(partial.rpc, RpcConfig { max_connections: 3, ..RpcConfig::default() });
    }

    #[test]
    fn to_toml_parses_back_equal() {
        for node in [NodeConfig::default_for("node0"), unusual()] {
            let text = node.to_toml();
            let back: NodeConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, node, "{text}");
        }
    }

    /// Every `key = value` line has a comment line directly above it.
    #[test]
    fn to_toml_explains_every_setting() {
        let text = NodeConfig::default_for("node0").to_toml();
        let lines: Vec<&str> = text.lines().collect();
        let mut settings = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.is_empty() && !line.starts_with('#') && !line.starts_with('[') {
                settings += 1;
                assert!(i > 0 && lines[i - 1].starts_with("# "), "no comment above {line:?}:\n{text}");
            }
        }
        assert_eq!(settings, 21, "{text}");
        assert!(!text.contains("\n\n\n") && text.ends_with("from_height = 0\n"), "tidy: {text}");
        for section in ["[p2p]", "[rpc]", "[mempool]", "[consensus]", "[log]", "[metrics]", "[faults]"] {
            assert!(lines.contains(&section), "{section} missing:\n{text}");
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let mut node = unusual();
        node.moniker = "node7".into();
        node.save(&path).unwrap();
        assert_eq!(NodeConfig::load(&path).unwrap(), node);
    }

    #[test]
    fn moniker_must_be_set() {
        let expected = "node.toml: moniker must be set to a name for this node, e.g. moniker = \"node0\"";
        assert_eq!(refused(|n| n.moniker = "  ".into()), expected);
        assert_eq!(parse_refused("[log]\nlevel = \"debug\"\n"), expected);
    }

    #[test]
    fn unknown_or_repeated_faults_are_refused_by_name() {
        let msg = refused(|n| n.faults.kinds = vec!["equivicate".into()]);
        assert!(msg.starts_with("node.toml: faults.kinds"), "{msg}");
        assert!(msg.contains("unknown fault \"equivicate\""), "{msg}");
        let msg = refused(|n| n.faults.kinds = vec!["drop=0.1".into(), "drop=0.2".into()]);
        assert!(msg.contains("given twice"), "{msg}");
    }

    #[test]
    fn admin_methods_need_a_loopback_rpc_address() {
        let msg = refused(|n| {
            n.rpc.admin = true;
            n.rpc.listen_addr = "0.0.0.0:26657".into();
        });
        assert!(msg.starts_with("node.toml: rpc.admin") && msg.contains("loopback"), "{msg}");
    }

    #[test]
    fn data_dir_must_not_be_empty() {
        assert_eq!(refused(|n| n.data_dir.clear()), "node.toml: data_dir must not be empty (the default is \"data\")");
    }

    #[test]
    fn p2p_listen_addr_must_be_ip_and_port() {
        assert_eq!(
            refused(|n| n.p2p.listen_addr = "localhost:26656".into()),
            "node.toml: p2p.listen_addr: \"localhost:26656\" is not an IP:port address"
        );
    }

    #[test]
    fn persistent_peers_must_be_ip_and_port() {
        assert_eq!(
            refused(|n| n.p2p.persistent_peers = vec!["127.0.0.1:1".into(), "foo".into()]),
            "node.toml: p2p.persistent_peers[1]: \"foo\" is not an IP:port address"
        );
    }

    #[test]
    fn dial_interval_must_be_positive() {
        assert_eq!(refused(|n| n.p2p.dial_interval_ms = 0), "node.toml: p2p.dial_interval_ms must be > 0");
    }

    #[test]
    fn rpc_listen_addr_must_be_ip_and_port() {
        assert_eq!(
            refused(|n| n.rpc.listen_addr = "abc".into()),
            "node.toml: rpc.listen_addr: \"abc\" is not an IP:port address"
        );
    }

    #[test]
    fn rpc_limits_must_be_positive() {
        assert_eq!(refused(|n| n.rpc.max_connections = 0), "node.toml: rpc.max_connections must be > 0");
        assert_eq!(refused(|n| n.rpc.max_request_bytes = 0), "node.toml: rpc.max_request_bytes must be > 0");
        assert_eq!(refused(|n| n.rpc.commit_timeout_ms = 0), "node.toml: rpc.commit_timeout_ms must be > 0");
    }

    #[test]
    fn mempool_limits_must_be_positive() {
        assert_eq!(refused(|n| n.mempool.max_txs = 0), "node.toml: mempool.max_txs must be > 0");
        assert_eq!(refused(|n| n.mempool.max_bytes = 0), "node.toml: mempool.max_bytes must be > 0");
    }

    #[test]
    fn sync_timeout_must_be_positive() {
        assert_eq!(refused(|n| n.consensus.sync_timeout_ms = 0), "node.toml: consensus.sync_timeout_ms must be > 0");
    }

    #[test]
    fn log_level_must_not_be_empty() {
        assert_eq!(refused(|n| n.log.level.clear()), "node.toml: log.level must not be empty, e.g. \"info\"");
    }

    #[test]
    fn metrics_listen_addr_is_empty_or_ip_and_port() {
        assert_eq!(
            refused(|n| n.metrics.listen_addr = "9100".into()),
            "node.toml: metrics.listen_addr: \"9100\" is not an IP:port address"
        );
        let mut node = NodeConfig::default_for("n");
        node.metrics.listen_addr = "0.0.0.0:9100".into();
        node.validate().unwrap();
    }

    #[test]
    fn syntax_errors_name_the_file_line_and_column() {
        let e = parse_refused("moniker = \"x\"\n[rpc\n");
        assert!(e.starts_with("node.toml: line 2, column "), "{e}");
        let e = parse_refused("moniker = \"x\"\ndata_dir = \n");
        assert!(e.starts_with("node.toml: line 2, column "), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let e = parse_refused("moniker = \"x\"\nmonikor = \"y\"\n");
        assert!(e.starts_with("node.toml: line 2, column 1: unknown field `monikor`"), "{e}");
        let e = parse_refused("moniker = \"x\"\n[rpc]\nlisten_address = \"127.0.0.1:1\"\n");
        assert!(e.starts_with("node.toml: line 3, column 1: unknown field `listen_address`"), "{e}");
        let e = parse_refused("moniker = \"x\"\n[telemetry]\n");
        assert!(e.contains("unknown field `telemetry`"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_line() {
        let e = parse_refused("moniker = \"x\"\n[rpc]\nmax_connections = \"many\"\n");
        assert!(e.starts_with("node.toml: line 3, column 19: invalid type: string \"many\", expected u32"), "{e}");
        let e = parse_refused("moniker = \"x\"\n[log]\nformat = \"xml\"\n");
        assert!(e.contains("unknown variant `xml`"), "{e}");
    }

    #[test]
    fn load_of_a_missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        assert_eq!(
            NodeConfig::load(&path).unwrap_err().to_string(),
            format!("node.toml: {} does not exist", path.display())
        );
    }
}
