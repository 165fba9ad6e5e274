//! The chain's metrics, in the runtime's registry (served at `/metrics`): how far it has
//! finalized, how much it has carried, and how full its pool is.

use commonware_runtime::{
    Metrics,
    telemetry::metrics::{Counter, CounterFamily, EncodeLabelSet, Gauge, MetricsExt as _, raw},
};
use trellis_mempool::AdmissionError;

/// Where a transaction offered to the pool came from, and what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Offered {
    /// `client` (JSON-RPC) or `peer` (gossip).
    source: String,
    /// `admitted`, or why it was refused ([`AdmissionError::reason`]).
    outcome: String,
}

/// Who offered a batch of transactions.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source {
    Client,
    Peer,
}

pub(crate) struct ChainMetrics {
    height: Gauge,
    transactions: Counter,
    pool: Gauge,
    offered: CounterFamily<Offered>,
}

impl ChainMetrics {
    pub fn register(context: &impl Metrics) -> Self {
        Self {
            height: context.gauge(
                "finalized_height",
                "Height of the last finalized block stored and committed",
            ),
            transactions: context.counter(
                "finalized_transactions",
                "Transactions in finalized blocks since the node started",
            ),
            pool: context.gauge(
                "pool_transactions",
                "Transactions waiting in the pool after the last finalized block",
            ),
            offered: context.register(
                "offered_transactions",
                "Transactions offered to the pool, by source and outcome (admitted, or the reason refused)",
                raw::Family::default(),
            ),
        }
    }

    /// What became of a batch `source` offered.
    pub fn offered<T>(&self, source: Source, outcomes: &[Result<T, AdmissionError>]) {
        let source = match source {
            Source::Client => "client",
            Source::Peer => "peer",
        };
        // One registry lookup per distinct outcome, not per transaction: batches are large.
        let mut counts: Vec<(&'static str, u64)> = Vec::new();
        for outcome in outcomes {
            let outcome = match outcome {
                Ok(_) => "admitted",
                Err(error) => error.reason(),
            };
            match counts.iter_mut().find(|(seen, _)| *seen == outcome) {
                Some((_, count)) => *count += 1,
                None => counts.push((outcome, 1)),
            }
        }
        for (outcome, count) in counts {
            let labels = Offered {
                source: source.to_owned(),
                outcome: outcome.to_owned(),
            };
            self.offered.get_or_create(&labels).inc_by(count);
        }
    }
    /// A block of `transactions` at `height` finalized, `pool` transactions left waiting.
    pub fn finalized(&self, height: u64, transactions: usize, pool: usize) {
        self.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        self.transactions.inc_by(transactions as u64);
        self.pool.set(i64::try_from(pool).unwrap_or(i64::MAX));
    }
}
