//! End-to-end tests: real `phalanx` processes on loopback, real libp2p,
//! real sled stores with fsync, real signatures.
//!
//! Each test builds its own testnet with `phalanx testnet --base-port 0`
//! (free ports from the OS) in a temporary directory. Tests take a global
//! lock so only one testnet runs at a time on a small machine; every wait is
//! for a condition with a deadline. Set `PHALANX_KEEP_TESTNET=1` to keep a
//! failed test's directory and logs.

use base64::Engine as _;
use phalanx_crypto::{Keypair, keyfile};
use phalanx_node::app::{Op, Transaction};
use phalanx_testnet::cluster::{Cluster, RpcError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHAIN: &str = "phalanx-local";
const DEADLINE: Duration = Duration::from_secs(60);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_phalanx"))
}

fn log_env(c: &mut Cluster) {
    c.env.push(("PHALANX_LOG_FORMAT".into(), "json".into()));
    c.env.push(("RUST_LOG".into(), "info,phalanx::votes=debug".into()));
}

/// Replaces `from` with `to` in validator `i`'s node.toml (before it starts).
fn edit_node_toml(c: &Cluster, i: usize, from: &str, to: &str) {
    let path = c.nodes[i].home.join("config/node.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "node{i}'s node.toml holds {from:?}:\n{text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// A running testnet of `n` validators that has committed a first block.
async fn running(n: usize) -> Cluster {
    let mut c = Cluster::generate(bin(), n, &[]).expect("generate testnet");
    log_env(&mut c);
    c.start_all().expect("start");
    for i in 0..n {
        c.wait_height(i, 1, DEADLINE).await.expect("first block");
    }
    c
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn signed(key: &Keypair, nonce: u64, op: Op) -> Vec<u8> {
    Transaction { chain_id: CHAIN.into(), sender: key.public(), nonce, op }.sign(key).encode()
}

fn put(key: &Keypair, nonce: u64, k: &str, v: &str) -> Vec<u8> {
    signed(key, nonce, Op::Put { key: k.as_bytes().to_vec(), value: v.as_bytes().to_vec() })
}

fn tx_hash(tx: &[u8]) -> String {
    phalanx_crypto::Hash::digest(tx).to_hex()
}

async fn submit(c: &Cluster, node: usize, method: &str, tx: &[u8]) -> Result<Value, RpcError> {
    c.call(node, method, json!({ "tx": b64(tx) })).await
}

fn code_of(r: Result<Value, RpcError>) -> i32 {
    match r {
        Err(RpcError::Rpc { code, .. }) => code,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

/// Waits until every node in `nodes` reports every hash in `hashes` committed.
async fn wait_committed(c: &Cluster, nodes: &[usize], hashes: &[String]) {
    for &i in nodes {
        c.wait_for(DEADLINE, &format!("node{i} to commit {} transactions", hashes.len()), &[i], || async move {
            for h in hashes {
                let r = c.call(i, "tx", json!({ "hash": h })).await.ok()?;
                assert_eq!(r["code"], 0, "transaction {h} failed: {r}");
            }
            Some(())
        })
        .await
        .unwrap();
    }
}

/// Block id and app hash after each height from 1 up to `to`, from node `i`.
async fn chain(c: &Cluster, i: usize, to: u64) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for h in 1..=to {
        let b = c.call(i, "block", json!({ "height": h })).await.unwrap();
        v.push((b["block_id"].as_str().unwrap().to_owned(), b["result_app_hash"].as_str().unwrap().to_owned()));
    }
    v
}

/// Every node in `nodes` has the same block and app hash at every height
/// they all committed.
async fn assert_same_chain(c: &Cluster, nodes: &[usize]) -> u64 {
    let mut min = u64::MAX;
    for &i in nodes {
        min = min.min(c.height(i).await.expect("height"));
    }
    let reference = chain(c, nodes[0], min).await;
    for &i in &nodes[1..] {
        let other = chain(c, i, min).await;
        for (h, (a, b)) in reference.iter().zip(&other).enumerate() {
            assert_eq!(a, b, "node{} and node{i} differ at height {}", nodes[0], h + 1);
        }
    }
    min
}

fn client(c: &Cluster, j: usize) -> Keypair {
    keyfile::read(&c.client_key(j)).unwrap()
}

/// Issue 2, shown 1 and 2: four validators commit 200 transactions from four
/// senders submitted to different nodes; every validator ends with the same
/// block hash and app hash at every height, and serves every value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_200_transactions_and_agree() {
    let _serial = SERIAL.lock().await;
    let c = running(4).await;
    let mut hashes = Vec::new();
    for j in 0..4 {
        let key = client(&c, j);
        for n in 0..50u64 {
            let tx = put(&key, n, &format!("s{j}-k{n}"), &format!("v{n}"));
            hashes.push(tx_hash(&tx));
            let r = submit(&c, j, "broadcast_tx_sync", &tx).await.unwrap();
            assert_eq!(r["code"], 0);
        }
    }
    wait_committed(&c, &[0, 1, 2, 3], &hashes).await;
    let height = assert_same_chain(&c, &[0, 1, 2, 3]).await;
    assert!(height >= 2);
    for i in 0..4 {
        for (j, n) in [(0, 0), (1, 49), (2, 17), (3, 33)] {
            let r = c.call(i, "query", json!({ "key": format!("s{j}-k{n}") })).await.unwrap();
            assert_eq!(r["value"]["utf8"], format!("v{n}"), "node{i} key s{j}-k{n}");
        }
        let acct = c.call(i, "query", json!({ "account": client(&c, 2).public().to_hex() })).await.unwrap();
        assert_eq!(acct["nonce"], 50);
    }
}

/// Proposals travel compact (their payload as digests, `node/src/compact.rs`).
/// A validator that gossips nothing holds transactions no peer has seen: its
/// peers must fetch them from it to rebuild its proposals, and nothing else
/// could commit them. All commit, on every validator, with the same chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_fetch_what_a_compact_proposal_names_and_they_lack() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::generate(bin(), 4, &[]).expect("generate testnet");
    log_env(&mut c);
    edit_node_toml(&c, 0, "gossip = true", "gossip = false");
    c.start_all().expect("start");
    for i in 0..4 {
        c.wait_height(i, 1, DEADLINE).await.expect("first block");
    }
    let key = client(&c, 0);
    let mut hashes = Vec::new();
    for n in 0..40u64 {
        let tx = put(&key, n, &format!("quiet-k{n}"), &format!("v{n}"));
        hashes.push(tx_hash(&tx));
        let r = submit(&c, 0, "broadcast_tx_sync", &tx).await.unwrap();
        assert_eq!(r["code"], 0);
    }
    wait_committed(&c, &[0, 1, 2, 3], &hashes).await;
    assert_same_chain(&c, &[0, 1, 2, 3]).await;
    for i in 1..4 {
        let r = c.call(i, "query", json!({ "key": "quiet-k39" })).await.unwrap();
        assert_eq!(r["value"]["utf8"], "v39", "node{i}");
    }
}

/// Issue 2, shown 3: with one validator killed (SIGKILL) the other three keep
/// committing; restarted, it catches up from its peers and its chain and app
/// hashes equal theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_validator_restarts_and_catches_up() {
    let _serial = SERIAL.lock().await;
    let mut c = running(4).await;
    let dead_key = validator_keys(&c, 0).await.unwrap()[3].clone();
    c.kill(3).unwrap();
    let h = c.height(0).await.unwrap();
    c.wait_height(0, h + 5, DEADLINE).await.unwrap();
    // Leader reputation: once node3 fails a turn as leader, each survivor's
    // schedule skips it, says so in its log and in `status`.
    for i in 0..3 {
        c.wait_for(DEADLINE, "the dead validator to be skipped as leader", &[i], || async {
            let s = c.call(i, "status", Value::Null).await.ok()?;
            let excluded = s["consensus"]["excluded_leaders"].as_array()?.clone();
            (excluded == vec![json!(dead_key)]).then_some(())
        })
        .await
        .unwrap();
        assert!(c.log(i).contains("leader reputation"), "node{i} logs the exclusion");
        let leader = c.call(i, "status", Value::Null).await.unwrap()["consensus"]["leader"].clone();
        assert_ne!(leader, json!(dead_key));
    }
    let key = client(&c, 0);
    let mut hashes = Vec::new();
    for n in 0..20u64 {
        let tx = put(&key, n, &format!("while-down-{n}"), "x");
        hashes.push(tx_hash(&tx));
        assert_eq!(submit(&c, 1, "broadcast_tx_sync", &tx).await.unwrap()["code"], 0);
    }
    wait_committed(&c, &[0, 1, 2], &hashes).await;
    c.start(3).unwrap();
    let target = c.height(0).await.unwrap();
    c.wait_height(3, target, DEADLINE).await.unwrap();
    wait_committed(&c, &[3], &hashes).await;
    assert_same_chain(&c, &[0, 1, 2, 3]).await;
    let r = c.call(3, "query", json!({ "key": "while-down-19" })).await.unwrap();
    assert_eq!(r["value"]["utf8"], "x");
}

/// Issue 2, shown 3: killing the current leader mid-round stalls that round;
/// the others time out, form a timeout certificate and carry on. They see
/// its connections close, so they time out at once rather than by timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_triggers_a_view_change_and_the_chain_resumes() {
    let _serial = SERIAL.lock().await;
    let mut c = running(4).await;
    let validators = c.call(0, "validators", Value::Null).await.unwrap();
    let keys: Vec<String> = validators["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pub_key"].as_str().unwrap().to_owned())
        .collect();
    let leader_key =
        c.call(0, "status", Value::Null).await.unwrap()["consensus"]["leader"].as_str().unwrap().to_owned();
    let leader = keys.iter().position(|k| *k == leader_key).unwrap();
    c.kill(leader).unwrap();
    let alive: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    let h = c.height(alive[0]).await.unwrap();
    let tx = put(&client(&c, 1), 0, "after-leader-crash", "ok");
    let r = submit(&c, alive[0], "broadcast_tx_commit", &tx).await.unwrap();
    assert_eq!(r["code"], 0);
    for &i in &alive {
        c.wait_height(i, h + 3, DEADLINE).await.unwrap();
    }
    let timed_out = alive.iter().any(|&i| c.log(i).contains("round timed out"));
    assert!(timed_out, "a view change (round timeout) happened on the survivors");
    // The killed process's connections closed at once: a survivor gave up
    // a round that needed it without waiting for its timer (its own round,
    // or the one whose votes went to it, whichever came first).
    c.wait_for(DEADLINE, "a survivor to give up a round that needs the killed leader", &alive, || async {
        alive.iter().any(|&i| c.log(i).contains("needs a validator whose connection closed")).then_some(())
    })
    .await
    .unwrap();
    assert_same_chain(&c, &alive).await;
}

