//! `phalanx`: the validator binary and its command-line client.

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use phalanx_config::{Home, LogFormat, NodeConfig};
use phalanx_crypto::{Keypair, PublicKey, keyfile};
use phalanx_node::app::{Op, Transaction};
use phalanx_node::faults::FaultPlan;
use phalanx_node::rpc::client::{CallError, RpcClient};
use phalanx_node::testnet_gen::{self, TestnetSpec};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The validator allocates and frees many small buffers per transaction
/// (RPC decoding, gossip, blocks, the mempool) across threads; jemalloc
/// does that with less CPU than glibc's allocator and keeps RSS bounded
/// (figures in docs/benchmarks.md, "Allocator").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "phalanx", version, about = "A Byzantine-fault-tolerant replication node (HotStuff, libp2p, sled)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a node home directory: keys, node.toml and a one-validator
    /// genesis; or, with --genesis, a home for a node joining an existing
    /// raft chain (add it with `phalanx admin add-learner --home DIR`).
    Init(InitArgs),
    /// Create the homes of a local testnet: N validators sharing one genesis.
    Testnet(TestnetArgs),
    /// Run a validator.
    Start(StartArgs),
    /// Generate or show key files.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Sign a transaction with a key file and submit it over RPC.
    Tx(TxArgs),
    /// Read application state over RPC.
    Query(QueryArgs),
    /// Show a node's status.
    Status(RpcArgs),
    /// Call any JSON-RPC method (for example `phalanx rpc block '{"height": 3}'`).
    Rpc(RawRpcArgs),
    /// Change a raft cluster's membership, or partition a node (needs
    /// rpc.admin on the node).
    Admin(AdminArgs),
}

#[derive(Args)]
struct InitArgs {
    /// The home directory to create.
    #[arg(long)]
    home: PathBuf,
    #[arg(long, default_value = "phalanx-local")]
    chain_id: String,
    /// This node's name (default: the home directory's name).
    #[arg(long)]
    moniker: Option<String>,
    /// Join an existing chain: use this genesis.json (the node is not in it;
    /// a raft cluster adds it as a learner) instead of making a new chain.
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// With --genesis: p2p addresses (IP:port) of current members to connect to.
    #[arg(long, value_delimiter = ',', requires = "genesis")]
    peers: Vec<String>,
    /// With --genesis: first port to try for p2p, RPC and metrics (0: any free port).
    #[arg(long, default_value_t = 26600, requires = "genesis")]
    base_port: u16,
}

#[derive(Args)]
struct AdminArgs {
    #[command(subcommand)]
    op: AdminOp,
    #[command(flatten)]
    rpc: RpcArgs,
}

#[derive(Subcommand)]
enum AdminOp {
    /// Add a non-voting member that receives the log. Give the new node's
    /// home (made with `phalanx init --genesis`), or its keys and address.
    AddLearner {
        /// The new node's home: its keys and p2p address are read from it.
        #[arg(long, conflicts_with_all = ["validator_key", "node_key", "p2p_addr"])]
        home: Option<PathBuf>,
        /// The new member's validator public key (hex).
        #[arg(long, requires_all = ["node_key", "p2p_addr"])]
        validator_key: Option<String>,
        /// The new member's network public key (hex).
        #[arg(long)]
        node_key: Option<String>,
        /// The new member's p2p address, IP:port.
        #[arg(long)]
        p2p_addr: Option<String>,
    },
    /// Make a learner a voter (through a joint configuration).
    Promote {
        /// The member's validator public key (hex), or its home directory.
        member: String,
    },
    /// Remove a voter or a learner.
    Remove {
        /// The member's validator public key (hex), or its home directory.
        member: String,
    },
    /// Make this node drop all traffic to and from these validators (a
    /// partition between real processes; any protocol).
    Partition {
        /// Validator public keys (hex) or node homes.
        #[arg(required = true)]
        peers: Vec<String>,
    },
    /// End this node's partition.
    Heal,
}

#[derive(Args)]
struct TestnetArgs {
    /// Number of validators.
    #[arg(short = 'n', long, default_value_t = 4)]
    validators: usize,
    /// Where to write the homes (node0, node1, ... and clients/).
    #[arg(long, default_value = "./testnet-data")]
    output: PathBuf,
    #[arg(long, default_value = "phalanx-local")]
    chain_id: String,
    /// First port to try; each node takes three (p2p, RPC, metrics), skipping
    /// ports in use. 0 lets the operating system pick free ports.
    #[arg(long, default_value_t = 26600)]
    base_port: u16,
    /// Funded client accounts to create (keys in <output>/clients/).
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// Base round timeout in milliseconds (Raft: the election timeout).
    #[arg(long, default_value_t = 1000)]
    timeout_ms_base: u64,
    /// Consensus protocol: hotstuff (Byzantine faults, 3f+1) or raft (crash
    /// faults, 2f+1).
    #[arg(long, default_value = "hotstuff")]
    protocol: phalanx_config::Protocol,
    /// Application: kv (signed key-value and accounts transactions) or noop
    /// (orders any payload, applies nothing; for benchmarks).
    #[arg(long, default_value = "kv")]
    app: phalanx_config::AppKind,
}

