//! `trellis holds`: an approver's decisions on held transfers, through a node's JSON-RPC.

use crate::gov::{NodeArg, Signer};
use anyhow::{Context, Result};
use clap::Subcommand;
use trellis_client::{Decision, HoldEvent, HoldsClient};

#[derive(Debug, Subcommand)]
pub enum HoldsCommand {
    /// Release held transfer ID to its recipient (an approver of another identity).
    Approve {
        #[command(flatten)]
        signer: Signer,
        id: u64,
    },
    /// Return held transfer ID to its sender (an approver of another identity).
    Reject {
        #[command(flatten)]
        signer: Signer,
        id: u64,
    },
    /// Return held transfer ID to its sender once it expired (anyone).
    Reclaim {
        #[command(flatten)]
        signer: Signer,
        id: u64,
    },
    /// One held transfer: who sent what to whom, and where it stands.
    Show {
        #[command(flatten)]
        node: NodeArg,
        id: u64,
    },
}

pub fn run(command: HoldsCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client's runtime")?;
    runtime.block_on(run_async(command))
}

async fn run_async(command: HoldsCommand) -> Result<()> {
    let (signer, id, decision) = match command {
        HoldsCommand::Show { node, id } => {
            let node = node.open()?;
            let hold = HoldsClient::new(&node)
                .hold(id)
                .await
                .with_context(|| format!("reading held transfer {id}"))?;
            println!(
                "held transfer {}: {} — {} wei from {} to {}, held at block {}, decidable until block {}",
                hold.id, hold.status, hold.value, hold.from, hold.to, hold.created, hold.expires
            );
            return Ok(());
        }
        HoldsCommand::Approve { signer, id } => (signer, id, Decision::Approve),
        HoldsCommand::Reject { signer, id } => (signer, id, Decision::Reject),
        HoldsCommand::Reclaim { signer, id } => (signer, id, Decision::Reclaim),
    };
    let (node, key) = signer.open()?;
    let settled = HoldsClient::new(&node)
        .decide(key.as_ref(), id, decision)
        .await
        .with_context(|| format!("held transfer {id} not decided"))?;
    println!("transaction {} in block {}", settled.tx, settled.block);
    for event in settled.events {
        match event {
            HoldEvent::Released { id, approver } => {
                println!("held transfer {id} released to its recipient by {approver}");
            }
            HoldEvent::Returned { id, by } => {
                println!("held transfer {id} returned to its sender by {by}");
            }
        }
    }
    Ok(())
}
