//! A development chain in one directory, created on first use and reused after:
//!
//! ```text
//! DIR/genesis.toml          chain id 1337, free gas, the validators and the funded accounts
//! DIR/validator-<i>.json    validator i's ed25519 key (mode 0600), or
//! DIR/validator-<i>.toml    where it is on an HSM token (made with --validator-token)
//! DIR/dev-accounts.json     the funded accounts: [{"address", "private_key"}] (mode 0600)
//! DIR/storage/              every validator's blocks, receipts, consensus journal
//! DIR/node-<i>/             with --processes instead: validator i's config, log and data
//! DIR/dev-kek               the key-encryption key of the data (mode 0600)
//! ```
//!
//! A new dev chain's data is encrypted (`encryption.rs`) unless asked for in clear: its data
//! keys are stored in `storage/` (or each `node-<i>/data/`) wrapped by `dev-kek`, which lies
//! outside them, so a copy of the data directory alone reads as noise. An existing chain keeps
//! the way it was written.

use crate::Endpoints;
use crate::signer::{KeySource, Pkcs11Key};
use crate::{
    FileProblem, NodeError,
    encryption::Kek,
    genesis_file::{GenesisFile, ValidatorEntry},
    network::NodeSetup,
    validator,
};
use commonware_runtime::{Runner as _, tokio};
use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
};
use trellis_crypto::{ValidatorKey, ValidatorSigner};
use trellis_vault::KeyStore;

/// The dev chain's id (the one local Ethereum tools assume for a dev network).
pub const DEV_CHAIN_ID: u64 = 1337;
const GAS_LIMIT: u64 = 60_000_000;
/// State page cache per dev validator: several validators share one machine.
pub const DEV_STATE_CACHE_MIB: usize = 64;
const DEV_STATE_CACHE_BYTES: usize = DEV_STATE_CACHE_MIB << 20;

/// How to run a dev chain.
#[derive(Clone, Debug)]
pub struct DevOptions {
    pub data_dir: PathBuf,
    pub validators: usize,
    pub accounts: usize,
    pub rpc_addr: SocketAddr,
    /// One `trellis node` process per validator (`dev_processes.rs`) instead of all in this one.
    pub processes: bool,
    /// A new chain gets a registry (see [`dev_consortium`]); an existing one keeps its genesis.
    pub governed: bool,
    /// Blocks per epoch of a new governed chain.
    pub epoch_length: u64,
    /// Generate a new chain's validator keys on this token (labelled `LABEL-<i>`), in one
    /// process only.
    pub validator_token: Option<Pkcs11Key>,
    /// Store a new chain's data in clear instead of encrypted.
    pub plaintext: bool,
    /// The risk rules the validator serving RPC watches (each validator, with `processes`).
    pub risk_rules: Option<PathBuf>,
    /// Ask API callers for tokens (a governed chain's accounts sign them), as a member's node
    /// does; `None`: anyone on loopback may call anything. One process only.
    pub api: Option<crate::api_access::ApiSettings>,
}

/// How many of a governed chain's accounts are governors (see [`consortium_of`]).
pub use crate::genesis_file::CONSORTIUM_GOVERNORS as DEV_GOVERNORS;

/// One funded account, as `dev-accounts.json` lists it.
pub use crate::accounts::FundedAccount as DevAccount;

/// A prepared dev chain directory.
pub struct DevChain {
    pub genesis: GenesisFile,
    pub validator_keys: Vec<ValidatorSigner>,
    pub accounts: Vec<DevAccount>,
    pub storage: PathBuf,
    /// The key-encryption key of the chain's data, if it is encrypted.
    pub kek: Option<Kek>,
    /// The risk rules file (absolute, checked), if any.
    pub risk_rules: Option<PathBuf>,
    /// The API's access control, if callers need tokens.
    pub api: Option<crate::api_access::ApiSettings>,
}

impl DevChain {
    /// The account that makes the proposals risk rules ask for: on a governed chain, the
    /// first account (a governor).
    pub fn risk_operator(&self) -> Option<alloy_primitives::Address> {
        if self.genesis.organisations.is_empty() {
            return None;
        }
        self.accounts.first()?.address.parse().ok()
    }

