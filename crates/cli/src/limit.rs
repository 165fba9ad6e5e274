//! `trellis bench limit`: the arguments, and the measurement handed to `trellis-loadgen`.

use crate::load::WorkloadArg;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use trellis_loadgen::{LimitConfig, limit};

/// Measure on one core the work each transaction needs (decode, hash, sender recovery, EVM,
/// state update, block hashing) and print the throughput ceiling it implies on this machine.
/// Run it on a release build.
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// What each transaction does.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Erc20)]
    workload: WorkloadArg,
    /// Senders, each sending in turn to the next.
    #[arg(long, default_value_t = 200)]
    senders: usize,
    /// Transactions per measured block.
    #[arg(long, default_value_t = 1_000)]
    block_transactions: usize,
    /// Blocks to measure (after one warm-up block).
    #[arg(long, default_value_t = 10)]
    blocks: usize,
    /// Also print the ceiling for this many validators sharing the machine.
    #[arg(long)]
    validators: Option<usize>,
    /// Write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A directory to create for the state (removed afterwards). Default: in the system's
    /// temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: LimitArgs) -> Result<()> {
    if args.senders < 2 || args.block_transactions == 0 || args.blocks == 0 {
        bail!("--senders must be at least 2, --block-transactions and --blocks at least 1");
    }
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("trellis-bench-limit-{}", std::process::id()))
    });
    let config = LimitConfig {
        workload: args.workload.into(),
        senders: args.senders,
        block_transactions: args.block_transactions,
        blocks: args.blocks,
    };
    eprintln!(
        "measuring {} blocks of {} transactions from {} senders in {}",
        config.blocks + 1,
        config.block_transactions,
        config.senders,
        dir.display()
    );
    let measured = limit::measure(&dir, &config).context("limit benchmark")?;
    println!("{measured}");
    if let Some(validators) = args.validators.filter(|&v| v != 1 && v != 4) {
        println!(
            "ceiling for {validators} validators: {:.0} TPS",
            measured.ceiling_tps(validators)
        );
    }
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&measured)?;
        std::fs::write(out, json + "\n")
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}
