//! `genesis.json`: the chain's definition, identical on every validator.
//!
//! It fixes the chain id, the start time, the consensus protocol and its parameters, the
//! validator set with each validator's consensus key, voting power and network key, and
//! the application's initial state.
//!
//! Invariants of a genesis that passed [`Genesis::validate`] (each refused with a
//! [`ConfigError`] naming `genesis.json` and the field):
//! - `chain_id` is 1..=50 characters of `[A-Za-z0-9._-]` (so it always fits the crypto
//!   crate's 255-byte signing limit);
//! - `genesis_time` is an RFC 3339 UTC timestamp, so [`Genesis::genesis_time_ms`] is exact;
//! - there is at least one validator; names are non-empty and unique; every power is
//!   positive; the total power is at most [`TOTAL_POWER_MAX`], so quorum arithmetic on
//!   powers cannot overflow; consensus keys are unique and network keys are unique;
//! - consensus timing and size bounds hold (see [`ConsensusParams`]);
//! - account keys are unique and the balances sum to at most `u64::MAX`.
//!
//! Unknown fields are refused everywhere, so a misspelt setting is an error and not a
//! silently ignored line. This module never writes anything except through
//! [`Genesis::save`].

use crate::error::ConfigError;
use crate::files;
use crate::home::GENESIS_JSON;
use phalanx_crypto::{CryptoError, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::UNIX_EPOCH;

const FILE: &str = GENESIS_JSON;
const MIB: u64 = 1024 * 1024;

/// Longest chain id, in characters.
pub const CHAIN_ID_MAX_CHARS: usize = 50;
/// Default `consensus.reputation_window`, in rounds.
pub const DEFAULT_REPUTATION_WINDOW: u64 = 500;
/// Largest allowed `consensus.reputation_window`.
pub const REPUTATION_WINDOW_MAX: u64 = 10_000;
/// Smallest allowed `consensus.timeout_ms_base`.
pub const TIMEOUT_MS_BASE_MIN: u64 = 10;
/// Largest allowed `consensus.block_max_bytes` (64 MiB).
pub const BLOCK_MAX_BYTES_LIMIT: u64 = 64 * MIB;
/// Largest allowed total voting power (`u64::MAX / 4`), so that sums and quorum
/// thresholds over powers never overflow.
pub const TOTAL_POWER_MAX: u64 = u64::MAX / 4;

/// The consensus protocol the chain runs. Written `"hotstuff"`, `"raft"` or `"pbft"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Chained HotStuff (the default).
    #[default]
    HotStuff,
    /// Raft (crash fault tolerant only).
    Raft,
    /// PBFT.
    Pbft,
}

impl Protocol {
    /// Every protocol, in the order shown to people.
    pub const ALL: [Protocol; 3] = [Protocol::HotStuff, Protocol::Raft, Protocol::Pbft];

    /// The name used in files and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::HotStuff => "hotstuff",
            Protocol::Raft => "raft",
            Protocol::Pbft => "pbft",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Protocol, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown protocol {s:?}: expected \"hotstuff\", \"raft\" or \"pbft\""))
    }
}

/// The replicated application. Written `"kv"` or `"noop"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// The key-value store with accounts (the default).
    #[default]
    Kv,
    /// Accepts every transaction and keeps no state (for benchmarks).
    Noop,
}

impl AppKind {
    /// The name used in files and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            AppKind::Kv => "kv",
            AppKind::Noop => "noop",
        }
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppKind {
    type Err = String;
    fn from_str(s: &str) -> Result<AppKind, String> {
        [AppKind::Kv, AppKind::Noop]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown app kind {s:?}: expected \"kv\" or \"noop\""))
    }
}

