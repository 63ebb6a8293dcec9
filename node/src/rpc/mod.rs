//! JSON-RPC 2.0 over HTTP and WebSocket (one port, jsonrpsee).
//!
//! Method names follow CometBFT where the meaning matches: `status`,
//! `health`, `broadcast_tx_async`, `broadcast_tx_sync`,
//! `broadcast_tx_commit`, `broadcast_txs` (many transactions in one call,
//! one answer each; not a CometBFT method), `tx`, `block`, `blockchain`, `query`, `validators`,
//! `net_info`, `evidence`, and (WebSocket) `subscribe` / `unsubscribe` for committed
//! blocks. Parameters may be given by name or by position.
//!
//! Every failure is a JSON-RPC error with a stable code (see [`codes`]) and a
//! message that says what was wrong. A node that started from a state
//! snapshot holds no block below the snapshot's height (its base height,
//! shown by `status`); `block` and `blockchain` asked for one say so. Refused transactions change nothing and
//! are counted by reason in the metrics. Writes are acknowledged as
//! committed only after the block is durable (`broadcast_tx_commit`).

pub mod client;

use crate::app::{Application, SignedTx, account, tx::describe, tx::show_bytes, value};
use crate::committer::{BlockEvent, ChainTip, Waiters};
use crate::driver::{DriverEvent, EngineRequests};
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::store::ChainStore;
use base64::Engine as _;
use bytes::Bytes;
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, Server, ServerConfig, ServerHandle, SubscriptionMessage};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use parking_lot::RwLock;
use phalanx_config::{Genesis, Protocol};
use phalanx_consensus::engine::EngineStatus;
use phalanx_consensus::engine::Input;
use phalanx_consensus::raft::{MemberAddr, MembershipChange};
use phalanx_consensus::types::{Block, Evidence};
use phalanx_crypto::{Hash, PublicKey};
use phalanx_mempool::{Rejection, SharedMempool};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Stable error codes, beyond JSON-RPC's own (-32700 parse error, -32600
/// invalid request, -32601 method not found, -32602 invalid params).
pub mod codes {
    /// A refused transaction is `TX_REJECTED + ` the mempool's reason code:
    /// 1001 malformed, 1002 invalid signature, 1003 wrong chain id, 1004 nonce
    /// already used (replay), 1005 too large, 1006 mempool full, 1007 already
    /// in the mempool, 1008 nonce too far ahead, 1009 nonce already pending,
    /// 1010 already committed (recently).
    pub const TX_REJECTED: i32 = 1000;
    /// The transaction, block or key does not exist (or, for a block below
    /// the node's base height, is not held here; the error's data then
    /// carries `base_height`).
    pub const NOT_FOUND: i32 = 2001;
    /// `broadcast_tx_commit` gave up waiting (the transaction may still commit).
    pub const COMMIT_TIMEOUT: i32 = 2002;
    /// The node cannot answer now (for example, shutting down).
    pub const UNAVAILABLE: i32 = 2003;
    /// The method is not served by this node (`admin_*` without
    /// `rpc.admin`, or not offered by this consensus protocol).
    pub const FORBIDDEN: i32 = 2004;
    /// The engine refused a membership change (the message says why).
    pub const CHANGE_REFUSED: i32 = 2005;
    /// JSON-RPC's invalid params.
    pub const INVALID_PARAMS: i32 = -32602;
}

/// Most blocks `blockchain` returns at once.
pub const BLOCKCHAIN_MAX: u64 = 20;

/// What the RPC handlers share.
pub struct RpcContext {
    pub moniker: String,
    pub genesis: Genesis,
    pub validator_key: PublicKey,
    pub store: Arc<dyn ChainStore>,
    pub app: Arc<dyn Application>,
    pub mempool: SharedMempool,
    pub gossip: crate::gossip::GossipQueue,
    pub waiters: Arc<Waiters>,
    pub events: broadcast::Sender<Arc<BlockEvent>>,
    pub tip: Arc<RwLock<ChainTip>>,
    pub engine: Arc<RwLock<EngineStatus>>,
    pub net: NetworkHandle,
    pub metrics: Arc<Metrics>,
    pub commit_timeout: Duration,
    pub faults: Vec<String>,
    pub rpc_addr: SocketAddr,
    pub p2p_addr: SocketAddr,
    /// Linearizable reads waiting for the engine.
    pub reads: Arc<EngineRequests>,
    /// Membership changes waiting for the engine.
    pub changes: Arc<EngineRequests>,
    /// Whether the `admin_*` methods are served (`rpc.admin`).
    pub admin: bool,
    /// Validators' network identities (for `admin_partition`).
    pub peers: crate::driver::PeerMap,
    /// The driver's internal queue (read requests go in here).
    pub driver: crossbeam_channel::Sender<DriverEvent>,
}

type RpcResult = Result<Value, ErrorObjectOwned>;

fn error(code: i32, message: impl Into<String>, data: Option<Value>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), data)
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(codes::INVALID_PARAMS, message, None)
}

fn unavailable(e: impl std::fmt::Display) -> ErrorObjectOwned {
    error(codes::UNAVAILABLE, format!("storage error: {e}"), None)
}

