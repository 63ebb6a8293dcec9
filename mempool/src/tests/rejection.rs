//! The public RPC codes, labels and messages of every rejection.

use crate::Rejection;

/// Every rejection has its documented stable code, its metrics label (the
/// entry of `Rejection::KINDS` at `code - 1`) and its message.
#[test]
fn every_rejection_has_its_code_kind_and_message() {
    let table = [
        (Rejection::Malformed("truncated nonce".into()), 1, "malformed", "malformed transaction: truncated nonce"),
        (Rejection::BadSignature, 2, "bad_signature", "invalid signature"),
        (
            Rejection::WrongChain { got: "test-1".into(), want: "main-1".into() },
            3,
            "wrong_chain",
            "wrong chain id \"test-1\": this node serves chain \"main-1\"",
        ),
        (
            Rejection::NonceTooLow { got: 3, expected: 5 },
            4,
            "nonce_too_low",
            "nonce 3 already used (next nonce is 5): replayed or stale transaction",
        ),
        (
            Rejection::TooLarge { size: 70_000, max: 65_536 },
            5,
            "too_large",
            "transaction is 70000 bytes, the limit is 65536",
        ),
        (
            Rejection::Full { txs: 50_000, bytes: 1_234 },
            6,
            "full",
            "mempool full (50000 transactions, 1234 bytes); try again later",
        ),
        (Rejection::Duplicate, 7, "duplicate", "transaction already in the mempool"),
        (
            Rejection::NonceTooHigh { got: 90, max: 69 },
            8,
            "nonce_too_high",
            "nonce 90 is too far ahead (the highest accepted now is 69); submit the missing lower nonces first",
        ),
        (
            Rejection::NonceConflict { nonce: 7 },
            9,
            "nonce_conflict",
            "another pending transaction from this sender already has nonce 7",
        ),
        (Rejection::Committed, 10, "committed", "transaction already committed"),
    ];
    for (rejection, code, kind, message) in table {
        assert_eq!((rejection.code(), rejection.kind(), rejection.to_string().as_str()), (code, kind, message));
        assert_eq!(Rejection::KINDS[code as usize - 1], kind);
    }
}
