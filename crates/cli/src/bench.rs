//! `trellis bench`: the project's benchmarks, each printing its figures.

use anyhow::{Context as _, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
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
    Load(crate::load::LoadArgs),
    /// The work each transaction needs on one core, and the throughput ceiling it implies on
    /// this machine. Run it on a release build.
    Limit(crate::limit::LimitArgs),
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

/// A directory for one run in the system's temporary directory, unless `dir` names one.
fn run_dir(dir: Option<PathBuf>, bench: &str) -> PathBuf {
    dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("trellis-bench-{bench}-{}", std::process::id()))
    })
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::State {
            accounts,
            block_updates,
            blocks,
            cache_mib,
            dir,
            encrypted,
        } => {
            let dir = run_dir(dir, "state");
            let config = trellis_bench::state::BenchConfig {
                accounts,
                updates_per_block: block_updates,
                blocks,
                page_cache_bytes: cache_mib << 20,
                proofs: 1_000,
            };
            trellis_bench::run::state(dir, config, encrypted).context("state benchmark")
        }
        BenchCommand::Rekey {
            accounts,
            block_updates,
            cache_mib,
            dir,
        } => {
            crate::init_logging();
            let dir = run_dir(dir, "rekey");
            let config = trellis_bench::rekey::RekeyConfig {
                accounts,
                updates_per_block: block_updates,
                page_cache_bytes: cache_mib << 20,
                blocks_before: 20,
            };
            trellis_bench::run::rekey(dir, config).context("re-encryption benchmark")
        }
        BenchCommand::Logs {
            blocks,
            block_logs,
            queries,
            dir,
        } => {
            let dir = run_dir(dir, "logs");
            let config = trellis_bench::logs::LogBenchConfig {
                blocks,
                logs_per_block: block_logs,
                queries,
                ..Default::default()
            };
            trellis_bench::run::logs(dir, config).context("log query benchmark")
        }
        BenchCommand::Load(args) => crate::load::run(args),
        BenchCommand::Limit(args) => crate::limit::run(args),
        BenchCommand::Hsm {
            module,
            token,
            pin_file,
            signatures,
        } => {
            let pin = trellis_hsm::Pin::from_file(&pin_file)?;
            let report = trellis_bench::hsm::run(&module, &token, pin, signatures)?;
            print!("{report}");
            Ok(())
        }
    }
}
