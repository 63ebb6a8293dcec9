//! Generating node homes for a local testnet.
//!
//! `phalanx testnet` and `phalanx init` both go through [`plan`]: fresh keys
//! for every validator, one genesis listing them all with equal power, a
//! funded account per client key, and loopback ports that are free now.
//! Ports are either taken from a base upwards, skipping any that are in use,
//! or (base 0) chosen by the operating system.

use phalanx_config::{
    AppGenesis, AppKind, ConsensusParams, Genesis, GenesisAccount, GenesisValidator, Home, NodeConfig, Protocol,
};
use phalanx_crypto::{Keypair, keyfile};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// Balance of each generated client account.
pub const CLIENT_BALANCE: u64 = 1_000_000_000;

/// What to generate.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    pub validators: usize,
    pub chain_id: String,
    /// First port to try; 0 = let the OS choose.
    pub base_port: u16,
    pub accounts: usize,
    pub timeout_ms_base: u64,
    /// The consensus protocol written into genesis.
    pub protocol: Protocol,
    /// The application written into genesis.
    pub app: AppKind,
}

/// One planned validator.
pub struct PlannedValidator {
    pub name: String,
    pub validator_key: Keypair,
    pub node_key: Keypair,
    pub p2p: SocketAddr,
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
}

/// A testnet before it is written.
pub struct Plan {
    pub genesis: Genesis,
    pub validators: Vec<PlannedValidator>,
    pub clients: Vec<Keypair>,
}

/// A written node home.
pub struct WrittenNode {
    pub home: PathBuf,
    pub p2p: SocketAddr,
    pub rpc: SocketAddr,
}

/// A written testnet.
pub struct Written {
    pub nodes: Vec<WrittenNode>,
    pub clients: Vec<PathBuf>,
}

/// Picks `n` loopback ports that are free now. With `base == 0` the OS
/// assigns them; otherwise they are the first free ports from `base` up.
pub fn free_ports(n: usize, base: u16) -> anyhow::Result<Vec<u16>> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut next = base as u32;
    while ports.len() < n {
        let want = if base == 0 { 0 } else { next };
        if want > u16::MAX as u32 {
            anyhow::bail!("no {n} free ports at or above {base}");
        }
        next += 1;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", want as u16)) {
            ports.push(l.local_addr()?.port());
            held.push(l);
        }
    }
    Ok(ports)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Plans a testnet: keys, ports and genesis.
pub fn plan(spec: &TestnetSpec) -> anyhow::Result<Plan> {
    if spec.validators == 0 {
        anyhow::bail!("a testnet needs at least one validator");
    }
    let ports = free_ports(spec.validators * 3, spec.base_port)?;
    let validators: Vec<PlannedValidator> = (0..spec.validators)
        .map(|i| {
            let addr = |k: usize| SocketAddr::from(([127, 0, 0, 1], ports[3 * i + k]));
            PlannedValidator {
                name: format!("node{i}"),
                validator_key: Keypair::generate(),
                node_key: Keypair::generate(),
                p2p: addr(0),
                rpc: addr(1),
                metrics: addr(2),
            }
        })
        .collect();
    let clients: Vec<Keypair> = (0..spec.accounts).map(|_| Keypair::generate()).collect();
    let genesis = Genesis {
        chain_id: spec.chain_id.clone(),
        genesis_time: now_rfc3339(),
        consensus: ConsensusParams {
            protocol: spec.protocol,
            timeout_ms_base: spec.timeout_ms_base,
            empty_block_interval_ms: spec.timeout_ms_base / 4,
            ..ConsensusParams::default()
        },
        validators: validators
            .iter()
            .map(|v| GenesisValidator {
                name: v.name.clone(),
                pub_key: v.validator_key.public(),
                power: 1,
                node_key: v.node_key.public(),
            })
            .collect(),
        app: AppGenesis {
            kind: spec.app,
            accounts: clients.iter().map(|c| GenesisAccount { pub_key: c.public(), balance: CLIENT_BALANCE }).collect(),
        },
    };
    genesis.validate()?;
    Ok(Plan { genesis, validators, clients })
}

/// A home written for a node joining an existing chain.
pub struct Joined {
    pub chain_id: String,
    pub p2p: SocketAddr,
    pub rpc: SocketAddr,
}

/// Writes a home at `home` for a node that joins the chain of `genesis_path`
/// later (a raft learner): fresh keys, that genesis unchanged (the node is
/// not in it), free loopback ports from `base_port` (0: any), and `peers`
/// to connect to. Refuses an existing home.
pub fn join(genesis_path: &Path, peers: &[String], base_port: u16, home: &Path, name: &str) -> anyhow::Result<Joined> {
    let genesis = Genesis::load(genesis_path)?;
    for p in peers {
        p.parse::<SocketAddr>().map_err(|_| anyhow::anyhow!("--peers: {p:?} is not an IP:port address"))?;
    }
    if home.join("config").exists() {
        anyhow::bail!("{} already holds a node home", home.display());
    }
    let ports = free_ports(3, base_port)?;
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let (p2p, rpc, metrics) = (loopback(ports[0]), loopback(ports[1]), loopback(ports[2]));
    let mut cfg = NodeConfig::default_for(name);
    cfg.p2p.listen_addr = p2p.to_string();
    cfg.p2p.persistent_peers = peers.to_vec();
    cfg.rpc.listen_addr = rpc.to_string();
    cfg.rpc.admin = true;
    cfg.metrics.listen_addr = metrics.to_string();
    Home::new(home).init(&cfg, &genesis, &Keypair::generate(), &Keypair::generate())?;
    Ok(Joined { chain_id: genesis.chain_id, p2p, rpc })
}

/// Writes a planned testnet under `out`: `node<i>/` homes and
/// `clients/client<j>.json` keys. Refuses to overwrite an existing testnet.
pub fn write(spec: &TestnetSpec, out: &Path) -> anyhow::Result<Written> {
    if out.join("node0").exists() {
        anyhow::bail!("{} already holds a testnet; remove it first (scripts/testnet.sh reset)", out.display());
    }
    let plan = plan(spec)?;
    let mut nodes = Vec::new();
    for v in &plan.validators {
        let mut cfg = NodeConfig::default_for(&v.name);
        cfg.p2p.listen_addr = v.p2p.to_string();
        cfg.p2p.persistent_peers =
            plan.validators.iter().filter(|o| o.name != v.name).map(|o| o.p2p.to_string()).collect();
        cfg.rpc.listen_addr = v.rpc.to_string();
        // A local testnet serves RPC on loopback only: its operator may
        // change membership (`phalanx admin`).
        cfg.rpc.admin = true;
        cfg.metrics.listen_addr = v.metrics.to_string();
        let home = out.join(&v.name);
        Home::new(&home).init(&cfg, &plan.genesis, &v.validator_key, &v.node_key)?;
        nodes.push(WrittenNode { home, p2p: v.p2p, rpc: v.rpc });
    }
    let dir = out.join("clients");
    std::fs::create_dir_all(&dir)?;
    let mut clients = Vec::new();
    for (j, c) in plan.clients.iter().enumerate() {
        let p = dir.join(format!("client{j}.json"));
        keyfile::write_new(&p, c)?;
        clients.push(p);
    }
    Ok(Written { nodes, clients })
}
