//! Transactions of the built-in application.
//!
//! A transaction names its chain, its sender (an ed25519 public key), the
//! sender's next nonce and one operation; the sender signs its canonical
//! encoding in the `Transaction` domain. On the wire a transaction is the
//! canonical encoding of [`SignedTx`]; its hash is SHA-256 of those bytes.
//!
//! Nonces are per sender and must equal the account's next nonce when the
//! transaction executes, so a replayed transaction always fails.

use phalanx_consensus::types::Evidence;
use phalanx_crypto::{Domain, Hash, Keypair, PublicKey, Signature, codec};
use serde::{Deserialize, Serialize};

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Set `key` to `value`.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` (succeeds whether or not it exists).
    Delete { key: Vec<u8> },
    /// Move `amount` from the sender's balance to `to`'s.
    Transfer { to: PublicKey, amount: u64 },
    /// Record proof that a validator signed two conflicting consensus
    /// messages. Validators submit this when they detect misbehaviour; once
    /// committed, every replica holds the evidence in its state. The same
    /// misbehaviour is recorded once; a second report fails without effect.
    Evidence(Box<Evidence>),
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: String,
    pub sender: PublicKey,
    pub nonce: u64,
    pub op: Op,
}

impl Transaction {
    /// Signs the transaction with `key` (which must be the sender's).
    pub fn sign(self, key: &Keypair) -> SignedTx {
        let signature = key.sign(Domain::Transaction, &self.chain_id, &codec::encode(&self));
        SignedTx { tx: self, signature }
    }
}

/// A transaction with its sender's signature: what clients submit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    pub tx: Transaction,
    pub signature: Signature,
}

impl SignedTx {
    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Parses wire bytes.
    pub fn decode(bytes: &[u8]) -> Result<SignedTx, codec::CodecError> {
        codec::decode(bytes)
    }

    /// The transaction hash (of the wire bytes).
    pub fn hash(&self) -> Hash {
        Hash::digest(&self.encode())
    }

    /// Checks the sender's signature.
    pub fn verify_signature(&self) -> bool {
        self.tx.sender.verify(Domain::Transaction, &self.tx.chain_id, &codec::encode(&self.tx), &self.signature).is_ok()
    }

    /// The exact bytes the signature covers (for batch verification).
    pub fn signing_message(&self) -> Vec<u8> {
        phalanx_crypto::signing_message(Domain::Transaction, &self.tx.chain_id, &codec::encode(&self.tx))
    }
}

/// Shows bytes as a string when they are UTF-8, else as base64 (for JSON).
pub fn show_bytes(b: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::json!({ "utf8": s }),
        Err(_) => serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

/// A JSON description of a transaction, for RPC answers.
pub fn describe(stx: &SignedTx) -> serde_json::Value {
    let op = match &stx.tx.op {
        Op::Put { key, value } => serde_json::json!({ "put": { "key": show_bytes(key), "value": show_bytes(value) } }),
        Op::Delete { key } => serde_json::json!({ "delete": { "key": show_bytes(key) } }),
        Op::Transfer { to, amount } => serde_json::json!({ "transfer": { "to": to.to_hex(), "amount": amount } }),
        Op::Evidence(e) => serde_json::json!({ "evidence": {
            "kind": e.kind(), "culprit": e.culprit().to_hex(), "round": e.round(),
        } }),
    };
    serde_json::json!({
        "chain_id": stx.tx.chain_id,
        "sender": stx.tx.sender.to_hex(),
        "nonce": stx.tx.nonce,
        "op": op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &Keypair) -> SignedTx {
        Transaction {
            chain_id: "c".into(),
            sender: key.public(),
            nonce: 0,
            op: Op::Put { key: b"k".to_vec(), value: b"v".to_vec() },
        }
        .sign(key)
    }

    #[test]
    fn sign_encode_decode_verify() {
        let key = Keypair::from_seed(&[1; 32]);
        let stx = sample(&key);
        let back = SignedTx::decode(&stx.encode()).unwrap();
        assert_eq!(back, stx);
        assert!(back.verify_signature());
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let key = Keypair::from_seed(&[1; 32]);
        let mut stx = sample(&key);
        stx.tx.nonce = 1;
        assert!(!stx.verify_signature());
    }

    /// The wire format of a signed transaction is stable: this pins its
    /// encoding, so an accidental change to the format fails here first.
    #[test]
    fn wire_format_is_pinned() {
        let key = Keypair::from_seed(&[1; 32]);
        let bytes = sample(&key).encode();
        assert_eq!(
            hex::encode(&bytes),
            "0163".to_owned()
                + &key.public().to_hex()
                + "0000"
                + "01"
                + "6b"
                + "01"
                + "76"
                + &hex::encode(sample(&key).signature.0)
        );
    }
}
