//! The genesis file (TOML): what every member of a consortium starts its node from.
//!
//! ```toml
//! chain_id = 1337
//! timestamp = 0                # milliseconds since the Unix epoch
//! block_gas_limit = 30000000
//! gas_price = 0                # fixed base fee per gas, wei; 0 makes gas free
//!
//! [[validators]]
//! public_key = "0x…"           # ed25519, 32 bytes
//! p2p = "127.0.0.1:30300"      # where the other validators reach it
//!
//! [[full_nodes]]              # optional: nodes that follow the chain without voting
//! public_key = "0x…"           # its ed25519 key (p2p identity)
//! p2p = "10.0.0.9:30300"       # its address; validators accept its connections from there
//!
//! epoch_length = 1000         # optional, governed chains: blocks per epoch; validator-set
//!                              # changes take effect at the next epoch
//!
//! [alloc]
//! "0x…" = "1000000000000000000" # initial balance in wei, decimal or 0x-hex
//!
//! [[organisations]]           # optional: the founding members, written into the registry
//! id = 1
//! name = "First Consortium Bank" # at most 30 bytes
//! [[organisations.identities]]
//! id = 10
//! roles = ["governor", "transactor"] # built-in or an application's own (a-z, 0-9, -)
//! accounts = ["0x…"]
//! valid_from = 0               # optional: first block it is valid in
//! valid_until = 500000         # optional: first block it is no longer valid in
//! ```

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU64;
use std::{collections::BTreeMap, net::SocketAddr, path::Path};
use trellis_chain::{Genesis, GenesisError};
use trellis_governance::{
    EpochLength, Founders, FoundingIdentity, FoundingOrganisation, IdentityId, OrgId, Role, Window,
};
use trellis_types::{Height, ValidatorId};

/// One validator as the genesis file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    /// The ed25519 public key, `0x`-prefixed hex.
    pub public_key: String,
    /// Its p2p address.
    pub p2p: SocketAddr,
}

/// A founding organisation as the genesis file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationEntry {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub identities: Vec<IdentityEntry>,
}

/// One of its identities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityEntry {
    pub id: u64,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<Address>,
    #[serde(default)]
    pub valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
}

/// How many of a generated consortium's accounts are governors: two of three pass a proposal.
pub const CONSORTIUM_GOVERNORS: usize = 3;

/// A consortium for created accounts (`trellis dev --governed`, `trellis init --governed`):
/// one organisation, one identity per account (identity `i + 1` for account `i`), each holding
/// every built-in role but governor, which the first [`CONSORTIUM_GOVERNORS`] hold.
pub fn consortium_of(accounts: &[Address]) -> Vec<OrganisationEntry> {
    let mut identities = Vec::with_capacity(accounts.len());
    for (i, address) in accounts.iter().enumerate() {
        let roles = trellis_governance::Role::builtin()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| *name != "governor" || i < CONSORTIUM_GOVERNORS)
            .map(str::to_owned)
            .collect();
        identities.push(IdentityEntry {
            id: i as u64 + 1,
            roles,
            accounts: vec![*address],
            valid_from: 0,
            valid_until: None,
        });
    }
    vec![OrganisationEntry {
        id: 1,
        name: "Consortium".into(),
        identities,
    }]
}

/// The genesis file as written on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    pub chain_id: u64,
    #[serde(default)]
    pub timestamp: u64,
    pub block_gas_limit: u64,
    #[serde(default)]
    pub gas_price: u64,
    pub validators: Vec<ValidatorEntry>,
    /// Who may follow the chain without voting. Not part of block 0: members may admit a new
    /// full node by adding it here on every node and restarting them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub full_nodes: Vec<ValidatorEntry>,
    #[serde(default)]
    pub alloc: BTreeMap<Address, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<OrganisationEntry>,
    /// Blocks per epoch of a governed chain: validator-set changes take effect at the next
    /// epoch boundary.
    #[serde(default = "default_epoch_length")]
    pub epoch_length: u64,
}

fn default_epoch_length() -> u64 {
    EpochLength::DEFAULT.0.get()
}

/// Why a genesis file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisFileError {
    #[error("cannot read the genesis file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the genesis file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the genesis file {path} is not valid TOML for a genesis: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("validator {index} in the genesis file: {reason}")]
    BadValidator { index: usize, reason: BadKey },
    #[error("full node {index} in the genesis file: {reason}")]
    BadFullNode { index: usize, reason: BadKey },
    #[error("key {0} is listed twice among the genesis's validators and full nodes")]
    DuplicateKey(String),
    #[error(
        "balance of {address} in the genesis file: {value:?} is not a decimal or 0x-hex amount of wei"
    )]
    BadBalance { address: Address, value: String },
    #[error(
        "identity {identity} in the genesis file: role {role:?} is not a role name (lowercase letters, digits and '-')"
    )]
    BadRole { identity: u64, role: String },
    #[error("the genesis is invalid: {0}")]
    Invalid(#[from] GenesisError),
    #[error("epoch_length is 0: an epoch has at least one block")]
    ZeroEpochLength,
}

