//! The open-loop sender: one task per HTTP connection.
//!
//! Connection `c` of `C` sends transactions `c, c + C, c + 2C, ...`, each at
//! (or after) its scheduled time `i / rate`. It wakes on tick boundaries
//! (every `tick`), sends every transaction of its own that is due as one
//! request (at most `max_batch` at once: one `broadcast_txs` call, or a
//! JSON-RPC batch of single-transaction calls), and waits for the answer.
//! HTTP/1.1 carries one request at a time, so while an answer is late the
//! connection's due transactions pile up and go in the next, larger batch: the offered rate does not drop (open loop), and the time they
//! waited counts in their latency, which is measured from the scheduled
//! time. How late each transaction left (its send lag) is recorded too.
//!
//! Each connection starts on validator `c % N`. If a request fails (the
//! node died), its transactions count as unanswered and the connection
//! moves to the next validator that accepts a connection.
//!
//! The closed-loop client ([`run_client`]) is the other mode: client `c` of
//! `C` has one transaction out at a time (`broadcast_tx_commit`, answered
//! once the transaction is durably committed), sends the next as soon as
//! the answer arrives (but not before its scheduled time, so the rate is a
//! ceiling), and measures each latency from its own send to that answer,
//! as etcd's `benchmark put --clients C` does.

use super::track::{Admission, Tracker, micros_since};
use super::workload::Workload;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// How a connection sends.
#[derive(Clone, Debug)]
pub struct SendConfig {
    /// `broadcast_txs`, `broadcast_tx_sync` or `broadcast_tx_async`.
    pub method: &'static str,
    /// How often a connection wakes to send what is due.
    pub tick: Duration,
    /// Most transactions in one batch request.
    pub max_batch: usize,
    /// Connections in all.
    pub connections: usize,
    /// The measured window (µs since t0): send lags are kept for
    /// transactions scheduled inside it.
    pub window_us: (u64, u64),
}

