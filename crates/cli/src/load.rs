//! `trellis bench load`: the arguments, and the run handed to `trellis-loadgen`.

use anyhow::{Context, Result, bail};
use std::{path::PathBuf, time::Duration};
use trellis_loadgen::{LoadOptions, Pace, Workload};

/// Load a fresh dev chain over JSON-RPC with pre-signed transactions and report throughput,
/// latency, the node's CPU and memory, and whether it kept answering. Run it on a release
/// build.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Validators of the dev chain (all in one node process unless --processes).
    #[arg(long, default_value_t = 1)]
    validators: usize,
    /// Run each validator as a process of its own (`trellis dev --processes`); the figures add
    /// up their CPU and memory.
    #[arg(long)]
    processes: bool,
    /// Stop (SIGKILL) this many validators before the load and restart them after it, timing
    /// how fast each catches up. Needs --processes.
    #[arg(long, value_name = "K", default_value_t = 0, requires = "processes")]
    down: usize,
    /// What each transaction does.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Erc20)]
    workload: WorkloadArg,
    /// Funded accounts, every one of them a sender.
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// Transactions to sign and submit.
    #[arg(long, default_value_t = 40_000)]
    transactions: usize,
    /// Submit at this many transactions per second (open loop).
    #[arg(long, value_name = "TPS", conflicts_with = "saturate")]
    rate: Option<f64>,
    /// Submit as fast as the node admits (the default without --rate).
    #[arg(long)]
    saturate: bool,
    /// Stop submitting after this many seconds (then wait for what was admitted).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// HTTP connections that submit.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Transactions per JSON-RPC batch.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// WebSocket connections that subscribe to new heads, logs and pending transactions and
    /// read what they are sent slowly (40 KiB/s each), as lagging dashboards would.
    #[arg(long, value_name = "N", default_value_t = 0)]
    slow_readers: usize,
    /// Write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Fail (exit 1) if an eth_blockNumber probe took longer than this.
    #[arg(long, value_name = "MS")]
    max_probe_ms: Option<f64>,
    /// Fail (exit 1) if the height did not rise for longer than this.
    #[arg(long, value_name = "MS")]
    max_stall_ms: Option<f64>,
    /// Where the chain lives during the run (created; removed afterwards unless --keep).
    /// Default: in the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the chain's directory and the node's log.
    #[arg(long)]
    keep: bool,
    /// Register every account in a consortium (`trellis dev --governed`), so admission and
    /// execution check the rules for every transaction.
    #[arg(long)]
    governed: bool,
    /// Blocks per epoch of the governed chain (validator-set changes wait for the next one;
    /// each boundary starts a new consensus engine).
    #[arg(long, requires = "governed", value_parser = clap::value_parser!(u64).range(2..))]
    epoch_length: Option<u64>,
    /// Validators sign in an HSM: their keys are generated on a SoftHSM2 token made for the
    /// run (one process only).
    #[arg(long, conflicts_with = "processes")]
    softhsm: bool,
    /// Store the chain's data in clear; by default it is encrypted, as a dev chain's is (run
    /// both to see what encryption costs).
    #[arg(long)]
    plaintext: bool,
    /// The node watches these risk rules (`trellis dev --risk-rules`): run with and without to
    /// see what risk control costs.
    #[arg(long, value_name = "FILE")]
    risk_rules: Option<std::path::PathBuf>,
    /// The node asks callers for API tokens (`trellis dev --api-tokens`) and each connection
    /// presents a sender's: run with and without to see what access control costs.
    #[arg(long, requires = "governed", conflicts_with_all = ["processes", "slow_readers", "down"])]
    api_tokens: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum WorkloadArg {
    Transfer,
    Erc20,
}

impl From<WorkloadArg> for Workload {
    fn from(arg: WorkloadArg) -> Self {
        match arg {
            WorkloadArg::Transfer => Workload::Transfer,
            WorkloadArg::Erc20 => Workload::Erc20,
        }
    }
}

pub fn run(args: LoadArgs) -> Result<()> {
    if args.validators == 0 || args.accounts < 2 || args.transactions == 0 {
        bail!("--validators must be at least 1, --accounts at least 2, --transactions at least 1");
    }
    let pace = match args.rate {
        Some(rate) if rate > 0.0 && rate.is_finite() => Pace::Rate(rate),
        Some(rate) => bail!("--rate {rate}: give a positive number of transactions per second"),
        None => Pace::Saturate,
    };
    let duration = match args.duration {
        Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        Some(s) => bail!("--duration {s}: give a positive number of seconds"),
        None => None,
    };
    let options = LoadOptions {
        exe: std::env::current_exe().context("cannot find the trellis executable")?,
        validators: args.validators,
        accounts: args.accounts,
        workload: args.workload.into(),
        transactions: args.transactions,
        connections: args.connections.max(1),
        batch: args.batch.clamp(1, 1_000),
        pace,
        duration,
        slow_readers: args.slow_readers,
        processes: args.processes,
        down: args.down,
        governed: args.governed,
        epoch_length: args.epoch_length,
        softhsm: args.softhsm,
        plaintext: args.plaintext,
        api_tokens: args.api_tokens,
        risk_rules: args
            .risk_rules
            .map(std::path::absolute)
            .transpose()
            .context("--risk-rules")?,
        dir: args.dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("trellis-bench-load-{}", std::process::id()))
        }),
        keep: args.keep,
        progress: true,
    };
    let report = trellis_loadgen::run(&options).context("load benchmark")?;
    println!("{report}");
    if let Some(out) = &args.out {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(out, json + "\n")
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    let mut broken = Vec::new();
    if report.failed > 0 {
        broken.push(format!(
            "{} transactions were refused: {}",
            report.failed,
            report.first_failure.as_deref().unwrap_or("?")
        ));
    }
    if report.finalized < report.submitted {
        broken.push(format!(
            "only {} of {} admitted transactions were finalized",
            report.finalized, report.submitted
        ));
    }
    if let Some(limit) = args.max_probe_ms.filter(|&l| report.probe_max_ms > l) {
        broken.push(format!(
            "an eth_blockNumber probe took {:.0} ms (limit {limit} ms)",
            report.probe_max_ms
        ));
    }
    if let Some(limit) = args.max_stall_ms.filter(|&l| report.stall_max_ms > l) {
        broken.push(format!(
            "the height did not rise for {:.0} ms after block {} (limit {limit} ms)",
            report.stall_max_ms, report.stall_height
        ));
    }
    if !broken.is_empty() {
        bail!("the node did not hold up under load: {}", broken.join("; "));
    }
    Ok(())
}
