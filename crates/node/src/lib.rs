//! A Trellis node: wires the chain, p2p, consensus and the JSON-RPC server together, and knows
//! the files an operator handles (the genesis file, key files, a dev chain's directory).
//!
//! - [`validator::start`] starts one validator on the tokio runtime.
//! - [`dev`] prepares and runs a development chain: N validators in one process, each with its
//!   own keys, storage partitions and p2p port on 127.0.0.1, so even a dev chain uses the real,
//!   encrypted network path. One process per validator is the same [`validator::start`] with
//!   one validator per runtime.
//! - With the `fault-injection` feature (tests only), a crash test asks a node through the
//!   environment to kill itself in the middle of a state commit (`faults.rs`).

pub mod accounts;
pub mod api_access;
pub mod api_reads;
pub mod api_tls;
pub mod audit;
pub mod audit_anchor;
pub mod dev;
pub mod dev_processes;
pub mod disk;
pub mod encryption;
pub mod evidence;
mod faults;
mod format;
pub mod full_node;
pub mod genesis_file;
mod handshakes;
pub mod hello;
pub mod key_watch;
pub mod keyfile;
pub mod members;
pub mod migrate;
pub mod network;
pub mod node_config;
pub mod reencrypt;
pub mod risk;
pub mod rotation;
pub mod signer;
pub mod supervised;
pub mod validator;

use std::net::SocketAddr;
use trellis_types::ValidatorId;

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Genesis(#[from] genesis_file::GenesisFileError),
    #[error(transparent)]
    Chain(#[from] trellis_chain::ChainError),
    #[error(transparent)]
    Kek(#[from] trellis_vault::KekFileError),
    #[error(transparent)]
    Keyd(#[from] trellis_keyd::KeydClientError),
    #[error(transparent)]
    KeyStore(#[from] trellis_vault::KeyStoreError),
    #[error("consensus settings: {0}")]
    Consensus(#[from] trellis_consensus::ConfigError),
    #[error(transparent)]
    Rpc(#[from] trellis_rpc::RpcError),
    #[error(
        "this node's validator key {0:?} is not in the genesis validator set, and its node.toml names no p2p_listen address (a validator added by governance needs one)"
    )]
    NotAValidator(ValidatorId),
    #[error(
        "this node's full-node key {0:?} is not among the genesis's full nodes, and its node.toml names no p2p_listen address: a full node added by governance (`trellis gov propose add-full-node`) needs one; on a chain without governance, add it to [[full_nodes]] in every member's genesis file"
    )]
    NotAFullNode(ValidatorId),
    #[error("cannot listen for p2p on {addr}: {source} (is another node using that port?)")]
    P2pPort {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    DataDir { path: String, problem: FileProblem },
    #[error("HSM key {label:?} on token {token:?}: {problem}")]
    Hsm {
        token: String,
        label: String,
        problem: Box<trellis_hsm::HsmError>,
    },
    #[error("key file {path}: {problem}")]
    KeyFile { path: String, problem: FileProblem },
    #[error("configuration file {path}: {problem}")]
    Config { path: String, problem: FileProblem },
    #[error(
        "no {needed} free ports on 127.0.0.1 between {} and {} for the dev validators' p2p; \
         stop what listens there, or create fewer validators",
        range.start, range.end - 1
    )]
    NoFreePort {
        needed: usize,
        range: std::ops::Range<u16>,
    },
    #[error("cannot listen for JSON-RPC on {addr}: {source} (is another node using that port?)")]
    RpcPort {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for metrics on {addr}: {source} (is another node using that port?)")]
    MetricsPort {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Metrics(#[from] trellis_metrics::MetricsError),
    #[error(transparent)]
    Audit(trellis_audit::AuditError),
    #[error("consensus stopped")]
    Stopped,
    #[error("supervising the validator processes: {0}")]
    Supervision(std::io::Error),
    #[error("the supervisor (process {0}) that started this node is gone")]
    SupervisorGone(i32),
    #[error("cannot start {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("validator {index} exited while starting ({status}); its log {log} ends with:\n{tail}")]
    ChildFailed {
        index: usize,
        status: std::process::ExitStatus,
        log: String,
        tail: String,
    },
    #[error("validator {index} did not serve JSON-RPC within 120 s; see its log {log}")]
    ChildNotReady { index: usize, log: String },
    #[error("every validator process has exited; their logs are in the node-* folders")]
    AllChildrenExited,
}

/// Refuses early, before any validator starts, if the RPC port is taken.
/// What was wrong with a file or directory the operator gave (or a dev chain's).
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error(
        "is encrypted (it holds trellis-data-keys.toml) and node.toml names no [data_encryption]: add it, with kek_file naming the key-encryption key the directory was written under"
    )]
    EncryptedData,
    #[error(
        "holds data written in clear, and node.toml asks for [data_encryption]: stop the node and run `trellis data encrypt --config node.toml` to encrypt it in place, or remove [data_encryption]"
    )]
    PlaintextData,
    #[error(
        "was being encrypted by `trellis data encrypt` when it stopped: run it again to finish"
    )]
    EncryptionUnfinished,
    #[error(
        "holds the key-encryption key {kek}: keep it outside the data directory (on another disk), or encrypting the data hides nothing from whoever copies it"
    )]
    KekInsideData { kek: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("risk rules: {0}")]
    Rules(trellis_risk::RulesError),
    #[error(
        "names a risk_operator_key but no risk_rules: the key only makes the proposals rules ask for (freezes, validator removals)"
    )]
    OperatorWithoutRules,
    #[error(
        "api_access = \"anonymous\" would let anyone who reaches rpc_addr {0} call anything: anonymous access is for loopback addresses (dev chains); use api_access = \"tokens\""
    )]
    AnonymousApi(std::net::SocketAddr),
    #[error("api_public and api_rate apply to api_access = \"tokens\" only")]
    AnonymousApiSettings,
    #[error(
        "API tokens are checked against the chain's registry of accounts, and this chain has none (`trellis init --governed` creates one): without tokens, serve the API on a loopback address only (rpc_addr is {0})"
    )]
    TokensWithoutRegistry(std::net::SocketAddr),
    #[error("api_rate = 0 would refuse every call: give the calls a second each caller may make")]
    ZeroApiRate,
    #[error("risk_operator_key: {0}")]
    OperatorKey(Box<trellis_client::ClientError>),
    #[error("[audit_anchor] every_secs = 0: give the seconds between anchors (600 by default)")]
    AnchorEveryZero,
    #[error("[audit_anchor] key: {0}")]
    AnchorKey(Box<trellis_client::ClientError>),
    #[error("[api_tls]: {0}")]
    ApiTls(#[from] trellis_rpc::tls::TlsError),
    #[error("{0}")]
    Key(#[from] trellis_crypto::KeyError),
    #[error(
        "not a key file (a key bundle of `trellis keys new` or a validator key of `trellis init`): {0}"
    )]
    NotAKeyFile(serde_json::Error),
    #[error(
        "the key file is sealed under a passphrase: name the passphrase's file as key_passphrase_file in node.toml"
    )]
    Sealed,
    #[error("the public key does not belong to the private key")]
    KeyMismatch,
    #[error(
        "state_keep_blocks = 0 would keep no history at all: give at least 1, or leave it out to keep everything"
    )]
    KeepNothing,
    #[error("state_cache_mib = {0} is out of range: give between 1 and 1048576 MiB")]
    CacheOutOfRange(usize),
    #[error(
        "a successor key goes with the key it follows: next_validator_key beside validator_key, next_full_node_key beside full_node_key"
    )]
    NextKeyOfOtherRole,
    #[error("give exactly one of validator_key (a validator) and full_node_key (a full node)")]
    OneKey,
    #[error("[data_encryption] needs exactly one of kek_file, kek_hsm and keyd")]
    OneKek,
    #[error("a key manager knows the node by its key: the node's key must be loaded to reach it")]
    KeydWithoutNodeKey,
    #[error(
        "names a kek_file while the node's key is a file too: the key-encryption key and the transport key would both be held in clear on this host; keep the key-encryption key in an HSM ([data_encryption.kek_hsm], `trellis data new-kek --hsm`) or the node's key on one, or, for a trial, accept it with insecure_local_kek = true"
    )]
    KekBesideTransportKey,
    #[error("a chain needs at least one validator")]
    NoValidators,
    #[error(
        "holds a dev chain of {held} validator(s), not {asked}: pass --validators {held} or use another --data-dir"
    )]
    OtherValidatorCount { held: usize, asked: usize },
    #[error("holds a dev chain run {held}: run it the same way again or use another --data-dir")]
    OtherDevMode { held: &'static str },
    #[error(
        "was written in storage format {held}, and this build reads format {}: move the directory aside and start from an empty one (a node fetches the chain from its peers), or run the Trellis that wrote it",
        crate::format::STORAGE_FORMAT
    )]
    OtherStorageFormat { held: String },
}