/// A block at `height`, below `base`, the lowest height this node holds a
/// block for (it started from a state snapshot there).
fn below_base(height: u64, base: u64) -> ErrorObjectOwned {
    error(
        codes::NOT_FOUND,
        format!(
            "block {height} is below this node's oldest block {base}: it started from a state snapshot at height {base}"
        ),
        Some(json!({ "base_height": base })),
    )
}

/// The heights `blockchain` lists, lowest and highest, given the request,
/// the committed tip and the base height: at most [`BLOCKCHAIN_MAX`] ending
/// at `max_height` (default and cap: the tip). A range reaching below the
/// base is an error if the caller asked for it (`max_height`, or a
/// `min_height` that was not raised to fit the window), and cut at the base
/// if it was only the default window.
fn blockchain_range(
    min_height: Option<u64>,
    max_height: Option<u64>,
    tip: u64,
    base: u64,
) -> Result<(u64, u64), ErrorObjectOwned> {
    let max = max_height.unwrap_or(tip).min(tip);
    if max < base {
        return Err(below_base(max, base));
    }
    let min = min_height.unwrap_or(0).max(max.saturating_sub(BLOCKCHAIN_MAX - 1));
    let min = match min_height {
        Some(_) if min < base => return Err(below_base(min, base)),
        _ => min.max(base),
    };
    if min > max {
        return Err(invalid_params(format!("min_height {min} is above max_height {max}")));
    }
    Ok((min, max))
}

fn rejected(r: &Rejection) -> ErrorObjectOwned {
    error(codes::TX_REJECTED + r.code() as i32, r.to_string(), Some(json!({ "reason": r.kind() })))
}

