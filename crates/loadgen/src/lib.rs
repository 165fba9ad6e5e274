//! Load for a Trellis node through its public JSON-RPC, as members' applications would send it:
//! `trellis bench load`.
//!
//! The generator is built to cost the cores it shares with the node as little as possible:
//! every transaction is signed before the run ([`workload`]), sent in JSON-RPC batches over a
//! few kept-alive HTTP connections ([`client`]), on one thread. The node runs as a process of
//! its own ([`node`]), so its CPU and peak memory are read apart from the generator's
//! ([`process`]). [`driver`] submits (open-loop at a rate, or saturating with backpressure
//! honoured: a "txpool is full" refusal is sent again later) and watches the chain: each
//! transaction is timed from its submission to the block that holds it being visible, and
//! `eth_blockNumber` is probed every 10 ms, so a node that stops answering or stops making
//! blocks fails the run instead of hiding in an average.
//!
//! [`limit`] (`trellis bench limit`) measures the work per transaction no validator can avoid
//! and the throughput ceiling it implies; a load run reports its TPS against that ceiling.

pub mod catchup;
pub mod client;
pub mod driver;
pub mod limit;
pub mod node;
pub mod process;
pub mod report;
pub mod subscriber;
pub mod workload;

pub use driver::{Pace, RunConfig, RunError};
pub use limit::{Limit, LimitConfig, LimitError};
pub use node::{ChainFlags, DevNode, NodeError};
pub use report::Report;
pub use subscriber::{SlowReaders, SlowReadersOutcome};
pub use workload::{Workload, WorkloadError};

use client::Client;
use std::{path::PathBuf, time::Duration};

