//! A small JSON-RPC client for the CLI and the tests.

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;
use std::time::Duration;

/// Talks to one node's RPC endpoint over HTTP.
#[derive(Clone)]
pub struct RpcClient {
    url: String,
    http: HttpClient,
}

/// A failed call: either the node answered with an error, or it could not
/// be reached.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{message} (code {code})")]
    Rpc { code: i32, message: String, data: Option<Value> },
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
}

impl CallError {
    pub fn code(&self) -> Option<i32> {
        match self {
            CallError::Rpc { code, .. } => Some(*code),
            CallError::Transport { .. } => None,
        }
    }
}

/// `host:port` or a URL, as a URL.
pub fn normalize_url(s: &str) -> String {
    if s.starts_with("http://") || s.starts_with("https://") { s.to_owned() } else { format!("http://{s}") }
}

impl RpcClient {
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<RpcClient> {
        let url = normalize_url(url);
        let http = HttpClientBuilder::default().request_timeout(timeout).max_response_size(64 << 20).build(&url)?;
        Ok(RpcClient { url, http })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with named parameters (a JSON object, or null).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let mut p = ObjectParams::new();
        if let Value::Object(map) = params {
            for (k, v) in map {
                p.insert(&k, v).expect("JSON values serialise");
            }
        }
        self.http.request::<Value, _>(method, p).await.map_err(|e| match e {
            ClientError::Call(obj) => CallError::Rpc {
                code: obj.code(),
                message: obj.message().to_owned(),
                data: obj.data().and_then(|d| serde_json::from_str(d.get()).ok()),
            },
            other => CallError::Transport { url: self.url.clone(), reason: other.to_string() },
        })
    }
}
