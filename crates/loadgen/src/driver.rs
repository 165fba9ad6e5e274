//! The run: connections submit pre-signed transactions in JSON-RPC batches (open-loop at a
//! rate, or as fast as the node admits them), while a watcher follows the chain over the same
//! public API, timing each transaction to the block that holds it and probing that the node
//! keeps answering.

use crate::{
    client::{Client, ClientError, quantity},
    process::{Process, ProcessGroup},
    report::{Report, ms, quantile_ms},
    workload::{Prepared, SignedTx, Workload},
};
use futures::future::try_join_all;
use serde_json::{Value, json};
use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// How often the watcher probes the height.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// The run is abandoned when the height has not risen for this long.
const STALL_ABORT: Duration = Duration::from_secs(60);
/// How long a connection waits after the pool said it is full, unless the node says
/// (`retryAfterMs`); at most `POOL_FULL_BACKOFF_MAX` whatever it says.
const POOL_FULL_BACKOFF: Duration = Duration::from_millis(10);
const POOL_FULL_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The open-loop pacer's step.
const PACE_TICK: Duration = Duration::from_millis(2);

/// How fast to submit.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// As fast as the node admits: each connection sends its next batch when the last is
    /// answered.
    Saturate,
    /// This many transactions per second over all connections, on schedule whatever the node
    /// does (open loop).
    Rate(f64),
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub rpc: SocketAddr,
    /// The node's processes, whose CPU and memory are reported.
    pub node: ProcessGroup,
    pub workload: Workload,
    pub validators: usize,
    pub accounts: usize,
    pub connections: usize,
    /// Transactions per JSON-RPC batch.
    pub batch: usize,
    pub pace: Pace,
    /// Stop submitting after this long (then wait for what was admitted).
    pub duration: Option<Duration>,
    /// Print progress to standard error once a second.
    pub progress: bool,
    /// API tokens the connections present, taken in turn (none: the node asks for none).
    pub tokens: Vec<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "the chain stopped: no new block for {STALL_ABORT:?} at height {height}, {finalized} of {submitted} submitted transactions finalized"
    )]
    Stalled {
        height: u64,
        finalized: usize,
        submitted: usize,
    },
    #[error("block {height} holds transaction {hash} a second time")]
    Duplicate { height: u64, hash: String },
}

/// What the submitting connections and the watcher share.
struct Shared {
    start: Instant,
    /// Per transaction: microseconds after `start` at which it was last sent, plus one (0:
    /// not sent yet).
    sent_at: Vec<AtomicU64>,
    sent: AtomicUsize,
    failed: AtomicUsize,
    first_failure: Mutex<Option<String>>,
    pool_full: AtomicU64,
    /// Set when submission must end (duration reached, or the run is over).
    stop: AtomicBool,
}

