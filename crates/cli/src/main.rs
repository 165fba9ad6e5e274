//! `trellis`: the command-line entry point of a Trellis node and its tools.
//!
//! This binary only parses arguments and wires library crates together; every rule it relies on
//! lives in a library crate where it can be tested on its own.

mod data;
mod gov;
mod holds;
mod keys;
mod lifecycle;
mod limit;
mod load;
mod seat;
mod tx;
mod validator_keys;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf};
use trellis_governance::EpochLength;
use trellis_node::{
    dev::{self, DevOptions},
    dev_processes,
    genesis_file::{GenesisFile, ValidatorEntry},
    members::{self, NetworkPlan},
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
    },
    /// Write a genesis file: the chain id, validators, initial balances and gas rules every
    /// member's node starts from.
    Init(InitArgs),
    /// Run one validator configured by FILE (genesis, validator key, data directory, RPC).
    Node {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Propose, vote on and read the consortium's governance proposals through a node.
    #[command(subcommand)]
    Gov(gov::GovCommand),
    /// Approve, reject, reclaim or read transfers held for an approver's co-signature.
    #[command(subcommand)]
    Holds(holds::HoldsCommand),
    /// Measure a component and print its figures.
    #[command(subcommand)]
    Bench(BenchCommand),
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

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The state layer: committed slot updates per second over a large state, and bytes on
    /// disk per account. Run it on a release build.
    State {
        /// How many accounts (each with one slot in a token contract).
        #[arg(long, default_value_t = 1_000_000)]
        accounts: u64,
        /// Slot updates per block.
        #[arg(long, default_value_t = 10_000)]
        block_updates: usize,
        /// How many blocks to measure.
        #[arg(long, default_value_t = 20)]
        blocks: usize,
        /// MiB of page cache for the state (a validator's default).
        #[arg(long, default_value_t = 512)]
        cache_mib: usize,
        /// A directory to create for the run (removed afterwards). Default: in the system's
        /// temporary directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Store the state encrypted at rest, as a node with `[data_encryption]` does.
        #[arg(long)]
        encrypted: bool,
    },
    /// A data key rotated under an encrypted state that keeps committing blocks: how fast the
    /// node's background re-encryption moves the data, and what commits cost meanwhile. Run it
    /// on a release build.
    Rekey {
        /// How many accounts (each with one slot in a token contract).
        #[arg(long, default_value_t = 1_000_000)]
        accounts: u64,
        /// Slot updates per block.
        #[arg(long, default_value_t = 10_000)]
        block_updates: usize,
        /// MiB of page cache for the state (a validator's default).
        #[arg(long, default_value_t = 512)]
        cache_mib: usize,
        /// A directory to create for the run (removed afterwards). Default: in the system's
        /// temporary directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Log queries as eth_getLogs runs them: one contract's transfers to one recipient over a
    /// long chain, through the log index. Run it on a release build.
    Logs {
        /// How many blocks the chain has.
        #[arg(long, default_value_t = 100_000)]
        blocks: u64,
        /// Transfer logs per block.
        #[arg(long, default_value_t = 20)]
        block_logs: usize,
        /// How many queries to time.
        #[arg(long, default_value_t = 100)]
        queries: usize,
        /// A directory to create for the run (removed afterwards). Default: in the system's
        /// temporary directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Load a fresh dev chain over JSON-RPC with pre-signed transfers or ERC-20 transfers and
    /// report TPS, latency, the node's CPU and memory. Run it on a release build.
    Load(load::LoadArgs),
    /// The work each transaction needs on one core, and the throughput ceiling it implies on
    /// this machine. Run it on a release build.
    Limit(limit::LimitArgs),
    /// Signatures per second through a PKCS#11 token (SoftHSM2 or a real HSM), for validator
    /// (ed25519) and account (secp256k1) keys, beside the same in memory.
    Hsm {
        /// The PKCS#11 module.
        #[arg(long, value_name = "LIB", default_value = trellis_hsm::SOFTHSM2_MODULE)]
        module: PathBuf,
        /// The token's label; the benchmark makes two keys on it and destroys them after.
        #[arg(long)]
        token: String,
        /// The file whose first line is the token's user PIN.
        #[arg(long, value_name = "FILE")]
        pin_file: PathBuf,
        #[arg(long, default_value_t = 2_000)]
        signatures: u32,
    },
}

/// Two shapes: `--validators N --out DIR` creates every member's keys and folder;
/// `--validator KEY@HOST:PORT … --out FILE` writes only a genesis for keys the members made.
#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Where to write: a new directory with `--validators`, else the genesis file (TOML).
    /// Nothing existing is ever overwritten.
    #[arg(long, value_name = "DIR|FILE")]
    out: PathBuf,
    /// The EIP-155 chain id transactions are signed for.
    #[arg(long)]
    chain_id: u64,
    /// Create N validators: one folder per member (genesis, node.toml, validator key), ready
    /// to copy to its host.
    #[arg(long, value_name = "N", conflicts_with = "validators_given")]
    validators: Option<usize>,
    /// A member's host (IP address), once per validator in order, or once for all of them.
    /// Default: 127.0.0.1, with consecutive ports.
    #[arg(long = "host", value_name = "IP")]
    hosts: Vec<std::net::IpAddr>,
    /// Also create N full nodes (they follow the chain without voting), in folders
    /// full-node-<j>, admitted by the genesis.
    #[arg(long, value_name = "N")]
    full_nodes: Option<usize>,
    /// A full node's host (IP address), once per full node in order, or once for all of them.
    #[arg(long = "full-node-host", value_name = "IP")]
    full_node_hosts: Vec<std::net::IpAddr>,
    /// The first p2p port on each host [default: 30300].
    #[arg(long)]
    p2p_port: Option<u16>,
    /// The first JSON-RPC port on each host [default: 8545].
    #[arg(long)]
    rpc_port: Option<u16>,
    /// Accounts to create and fund with a million ether each; their keys go to
    /// DIR/accounts.json.
    #[arg(long)]
    accounts: Option<usize>,
    /// Register the created accounts as a consortium in the genesis: one organisation, an
    /// identity per account with every built-in role, the first three governors. Every
    /// transaction is then checked against the registry.
    #[arg(long, requires = "accounts")]
    governed: bool,
    /// Blocks per epoch of a governed network: validator-set changes take effect at the next
    /// epoch.
    #[arg(long, requires = "governed", value_parser = clap::value_parser!(u64).range(1..))]
    epoch_length: Option<u64>,
    /// Seal every key file written (the members' keys, accounts.json) under the passphrase on
    /// this file's first line; each node.toml names this path as its key_passphrase_file.
    #[arg(long, value_name = "FILE", requires = "validators")]
    passphrase_file: Option<PathBuf>,
    /// A validator: its ed25519 public key (from `trellis keys new`) and p2p address.
    #[arg(
        id = "validators_given",
        long = "validator",
        value_name = "PUBLIC_KEY@HOST:PORT",
        required_unless_present = "validators"
    )]
    validator_entries: Vec<String>,
    /// An initial balance in wei (decimal or 0x-hex).
    #[arg(long = "alloc", value_name = "ADDRESS=WEI")]
    alloc: Vec<String>,
    /// The fixed base fee per gas, in wei (0: free gas).
    #[arg(long, default_value_t = 0)]
    gas_price: u64,
    /// Most gas one block may use.
    #[arg(long, default_value_t = 60_000_000)]
    block_gas_limit: u64,
    /// The genesis time in milliseconds since the Unix epoch (default: now).
    #[arg(long)]
    timestamp: Option<u64>,
}

