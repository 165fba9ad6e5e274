//! `trellis`: the command-line entry point of a Trellis node and its tools.
//!
//! This binary only parses arguments and wires library crates together; every rule it relies on
//! lives in a library crate where it can be tested on its own.

mod alarms;
mod api;
mod audit;
mod bench;
mod data;
mod evidence;
mod field;
mod gov;
mod holds;
mod init;
mod keys;
mod lifecycle;
mod limit;
mod load;
mod seat;
mod tx;
mod validator_keys;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf};
use trellis_governance::EpochLength;
use trellis_node::{
    dev::{self, DevOptions},
    dev_processes,
    genesis_file::GenesisFile,
    node_config::{self, NodeConfig},
};

/// Trellis: a permissioned BFT blockchain that runs the EVM.
#[derive(Debug, Parser)]
#[command(name = "trellis", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create keys for accounts and validators, in files or in an HSM.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign and send transactions.
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// A node's data at rest: key-encryption keys and re-wrapping the data keys.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// The key manager for nodes without an HSM (also its own binary, `trellis-keyd`).
    Keyd(trellis_keyd::cli::KeydArgs),
    /// Run a development chain: N validators in this process, funded accounts, JSON-RPC.
    Dev {
        /// How many validators (each with its own keys, storage and p2p port on 127.0.0.1).
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// How many funded accounts to create (only when the directory is new).
        #[arg(long, default_value_t = 10)]
        accounts: usize,
        /// Where the chain lives; reused on restart. Default: $HOME/.trellis/dev.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Where the JSON-RPC server listens (with --processes: the first validator's; the
        /// others serve on the ports after it).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8545")]
        rpc_addr: SocketAddr,
        /// Where `GET /metrics` (Prometheus's text format) serves every validator's metrics
        /// (not with --processes: each node's node.toml names its own `metrics_addr`).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9545")]
        metrics_addr: SocketAddr,
        /// Run each validator as its own `trellis node` process (logs in DIR/node-<i>/node.log);
        /// none is restarted if it dies, and Ctrl-C stops them all.
        #[arg(long)]
        processes: bool,
        /// Give a new chain a consortium: one organisation, an identity per account with every
        /// built-in role, the first three accounts governors (two of three pass a proposal).
        /// Every transaction is then checked against the registry.
        #[arg(long)]
        governed: bool,
        /// Blocks per epoch of a new governed chain: validator-set changes take effect at the
        /// next epoch.
        #[arg(long, default_value_t = EpochLength::DEFAULT.0.get(), value_parser = clap::value_parser!(u64).range(1..))]
        epoch_length: u64,
        /// Generate a new chain's validator keys on this HSM token, labelled KEY-<i>:
        /// `pkcs11:token=LABEL;object=KEY?module-path=LIB&pin-source=file:PIN` (one process).
        #[arg(long, value_name = "PKCS11-URI", conflicts_with = "processes")]
        validator_token: Option<String>,
        /// Store a new chain's data in clear. By default it is encrypted, its keys wrapped by
        /// DIR/dev-kek (kept outside the data directories); an existing chain keeps its way.
        #[arg(long)]
        plaintext: bool,
        /// Watch these risk rules (TOML; reloaded when the file changes): alarms in the log,
        /// `trellis alarms`, the metrics; throttles at admission.
        #[arg(long, value_name = "FILE")]
        risk_rules: Option<PathBuf>,
        /// Ask API callers for tokens (`trellis api token`, signed by a dev account), as a
        /// member's node does; callers without one read blocks only.
        #[arg(long, conflicts_with = "processes")]
        api_tokens: bool,
        /// With --api-tokens: calls a second each caller may make (twice that at once).
        #[arg(long, value_name = "CALLS", requires = "api_tokens", value_parser = clap::value_parser!(u32).range(1..))]
        api_rate: Option<u32>,
    },
    /// Write a genesis file: the chain id, validators, initial balances and gas rules every
    /// member's node starts from.
    Init(init::InitArgs),
    /// Run one validator configured by FILE (genesis, validator key, data directory, RPC).
    Node {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Propose, vote on and read the consortium's governance proposals through a node.
    #[command(subcommand)]
    Gov(gov::GovCommand),
    /// The alarms a node's risk rules raised, with their evidence.
    Alarms(alarms::AlarmsArgs),
    /// Validators a node caught signing conflicting votes, each proof checked here.
    Evidence(evidence::EvidenceArgs),
    /// Check evidence of equivocation offline, from the evidence alone.
    VerifyEvidence(evidence::VerifyEvidenceArgs),
    /// Access to a node's API: tokens for nodes that ask callers for one.
    #[command(subcommand)]
    Api(api::ApiCommand),
    /// Check a node's audit log offline, or export it for auditors.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Sensitive fields kept off the ledger in clear: salted commitments, envelopes to the
    /// parties and an auditor, and proofs of a field's value.
    #[command(subcommand)]
    Field(field::FieldCommand),
    /// Approve, reject, reclaim or read transfers held for an approver's co-signature.
    #[command(subcommand)]
    Holds(holds::HoldsCommand),
    /// Measure a component and print its figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Check a state proof (the JSON of `trellis_getProof`) against a state root, without a
    /// node. Exits non-zero, naming the value, if anything in it is not proven.
    VerifyProof {
        /// The proof, as `trellis_getProof` returned it.
        #[arg(long, value_name = "FILE")]
        proof: PathBuf,
        /// The state root of a block header you trust. Default: the `stateRoot` in the file,
        /// which only shows the proof is consistent with what the node claimed.
        #[arg(long, value_name = "HEX")]
        root: Option<String>,
    },
    /// Check a history (the JSON of `trellis_getHistory`) against a state root, without a
    /// node: every write it lists is in the state's log with its value, in its block. Exits
    /// non-zero, naming the entry, if anything in it is not proven.
    VerifyHistory {
        /// The history, as `trellis_getHistory` returned it.
        #[arg(long, value_name = "FILE")]
        history: PathBuf,
        /// The state root of a block header you trust. Default: the `stateRoot` in the file,
        /// which only shows the history is consistent with what the node claimed.
        #[arg(long, value_name = "HEX")]
        root: Option<String>,
    },
}