#[derive(Args)]
struct StartArgs {
    #[arg(long)]
    home: PathBuf,
    /// Log format: plain or json (overrides node.toml).
    #[arg(long, env = "PHALANX_LOG_FORMAT")]
    log_format: Option<String>,
    /// Log level or filter, e.g. info or phalanx_consensus=debug (overrides node.toml; RUST_LOG wins over both).
    #[arg(long)]
    log_level: Option<String>,
    /// Make this validator misbehave, for testnets only (repeatable; replaces
    /// node.toml's [faults] kinds): equivocate, double-vote, withhold,
    /// bad-signature, invalid-block, stale-proposal, delay=MS, drop=P,
    /// amnesia, tx-flood=RATE.
    #[arg(long = "fault", value_name = "KIND[=PARAM]")]
    faults: Vec<String>,
    /// The committed height from which the faults act (replaces node.toml's
    /// [faults] from_height).
    #[arg(long, value_name = "H")]
    fault_from_height: Option<u64>,
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Write a new ed25519 key file (mode 0600).
    Generate {
        #[arg(long)]
        output: PathBuf,
    },
    /// Print a key file's public key.
    Show {
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Args, Clone)]
struct RpcArgs {
    /// The node's RPC address (host:port or URL).
    #[arg(long, global = true, env = "PHALANX_RPC", default_value = "127.0.0.1:26601")]
    rpc: String,
}

#[derive(Args)]
struct TxArgs {
    #[command(subcommand)]
    op: TxOp,
    /// Key file of the sender.
    #[arg(long = "key", id = "key_file", value_name = "FILE", global = true)]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    rpc: RpcArgs,
    /// Nonce to use (default: the account's next nonce, read over RPC).
    #[arg(long, global = true)]
    nonce: Option<u64>,
    /// Chain id (default: read from the node's status).
    #[arg(long, global = true)]
    chain_id: Option<String>,
    /// How long to wait: commit (until in a block), sync (until in the mempool) or async.
    #[arg(long, global = true, default_value = "commit")]
    wait: String,
    /// Print the signed transaction as base64 instead of submitting it.
    #[arg(long, global = true)]
    print: bool,
}

#[derive(Subcommand)]
enum TxOp {
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Remove KEY.
    Delete { key: String },
    /// Move AMOUNT from the sender to TO (a public key in hex).
    Transfer { to: String, amount: u64 },
}

#[derive(Args)]
struct QueryArgs {
    #[command(subcommand)]
    what: QueryWhat,
    /// "latest" (this node's committed state, may lag) or "linearizable"
    /// (raft mode: confirmed with the leader first, sees every write
    /// acknowledged before the read began).
    #[arg(long, global = true, default_value = "latest")]
    consistency: String,
    #[command(flatten)]
    rpc: RpcArgs,
}

#[derive(Subcommand)]
enum QueryWhat {
    /// The value of a key.
    Key { key: String },
    /// An account's balance and next nonce (public key in hex, or a key file).
    Account { account: String },
}

#[derive(Args)]
struct RawRpcArgs {
    method: String,
    /// Parameters as a JSON object.
    params: Option<String>,
    #[command(flatten)]
    rpc: RpcArgs,
}

