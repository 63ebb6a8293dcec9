//! Why a transaction was refused, with the stable codes the RPC returns.

/// Why a transaction was refused.
///
/// Each variant has a stable numeric code ([`Rejection::code`]) that is part
/// of the public RPC, and a short snake_case label for metrics
/// ([`Rejection::kind`]). Codes are never reused or renumbered:
///
/// | code | kind             | variant                      | raised by   |
/// | ---- | ---------------- | ---------------------------- | ----------- |
/// | 1    | `malformed`      | [`Rejection::Malformed`]     | application |
/// | 2    | `bad_signature`  | [`Rejection::BadSignature`]  | application |
/// | 3    | `wrong_chain`    | [`Rejection::WrongChain`]    | application |
/// | 4    | `nonce_too_low`  | [`Rejection::NonceTooLow`]   | both        |
/// | 5    | `too_large`      | [`Rejection::TooLarge`]      | mempool     |
/// | 6    | `full`           | [`Rejection::Full`]          | mempool     |
/// | 7    | `duplicate`      | [`Rejection::Duplicate`]     | mempool     |
/// | 8    | `nonce_too_high` | [`Rejection::NonceTooHigh`]  | mempool     |
/// | 9    | `nonce_conflict` | [`Rejection::NonceConflict`] | mempool     |
/// | 10   | `committed`      | [`Rejection::Committed`]     | mempool     |
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Code 1: the bytes do not decode as a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Code 2: the sender's signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// Code 3: the transaction was signed for another chain.
    #[error("wrong chain id {got:?}: this node serves chain {want:?}")]
    WrongChain { got: String, want: String },
    /// Code 4: the nonce is below the sender's committed next nonce.
    #[error("nonce {got} already used (next nonce is {expected}): replayed or stale transaction")]
    NonceTooLow { got: u64, expected: u64 },
    /// Code 5: the transaction is larger than `max_tx_bytes`.
    #[error("transaction is {size} bytes, the limit is {max}")]
    TooLarge { size: usize, max: usize },
    /// Code 6: admitting it would pass `max_txs` or `max_bytes` (for a
    /// client's transaction, three quarters of them: the rest is kept for
    /// transactions forwarded by peers); `txs` and `bytes` are what the pool
    /// held when it refused.
    #[error("mempool full ({txs} transactions, {bytes} bytes); try again later")]
    Full { txs: usize, bytes: usize },
    /// Code 7: a transaction with the same hash is already pending.
    #[error("transaction already in the mempool")]
    Duplicate,
    /// Code 8: the nonce is more than `max_nonce_gap` past the sender's
    /// committed next nonce; `max` is the highest nonce accepted now.
    #[error("nonce {got} is too far ahead (the highest accepted now is {max}); submit the missing lower nonces first")]
    NonceTooHigh { got: u64, max: u64 },
    /// Code 9: the sender already has a different pending transaction with
    /// this nonce; only one of them could ever apply.
    #[error("another pending transaction from this sender already has nonce {nonce}")]
    NonceConflict { nonce: u64 },
    /// Code 10: a transaction with the same hash committed recently (within
    /// the pool's memory of its last `max_txs` committed hashes). Stops a
    /// transaction that reaches a node again after it committed (late
    /// gossip) from committing twice where the application has no replay
    /// protection of its own.
    #[error("transaction already committed")]
    Committed,
}

impl Rejection {
    /// Every [`Rejection::kind`], indexed by `code() - 1`, for metrics that
    /// export all kinds including those never seen.
    pub const KINDS: [&'static str; 10] = [
        "malformed",
        "bad_signature",
        "wrong_chain",
        "nonce_too_low",
        "too_large",
        "full",
        "duplicate",
        "nonce_too_high",
        "nonce_conflict",
        "committed",
    ];

    /// The stable numeric code of this rejection (see the table on [`Rejection`]).
    pub fn code(&self) -> u32 {
        match self {
            Rejection::Malformed(_) => 1,
            Rejection::BadSignature => 2,
            Rejection::WrongChain { .. } => 3,
            Rejection::NonceTooLow { .. } => 4,
            Rejection::TooLarge { .. } => 5,
            Rejection::Full { .. } => 6,
            Rejection::Duplicate => 7,
            Rejection::NonceTooHigh { .. } => 8,
            Rejection::NonceConflict { .. } => 9,
            Rejection::Committed => 10,
        }
    }

    /// A short snake_case label for metrics: `"malformed"`, `"bad_signature"`, ...
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.code() as usize - 1]
    }
}
