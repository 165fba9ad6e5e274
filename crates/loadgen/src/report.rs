//! What a run measured, printed for people and written as JSON for tools.

use crate::{catchup::CatchUpReport, subscriber::SlowReadersOutcome, workload::Workload};
use serde::Serialize;
use std::{fmt, time::Duration};

/// The figures of one run. Latency is from submission to the block holding the transaction
/// being visible over JSON-RPC (its receipt readable).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub validators: usize,
    pub accounts: usize,
    /// `null` when saturating.
    pub offered_tps: Option<f64>,
    /// Transactions signed for the run.
    pub transactions: usize,
    /// Transactions the node admitted (fewer than signed when the run was cut by a duration).
    pub submitted: usize,
    pub finalized: usize,
    /// Transactions the node refused for good (each is a failure of the run).
    pub failed: usize,
    /// The first such refusal, as the node worded it.
    pub first_failure: Option<String>,
    /// Submissions refused with "txpool is full" and sent again later (backpressure).
    pub pool_full_retries: u64,
    /// From the first submission to the last transaction finalized.
    pub seconds: f64,
    pub tps: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub blocks: u64,
    pub blocks_per_s: f64,
    pub tx_per_block_mean: f64,
    pub tx_per_block_max: usize,
    /// The node process's CPU (all validators, RPC and storage threads) over the run.
    pub node_cpu_s: f64,
    /// Node CPU milliseconds per transaction (equally: CPU seconds per 1,000 transactions).
    pub cpu_ms_per_tx: f64,
    /// Node CPU per transaction per validator, in microseconds.
    pub cpu_us_per_tx_per_validator: f64,
    pub peak_rss_mib: f64,
    /// This generator's own CPU over the run (submission and watching).
    pub generator_cpu_s: f64,
    pub generator_cpu_ms_per_tx: f64,
    /// Slowest `eth_blockNumber` answer during the run (probed every 10 ms).
    pub probe_max_ms: f64,
    /// Longest time the height did not rise during the run.
    pub stall_max_ms: f64,
    /// The height the chain stood at during that longest pause (to find it in the node's log).
    pub stall_height: u64,
    /// The necessary work per transaction per validator measured before the run
    /// (`trellis bench limit`), in microseconds of CPU.
    pub necessary_us_per_tx: Option<f64>,
    /// The TPS that work allows these validators on this machine's cores.
    pub ceiling_tps: Option<f64>,
    /// `tps` as a percentage of `ceiling_tps`.
    pub percent_of_ceiling: Option<f64>,
    /// WebSocket subscribers that read slowly during the run, if there were any.
    pub slow_readers: Option<SlowReadersOutcome>,
    /// Whether each validator ran as a process of its own.
    pub processes: bool,
    /// Whether the node asked callers for API tokens.
    pub api_tokens: bool,
    /// Validators stopped (SIGKILL) for the whole run.
    pub validators_down: usize,
    /// Each of them restarted after the run, fetching what it missed.
    pub catch_up: Vec<CatchUpReport>,
}

impl Report {
    /// Sets the ceiling figures from a measurement of the necessary work.
    pub fn against(&mut self, limit: &crate::Limit) {
        let ceiling = limit.ceiling_tps(self.validators);
        self.necessary_us_per_tx = Some(limit.costs.total_us());
        self.ceiling_tps = Some(ceiling);
        self.percent_of_ceiling = Some(100.0 * self.tps / ceiling);
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// The `q`-quantile (0..=1) of sorted durations, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    ms(sorted[rank.min(sorted.len() - 1)])
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offered = self
            .offered_tps
            .map_or("saturating".to_string(), |r| format!("offered {r:.0} TPS"));
        let mut shape = match (self.processes, self.validators_down) {
            (false, _) => "in one process".to_string(),
            (true, 0) => "each its own process".to_string(),
            (true, down) => format!("each its own process, {down} of them stopped for the run"),
        };
        if self.api_tokens {
            shape.push_str(", callers with API tokens");
        }
        writeln!(
            f,
            "load: {:?}, {} validator(s) ({shape}), {} accounts, {offered}",
            self.workload, self.validators, self.accounts
        )?;
        writeln!(
            f,
            "  finalized {} of {} admitted transactions in {:.1} s: {:.0} TPS ({} failed, {} pool-full retries)",
            self.finalized,
            self.submitted,
            self.seconds,
            self.tps,
            self.failed,
            self.pool_full_retries
        )?;
        writeln!(
            f,
            "  latency submit → receipt visible: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.latency_p50_ms, self.latency_p95_ms, self.latency_p99_ms, self.latency_max_ms
        )?;
        writeln!(
            f,
            "  blocks: {} ({:.1}/s), {:.0} transactions per block on average, {} at most",
            self.blocks, self.blocks_per_s, self.tx_per_block_mean, self.tx_per_block_max
        )?;
        writeln!(
            f,
            "  node: {:.1} CPU s, {:.3} CPU ms per transaction ({:.0} µs per validator), peak RSS {:.0} MiB",
            self.node_cpu_s,
            self.cpu_ms_per_tx,
            self.cpu_us_per_tx_per_validator,
            self.peak_rss_mib
        )?;
        writeln!(
            f,
            "  generator: {:.1} CPU s ({:.3} ms per transaction)",
            self.generator_cpu_s, self.generator_cpu_ms_per_tx
        )?;
        write!(
            f,
            "  responsiveness: slowest eth_blockNumber {:.0} ms, longest time without a new block {:.0} ms (after block {})",
            self.probe_max_ms, self.stall_max_ms, self.stall_height
        )?;
        if let (Some(necessary), Some(ceiling), Some(percent)) = (
            self.necessary_us_per_tx,
            self.ceiling_tps,
            self.percent_of_ceiling,
        ) {
            write!(
                f,
                "\n  against the necessary work ({necessary:.0} µs per transaction per validator): ceiling {ceiling:.0} TPS, this run {percent:.0} % of it"
            )?;
        }
        for c in &self.catch_up {
            write!(
                f,
                "\n  catch-up: validator {} restarted, answering after {:.1} s, then {} blocks ({} transactions) in {:.1} s: {:.0} blocks/s, {:.0} transactions/s",
                c.validator,
                c.startup_s,
                c.blocks,
                c.transactions,
                c.seconds,
                c.blocks_per_s,
                c.tx_per_s
            )?;
        }
        if let Some(slow) = &self.slow_readers {
            write!(
                f,
                "\n  slow WebSocket readers: {} subscribed to everything, received {:.0} KiB, {} closed by the node",
                slow.readers, slow.received_kib, slow.dropped
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&sorted, 0.5), 51.0);
        assert_eq!(quantile_ms(&sorted, 0.99), 99.0);
        assert_eq!(quantile_ms(&sorted, 1.0), 100.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