/// A whole `trellis bench load` run: a fresh dev chain, the workload, the load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The `trellis` executable that runs the node.
    pub exe: PathBuf,
    pub validators: usize,
    /// Funded accounts, all of them senders.
    pub accounts: usize,
    pub workload: Workload,
    /// Transactions to sign (rounded down to whole rounds over the senders).
    pub transactions: usize,
    pub connections: usize,
    pub batch: usize,
    pub pace: Pace,
    pub duration: Option<Duration>,
    /// WebSocket connections that subscribe to everything and read it slowly during the run.
    pub slow_readers: usize,
    /// One process per validator (`trellis dev --processes`).
    pub processes: bool,
    /// Validators stopped before the load and restarted after it, to time their catch-up
    /// (needs `processes`).
    pub down: usize,
    /// The chain checks every transaction against a registry (`trellis dev --governed`).
    pub governed: bool,
    /// Blocks per epoch of a governed chain (`trellis dev --epoch-length`); `None`: the
    /// default.
    pub epoch_length: Option<u64>,
    /// Validators sign in an HSM: keys generated on a SoftHSM2 token of the run's own.
    pub softhsm: bool,
    /// The chain stores its data in clear instead of encrypted (a dev chain's default).
    pub plaintext: bool,
    /// The risk rules the node watches (`trellis dev --risk-rules`), if any.
    pub risk_rules: Option<PathBuf>,
    /// The node asks callers for API tokens (`trellis dev --api-tokens`; needs `governed`):
    /// each connection presents the token of one of the senders.
    pub api_tokens: bool,
    /// Where the chain lives during the run; must not exist.
    pub dir: PathBuf,
    /// Keep the directory (and the node's log) afterwards.
    pub keep: bool,
    pub progress: bool,
}

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("cannot start the generator's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("measuring the necessary work: {0}")]
    Limit(#[from] LimitError),
    #[error("the node died during the run; its log is {log}")]
    NodeDied { log: PathBuf },
    #[error(transparent)]
    CatchUp(#[from] catchup::CatchUpError),
}

/// Starts the node, prepares the workload and runs the load; the node is stopped afterwards.
pub fn run(options: &LoadOptions) -> Result<Report, LoadError> {
    // One thread: the generator must not take the cores it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    if options.progress {
        eprintln!("measuring the necessary work per transaction (as trellis bench limit does)");
    }
    // Before the node starts, so nothing else competes for the cores.
    let limit = measure_limit(options)?;
    runtime.block_on(run_async(options, limit))
}

async fn run_async(options: &LoadOptions, limit: Limit) -> Result<Report, LoadError> {
    let say = |text: &str| {
        if options.progress {
            eprintln!("{text}");
        }
    };

    say(&format!(
        "starting trellis dev with {} validator(s) and {} accounts in {}, data {}",
        options.validators,
        options.accounts,
        options.dir.display(),
        if options.plaintext {
            "in clear"
        } else {
            "encrypted"
        }
    ));
    let mut node = DevNode::start(
        &options.exe,
        options.validators,
        options.accounts,
        &options.dir,
        options.keep,
        options.processes,
        ChainFlags {
            governed: options.governed,
            epoch_length: options.epoch_length,
            softhsm: options.softhsm,
            plaintext: options.plaintext,
            risk_rules: options.risk_rules.clone(),
            api_tokens: options.api_tokens,
        },
    )
    .await?;
    let stopped = if options.down > 0 {
        let stopped = catchup::stop(&node, options.down)?;
        say(&format!(
            "stopped validator(s) {stopped:?} (SIGKILL) for the run"
        ));
        stopped
    } else {
        Vec::new()
    };
    let keys = node.keys()?;
    let per_sender = (options.transactions / keys.len().max(1)).max(1);
    say(&format!(
        "signing {} {:?} transactions ({per_sender} per sender)",
        per_sender * keys.len(),
        options.workload
    ));
    let tokens = if options.api_tokens {
        let mut client = Client::connect(node.rpc).await?;
        let chain_id = client::quantity(&client.call("eth_chainId", serde_json::json!([])).await?)
            .unwrap_or_default();
        say(&format!(
            "signing an API token for each of {} senders",
            keys.len()
        ));
        api_tokens(&keys, chain_id)
    } else {
        Vec::new()
    };
    let mut client = Client::connect(node.rpc)
        .await?
        .with_token(tokens.first().map(String::as_str));
    let prepared = workload::prepare(
        &mut client,
        &keys,
        options.workload,
        per_sender,
        options.connections,
    )
    .await?;
    let slow_readers = if options.slow_readers > 0 {
        say(&format!(
            "connecting {} slow WebSocket readers (new heads, logs, pending transactions)",
            options.slow_readers
        ));
        Some(SlowReaders::start(node.rpc, options.slow_readers).await?)
    } else {
        None
    };
    say("submitting");
    let config = RunConfig {
        rpc: node.rpc,
        node: node.processes(),
        workload: options.workload,
        validators: options.validators,
        accounts: keys.len(),
        connections: options.connections,
        batch: options.batch,
        pace: options.pace,
        duration: options.duration,
        progress: options.progress,
        tokens,
    };
    let outcome = driver::run(config, prepared).await;
    if outcome.is_err() || !node.is_running() {
        // Left for inspection: the error names the log.
        node.keep_files();
        eprintln!(
            "the run failed: the node's log is {}",
            node.dir.join("node.log").display()
        );
    }
    if !node.is_running() {
        return Err(LoadError::NodeDied {
            log: node.dir.join("node.log"),
        });
    }
    let mut report = outcome?;
    report.against(&limit);
    report.processes = options.processes;
    report.api_tokens = options.api_tokens;
    report.validators_down = stopped.len();
    for index in stopped {
        report
            .catch_up
            .push(catchup::measure(&options.exe, &node, index, options.progress).await?);
    }
    if let Some(readers) = slow_readers {
        report.slow_readers = Some(readers.finish().await?);
    }
    Ok(report)
}

/// An API token of each of `keys` for chain `chain_id`, valid for a day.
fn api_tokens(keys: &[trellis_crypto::AccountKey], chain_id: u64) -> Vec<String> {
    let expires = trellis_access::UnixTime(trellis_access::UnixTime::now().0 + 86_400);
    keys.iter()
        .map(|key| {
            let claims = trellis_access::TokenClaims {
                chain_id,
                account: key.address(),
                expires,
            };
            claims.encode(&key.sign_hash(claims.digest()))
        })
        .collect()
}

/// The necessary work of this run's workload, measured in a directory beside the chain's.
fn measure_limit(options: &LoadOptions) -> Result<Limit, LoadError> {
    let mut dir = options.dir.clone().into_os_string();
    dir.push("-limit");
    let config = LimitConfig {
        workload: options.workload,
        senders: options.accounts.max(2),
        blocks: 3,
        ..LimitConfig::default()
    };
    Ok(limit::measure(std::path::Path::new(&dir), &config)?)
}
