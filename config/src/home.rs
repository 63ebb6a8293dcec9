//! The node home directory: where each file lives, creating a home, and loading one.
//!
//! ```text
//! <home>/config/node.toml           node settings        (NodeConfig)
//! <home>/config/genesis.json        chain definition     (Genesis)
//! <home>/config/validator_key.json  consensus key        (phalanx_crypto::keyfile)
//! <home>/config/node_key.json       network key          (phalanx_crypto::keyfile)
//! <home>/data/                      database             (node.toml `data_dir`)
//! ```
//!
//! Invariants:
//! - [`Home::load`] returns only a home whose four files all parse and validate, and in
//!   which, if the validator key is in the genesis validator set, the network key listed
//!   beside it is the one in `config/node_key.json`.
//! - [`Home::init`] checks everything before it writes anything: it never overwrites
//!   `node.toml` or a key file, and refuses a configuration that [`Home::load`] would
//!   refuse. Key files are written with mode 0600 by the crypto crate.
//! - Nothing here ever prints or returns secret key material in an error.

use crate::error::ConfigError;
use crate::genesis::Genesis;
use crate::node::NodeConfig;
use phalanx_crypto::Keypair;
use phalanx_crypto::keyfile::{self, KeyFileError};
use std::fs;
use std::path::{Path, PathBuf};

/// The configuration directory's name inside a home.
pub const CONFIG_DIR: &str = "config";
/// The node settings file's name.
pub const NODE_TOML: &str = "node.toml";
/// The genesis file's name.
pub const GENESIS_JSON: &str = "genesis.json";
/// The consensus key file's name.
pub const VALIDATOR_KEY_JSON: &str = "validator_key.json";
/// The network key file's name.
pub const NODE_KEY_JSON: &str = "node_key.json";

/// A node home directory (see the module doc for its layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

/// Everything in a home, read and validated by [`Home::load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Where it was loaded from.
    pub home: Home,
    /// `config/node.toml`.
    pub node: NodeConfig,
    /// `config/genesis.json`.
    pub genesis: Genesis,
    /// `config/validator_key.json`: signs proposals and votes.
    pub validator_key: Keypair,
    /// `config/node_key.json`: the node's network identity.
    pub node_key: Keypair,
}

impl Loaded {
    /// The database directory, resolved against the home.
    pub fn data_dir(&self) -> PathBuf {
        self.home.data_dir(&self.node)
    }

    /// This node's index in the genesis validator set, or `None` if it is not a validator.
    pub fn validator_index(&self) -> Option<usize> {
        self.genesis.validator_index(&self.validator_key.public())
    }
}