impl Shared {
    fn micros(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Runs the load and measures it.
pub async fn run(config: RunConfig, prepared: Prepared) -> Result<Report, RunError> {
    let Prepared {
        queues,
        index,
        total,
    } = prepared;
    let token = |i: usize| {
        (!config.tokens.is_empty()).then(|| config.tokens[i % config.tokens.len()].as_str())
    };
    let mut watcher = Client::connect(config.rpc).await?.with_token(token(0));
    let first_height = height(&mut watcher).await?;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        sent_at: (0..total).map(|_| AtomicU64::new(0)).collect(),
        sent: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        first_failure: Mutex::new(None),
        pool_full: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let node_cpu = config.node.cpu().unwrap_or_default();
    let own_cpu = Process::SELF.cpu().unwrap_or_default();
    let connections = queues.len().max(1);
    let mut workers = Vec::new();
    for (i, queue) in queues.into_iter().enumerate() {
        let client = Client::connect(config.rpc).await?.with_token(token(i));
        let pace = match config.pace {
            Pace::Saturate => None,
            Pace::Rate(rate) => Some(rate / connections as f64),
        };
        let worker = Worker {
            client,
            queue: queue.into(),
            index: &index,
            shared: &shared,
            batch: config.batch.max(1),
            pace,
            retry_after: POOL_FULL_BACKOFF,
        };
        workers.push(worker.run());
    }
    let watch = Watch {
        client: watcher,
        index: &index,
        shared: &shared,
        config: &config,
        total,
        height: first_height,
    };
    let (watched, submitted) = tokio::join!(watch.run(), try_join_all(workers));
    submitted?;
    let watched = watched?;
    let node_cpu = config
        .node
        .cpu()
        .unwrap_or_default()
        .saturating_sub(node_cpu);
    let own_cpu = Process::SELF
        .cpu()
        .unwrap_or_default()
        .saturating_sub(own_cpu);
    Ok(report(&config, &shared, watched, total, node_cpu, own_cpu))
}

/// One connection's submissions.
struct Worker<'a> {
    client: Client,
    queue: VecDeque<SignedTx>,
    index: &'a std::collections::HashMap<alloy_primitives::B256, usize>,
    shared: &'a Shared,
    batch: usize,
    /// Transactions per second for this connection; `None` saturates.
    pace: Option<f64>,
    /// How long the node asked to wait before sending refused transactions again.
    retry_after: Duration,
}

impl Worker<'_> {
    async fn run(mut self) -> Result<(), RunError> {
        let mut paced = 0usize;
        while !self.queue.is_empty() && !self.shared.stop.load(Ordering::Relaxed) {
            let take = match self.pace {
                None => self.batch,
                Some(rate) => {
                    let due = (self.shared.start.elapsed().as_secs_f64() * rate) as usize;
                    if due <= paced {
                        tokio::time::sleep(PACE_TICK).await;
                        continue;
                    }
                    (due - paced).min(self.batch)
                }
            };
            let batch: Vec<SignedTx> = self.queue.drain(..take.min(self.queue.len())).collect();
            let retry = self.send(&batch).await?;
            paced += batch.len() - retry.len();
            if !retry.is_empty() {
                for tx in retry.into_iter().rev() {
                    self.queue.push_front(tx);
                }
                tokio::time::sleep(self.retry_after).await;
            }
        }
        Ok(())
    }

    /// Sends one batch; returns the transactions to send again (the pool was full).
    async fn send(&mut self, batch: &[SignedTx]) -> Result<Vec<SignedTx>, RunError> {
        let mut body = String::with_capacity(batch.len() * 330);
        body.push('[');
        for (id, tx) in batch.iter().enumerate() {
            if id > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_sendRawTransaction","params":["{}"]}}"#,
                tx.hex
            ));
        }
        body.push(']');
        let now = self.shared.micros() + 1;
        for tx in batch {
            self.shared.sent_at[self.index[&tx.hash]].store(now, Ordering::Relaxed);
        }
        let answers = self.client.post(body.as_bytes()).await?;
        let mut retry = Vec::new();
        for answer in answers.as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(id) = answer["id"].as_u64().map(|id| id as usize) else {
                continue;
            };
            let Some(tx) = batch.get(id) else { continue };
            match answer.get("error") {
                None => {
                    self.shared.sent.fetch_add(1, Ordering::Relaxed);
                }
                Some(error) => self.refused(tx, error, &mut retry),
            }
        }
        Ok(retry)
    }

    fn refused(&mut self, tx: &SignedTx, error: &Value, retry: &mut Vec<SignedTx>) {
        let message = error["message"].as_str().unwrap_or_default();
        // -32005: the node sheds load (its pool is full) and asks for the same request later.
        if error["code"].as_i64() == Some(-32005) {
            self.retry_after = error["data"]["retryAfterMs"]
                .as_u64()
                .map_or(POOL_FULL_BACKOFF, Duration::from_millis)
                .min(POOL_FULL_BACKOFF_MAX);
            self.shared.pool_full.fetch_add(1, Ordering::Relaxed);
            retry.push(tx.clone());
        } else if message == "already known" {
            // Sent before, and admitted then.
            self.shared.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.shared.first_failure.lock().expect("not poisoned");
            first.get_or_insert_with(|| format!("{}: {error}", tx.hash));
        }
    }
}