/// Keeps glibc's allocator from holding on to freed memory under load.
/// After a large buffer is freed glibc raises its mmap threshold (up to
/// 32 MiB), so later multi-megabyte proposals, blocks and request bodies come
/// from its heap arenas, whose pages mostly stay with the process; with many
/// threads each arena keeps its own. A fixed 1 MiB threshold gives such
/// buffers their own mappings, returned when freed, and four arenas bound the
/// fragmentation (docs/benchmarks.md, "Memory under overload").
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called
    // before the runtime starts its threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Init(a) => init(a),
        Cmd::Testnet(a) => testnet(a),
        Cmd::Start(a) => start(a),
        Cmd::Keys(k) => keys(k),
        Cmd::Tx(a) => client(tx(a)),
        Cmd::Query(a) => client(query(a)),
        Cmd::Status(a) => client(call_print(a, "status".into(), Value::Null)),
        Cmd::Rpc(a) => client(raw_rpc(a)),
        Cmd::Admin(a) => admin(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn client(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
}

fn init(a: InitArgs) -> anyhow::Result<()> {
    let moniker = a.moniker.unwrap_or_else(|| {
        a.home.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "node".into())
    });
    if let Some(genesis) = a.genesis {
        let n = testnet_gen::join(&genesis, &a.peers, a.base_port, &a.home, &moniker)?;
        println!("created {} (joins chain {}, p2p {}, RPC http://{})", a.home.display(), n.chain_id, n.p2p, n.rpc);
        println!("start it with: phalanx start --home {}", a.home.display());
        println!("then add it:   phalanx admin --rpc <a member's RPC> add-learner --home {}", a.home.display());
        return Ok(());
    }
    let spec = TestnetSpec {
        validators: 1,
        chain_id: a.chain_id,
        base_port: 26600,
        accounts: 0,
        timeout_ms_base: 1000,
        protocol: Default::default(),
        app: Default::default(),
    };
    let plan = testnet_gen::plan(&spec)?;
    let v = &plan.validators[0];
    let mut node = NodeConfig::default_for(&moniker);
    node.p2p.listen_addr = v.p2p.to_string();
    node.rpc.listen_addr = v.rpc.to_string();
    Home::new(&a.home).init(&node, &plan.genesis, &v.validator_key, &v.node_key)?;
    println!("created {} (chain {}, RPC {})", a.home.display(), plan.genesis.chain_id, v.rpc);
    println!("start it with: phalanx start --home {}", a.home.display());
    Ok(())
}

fn testnet(a: TestnetArgs) -> anyhow::Result<()> {
    let spec = TestnetSpec {
        validators: a.validators,
        chain_id: a.chain_id,
        base_port: a.base_port,
        accounts: a.accounts,
        timeout_ms_base: a.timeout_ms_base,
        protocol: a.protocol,
        app: a.app,
    };
    let out = testnet_gen::write(&spec, &a.output)?;
    for (i, n) in out.nodes.iter().enumerate() {
        println!("node{i}: home {} p2p {} rpc http://{}", n.home.display(), n.p2p, n.rpc);
    }
    for c in &out.clients {
        println!("client key: {}", c.display());
    }
    Ok(())
}

fn start(a: StartArgs) -> anyhow::Result<()> {
    let loaded = Home::new(&a.home).load()?;
    let format = match a.log_format.as_deref() {
        Some("json") => LogFormat::Json,
        Some("plain") => LogFormat::Plain,
        Some(other) => bail!("--log-format: {other:?} is not plain or json"),
        None => loaded.node.log.format,
    };
    let level = a.log_level.unwrap_or_else(|| loaded.node.log.level.clone());
    let names = if a.faults.is_empty() { loaded.node.faults.kinds.clone() } else { a.faults };
    let faults = FaultPlan {
        faults: phalanx_config::parse_faults(&names).map_err(|e| anyhow::anyhow!("--fault: {e}"))?,
        from_height: a.fault_from_height.unwrap_or(loaded.node.faults.from_height),
    };
    init_logging(format, &level)?;
    tune_allocator();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("phalanx-rt").build()?;
    rt.block_on(async move {
        let node = phalanx_node::node::start(loaded, faults).await?;
        wait_for_signal().await;
        tracing::info!("shutting down");
        node.stop().await;
        anyhow::Ok(())
    })
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) => EnvFilter::try_new(f).context("RUST_LOG")?,
        Err(_) => EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("log level {level:?}: {e}"))?,
    };
    use std::io::IsTerminal as _;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Plain => b.init(),
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn keys(k: KeysCmd) -> anyhow::Result<()> {
    match k {
        KeysCmd::Generate { output } => {
            let key = Keypair::generate();
            keyfile::write_new(&output, &key)?;
            println!("{}", json!({ "public_key": key.public().to_hex(), "file": output.display().to_string() }));
        }
        KeysCmd::Show { key } => {
            let key = keyfile::read(&key)?;
            println!("{}", json!({ "public_key": key.public().to_hex() }));
        }
    }
    Ok(())
}