/// Why a validator's public key in the genesis file is refused.
#[derive(Debug, thiserror::Error)]
pub enum BadKey {
    #[error("public key {0:?} is not 32 bytes of hex")]
    NotHex(String),
    #[error("public key {0:?} is not a valid ed25519 point")]
    NotAPoint(String),
}

/// A validator's identity and address, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: ValidatorId,
    pub p2p: SocketAddr,
}

impl GenesisFile {
    pub fn load(path: &Path) -> Result<Self, GenesisFileError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GenesisFileError::Read {
            path: display.clone(),
            source,
        })?;
        let file: Self = toml::from_str(&text).map_err(|source| GenesisFileError::Parse {
            path: display,
            source,
        })?;
        file.genesis()?;
        file.full_node_peers()?;
        Ok(file)
    }

    /// Writes the file; never overwrites an existing one.
    pub fn write_new(&self, path: &Path) -> Result<(), GenesisFileError> {
        let write_error = |source| GenesisFileError::Write {
            path: path.display().to_string(),
            source,
        };
        let text = toml::to_string_pretty(self).expect("a genesis file serializes");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(write_error)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(write_error)
    }

    pub fn peers(&self) -> Result<Vec<Peer>, GenesisFileError> {
        self.validators
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let id = parse_validator_id(&entry.public_key)
                    .map_err(|reason| GenesisFileError::BadValidator { index, reason })?;
                Ok(Peer { id, p2p: entry.p2p })
            })
            .collect()
    }

    /// The full nodes the genesis admits, each checked to be distinct from every other node.
    pub fn full_node_peers(&self) -> Result<Vec<Peer>, GenesisFileError> {
        let full_nodes: Vec<Peer> = self
            .full_nodes
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let id = parse_validator_id(&entry.public_key)
                    .map_err(|reason| GenesisFileError::BadFullNode { index, reason })?;
                Ok(Peer { id, p2p: entry.p2p })
            })
            .collect::<Result<_, GenesisFileError>>()?;
        let mut seen = std::collections::BTreeSet::new();
        for peer in self.peers()?.iter().chain(&full_nodes) {
            if !seen.insert(peer.id) {
                return Err(GenesisFileError::DuplicateKey(format!("{:?}", peer.id)));
            }
        }
        Ok(full_nodes)
    }

    /// The chain's genesis, checked.
    pub fn genesis(&self) -> Result<Genesis, GenesisFileError> {
        let validators = self.peers()?.into_iter().map(|p| p.id).collect();
        let alloc = self
            .alloc
            .iter()
            .map(|(address, value)| {
                parse_wei(value).map(|wei| (*address, wei)).ok_or_else(|| {
                    GenesisFileError::BadBalance {
                        address: *address,
                        value: value.clone(),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        let genesis = Genesis {
            founders: self.founders()?,
            epoch_length: NonZeroU64::new(self.epoch_length)
                .map(EpochLength)
                .ok_or(GenesisFileError::ZeroEpochLength)?,
            chain_id: self.chain_id,
            timestamp: self.timestamp,
            block_gas_limit: self.block_gas_limit,
            gas_price: self.gas_price,
            validators,
            full_nodes: self.full_node_peers()?.into_iter().map(|p| p.id).collect(),
            alloc,
        };
        genesis.validate()?;
        Ok(genesis)
    }
}

impl GenesisFile {
    fn founders(&self) -> Result<Founders, GenesisFileError> {
        let organisations = self
            .organisations
            .iter()
            .map(|org| {
                let identities = org
                    .identities
                    .iter()
                    .map(founding_identity)
                    .collect::<Result<_, _>>()?;
                Ok(FoundingOrganisation {
                    id: OrgId(org.id),
                    name: org.name.clone(),
                    identities,
                })
            })
            .collect::<Result<_, GenesisFileError>>()?;
        Ok(Founders(organisations))
    }
}

fn founding_identity(entry: &IdentityEntry) -> Result<FoundingIdentity, GenesisFileError> {
    let roles = entry
        .roles
        .iter()
        .map(|name| {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            valid
                .then(|| Role::named(name))
                .ok_or_else(|| GenesisFileError::BadRole {
                    identity: entry.id,
                    role: name.clone(),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(FoundingIdentity {
        id: IdentityId(entry.id),
        roles,
        accounts: entry.accounts.clone(),
        window: Window {
            from: Height(entry.valid_from),
            until: entry.valid_until.map(Height),
        },
    })
}

fn parse_wei(text: &str) -> Option<U256> {
    match text.strip_prefix("0x") {
        Some(hex) => U256::from_str_radix(hex, 16).ok(),
        None => U256::from_str_radix(text, 10).ok(),
    }
}

fn parse_validator_id(text: &str) -> Result<ValidatorId, BadKey> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes: [u8; 32] = alloy_primitives::hex::decode(digits)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| BadKey::NotHex(text.to_string()))?;
    <trellis_consensus::PublicKey as commonware_codec::DecodeExt<()>>::decode(bytes.to_vec())
        .map(|_| ValidatorId(bytes))
        .map_err(|_| BadKey::NotAPoint(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GenesisFile {
        GenesisFile {
            chain_id: 1337,
            timestamp: 0,
            block_gas_limit: 30_000_000,
            gas_price: 0,
            validators: vec![ValidatorEntry {
                public_key: trellis_crypto::ValidatorKey::from_bytes(&[7; 32]).public_hex(),
                p2p: "127.0.0.1:30300".parse().unwrap(),
            }],
            full_nodes: vec![],
            organisations: Vec::new(),
            alloc: BTreeMap::from([(Address::repeat_byte(1), "0x10".to_string())]),
            epoch_length: 1_000,
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.toml");
        sample().write_new(&path).unwrap();
        let loaded = GenesisFile::load(&path).unwrap();
        assert_eq!(loaded, sample());
        let genesis = loaded.genesis().unwrap();
        assert_eq!(genesis.alloc[&Address::repeat_byte(1)], U256::from(16));
        assert!(sample().write_new(&path).is_err(), "never overwritten");
    }

    #[test]
    fn founding_members_are_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.toml");
        let text = toml::to_string_pretty(&sample()).unwrap()
            + r#"
[[organisations]]
id = 1
name = "First Consortium Bank"

[[organisations.identities]]
id = 10
roles = ["governor", "claims-adjuster"]
accounts = ["0x00000000000000000000000000000000000000a1"]
valid_until = 500
"#;
        std::fs::write(&path, text).unwrap();
        let founders = GenesisFile::load(&path)
            .unwrap()
            .genesis()
            .unwrap()
            .founders;
        let identity = &founders.0[0].identities[0];
        assert_eq!(founders.0[0].name, "First Consortium Bank");
        assert_eq!(
            identity.roles,
            vec![Role::governor(), Role::named("claims-adjuster")]
        );
        assert_eq!(identity.accounts, vec![Address::with_last_byte(0xa1)]);
        assert_eq!(identity.window.until, Some(Height(500)));

        let mut file = sample();
        file.organisations = vec![OrganisationEntry {
            id: 1,
            name: "Bank".into(),
            identities: vec![IdentityEntry {
                id: 10,
                roles: vec!["Governor".into()],
                accounts: vec![],
                valid_from: 0,
                valid_until: None,
            }],
        }];
        let error = file.genesis().unwrap_err().to_string();
        assert!(
            error.contains("role \"Governor\" is not a role name"),
            "{error}"
        );
        file.organisations[0].identities[0].roles = vec![];
        let error = file.genesis().unwrap_err().to_string();
        assert!(
            error.contains("no founding identity holds the governor role"),
            "{error}"
        );
        file.organisations[0].identities[0].roles = vec!["governor".into()];
        file.organisations[0].name = "a name longer than thirty bytes!".into();
        let error = file.genesis().unwrap_err().to_string();
        assert!(error.contains("longer than 30 bytes"), "{error}");
    }

    #[test]
    fn bad_files_are_named_precisely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.toml");
        std::fs::write(&path, "chain_id = 'x'").unwrap();
        let error = GenesisFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("not valid TOML for a genesis"), "{error}");

        let mut file = sample();
        file.validators[0].public_key = "0x1234".into();
        let error = file.genesis().unwrap_err().to_string();
        assert!(error.contains("not 32 bytes of hex"), "{error}");

        let mut file = sample();
        file.alloc.insert(Address::ZERO, "ten".into());
        let error = file.genesis().unwrap_err().to_string();
        assert!(error.contains("not a decimal or 0x-hex amount"), "{error}");

        let mut file = sample();
        file.chain_id = 0;
        assert!(
            file.genesis()
                .unwrap_err()
                .to_string()
                .contains("chain id 0")
        );

        let mut file = sample();
        file.full_nodes.push(file.validators[0].clone());
        let error = file.full_node_peers().unwrap_err().to_string();
        assert!(error.contains("listed twice"), "{error}");

        let error = GenesisFile::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot read the genesis file"), "{error}");
    }
}