fn main() -> Result<()> {
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
        Command::Data(command) => data::run(command),
        Command::Keyd(args) => {
            init_logging();
            trellis_keyd::cli::run(args)
        }
        Command::Init(args) => init(args),
        Command::Node { config } => run_node(&config),
        Command::VerifyProof { proof, root } => verify_proof(&proof, root.as_deref()),
        Command::VerifyHistory { history, root } => verify_history(&history, root.as_deref()),
        Command::Bench(BenchCommand::State {
            accounts,
            block_updates,
            blocks,
            cache_mib,
            dir,
            encrypted,
        }) => {
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("trellis-bench-state-{}", std::process::id()))
            });
            let config = trellis_bench::state::BenchConfig {
                accounts,
                updates_per_block: block_updates,
                blocks,
                page_cache_bytes: cache_mib << 20,
                proofs: 1_000,
            };
            trellis_bench::run::state(dir, config, encrypted).context("state benchmark")
        }
        Command::Bench(BenchCommand::Rekey {
            accounts,
            block_updates,
            cache_mib,
            dir,
        }) => {
            init_logging();
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("trellis-bench-rekey-{}", std::process::id()))
            });
            let config = trellis_bench::rekey::RekeyConfig {
                accounts,
                updates_per_block: block_updates,
                page_cache_bytes: cache_mib << 20,
                blocks_before: 20,
            };
            trellis_bench::run::rekey(dir, config).context("re-encryption benchmark")
        }
        Command::Bench(BenchCommand::Logs {
            blocks,
            block_logs,
            queries,
            dir,
        }) => {
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("trellis-bench-logs-{}", std::process::id()))
            });
            let config = trellis_bench::logs::LogBenchConfig {
                blocks,
                logs_per_block: block_logs,
                queries,
                ..Default::default()
            };
            trellis_bench::run::logs(dir, config).context("log query benchmark")
        }
        Command::Bench(BenchCommand::Load(args)) => load::run(args),
        Command::Bench(BenchCommand::Limit(args)) => limit::run(args),
        Command::Bench(BenchCommand::Hsm {
            module,
            token,
            pin_file,
            signatures,
        }) => {
            let pin = trellis_hsm::Pin::from_file(&pin_file)?;
            let report = trellis_bench::hsm::run(&module, &token, pin, signatures)?;
            print!("{report}");
            Ok(())
        }
    }
}

