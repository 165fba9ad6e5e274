//! The chain's metrics, in the runtime's registry (served at `/metrics`): how far it has
//! finalized, how much it has carried, and how full its pool is.

use commonware_runtime::{
    Metrics,
    telemetry::metrics::{Counter, Gauge, MetricsExt as _},
};

pub(crate) struct ChainMetrics {
    height: Gauge,
    transactions: Counter,
    pool: Gauge,
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
        }
    }

    /// A block of `transactions` at `height` finalized, `pool` transactions left waiting.
    pub fn finalized(&self, height: u64, transactions: usize, pool: usize) {
        self.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        self.transactions.inc_by(transactions as u64);
        self.pool.set(i64::try_from(pool).unwrap_or(i64::MAX));
    }
}
