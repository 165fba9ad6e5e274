//! One configured validator per process: `trellis node --config FILE`.
//!
//! ```toml
//! genesis = "genesis.toml"          # written by `trellis init`; relative to this file
//! validator_key = "keys.json"       # written by `trellis keys new --out` or `trellis init`
//! # full_node_key = "node.json"     # instead of validator_key: follow the chain, never vote
//! key_passphrase_file = "/run/trellis/pass" # opens a sealed key file (`trellis keys seal`)
//! data_dir = "data"                 # this validator's storage
//! rpc_addr = "127.0.0.1:8545"       # optional; this is the default
//! metrics_addr = "127.0.0.1:9100"   # optional: GET /metrics for Prometheus (none by default)
//! p2p_listen = "0.0.0.0:30300"      # optional; default: this node's address in the genesis
//! risk_rules = "risk.toml"          # optional: the risk rules this node watches (`risk.rs`)
//! # risk_operator_key = "governor.json" # a governor's account key (or a pkcs11: URI) that
//! #                                 # makes the proposals rules ask for (propose_freeze,
//! #                                 # propose_removal)
//! # risk_operator_from = "0x…"      # which account of that file; risk_operator_passphrase_file
//! #                                 # opens it if sealed
//! # api_access = "tokens"           # who may call the API (`api_access.rs`): callers present
//! #                                 # API tokens; the default unless rpc_addr is loopback
//! # api_public = "blocks"           # what callers without a token read ("nothing" by default)
//! # api_rate = 1000                 # calls a second per caller
//!
//! # next_validator_key = "next.json" # a rotation under way (`trellis keys rotate-validator`):
//! #                                 # the node switches to it at the epoch that lists it
//! # next_full_node_key = "next.json" # the same for a full node's transport key
//!
//! # The audit log's head anchored on chain (`audit_anchor.rs`)
//! # [audit_anchor]
//! # contract = "0x…"                # an AuditAnchors contract
//! # key = "anchor.json"             # the account that sends the anchors (or a pkcs11: URI)
//! # every_secs = 600
//!
//! # The API over TLS for other hosts, optionally mutual (`api_tls.rs`)
//! # [api_tls]
//! # addr = "0.0.0.0:8443"
//! # cert = "api-cert.pem"
//! # key = "api-key.pem"
//! # client_ca = "members-ca.pem"
//!
//! # Data at rest encrypted (`encryption.rs`): the key-encryption key, kept off the data disk
//! # [data_encryption]
//! # kek_file = "/etc/trellis/kek"
//!
//! # Instead of a key file, a key that never leaves an HSM (a TOML table: after the lines above)
//! # [validator_key]
//! # module = "/usr/lib/softhsm/libsofthsm2.so"
//! # token = "member-0"
//! # label = "validator"
//! # pin_file = "hsm.pin"
//! ```

use crate::{
    Endpoints, FileProblem, NodeError,
    api_access::{AccessMode, ApiFile, ApiSettings, PublicMode},
    api_tls::{ApiTls, ApiTlsFile},
    audit_anchor::{AnchorFile, AnchorSetup},
    encryption::{DataEncryption, Kek},
    full_node,
    genesis_file::GenesisFile,
    network::NodeSetup,
    rotation::Rotated,
    signer::KeySource,
    validator,
};
use commonware_runtime::Runner as _;
use serde::Deserialize;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use trellis_crypto::{Passphrase, ValidatorSigner};

fn default_rpc_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8545))
}

