//! `trellis tx send`: a transaction signed by a key file or a key on an HSM token.

use crate::gov::Signer;
use alloy_primitives::{Address, Bytes, U256};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Sign a transaction, send it and wait for its receipt.
    Send {
        #[command(flatten)]
        signer: Signer,
        /// The recipient (an account or a contract).
        #[arg(long, value_name = "ADDRESS")]
        to: Address,
        /// Wei to transfer.
        #[arg(long, value_name = "WEI", default_value = "0")]
        value: U256,
        /// Call data, as hex.
        #[arg(long, value_name = "HEX", default_value = "0x")]
        data: Bytes,
        /// How long to wait for the receipt.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        wait: u64,
    },
}

pub fn run(command: TxCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client's runtime")?;
    runtime.block_on(run_async(command))
}

async fn run_async(command: TxCommand) -> Result<()> {
    let TxCommand::Send {
        signer,
        to,
        value,
        data,
        wait,
    } = command;
    let (node, key) = signer.open()?;
    let sent = node
        .send_value(key.as_ref(), to, value, data, Duration::from_secs(wait))
        .await
        .context("sending the transaction")?;
    let receipt = &sent.receipt;
    println!(
        "transaction {} from {} in block {} (gas used {})",
        receipt.transaction_hash,
        key.address(),
        receipt.block_number.unwrap_or_default(),
        receipt.gas_used
    );
    Ok(())
}