/// Consensus parameters shared by every validator. Missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusParams {
    /// Which protocol runs. Default `hotstuff`.
    pub protocol: Protocol,
    /// Round timeout of the first round at a height, in ms. Default 1000; at least 10.
    pub timeout_ms_base: u64,
    /// Ceiling of the growing round timeout, in ms. Default 30000; at least `timeout_ms_base`.
    pub timeout_ms_max: u64,
    /// How long a leader waits for transactions before proposing an empty block, in ms.
    /// Default 250; at most a third of `timeout_ms_base`. A leader enters its round as
    /// soon as it forms the previous QC, and in an idle chain both it and the next
    /// leader wait this long, so two waits must fit well inside one round timeout.
    pub empty_block_interval_ms: u64,
    /// Largest block, in bytes. Default 4 MiB; 1..=64 MiB.
    pub block_max_bytes: u64,
    /// Most transactions in a block. Default 10000; positive.
    pub block_max_txs: u64,
    /// Largest transaction, in bytes. Default 64 KiB; positive and at most `block_max_bytes`.
    pub tx_max_bytes: u64,
    /// HotStuff leader reputation: a validator that failed to lead a round
    /// is skipped by the leader schedule until that round is this many rounds
    /// old (at most a third of the voting power is skipped at once). Default
    /// 500; at most 10000; 0 turns it off (plain round-robin).
    pub reputation_window: u64,
}

impl Default for ConsensusParams {
    fn default() -> ConsensusParams {
        ConsensusParams {
            protocol: Protocol::HotStuff,
            timeout_ms_base: 1000,
            timeout_ms_max: 30_000,
            empty_block_interval_ms: 250,
            block_max_bytes: 4 * MIB,
            block_max_txs: 10_000,
            tx_max_bytes: 64 * 1024,
            reputation_window: DEFAULT_REPUTATION_WINDOW,
        }
    }
}

impl ConsensusParams {
    /// Checks the bounds documented on each field; errors name `consensus.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: &str, message: String| Err(ConfigError::field(FILE, format!("consensus.{field}"), message));
        if self.timeout_ms_base < TIMEOUT_MS_BASE_MIN {
            return err("timeout_ms_base", format!("must be >= {TIMEOUT_MS_BASE_MIN}, got {}", self.timeout_ms_base));
        }
        if self.timeout_ms_max < self.timeout_ms_base {
            let (max, base) = (self.timeout_ms_max, self.timeout_ms_base);
            return err("timeout_ms_max", format!("must be >= consensus.timeout_ms_base ({base}), got {max}"));
        }
        if self.empty_block_interval_ms.saturating_mul(3) > self.timeout_ms_base {
            let (interval, base) = (self.empty_block_interval_ms, self.timeout_ms_base);
            return err(
                "empty_block_interval_ms",
                format!(
                    "must be at most a third of consensus.timeout_ms_base ({base}) so idle rounds do not time out, got {interval}"
                ),
            );
        }
        if !(1..=BLOCK_MAX_BYTES_LIMIT).contains(&self.block_max_bytes) {
            let got = self.block_max_bytes;
            return err(
                "block_max_bytes",
                format!("must be between 1 and {BLOCK_MAX_BYTES_LIMIT} (64 MiB), got {got}"),
            );
        }
        if self.block_max_txs == 0 {
            return err("block_max_txs", "must be > 0".into());
        }
        if self.tx_max_bytes == 0 {
            return err("tx_max_bytes", "must be > 0".into());
        }
        if self.reputation_window > REPUTATION_WINDOW_MAX {
            let got = self.reputation_window;
            return err("reputation_window", format!("must be at most {REPUTATION_WINDOW_MAX}, got {got}"));
        }
        if self.tx_max_bytes > self.block_max_bytes {
            let (tx, block) = (self.tx_max_bytes, self.block_max_bytes);
            return err("tx_max_bytes", format!("must be <= consensus.block_max_bytes ({block}), got {tx}"));
        }
        Ok(())
    }
}

/// One member of the initial validator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// A unique, human-readable name (usually the node's moniker).
    pub name: String,
    /// The consensus key: signs proposals and votes (`config/validator_key.json`).
    pub pub_key: PublicKey,
    /// Voting power; positive.
    pub power: u64,
    /// The network key: identifies the validator's node to peers (`config/node_key.json`).
    pub node_key: PublicKey,
}

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account's key.
    pub pub_key: PublicKey,
    /// Its starting balance.
    pub balance: u64,
}

