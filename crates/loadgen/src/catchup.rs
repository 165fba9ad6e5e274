//! Validators stopped before the load (`--down K`) and started again after it: the load runs
//! with K validators missing, then each restarted one fetches and applies every block it
//! missed; how fast it does so is the catch-up rate.

use crate::{
    client::{Client, ClientError, quantity},
    node::DevNode,
};
use rustix::process::{Pid, Signal, kill_process};
use serde::Serialize;
use serde_json::json;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a restarted validator may take to reach the others.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(1_800);

/// Why stopping or restarting a validator failed.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(
        "--down {down} needs a chain of separate validator processes (--processes) with more validators than that"
    )]
    NotEnoughValidators { down: usize },
    #[error("cannot stop validator {index} (pid {pid}): {source}")]
    Stop {
        index: usize,
        pid: u32,
        source: std::io::Error,
    },
    #[error("cannot restart validator {index} from {config}: {source}")]
    Restart {
        index: usize,
        config: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "validator {index} did not catch up within {CATCH_UP_TIMEOUT:?} (height {height} of {target}); its log is {log}"
    )]
    TooSlow {
        index: usize,
        height: u64,
        target: u64,
        log: PathBuf,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// One restarted validator's catch-up.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpReport {
    pub validator: usize,
    /// From the restart until it answered JSON-RPC (opening its chain).
    pub startup_s: f64,
    /// Blocks it fetched and applied after answering, and the transactions in them.
    pub blocks: u64,
    pub transactions: u64,
    /// From answering until it held the others' height.
    pub seconds: f64,
    pub blocks_per_s: f64,
    pub tx_per_s: f64,
}

/// SIGKILLs the last `down` validators; returns their indexes.
pub fn stop(node: &DevNode, down: usize) -> Result<Vec<usize>, CatchUpError> {
    let n = node.validators.len();
    if down >= n.max(1) {
        return Err(CatchUpError::NotEnoughValidators { down });
    }
    (n - down..n)
        .map(|index| {
            let pid = node.validators[index].pid;
            let target = i32::try_from(pid).ok().and_then(Pid::from_raw);
            let result = target.map_or(Err(rustix::io::Errno::SRCH), |p| {
                kill_process(p, Signal::KILL)
            });
            result.map_err(|e| CatchUpError::Stop {
                index,
                pid,
                source: e.into(),
            })?;
            Ok(index)
        })
        .collect()
}

/// A validator run again by hand, killed when dropped.
struct Restarted {
    child: Child,
    log: PathBuf,
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn restart(exe: &Path, config: &Path, index: usize) -> Result<Restarted, CatchUpError> {
    let error = |source| CatchUpError::Restart {
        index,
        config: config.to_path_buf(),
        source,
    };
    let log = config.with_file_name("restart.log");
    let out = std::fs::File::create(&log).map_err(error)?;
    let err = out.try_clone().map_err(error)?;
    let child = Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(error)?;
    Ok(Restarted { child, log })
}

async fn height(rpc: SocketAddr) -> Result<u64, ClientError> {
    let mut client = Client::connect(rpc).await?;
    let answer = client.call("eth_blockNumber", json!([])).await?;
    Ok(quantity(&answer).unwrap_or_default())
}

/// Restarts validator `index` and times it until it holds validator 0's height.
pub async fn measure(
    exe: &Path,
    node: &DevNode,
    index: usize,
    progress: bool,
) -> Result<CatchUpReport, CatchUpError> {
    let rpc = node.validators[index].rpc;
    let began = Instant::now();
    let restarted = restart(exe, &node.validator_config(index), index)?;
    let start = loop {
        if let Ok(h) = height(rpc).await {
            break h;
        }
        if began.elapsed() > CATCH_UP_TIMEOUT {
            return Err(CatchUpError::TooSlow {
                index,
                height: 0,
                target: 0,
                log: restarted.log.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let answered = Instant::now();
    let target = height(node.rpc).await?;
    if progress {
        eprintln!(
            "validator {index} restarted (answering after {:.1} s) at height {start}; catching up to {target}",
            (answered - began).as_secs_f64()
        );
    }
    let mut last_note = Instant::now();
    let mut now_at = start;
    let mut probe = Client::connect(rpc).await?;
    while now_at < target {
        if answered.elapsed() > CATCH_UP_TIMEOUT {
            return Err(CatchUpError::TooSlow {
                index,
                height: now_at,
                target,
                log: restarted.log.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = probe.call("eth_blockNumber", json!([])).await?;
        now_at = quantity(&answer).unwrap_or(now_at);
        if progress && last_note.elapsed() >= Duration::from_secs(2) {
            last_note = Instant::now();
            eprintln!("  validator {index}: height {now_at} of {target}");
        }
    }
    let seconds = answered.elapsed().as_secs_f64();
    let mut client = Client::connect(node.rpc).await?;
    let mut transactions = 0;
    for h in start + 1..=target {
        let count = client
            .call(
                "eth_getBlockTransactionCountByNumber",
                json!([format!("{h:#x}")]),
            )
            .await?;
        transactions += quantity(&count).unwrap_or_default();
    }
    let blocks = target - start;
    Ok(CatchUpReport {
        validator: index,
        startup_s: (answered - began).as_secs_f64(),
        blocks,
        transactions,
        seconds,
        blocks_per_s: blocks as f64 / seconds.max(1e-3),
        tx_per_s: transactions as f64 / seconds.max(1e-3),
    })
}