/// The node's configuration file, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    genesis: PathBuf,
    /// A validator's key; exactly one of this and `full_node_key`.
    #[serde(default)]
    validator_key: Option<KeySource>,
    /// The key a validator rotates to: used from the first epoch whose set lists it.
    #[serde(default)]
    next_validator_key: Option<KeySource>,
    /// A full node's key (its p2p identity, listed under `[[full_nodes]]` in the genesis, or
    /// let in by governance).
    #[serde(default)]
    full_node_key: Option<KeySource>,
    /// The key a full node rotates to: used from the first epoch whose full nodes list it.
    #[serde(default)]
    next_full_node_key: Option<KeySource>,
    /// The file whose first line opens a sealed key file (keep it off the data disk).
    #[serde(default)]
    key_passphrase_file: Option<PathBuf>,
    data_dir: PathBuf,
    #[serde(default = "default_rpc_addr")]
    rpc_addr: SocketAddr,
    /// Where to serve `GET /metrics` (none without it: expose it to the monitoring network
    /// only).
    #[serde(default)]
    metrics_addr: Option<SocketAddr>,
    /// Where to listen for p2p, when it differs from the address the genesis gives the others
    /// (behind NAT, a port forward or a relay).
    #[serde(default)]
    p2p_listen: Option<SocketAddr>,
    /// MiB of memory for the state's page cache.
    #[serde(default = "default_state_cache_mib")]
    state_cache_mib: usize,
    /// Blocks of state history to keep; absent keeps all of it.
    #[serde(default)]
    state_keep_blocks: Option<u64>,
    /// Encrypts what the node stores; absent stores it in clear.
    #[serde(default)]
    data_encryption: Option<DataEncryption>,
    /// The risk rules this node watches (reloaded when the file changes); absent: none.
    #[serde(default)]
    risk_rules: Option<PathBuf>,
    /// A governor's account key (a key file or a `pkcs11:` URI) that signs the
    /// proposals rules ask for (freezes, validator removals).
    #[serde(default)]
    risk_operator_key: Option<String>,
    #[serde(default)]
    risk_operator_from: Option<alloy_primitives::Address>,
    #[serde(default)]
    risk_operator_passphrase_file: Option<PathBuf>,
    /// Who may call the API: `tokens` or `anonymous` (loopback only).
    #[serde(default)]
    api_access: Option<AccessMode>,
    #[serde(default)]
    api_public: Option<PublicMode>,
    #[serde(default)]
    api_rate: Option<u32>,
    /// Anchors the audit log's head on chain; absent: not anchored.
    #[serde(default)]
    audit_anchor: Option<AnchorFile>,
    /// The API over TLS for other hosts (`api_tls.rs`); absent: none.
    #[serde(default)]
    api_tls: Option<ApiTlsFile>,
}

fn default_state_cache_mib() -> usize {
    crate::network::DEFAULT_STATE_CACHE_BYTES >> 20
}

/// What a node does in the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Votes and proposes.
    Validator,
    /// Follows the chain without voting.
    FullNode,
}

/// A loaded and checked node configuration.
pub struct NodeConfig {
    pub genesis: GenesisFile,
    pub role: Role,
    pub key: ValidatorSigner,
    /// A validator's successor key, while a rotation is under way.
    pub next_key: Option<ValidatorSigner>,
    pub data_dir: PathBuf,
    pub rpc_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub p2p_listen: Option<SocketAddr>,
    pub state_cache_bytes: usize,
    pub state_keep_blocks: Option<u64>,
    /// The key-encryption key of an encrypted data directory.
    pub kek: Option<Kek>,
    /// Risk control: the rules file (checked at load) and the operator's key.
    pub risk: Option<crate::risk::RiskSetup>,
    /// Access control on the API; `None`: anonymous (a loopback address).
    pub api: Option<ApiSettings>,
    /// Where and how the audit log's head is anchored on chain.
    pub audit_anchor: Option<AnchorSetup>,
    /// The API over TLS, if configured.
    pub api_tls: Option<ApiTls>,
}

