//! The one error type of this crate: what was wrong, in which file, at which field.
//!
//! Invariants:
//! - `file` is always set: the file's role name (`"node.toml"`, `"genesis.json"`,
//!   `"validator_key.json"`, `"node_key.json"`) or, when no file is involved yet,
//!   the path that was at fault (a home directory, say).
//! - `field`, when set, is a path a person can find in the file: `validators[2].power`,
//!   `rpc.listen_addr`, `p2p.persistent_peers[1]`.
//! - The message says what is wrong and, where it helps, what would be right. It never
//!   holds secret key material.

use std::fmt;

/// Why a configuration file (or a whole node home) was refused.
///
/// Shown as `"{file}: {field} {message}"` when `field` is set, e.g.
/// `genesis.json: validators[2].power must be > 0`, or `"{file}: {message}"` when it
/// is not. A message that begins by quoting the offending value is set off from the
/// field with a colon instead of a space, so it reads
/// `node.toml: rpc.listen_addr: "abc" is not an IP:port address`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file at fault, by its role name (`"genesis.json"`), or the path at fault.
    pub file: String,
    /// The field at fault, as a path into the file (`"validators[2].power"`), if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about `file` as a whole (a read failure, a syntax error).
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.into(), field: None, message: message.into() }
    }

    /// An error about one `field` of `file`.
    pub fn field(file: impl Into<String>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: file.into(), field: Some(field.into()), message: message.into() }
    }

    /// A parse error at a 1-based `line` and `column` of `file`.
    pub fn at(file: impl Into<String>, line: usize, column: usize, message: impl fmt::Display) -> ConfigError {
        ConfigError::new(file, format!("line {line}, column {column}: {message}"))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) if self.message.starts_with('"') => write!(f, "{}: {}: {}", self.file, field, self.message),
            Some(field) => write!(f, "{}: {} {}", self.file, field, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_a_field_joins_with_a_space() {
        let e = ConfigError::field("genesis.json", "validators[2].power", "must be > 0");
        assert_eq!(e.to_string(), "genesis.json: validators[2].power must be > 0");
    }

    #[test]
    fn display_with_a_quoted_value_joins_with_a_colon() {
        let e = ConfigError::field("node.toml", "rpc.listen_addr", "\"abc\" is not an IP:port address");
        assert_eq!(e.to_string(), "node.toml: rpc.listen_addr: \"abc\" is not an IP:port address");
    }

    #[test]
    fn display_without_a_field() {
        assert_eq!(ConfigError::new("node.toml", "cannot read it").to_string(), "node.toml: cannot read it");
        assert_eq!(ConfigError::at("node.toml", 3, 7, "oops").to_string(), "node.toml: line 3, column 7: oops");
    }
}
