//! Prometheus metrics and the HTTP endpoint that serves them.
//!
//! Every refusal of outside input is counted here: transactions by reason,
//! consensus messages by peer, malformed frames, RPC errors by method.
//! Served as the Prometheus text format on `GET /metrics` at
//! `metrics.listen_addr` (off when empty).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};

type Labels = Vec<(String, String)>;

/// All of a node's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub height: Gauge,
    pub round: Gauge,
    pub blocks: Counter,
    pub txs: Counter,
    pub mempool_size: Gauge,
    pub mempool_bytes: Gauge,
    pub peers: Gauge,
    pub evidence: Counter,
    /// Raft state snapshot fetches that failed (each is retried).
    pub snapshot_failures: Counter,
    pub inbound_dropped: Counter,
    /// Compact proposals received, by outcome: `complete` (every
    /// transaction was in the mempool), `fetched` (the missing ones were
    /// fetched from the proposer), `fetch_failed`, `not_fetched` (too many
    /// fetches from its proposer in flight).
    compact_proposals: Family<Labels, Counter>,
    /// Transactions named by compact proposals received.
    pub compact_txs: Counter,
    /// Of those, transactions fetched from the proposer.
    pub compact_fetched_txs: Counter,
    tx_rejected: Family<Labels, Counter>,
    invalid_messages: Family<Labels, Counter>,
    rpc_requests: Family<Labels, Counter>,
    rpc_errors: Family<Labels, Counter>,
    commit_lag: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("phalanx");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            height: Gauge::default(),
            round: Gauge::default(),
            blocks: Counter::default(),
            txs: Counter::default(),
            mempool_size: Gauge::default(),
            mempool_bytes: Gauge::default(),
            peers: Gauge::default(),
            evidence: Counter::default(),
            snapshot_failures: Counter::default(),
            inbound_dropped: Counter::default(),
            compact_proposals: Family::default(),
            compact_txs: Counter::default(),
            compact_fetched_txs: Counter::default(),
            tx_rejected: Family::default(),
            invalid_messages: Family::default(),
            rpc_requests: Family::default(),
            rpc_errors: Family::default(),
            commit_lag: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        };
        r.register("height", "Height of the last committed block", m.height.clone());
        r.register("round", "Current consensus round", m.round.clone());
        r.register("blocks_committed", "Blocks committed", m.blocks.clone());
        r.register("txs_committed", "Transactions committed", m.txs.clone());
        r.register("mempool_size", "Transactions in the mempool", m.mempool_size.clone());
        r.register("mempool_bytes", "Bytes of transactions in the mempool", m.mempool_bytes.clone());
        r.register("peers_connected", "Connected peers", m.peers.clone());
        r.register("evidence", "Misbehaviour evidence recorded", m.evidence.clone());
        r.register("snapshot_failures", "Raft state snapshot fetches that failed", m.snapshot_failures.clone());
        r.register(
            "inbound_dropped",
            "Consensus messages dropped because the driver queue was full",
            m.inbound_dropped.clone(),
        );
        r.register(
            "compact_proposals",
            "Compact proposals received, by outcome (complete, fetched, fetch_failed, not_fetched)",
            m.compact_proposals.clone(),
        );
        r.register("compact_txs", "Transactions named by compact proposals received", m.compact_txs.clone());
        r.register(
            "compact_fetched_txs",
            "Transactions of compact proposals fetched from their proposer",
            m.compact_fetched_txs.clone(),
        );
        r.register("tx_rejected", "Transactions refused, by reason", m.tx_rejected.clone());
        r.register("invalid_messages", "Messages refused, by sending peer", m.invalid_messages.clone());
        r.register("rpc_requests", "JSON-RPC requests, by method", m.rpc_requests.clone());
        r.register("rpc_errors", "JSON-RPC requests answered with an error, by method", m.rpc_errors.clone());
        r.register("commit_lag_seconds", "From a block's proposal time to its local commit", m.commit_lag.clone());
        *m.registry.lock() = r;
        m
    }

    pub fn tx_rejected(&self, reason: &str) {
        self.tx_rejected.get_or_create(&vec![("reason".into(), reason.into())]).inc();
    }

    pub fn tx_rejected_count(&self, reason: &str) -> u64 {
        self.tx_rejected.get_or_create(&vec![("reason".into(), reason.into())]).get()
    }

    pub fn invalid_message(&self, peer: &str) {
        self.invalid_messages.get_or_create(&vec![("peer".into(), peer.into())]).inc();
    }

    pub fn invalid_message_count(&self, peer: &str) -> u64 {
        self.invalid_messages.get_or_create(&vec![("peer".into(), peer.into())]).get()
    }

    /// Counts a compact proposal received, by `outcome`.
    pub fn compact_proposal(&self, outcome: &str) {
        self.compact_proposals.get_or_create(&vec![("outcome".into(), outcome.into())]).inc();
    }

    pub fn rpc_request(&self, method: &str) {
        self.rpc_requests.get_or_create(&vec![("method".into(), method.into())]).inc();
    }

    pub fn rpc_error(&self, method: &str) {
        self.rpc_errors.get_or_create(&vec![("method".into(), method.into())]).inc();
    }

    /// Records a committed block.
    pub fn committed(&self, height: u64, txs: usize, block_time_ms: u64) {
        self.height.set(height as i64);
        self.blocks.inc();
        self.txs.inc_by(txs as u64);
        let lag_ms = crate::driver::now_ms().saturating_sub(block_time_ms);
        self.commit_lag.observe(lag_ms as f64 / 1000.0);
    }

    pub fn mempool(&self, size: usize, bytes: usize) {
        self.mempool_size.set(size as i64);
        self.mempool_bytes.set(bytes as i64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry.lock()).expect("writing to a String");
        s
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` changes.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr} (metrics.listen_addr): {e}"))?;
    info!(%addr, "metrics at http://{addr}/metrics");
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => match r { Ok((s, _)) => s, Err(e) => { warn!(%e, "metrics accept failed"); continue } },
                _ = shutdown.changed() => break,
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    Ok(())
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        let mut r = Response::new(Full::new(Bytes::from("not found: metrics are at /metrics\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(metrics.render())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
