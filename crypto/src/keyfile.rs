//! Key files: a JSON document holding one ed25519 key.
//!
//! ```json
//! { "type": "ed25519", "public_key": "<64 hex>", "secret_key": "<64 hex seed>" }
//! ```
//!
//! Files are written with mode 0600 (owner read/write only), through a
//! temporary file that is synced and renamed, so a crash never leaves a
//! half-written key. Reading checks that the type is known, both fields are
//! well-formed and that the public key matches the secret; every error names
//! the file and the field.

use crate::keys::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Not named `source`, which would make the I/O error this error's
    /// source too and print its reason twice in an error chain.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: already exists; refusing to overwrite a key (move it away first)")]
    Exists { path: PathBuf },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    #[serde(rename = "type")]
    kind: String,
    public_key: String,
    secret_key: String,
}

/// Writes `key` to a new file at `path` with mode 0600. Refuses to replace
/// an existing file.
pub fn write_new(path: &Path, key: &Keypair) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists { path: path.to_owned() });
    }
    let doc =
        KeyFileJson { kind: "ed25519".into(), public_key: key.public().to_hex(), secret_key: hex::encode(key.seed()) };
    let mut text = serde_json::to_string_pretty(&doc).expect("key file serialises");
    text.push('\n');
    let io = |error| KeyFileError::Io { path: path.to_owned(), error };
    let tmp = path.with_extension("json.tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let _ = fs::remove_file(&tmp);
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// Reads the key at `path`.
pub fn read(path: &Path) -> Result<Keypair, KeyFileError> {
    let malformed = |reason: String| KeyFileError::Malformed { path: path.to_owned(), reason };
    let text = fs::read_to_string(path).map_err(|error| KeyFileError::Io { path: path.to_owned(), error })?;
    let doc: KeyFileJson = serde_json::from_str(&text).map_err(|e| {
        malformed(format!("not a key file ({e}); expected {{\"type\", \"public_key\", \"secret_key\"}}"))
    })?;
    if doc.kind != "ed25519" {
        return Err(malformed(format!("type: unsupported key type {:?}, expected \"ed25519\"", doc.kind)));
    }
    let seed = hex::decode(doc.secret_key.trim()).map_err(|e| malformed(format!("secret_key: not hex ({e})")))?;
    let seed: [u8; 32] = seed.try_into().map_err(|s: Vec<u8>| {
        malformed(format!("secret_key: must be 32 bytes (64 hex characters), got {} bytes", s.len()))
    })?;
    let key = Keypair::from_seed(&seed);
    let public: PublicKey = doc.public_key.trim().parse().map_err(|e| malformed(format!("public_key: {e}")))?;
    if public != key.public() {
        return Err(malformed("public_key does not match secret_key".into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let k = Keypair::from_seed(&[3; 32]);
        write_new(&p, &k).unwrap();
        assert_eq!(read(&p).unwrap().public(), k.public());
    }

    #[cfg(unix)]
    #[test]
    fn written_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        write_new(&p, &Keypair::generate()).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        write_new(&p, &Keypair::generate()).unwrap();
        assert!(matches!(write_new(&p, &Keypair::generate()), Err(KeyFileError::Exists { .. })));
    }

    fn read_text(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.json");
        fs::write(&p, text).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("bad.json"), "error names the file: {e}");
        e
    }

    #[test]
    fn malformed_files_are_refused_with_the_field_named() {
        assert!(read_text("{").contains("not a key file"));
        let k = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let doc =
            |kind: &str, pk: &str, sk: &str| format!(r#"{{"type":"{kind}","public_key":"{pk}","secret_key":"{sk}"}}"#);
        let sk = hex::encode(k.seed());
        assert!(read_text(&doc("rsa", &k.public().to_hex(), &sk)).contains("type"));
        assert!(read_text(&doc("ed25519", &k.public().to_hex(), "zz")).contains("secret_key: not hex"));
        assert!(read_text(&doc("ed25519", &k.public().to_hex(), "abcd")).contains("secret_key: must be 32 bytes"));
        assert!(read_text(&doc("ed25519", "abcd", &sk)).contains("public_key:"));
        assert!(read_text(&doc("ed25519", &other.public().to_hex(), &sk)).contains("does not match"));
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = read(Path::new("/nonexistent/key.json")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/nonexistent/key.json"), "{text}");
        // The reason is in the message, so it is not also a source that an
        // error chain (`{:#}` of anyhow, as the CLI prints) would repeat.
        assert!(std::error::Error::source(&e).is_none(), "{text}");
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    }
}
