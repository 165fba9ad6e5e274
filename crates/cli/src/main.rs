//! `trellis`: the command-line entry point of a Trellis node and its tools.
//!
//! This binary only parses arguments and wires library crates together; every rule it relies on
//! lives in a library crate where it can be tested on its own.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf};
use trellis_crypto::{KeyBundle, write_secret_file};
use trellis_node::dev::{self, DevOptions};

/// Trellis: a permissioned BFT blockchain that runs the EVM.
#[derive(Debug, Parser)]
#[command(name = "trellis", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create keys for accounts and validators.
    #[command(subcommand)]
    Keys(KeysCommand),
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
        /// Where the JSON-RPC server listens.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8545")]
        rpc_addr: SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new account key (secp256k1) and validator key (ed25519), printed as JSON.
    New {
        /// Also write the keys to this file (created with mode 0600; never overwritten).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Keys(KeysCommand::New { out }) => keys_new(out),
        Command::Dev {
            validators,
            accounts,
            data_dir,
            rpc_addr,
        } => run_dev(DevOptions {
            data_dir: data_dir.unwrap_or_else(default_dev_dir),
            validators,
            accounts,
            rpc_addr,
        }),
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

fn run_dev(options: DevOptions) -> Result<()> {
    init_logging();
    let chain = dev::prepare(&options).context("preparing the dev chain")?;
    let accounts = serde_json::to_string_pretty(&chain.accounts)?;
    let dir = options.data_dir.display().to_string();
    let validators = options.validators;
    dev::run(chain, options.rpc_addr, move |rpc| {
        println!("Trellis dev chain: {validators} validator(s), data in {dir}");
        println!("Funded accounts (also in {dir}/dev-accounts.json):\n{accounts}");
        println!("JSON-RPC listening on http://{rpc}");
    })
    .context("running the dev chain")
}

fn keys_new(out: Option<PathBuf>) -> Result<()> {
    let bundle = KeyBundle::generate().context("generating keys")?;
    let json = bundle.to_json();
    if let Some(path) = out {
        write_secret_file(&path, &format!("{json}\n"))?;
        eprintln!("keys written to {} (mode 0600)", path.display());
    }
    println!("{json}");
    Ok(())
}