fn main() -> Result<()> {
    // Two TLS providers are linked (aws-lc-rs, and ring through the HTTP client): name the
    // default, or rustls refuses to pick one for a client of an https:// node.
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Keys(command) => keys::run(command),
        Command::Tx(command) => tx::run(command),
        Command::Dev {
            validators,
            accounts,
            data_dir,
            rpc_addr,
            metrics_addr,
            processes,
            governed,
            epoch_length,
            validator_token,
            plaintext,
            risk_rules,
            api_tokens,
            api_rate,
        } => run_dev(
            metrics_addr,
            DevOptions {
                data_dir: data_dir.unwrap_or_else(default_dev_dir),
                validators,
                accounts,
                rpc_addr,
                processes,
                governed,
                epoch_length,
                plaintext,
                risk_rules,
                api: api_tokens.then(|| trellis_node::api_access::ApiSettings::dev(api_rate)),
                validator_token: validator_token
                    .map(|uri| trellis_hsm::KeyUri::parse(&uri))
                    .transpose()?
                    .map(|uri| trellis_node::signer::Pkcs11Key {
                        module: uri.module,
                        token: uri.token,
                        label: uri.object,
                        pin_file: uri.pin_file,
                    }),
            },
        ),
        Command::Gov(command) => gov::run(command),
        Command::Holds(command) => holds::run(command),
        Command::Alarms(args) => alarms::run(args),
        Command::Evidence(args) => evidence::list(args),
        Command::VerifyEvidence(args) => evidence::verify(args),
        Command::Api(command) => api::run(command),
        Command::Audit(command) => audit::run(command),
        Command::Field(command) => field::run(command),
        Command::Data(command) => data::run(command),
        Command::Keyd(args) => {
            init_logging();
            trellis_keyd::cli::run(args)
        }
        Command::Init(args) => init::run(args),
        Command::Node { config } => run_node(&config),
        Command::VerifyProof { proof, root } => verify_proof(&proof, root.as_deref()),
        Command::VerifyHistory { history, root } => verify_history(&history, root.as_deref()),
        Command::Bench(command) => bench::run(command),
    }
}

/// Reads the JSON answer of a `trellis_` proof method from `path` (the whole JSON-RPC
/// response, or only its result) with the state root to check it against: `root` if given
/// (trusted), else the file's own `stateRoot`.
fn read_proven<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    root: Option<&str>,
    method: &str,
) -> Result<(T, trellis_types::StateRoot, bool)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the file {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let json = json.get("result").cloned().unwrap_or(json);
    let value: T = serde_json::from_value(json.clone())
        .with_context(|| format!("{} is not an answer of {method}", path.display()))?;
    let (root, trusted) = match root {
        Some(root) => (root.to_string(), true),
        None => {
            let root = json["stateRoot"]
                .as_str()
                .with_context(|| format!("{} has no stateRoot: pass --root", path.display()))?;
            (root.to_string(), false)
        }
    };
    let root: trellis_types::B256 = root
        .parse()
        .with_context(|| format!("{root:?} is not a 32-byte hex state root"))?;
    Ok((value, trellis_types::StateRoot(root), trusted))
}

fn untrusted_root_note() {
    println!(
        "note: checked against the stateRoot inside the file; pass --root with the root of a header you trust"
    );
}

fn verify_history(path: &std::path::Path, root: Option<&str>) -> Result<()> {
    let (history, root, trusted) =
        read_proven::<trellis_state::History>(path, root, "trellis_getHistory")?;
    history.verify(&root).context("the history does not hold")?;
    let what = match history.slot {
        None => format!("account {}", history.address),
        Some(slot) => format!("slot {slot:#x} of {}", history.address),
    };
    println!(
        "proven against state root {root}: {} write(s) of {what}",
        history.entries.len()
    );
    for entry in &history.entries {
        let tx = match (entry.transaction_hash, entry.transaction_index) {
            (Some(hash), _) => format!("transaction {hash}"),
            (None, Some(index)) => format!("transaction #{index}"),
            (None, None) => "genesis".to_string(),
        };
        let value = match &entry.value {
            trellis_state::HistoryValue::Account { nonce, balance, .. } => {
                format!("nonce {nonce}, balance {balance} wei")
            }
            trellis_state::HistoryValue::Deleted { .. } => "deleted".to_string(),
            trellis_state::HistoryValue::Slot { value, .. } => format!("{value:#x}"),
        };
        println!("  block {}, {tx}: {value}", entry.block_number);
    }
    if history.truncated {
        println!("note: older writes exist; the node listed the newest only");
    }
    if !trusted {
        untrusted_root_note();
    }
    Ok(())
}

