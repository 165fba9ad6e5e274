//! `trellis-keyd`: the key manager's own binary (see the library's documentation).

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf};
use trellis_keyd::KeydDir;

/// A key manager for Trellis nodes without an HSM: it keeps each node's key-encryption key and
/// wraps the node's data keys when the node asks.
#[derive(Debug, Parser)]
#[command(name = "trellis-keyd", version)]
struct Cli {
    /// The key manager's own directory (keep it on another host or disk than the nodes' data).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the directory and the key manager's identity; prints its public key (name it in
    /// each node's `[data_encryption.keyd]`).
    Init {
        /// Where it will listen.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
    },
    /// Serve a node, known by its transport key's public half: makes its key-encryption key.
    Allow {
        /// A name for the operator's records (the member).
        #[arg(long)]
        name: String,
        /// The node's public key (its validator or full-node key), 0x-prefixed hex.
        #[arg(long, value_name = "0xKEY")]
        node: String,
    },
    /// Answer the nodes it serves, until stopped.
    Run,
}

fn main() -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let dir = KeydDir::new(&cli.dir);
    match cli.command {
        Command::Init { listen } => {
            let key = dir
                .init(listen)
                .context("making the key manager's directory")?;
            println!("trellis-keyd identity {key}");
        }
        Command::Allow { name, node } => {
            let id = dir.allow(&name, &node).context("adding a node")?;
            println!("node {node} ({name}) served with key-encryption key {id}");
        }
        Command::Run => {
            dir.serve(|addr| println!("trellis-keyd listening on {addr}"))
                .context("serving")?;
        }
    }
    Ok(())
}