fn parse<T: for<'de> Deserialize<'de>>(params: &Params<'_>, shape: &str) -> Result<T, ErrorObjectOwned> {
    params.parse::<T>().map_err(|e| {
        let detail = e.data().map(|d| d.get().trim_matches('"').to_owned()).unwrap_or_else(|| e.message().to_owned());
        invalid_params(format!("invalid params: {detail} (expected {shape})"))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxParam {
    tx: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashParam {
    hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeightParam {
    height: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeParam {
    min_height: Option<u64>,
    max_height: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryParam {
    key: Option<String>,
    key_hex: Option<String>,
    account: Option<String>,
    consistency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLearnerParam {
    validator_key: String,
    node_key: String,
    p2p_addr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberParam {
    validator_key: String,
}

const ADD_LEARNER_SHAPE: &str = r#"{"validator_key": "<64 hex>", "node_key": "<64 hex>", "p2p_addr": "IP:port"}"#;
const MEMBER_SHAPE: &str = r#"{"validator_key": "<64 hex>"}"#;

/// Parses an `admin_*` call into the change it asks for.
fn parse_change(method: &str, params: &Params<'_>) -> Result<MembershipChange, ErrorObjectOwned> {
    let key = |field: &str, v: &str| -> Result<PublicKey, ErrorObjectOwned> {
        v.trim().parse().map_err(|e| invalid_params(format!("{field}: {e}")))
    };
    match method {
        "admin_add_learner" => {
            // The address is checked with the rest of the change, by the engine.
            let p: AddLearnerParam = parse(params, ADD_LEARNER_SHAPE)?;
            Ok(MembershipChange::AddLearner {
                id: key("validator_key", &p.validator_key)?,
                addr: MemberAddr { node_key: key("node_key", &p.node_key)?, p2p_addr: p.p2p_addr },
            })
        }
        "admin_promote" => {
            let p: MemberParam = parse(params, MEMBER_SHAPE)?;
            Ok(MembershipChange::Promote { id: key("validator_key", &p.validator_key)? })
        }
        _ => {
            let p: MemberParam = parse(params, MEMBER_SHAPE)?;
            Ok(MembershipChange::Remove { id: key("validator_key", &p.validator_key)? })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionParam {
    peers: Vec<String>,
}

/// `admin_partition`: from now on this node drops all traffic to and from
/// the validators named (consensus keys, hex); `[]` heals.
fn partition(c: &RpcContext, params: &Params<'_>) -> RpcResult {
    if !c.admin {
        return Err(error(
            codes::FORBIDDEN,
            "admin_partition is disabled on this node: set rpc.admin = true in node.toml to serve admin methods",
            None,
        ));
    }
    let p: PartitionParam = parse(params, r#"{"peers": ["<validator key hex>", ...]} ([] heals)"#)?;
    let mut blocked = std::collections::HashSet::new();
    for k in &p.peers {
        let key: PublicKey = k.trim().parse().map_err(|e| invalid_params(format!("peers: {k:?}: {e}")))?;
        let peer = c
            .peers
            .peer(&key)
            .ok_or_else(|| invalid_params(format!("peers: {} is not a known validator", key.short())))?;
        blocked.insert(peer);
    }
    let n = blocked.len();
    c.net.partition(blocked);
    Ok(json!({ "partitioned_from": p.peers, "peers": n }))
}

/// `admin_add_learner`, `admin_promote`, `admin_remove`: hands the change
/// to the engine (a follower forwards it to the leader) and answers once it
/// is complete (the final configuration committed) or refused.
async fn change_membership(method: &str, params: &Params<'_>, c: Arc<RpcContext>) -> RpcResult {
    if !c.admin {
        return Err(error(
            codes::FORBIDDEN,
            format!("{method} is disabled on this node: set rpc.admin = true in node.toml to serve admin methods"),
            None,
        ));
    }
    if c.genesis.consensus.protocol != Protocol::Raft {
        return Err(error(
            codes::FORBIDDEN,
            "membership changes are offered in raft mode only; a hotstuff validator set is fixed in genesis",
            None,
        ));
    }
    let change = parse_change(method, params)?;
    if let MembershipChange::AddLearner { id, addr } = &change {
        // One network identity per member: a reused node key would make the
        // other member's messages count as the new one's.
        let membership = c.engine.read().membership.clone().unwrap_or_default();
        let genesis = c.genesis.validators.iter().map(|v| (v.pub_key, v.node_key));
        let added = membership.directory.iter().map(|(v, a)| (*v, a.node_key));
        if let Some((other, _)) = genesis.chain(added).find(|(v, k)| *k == addr.node_key && v != id) {
            return Err(invalid_params(format!(
                "node_key {} is already the network key of member {}",
                addr.node_key.short(),
                other.short()
            )));
        }
    }
    let (id, answer) = c.changes.register();
    if c.driver.send(DriverEvent::Input(Input::ChangeMembership { id, change: change.clone() })).is_err() {
        c.changes.forget(id);
        return Err(error(codes::UNAVAILABLE, "the node is shutting down", None));
    }
    match tokio::time::timeout(c.commit_timeout, answer).await {
        Ok(Ok(Ok(index))) => {
            let e = c.engine.read().clone();
            let m = e.membership.unwrap_or_default();
            Ok(json!({
                "index": index,
                "member": change.member().to_hex(),
                "voters": hexes(&m.voters),
                "learners": hexes(&m.learners),
            }))
        }
        Ok(Ok(Err(reason))) => Err(error(codes::CHANGE_REFUSED, format!("membership change refused: {reason}"), None)),
        Ok(Err(_)) => Err(error(codes::UNAVAILABLE, "the node is shutting down", None)),
        Err(_) => {
            c.changes.forget(id);
            let ms = c.commit_timeout.as_millis();
            Err(error(
                codes::UNAVAILABLE,
                format!("the change did not complete within {ms} ms (no quorum?); check `status` before retrying"),
                None,
            ))
        }
    }
}

fn decode_tx(params: &Params<'_>) -> Result<Bytes, ErrorObjectOwned> {
    let p: TxParam = parse(params, r#"{"tx": "<base64 of a signed transaction>"}"#)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(p.tx.trim())
        .map_err(|e| invalid_params(format!("tx: not valid base64: {e}")))?;
    Ok(Bytes::from(bytes))
}

/// The answer for a transaction taken into the mempool (or, by
/// `broadcast_tx_async`, queued for it).
fn accepted(hash: &Hash) -> Value {
    json!({ "hash": hash.to_hex(), "code": 0, "log": "" })
}

/// Most transactions in one `broadcast_txs` call.
pub const BROADCAST_TXS_MAX: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxsParam {
    txs: Vec<String>,
}

fn decode_txs(params: &Params<'_>) -> Result<Vec<Bytes>, ErrorObjectOwned> {
    let p: TxsParam = parse(params, r#"{"txs": ["<base64 of a transaction>", ...]}"#)?;
    if p.txs.len() > BROADCAST_TXS_MAX {
        return Err(invalid_params(format!(
            "txs: {} transactions in one call; at most {BROADCAST_TXS_MAX}",
            p.txs.len()
        )));
    }
    p.txs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .map(Bytes::from)
                .map_err(|e| invalid_params(format!("txs[{i}]: not valid base64: {e}")))
        })
        .collect()
}

/// `broadcast_txs`: each transaction's answer, in order: `{hash, code: 0,
/// log: ""}` when admitted, else the code and message `broadcast_tx_sync`
/// would have returned as its error, and the reason's name.
fn broadcast_many(p: &Params<'_>, c: &RpcContext) -> RpcResult {
    let txs = decode_txs(p)?;
    let answers: Vec<Value> = c
        .submit_many(txs.clone())
        .into_iter()
        .zip(&txs)
        .map(|(outcome, tx)| match outcome {
            Ok(hash) => accepted(&hash),
            Err(r) => json!({
                "hash": Hash::digest(tx).to_hex(),
                "code": codes::TX_REJECTED + r.code() as i32,
                "log": r.to_string(),
                "reason": r.kind(),
            }),
        })
        .collect();
    Ok(Value::Array(answers))
}

/// Keys in hex, in order.
fn hexes(keys: &std::collections::BTreeSet<PublicKey>) -> Vec<String> {
    keys.iter().map(|k| k.to_hex()).collect()
}

fn parse_hash(s: &str) -> Result<Hash, ErrorObjectOwned> {
    s.parse().map_err(|e| invalid_params(format!("hash: {e}")))
}

impl RpcContext {
    /// Admits a transaction to the mempool and queues it for gossip.
    fn submit(&self, tx: Bytes) -> Result<Hash, ErrorObjectOwned> {
        let outcome = self.submit_many(vec![tx]).pop().expect("one answer per transaction");
        outcome.map_err(|r| rejected(&r))
    }

    /// Admits transactions to the mempool together (one lock for the batch,
    /// signatures verified in batches) and queues the admitted ones for
    /// gossip; answer `i` is for `txs[i]`. Refusals are counted by reason.
    fn submit_many(&self, txs: Vec<Bytes>) -> Vec<Result<Hash, Rejection>> {
        let checker = crate::app::checker(&*self.app, self.store.as_state());
        let outcomes = self.mempool.add_batch_from(txs.clone(), &checker, self.gossip.origin());
        for r in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            self.metrics.tx_rejected(r.kind());
        }
        let admitted = txs.into_iter().zip(&outcomes).filter_map(|(tx, o)| o.as_ref().ok().map(|h| (*h, tx)));
        let unsent = self.gossip.send(&self.mempool, admitted);
        if unsent > 0 {
            tracing::debug!(unsent, "gossip queue full; peers will not hear of some transactions from us");
        }
        if outcomes.iter().any(Result::is_ok) {
            self.metrics.mempool(self.mempool.len(), self.mempool.bytes());
        }
        outcomes
    }

    fn status(&self) -> RpcResult {
        let tip = self.tip.read().clone();
        let e = self.engine.read().clone();
        let lag_ms = crate::driver::now_ms().saturating_sub(tip.time_ms);
        let mut is_validator = self.genesis.validator_index(&self.validator_key).is_some();
        let consensus = if self.genesis.consensus.protocol == Protocol::Raft {
            let m = e.membership.clone().unwrap_or_default();
            is_validator = m.is_voter(&self.validator_key);
            let member = if is_validator {
                "voter"
            } else if m.learners.contains(&self.validator_key) {
                "learner"
            } else {
                "none"
            };
            json!({
                "term": e.round,
                "role": e.role,
                "leader": e.leader.map(|l| l.to_hex()),
                "commit_index": e.committed_height,
                "applied_index": e.executed_height,
                "member": member,
                "voters": hexes(&m.voters),
                "outgoing_voters": hexes(&m.outgoing),
                "learners": hexes(&m.learners),
            })
        } else {
            json!({
                "round": e.round,
                "committed_height": e.committed_height,
                "executed_height": e.executed_height,
                "high_qc_round": e.high_qc_round,
                "leader": e.leader.map(|l| l.to_hex()),
                "role": e.role,
                "excluded_leaders": e.excluded_leaders.iter().map(|k| k.to_hex()).collect::<Vec<_>>(),
            })
        };
        Ok(json!({
            "node_info": {
                "moniker": self.moniker,
                "chain_id": self.genesis.chain_id,
                "version": env!("CARGO_PKG_VERSION"),
                "protocol": self.genesis.consensus.protocol.to_string(),
                "app": self.genesis.app.kind.to_string(),
                "peer_id": self.net.local_peer_id().to_string(),
                "p2p_address": self.p2p_addr.to_string(),
                "rpc_address": self.rpc_addr.to_string(),
                "validator": self.validator_key.to_hex(),
                "is_validator": is_validator,
                "faults": self.faults,
            },
            "sync_info": {
                "latest_block_height": tip.height,
                "latest_block_hash": tip.block_id.to_hex(),
                "latest_app_hash": tip.app_hash.to_hex(),
                "latest_block_time": humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(tip.time_ms)).to_string(),
                "catching_up": lag_ms > 30_000 && tip.height > 0,
                "base_height": self.store.base_height(),
            },
            "consensus": consensus,
            "mempool": { "size": self.mempool.len(), "bytes": self.mempool.bytes() },
            "evidence": self.evidence_summary(),
        }))
    }

    fn tx(&self, params: &Params<'_>) -> RpcResult {
        let p: HashParam = parse(params, r#"{"hash": "<64 hex>"}"#)?;
        let hash = parse_hash(&p.hash)?;
        let Some(rec) = self.store.tx(&hash).map_err(unavailable)? else {
            let in_mempool = self.mempool.contains(&hash);
            let why = if in_mempool { "is in the mempool, not yet committed" } else { "is not committed here" };
            let data = json!({ "in_mempool": in_mempool });
            return Err(error(codes::NOT_FOUND, format!("transaction {hash} {why}"), Some(data)));
        };
        let block = self.store.block_at(rec.height).map_err(unavailable)?;
        let bytes = block.as_ref().and_then(|b| b.txs.get(rec.index as usize)).cloned().unwrap_or_default();
        let decoded = SignedTx::decode(&bytes).ok().map(|s| describe(&s));
        Ok(json!({
            "hash": hash.to_hex(),
            "height": rec.height,
            "index": rec.index,
            "code": rec.code,
            "log": rec.log,
            "tx": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "decoded": decoded,
        }))
    }

    fn block(&self, params: &Params<'_>) -> RpcResult {
        let p: Option<HeightParam> = parse(params, r#"{"height": <number>} or nothing for the latest"#)?;
        let tip = self.tip.read().height;
        let height = p.and_then(|p| p.height).unwrap_or(tip);
        let base = self.store.base_height();
        if height < base {
            return Err(below_base(height, base));
        }
        let block = self.store.block_at(height).map_err(unavailable)?.ok_or_else(|| {
            error(codes::NOT_FOUND, format!("no committed block at height {height} (latest is {tip})"), None)
        })?;
        let cert = self.store.cert_at(height).map_err(unavailable)?;
        let mut v = block_json(&block, cert.map(|c| serde_json::to_value(c).unwrap_or(Value::Null)));
        let after = self.store.app_hash_at(height).map_err(unavailable)?;
        v["result_app_hash"] = json!(after.map(|h| h.to_hex()));
        Ok(v)
    }

    fn blockchain(&self, params: &Params<'_>) -> RpcResult {
        let p: Option<RangeParam> = parse(params, r#"{"min_height": <number>, "max_height": <number>}"#)?;
        let tip = self.tip.read().height;
        let (min, max) = p.map_or((None, None), |p| (p.min_height, p.max_height));
        let (min, max) = blockchain_range(min, max, tip, self.store.base_height())?;
        let mut blocks = Vec::new();
        for h in (min..=max).rev() {
            if let Some(b) = self.store.block_at(h).map_err(unavailable)? {
                let hd = &b.header;
                blocks.push(json!({
                    "height": hd.height, "block_id": b.id().to_hex(), "round": hd.round, "time_ms": hd.time_ms,
                    "num_txs": b.txs.len(), "proposer": hd.proposer.to_hex(), "app_hash": hd.app_hash.to_hex(),
                }));
            }
        }
        Ok(json!({ "last_height": tip, "blocks": blocks }))
    }

    /// Reads the committed state as of now.
    fn read_state(&self, p: &QueryParam, consistency: &str) -> RpcResult {
        let height = self.tip.read().height;
        let state = self.store.as_state();
        let key_json = |k: &[u8], v: Option<Vec<u8>>| {
            json!({
                "height": height,
                "consistency": consistency,
                "key": show_bytes(k),
                "exists": v.is_some(),
                "value": v.as_deref().map(show_bytes),
            })
        };
        match (&p.key, &p.key_hex, &p.account) {
            (Some(k), None, None) => Ok(key_json(k.as_bytes(), value(state, k.as_bytes()))),
            (None, Some(h), None) => {
                let k = hex::decode(h.trim()).map_err(|e| invalid_params(format!("key_hex: not hex: {e}")))?;
                Ok(key_json(&k, value(state, &k)))
            }
            (None, None, Some(a)) => {
                let pk: PublicKey = a.parse().map_err(|e| invalid_params(format!("account: {e}")))?;
                let acct = account(state, &pk);
                Ok(json!({
                    "height": height, "consistency": consistency, "account": pk.to_hex(),
                    "balance": acct.balance, "nonce": acct.nonce,
                }))
            }
            _ => Err(invalid_params(format!("give exactly one of key, key_hex, account: {QUERY_SHAPE}"))),
        }
    }

    /// Asks the engine for a read index (Raft's ReadIndex), then waits until
    /// this node has applied it.
    async fn linearizable_point(&self) -> Result<u64, ErrorObjectOwned> {
        let deadline = tokio::time::Instant::now() + self.commit_timeout;
        let (id, answer) = self.reads.register();
        if self.driver.send(DriverEvent::Input(Input::Read { id })).is_err() {
            self.reads.forget(id);
            return Err(error(codes::UNAVAILABLE, "the node is shutting down", None));
        }
        let index = match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(Ok(index))) => index,
            Ok(Ok(Err(reason))) => {
                return Err(error(codes::UNAVAILABLE, format!("linearizable read refused: {reason}"), None));
            }
            Ok(Err(_)) => return Err(error(codes::UNAVAILABLE, "the node is shutting down", None)),
            Err(_) => {
                self.reads.forget(id);
                let ms = self.commit_timeout.as_millis();
                return Err(error(
                    codes::UNAVAILABLE,
                    format!("no read index within {ms} ms (no quorum?); retry"),
                    None,
                ));
            }
        };
        let mut blocks = self.events.subscribe();
        while self.tip.read().height < index {
            match tokio::time::timeout_at(deadline, blocks.recv()).await {
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(error(codes::UNAVAILABLE, "the node is shutting down", None));
                }
                Err(_) => {
                    let h = self.tip.read().height;
                    let ms = self.commit_timeout.as_millis();
                    return Err(error(
                        codes::UNAVAILABLE,
                        format!("this node applied height {h}, not yet the read index {index}, within {ms} ms; retry"),
                        None,
                    ));
                }
            }
        }
        Ok(index)
    }

    fn validators(&self) -> RpcResult {
        let vs: Vec<Value> = self
            .genesis
            .validators
            .iter()
            .map(|v| {
                json!({
                    "name": v.name, "pub_key": v.pub_key.to_hex(), "power": v.power,
                    "node_key": v.node_key.to_hex(), "peer_id": crate::network::peer_id_of(&v.node_key).to_string(),
                })
            })
            .collect();
        let total = self.genesis.total_power();
        Ok(json!({ "validators": vs, "total_power": total, "quorum_power": total * 2 / 3 + 1 }))
    }

    /// The latest `limit` pieces of evidence the chain recorded (with the
    /// height of the block that carried each), the total, and the latest
    /// evidence this node detected that the chain did not record (not yet,
    /// or not at all: see `crate::evidence` on how often it is submitted).
    fn evidence(&self, params: &Params<'_>) -> RpcResult {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct P {
            limit: Option<u64>,
        }
        let p: P = if params.as_str().is_none_or(|s| s.trim().is_empty() || s.trim() == "null") {
            P::default()
        } else {
            parse(params, r#"{"limit": <1 to 1000, default 100>} or nothing"#)?
        };
        let limit = p.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(error(codes::INVALID_PARAMS, format!("limit {limit} is outside 1 to 1000"), None));
        }
        let state = self.store.as_state();
        let count = crate::app::evidence_count(state);
        let item = |e: &Evidence, height: Option<u64>, reporter: Option<String>| {
            json!({
                "kind": e.kind(),
                "culprit": e.culprit().to_hex(),
                "round": e.round(),
                "height": height,
                "reporter": reporter,
                "evidence": serde_json::to_value(e).unwrap_or(Value::Null),
            })
        };
        let items: Vec<Value> = crate::app::committed_evidence(state, count.saturating_sub(limit), limit)
            .iter()
            .map(|r| item(&r.evidence, Some(r.height), Some(r.reporter.to_hex())))
            .collect();
        let local = self.store.evidence().map_err(unavailable)?;
        let detected: Vec<Value> = local
            .iter()
            .rev()
            .filter(|e| !crate::app::evidence_recorded(state, e))
            .take(limit as usize)
            .map(|e| item(e, None, None))
            .collect();
        Ok(json!({ "count": count, "evidence": items, "detected": detected }))
    }

    /// How much recorded evidence names each validator that has any.
    fn evidence_summary(&self) -> Value {
        let state = self.store.as_state();
        let by: serde_json::Map<String, Value> = self
            .genesis
            .validators
            .iter()
            .map(|v| (v.pub_key.to_hex(), crate::app::evidence_against(state, &v.pub_key)))
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k, json!(n)))
            .collect();
        json!({ "count": crate::app::evidence_count(state), "by_culprit": by })
    }

    fn net_info(&self) -> RpcResult {
        let s = self.net.stats();
        let names: std::collections::HashMap<String, (&str, String)> = self
            .genesis
            .validators
            .iter()
            .map(|v| (crate::network::peer_id_of(&v.node_key).to_string(), (v.name.as_str(), v.pub_key.to_hex())))
            .collect();
        let peers: Vec<Value> = s
            .peers
            .read()
            .iter()
            .map(|p| {
                let (name, key) = names.get(&p.peer_id).map(|(n, k)| (*n, k)).unzip();
                json!({
                    "peer_id": p.peer_id,
                    "address": p.address,
                    "validator": name,
                    "invalid_messages": key.map(|k| self.metrics.invalid_message_count(k)),
                })
            })
            .collect();
        use std::sync::atomic::Ordering::Relaxed;
        Ok(json!({
            "peer_id": self.net.local_peer_id().to_string(),
            "listen_addrs": *s.listen_addrs.read(),
            "n_peers": peers.len(),
            "peers": peers,
            "messages_in": s.messages_in.load(Relaxed),
            "messages_out": s.messages_out.load(Relaxed),
            "send_failures": s.send_failures.load(Relaxed),
            "dropped_full_queue": s.dropped_full_queue.load(Relaxed),
            "partitioned_from": *s.partitioned.read(),
            "dropped_partitioned": s.dropped_partitioned.load(Relaxed),
        }))
    }
}

/// A committed block as JSON.
pub fn block_json(b: &Block, cert: Option<Value>) -> Value {
    let txs: Vec<String> = b.txs.iter().map(|t| base64::engine::general_purpose::STANDARD.encode(t)).collect();
    json!({
        "block_id": b.id().to_hex(),
        "header": serde_json::to_value(&b.header).unwrap_or(Value::Null),
        "num_txs": b.txs.len(),
        "txs": txs,
        "justify": serde_json::to_value(&b.justify).unwrap_or(Value::Null),
        "certificate": cert,
    })
}

/// A committed block as a subscriber receives it:
/// `{"height", "block_id", "time_ms", "app_hash", "txs": [{"hash", "code"}]}`.
///
/// Written straight into one string (hashes are hex, numbers are plain
/// integers, so nothing needs escaping): a block of thousands of
/// transactions made into a `serde_json::Value` first cost a map allocation
/// per transaction, several per cent of a validator's CPU under load.
fn event_json(e: &BlockEvent) -> Box<serde_json::value::RawValue> {
    use std::fmt::Write;
    let mut s = String::with_capacity(160 + e.txs.len() * 88);
    let _ = write!(
        s,
        r#"{{"height":{},"block_id":"{}","time_ms":{},"app_hash":"{}","txs":["#,
        e.height,
        e.block_id.to_hex(),
        e.time_ms,
        e.app_hash.to_hex()
    );
    let mut hex = [0u8; 64];
    for (i, (h, code)) in e.txs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        hex::encode_to_slice(h.as_bytes(), &mut hex).expect("64 hex digits for 32 bytes");
        s.push_str(r#"{"hash":""#);
        s.push_str(std::str::from_utf8(&hex).expect("hex is ASCII"));
        let _ = write!(s, r#"","code":{code}}}"#);
    }
    s.push_str("]}");
    serde_json::value::RawValue::from_string(s).expect("event_json writes valid JSON")
}

/// Counts a call and its failure under `method`.
fn counted(ctx: &RpcContext, method: &str, r: RpcResult) -> RpcResult {
    ctx.metrics.rpc_request(method);
    if r.is_err() {
        ctx.metrics.rpc_error(method);
    }
    r
}

/// Builds the method table.
pub fn module(ctx: RpcContext) -> anyhow::Result<RpcModule<RpcContext>> {
    let mut m = RpcModule::new(ctx);
    m.register_method("health", |_, c, _| counted(c, "health", Ok(json!({}))))?;
    m.register_method("status", |_, c, _| counted(c, "status", c.status()))?;
    m.register_method("validators", |_, c, _| counted(c, "validators", c.validators()))?;
    m.register_method("net_info", |_, c, _| counted(c, "net_info", c.net_info()))?;
    m.register_blocking_method("evidence", |p, c, _| counted(&c, "evidence", c.evidence(&p)))?;
    m.register_blocking_method("tx", |p, c, _| counted(&c, "tx", c.tx(&p)))?;
    m.register_blocking_method("block", |p, c, _| counted(&c, "block", c.block(&p)))?;
    m.register_blocking_method("blockchain", |p, c, _| counted(&c, "blockchain", c.blockchain(&p)))?;
    m.register_async_method("query", |p, c, _| async move {
        let r = query(&p, c.clone()).await;
        counted(&c, "query", r)
    })?;
    m.register_method("admin_partition", |p, c, _| counted(c, "admin_partition", partition(c, &p)))?;
    for method in ["admin_add_learner", "admin_promote", "admin_remove"] {
        m.register_async_method(method, move |p, c, _| async move {
            let r = change_membership(method, &p, c.clone()).await;
            counted(&c, method, r)
        })?;
    }
    m.register_blocking_method("broadcast_tx_sync", |p, c, _| {
        let r = decode_tx(&p).and_then(|tx| c.submit(tx)).map(|h| accepted(&h));
        counted(&c, "broadcast_tx_sync", r)
    })?;
    m.register_blocking_method("broadcast_txs", |p, c, _| {
        let r = broadcast_many(&p, &c);
        counted(&c, "broadcast_txs", r)
    })?;
    m.register_async_method("broadcast_tx_async", |p, c, _| async move {
        let r = broadcast_async(&p, &c);
        counted(&c, "broadcast_tx_async", r)
    })?;
    m.register_async_method("broadcast_tx_commit", |p, c, _| async move {
        let r = broadcast_commit(&p, c.clone()).await;
        counted(&c, "broadcast_tx_commit", r)
    })?;
    m.register_subscription("subscribe", "block", "unsubscribe", |_, pending, c, _| async move {
        subscribe(pending, c).await;
    })?;
    Ok(m)
}

const QUERY_SHAPE: &str = r#"{"key": "<text>"} or {"key_hex": "<hex>"} or {"account": "<public key hex>"}, with optional "consistency": "latest" | "linearizable""#;

async fn query(params: &Params<'_>, c: Arc<RpcContext>) -> RpcResult {
    let p: QueryParam = parse(params, QUERY_SHAPE)?;
    let consistency = match p.consistency.as_deref() {
        None | Some("latest") => "latest",
        Some("linearizable") if c.genesis.consensus.protocol == Protocol::Raft => {
            c.linearizable_point().await?;
            "linearizable"
        }
        Some("linearizable") => {
            return Err(invalid_params(
                "consistency \"linearizable\" is offered in raft mode only; use \"latest\" (local committed state)",
            ));
        }
        Some(other) => {
            return Err(invalid_params(format!(
                "consistency {other:?} is unknown; use \"latest\" (local committed state) or \"linearizable\" (raft mode)"
            )));
        }
    };
    tokio::task::spawn_blocking(move || c.read_state(&p, consistency)).await.map_err(unavailable)?
}

fn broadcast_async(p: &Params<'_>, c: &Arc<RpcContext>) -> RpcResult {
    let tx = decode_tx(p)?;
    let max = c.genesis.consensus.tx_max_bytes as usize;
    if tx.len() > max {
        return Err(rejected(&Rejection::TooLarge { size: tx.len(), max }));
    }
    let hash = Hash::digest(&tx);
    let c = c.clone();
    tokio::task::spawn_blocking(move || {
        let _ = c.submit(tx);
    });
    Ok(accepted(&hash))
}

async fn broadcast_commit(p: &Params<'_>, c: Arc<RpcContext>) -> RpcResult {
    let tx = decode_tx(p)?;
    let hash = Hash::digest(&tx);
    let waiter = c.waiters.register(hash);
    let c2 = c.clone();
    let admitted = tokio::task::spawn_blocking(move || c2.submit(tx)).await.map_err(unavailable)?;
    if let Err(e) = admitted {
        c.waiters.forget(&hash);
        return Err(e);
    }
    match tokio::time::timeout(c.commit_timeout, waiter).await {
        Ok(Ok(rec)) => Ok(json!({
            "hash": hash.to_hex(), "height": rec.height, "index": rec.index, "code": rec.code, "log": rec.log,
        })),
        Ok(Err(_)) => Err(error(codes::UNAVAILABLE, "the node is shutting down", None)),
        Err(_) => {
            c.waiters.forget(&hash);
            Err(error(
                codes::COMMIT_TIMEOUT,
                format!(
                    "transaction {hash} was accepted but not committed within {} ms; it may still commit (check with the tx method)",
                    c.commit_timeout.as_millis()
                ),
                Some(json!({ "hash": hash.to_hex() })),
            ))
        }
    }
}

async fn subscribe(pending: PendingSubscriptionSink, c: Arc<RpcContext>) {
    let mut rx = c.events.subscribe();
    let Ok(sink) = pending.accept().await else { return };
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) => {
                    if sink.send(SubscriptionMessage::from(event_json(&e))).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "slow subscriber skipped blocks");
                }
                Err(_) => break,
            },
            _ = sink.closed() => break,
        }
    }
}

/// Starts the server on `addr`.
pub async fn serve(
    ctx: RpcContext,
    addr: SocketAddr,
    max_connections: u32,
    max_request_bytes: u32,
) -> anyhow::Result<(ServerHandle, SocketAddr)> {
    let config = ServerConfig::builder()
        .max_connections(max_connections)
        .max_request_body_size(max_request_bytes)
        .max_response_body_size(64 << 20)
        .build();
    let server = Server::builder()
        .set_config(config)
        .build(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve RPC on {addr} (rpc.listen_addr): {e}"))?;
    let local = server.local_addr()?;
    let handle = server.start(module(ctx)?);
    Ok((handle, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, message, data) of an error.
    fn parts(e: &ErrorObjectOwned) -> (i32, String, Option<Value>) {
        (e.code(), e.message().to_owned(), e.data().map(|d| serde_json::from_str(d.get()).unwrap()))
    }

    /// The subscription event is the JSON document its fields describe,
    /// with and without transactions.
    #[test]
    fn event_json_is_the_documented_shape() {
        let h = |b: &[u8]| phalanx_crypto::Hash::digest(b);
        let e = BlockEvent {
            height: 12,
            block_id: h(b"block"),
            time_ms: 1_796_000_000_123,
            app_hash: h(b"app"),
            txs: vec![(h(b"a"), 0), (h(b"b"), 4)],
        };
        let got: Value = serde_json::from_str(event_json(&e).get()).unwrap();
        let txs = json!([{ "hash": h(b"a").to_hex(), "code": 0 }, { "hash": h(b"b").to_hex(), "code": 4 }]);
        let expected = json!({ "height": 12, "block_id": h(b"block").to_hex(), "time_ms": 1_796_000_000_123u64,
            "app_hash": h(b"app").to_hex(), "txs": txs });
        assert_eq!(got, expected);
        let empty = BlockEvent { txs: Vec::new(), ..e };
        let got: Value = serde_json::from_str(event_json(&empty).get()).unwrap();
        assert_eq!(got["txs"], json!([]));
    }

    #[test]
    fn below_base_names_both_heights_and_the_snapshot() {
        let (code, message, data) = parts(&below_base(7, 40));
        assert_eq!(code, codes::NOT_FOUND);
        assert_eq!(
            message,
            "block 7 is below this node's oldest block 40: it started from a state snapshot at height 40"
        );
        assert_eq!(data, Some(json!({ "base_height": 40 })));
    }

    #[test]
    fn blockchain_range_without_a_base_is_unchanged() {
        assert_eq!(blockchain_range(None, None, 100, 0).unwrap(), (81, 100));
        assert_eq!(blockchain_range(None, None, 5, 0).unwrap(), (0, 5));
        assert_eq!(blockchain_range(Some(3), Some(10), 100, 0).unwrap(), (3, 10));
        assert_eq!(blockchain_range(Some(1), Some(500), 100, 0).unwrap(), (81, 100));
        let e = blockchain_range(Some(9), Some(4), 100, 0).unwrap_err();
        assert_eq!((e.code(), e.message()), (codes::INVALID_PARAMS, "min_height 9 is above max_height 4"));
    }

    #[test]
    fn blockchain_range_below_the_base() {
        // The default window is cut at the base; so is a window whose
        // requested minimum the window raised above the base anyway.
        assert_eq!(blockchain_range(None, None, 55, 50).unwrap(), (50, 55));
        assert_eq!(blockchain_range(None, Some(52), 55, 50).unwrap(), (50, 52));
        assert_eq!(blockchain_range(Some(1), Some(100), 100, 50).unwrap(), (81, 100));
        assert_eq!(blockchain_range(Some(50), None, 55, 50).unwrap(), (50, 55));
        // Asking for a height below the base is an error naming it.
        let message = |r: Result<(u64, u64), ErrorObjectOwned>| r.unwrap_err().message().to_owned();
        assert!(message(blockchain_range(Some(40), Some(55), 55, 50)).starts_with("block 40 is below"));
        assert!(message(blockchain_range(None, Some(30), 55, 50)).starts_with("block 30 is below"));
        assert!(message(blockchain_range(Some(10), Some(30), 55, 50)).starts_with("block 30 is below"));
    }
}