fn verify_proof(path: &std::path::Path, root: Option<&str>) -> Result<()> {
    let (proof, root, trusted) =
        read_proven::<trellis_state::StateProof>(path, root, "trellis_getProof")?;
    proof.verify(&root).context("the proof does not hold")?;
    let account = proof
        .account
        .as_ref()
        .expect("verified proofs have an account");
    println!(
        "proven against state root {root}: account {} has nonce {}, balance {} wei, code hash {}",
        proof.address, account.nonce, account.balance, account.code_hash
    );
    for slot in &proof.storage {
        println!("  slot {:#x} = {:#x}", slot.key, slot.value);
    }
    if !trusted {
        untrusted_root_note();
    }
    Ok(())
}

fn run_node(path: &std::path::Path) -> Result<()> {
    init_logging();
    trellis_node::supervised::follow_supervisor()?;
    let config = NodeConfig::load(path)?;
    let data_dir = config.data_dir.display().to_string();
    let context = format!("running the node (data directory {data_dir})");
    let role = match config.role {
        node_config::Role::Validator => "validator",
        node_config::Role::FullNode => "full node",
    };
    let rotated = node_config::run(config, move |at| {
        println!("Trellis {role} running, data in {data_dir}");
        print_endpoints(at);
    })
    .context(context)?;
    println!(
        "epoch {} seats this node's successor key 0x{}: restarting with it",
        rotated.epoch,
        alloy_primitives::hex::encode(rotated.key.0)
    );
    Err(trellis_node::rotation::restart_in_place(rotated))
        .context("restarting with the node's successor key")
}

/// Where a started node answers; the JSON-RPC line last (scripts and tests wait for it).
fn print_endpoints(at: trellis_node::Endpoints) {
    if let Some(metrics) = at.metrics {
        println!("Metrics at http://{metrics}/metrics");
    }
    println!("JSON-RPC listening on http://{}", at.rpc);
    if let Some(tls) = at.rpc_tls {
        println!("JSON-RPC over TLS listening on https://{tls}");
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "warn,trellis=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn default_dev_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".trellis").join("dev")
}

fn run_dev(metrics_addr: SocketAddr, options: DevOptions) -> Result<()> {
    init_logging();
    let chain = dev::prepare(&options).context("preparing the dev chain")?;
    let accounts = serde_json::to_string_pretty(&chain.accounts)?;
    let governance = governance_line(&chain.genesis, options.governed);
    let dir = options.data_dir.display().to_string();
    let validators = options.validators;
    if options.processes {
        let exe = std::env::current_exe().context("cannot find the trellis executable")?;
        return dev_processes::run(&chain, &options.data_dir, &exe, options.rpc_addr, |nodes| {
            println!(
                "Trellis dev chain: {validators} validator(s) in their own processes, data in {dir}"
            );
            println!("Funded accounts (also in {dir}/dev-accounts.json):\n{accounts}");
            println!("{governance}");
            for node in nodes {
                println!(
                    "validator {}: pid {}, JSON-RPC http://{}, log {}",
                    node.index,
                    node.pid,
                    node.rpc,
                    node.log.display()
                );
            }
            println!("JSON-RPC listening on http://{}", nodes[0].rpc);
        })
        .context("running the dev chain's validator processes");
    }
    let access = options.api.map(|api| {
        format!(
            "API tokens: callers without one read blocks only; each account makes one with `trellis api token --key {dir}/dev-accounts.json --from ADDRESS --chain-id {}` ({} calls a second each)",
            chain.genesis.chain_id, api.rate
        )
    });
    dev::run(chain, options.rpc_addr, Some(metrics_addr), move |at| {
        println!("Trellis dev chain: {validators} validator(s), data in {dir}");
        println!("Funded accounts (also in {dir}/dev-accounts.json):\n{accounts}");
        println!("{governance}");
        if let Some(access) = access {
            println!("{access}");
        }
        print_endpoints(at);
    })
    .context("running the dev chain")
}

/// Whether the chain checks its registry, in one line, and how to use it.
fn governance_line(genesis: &GenesisFile, asked: bool) -> String {
    if !genesis.organisations.is_empty() {
        return format!(
            "Governed: every sender must be registered; the first {} accounts are governors (two of three pass a proposal: `trellis gov --help`)",
            dev::DEV_GOVERNORS
        );
    }
    if asked {
        return "Not governed: this directory was created without --governed, and a chain's members are fixed at genesis (use a new --data-dir)".into();
    }
    "Not governed: any funded key may transact (--governed on a new --data-dir gives the accounts a consortium)".into()
}