    fn risk_setup(&self) -> Result<Option<crate::risk::RiskSetup>, NodeError> {
        let Some(rules_file) = self.risk_rules.clone() else {
            return Ok(None);
        };
        let operator = match self.risk_operator() {
            None => None,
            Some(_) => {
                let secret = &self.accounts[0].private_key;
                let key = trellis_crypto::AccountKey::from_hex(secret).map_err(|e| {
                    NodeError::KeyFile {
                        path: "dev-accounts.json".into(),
                        problem: e.into(),
                    }
                })?;
                Some(std::sync::Arc::new(key) as std::sync::Arc<dyn trellis_crypto::TxSigner>)
            }
        };
        Ok(Some(crate::risk::RiskSetup {
            rules_file,
            operator,
        }))
    }
}

/// The dev chain's key-encryption key file, beside (not in) its data directories.
pub const DEV_KEK_FILE: &str = "dev-kek";

/// Whether the chain's data is encrypted: as it was written, or as asked for a new chain.
fn dev_kek(options: &DevOptions) -> Result<Option<Kek>, NodeError> {
    let dir = &options.data_dir;
    let data = match options.processes {
        true => node_folder(dir, 0).join("data"),
        false => dir.join("storage"),
    };
    let written = KeyStore::of(&data).exists();
    let fresh = crate::format::is_fresh(&data).map_err(|e| dir_error(&data, e))?;
    let encrypted = written || (fresh && !options.plaintext);
    Ok(encrypted.then(|| Kek::File {
        path: dir.join(DEV_KEK_FILE),
        create: !written,
    }))
}