fn config_error(path: &Path, problem: impl Into<FileProblem>) -> NodeError {
    NodeError::Config {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Where a node keeps its data and the key-encryption key it is encrypted under: what the
/// `trellis data` commands need, read without opening the node's keys (but with a key manager,
/// which knows the node by its key).
pub struct DataSettings {
    pub data_dir: PathBuf,
    pub kek: Option<Kek>,
}

impl DataSettings {
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|e| config_error(path, e))?;
        let file: NodeFile = toml::from_str(&text).map_err(|e| config_error(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if file
            .data_encryption
            .as_ref()
            .is_some_and(|e| e.keyd.is_some())
        {
            let config = NodeConfig::load(path)?;
            return Ok(Self {
                data_dir: config.data_dir,
                kek: config.kek,
            });
        }
        Ok(Self {
            data_dir: base.join(&file.data_dir),
            kek: file
                .data_encryption
                .map(|e| e.kek(base, None))
                .transpose()
                .map_err(|e| config_error(path, e))?,
        })
    }
}

impl NodeConfig {
    /// Where this node listens for p2p: `p2p_listen`, else its own address in the genesis.
    pub fn p2p_addr(&self) -> Result<SocketAddr, NodeError> {
        if let Some(addr) = self.p2p_listen {
            return Ok(addr);
        }
        let me = self.key.validator_id();
        let listed = match self.role {
            Role::Validator => genesis_listing(&self.genesis, &self.key)?,
            Role::FullNode => self
                .genesis
                .full_node_peers()?
                .iter()
                .find(|p| p.id == me)
                .map(|p| p.p2p),
        };
        listed.ok_or(match self.role {
            Role::Validator => NodeError::NotAValidator(me),
            Role::FullNode => NodeError::NotAFullNode(me),
        })
    }

    /// Reads the configuration and everything it names: the genesis file and the key file.
    /// Relative paths are taken from the configuration file's directory.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|e| config_error(path, e))?;
        let file: NodeFile = toml::from_str(&text).map_err(|e| config_error(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| base.join(p);
        let genesis = GenesisFile::load(&resolve(&file.genesis))?;
        let (role, key_source) = match (&file.validator_key, &file.full_node_key) {
            (Some(key), None) => (Role::Validator, key),
            (None, Some(key)) => (Role::FullNode, key),
            _ => return Err(config_error(path, FileProblem::OneKey)),
        };
        let passphrase = open_passphrase(file.key_passphrase_file.as_ref(), path, &resolve)?;
        let key = key_source.load(base, passphrase.as_ref())?;
        let next_key = match (role, &file.next_validator_key, &file.next_full_node_key) {
            (_, None, None) => None,
            (Role::Validator, Some(next), None) | (Role::FullNode, None, Some(next)) => {
                Some(next.load(base, passphrase.as_ref())?)
            }
            _ => return Err(config_error(path, FileProblem::NextKeyOfOtherRole)),
        };
        if file.state_keep_blocks == Some(0) {
            return Err(config_error(path, FileProblem::KeepNothing));
        }
        if !(1..=1 << 20).contains(&file.state_cache_mib) {
            return Err(config_error(
                path,
                FileProblem::CacheOutOfRange(file.state_cache_mib),
            ));
        }
        if let Some(encryption) = &file.data_encryption {
            encryption
                .check_apart(key.in_memory())
                .map_err(|e| config_error(path, e))?;
        }
        let risk = risk_setup(&file, path, &resolve)?;
        let governed = genesis.genesis()?.epochs().is_some();
        let api_file = ApiFile {
            access: file.api_access,
            public: file.api_public,
            rate: file.api_rate,
        };
        let api_tls = file
            .api_tls
            .as_ref()
            .map(|tls| tls.load(base, api_file, governed))
            .transpose()
            .map_err(|e| config_error(path, e))?;
        // With a TLS server, api_public and api_rate are its settings even when the plain
        // server on loopback is anonymous.
        let plain = match (&api_tls, api_file.access) {
            (Some(_), None | Some(AccessMode::Anonymous)) => ApiFile {
                public: None,
                rate: None,
                ..api_file
            },
            _ => api_file,
        };
        let api = plain
            .check(file.rpc_addr, governed)
            .map_err(|e| config_error(path, e))?;
        let audit_anchor = file
            .audit_anchor
            .as_ref()
            .map(|anchor| anchor.open(base))
            .transpose()
            .map_err(|e| config_error(path, e))?;
        let me = key.validator_id();
        match role {
            // A validator added by governance is in no genesis list: it names where it listens.
            Role::Validator
                if file.p2p_listen.is_none() && genesis_listing(&genesis, &key)?.is_none() =>
            {
                return Err(NodeError::NotAValidator(me));
            }
            // So is a full node added by governance.
            Role::FullNode
                if file.p2p_listen.is_none()
                    && !genesis.full_node_peers()?.iter().any(|p| p.id == me) =>
            {
                return Err(NodeError::NotAFullNode(me));
            }
            _ => {}
        }
        Ok(Self {
            genesis,
            role,
            next_key,
            data_dir: resolve(&file.data_dir),
            rpc_addr: file.rpc_addr,
            metrics_addr: file.metrics_addr,
            p2p_listen: file.p2p_listen,
            state_cache_bytes: file.state_cache_mib << 20,
            state_keep_blocks: file.state_keep_blocks,
            kek: file
                .data_encryption
                .map(|e| e.kek(base, Some(&key)))
                .transpose()
                .map_err(|e| config_error(path, e))?,
            risk,
            api,
            audit_anchor,
            api_tls,
            key,
        })
    }
}

/// The passphrase in `file` (relative to node.toml at `path`), if one is named.
fn open_passphrase(
    file: Option<&PathBuf>,
    path: &Path,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<Option<Passphrase>, NodeError> {
    file.map(|p| Passphrase::from_file(&resolve(p)))
        .transpose()
        .map_err(|e| config_error(path, e))
}

/// Risk control as node.toml sets it up: the rules checked now, the operator's key opened.
fn risk_setup(
    file: &NodeFile,
    path: &Path,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<Option<crate::risk::RiskSetup>, NodeError> {
    let Some(rules) = &file.risk_rules else {
        if file.risk_operator_key.is_some() {
            return Err(config_error(path, FileProblem::OperatorWithoutRules));
        }
        return Ok(None);
    };
    let rules_file = resolve(rules);
    crate::risk::load_rules(&rules_file)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let operator = file
        .risk_operator_key
        .as_deref()
        .map(|spec| {
            crate::signer::account_signer(
                base,
                spec,
                file.risk_operator_from,
                file.risk_operator_passphrase_file.as_deref(),
                FileProblem::OperatorKey,
            )
        })
        .transpose()
        .map_err(|e| config_error(path, e))?;
    Ok(Some(crate::risk::RiskSetup {
        rules_file,
        operator,
    }))
}

/// Where the genesis file says validator `key` listens. A key that took over from a genesis
/// validator by rotation is not in the file: its node.toml names `p2p_listen`.
fn genesis_listing(
    genesis: &GenesisFile,
    key: &ValidatorSigner,
) -> Result<Option<SocketAddr>, NodeError> {
    let me = key.validator_id();
    let peers = genesis.peers()?;
    Ok(peers.iter().find(|p| p.id == me).map(|p| p.p2p))
}

/// Runs the configured validator and its JSON-RPC server until consensus stops (an error) or
/// the chain moves the validator's seat to its successor key: then it returns what rotated,
/// for the caller to restart the node ([`crate::rotation::restart_in_place`]). `ready` is
/// called with the RPC address once it listens.
pub fn run(
    config: NodeConfig,
    ready: impl FnOnce(Endpoints) + Send + 'static,
) -> Result<Rotated, NodeError> {
    // The ports first: a node that cannot serve writes nothing.
    crate::check_rpc_port(config.rpc_addr)?;
    crate::check_metrics_port(config.metrics_addr)?;
    crate::network::check_port_free(config.p2p_addr()?)?;
    // Before anything is written: a missing or wrong key-encryption key refuses here.
    let (protection, watch) = crate::encryption::open(&config.data_dir, config.kek.as_ref())?;
    let runtime = commonware_runtime::tokio::Config::new().with_storage_directory(&config.data_dir);
    commonware_runtime::tokio::Runner::new(runtime).start(|context| async move {
        let metrics = crate::serve_metrics(&context, config.metrics_addr).await?;
        if let Some(watch) = watch {
            crate::key_watch::follow(&context, watch);
        }
        let genesis = config.genesis.genesis()?;
        let peers = config.genesis.peers()?;
        let full_nodes = config.genesis.full_node_peers()?;
        let (prefix, role, connected) = match config.role {
            Role::Validator => ("validator", "validator", peers.len()),
            // A full node connects to every validator, and counts itself among none of them.
            Role::FullNode => ("full-node", "full_node", peers.len() + 1),
        };
        let node = crate::node_context(&context, role);
        let audit = crate::audit::Audit::start(&node, &config.data_dir, config.key.clone())?;
        audit.record(
            "node_started",
            serde_json::json!({
                "role": role,
                "key": config.key.public_hex(),
                "version": env!("CARGO_PKG_VERSION"),
                "rpc": config.rpc_addr.to_string(),
                "riskRules": config.risk.as_ref().map(|r| r.rules_file.display().to_string()),
            }),
        );
        let mut rpc_config = crate::rpc_config(&node, connected);
        let mut setup = NodeSetup::new(config.key, genesis, peers, prefix.into());
        setup.next_key = config.next_key;
        setup.full_nodes = full_nodes;
        setup.listen = config.p2p_listen;
        setup.state_cache_bytes = config.state_cache_bytes;
        setup.state_keep_blocks = config.state_keep_blocks;
        setup.protection = protection;
        let risk = config
            .risk
            .map(|setup| crate::risk::Risk::start(&node, setup, &config.data_dir, audit.clone()))
            .transpose()?;
        setup.risk = risk.clone();
        // Only a validator's consensus sees votes, and so conflicting ones.
        let evidence = match config.role {
            Role::Validator => Some(crate::evidence::EvidenceLog::start(
                &node,
                &config.data_dir,
                risk.clone(),
                audit.clone(),
            )?),
            Role::FullNode => None,
        };
        setup.evidence = evidence.clone();
        crate::disk::log_usage(&config.data_dir);
        match config.role {
            Role::Validator => tracing::info!("starting a validator"),
            Role::FullNode => {
                tracing::info!("starting a full node: it follows the chain and never votes");
            }
        }
        let running = match config.role {
            Role::Validator => validator::start(&node, setup).await?,
            Role::FullNode => full_node::start(&node, setup).await?,
        };
        // Measured once the node's partitions exist.
        crate::disk::watch(&node, &config.data_dir);
        rpc_config.certificates = running.certificates.clone();
        rpc_config.alarms = risk.as_ref().map(crate::risk::Risk::alarms);
        rpc_config.evidence = evidence.as_ref().map(crate::evidence::EvidenceLog::book);
        let tls_server = match config.api_tls {
            Some(tls) => {
                let mut tls_config = rpc_config.clone();
                tls_config.access = Some(tls.settings.access(&node, risk.clone(), audit.clone()));
                tls_config.tls = Some(tls.config);
                Some(trellis_rpc::serve(tls.addr, running.chain.clone(), tls_config).await?)
            }
            None => None,
        };
        rpc_config.access = config
            .api
            .map(|api| api.access(&node, risk.clone(), audit.clone()));
        let genesis_chain_id = running.chain.genesis().chain_id;
        let server = trellis_rpc::serve(config.rpc_addr, running.chain.clone(), rpc_config).await?;
        if let Some(risk) = &risk {
            risk.serving_at(server.local_addr(), genesis_chain_id);
        }
        if let Some(anchor) = config.audit_anchor {
            let url = format!("http://{}", server.local_addr());
            crate::audit_anchor::start(&node, anchor, audit.clone(), url, genesis_chain_id);
        }
        ready(Endpoints {
            rpc: server.local_addr(),
            rpc_tls: tls_server.as_ref().map(trellis_rpc::RpcServer::local_addr),
            metrics: metrics.as_ref().map(|m| m.local_addr()),
        });
        let Some(rotated) = running.rotated else {
            let _ = running.consensus.await;
            return Err(NodeError::Stopped);
        };
        let rotated = tokio::select! {
            _ = running.consensus => Err(NodeError::Stopped),
            rotated = rotated => rotated.map_err(|_| NodeError::Stopped),
        }?;
        // On disk before the node restarts under its successor key.
        let detail = serde_json::json!({
            "epoch": rotated.epoch.0,
            "successor": format!("0x{}", hex::encode(rotated.key.0)),
        });
        audit.write("key_rotated", detail).await;
        Ok(rotated)
    })
}

/// What a written `node.toml` says; paths are relative to the file's directory.
pub struct NodeFileText<'a> {
    pub genesis: &'a str,
    pub role: Role,
    /// The validator's or full node's key file.
    pub key: &'a str,
    pub data_dir: &'a str,
    pub rpc_addr: SocketAddr,
    /// `None` leaves the validator's default.
    pub state_cache_mib: Option<usize>,
    /// The file that opens a sealed key file, if the key is sealed.
    pub passphrase_file: Option<&'a str>,
    /// A dev chain's key-encryption key file, if its data is encrypted (accepted beside the
    /// key file, as a dev chain keeps every key on one host).
    pub kek_file: Option<&'a str>,
    /// The risk rules file, if the node watches any.
    pub risk_rules: Option<&'a str>,
    /// The key file and account that make the proposals rules ask for.
    pub risk_operator: Option<(&'a str, alloy_primitives::Address)>,
}

impl NodeFileText<'_> {
    /// The file's text, with a comment for each setting an operator may change.
    pub fn render(&self) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut text = format!(
            "# A Trellis node: `trellis node --config node.toml`. Paths are relative to this file.\n\
             genesis = {}\n\
             # This node's ed25519 key (mode 0600); keep it on this host only.\n\
             {} = {}\n\
             data_dir = {}\n\
             # JSON-RPC (HTTP and WebSocket). 0.0.0.0:PORT serves other hosts too: callers then\n\
             # present API tokens (api_access = \"tokens\", README \"Who may call the API\").\n\
             rpc_addr = {}\n",
            quote(self.genesis),
            match self.role {
                Role::Validator => "validator_key",
                Role::FullNode => "full_node_key",
            },
            quote(self.key),
            quote(self.data_dir),
            quote(&self.rpc_addr.to_string()),
        );
        if let Some(file) = self.passphrase_file {
            text.push_str(&format!(
                "# The key file is sealed: this file's first line opens it. Keep it off the data disk.\n\
                 key_passphrase_file = {}\n",
                quote(file)
            ));
        }
        if let Some(mib) = self.state_cache_mib {
            text.push_str(&format!("state_cache_mib = {mib}\n"));
        }
        if let Some(file) = self.risk_rules {
            text.push_str(&format!(
                "# The risk rules this node watches (reloaded when the file changes).\n\
                 risk_rules = {}\n",
                quote(file)
            ));
        }
        if let Some((file, account)) = self.risk_operator {
            text.push_str(&format!(
                "# The governor account that makes the proposals risk rules ask for.\n\
                 risk_operator_key = {}\n\
                 risk_operator_from = \"{account}\"\n",
                quote(file)
            ));
        }
        if let Some(file) = self.kek_file {
            text.push_str(&format!(
                "# What the node stores is encrypted; this key (kept off the data disk) unwraps its keys.\n\
                 [data_encryption]\n\
                 kek_file = {}\n\
                 # A dev chain: its key file and this key sit on one host (in production, an HSM holds one).\n\
                 insecure_local_kek = true\n",
                quote(file)
            ));
        }
        text
    }
}
