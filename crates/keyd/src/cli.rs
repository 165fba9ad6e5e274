//! The key manager's commands, shared by its own binary (`trellis-keyd`) and `trellis keyd`.

use crate::KeydDir;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use std::{net::SocketAddr, path::PathBuf};

/// A key manager for Trellis nodes without an HSM: it keeps each node's key-encryption key and
/// wraps the node's data keys when the node asks.
#[derive(Debug, Args)]
pub struct KeydArgs {
    /// The key manager's own directory (keep it on another host or disk than the nodes' data).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: KeydCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeydCommand {
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

/// Runs one command.
pub fn run(args: KeydArgs) -> Result<()> {
    let dir = KeydDir::new(&args.dir);
    match args.command {
        KeydCommand::Init { listen } => {
            let key = dir
                .init(listen)
                .context("making the key manager's directory")?;
            println!("trellis-keyd identity {key}");
        }
        KeydCommand::Allow { name, node } => {
            let id = dir.allow(&name, &node).context("adding a node")?;
            println!("node {node} ({name}) served with key-encryption key {id}");
        }
        KeydCommand::Run => {
            dir.serve(|addr| println!("trellis-keyd listening on {addr}"))
                .context("serving")?;
        }
    }
    Ok(())
}
