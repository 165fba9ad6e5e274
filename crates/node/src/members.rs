//! `trellis init --validators N --out DIR`: a whole consortium's starting files in one go, one
//! folder per member, each ready to copy to that member's host:
//!
//! ```text
//! DIR/genesis.toml              the chain every member starts from (also in each folder)
//! DIR/accounts.json             funded accounts' keys, if any were asked for (mode 0600)
//! DIR/member-<i>/genesis.toml
//! DIR/member-<i>/validator.json member i's ed25519 validator key (mode 0600)
//! DIR/member-<i>/node.toml      `trellis node --config node.toml` runs member i
//! DIR/full-node-<j>/…           the same for full node j, its key in node.json
//! ```
//!
//! Members on one host get consecutive ports (p2p and RPC); members on their own hosts all use
//! the base ports. Everything is checked before anything is written, and the files appear
//! together: they are written to a sibling directory renamed to `DIR` at the end.

use crate::{
    NodeError,
    accounts::{self, FundedAccount},
    genesis_file::{GenesisFile, GenesisFileError, ValidatorEntry},
    keyfile,
    node_config::{NodeFileText, Role},
};
use alloy_primitives::Address;
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};
use trellis_crypto::{KeyError, ValidatorKey};

/// The network to create.
#[derive(Clone, Debug)]
pub struct NetworkPlan {
    pub chain_id: u64,
    pub validators: usize,
    /// Each member's host, in order; one host for all of them; or none for 127.0.0.1.
    pub hosts: Vec<IpAddr>,
    /// Full nodes to create (they follow the chain without voting).
    pub full_nodes: usize,
    /// Each full node's host, by the same rule as `hosts`.
    pub full_node_hosts: Vec<IpAddr>,
    /// The first member's p2p port on each host.
    pub p2p_port: u16,
    /// The first member's JSON-RPC port on each host.
    pub rpc_port: u16,
    /// Accounts to create and fund (their keys go to `accounts.json`).
    pub accounts: usize,
    /// Further initial balances, in wei (decimal or 0x-hex).
    pub alloc: BTreeMap<Address, String>,
    pub gas_price: u64,
    pub block_gas_limit: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Register the created accounts as a consortium ([`consortium_of`]).
    pub governed: bool,
    /// Blocks per epoch of a governed network: validator-set changes wait for the next one.
    pub epoch_length: u64,
    /// Seal every key file (members' keys, accounts.json) under this passphrase; node.toml
    /// names `file` as its `key_passphrase_file`.
    pub seal: Option<Seal>,
}

/// A passphrase, and the absolute path of the file that holds it on each member's host.
#[derive(Clone, Debug)]
pub struct Seal {
    pub passphrase: trellis_crypto::Passphrase,
    pub file: PathBuf,
}

/// Why the network's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    #[error("a network needs at least one validator")]
    NoValidators,
    #[error(
        "{hosts} host(s) for {nodes} {what}: give one host per node, one host for all, or none for 127.0.0.1"
    )]
    HostCount {
        hosts: usize,
        nodes: usize,
        what: &'static str,
    },
    #[error(
        "{members} members on host {host} from port {base} run past port 65535: pick a lower port"
    )]
    PortOverflow {
        host: IpAddr,
        base: u16,
        members: usize,
    },
    #[error(
        "the p2p port and the JSON-RPC port ranges overlap on host {0}: pick ports further apart"
    )]
    PortClash(IpAddr),
    #[error("{0} already exists and is not empty: choose a new directory (nothing was written)")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create keys: {0}")]
    Key(#[from] KeyError),
    #[error(transparent)]
    Genesis(#[from] GenesisFileError),
    #[error(transparent)]
    Node(Box<NodeError>),
}

impl From<NodeError> for MembersError {
    fn from(error: NodeError) -> Self {
        Self::Node(Box::new(error))
    }
}

/// One member's place in the network.
#[derive(Clone, Debug)]
pub struct Member {
    pub role: Role,
    pub folder: PathBuf,
    pub p2p: SocketAddr,
    pub rpc: SocketAddr,
    pub public_key: String,
}

/// What was written.
#[derive(Debug)]
pub struct Network {
    pub genesis: GenesisFile,
    pub members: Vec<Member>,
    pub accounts: Vec<FundedAccount>,
}

/// The host of each of `n` nodes: one each, one for all, or the loopback.
fn hosts_for(n: usize, hosts: &[IpAddr], what: &'static str) -> Result<Vec<IpAddr>, MembersError> {
    match hosts.len() {
        0 => Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST); n]),
        1 => Ok(vec![hosts[0]; n]),
        k if k == n => Ok(hosts.to_vec()),
        k => Err(MembersError::HostCount {
            hosts: k,
            nodes: n,
            what,
        }),
    }
}