impl Home {
    /// The home rooted at `root` (nothing is read or created).
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<home>/config`.
    pub fn config_dir(&self) -> PathBuf {
        self.root.join(CONFIG_DIR)
    }

    /// `<home>/config/node.toml`.
    pub fn node_toml(&self) -> PathBuf {
        self.config_dir().join(NODE_TOML)
    }

    /// `<home>/config/genesis.json`.
    pub fn genesis_json(&self) -> PathBuf {
        self.config_dir().join(GENESIS_JSON)
    }

    /// `<home>/config/validator_key.json`.
    pub fn validator_key(&self) -> PathBuf {
        self.config_dir().join(VALIDATOR_KEY_JSON)
    }

    /// `<home>/config/node_key.json`.
    pub fn node_key(&self) -> PathBuf {
        self.config_dir().join(NODE_KEY_JSON)
    }

    /// The database directory: `node.data_dir` if absolute, else resolved against the root.
    pub fn data_dir(&self, node: &NodeConfig) -> PathBuf {
        // `join` keeps an absolute argument as it is.
        self.root.join(&node.data_dir)
    }

    /// Creates `config/` and the data directory and writes all four files.
    ///
    /// Checks first and changes nothing if: `node` or `genesis` does not validate; the
    /// validator key is in genesis but listed with another network key; or `node.toml`
    /// or a key file already exists (the error names the path). An existing
    /// `genesis.json` is replaced by `genesis`.
    pub fn init(
        &self,
        node: &NodeConfig,
        genesis: &Genesis,
        validator_key: &Keypair,
        node_key: &Keypair,
    ) -> Result<(), ConfigError> {
        node.validate()?;
        genesis.validate()?;
        check_node_key_in_genesis(genesis, validator_key, node_key)?;
        for (file, path) in [
            (NODE_TOML, self.node_toml()),
            (VALIDATOR_KEY_JSON, self.validator_key()),
            (NODE_KEY_JSON, self.node_key()),
        ] {
            if path.exists() {
                let message =
                    format!("{} already exists; refusing to overwrite it (move it away first)", path.display());
                return Err(ConfigError::new(file, message));
            }
        }
        create_dir(&self.config_dir())?;
        create_dir(&self.data_dir(node))?;
        write_key(VALIDATOR_KEY_JSON, &self.validator_key(), validator_key)?;
        write_key(NODE_KEY_JSON, &self.node_key(), node_key)?;
        genesis.save(&self.genesis_json())?;
        // Last, so that a node.toml in place means the home is complete.
        node.save(&self.node_toml())
    }

    /// Reads and validates all four files (see the module doc for what is checked).
    ///
    /// A missing home or file is reported as such, with the `phalanx init` command that
    /// creates one.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        if !self.root.is_dir() {
            let problem = if self.root.exists() { "is not a directory" } else { "does not exist" };
            let message = format!("home directory {problem}; create one with {}", self.init_command());
            return Err(ConfigError::new(self.root.display().to_string(), message));
        }
        let node = NodeConfig::load(&self.existing(NODE_TOML, self.node_toml())?)?;
        let genesis = Genesis::load(&self.existing(GENESIS_JSON, self.genesis_json())?)?;
        let validator_key = read_key(VALIDATOR_KEY_JSON, &self.existing(VALIDATOR_KEY_JSON, self.validator_key())?)?;
        let node_key = read_key(NODE_KEY_JSON, &self.existing(NODE_KEY_JSON, self.node_key())?)?;
        check_node_key_in_genesis(&genesis, &validator_key, &node_key)?;
        Ok(Loaded { home: self.clone(), node, genesis, validator_key, node_key })
    }

    /// `path` if it exists, else an error that says so and how to create the home.
    fn existing(&self, file: &str, path: PathBuf) -> Result<PathBuf, ConfigError> {
        if path.exists() {
            return Ok(path);
        }
        let message = format!("{} does not exist; create the home with {}", path.display(), self.init_command());
        Err(ConfigError::new(file, message))
    }

    fn init_command(&self) -> String {
        format!("`phalanx init --home {}`", self.root.display())
    }
}

/// If the validator key is in genesis, the network key listed beside it must be `node_key`.
fn check_node_key_in_genesis(
    genesis: &Genesis,
    validator_key: &Keypair,
    node_key: &Keypair,
) -> Result<(), ConfigError> {
    let Some(i) = genesis.validator_index(&validator_key.public()) else {
        return Ok(());
    };
    if genesis.validators[i].node_key == node_key.public() {
        return Ok(());
    }
    let message = format!("does not match {CONFIG_DIR}/{NODE_KEY_JSON}");
    Err(ConfigError::field(GENESIS_JSON, format!("validators[{i}].node_key"), message))
}

fn create_dir(path: &Path) -> Result<(), ConfigError> {
    fs::create_dir_all(path)
        .map_err(|e| ConfigError::new(path.display().to_string(), format!("cannot create directory: {e}")))
}

fn read_key(file: &str, path: &Path) -> Result<Keypair, ConfigError> {
    keyfile::read(path).map_err(|e| key_error(file, e))
}

fn write_key(file: &str, path: &Path, key: &Keypair) -> Result<(), ConfigError> {
    keyfile::write_new(path, key).map_err(|e| key_error(file, e))
}

fn key_error(file: &str, e: KeyFileError) -> ConfigError {
    match e {
        KeyFileError::Io { path, error } => ConfigError::new(file, format!("{}: {error}", path.display())),
        KeyFileError::Malformed { reason, .. } => ConfigError::new(file, reason),
        exists @ KeyFileError::Exists { .. } => ConfigError::new(file, exists.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{AppGenesis, ConsensusParams, GenesisValidator};

    fn keypair(seed: u8) -> Keypair {
        Keypair::from_seed(&[seed; 32])
    }

    /// Four validators: validator i has consensus key seed i and network key seed 100 + i.
    fn genesis() -> Genesis {
        Genesis {
            chain_id: "phalanx-test".into(),
            genesis_time: "2026-11-26T12:00:00Z".into(),
            consensus: ConsensusParams::default(),
            validators: (0..4)
                .map(|i| GenesisValidator {
                    name: format!("node{i}"),
                    pub_key: keypair(i).public(),
                    power: 1,
                    node_key: keypair(100 + i).public(),
                })
                .collect(),
            app: AppGenesis::default(),
        }
    }

    fn init_validator(home: &Home, i: u8) {
        home.init(&NodeConfig::default_for(&format!("node{i}")), &genesis(), &keypair(i), &keypair(100 + i)).unwrap();
    }

    #[test]
    fn layout() {
        let home = Home::new("/h");
        assert_eq!(home.root(), Path::new("/h"));
        assert_eq!(home.config_dir(), Path::new("/h/config"));
        assert_eq!(home.node_toml(), Path::new("/h/config/node.toml"));
        assert_eq!(home.genesis_json(), Path::new("/h/config/genesis.json"));
        assert_eq!(home.validator_key(), Path::new("/h/config/validator_key.json"));
        assert_eq!(home.node_key(), Path::new("/h/config/node_key.json"));
        let mut node = NodeConfig::default_for("n");
        assert_eq!(home.data_dir(&node), Path::new("/h/data"));
        node.data_dir = "db/chain".into();
        assert_eq!(home.data_dir(&node), Path::new("/h/db/chain"));
        node.data_dir = "/var/lib/phalanx".into();
        assert_eq!(home.data_dir(&node), Path::new("/var/lib/phalanx"));
    }

    #[test]
    fn init_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("node2"));
        init_validator(&home, 2);
        assert!(home.root().join("data").is_dir());
        let loaded = home.load().unwrap();
        assert_eq!(loaded.home, home);
        assert_eq!(loaded.node, NodeConfig::default_for("node2"));
        assert_eq!(loaded.genesis, genesis());
        assert_eq!(loaded.validator_key.public(), keypair(2).public());
        assert_eq!(loaded.node_key.public(), keypair(102).public());
        assert_eq!(loaded.validator_index(), Some(2));
        assert_eq!(loaded.data_dir(), home.root().join("data"));
        let node_toml = fs::read_to_string(home.node_toml()).unwrap();
        assert!(node_toml.contains("# "), "node.toml is commented: {node_toml}");
    }

    #[test]
    fn init_creates_a_configured_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let mut node = NodeConfig::default_for("n");
        node.data_dir = "db".into();
        home.init(&node, &genesis(), &keypair(0), &keypair(100)).unwrap();
        assert!(dir.path().join("db").is_dir());
        assert_eq!(home.load().unwrap().data_dir(), dir.path().join("db"));
    }

    /// A node whose key is not in genesis (a full node) loads too.
    #[test]
    fn non_validators_load() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        home.init(&NodeConfig::default_for("observer"), &genesis(), &keypair(50), &keypair(150)).unwrap();
        assert_eq!(home.load().unwrap().validator_index(), None);
    }

    #[test]
    fn init_refuses_to_overwrite_node_toml() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        fs::create_dir_all(home.config_dir()).unwrap();
        fs::write(home.node_toml(), "moniker = \"mine\"\n").unwrap();
        let e = home.init(&NodeConfig::default_for("n"), &genesis(), &keypair(0), &keypair(100)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "node.toml: {} already exists; refusing to overwrite it (move it away first)",
                home.node_toml().display()
            )
        );
        assert_eq!(fs::read_to_string(home.node_toml()).unwrap(), "moniker = \"mine\"\n");
        assert!(!home.validator_key().exists() && !home.genesis_json().exists(), "nothing else written");
    }

    #[test]
    fn init_refuses_to_overwrite_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        init_validator(&home, 0);
        fs::remove_file(home.node_toml()).unwrap();
        let e = home.init(&NodeConfig::default_for("n"), &genesis(), &keypair(1), &keypair(101)).unwrap_err();
        assert_eq!(e.file, "validator_key.json");
        assert!(e.message.contains("already exists"), "{e}");
        assert_eq!(keyfile::read(&home.validator_key()).unwrap().public(), keypair(0).public());
    }

    #[test]
    fn init_refuses_invalid_input_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        let mut bad = genesis();
        bad.validators[0].power = 0;
        let e = home.init(&NodeConfig::default_for("n"), &bad, &keypair(0), &keypair(100)).unwrap_err();
        assert_eq!(e.to_string(), "genesis.json: validators[0].power must be > 0");
        let e = home.init(&NodeConfig::default_for(""), &genesis(), &keypair(0), &keypair(100)).unwrap_err();
        assert_eq!(e.file, "node.toml");
        let e = home.init(&NodeConfig::default_for("n"), &genesis(), &keypair(0), &keypair(101)).unwrap_err();
        assert_eq!(e.to_string(), "genesis.json: validators[0].node_key does not match config/node_key.json");
        assert!(!home.root().exists());
    }

    #[test]
    fn missing_home_suggests_init() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nowhere");
        let e = Home::new(&root).load().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: home directory does not exist; create one with `phalanx init --home {}`",
                root.display(),
                root.display()
            )
        );
    }

    #[test]
    fn missing_file_suggests_init() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        init_validator(&home, 0);
        fs::remove_file(home.genesis_json()).unwrap();
        let e = home.load().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "genesis.json: {} does not exist; create the home with `phalanx init --home {}`",
                home.genesis_json().display(),
                dir.path().display()
            )
        );
        fs::remove_file(home.node_key()).unwrap();
        fs::remove_file(home.node_toml()).unwrap();
        assert!(home.load().unwrap_err().to_string().starts_with("node.toml: "));
    }

    #[test]
    fn node_key_must_match_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        init_validator(&home, 3);
        fs::remove_file(home.node_key()).unwrap();
        keyfile::write_new(&home.node_key(), &keypair(200)).unwrap();
        assert_eq!(
            home.load().unwrap_err().to_string(),
            "genesis.json: validators[3].node_key does not match config/node_key.json"
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        init_validator(&home, 0);
        fs::write(home.node_key(), "{").unwrap();
        let e = home.load().unwrap_err();
        assert_eq!(e.file, "node_key.json");
        assert!(e.message.starts_with("not a key file"), "{e}");
        assert!(!e.to_string().contains(&hex_seed(100)), "no secrets in errors");

        fs::write(home.validator_key(), "{\"type\": \"rsa\", \"public_key\": \"\", \"secret_key\": \"\"}").unwrap();
        let e = home.load().unwrap_err();
        assert_eq!(e.to_string(), "validator_key.json: type: unsupported key type \"rsa\", expected \"ed25519\"");

        fs::write(home.node_toml(), "moniker = \"n\"\n[p2p]\nlisten_addr = \"abc\"\n").unwrap();
        let e = home.load().unwrap_err();
        assert_eq!(e.to_string(), "node.toml: p2p.listen_addr: \"abc\" is not an IP:port address");
    }

    fn hex_seed(seed: u8) -> String {
        format!("{seed:02x}").repeat(32)
    }
}