fn init(args: InitArgs) -> Result<()> {
    let alloc = args
        .alloc
        .iter()
        .map(|a| {
            let (address, wei) = a
                .split_once('=')
                .with_context(|| format!("--alloc {a:?}: expected ADDRESS=WEI"))?;
            let address = address
                .parse()
                .with_context(|| format!("--alloc {a:?}: {address:?} is not an address"))?;
            Ok((address, wei.to_string()))
        })
        .collect::<Result<_>>()?;
    let timestamp = args.timestamp.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_millis() as u64)
    });
    if let Some(validators) = args.validators {
        let plan = NetworkPlan {
            chain_id: args.chain_id,
            validators,
            hosts: args.hosts,
            full_nodes: args.full_nodes.unwrap_or(0),
            full_node_hosts: args.full_node_hosts,
            p2p_port: args.p2p_port.unwrap_or(30300),
            rpc_port: args.rpc_port.unwrap_or(8545),
            accounts: args.accounts.unwrap_or(0),
            alloc,
            gas_price: args.gas_price,
            block_gas_limit: args.block_gas_limit,
            timestamp,
            governed: args.governed,
            epoch_length: args.epoch_length.unwrap_or(EpochLength::DEFAULT.0.get()),
            seal: args
                .passphrase_file
                .as_deref()
                .map(|file| -> Result<members::Seal> {
                    Ok(members::Seal {
                        passphrase: trellis_crypto::Passphrase::from_file(file)?,
                        file: std::path::absolute(file)
                            .with_context(|| format!("{}: no absolute path", file.display()))?,
                    })
                })
                .transpose()?,
        };
        return init_network(&args.out, &plan);
    }
    if !args.hosts.is_empty()
        || args.full_nodes.is_some()
        || !args.full_node_hosts.is_empty()
        || args.p2p_port.is_some()
        || args.rpc_port.is_some()
        || args.accounts.is_some()
        || args.governed
    {
        bail!(
            "--host, --full-nodes, --full-node-host, --p2p-port, --rpc-port, --accounts and --governed shape a network created with --validators N; with --validator, each address is in its PUBLIC_KEY@HOST:PORT"
        );
    }
    let validators = args
        .validator_entries
        .iter()
        .map(|v| {
            let (key, addr) = v
                .rsplit_once('@')
                .with_context(|| format!("--validator {v:?}: expected PUBLIC_KEY@HOST:PORT"))?;
            let p2p = addr.parse().with_context(|| {
                format!("--validator {v:?}: {addr:?} is not an IP:PORT address")
            })?;
            Ok(ValidatorEntry {
                public_key: key.to_string(),
                p2p,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let file = GenesisFile {
        chain_id: args.chain_id,
        timestamp,
        block_gas_limit: args.block_gas_limit,
        gas_price: args.gas_price,
        validators,
        full_nodes: Vec::new(),
        organisations: Vec::new(),
        alloc,
        epoch_length: EpochLength::DEFAULT.0.get(),
    };
    let genesis = file.genesis()?;
    file.write_new(&args.out)?;
    println!(
        "genesis written to {} (chain id {}, {} validator(s)); block 0 is {}",
        args.out.display(),
        genesis.chain_id,
        genesis.validators.len(),
        genesis.initial_block().hash()
    );
    Ok(())
}

fn init_network(dir: &std::path::Path, plan: &NetworkPlan) -> Result<()> {
    let network = members::write(dir, plan)?;
    let genesis = network.genesis.genesis()?;
    println!(
        "network written to {} (chain id {}, {} validator(s)); block 0 is {}",
        dir.display(),
        genesis.chain_id,
        network.members.len(),
        genesis.initial_block().hash()
    );
    for member in &network.members {
        let role = match member.role {
            trellis_node::node_config::Role::Validator => "validator",
            trellis_node::node_config::Role::FullNode => "full node",
        };
        println!(
            "  {} ({role}): p2p {}, JSON-RPC {} (copy the folder to that host, then: trellis node --config node.toml)",
            member.folder.display(),
            member.p2p,
            member.rpc
        );
    }
    if !network.accounts.is_empty() {
        println!(
            "{} funded account(s); their keys are in {} (mode 0600)",
            network.accounts.len(),
            dir.join("accounts.json").display()
        );
    }
    Ok(())
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
    dev::run(chain, options.rpc_addr, Some(metrics_addr), move |at| {
        println!("Trellis dev chain: {validators} validator(s), data in {dir}");
        println!("Funded accounts (also in {dir}/dev-accounts.json):\n{accounts}");
        println!("{governance}");
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