/// The application's initial state. Default: the `kv` app with no accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppGenesis {
    /// Which application runs.
    pub kind: AppKind,
    /// Accounts funded at genesis; keys unique.
    pub accounts: Vec<GenesisAccount>,
}

impl AppGenesis {
    /// Checks that account keys are unique and balances sum without overflow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen: HashMap<PublicKey, usize> = HashMap::new();
        let mut total: u64 = 0;
        for (i, account) in self.accounts.iter().enumerate() {
            if let Some(j) = seen.insert(account.pub_key, i) {
                let message = format!("is the same as app.accounts[{j}].pub_key");
                return Err(ConfigError::field(FILE, format!("app.accounts[{i}].pub_key"), message));
            }
            total = total.checked_add(account.balance).ok_or_else(|| {
                let message = format!("brings the sum of balances above u64::MAX ({})", u64::MAX);
                ConfigError::field(FILE, format!("app.accounts[{i}].balance"), message)
            })?;
        }
        Ok(())
    }
}

/// The chain definition stored in `genesis.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain's name; part of every signed message. 1..=50 of `[A-Za-z0-9._-]`.
    pub chain_id: String,
    /// When the chain starts: RFC 3339 UTC, e.g. `"2026-11-26T12:00:00Z"`.
    pub genesis_time: String,
    /// Consensus parameters; may be omitted for the defaults.
    #[serde(default)]
    pub consensus: ConsensusParams,
    /// The initial validator set; not empty.
    pub validators: Vec<GenesisValidator>,
    /// The application's initial state; may be omitted for the defaults.
    #[serde(default)]
    pub app: AppGenesis,
}

impl Genesis {
    /// Checks every rule in the module doc; the error names `genesis.json` and the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_chain_id(&self.chain_id)?;
        validate_genesis_time(&self.genesis_time)?;
        self.consensus.validate()?;
        validate_validators(&self.validators)?;
        self.app.validate()
    }

    /// The genesis time in milliseconds since the Unix epoch. Exact once [`Genesis::validate`]
    /// has passed; 0 for a time that does not parse.
    pub fn genesis_time_ms(&self) -> u64 {
        humantime::parse_rfc3339(&self.genesis_time)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// The sum of all validators' powers (saturating; exact for a validated genesis).
    pub fn total_power(&self) -> u64 {
        self.validators.iter().fold(0u64, |total, v| total.saturating_add(v.power))
    }

    /// The index of the validator whose consensus key is `pub_key`, if any.
    pub fn validator_index(&self, pub_key: &PublicKey) -> Option<usize> {
        self.validators.iter().position(|v| v.pub_key == *pub_key)
    }

    /// Parses and validates genesis JSON. Syntax and type errors give line and column.
    pub fn from_json(text: &str) -> Result<Genesis, ConfigError> {
        let genesis: Genesis = serde_json::from_str(text).map_err(|e| parse_error(text, &e))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// The file's contents: pretty-printed JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings, numbers and keys into a String cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads, parses and validates the genesis file at `path`.
    pub fn load(path: &Path) -> Result<Genesis, ConfigError> {
        Genesis::from_json(&files::read_text(FILE, path)?)
    }

    /// Writes [`Genesis::to_json`] to `path`, atomically (temporary file and rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        files::write_atomically(FILE, path, &self.to_json())
    }
}

fn validate_chain_id(chain_id: &str) -> Result<(), ConfigError> {
    let err = |message: String| Err(ConfigError::field(FILE, "chain_id", message));
    if chain_id.is_empty() {
        return err("must not be empty".into());
    }
    if !chain_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return err(format!("{chain_id:?} may contain only A-Z, a-z, 0-9, '.', '_' and '-'"));
    }
    if chain_id.len() > CHAIN_ID_MAX_CHARS {
        return err(format!("must be at most {CHAIN_ID_MAX_CHARS} characters, got {}", chain_id.len()));
    }
    Ok(())
}

fn validate_genesis_time(genesis_time: &str) -> Result<(), ConfigError> {
    humantime::parse_rfc3339(genesis_time).map(|_| ()).map_err(|e| {
        let message = format!("{genesis_time:?} is not an RFC 3339 UTC time like \"2026-11-26T12:00:00Z\" ({e})");
        ConfigError::field(FILE, "genesis_time", message)
    })
}

