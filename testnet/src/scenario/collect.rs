//! Reads the final state of the honest nodes over RPC: their chains, the
//! genesis accounts' balances, the evidence they hold and their status.

use super::live::{QUICK, Shared};
use base64::Engine as _;
use phalanx_crypto::Hash;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Timeout of each read at the end (blocks can be large).
const READ: Duration = Duration::from_secs(10);

/// One committed block as the checks need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockInfo {
    pub height: u64,
    /// Block id (hex).
    pub id: String,
    /// The application hash after this block, if the node has it.
    pub app_hash: Option<String>,
    /// Hashes (hex) of its transactions, in order.
    pub txs: Vec<String>,
    pub time_ms: u64,
}

/// A node's committed chain from its base height to its tip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeChain {
    pub node: usize,
    /// Lowest height held (above 1 after a Raft state snapshot).
    pub base: u64,
    /// Highest committed height when read.
    pub tip: u64,
    /// `base..=tip` in order (fewer if a read failed: see `error`).
    pub blocks: Vec<BlockInfo>,
    /// Why the chain could not be read in full.
    pub error: Option<String>,
}

impl NodeChain {
    /// The block at `height`, if held.
    pub fn at(&self, height: u64) -> Option<&BlockInfo> {
        let first = self.blocks.first()?.height;
        self.blocks.get(height.checked_sub(first)? as usize).filter(|b| b.height == height)
    }
}

/// A piece of evidence as the `evidence` RPC lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceItem {
    pub kind: String,
    /// Validator key (hex).
    pub culprit: String,
    pub round: Option<u64>,
    /// Height of the block that recorded it (`None`: only seen locally).
    pub height: Option<u64>,
}

/// Reads node `i`'s chain.
pub async fn chain(shared: Arc<Shared>, i: usize) -> NodeChain {
    let mut c = NodeChain { node: i, ..NodeChain::default() };
    let status = match shared.call(i, "status", Value::Null, READ).await {
        Ok(s) => s,
        Err(e) => {
            c.error = Some(format!("status: {e}"));
            return c;
        }
    };
    c.tip = status["sync_info"]["latest_block_height"].as_u64().unwrap_or(0);
    c.base = status["sync_info"]["base_height"].as_u64().unwrap_or(0).max(1);
    for h in c.base..=c.tip {
        match shared.call(i, "block", json!({ "height": h }), READ).await {
            Ok(b) => c.blocks.push(block_info(h, &b)),
            Err(e) => {
                c.error = Some(format!("block {h}: {e}"));
                break;
            }
        }
    }
    c
}

/// The parts of a `block` answer the checks use.
pub fn block_info(height: u64, b: &Value) -> BlockInfo {
    let txs = b["txs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|t| {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(t).unwrap_or_default();
                    Hash::digest(&bytes).to_hex()
                })
                .collect()
        })
        .unwrap_or_default();
    BlockInfo {
        height,
        id: b["block_id"].as_str().unwrap_or_default().to_owned(),
        app_hash: b["result_app_hash"].as_str().map(str::to_owned),
        txs,
        time_ms: b["header"]["time_ms"].as_u64().unwrap_or(0),
    }
}

/// Every honest node's chain, read concurrently.
pub async fn chains(shared: &Arc<Shared>, honest: &[usize]) -> Vec<NodeChain> {
    let mut set = tokio::task::JoinSet::new();
    for &i in honest {
        set.spawn(chain(shared.clone(), i));
    }
    let mut out = Vec::new();
    while let Some(c) = set.join_next().await {
        out.push(c.expect("a chain reader panicked"));
    }
    out.sort_by_key(|c| c.node);
    out
}

/// The funded accounts of genesis: (public key hex, balance).
pub fn genesis_accounts(genesis_json: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let text = std::fs::read_to_string(genesis_json)?;
    let g: Value = serde_json::from_str(&text)?;
    let mut out = Vec::new();
    for a in g["app"]["accounts"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let key = a["pub_key"].as_str().ok_or_else(|| anyhow::anyhow!("genesis: an account has no pub_key"))?;
        let balance = a["balance"].as_u64().ok_or_else(|| anyhow::anyhow!("genesis: an account has no balance"))?;
        out.push((key.to_owned(), balance));
    }
    Ok(out)
}

/// Node `i`'s balance of each account, in order.
pub async fn balances(shared: &Shared, i: usize, accounts: &[(String, u64)]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for (key, _) in accounts {
        let r = shared.call(i, "query", json!({ "account": key }), QUICK).await;
        let r = r.map_err(|e| format!("account {}: {e}", short(key)))?;
        out.push(r["balance"].as_u64().ok_or_else(|| format!("account {}: no balance in {r}", short(key)))?);
    }
    Ok(out)
}

/// The evidence one node holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeldEvidence {
    /// Items the chain recorded, by culprit key (`status`:
    /// `evidence.by_culprit`, counted from the state, so complete).
    pub recorded_by_culprit: BTreeMap<String, u64>,
    /// The latest recorded items (up to [`EVIDENCE_LIMIT`]), then those
    /// this node detected that no block recorded (height `None`).
    pub items: Vec<EvidenceItem>,
}

/// Most recorded items read back per node.
pub const EVIDENCE_LIMIT: u64 = 1000;

/// The evidence node `i` holds.
pub async fn evidence(shared: &Shared, i: usize) -> Result<HeldEvidence, String> {
    let status = shared.call(i, "status", Value::Null, READ).await.map_err(|e| format!("status: {e}"))?;
    let by = status["evidence"]["by_culprit"].as_object().ok_or("status has no evidence.by_culprit")?;
    let recorded_by_culprit = by.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
    let params = json!({ "limit": EVIDENCE_LIMIT });
    let r = shared.call(i, "evidence", params, READ).await.map_err(|e| format!("evidence: {e}"))?;
    let list = |field: &str| r[field].as_array().cloned().unwrap_or_default();
    let items = list("evidence")
        .iter()
        .chain(list("detected").iter())
        .map(|e| EvidenceItem {
            kind: e["kind"].as_str().unwrap_or_default().to_owned(),
            culprit: e["culprit"].as_str().unwrap_or_default().to_owned(),
            round: e["round"].as_u64(),
            height: e["height"].as_u64(),
        })
        .collect();
    Ok(HeldEvidence { recorded_by_culprit, items })
}

/// How many messages node `i` refused from each connected validator
/// (`net_info`, by validator name).
pub async fn invalid_messages(shared: &Shared, i: usize) -> Option<BTreeMap<String, u64>> {
    let r = shared.call(i, "net_info", Value::Null, QUICK).await.ok()?;
    let peers = r["peers"].as_array()?;
    Some(
        peers
            .iter()
            .filter_map(|p| Some((p["validator"].as_str()?.to_owned(), p["invalid_messages"].as_u64()?)))
            .collect(),
    )
}

/// Distinct transactions in the honest chains, and how many of them are
/// in more than one block (a copy proposed again executes with code 4 and
/// changes nothing).
pub fn tx_counts(chains: &[NodeChain]) -> (usize, usize) {
    let mut heights: HashMap<&str, BTreeSet<u64>> = HashMap::new();
    for b in chains.iter().flat_map(|c| &c.blocks) {
        for t in &b.txs {
            heights.entry(t.as_str()).or_default().insert(b.height);
        }
    }
    (heights.len(), heights.values().filter(|h| h.len() > 1).count())
}

/// The first 8 hex digits of a key or hash.
pub fn short(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}
