//! `trellis init`: a new network's genesis, and with `--validators` every member's keys and
//! folder.

use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use trellis_governance::EpochLength;
use trellis_node::{
    genesis_file::{GenesisFile, ValidatorEntry},
    members::{self, NetworkPlan},
};

/// Two shapes: `--validators N --out DIR` creates every member's keys and folder;
/// `--validator KEY@HOST:PORT … --out FILE` writes only a genesis for keys the members made.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
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

pub fn run(args: InitArgs) -> Result<()> {
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