fn validate_validators(validators: &[GenesisValidator]) -> Result<(), ConfigError> {
    if validators.is_empty() {
        return Err(ConfigError::field(FILE, "validators", "must not be empty (a chain needs a validator)"));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut pub_keys: HashMap<PublicKey, usize> = HashMap::new();
    let mut node_keys: HashMap<PublicKey, usize> = HashMap::new();
    let mut total_power: u128 = 0;
    for (i, v) in validators.iter().enumerate() {
        let err =
            |field: &str, message: String| Err(ConfigError::field(FILE, format!("validators[{i}].{field}"), message));
        if v.name.trim().is_empty() {
            return err("name", "must not be empty".into());
        }
        if let Some(j) = names.insert(&v.name, i) {
            return err("name", format!("duplicates validators[{j}].name ({:?})", v.name));
        }
        if v.power == 0 {
            return err("power", "must be > 0".into());
        }
        if let Some(j) = pub_keys.insert(v.pub_key, i) {
            return err("pub_key", format!("is the same as validators[{j}].pub_key"));
        }
        if let Some(j) = node_keys.insert(v.node_key, i) {
            return err("node_key", format!("is the same as validators[{j}].node_key"));
        }
        total_power += u128::from(v.power);
    }
    if total_power > u128::from(TOTAL_POWER_MAX) {
        let message =
            format!("have a total power of {total_power}, above the limit of {TOTAL_POWER_MAX} (u64::MAX / 4)");
        return Err(ConfigError::field(FILE, "validators", message));
    }
    Ok(())
}

/// A parse error naming the file and position; for a malformed key, the field path too.
fn parse_error(text: &str, e: &serde_json::Error) -> ConfigError {
    let names_a_key = e.classify() == serde_json::error::Category::Data && e.to_string().contains("invalid public key");
    names_a_key.then(|| find_bad_public_key(text)).flatten().unwrap_or_else(|| files::json_error(FILE, e))
}

/// Finds the first key field in `text` that is a string but not a valid public key.
fn find_bad_public_key(text: &str) -> Option<ConfigError> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).ok()?;
    let validators = doc.get("validators").and_then(Value::as_array).into_iter().flatten().enumerate();
    let validator_keys =
        validators.flat_map(|(i, v)| ["pub_key", "node_key"].map(|key| (format!("validators[{i}].{key}"), v.get(key))));
    let accounts = doc.get("app").and_then(|app| app.get("accounts")).and_then(Value::as_array);
    let account_keys = accounts
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| (format!("app.accounts[{i}].pub_key"), a.get("pub_key")));
    validator_keys.chain(account_keys).find_map(|(field, value)| {
        let shown = value?.as_str()?;
        let reason = match shown.parse::<PublicKey>().err()? {
            CryptoError::InvalidPublicKey(reason) => reason,
            other => other.to_string(),
        };
        Some(ConfigError::field(FILE, field, format!("{shown:?} is not a valid public key ({reason})")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::Keypair;

    fn key(seed: u8) -> PublicKey {
        Keypair::from_seed(&[seed; 32]).public()
    }

    fn validator(i: u8) -> GenesisValidator {
        GenesisValidator { name: format!("node{i}"), pub_key: key(i), power: 1, node_key: key(100 + i) }
    }

    fn sample() -> Genesis {
        Genesis {
            chain_id: "phalanx-local".into(),
            genesis_time: "2026-11-26T12:00:00Z".into(),
            consensus: ConsensusParams::default(),
            validators: (0..4).map(validator).collect(),
            app: AppGenesis {
                kind: AppKind::Kv,
                accounts: vec![GenesisAccount { pub_key: key(200), balance: 1_000_000 }],
            },
        }
    }

    /// Validates `g` and returns the error it must produce.
    fn refused(g: &Genesis) -> String {
        g.validate().expect_err("must be refused").to_string()
    }

    fn parse_refused(text: &str) -> String {
        Genesis::from_json(text).expect_err("must be refused").to_string()
    }

    #[test]
    fn sample_and_defaults_validate() {
        sample().validate().unwrap();
        ConsensusParams::default().validate().unwrap();
        let c = ConsensusParams::default();
        assert_eq!(c.protocol, Protocol::HotStuff);
        assert_eq!((c.timeout_ms_base, c.timeout_ms_max, c.empty_block_interval_ms), (1000, 30_000, 250));
        assert_eq!((c.block_max_bytes, c.block_max_txs, c.tx_max_bytes), (4_194_304, 10_000, 65_536));
        assert_eq!(AppGenesis::default(), AppGenesis { kind: AppKind::Kv, accounts: vec![] });
    }

    #[test]
    fn genesis_time_ms_and_total_power() {
        let g = sample();
        assert_eq!(g.genesis_time_ms(), 1_795_694_400_000);
        assert_eq!(g.total_power(), 4);
        let fractional = Genesis { genesis_time: "2026-11-26T12:00:00.250Z".into(), ..sample() };
        assert_eq!(fractional.genesis_time_ms(), 1_795_694_400_250);
        assert_eq!(g.validator_index(&key(2)), Some(2));
        assert_eq!(g.validator_index(&key(42)), None);
    }

    #[test]
    fn save_then_load_round_trips_with_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        sample().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        assert!(text.contains("\"protocol\": \"hotstuff\""), "{text}");
        assert_eq!(Genesis::load(&path).unwrap(), sample());
    }

    #[test]
    fn consensus_and_app_may_be_omitted_and_take_defaults() {
        let text = format!(
            r#"{{ "chain_id": "c", "genesis_time": "2026-11-26T12:00:00Z",
                 "consensus": {{ "protocol": "raft", "timeout_ms_base": 2000 }},
                 "validators": [ {{ "name": "n", "pub_key": "{}", "power": 3, "node_key": "{}" }} ] }}"#,
            key(1),
            key(2)
        );
        let g = Genesis::from_json(&text).unwrap();
        assert_eq!(
            g.consensus,
            ConsensusParams { protocol: Protocol::Raft, timeout_ms_base: 2000, ..Default::default() }
        );
        assert_eq!(g.app, AppGenesis::default());
    }

    #[test]
    fn protocol_and_app_kind_names() {
        for (p, s) in [(Protocol::HotStuff, "hotstuff"), (Protocol::Raft, "raft"), (Protocol::Pbft, "pbft")] {
            assert_eq!(p.to_string(), s);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{s}\""));
            assert_eq!(s.parse::<Protocol>(), Ok(p));
        }
        assert_eq!(serde_json::to_string(&AppKind::Noop).unwrap(), "\"noop\"");
        assert_eq!("noop".parse::<AppKind>(), Ok(AppKind::Noop));
        assert!("HotStuff".parse::<Protocol>().unwrap_err().contains("expected \"hotstuff\""));
    }

    #[test]
    fn chain_id_must_not_be_empty() {
        let g = Genesis { chain_id: String::new(), ..sample() };
        assert_eq!(refused(&g), "genesis.json: chain_id must not be empty");
    }

    #[test]
    fn chain_id_must_use_the_allowed_characters() {
        let g = Genesis { chain_id: "my chain".into(), ..sample() };
        assert_eq!(
            refused(&g),
            "genesis.json: chain_id: \"my chain\" may contain only A-Z, a-z, 0-9, '.', '_' and '-'"
        );
    }

    #[test]
    fn chain_id_must_be_at_most_50_characters() {
        Genesis { chain_id: "a".repeat(50), ..sample() }.validate().unwrap();
        let g = Genesis { chain_id: "a".repeat(51), ..sample() };
        assert_eq!(refused(&g), "genesis.json: chain_id must be at most 50 characters, got 51");
    }

    #[test]
    fn genesis_time_must_be_rfc3339_utc() {
        let g = Genesis { genesis_time: "2026-11-26".into(), ..sample() };
        assert_eq!(
            refused(&g),
            "genesis.json: genesis_time: \"2026-11-26\" is not an RFC 3339 UTC time like \"2026-11-26T12:00:00Z\" \
             (timestamp format is invalid)"
        );
    }

    #[test]
    fn validators_must_not_be_empty() {
        let g = Genesis { validators: vec![], ..sample() };
        assert_eq!(refused(&g), "genesis.json: validators must not be empty (a chain needs a validator)");
    }

    #[test]
    fn validator_name_must_not_be_empty() {
        let mut g = sample();
        g.validators[1].name = " ".into();
        assert_eq!(refused(&g), "genesis.json: validators[1].name must not be empty");
    }

    #[test]
    fn validator_names_must_be_unique() {
        let mut g = sample();
        g.validators[3].name = "node1".into();
        assert_eq!(refused(&g), "genesis.json: validators[3].name duplicates validators[1].name (\"node1\")");
    }

    #[test]
    fn validator_power_must_be_positive() {
        let mut g = sample();
        g.validators[2].power = 0;
        assert_eq!(refused(&g), "genesis.json: validators[2].power must be > 0");
    }

    #[test]
    fn total_power_is_bounded() {
        let mut g = sample();
        g.validators[0].power = TOTAL_POWER_MAX - 3;
        g.validate().unwrap();
        g.validators[0].power = TOTAL_POWER_MAX;
        assert_eq!(
            refused(&g),
            "genesis.json: validators have a total power of 4611686018427387906, above the limit of \
             4611686018427387903 (u64::MAX / 4)"
        );
        // Far past u64 itself: the sum is computed without overflow.
        g.validators.iter_mut().for_each(|v| v.power = u64::MAX);
        assert!(refused(&g).contains("total power of 73786976294838206460"));
    }

    #[test]
    fn validator_pub_keys_must_be_unique() {
        let mut g = sample();
        g.validators[2].pub_key = g.validators[0].pub_key;
        assert_eq!(refused(&g), "genesis.json: validators[2].pub_key is the same as validators[0].pub_key");
    }

    #[test]
    fn validator_node_keys_must_be_unique() {
        let mut g = sample();
        g.validators[3].node_key = g.validators[1].node_key;
        assert_eq!(refused(&g), "genesis.json: validators[3].node_key is the same as validators[1].node_key");
    }

    fn with_consensus(edit: impl FnOnce(&mut ConsensusParams)) -> String {
        let mut g = sample();
        edit(&mut g.consensus);
        refused(&g)
    }

    #[test]
    fn timeout_ms_base_must_be_at_least_10() {
        assert_eq!(
            with_consensus(|c| c.timeout_ms_base = 9),
            "genesis.json: consensus.timeout_ms_base must be >= 10, got 9"
        );
    }

    #[test]
    fn timeout_ms_max_must_be_at_least_the_base() {
        assert_eq!(
            with_consensus(|c| c.timeout_ms_max = 999),
            "genesis.json: consensus.timeout_ms_max must be >= consensus.timeout_ms_base (1000), got 999"
        );
    }

    #[test]
    fn empty_block_interval_must_be_at_most_a_third_of_the_base_timeout() {
        assert_eq!(
            with_consensus(|c| c.empty_block_interval_ms = 334),
            "genesis.json: consensus.empty_block_interval_ms must be at most a third of consensus.timeout_ms_base (1000) so idle rounds do not time out, got 334"
        );
    }

    #[test]
    fn block_max_bytes_must_be_between_1_byte_and_64_mib() {
        let expected = |got: u64| {
            format!("genesis.json: consensus.block_max_bytes must be between 1 and 67108864 (64 MiB), got {got}")
        };
        assert_eq!(with_consensus(|c| c.block_max_bytes = 0), expected(0));
        assert_eq!(with_consensus(|c| c.block_max_bytes = 64 * MIB + 1), expected(64 * MIB + 1));
        let mut g = sample();
        g.consensus.block_max_bytes = 64 * MIB;
        g.validate().unwrap();
    }

    #[test]
    fn block_max_txs_must_be_positive() {
        assert_eq!(with_consensus(|c| c.block_max_txs = 0), "genesis.json: consensus.block_max_txs must be > 0");
    }

    #[test]
    fn reputation_window_is_bounded() {
        assert_eq!(
            with_consensus(|c| c.reputation_window = 10_001),
            "genesis.json: consensus.reputation_window must be at most 10000, got 10001"
        );
        assert_eq!(ConsensusParams::default().reputation_window, 500);
    }

    #[test]
    fn tx_max_bytes_must_be_positive() {
        assert_eq!(with_consensus(|c| c.tx_max_bytes = 0), "genesis.json: consensus.tx_max_bytes must be > 0");
    }

    #[test]
    fn tx_max_bytes_must_fit_in_a_block() {
        assert_eq!(
            with_consensus(|c| {
                c.block_max_bytes = 1000;
                c.tx_max_bytes = 1001;
            }),
            "genesis.json: consensus.tx_max_bytes must be <= consensus.block_max_bytes (1000), got 1001"
        );
    }

    #[test]
    fn account_keys_must_be_unique() {
        let mut g = sample();
        g.app.accounts.push(GenesisAccount { pub_key: key(201), balance: 1 });
        g.app.accounts.push(GenesisAccount { pub_key: key(200), balance: 1 });
        assert_eq!(refused(&g), "genesis.json: app.accounts[2].pub_key is the same as app.accounts[0].pub_key");
    }

    #[test]
    fn balances_must_not_overflow() {
        let mut g = sample();
        g.app.accounts.push(GenesisAccount { pub_key: key(201), balance: u64::MAX - 1_000_000 });
        g.validate().unwrap();
        g.app.accounts.push(GenesisAccount { pub_key: key(202), balance: 1 });
        assert_eq!(
            refused(&g),
            "genesis.json: app.accounts[2].balance brings the sum of balances above u64::MAX (18446744073709551615)"
        );
    }

    #[test]
    fn syntax_errors_name_the_file_line_and_column() {
        assert_eq!(parse_refused("{\n  \"chain_id\": \"c\",\n}"), "genesis.json: line 3, column 1: trailing comma");
        assert_eq!(parse_refused(""), "genesis.json: line 1, column 0: EOF while parsing a value");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["chain_idd"] = "x".into();
        let e = parse_refused(&doc.to_string());
        assert!(e.starts_with("genesis.json: line 1, column "), "{e}");
        assert!(e.contains("unknown field `chain_idd`"), "{e}");

        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["consensus"]["timeout_base_ms"] = 5.into();
        assert!(parse_refused(&doc.to_string()).contains("unknown field `timeout_base_ms`"));

        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["validators"][0]["weight"] = 5.into();
        assert!(parse_refused(&doc.to_string()).contains("unknown field `weight`"));
    }

    #[test]
    fn wrong_types_and_unknown_enum_values_name_the_problem() {
        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["consensus"]["protocol"] = "paxos".into();
        assert!(parse_refused(&doc.to_string()).contains("unknown variant `paxos`, expected one of"));
        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["validators"][1]["power"] = "ten".into();
        assert!(parse_refused(&doc.to_string()).contains("invalid type: string \"ten\", expected u64"));
        let mut doc = serde_json::to_value(sample()).unwrap();
        doc.as_object_mut().unwrap().remove("genesis_time");
        assert!(parse_refused(&doc.to_string()).contains("missing field `genesis_time`"));
    }

    #[test]
    fn malformed_keys_are_refused_with_the_field_path() {
        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["validators"][2]["node_key"] = "zz".into();
        assert_eq!(
            parse_refused(&serde_json::to_string_pretty(&doc).unwrap()),
            "genesis.json: validators[2].node_key: \"zz\" is not a valid public key \
             (not hex: Invalid character 'z' at position 0)"
        );
        let mut doc = serde_json::to_value(sample()).unwrap();
        doc["app"]["accounts"][0]["pub_key"] = "abcd".into();
        assert_eq!(
            parse_refused(&doc.to_string()),
            "genesis.json: app.accounts[0].pub_key: \"abcd\" is not a valid public key \
             (must be 32 bytes (64 hex characters), got 2 bytes)"
        );
    }

    #[test]
    fn load_of_a_missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        assert_eq!(
            Genesis::load(&path).unwrap_err().to_string(),
            format!("genesis.json: {} does not exist", path.display())
        );
    }
}