/// What one connection did.
#[derive(Debug, Default)]
pub struct SendStats {
    /// Send lag (actual − scheduled send time, µs) of each transaction
    /// scheduled in the measured window.
    pub lag_us: Vec<u32>,
    /// Transactions scheduled in the window that left before it ended.
    pub sent_in_window: u64,
    /// Batch requests sent.
    pub requests: u64,
    /// Times the connection was (re)opened.
    pub connects: u64,
    /// Closed loop: each transaction first sent in the measured window, when
    /// (µs since t0), and its latency (first send → committed answer, or the
    /// first commit notification when the node already held it; µs) if it
    /// was answered.
    pub closed: Vec<(usize, u64, Option<u64>)>,
    /// Closed loop: the client used up its pre-made transactions before the
    /// window ended (the rate ceiling was reached).
    pub exhausted: bool,
    /// Closed loop, `kv`: the client stopped because a transaction of its
    /// account ended refused or unanswered (its later nonces could never
    /// commit).
    pub stuck: bool,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Answer {
    id: Option<u64>,
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    code: i32,
}

/// An open HTTP connection to one validator.
struct Link {
    node: usize,
    send: SendRequest<Full<Bytes>>,
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Opens a connection to `nodes[first]`, or else to the next validators in
/// turn.
async fn open(nodes: &[String], first: usize) -> Option<Link> {
    for k in 0..nodes.len() {
        let node = (first + k) % nodes.len();
        if let Ok(send) = connect(&nodes[node]).await {
            return Some(Link { node, send });
        }
    }
    None
}

async fn post(link: &mut Link, addr: &str, body: String, timeout: Duration) -> Result<(u16, Bytes), String> {
    let exchange = async {
        link.send.ready().await.map_err(|e| e.to_string())?;
        let req = hyper::Request::post("/")
            .header(hyper::header::HOST, addr)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = link.send.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| "request timed out".to_owned())?
}

/// The one-call method: `{"txs": [...]}`, answered by an array of
/// `{hash, code, log}` in the same order.
const MANY: &str = "broadcast_txs";

#[derive(Deserialize)]
struct ManyAnswer {
    result: Option<Vec<TxAnswer>>,
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct TxAnswer {
    code: i32,
}

/// Records the answer to one `broadcast_txs` call carrying `ids`.
fn record_many(tr: &Tracker, ids: &[usize], node: usize, status: u16, body: &[u8]) {
    let (answers, error) = match serde_json::from_slice::<ManyAnswer>(body) {
        Ok(ManyAnswer { result: Some(r), .. }) => (r, None),
        Ok(ManyAnswer { error: Some(e), .. }) => (Vec::new(), Some(e.code.to_string())),
        _ => (Vec::new(), Some(format!("http-{status}"))),
    };
    if let Some(error) = error {
        let how = if error.starts_with("http-") { Admission::NoAnswer } else { Admission::Refused };
        for &i in ids {
            tr.admitted(i, how, node);
        }
        tr.error(error, ids.len() as u64);
        return;
    }
    for (k, &i) in ids.iter().enumerate() {
        match answers.get(k) {
            Some(TxAnswer { code: 0 }) => tr.admitted(i, Admission::Accepted, node),
            Some(TxAnswer { code }) => {
                tr.admitted(i, Admission::Refused, node);
                tr.error(code.to_string(), 1);
            }
            None => {
                tr.admitted(i, Admission::NoAnswer, node);
                tr.error("no-answer".into(), 1);
            }
        }
    }
}

/// Records the answers to a batch of `ids` sent to `node`.
/// The ids are `ids[0] + k * step`.
fn record(tr: &Tracker, ids: &[usize], step: usize, node: usize, status: u16, body: &[u8]) {
    let mut answered = vec![false; ids.len()];
    let first = ids[0];
    let answers: Vec<Answer> = match serde_json::from_slice::<Vec<Answer>>(body) {
        Ok(a) => a,
        // A single error object answers the whole batch (too large, ...).
        Err(_) => match serde_json::from_slice::<Answer>(body) {
            Ok(Answer { error: Some(e), .. }) => {
                for &i in ids {
                    tr.admitted(i, Admission::Refused, node);
                }
                tr.error(e.code.to_string(), ids.len() as u64);
                return;
            }
            _ => {
                for &i in ids {
                    tr.admitted(i, Admission::NoAnswer, node);
                }
                tr.error(format!("http-{status}"), ids.len() as u64);
                return;
            }
        },
    };
    for a in answers {
        let Some(i) = a.id.map(|id| id as usize) else { continue };
        if i < first || !(i - first).is_multiple_of(step) || (i - first) / step >= ids.len() {
            continue;
        }
        answered[(i - first) / step] = true;
        match a.error {
            None => tr.admitted(i, Admission::Accepted, node),
            Some(e) => {
                tr.admitted(i, Admission::Refused, node);
                tr.error(e.code.to_string(), 1);
            }
        }
    }
    let missing: Vec<usize> = ids.iter().zip(&answered).filter(|(_, a)| !**a).map(|(i, _)| *i).collect();
    for &i in &missing {
        tr.admitted(i, Admission::NoAnswer, node);
    }
    if !missing.is_empty() {
        tr.error("no-answer".into(), missing.len() as u64);
    }
}

/// Runs connection `c` until all its transactions are sent.
pub async fn run_connection(
    c: usize,
    nodes: Arc<Vec<String>>,
    wl: Arc<Workload>,
    tr: Arc<Tracker>,
    cfg: SendConfig,
) -> SendStats {
    let mut stats = SendStats::default();
    let tick_us = (cfg.tick.as_micros() as u64).max(1);
    let step = cfg.connections;
    let many = cfg.method == MANY;
    let mut link: Option<Link> = None;
    let mut next_node = c % nodes.len();
    let mut next = c;
    while next < tr.len() {
        let due = tr.due_by(micros_since(tr.t0));
        if next >= due {
            let at = tr.scheduled_us(next).div_ceil(tick_us) * tick_us;
            tokio::time::sleep_until((tr.t0 + Duration::from_micros(at)).into()).await;
            continue;
        }
        let mut ids = Vec::new();
        let mut body = String::with_capacity(1024);
        if many {
            body.push_str(r#"{"jsonrpc":"2.0","id":"#);
            body.push_str(&next.to_string());
            body.push_str(r#","method":"broadcast_txs","params":{"txs":["#);
        } else {
            body.push('[');
        }
        while next < due && ids.len() < cfg.max_batch {
            if !ids.is_empty() {
                body.push(',');
            }
            if many {
                body.push('"');
                wl.write_b64(next, &mut body);
                body.push('"');
            } else {
                body.push_str(r#"{"jsonrpc":"2.0","id":"#);
                body.push_str(&next.to_string());
                body.push_str(r#","method":""#);
                body.push_str(cfg.method);
                body.push_str(r#"","params":{"tx":""#);
                wl.write_b64(next, &mut body);
                body.push_str(r#""}}"#);
            }
            ids.push(next);
            next += step;
        }
        body.push_str(if many { "]}}" } else { "]" });
        let sent_us = micros_since(tr.t0);
        for &i in &ids {
            let s = tr.scheduled_us(i);
            if s >= cfg.window_us.0 && s < cfg.window_us.1 {
                stats.lag_us.push(sent_us.saturating_sub(s).min(u32::MAX as u64) as u32);
                stats.sent_in_window += (sent_us < cfg.window_us.1) as u64;
            }
        }
        if link.is_none() {
            link = open(&nodes, next_node).await;
            stats.connects += link.is_some() as u64;
        }
        let Some(l) = link.as_mut() else {
            for &i in &ids {
                tr.admitted(i, Admission::NoAnswer, next_node);
            }
            tr.error("transport".into(), ids.len() as u64);
            continue;
        };
        stats.requests += 1;
        let node = l.node;
        match post(l, &nodes[node], body, REQUEST_TIMEOUT).await {
            Ok((status, answer)) if many => record_many(&tr, &ids, node, status, &answer),
            Ok((status, answer)) => record(&tr, &ids, step, node, status, &answer),
            Err(_) => {
                for &i in &ids {
                    tr.admitted(i, Admission::NoAnswer, node);
                }
                tr.error("transport".into(), ids.len() as u64);
                link = None;
                next_node = node;
            }
        }
    }
    stats
}

/// Longest a closed-loop client keeps trying one transaction (resending it
/// to the next validator when one fails), from its first send.
const CLIENT_TX_DEADLINE: Duration = Duration::from_secs(30);

/// How long a closed-loop client waits for one `broadcast_tx_commit`
/// answer: longer than a node's own commit wait (`rpc.commit_timeout_ms`,
/// 15 s by default), so a slow commit is answered with 2002 rather than cut
/// off here.
const COMMIT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause before a closed-loop client tries again after a failure or a
/// "mempool full".
const CLIENT_BACKOFF: Duration = Duration::from_millis(50);

/// How a closed-loop client's attempt at one transaction ended.
enum Attempt {
    /// Committed: the node answered with the commit, or said the
    /// transaction had already committed (an earlier attempt's).
    Committed,
    /// The node holds it (already in its mempool, or its commit wait timed
    /// out): the commit streams will tell when it commits.
    Pending,
    /// Refused for now (1006, mempool full): the same transaction is sent
    /// again after a pause.
    Busy,
    /// Refused with this JSON-RPC error code.
    Refused(i32),
    /// No usable answer: the connection failed or the node is going away.
    Failed(String),
}

/// Reads a node's answer to `broadcast_tx_commit`, which may be a resend.
fn attempt_of(status: u16, body: &[u8]) -> Attempt {
    #[derive(Deserialize)]
    struct One {
        result: Option<serde_json::Value>,
        error: Option<AnswerError>,
    }
    use phalanx_node::rpc::codes;
    match serde_json::from_slice::<One>(body) {
        Ok(One { result: Some(_), .. }) => Attempt::Committed,
        Ok(One { error: Some(AnswerError { code }), .. }) => match code {
            // Nonce already used, or already committed: an earlier attempt
            // of this very transaction committed (each nonce of an account
            // belongs to one transaction of the run).
            1004 | 1010 => Attempt::Committed,
            // Already in the mempool, or accepted and not yet committed.
            1007 | codes::COMMIT_TIMEOUT => Attempt::Pending,
            1006 => Attempt::Busy,
            codes::UNAVAILABLE => Attempt::Failed(code.to_string()),
            _ => Attempt::Refused(code),
        },
        _ => Attempt::Failed(format!("http-{status}")),
    }
}

/// Runs closed-loop client `c`: its transactions `c, c + C, ...` one at a
/// time, each sent once the previous one committed and its scheduled time
/// has come, until the measured window ends.
///
/// A transaction whose node fails is sent again (after a pause) to the next
/// validator, and one refused with "mempool full" again to the same one;
/// "already committed" then counts as its commit, and "already in the
/// mempool" or a commit-wait timeout waits for a commit stream to report it.
/// Nothing is resent after the window ends or [`CLIENT_TX_DEADLINE`] after
/// the first send. A `kv` client whose transaction ends refused or
/// unanswered stops (`stuck`): its account's later nonces could never
/// commit.
pub async fn run_client(
    c: usize,
    nodes: Arc<Vec<String>>,
    wl: Arc<Workload>,
    tr: Arc<Tracker>,
    cfg: SendConfig,
) -> SendStats {
    let mut stats = SendStats::default();
    let window_end = tr.t0 + Duration::from_micros(cfg.window_us.1);
    let mut link: Option<Link> = None;
    let mut next_node = c % nodes.len();
    let mut i = c;
    loop {
        if micros_since(tr.t0) >= cfg.window_us.1 {
            break;
        }
        if i >= tr.len() {
            stats.exhausted = true;
            break;
        }
        let at = tr.scheduled_us(i);
        if micros_since(tr.t0) < at {
            tokio::time::sleep_until((tr.t0 + Duration::from_micros(at)).into()).await;
        }
        let mut body = String::with_capacity(512);
        body.push_str(r#"{"jsonrpc":"2.0","id":"#);
        body.push_str(&i.to_string());
        body.push_str(r#","method":"broadcast_tx_commit","params":{"tx":""#);
        wl.write_b64(i, &mut body);
        body.push_str(r#""}}"#);
        let sent = micros_since(tr.t0);
        let deadline = std::time::Instant::now() + CLIENT_TX_DEADLINE;
        // Resends stop at the deadline or at the window's end.
        let stop = deadline.min(window_end.max(std::time::Instant::now()));
        let mut outcome = None;
        let mut node = next_node;
        loop {
            if link.is_none() {
                link = open(&nodes, next_node).await;
                stats.connects += link.is_some() as u64;
            }
            if let Some(l) = link.as_mut() {
                node = l.node;
                stats.requests += 1;
                let attempt = match post(l, &nodes[node], body.clone(), COMMIT_REQUEST_TIMEOUT).await {
                    Ok((status, answer)) => attempt_of(status, &answer),
                    Err(e) => {
                        Attempt::Failed(if e.contains("timed out") { "timeout".into() } else { "transport".into() })
                    }
                };
                match attempt {
                    Attempt::Failed(why) => {
                        tr.error(why.clone(), 1);
                        link = None;
                        next_node = (node + 1) % nodes.len();
                        outcome = Some(Attempt::Failed(why));
                    }
                    Attempt::Busy => {
                        tr.error("1006".into(), 1);
                        outcome = Some(Attempt::Busy);
                    }
                    done => {
                        outcome = Some(done);
                        break;
                    }
                }
            } else {
                // No validator accepts a connection.
                tr.error("transport".into(), 1);
            }
            if std::time::Instant::now() + CLIENT_BACKOFF >= stop {
                break;
            }
            tokio::time::sleep(CLIENT_BACKOFF).await;
        }
        let reached = outcome.is_some();
        let answered = match outcome {
            Some(Attempt::Committed) => {
                tr.admitted(i, Admission::Accepted, node);
                Some(micros_since(tr.t0))
            }
            Some(Attempt::Pending) => {
                tr.admitted(i, Admission::Accepted, node);
                wait_committed(&tr, i, deadline.min(window_end)).await
            }
            Some(Attempt::Refused(code)) => {
                tr.admitted(i, Admission::Refused, node);
                tr.error(code.to_string(), 1);
                None
            }
            // Still "mempool full" when resends stopped (each counted above).
            Some(Attempt::Busy) => {
                tr.admitted(i, Admission::Refused, node);
                None
            }
            Some(Attempt::Failed(_)) => {
                tr.admitted(i, Admission::NoAnswer, node);
                None
            }
            // Never reached a node: it stays "not sent".
            None => None,
        };
        if reached && sent >= cfg.window_us.0 && sent < cfg.window_us.1 {
            stats.sent_in_window += 1;
            stats.closed.push((i, sent, answered.map(|a| a.saturating_sub(sent))));
        }
        if std::time::Instant::now() >= window_end {
            break;
        }
        if answered.is_none() && wl.accounts().is_some() && tr.committed_at(i).is_none() {
            stats.stuck = true;
            break;
        }
        i += cfg.connections;
    }
    stats
}

/// Waits until a commit stream reports transaction `i`, at most until
/// `deadline`; returns when (µs since t0).
async fn wait_committed(tr: &Tracker, i: usize, deadline: std::time::Instant) -> Option<u64> {
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while std::time::Instant::now() < deadline {
        if let Some(at) = tr.committed_at(i) {
            return Some(at);
        }
        tick.tick().await;
    }
    tr.committed_at(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(body: &str) -> &'static str {
        match attempt_of(200, body.as_bytes()) {
            Attempt::Committed => "committed",
            Attempt::Pending => "pending",
            Attempt::Busy => "busy",
            Attempt::Refused(_) => "refused",
            Attempt::Failed(_) => "failed",
        }
    }

    #[test]
    fn answers_to_a_resent_transaction_say_where_it_stands() {
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"result":{"hash":"ab","height":3,"code":0}}"#), "committed");
        // Nonce already used, already committed: an earlier attempt landed.
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1004,"message":"m"}}"#), "committed");
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1010,"message":"m"}}"#), "committed");
        // Held by the node: already in the mempool, commit wait timed out.
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1007,"message":"m"}}"#), "pending");
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":2002,"message":"m"}}"#), "pending");
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1006,"message":"mempool full"}}"#), "busy");
        // Another transaction holds the nonce: this one is refused.
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1009,"message":"m"}}"#), "refused");
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-2147483648,"message":"m"}}"#), "refused");
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":2003,"message":"shutting down"}}"#), "failed");
        assert_eq!(of("<html>bad gateway</html>"), "failed");
    }
}
