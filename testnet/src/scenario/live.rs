//! What the runner's concurrent parts share while a scenario runs: the
//! nodes' addresses, which of them are up, paused or honest, the clock, and
//! RPC calls that classify their failures.

use super::spec::Protocol;
use crate::cluster::{RpcError, call_with_timeout};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long `broadcast_tx_commit` waits on a node (written into each node's
/// `rpc.commit_timeout_ms`), so an operation on a stalled chain ends as
/// unknown after this, not after the default 15 s.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client side gives up this much later than the node would.
pub const CLIENT_MARGIN: Duration = Duration::from_secs(2);

/// Timeout for quick calls (status, query latest, account).
pub const QUICK: Duration = Duration::from_secs(2);

/// One node as the runner sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    /// The process runs and answered RPC since it was (re)started.
    pub up: bool,
    /// Stopped with SIGSTOP.
    pub paused: bool,
}

impl NodeState {
    /// Up and not paused: it can answer.
    pub fn serving(self) -> bool {
        self.up && !self.paused
    }
}

/// Shared by clients, the sampler and the timeline.
pub struct Shared {
    pub protocol: Protocol,
    pub chain_id: String,
    /// RPC address of each node.
    pub rpcs: Vec<String>,
    /// Validator public key (hex) of each node.
    pub keys: Vec<String>,
    pub honest: Vec<bool>,
    /// When the workload started: every time in records is from here.
    pub t0: Instant,
    states: Mutex<Vec<NodeState>>,
}

impl Shared {
    /// Every node up and not paused; the clock starts now.
    pub fn new(
        protocol: Protocol,
        chain_id: String,
        rpcs: Vec<String>,
        keys: Vec<String>,
        honest: Vec<bool>,
    ) -> Shared {
        let n = rpcs.len();
        Shared {
            protocol,
            chain_id,
            rpcs,
            keys,
            honest,
            t0: Instant::now(),
            states: Mutex::new(vec![NodeState { up: true, paused: false }; n]),
        }
    }

    /// Microseconds since the workload started.
    pub fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    /// Node `i` as the runner last set it.
    pub fn state(&self, i: usize) -> NodeState {
        self.states.lock().expect("state lock")[i]
    }

    /// Records what the timeline did to node `i`.
    pub fn set_state(&self, i: usize, s: NodeState) {
        self.states.lock().expect("state lock")[i] = s;
    }

    /// Honest nodes that can answer now.
    pub fn serving_honest(&self) -> Vec<usize> {
        let states = self.states.lock().expect("state lock");
        (0..states.len()).filter(|&i| self.honest[i] && states[i].serving()).collect()
    }

    /// The next honest serving node after `*cursor`, round-robin.
    pub fn pick(&self, cursor: &mut usize) -> Option<usize> {
        let n = self.rpcs.len();
        let states = self.states.lock().expect("state lock");
        for k in 1..=n {
            let i = (*cursor + k) % n;
            if self.honest[i] && states[i].serving() {
                *cursor = i;
                return Some(i);
            }
        }
        None
    }

    /// Calls `method` on node `i`.
    pub async fn call(&self, i: usize, method: &str, params: Value, timeout: Duration) -> Result<Value, RpcError> {
        call_with_timeout(&self.rpcs[i], method, params, timeout).await
    }

    /// Node `i`'s committed height, if it answers quickly.
    pub async fn height(&self, i: usize) -> Option<u64> {
        let s = self.call(i, "status", Value::Null, QUICK).await.ok()?;
        s["sync_info"]["latest_block_height"].as_u64()
    }
}

/// What became of a submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// In a committed block, with its result code.
    Committed { height: u64, code: u64 },
    /// Refused at admission (codes 1001 to 1099): it never takes effect.
    Rejected { code: i32, message: String },
    /// The connection was refused: the node never saw it.
    NotSent(String),
    /// No definite answer: it may still commit.
    Unknown(String),
}

/// Submits `tx` (base64) to node `i` and waits for its commit.
pub async fn submit(shared: &Shared, i: usize, tx_b64: &str) -> Submitted {
    let params = serde_json::json!({ "tx": tx_b64 });
    match shared.call(i, "broadcast_tx_commit", params, COMMIT_TIMEOUT + CLIENT_MARGIN).await {
        Ok(v) => match (v["height"].as_u64(), v["code"].as_u64()) {
            (Some(height), Some(code)) => Submitted::Committed { height, code },
            _ => Submitted::Unknown(format!("unexpected answer: {v}")),
        },
        Err(e) => classify(e),
    }
}

/// Sorts an RPC failure into definite and indefinite.
pub fn classify(e: RpcError) -> Submitted {
    match e {
        RpcError::Rpc { code, message, .. } if (1001..=1099).contains(&code) => Submitted::Rejected { code, message },
        RpcError::Rpc { code, message, .. } => Submitted::Unknown(format!("{message} (code {code})")),
        RpcError::Transport(t) if t.contains("Connection refused") => Submitted::NotSent(t),
        RpcError::Transport(t) => Submitted::Unknown(t),
    }
}
