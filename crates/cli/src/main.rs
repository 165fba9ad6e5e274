//! `trellis`: the command-line entry point of a Trellis node and its tools.
//!
//! This binary only parses arguments and wires library crates together; every rule it relies on
//! lives in a library crate where it can be tested on its own.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use trellis_crypto::{KeyBundle, write_secret_file};

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
    }
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