fn dir_error(path: &Path, problem: impl Into<FileProblem>) -> NodeError {
    NodeError::DataDir {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Where a dev chain's p2p ports are picked: below Linux's ephemeral range (32768–60999 by
/// default), so no outgoing connection on the host ever holds the port a validator is about to
/// listen on (one taken from the ephemeral range by `bind(0)` can be); and apart from
/// 20000–32000, which Trellis's tests hand out for RPC.
const DEV_P2P_PORTS: std::ops::Range<u16> = 10_000..20_000;

/// `count` distinct ports of `DEV_P2P_PORTS` that nothing listens on now. The search starts at
/// a place spread by the process id, so two dev chains created at the same moment (neither
/// listening yet) pick far apart.
fn free_p2p_ports(count: usize) -> Result<Vec<SocketAddr>, NodeError> {
    let (first, span) = (DEV_P2P_PORTS.start, DEV_P2P_PORTS.end - DEV_P2P_PORTS.start);
    let spread = std::process::id().wrapping_mul(997) % u32::from(span);
    let start = u16::try_from(spread).expect("below the span, a u16");
    // Held until all are picked, so the same port is never picked twice.
    let mut held = Vec::with_capacity(count);
    for step in 0..span {
        if held.len() == count {
            break;
        }
        let port = first + (start + step) % span;
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push((port, listener));
        }
    }
    if held.len() < count {
        return Err(NodeError::NoFreePort {
            needed: count,
            range: DEV_P2P_PORTS,
        });
    }
    // The listeners close here: the validators bind these ports themselves.
    Ok(held
        .into_iter()
        .map(|(port, _)| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .collect())
}

/// Creates the dev chain in `options.data_dir`, or loads it if it is there.
pub fn prepare(options: &DevOptions) -> Result<DevChain, NodeError> {
    let dir = &options.data_dir;
    let genesis_path = dir.join("genesis.toml");
    if !genesis_path.exists() {
        create(options)?;
    }
    check_mode(options)?;
    let genesis = GenesisFile::load(&genesis_path)?;
    if genesis.validators.len() != options.validators {
        return Err(dir_error(
            dir,
            FileProblem::OtherValidatorCount {
                held: genesis.validators.len(),
                asked: options.validators,
            },
        ));
    }
    let validator_keys = (0..options.validators)
        .map(|i| load_validator(dir, i))
        .collect::<Result<Vec<_>, _>>()?;
    let accounts_path = dir.join("dev-accounts.json");
    let text = std::fs::read_to_string(&accounts_path).map_err(|e| dir_error(&accounts_path, e))?;
    let accounts: Vec<DevAccount> =
        serde_json::from_str(&text).map_err(|e| dir_error(&accounts_path, e))?;
    if options.api.is_some() && genesis.organisations.is_empty() {
        return Err(dir_error(
            &genesis_path,
            FileProblem::TokensWithoutRegistry(options.rpc_addr),
        ));
    }
    let risk_rules = match &options.risk_rules {
        Some(path) => {
            crate::risk::load_rules(path)?;
            Some(std::path::absolute(path).map_err(|e| dir_error(path, e))?)
        }
        None => None,
    };
    Ok(DevChain {
        genesis,
        validator_keys,
        accounts,
        storage: dir.join("storage"),
        kek: dev_kek(options)?,
        risk_rules,
        api: options.api,
    })
}

/// Validator `i`'s key: a key file, or a key on a token named by `validator-<i>.toml`.
fn load_validator(dir: &Path, i: usize) -> Result<ValidatorSigner, NodeError> {
    let on_token = dir.join(format!("validator-{i}.toml"));
    if on_token.exists() {
        let text = std::fs::read_to_string(&on_token).map_err(|e| dir_error(&on_token, e))?;
        let key: Pkcs11Key = toml::from_str(&text).map_err(|e| dir_error(&on_token, e))?;
        return KeySource::Pkcs11(key).load(dir, None);
    }
    crate::keyfile::load(&dir.join(format!("validator-{i}.json"))).map(|key| key.validator_signer())
}

/// Validator `i`'s folder under a dev chain directory run with `--processes`.
pub fn node_folder(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}"))
}

/// A dev chain keeps its validators' data where the way it was first run put it: refuse to
/// start it the other way, which would begin a second history of the same chain.
fn check_mode(options: &DevOptions) -> Result<(), NodeError> {
    let dir = &options.data_dir;
    let in_process = dir.join("storage").exists();
    let in_processes = node_folder(dir, 0).join("data").exists();
    let held = match (options.processes, in_process, in_processes) {
        (true, true, _) => "in one process (without --processes)",
        (false, _, true) => "with --processes",
        _ => return Ok(()),
    };
    Err(dir_error(dir, FileProblem::OtherDevMode { held }))
}

fn create(options: &DevOptions) -> Result<(), NodeError> {
    let dir = &options.data_dir;
    if options.validators == 0 {
        return Err(dir_error(dir, FileProblem::NoValidators));
    }
    std::fs::create_dir_all(dir).map_err(|e| dir_error(dir, e))?;
    let key_error = |path: &Path, e: trellis_crypto::KeyError| NodeError::KeyFile {
        path: path.display().to_string(),
        problem: e.into(),
    };
    let p2p_ports = free_p2p_ports(options.validators)?;
    let mut validators = Vec::new();
    for (i, p2p) in p2p_ports.into_iter().enumerate() {
        let public_key = match &options.validator_token {
            Some(token) => {
                let key = Pkcs11Key {
                    label: format!("{}-{i}", token.label),
                    ..token.clone()
                };
                let signer = key.generate(dir)?;
                let path = dir.join(format!("validator-{i}.toml"));
                let text = toml::to_string(&key).expect("a key location serialises");
                std::fs::write(&path, text).map_err(|e| dir_error(&path, e))?;
                signer.public_hex()
            }
            None => {
                let key = ValidatorKey::generate().map_err(|e| key_error(dir, e))?;
                crate::keyfile::write(&dir.join(format!("validator-{i}.json")), &key)?;
                key.public_hex()
            }
        };
        validators.push(ValidatorEntry { public_key, p2p });
    }
    let (accounts, alloc) =
        crate::accounts::create(options.accounts).map_err(|e| key_error(dir, e))?;
    let path = dir.join("dev-accounts.json");
    crate::accounts::write(&path, &accounts).map_err(|e| key_error(&path, e))?;
    let genesis = GenesisFile {
        chain_id: DEV_CHAIN_ID,
        timestamp: 0,
        block_gas_limit: GAS_LIMIT,
        gas_price: 0,
        validators,
        full_nodes: Vec::new(),
        organisations: if options.governed {
            crate::accounts::consortium(&accounts)
        } else {
            Vec::new()
        },
        alloc,
        epoch_length: options.epoch_length,
    };
    // Written last: its presence marks a complete directory.
    genesis.write_new(&dir.join("genesis.toml"))?;
    Ok(())
}

/// Runs a prepared dev chain until interrupted: every validator, the JSON-RPC server on
/// validator 0's chain and, on `metrics_addr`, the metrics of all of them. `ready` is called
/// with where they answer once they listen.
pub fn run(
    chain: DevChain,
    rpc_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    ready: impl FnOnce(Endpoints) + Send + 'static,
) -> Result<(), NodeError> {
    crate::check_rpc_port(rpc_addr)?;
    crate::check_metrics_port(metrics_addr)?;
    let (protection, watch) = crate::encryption::open(&chain.storage, chain.kek.as_ref())?;
    let runtime = tokio::Config::new().with_storage_directory(&chain.storage);
    crate::disk::log_usage(&chain.storage);
    tokio::Runner::new(runtime).start(|context| async move {
        let metrics = crate::serve_metrics(&context, metrics_addr).await?;
        if let Some(watch) = watch {
            crate::key_watch::follow(&context, watch);
        }
        let genesis = chain.genesis.genesis()?;
        let peers = chain.genesis.peers()?;
        let peer_count = peers.len();
        let node = crate::node_context(&context, "validator");
        // Validator 0 serves the API: its key signs the audit log, it watches the rules.
        let audit =
            crate::audit::Audit::start(&node, &chain.storage, chain.validator_keys[0].clone())?;
        audit.record(
            "node_started",
            serde_json::json!({
                "role": "dev",
                "validators": chain.validator_keys.len(),
                "key": chain.validator_keys[0].public_hex(),
                "version": env!("CARGO_PKG_VERSION"),
                "riskRules": chain.risk_rules.as_ref().map(|p| p.display().to_string()),
            }),
        );
        let risk = chain
            .risk_setup()?
            .map(|setup| crate::risk::Risk::start(&node, setup, &chain.storage, audit.clone()))
            .transpose()?;
        let evidence = crate::evidence::EvidenceLog::start(
            &node,
            &chain.storage,
            risk.clone(),
            audit.clone(),
        )?;
        let mut running = Vec::new();
        for (i, key) in chain.validator_keys.into_iter().enumerate() {
            let mut setup = NodeSetup::new(key, genesis.clone(), peers.clone(), format!("v{i}"));
            setup.state_cache_bytes = DEV_STATE_CACHE_BYTES;
            setup.protection = protection.clone();
            setup.risk = if i == 0 { risk.clone() } else { None };
            setup.evidence = (i == 0).then(|| evidence.clone());
            running.push(validator::start(&node, setup).await?);
        }
        // Measured once the validators' partitions exist.
        crate::disk::watch(&node, &chain.storage);
        let mut rpc_config = crate::rpc_config(&node, peer_count);
        rpc_config.certificates = running[0].certificates.clone();
        rpc_config.alarms = risk.as_ref().map(crate::risk::Risk::alarms);
        rpc_config.evidence = Some(evidence.book());
        rpc_config.access = chain
            .api
            .map(|api| api.access(&node, risk.clone(), audit.clone()));
        let genesis_chain_id = running[0].chain.genesis().chain_id;
        let server = trellis_rpc::serve(rpc_addr, running[0].chain.clone(), rpc_config).await?;
        if let Some(risk) = &risk {
            risk.serving_at(server.local_addr(), genesis_chain_id);
        }
        ready(Endpoints {
            rpc: server.local_addr(),
            rpc_tls: None,
            metrics: metrics.as_ref().map(|m| m.local_addr()),
        });
        // Validators run until the process is interrupted; every finalized block is already
        // durable, so stopping at any point loses nothing.
        let first = running.swap_remove(0);
        let _ = first.consensus.await;
        Err(NodeError::Stopped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2p_ports_are_distinct_outside_the_ephemeral_range_and_skip_a_taken_one() {
        let ports = free_p2p_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        for (i, addr) in ports.iter().enumerate() {
            assert!(DEV_P2P_PORTS.contains(&addr.port()), "{addr}");
            assert!(!ports[..i].contains(addr), "{addr} twice");
        }
        // The search starts at the same place in this process: a port taken since is skipped.
        let taken = TcpListener::bind(ports[0]).unwrap();
        let again = free_p2p_ports(3).unwrap();
        assert!(!again.contains(&ports[0]), "{again:?}");
        drop(taken);
    }
}