/// The signed votes a node's log records: (round, block) for votes sent and
/// for the vote persisted at the crash point.
fn signed_votes(log: &str) -> Vec<(u64, String)> {
    let mut v = Vec::new();
    for line in log.lines() {
        let Ok(j) = serde_json::from_str::<Value>(line) else { continue };
        if j["target"] != "phalanx::votes" {
            continue;
        }
        let msg = j["fields"]["message"].as_str().unwrap_or("");
        if msg == "vote sent" || msg.starts_with("test crash point") {
            let round = j["fields"]["round"].as_u64().unwrap();
            v.push((round, j["fields"]["block"].as_str().unwrap().to_owned()));
        }
    }
    v
}

/// Issue 2, shown 4: a validator that crashes at the worst moment, after
/// persisting its vote and before sending it, and restarts, never signs two
/// different votes for one round; no honest node holds evidence against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_validator_never_signs_two_votes_in_one_round() {
    let _serial = SERIAL.lock().await;
    let mut c = running(4).await;
    let key = client(&c, 0);
    let mut nonce = 0;
    for _crash in 0..3 {
        c.terminate(1, DEADLINE).unwrap();
        let round = c.call(0, "status", Value::Null).await.unwrap()["consensus"]["round"].as_u64().unwrap();
        let at = (round + 4).to_string();
        c.start_with_env(1, &[("PHALANX_TEST_CRASH_BEFORE_VOTE_ROUND", at.as_str())]).unwrap();
        // Load so that blocks carry transactions while it runs and crashes.
        for _ in 0..5 {
            let _ = submit(&c, 0, "broadcast_tx_sync", &put(&key, nonce, "k", &nonce.to_string())).await;
            nonce += 1;
        }
        let status = c.wait_exit(1, DEADLINE).await.expect("node1 reaches its crash point");
        assert!(!status.success(), "node1 aborted");
        assert!(c.log(1).contains("test crash point"), "node1 stopped at the crash point");
        c.start(1).unwrap();
        let h = c.height(0).await.unwrap();
        c.wait_height(1, h + 2, DEADLINE).await.unwrap();
    }
    // Enough votes to compare: after its last restart node1 keeps voting
    // (how many it signed between crashes depends on how fast the others
    // give up the rounds it missed).
    c.wait_for(DEADLINE, "node1's log to record more than 10 votes", &[1], || async {
        (signed_votes(&c.log(1)).len() > 10).then_some(())
    })
    .await
    .unwrap();
    let votes = signed_votes(&c.log(1));
    assert!(votes.len() > 10, "the log records node1's votes ({} found)", votes.len());
    let mut by_round: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (r, b) in votes {
        by_round.entry(r).or_default().insert(b);
    }
    for (r, blocks) in &by_round {
        assert_eq!(blocks.len(), 1, "node1 signed votes for {} different blocks in round {r}", blocks.len());
    }
    for i in 0..4 {
        let ev = c.call(i, "evidence", Value::Null).await.unwrap();
        assert_eq!(ev["count"], 0, "node{i} holds evidence: {ev}");
    }
    assert_same_chain(&c, &[0, 1, 2, 3]).await;
}