/// Each node's p2p and RPC address (validators first, then full nodes), checked.
fn addresses(plan: &NetworkPlan) -> Result<Vec<(SocketAddr, SocketAddr)>, MembersError> {
    if plan.validators == 0 {
        return Err(MembersError::NoValidators);
    }
    let mut hosts = hosts_for(plan.validators, &plan.hosts, "validators")?;
    hosts.extend(hosts_for(
        plan.full_nodes,
        &plan.full_node_hosts,
        "full nodes",
    )?);
    let mut on_host: BTreeMap<IpAddr, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        let slot = on_host.entry(host).or_default();
        let offset = *slot;
        *slot += 1;
        let port = |base: u16| {
            u16::try_from(usize::from(base) + offset).map_err(|_| MembersError::PortOverflow {
                host,
                base,
                members: offset + 1,
            })
        };
        out.push((
            SocketAddr::new(host, port(plan.p2p_port)?),
            // The RPC listens on the loopback until the operator opens it (see node.toml).
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port(plan.rpc_port)?),
        ));
    }
    for (host, count) in on_host {
        let p2p = usize::from(plan.p2p_port)..usize::from(plan.p2p_port) + count;
        let rpc = usize::from(plan.rpc_port)..usize::from(plan.rpc_port) + count;
        if p2p.start < rpc.end && rpc.start < p2p.end {
            return Err(MembersError::PortClash(host));
        }
    }
    Ok(out)
}

