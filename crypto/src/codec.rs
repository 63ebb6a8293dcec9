//! The one canonical encoding: bincode 2 in a fixed configuration.
//!
//! Everything hashed or signed is encoded here and nowhere else. The
//! configuration is little-endian with variable-length integers; decoding
//! refuses trailing bytes and any length prefix that claims more than
//! [`DECODE_LIMIT_BYTES`], so a peer cannot make us allocate without bound.

use serde::{Serialize, de::DeserializeOwned};

/// Largest value [`decode`] will materialise, in bytes.
pub const DECODE_LIMIT_BYTES: usize = 64 * 1024 * 1024;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT_BYTES>,
>;

const fn config() -> Config {
    bincode::config::standard().with_little_endian().with_variable_int_encoding().with_limit::<DECODE_LIMIT_BYTES>()
}

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("malformed encoding: {0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Encodes `value` canonically.
///
/// Encoding a value of the project's own types cannot fail; a failure is a
/// programming error (for example a map with a non-serialisable key) and
/// panics.
///
/// The value is walked twice: once to count its bytes, once to write them
/// into a buffer of exactly that size. Counting is cheap next to copying,
/// and a block of megabytes is then written once, instead of being copied
/// through every doubling of a growing buffer (and page-faulted into each).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config()).expect("canonical encoding of a project type");
    let mut out = Vec::with_capacity(size.bytes_written);
    encode_into(value, &mut out);
    debug_assert_eq!(out.len(), size.bytes_written, "the counting pass and the writing pass agree");
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    bincode::serde::encode_into_std_write(value, out, config()).expect("canonical encoding of a project type");
}

/// Decodes a value that must occupy all of `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        b: Vec<u8>,
        c: Option<String>,
    }

    #[test]
    fn round_trip() {
        let s = Sample { a: 300, b: vec![1, 2, 3], c: Some("x".into()) };
        let bytes = encode(&s);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), s);
    }

    /// The encoding is a stable format: this pins it byte for byte.
    #[test]
    fn encoding_is_pinned() {
        let s = Sample { a: 300, b: vec![7], c: None };
        assert_eq!(encode(&s), vec![251, 44, 1, 1, 7, 0]);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&5u64);
        bytes.push(0);
        assert_eq!(decode::<u64>(&bytes), Err(CodecError::TrailingBytes(1)));
    }

    #[test]
    fn truncated_input_is_refused() {
        let bytes = encode(&Sample { a: 1, b: vec![1, 2, 3, 4], c: None });
        assert!(matches!(decode::<Sample>(&bytes[..3]), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A Vec<u8> whose varint length claims u64::MAX bytes.
        let bytes = [253u8, 255, 255, 255, 255, 255, 255, 255, 255];
        assert!(matches!(decode::<Vec<u8>>(&bytes), Err(CodecError::Malformed(_))));
    }
}