/// Sends raw bytes as an HTTP POST body and returns the JSON answer.
fn raw_post(addr: &str, body: &str) -> Value {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let json = out.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Issue 2, shown 5: each bad input gets a clear JSON-RPC error with its
/// stable code, is counted, and stores nothing: bad signature, wrong chain
/// id, replayed nonce, oversized transaction, undecodable transaction,
/// malformed JSON, unknown method; the same per transaction inside one
/// `broadcast_txs` call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_counted_and_changes_nothing() {
    let _serial = SERIAL.lock().await;
    let c = running(1).await;
    let key = client(&c, 0);
    let good = put(&key, 0, "k", "v");
    let r = submit(&c, 0, "broadcast_tx_commit", &good).await.unwrap();
    assert_eq!(r["code"], 0);

    let mut bad_sig = put(&key, 1, "evil", "1");
    let n = bad_sig.len();
    bad_sig[n - 5] ^= 1;
    let wrong_chain = Transaction {
        chain_id: "another-chain".into(),
        sender: key.public(),
        nonce: 1,
        op: Op::Put { key: b"evil".to_vec(), value: b"2".to_vec() },
    }
    .sign(&key)
    .encode();
    let replay = good.clone();
    let oversized = put(&key, 1, "evil", &"x".repeat(70_000));
    let garbage = b"definitely not a transaction".to_vec();
    let cases: [(&str, &[u8], i32); 5] = [
        ("bad signature", &bad_sig, 1002),
        ("wrong chain id", &wrong_chain, 1003),
        ("replayed nonce", &replay, 1004),
        ("oversized", &oversized, 1005),
        ("undecodable", &garbage, 1001),
    ];
    for (what, tx, code) in cases {
        for method in ["broadcast_tx_sync", "broadcast_tx_commit"] {
            let got = code_of(submit(&c, 0, method, tx).await);
            assert_eq!(got, code, "{what} via {method}");
        }
    }
    // `broadcast_txs` answers each transaction of one call on its own: the
    // good one is admitted, each bad one gets the code and reason it gets
    // alone.
    let second = put(&key, 1, "k2", "v2");
    let mut many = vec![b64(&second)];
    many.extend(cases.iter().map(|(_, tx, _)| b64(tx)));
    let answers = c.call(0, "broadcast_txs", json!({ "txs": many })).await.unwrap();
    let codes: Vec<i64> = answers.as_array().unwrap().iter().map(|a| a["code"].as_i64().unwrap()).collect();
    let mut expected = vec![0];
    expected.extend(cases.iter().map(|(_, _, code)| i64::from(*code)));
    assert_eq!(codes, expected, "{answers}");
    assert_eq!(answers[0]["hash"], tx_hash(&second));
    assert_eq!(answers[1]["reason"], "bad_signature");
    assert!(answers[1]["log"].as_str().unwrap().contains("signature"), "{answers}");
    wait_committed(&c, &[0], &[tx_hash(&second)]).await;
    let not_base64 = c.call(0, "broadcast_txs", json!({ "txs": [b64(&good), "%%%"] })).await;
    match not_base64 {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32602);
            assert!(message.contains("txs[1]: not valid base64"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let rpc = c.nodes[0].rpc.clone();
    let parse = raw_post(&rpc, r#"{"jsonrpc":"2.0","id":1,"method":"status""#);
    assert_eq!(parse["error"]["code"], -32700, "malformed JSON: {parse}");
    let unknown = raw_post(&rpc, r#"{"jsonrpc":"2.0","id":1,"method":"no_such_method"}"#);
    assert_eq!(unknown["error"]["code"], -32601, "unknown method: {unknown}");
    let missing = raw_post(&rpc, r#"{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{}}"#);
    assert_eq!(missing["error"]["code"], -32602);
    assert!(missing["error"]["message"].as_str().unwrap().contains("tx"), "names the missing field: {missing}");

    // Nothing stored: the mempool is empty, the account moved once, no bad
    // transaction is known, the key they tried to write does not exist.
    let h = c.height(0).await.unwrap();
    c.wait_height(0, h + 2, DEADLINE).await.unwrap();
    let status = c.call(0, "status", Value::Null).await.unwrap();
    assert_eq!(status["mempool"]["size"], 0);
    let acct = c.call(0, "query", json!({ "account": key.public().to_hex() })).await.unwrap();
    assert_eq!(acct["nonce"], 2);
    for tx in [&bad_sig, &wrong_chain, &oversized, &garbage] {
        assert_eq!(code_of(c.call(0, "tx", json!({ "hash": tx_hash(tx) })).await), 2001);
    }
    // HotStuff mode does not offer linearizable reads: refused, naming why.
    match c.call(0, "query", json!({ "key": "evil", "consistency": "linearizable" })).await {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32602);
            assert!(message.contains("raft mode only"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let evil = c.call(0, "query", json!({ "key": "evil" })).await.unwrap();
    assert_eq!(evil["exists"], false);
    // Nor membership changes: a HotStuff validator set is fixed in genesis.
    let promote = json!({ "validator_key": key.public().to_hex() });
    match c.call(0, "admin_promote", promote).await {
        Err(RpcError::Rpc { code, message, .. }) => {
            assert_eq!(code, 2004);
            assert!(message.contains("raft mode only"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let metrics = c.metrics(0).expect("node0 serves its metrics");
    for reason in ["bad_signature", "wrong_chain", "nonce_too_low", "too_large", "malformed"] {
        let line = format!("phalanx_tx_rejected_total{{reason=\"{reason}\"}} 3");
        assert!(metrics.contains(&line), "metrics count {reason} three times:\n{metrics}");
    }
}

fn start_fails(home: &Path) -> String {
    let out = std::process::Command::new(bin()).args(["start", "--home"]).arg(home).output().unwrap();
    assert!(!out.status.success(), "start should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Issue 2, shown 5: a corrupt genesis, node config or key file is refused
/// at start with a message naming the file and the field.
#[test]
fn corrupt_configuration_is_refused_naming_the_field() {
    let c = Cluster::generate(bin(), 3, &[]).unwrap();
    let home = c.nodes[0].home.clone();
    let genesis_path = home.join("config/genesis.json");
    let original = std::fs::read_to_string(&genesis_path).unwrap();
    let mut g: Value = serde_json::from_str(&original).unwrap();
    g["validators"][2]["power"] = json!(0);
    std::fs::write(&genesis_path, serde_json::to_string_pretty(&g).unwrap()).unwrap();
    let err = start_fails(&home);
    assert!(err.contains("genesis.json: validators[2].power must be > 0"), "{err}");
    std::fs::write(&genesis_path, &original).unwrap();

    let toml_path = home.join("config/node.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let rpc = c.nodes[0].rpc.clone();
    std::fs::write(&toml_path, toml.replace(&format!("\"{rpc}\""), "\"not-an-address\"")).unwrap();
    let err = start_fails(&home);
    assert!(err.contains("node.toml: rpc.listen_addr"), "{err}");
    std::fs::write(&toml_path, &toml).unwrap();

    let key_path = home.join("config/validator_key.json");
    std::fs::write(&key_path, "{\"type\": \"ed25519\"}").unwrap();
    let err = start_fails(&home);
    assert!(err.contains("validator_key.json"), "{err}");
}

/// A second process on the same data directory is refused with a message
/// that says why; the running node is unaffected. SIGTERM stops a node
/// cleanly and it resumes from its stored chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_is_exclusive_and_sigterm_shuts_down_cleanly() {
    let _serial = SERIAL.lock().await;
    let mut c = running(1).await;
    let err = start_fails(&c.nodes[0].home.clone());
    assert!(err.contains("in use by another process"), "{err}");
    let h = c.wait_height(0, 3, DEADLINE).await.unwrap();
    let status = c.terminate(0, Duration::from_secs(20)).unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    c.start(0).unwrap();
    c.wait_height(0, h + 2, DEADLINE).await.unwrap();
}

/// JSON-RPC over WebSocket: `subscribe` streams committed blocks, and a
/// submitted transaction appears in one of them with its result code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscription_streams_committed_blocks() {
    use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
    use jsonrpsee::rpc_params;
    use jsonrpsee::ws_client::WsClientBuilder;
    let _serial = SERIAL.lock().await;
    let c = running(1).await;
    let ws = WsClientBuilder::default().build(format!("ws://{}", c.nodes[0].rpc)).await.unwrap();
    let status: Value = ws.request("status", rpc_params![]).await.unwrap();
    assert_eq!(status["node_info"]["chain_id"], CHAIN);
    let mut sub = ws.subscribe::<Value, _>("subscribe", rpc_params![], "unsubscribe").await.unwrap();
    let tx = put(&client(&c, 0), 0, "ws", "yes");
    let hash = tx_hash(&tx);
    submit(&c, 0, "broadcast_tx_sync", &tx).await.unwrap();
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(block)) = sub.next().await {
            assert!(block["height"].as_u64().unwrap() > 0);
            if let Some(t) = block["txs"].as_array().unwrap().iter().find(|t| t["hash"] == hash) {
                return t["code"].clone();
            }
        }
        panic!("subscription ended");
    })
    .await
    .expect("the transaction's block arrives on the subscription");
    assert_eq!(found, 0);
}

// ----- Raft mode -----

/// The validator keys, in node order (genesis order).
async fn validator_keys(c: &Cluster, i: usize) -> Option<Vec<String>> {
    let v = c.call(i, "validators", Value::Null).await.ok()?;
    v["validators"].as_array()?.iter().map(|v| v["pub_key"].as_str().map(str::to_owned)).collect()
}

/// Waits until every node of `nodes` follows the same leader, one of
/// `nodes`, and returns (its node index, the term). Nodes are matched to
/// leaders by their own validator key, so members added after genesis
/// count too.
async fn raft_leader(c: &Cluster, nodes: &[usize]) -> (usize, u64) {
    c.wait_for(DEADLINE, "one raft leader followed by every node", nodes, || async move {
        let mut seen = BTreeSet::new();
        let mut leader_term = None;
        for &i in nodes {
            let s = c.call(i, "status", Value::Null).await.ok()?;
            let leader = s["consensus"]["leader"].as_str()?.to_owned();
            let term = s["consensus"]["term"].as_u64()?;
            if s["consensus"]["role"] == "leader" {
                leader_term = Some((i, s["node_info"]["validator"].as_str()?.to_owned(), term));
            }
            seen.insert((leader, term));
        }
        let (l, key, t) = leader_term?;
        (seen.len() == 1 && seen.contains(&(key, t))).then_some((l, t))
    })
    .await
    .unwrap()
}

/// A Raft testnet of `n` members with a leader every member follows.
async fn running_raft(n: usize) -> Cluster {
    let mut c = Cluster::generate(bin(), n, &["--protocol", "raft"]).expect("generate testnet");
    log_env(&mut c);
    c.start_all().expect("start");
    raft_leader(&c, &(0..n).collect::<Vec<_>>()).await;
    c
}

/// Issue 4, shown 1 and 2: a 3-member Raft chain commits transactions
/// submitted to any member (followers pass them on to the leader). The
/// leader is killed with SIGKILL under load: a new leader is elected, no
/// transaction acknowledged as committed is lost, and the old leader,
/// restarted, rejoins as a follower with the same chain and app hash. The
/// survivors campaign as soon as the leader's connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_leader_killed_under_load_loses_no_acknowledged_transaction() {
    let _serial = SERIAL.lock().await;
    let mut c = running_raft(3).await;
    let status = c.call(0, "status", Value::Null).await.unwrap();
    assert_eq!(status["node_info"]["protocol"], "raft");
    let (leader, term) = raft_leader(&c, &[0, 1, 2]).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    // Load through the followers, concurrently, each acknowledged only once
    // committed; the leader is killed while half of it is in flight.
    let key = client(&c, 0);
    let mut tasks = Vec::new();
    for n in 0..60u64 {
        let tx = put(&key, n, &format!("raft-{n}"), &format!("v{n}"));
        let rpc = c.nodes[followers[n as usize % 2]].rpc.clone();
        let hash = tx_hash(&tx);
        tasks.push(tokio::spawn(async move {
            let r = phalanx_testnet::cluster::call(&rpc, "broadcast_tx_commit", json!({ "tx": b64(&tx) })).await;
            (hash, r.is_ok_and(|r| r["code"] == 0))
        }));
        if n == 30 {
            c.kill(leader).unwrap();
        }
    }
    let mut acked = Vec::new();
    for t in tasks {
        let (hash, ok) = t.await.unwrap();
        if ok {
            acked.push(hash);
        }
    }
    let (new_leader, new_term) = raft_leader(&c, &followers).await;
    assert_ne!(new_leader, leader);
    assert!(new_term > term, "a new term: {new_term} > {term}");
    // The killed process's connections closed at once, and the survivors
    // campaigned on that rather than waiting out an election timeout.
    for &i in &followers {
        assert!(c.log(i).contains("lost the connection to the leader; campaigning early"), "node{i}");
    }
    assert!(acked.len() >= 30, "transactions submitted around the crash commit: {} acked", acked.len());
    wait_committed(&c, &followers, &acked).await;

    // The old leader rejoins as a follower and catches up.
    c.start(leader).unwrap();
    let target = c.height(new_leader).await.unwrap();
    c.wait_height(leader, target, DEADLINE).await.unwrap();
    wait_committed(&c, &[leader], &acked).await;
    let (again, _) = raft_leader(&c, &[0, 1, 2]).await;
    assert_ne!(again, leader, "the restarted node does not take over");
    let s = c.call(leader, "status", Value::Null).await.unwrap();
    assert_eq!(s["consensus"]["role"], "follower");
    assert_same_chain(&c, &[0, 1, 2]).await;
    let r = c.call(leader, "query", json!({ "key": "raft-59" })).await.unwrap();
    assert_eq!(r["value"]["utf8"], "v59");
}

/// Makes node `i` drop all traffic with the nodes `from` (`admin_partition`;
/// an empty list heals).
async fn partition(c: &Cluster, i: usize, from: &[usize]) {
    let keys = validator_keys(c, i).await.unwrap();
    let peers: Vec<&String> = from.iter().map(|&j| &keys[j]).collect();
    c.call(i, "admin_partition", json!({ "peers": peers })).await.unwrap();
}

/// Issue 4, shown 3 (pre-vote): a follower cut off by a partition (its
/// network drops all traffic with the other two) campaigns with pre-votes
/// that fail, so its term never rises; the majority keeps committing; once
/// healed it follows again without changing the leader or the term.
/// (Check-quorum): a leader partitioned from both followers steps down; the
/// followers elect a leader of a later term and commit during the
/// partition; healed, the old leader follows the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_pre_vote_and_check_quorum_keep_a_partitioned_node_harmless() {
    let _serial = SERIAL.lock().await;
    let c = running_raft(3).await;
    let (leader, term) = raft_leader(&c, &[0, 1, 2]).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let cut = followers[0];
    partition(&c, cut, &[leader, followers[1]]).await;
    let key = client(&c, 1);
    let tx = put(&key, 0, "while-cut", "1");
    assert_eq!(submit(&c, leader, "broadcast_tx_commit", &tx).await.unwrap()["code"], 0);
    // The cut node's election timer fires: it asks for pre-votes, gets
    // none, and stays in its term.
    let seen = c
        .wait_for(DEADLINE, "the cut node to campaign with pre-votes", &[cut], || async {
            let s = c.call(cut, "status", Value::Null).await.ok()?;
            (s["consensus"]["role"] == "pre-candidate").then(|| s["consensus"]["term"].as_u64())?
        })
        .await
        .unwrap();
    assert_eq!(seen, term, "a pre-vote changes no term");
    let net = c.call(cut, "net_info", Value::Null).await.unwrap();
    assert!(net["dropped_partitioned"].as_u64().unwrap() > 0, "{net}");
    partition(&c, cut, &[]).await;
    wait_committed(&c, &[cut], &[tx_hash(&tx)]).await;
    let tx2 = put(&key, 1, "after-heal", "2");
    assert_eq!(submit(&c, leader, "broadcast_tx_commit", &tx2).await.unwrap()["code"], 0);
    wait_committed(&c, &[0, 1, 2], &[tx_hash(&tx2)]).await;
    assert_eq!(raft_leader(&c, &[0, 1, 2]).await, (leader, term), "leader and term unchanged");

    // Check-quorum: the leader cut off from both followers steps down.
    partition(&c, leader, &followers).await;
    c.wait_for(DEADLINE, "the isolated leader to step down", &[leader], || async {
        let s = c.call(leader, "status", Value::Null).await.ok()?;
        (s["consensus"]["role"] != "leader").then_some(())
    })
    .await
    .unwrap();
    let (new_leader, new_term) = raft_leader(&c, &followers).await;
    assert!(new_term > term, "the majority elects a leader of a later term");
    let tx3 = put(&key, 2, "during-partition", "3");
    assert_eq!(submit(&c, new_leader, "broadcast_tx_commit", &tx3).await.unwrap()["code"], 0);
    partition(&c, leader, &[]).await;
    wait_committed(&c, &[leader], &[tx_hash(&tx3)]).await;
    assert_eq!(raft_leader(&c, &[0, 1, 2]).await, (new_leader, new_term), "the old leader follows");
    assert_same_chain(&c, &[0, 1, 2]).await;
}

/// Issue 4, shown 5: a linearizable read issued right after a write that was
/// acknowledged on another node returns that write, on every member (a
/// follower asks the leader for a read index and waits until it applied
/// it). Unknown consistency levels are refused with a message naming them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_linearizable_read_sees_a_write_acknowledged_elsewhere() {
    let _serial = SERIAL.lock().await;
    let c = running_raft(3).await;
    let (leader, _) = raft_leader(&c, &[0, 1, 2]).await;
    let key = client(&c, 2);
    for (n, writer) in (0..3u64).zip([leader, (leader + 1) % 3, (leader + 2) % 3]) {
        let value = format!("v{n}");
        let tx = put(&key, n, "linear", &value);
        assert_eq!(submit(&c, writer, "broadcast_tx_commit", &tx).await.unwrap()["code"], 0);
        for reader in (0..3).filter(|&r| r != writer) {
            let r = c.call(reader, "query", json!({ "key": "linear", "consistency": "linearizable" })).await.unwrap();
            assert_eq!(r["value"]["utf8"], value, "node{reader} after a write acknowledged by node{writer}: {r}");
            assert_eq!(r["consistency"], "linearizable");
        }
    }
    let bad = c.call(0, "query", json!({ "key": "linear", "consistency": "strong" })).await;
    match bad {
        Err(RpcError::Rpc { message, .. }) => assert!(message.contains("\"strong\""), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Runs `phalanx admin ARGS` against node `i`; returns its JSON answer or
/// its error text.
async fn admin(c: &Cluster, i: usize, args: &[&str]) -> Result<Value, String> {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["admin", "--rpc", &c.nodes[i].rpc]).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("run phalanx admin");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("admin prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Issue 4, shown 4 (membership): a node made with `phalanx init --genesis`
/// is added to a running 3-member cluster as a learner (asked of a
/// follower, which forwards to the leader), catches up, is promoted to voter
/// through a joint configuration, and a genesis voter is removed; a client
/// keeps writing throughout and every write it was told committed is on
/// every remaining member. Nonsense changes are refused with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_learner_joins_is_promoted_and_a_voter_is_removed_while_committing() {
    let _serial = SERIAL.lock().await;
    let mut c = running_raft(3).await;
    // A client writing through nodes 0 and 1 until told to stop; every
    // write must be acknowledged as committed.
    let key = client(&c, 3);
    let rpcs = [c.nodes[0].rpc.clone(), c.nodes[1].rpc.clone()];
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let load = tokio::spawn(async move {
        let mut n = 0u64;
        while !*stop.borrow_and_update() {
            let tx = put(&key, n, &format!("m{n}"), &format!("v{n}"));
            let r =
                phalanx_testnet::cluster::call(&rpcs[n as usize % 2], "broadcast_tx_commit", json!({ "tx": b64(&tx) }))
                    .await;
            match r {
                Ok(r) if r["code"] == 0 => acked_tx.send(tx_hash(&tx)).unwrap(),
                other => panic!("write {n} was not acknowledged: {other:?}"),
            }
            n += 1;
        }
        n
    });
    let mut acked = Vec::new();
    let acks_since = |acked: &mut Vec<String>, rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        let before = acked.len();
        while let Ok(h) = rx.try_recv() {
            acked.push(h);
        }
        acked.len() - before
    };
    // Waits (under the deadline) until `n` more writes are acknowledged: the
    // client writes one at a time, so whether one already landed at a given
    // moment is timing, but that writes go on committing is the property.
    async fn more_acks(
        acked: &mut Vec<String>,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
        n: usize,
        what: &str,
    ) {
        let target = acked.len() + n;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while acked.len() < target {
            let h = tokio::time::timeout_at(deadline, rx.recv()).await.unwrap_or_else(|_| panic!("{what}"));
            acked.push(h.expect("the client is still writing"));
        }
    }
    c.wait_height(0, 20, DEADLINE).await.unwrap();

    // A new node joins as a learner and catches up.
    let new = c.add_node().unwrap();
    c.start(new).unwrap();
    let home = c.nodes[new].home.to_str().unwrap().to_owned();
    let (leader, _) = raft_leader(&c, &[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    let r = admin(&c, follower, &["add-learner", "--home", &home]).await.unwrap();
    assert_eq!(r["learners"].as_array().map(Vec::len), Some(1), "{r}");
    let target = c.height(leader).await.unwrap();
    c.wait_height(new, target, DEADLINE).await.unwrap();
    let s = c.call(new, "status", Value::Null).await.unwrap();
    assert_eq!(s["consensus"]["member"], "learner", "{s}");
    more_acks(&mut acked, &mut acked_rx, 1, "writes commit while the learner catches up").await;

    // Nonsense is refused with a reason, and changes nothing.
    let e = admin(&c, leader, &["promote", &validator_keys(&c, 0).await.unwrap()[0]]).await.unwrap_err();
    assert!(e.contains("already a voter"), "{e}");
    let stranger = Keypair::from_seed(&[0xab; 32]).public().to_hex();
    let e = admin(&c, leader, &["remove", &stranger]).await.unwrap_err();
    assert!(e.contains("not a member"), "{e}");

    // Promotion: the learner becomes a voter through a joint configuration.
    let r = admin(&c, leader, &["promote", &home]).await.unwrap();
    assert_eq!(r["voters"].as_array().map(Vec::len), Some(4), "{r}");
    c.wait_for(DEADLINE, "the promoted node to see itself as a voter", &[new], || async {
        let s = c.call(new, "status", Value::Null).await.ok()?;
        (s["consensus"]["member"] == "voter").then_some(())
    })
    .await
    .unwrap();
    more_acks(&mut acked, &mut acked_rx, 1, "writes commit across the promotion").await;

    // Removal of genesis voter node2 (whether or not it leads).
    let removed_key = validator_keys(&c, 0).await.unwrap()[2].clone();
    let r = admin(&c, 0, &["remove", &removed_key]).await.unwrap();
    assert_eq!(r["voters"].as_array().map(Vec::len), Some(3), "{r}");
    let remaining = [0, 1, new];
    raft_leader(&c, &remaining).await;
    acks_since(&mut acked, &mut acked_rx);
    more_acks(&mut acked, &mut acked_rx, 5, "writes commit after the removal").await;
    stop_tx.send(true).unwrap();
    let written = load.await.unwrap();
    acks_since(&mut acked, &mut acked_rx);
    assert_eq!(acked.len() as u64, written);
    c.kill(2).unwrap();
    wait_committed(&c, &remaining, &acked).await;
    let s = c.call(0, "status", Value::Null).await.unwrap();
    let voters: BTreeSet<&str> =
        s["consensus"]["voters"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!voters.contains(removed_key.as_str()) && voters.len() == 3, "{s}");
    assert_same_chain(&c, &remaining).await;
}

/// Issue 4, shown 4 (snapshots): with a short log (`raft_log_keep = 8`), a
/// follower killed while the others commit far past its log is, after a
/// restart, behind the leader's compaction point: it fetches the leader's
/// state snapshot in chunks, installs it, and continues with ordinary
/// appends. Its state then matches the leader's, it serves the writes made
/// while it was down, and it names its new oldest block when asked for an
/// older one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_follower_behind_the_compacted_log_catches_up_through_a_snapshot() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::generate(bin(), 3, &["--protocol", "raft"]).expect("generate testnet");
    for n in &c.nodes {
        let path = n.home.join("config/node.toml");
        let toml = std::fs::read_to_string(&path).unwrap();
        assert!(toml.contains("raft_log_keep = 1024"), "{toml}");
        std::fs::write(&path, toml.replace("raft_log_keep = 1024", "raft_log_keep = 8")).unwrap();
    }
    log_env(&mut c);
    c.start_all().unwrap();
    let (leader, _) = raft_leader(&c, &[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    c.kill(follower).unwrap();

    // 60 writes, one block each: far past the follower's log and the
    // leader's compaction point (it keeps 8 to 16 applied entries). The
    // values are 30 kB, so the snapshot takes two 1 MiB chunks.
    let key = client(&c, 0);
    let value = |n: u64| format!("v{n}-{}", "x".repeat(30_000));
    for n in 0..60u64 {
        let tx = put(&key, n, &format!("s{n}"), &value(n));
        assert_eq!(submit(&c, leader, "broadcast_tx_commit", &tx).await.unwrap()["code"], 0);
    }
    let target = c.height(leader).await.unwrap();

    c.start(follower).unwrap();
    c.wait_height(follower, target, DEADLINE).await.unwrap();
    let s = c.call(follower, "status", Value::Null).await.unwrap();
    let base = s["sync_info"]["base_height"].as_u64().unwrap();
    assert!(base > 1 && base <= target, "the follower installed a snapshot: base height {base}: {s}");
    let log = c.log(follower);
    assert!(log.contains("installed a state snapshot"), "the follower's log says so");
    assert!(log.contains("\"chunks\":2"), "fetched in two chunks");
    for n in [0u64, 30, 59] {
        let r = c.call(follower, "query", json!({ "key": format!("s{n}") })).await.unwrap();
        assert_eq!(r["value"]["utf8"], value(n), "s{n}");
    }
    match c.call(follower, "block", json!({ "height": 1 })).await {
        Err(RpcError::Rpc { message, .. }) => assert!(message.contains("state snapshot"), "{message}"),
        other => panic!("block 1 predates the snapshot: {other:?}"),
    }

    // It then follows by appends: new writes reach it, and from the
    // snapshot on its blocks and app hashes are the leader's.
    let tx = put(&key, 60, "after-snapshot", "yes");
    assert_eq!(submit(&c, follower, "broadcast_tx_commit", &tx).await.unwrap()["code"], 0);
    wait_committed(&c, &[0, 1, 2], &[tx_hash(&tx)]).await;
    let top = c.height(follower).await.unwrap();
    c.wait_height(leader, top, DEADLINE).await.unwrap();
    for h in base..=top {
        let a = c.call(leader, "block", json!({ "height": h })).await.unwrap();
        let b = c.call(follower, "block", json!({ "height": h })).await.unwrap();
        assert_eq!(a["block_id"], b["block_id"], "height {h}");
        assert_eq!(a["result_app_hash"], b["result_app_hash"], "height {h}");
    }
}

/// Issue 5, shown 4: a validator told to equivocate (in its node.toml's
/// [faults]) signs two blocks for each round it leads; honest validators
/// that see both (directly, or when the hidden one arrives by sync) submit
/// the pair as evidence, a block records it, and every honest validator
/// then serves it over `evidence` and counts it in `status`, while the
/// honest chains keep committing and agree.
///
/// The chain starts cold: node1 leads round 1 while nodes 2 and 3 are still
/// down, so that round fails. Leader reputation charges no one for rounds
/// before the chain's first block, so node1 keeps its turns (and
/// equivocates in them); no node ever reports a failure of round 1. The
/// chain's reputation window is 40 rounds: a turn that node1's own
/// equivocation makes fail (its block needs every vote but one) costs it
/// about ten seconds of turns, not the default window's two minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocating_validator_is_recorded_as_evidence_on_every_honest_node() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::generate(bin(), 4, &[]).expect("generate testnet");
    log_env(&mut c);
    for node in &c.nodes {
        let path = node.home.join("config/genesis.json");
        let mut g: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        g["consensus"]["reputation_window"] = json!(40);
        std::fs::write(&path, serde_json::to_string_pretty(&g).unwrap()).unwrap();
    }
    edit_node_toml(&c, 1, "\nkinds = []\n", "\nkinds = [\"equivocate\"]\n");
    c.start(0).expect("start node0");
    c.start(1).expect("start node1");
    let round_1_failed = "\"message\":\"round timed out\",\"round\":1,";
    for i in [0, 1] {
        let c = &c;
        c.wait_for(DEADLINE, &format!("node{i} to time out round 1"), &[i], || async move {
            c.log(i).contains(round_1_failed).then_some(())
        })
        .await
        .unwrap();
    }
    c.start(2).expect("start node2");
    c.start(3).expect("start node3");
    c.wait_height(0, 1, DEADLINE).await.expect("first block");
    let status = c.call(1, "status", Value::Null).await.unwrap();
    assert_eq!(status["node_info"]["faults"], json!(["equivocate"]));
    let culprit = status["node_info"]["validator"].as_str().unwrap().to_owned();
    assert!(c.log(1).contains("FAULT INJECTION"), "a faulty node says so at start");

    let honest = [0, 2, 3];
    let c = &c;
    for &i in &honest {
        let culprit = &culprit;
        c.wait_for(DEADLINE, &format!("node{i} to hold committed evidence against node1"), &[i, 1], || async move {
            let r = c.call(i, "evidence", Value::Null).await.ok()?;
            r["evidence"]
                .as_array()?
                .iter()
                .find(|e| e["culprit"] == culprit.as_str() && e["height"].is_u64())
                .map(|e| e["kind"].clone())
        })
        .await
        .unwrap();
        let s = c.call(i, "status", Value::Null).await.unwrap();
        assert!(s["evidence"]["by_culprit"][culprit].as_u64() >= Some(1), "status counts it: {s}");
    }
    match c.call(0, "evidence", json!({ "limit": 0 })).await {
        Err(RpcError::Rpc { code: -32602, message, .. }) => assert!(message.contains("limit 0"), "{message}"),
        other => panic!("a zero limit is refused, got {other:?}"),
    }
    let before = c.height(0).await.unwrap();
    c.wait_height(0, before + 3, DEADLINE).await.expect("the honest validators keep committing");
    assert_same_chain(c, &honest).await;
    for i in 0..4 {
        let log = c.log(i);
        assert!(!log.contains("\"last_failed_round\":1,"), "node{i} charged someone with the start-up round 1");
    }
}