/// Writes the network's files to `dir`, which must not exist or be empty.
pub fn write(dir: &Path, plan: &NetworkPlan) -> Result<Network, MembersError> {
    let addresses = addresses(plan)?;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(MembersError::NotEmpty(dir.to_path_buf()));
    }
    let keys = (0..plan.validators + plan.full_nodes)
        .map(|_| ValidatorKey::generate())
        .collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<ValidatorEntry> = keys
        .iter()
        .zip(&addresses)
        .map(|(key, (p2p, _))| ValidatorEntry {
            public_key: key.public_hex(),
            p2p: *p2p,
        })
        .collect();
    let (validators, full_nodes) = entries.split_at(plan.validators);
    let (funded, mut alloc) = accounts::create(plan.accounts)?;
    alloc.extend(plan.alloc.clone());
    let genesis = GenesisFile {
        chain_id: plan.chain_id,
        timestamp: plan.timestamp,
        block_gas_limit: plan.block_gas_limit,
        gas_price: plan.gas_price,
        validators: validators.to_vec(),
        full_nodes: full_nodes.to_vec(),
        organisations: if plan.governed {
            accounts::consortium(&funded)
        } else {
            Vec::new()
        },
        alloc,
        epoch_length: plan.epoch_length,
    };
    genesis.genesis()?;
    genesis.full_node_peers()?;

    let staging = staging_dir(dir);
    let written = write_files(
        &staging,
        &genesis,
        &keys,
        &addresses,
        &funded,
        plan.validators,
        plan.seal.as_ref(),
    )
    .and_then(|members| publish(&staging, dir).map(|()| members));
    match written {
        Ok(members) => Ok(Network {
            genesis,
            members: members
                .into_iter()
                .map(|m| Member {
                    folder: dir.join(m.folder.file_name().expect("a member folder has a name")),
                    ..m
                })
                .collect(),
            accounts: funded,
        }),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

fn staging_dir(dir: &Path) -> PathBuf {
    let name = dir.file_name().map_or_else(
        || "network".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    dir.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> MembersError + '_ {
    move |source| MembersError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn write_files(
    staging: &Path,
    genesis: &GenesisFile,
    keys: &[ValidatorKey],
    addresses: &[(SocketAddr, SocketAddr)],
    funded: &[FundedAccount],
    validators: usize,
    seal: Option<&Seal>,
) -> Result<Vec<Member>, MembersError> {
    std::fs::create_dir_all(staging).map_err(write_error(staging))?;
    genesis.write_new(&staging.join("genesis.toml"))?;
    let passphrase = seal.map(|seal| &seal.passphrase);
    let passphrase_file = seal.map(|seal| seal.file.display().to_string());
    if !funded.is_empty() {
        accounts::write_with(&staging.join("accounts.json"), funded, passphrase)?;
    }
    let mut members = Vec::with_capacity(keys.len());
    for (i, (key, (p2p, rpc))) in keys.iter().zip(addresses).enumerate() {
        let (role, name, key_file) = if i < validators {
            (Role::Validator, format!("member-{i}"), "validator.json")
        } else {
            (
                Role::FullNode,
                format!("full-node-{}", i - validators),
                "node.json",
            )
        };
        let folder = staging.join(name);
        std::fs::create_dir(&folder).map_err(write_error(&folder))?;
        genesis.write_new(&folder.join("genesis.toml"))?;
        keyfile::write_with(&folder.join(key_file), key, passphrase)?;
        let node = NodeFileText {
            genesis: "genesis.toml",
            role,
            key: key_file,
            data_dir: "data",
            rpc_addr: *rpc,
            state_cache_mib: None,
            passphrase_file: passphrase_file.as_deref(),
            kek_file: None,
            risk_rules: None,
            risk_operator: None,
        };
        let path = folder.join("node.toml");
        std::fs::write(&path, node.render()).map_err(write_error(&path))?;
        members.push(Member {
            role,
            folder,
            p2p: *p2p,
            rpc: *rpc,
            public_key: key.public_hex(),
        });
    }
    Ok(members)
}

/// Moves the finished staging directory to `dir` (an empty `dir` is replaced).
fn publish(staging: &Path, dir: &Path) -> Result<(), MembersError> {
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(|_| MembersError::NotEmpty(dir.to_path_buf()))?;
    }
    std::fs::rename(staging, dir).map_err(write_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_config::NodeConfig;

    fn plan(validators: usize, hosts: &[&str]) -> NetworkPlan {
        NetworkPlan {
            chain_id: 99,
            validators,
            hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
            full_nodes: 0,
            full_node_hosts: vec![],
            p2p_port: 30300,
            rpc_port: 8545,
            accounts: 2,
            alloc: BTreeMap::new(),
            gas_price: 0,
            block_gas_limit: 30_000_000,
            timestamp: 0,
            governed: false,
            epoch_length: 1_000,
            seal: None,
        }
    }

    #[test]
    fn with_a_passphrase_every_key_file_is_sealed_and_every_member_still_loads() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net");
        let passphrase_file = root.path().join("pass");
        std::fs::write(&passphrase_file, "members' passphrase\n").unwrap();
        let mut sealed = plan(4, &[]);
        sealed.seal = Some(Seal {
            passphrase: trellis_crypto::Passphrase::from_file(&passphrase_file).unwrap(),
            file: passphrase_file.clone(),
        });
        let network = write(&dir, &sealed).unwrap();
        for member in &network.members {
            let stored = std::fs::read_to_string(member.folder.join("validator.json")).unwrap();
            assert!(trellis_crypto::SealedKey::is_sealed(&stored), "{stored}");
            assert!(!stored.contains("private_key"), "{stored}");
            let config = NodeConfig::load(&member.folder.join("node.toml")).unwrap();
            assert_eq!(config.key.public_hex(), member.public_key);
        }
        let accounts = std::fs::read_to_string(dir.join("accounts.json")).unwrap();
        assert!(trellis_crypto::SealedKey::is_sealed(&accounts));
        for account in &network.accounts {
            assert!(!accounts.contains(&account.private_key[2..]));
        }
        // Without its passphrase file a member's node refuses to start, saying what to give.
        std::fs::remove_file(&passphrase_file).unwrap();
        let error = NodeConfig::load(&network.members[0].folder.join("node.toml"))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("pass"), "{error}");
    }

    #[test]
    fn every_member_folder_loads_as_a_node_of_the_same_chain() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net");
        let network = write(&dir, &plan(4, &[])).unwrap();
        assert_eq!(network.members.len(), 4);
        let ports: Vec<u16> = network.members.iter().map(|m| m.p2p.port()).collect();
        assert_eq!(ports, [30300, 30301, 30302, 30303]);
        let shared = GenesisFile::load(&dir.join("genesis.toml")).unwrap();
        for (i, member) in network.members.iter().enumerate() {
            let config = NodeConfig::load(&member.folder.join("node.toml")).unwrap();
            assert_eq!(config.genesis, shared);
            assert_eq!(config.key.public_hex(), member.public_key);
            assert_eq!(config.rpc_addr.port(), 8545 + i as u16);
            assert_eq!(config.data_dir, member.folder.join("data"));
        }
        assert_eq!(shared.alloc.len(), 2);
        assert!(dir.join("accounts.json").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging directory is left");
    }

    #[test]
    fn full_nodes_get_folders_and_ports_after_the_validators() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net");
        let mut with_full_nodes = plan(2, &[]);
        with_full_nodes.full_nodes = 2;
        let network = write(&dir, &with_full_nodes).unwrap();
        let roles: Vec<Role> = network.members.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::Validator,
                Role::Validator,
                Role::FullNode,
                Role::FullNode
            ]
        );
        assert_eq!(network.members[3].p2p.port(), 30303);
        let config = NodeConfig::load(&dir.join("full-node-1").join("node.toml")).unwrap();
        assert_eq!(config.role, Role::FullNode);
        assert_eq!(config.genesis.full_nodes.len(), 2);
        assert_eq!(config.key.public_hex(), network.members[3].public_key);
    }

    #[test]
    fn members_on_their_own_hosts_share_the_base_ports() {
        let root = tempfile::tempdir().unwrap();
        let hosts = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
        let network = write(&root.path().join("net"), &plan(3, &hosts)).unwrap();
        for (member, host) in network.members.iter().zip(hosts) {
            assert_eq!(member.p2p, format!("{host}:30300").parse().unwrap());
        }
    }

    #[test]
    fn bad_plans_write_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net");
        let error = write(&dir, &plan(4, &["10.0.0.1", "10.0.0.2"])).unwrap_err();
        assert!(
            error.to_string().contains("2 host(s) for 4 validators"),
            "{error}"
        );
        let error = write(&dir, &plan(0, &[])).unwrap_err();
        assert!(matches!(error, MembersError::NoValidators));
        let mut clash = plan(4, &[]);
        clash.rpc_port = 30302;
        assert!(matches!(
            write(&dir, &clash),
            Err(MembersError::PortClash(_))
        ));
        let mut high = plan(4, &[]);
        high.p2p_port = 65534;
        assert!(matches!(
            write(&dir, &high),
            Err(MembersError::PortOverflow { .. })
        ));
        let mut bad = plan(1, &[]);
        bad.alloc.insert(Address::ZERO, "lots".into());
        assert!(matches!(write(&dir, &bad), Err(MembersError::Genesis(_))));
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);

        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("precious"), "keep me").unwrap();
        let error = write(&dir, &plan(1, &[])).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.join("precious")).unwrap(),
            "keep me"
        );
    }
}

#[cfg(test)]
mod governed_tests {
    use super::*;

    #[test]
    fn a_governed_network_registers_its_accounts_with_three_governors() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("net");
        let plan = NetworkPlan {
            chain_id: 99,
            validators: 1,
            hosts: vec![],
            full_nodes: 0,
            full_node_hosts: vec![],
            p2p_port: 30300,
            rpc_port: 8545,
            accounts: 4,
            alloc: BTreeMap::new(),
            gas_price: 0,
            block_gas_limit: 30_000_000,
            timestamp: 0,
            governed: true,
            epoch_length: 1_000,
            seal: None,
        };
        write(&dir, &plan).unwrap();
        let genesis = GenesisFile::load(&dir.join("genesis.toml")).unwrap();
        let identities = &genesis.organisations[0].identities;
        assert_eq!(identities.len(), 4);
        let governors = identities
            .iter()
            .filter(|i| i.roles.iter().any(|r| r == "governor"))
            .count();
        assert_eq!(governors, 3);
        let founders = genesis.genesis().unwrap().founders;
        assert_eq!(founders.0[0].identities.len(), 4);
    }
}