/// What the watcher saw.
struct Watched {
    latencies: Vec<Duration>,
    blocks: u64,
    block_sizes: Vec<usize>,
    /// When the last transaction of the run was seen finalized.
    last_seen: Duration,
    probe_max: Duration,
    stall_max: Duration,
    /// The height the chain stood at during `stall_max`.
    stall_height: u64,
}

/// Follows the chain block by block until every submitted transaction is in one.
struct Watch<'a> {
    client: Client,
    index: &'a std::collections::HashMap<alloy_primitives::B256, usize>,
    shared: &'a Shared,
    config: &'a RunConfig,
    total: usize,
    height: u64,
}

impl Watch<'_> {
    async fn run(mut self) -> Result<Watched, RunError> {
        let mut seen = vec![false; self.total];
        let mut watched = Watched {
            latencies: Vec::with_capacity(self.total),
            blocks: 0,
            block_sizes: Vec::new(),
            last_seen: Duration::ZERO,
            probe_max: Duration::ZERO,
            stall_max: Duration::ZERO,
            stall_height: 0,
        };
        let mut last_rise = Instant::now();
        let mut last_print = Instant::now();
        let mut printed = 0;
        loop {
            let probe = Instant::now();
            let now_height = height(&mut self.client).await?;
            watched.probe_max = watched.probe_max.max(probe.elapsed());
            if now_height > self.height {
                if last_rise.elapsed() > watched.stall_max {
                    watched.stall_max = last_rise.elapsed();
                    watched.stall_height = self.height;
                }
                last_rise = Instant::now();
                for h in self.height + 1..=now_height {
                    self.block(h, &mut seen, &mut watched).await?;
                }
                self.height = now_height;
            } else if last_rise.elapsed() > STALL_ABORT {
                self.shared.stop.store(true, Ordering::Relaxed);
                return Err(RunError::Stalled {
                    height: self.height,
                    finalized: watched.latencies.len(),
                    submitted: self.shared.sent.load(Ordering::Relaxed),
                });
            }
            if let Some(duration) = self.config.duration
                && self.shared.start.elapsed() >= duration
            {
                self.shared.stop.store(true, Ordering::Relaxed);
            }
            if self.config.progress && last_print.elapsed() >= Duration::from_secs(1) {
                self.progress(&watched, printed, last_print.elapsed());
                printed = watched.latencies.len();
                last_print = Instant::now();
            }
            if self.finished(&watched) {
                break;
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        if self.config.progress {
            eprintln!();
        }
        Ok(watched)
    }

    /// Every transaction is final, or submission stopped and all it admitted is final.
    fn finished(&self, watched: &Watched) -> bool {
        let finalized = watched.latencies.len();
        let admitted = self.shared.sent.load(Ordering::Relaxed);
        let failed = self.shared.failed.load(Ordering::Relaxed);
        finalized + failed >= self.total
            || (self.shared.stop.load(Ordering::Relaxed) && finalized >= admitted)
    }

    /// Times the run's transactions in block `h`.
    async fn block(
        &mut self,
        h: u64,
        seen: &mut [bool],
        watched: &mut Watched,
    ) -> Result<(), RunError> {
        let block = self
            .client
            .call("eth_getBlockByNumber", json!([format!("{h:#x}"), false]))
            .await?;
        let now = self.shared.start.elapsed();
        let hashes = block["transactions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        watched.blocks += 1;
        watched.block_sizes.push(hashes.len());
        for hash in hashes {
            let Some(i) = hash
                .as_str()
                .and_then(|h| h.parse::<alloy_primitives::B256>().ok())
                .and_then(|h| self.index.get(&h))
            else {
                continue;
            };
            if std::mem::replace(&mut seen[*i], true) {
                return Err(RunError::Duplicate {
                    height: h,
                    hash: hash.to_string(),
                });
            }
            let sent = Duration::from_micros(
                self.shared.sent_at[*i]
                    .load(Ordering::Relaxed)
                    .saturating_sub(1),
            );
            watched.latencies.push(now.saturating_sub(sent));
            watched.last_seen = now;
        }
        Ok(())
    }

    fn progress(&self, watched: &Watched, before: usize, over: Duration) {
        let done = watched.latencies.len();
        let width = 30;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        let rate = (done - before) as f64 / over.as_secs_f64();
        eprint!(
            "\r[{}{}] {done}/{} finalized, {rate:.0} TPS now, height {}, {} pool-full retries   ",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total,
            self.height,
            self.shared.pool_full.load(Ordering::Relaxed)
        );
    }
}

async fn height(client: &mut Client) -> Result<u64, ClientError> {
    let height = client.call("eth_blockNumber", json!([])).await?;
    Ok(quantity(&height).unwrap_or_default())
}

fn report(
    config: &RunConfig,
    shared: &Shared,
    mut watched: Watched,
    total: usize,
    node_cpu: Duration,
    own_cpu: Duration,
) -> Report {
    watched.latencies.sort();
    let finalized = watched.latencies.len();
    let seconds = watched.last_seen.as_secs_f64();
    let per_tx = |cpu: Duration| match finalized {
        0 => 0.0,
        n => ms(cpu) / n as f64,
    };
    let rate = |count: f64| if seconds > 0.0 { count / seconds } else { 0.0 };
    let sizes = &watched.block_sizes;
    Report {
        workload: config.workload,
        validators: config.validators,
        accounts: config.accounts,
        offered_tps: match config.pace {
            Pace::Saturate => None,
            Pace::Rate(rate) => Some(rate),
        },
        transactions: total,
        submitted: shared.sent.load(Ordering::Relaxed),
        finalized,
        failed: shared.failed.load(Ordering::Relaxed),
        first_failure: shared.first_failure.lock().expect("not poisoned").clone(),
        pool_full_retries: shared.pool_full.load(Ordering::Relaxed),
        seconds,
        tps: rate(finalized as f64),
        latency_p50_ms: quantile_ms(&watched.latencies, 0.50),
        latency_p95_ms: quantile_ms(&watched.latencies, 0.95),
        latency_p99_ms: quantile_ms(&watched.latencies, 0.99),
        latency_max_ms: quantile_ms(&watched.latencies, 1.0),
        blocks: watched.blocks,
        blocks_per_s: rate(watched.blocks as f64),
        tx_per_block_mean: match sizes.len() {
            0 => 0.0,
            n => sizes.iter().sum::<usize>() as f64 / n as f64,
        },
        tx_per_block_max: sizes.iter().copied().max().unwrap_or(0),
        node_cpu_s: node_cpu.as_secs_f64(),
        cpu_ms_per_tx: per_tx(node_cpu),
        cpu_us_per_tx_per_validator: per_tx(node_cpu) * 1_000.0 / config.validators.max(1) as f64,
        peak_rss_mib: config.node.peak_rss().unwrap_or_default() as f64 / f64::from(1 << 20),
        generator_cpu_s: own_cpu.as_secs_f64(),
        generator_cpu_ms_per_tx: per_tx(own_cpu),
        probe_max_ms: ms(watched.probe_max),
        stall_max_ms: ms(watched.stall_max),
        stall_height: watched.stall_height,
        necessary_us_per_tx: None,
        ceiling_tps: None,
        percent_of_ceiling: None,
        slow_readers: None,
        processes: false,
        api_tokens: false,
        validators_down: 0,
        catch_up: Vec::new(),
    }
}