fn rpc_client(a: &RpcArgs) -> anyhow::Result<RpcClient> {
    RpcClient::new(&a.rpc, Duration::from_secs(60))
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn call_error(e: CallError) -> anyhow::Error {
    match e {
        CallError::Rpc { code, message, .. } => anyhow::anyhow!("the node refused: {message} (code {code})"),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn call_print(a: RpcArgs, method: String, params: Value) -> anyhow::Result<()> {
    let c = rpc_client(&a)?;
    print_json(&c.call(&method, params).await.map_err(call_error)?);
    Ok(())
}

async fn raw_rpc(a: RawRpcArgs) -> anyhow::Result<()> {
    let params = match a.params {
        Some(p) => serde_json::from_str(&p).context("params must be a JSON object")?,
        None => Value::Null,
    };
    call_print(a.rpc, a.method, params).await
}

async fn tx(a: TxArgs) -> anyhow::Result<()> {
    let key_path = a.key_file.clone().context("--key <key file> is required to sign")?;
    let key = keyfile::read(&key_path)?;
    let c = rpc_client(&a.rpc)?;
    let chain_id = match a.chain_id {
        Some(c) => c,
        None => {
            let s = c.call("status", Value::Null).await.map_err(call_error)?;
            s["node_info"]["chain_id"].as_str().context("status has no chain id")?.to_owned()
        }
    };
    let nonce = match a.nonce {
        Some(n) => n,
        None => {
            let r = c.call("query", json!({ "account": key.public().to_hex() })).await.map_err(call_error)?;
            r["nonce"].as_u64().context("query answer has no nonce")?
        }
    };
    let op = match a.op {
        TxOp::Put { key, value } => Op::Put { key: key.into_bytes(), value: value.into_bytes() },
        TxOp::Delete { key } => Op::Delete { key: key.into_bytes() },
        TxOp::Transfer { to, amount } => {
            Op::Transfer { to: to.parse::<PublicKey>().map_err(|e| anyhow::anyhow!("TO: {e}"))?, amount }
        }
    };
    let stx = Transaction { chain_id, sender: key.public(), nonce, op }.sign(&key);
    let b64 = base64::engine::general_purpose::STANDARD.encode(stx.encode());
    if a.print {
        println!("{b64}");
        return Ok(());
    }
    let method = match a.wait.as_str() {
        "commit" => "broadcast_tx_commit",
        "sync" => "broadcast_tx_sync",
        "async" => "broadcast_tx_async",
        other => bail!("--wait: {other:?} is not commit, sync or async"),
    };
    let r = c.call(method, json!({ "tx": b64 })).await.map_err(call_error)?;
    print_json(&r);
    if r["code"].as_u64().is_some_and(|c| c != 0) {
        bail!("the transaction committed but failed: {}", r["log"].as_str().unwrap_or(""));
    }
    Ok(())
}

/// A member named by its validator public key or by its home directory.
fn member_key(member: &str) -> anyhow::Result<String> {
    if let Ok(pk) = member.parse::<PublicKey>() {
        return Ok(pk.to_hex());
    }
    let loaded = Home::new(std::path::Path::new(member))
        .load()
        .map_err(|e| anyhow::anyhow!("MEMBER is neither a public key nor a readable node home: {e}"))?;
    Ok(loaded.validator_key.public().to_hex())
}

fn admin(a: AdminArgs) -> anyhow::Result<()> {
    let (method, params) = match a.op {
        AdminOp::AddLearner { home: Some(home), .. } => {
            let l = Home::new(&home).load()?;
            let params = json!({
                "validator_key": l.validator_key.public().to_hex(),
                "node_key": l.node_key.public().to_hex(),
                "p2p_addr": l.node.p2p.listen_addr,
            });
            ("admin_add_learner", params)
        }
        AdminOp::AddLearner { validator_key: Some(v), node_key: Some(n), p2p_addr: Some(p), .. } => {
            ("admin_add_learner", json!({ "validator_key": v, "node_key": n, "p2p_addr": p }))
        }
        AdminOp::AddLearner { .. } => {
            bail!("add-learner needs --home DIR, or --validator-key, --node-key and --p2p-addr")
        }
        AdminOp::Promote { member } => ("admin_promote", json!({ "validator_key": member_key(&member)? })),
        AdminOp::Remove { member } => ("admin_remove", json!({ "validator_key": member_key(&member)? })),
        AdminOp::Partition { peers } => {
            let keys = peers.iter().map(|p| member_key(p)).collect::<anyhow::Result<Vec<_>>>()?;
            ("admin_partition", json!({ "peers": keys }))
        }
        AdminOp::Heal => ("admin_partition", json!({ "peers": [] })),
    };
    client(call_print(a.rpc, method.into(), params))
}

async fn query(a: QueryArgs) -> anyhow::Result<()> {
    let mut params = match a.what {
        QueryWhat::Key { key } => json!({ "key": key }),
        QueryWhat::Account { account } => {
            let pk = match account.parse::<PublicKey>() {
                Ok(pk) => pk,
                Err(_) => keyfile::read(std::path::Path::new(&account))
                    .map_err(|e| anyhow::anyhow!("ACCOUNT is neither a public key nor a readable key file: {e}"))?
                    .public(),
            };
            json!({ "account": pk.to_hex() })
        }
    };
    params["consistency"] = json!(a.consistency);
    call_print(a.rpc, "query".into(), params).await
}