pub fn check_rpc_port(addr: SocketAddr) -> Result<(), NodeError> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| NodeError::RpcPort { addr, source })
}

/// Refuses, before anything is written, a metrics address that cannot be listened on.
pub fn check_metrics_port(addr: Option<SocketAddr>) -> Result<(), NodeError> {
    let Some(addr) = addr else { return Ok(()) };
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| NodeError::MetricsPort { addr, source })
}

/// Where a started node answers.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// The JSON-RPC server (HTTP and WebSocket).
    pub rpc: SocketAddr,
    /// The JSON-RPC server over TLS (HTTPS and WSS), if configured.
    pub rpc_tls: Option<SocketAddr>,
    /// `GET /metrics` (Prometheus's text format), if configured.
    pub metrics: Option<SocketAddr>,
}

/// Serves the runtime's metrics (every metric registered under `context`'s runtime) on
/// `addr`, if configured.
pub async fn serve_metrics(
    context: &commonware_runtime::tokio::Context,
    addr: Option<SocketAddr>,
) -> Result<Option<trellis_metrics::MetricsServer>, NodeError> {
    use commonware_runtime::{Metrics as _, Supervisor as _};
    let Some(addr) = addr else { return Ok(None) };
    let metrics = context.child("metrics");
    let server = trellis_metrics::serve(addr, move || metrics.encode()).await?;
    tracing::info!(url = server.url(), "metrics served");
    Ok(Some(server))
}

/// The context a node's parts (chain, p2p, consensus, API) run under: their metrics are named
/// `trellis_…` whatever the node's role, which a label says (`role="validator"` or
/// `"full_node"`), so one set of alert rules fits every node.
pub fn node_context(
    context: &commonware_runtime::tokio::Context,
    role: &'static str,
) -> commonware_runtime::tokio::Context {
    use commonware_runtime::Supervisor as _;
    context.child("trellis").with_attribute("role", role)
}

/// The JSON-RPC server's configuration for a node among `validators` validators (itself
/// included): default limits; its peers are the other validators; calls counted under
/// `context` (`trellis_rpc_…`).
pub fn rpc_config(
    context: &commonware_runtime::tokio::Context,
    validators: usize,
) -> trellis_rpc::RpcConfig {
    use commonware_runtime::Supervisor as _;
    trellis_rpc::RpcConfig {
        peers: validators.saturating_sub(1) as u64,
        metrics: Some(trellis_rpc::RpcMetrics::register(&context.child("rpc"))),
        ..Default::default()
    }
}
