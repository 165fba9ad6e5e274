//! What clients read of the chain's record: finalized blocks with their receipts, where a
//! transaction was finalized, logs through the log index, and transactions still pending in
//! the pool. The narrow read API the RPC layer is served from; the block store and the pool
//! themselves stay inside the chain.

use super::Chain;
use crate::{FoundLog, LogQuery, LogsError, Runtime, StoreError, StoredBlock, TxLocation};
use alloy_primitives::TxHash;
use trellis_types::{BlockHash, Height, RecoveredTx};

impl<E: Runtime> Chain<E> {
    /// The finalized block at `height` with its receipts, if stored.
    pub async fn block(&self, height: Height) -> Result<Option<StoredBlock>, StoreError> {
        self.shared.store.block(height).await
    }

    /// The finalized block with `hash` with its receipts, if stored.
    pub async fn block_by_hash(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, StoreError> {
        self.shared.store.block_by_hash(hash).await
    }

    /// Where the finalized transaction `hash` is (its block and position), if it is.
    pub async fn transaction_location(
        &self,
        hash: &TxHash,
    ) -> Result<Option<TxLocation>, StoreError> {
        self.shared.store.transaction(hash).await
    }

    /// The logs of finalized blocks `from..=to` matching `query`, in chain order; refused once
    /// more than `max` match.
    pub async fn logs(
        &self,
        query: &LogQuery,
        from: Height,
        to: Height,
        max: usize,
    ) -> Result<Vec<FoundLog>, LogsError> {
        self.shared.store.logs(query, from, to, max).await
    }

    /// A transaction admitted to this node's pool and not finalized yet.
    pub fn pending_transaction(&self, hash: &TxHash) -> Option<RecoveredTx> {
        self.shared.rules.mempool.get(hash)
    }

    /// The largest transaction the pool admits, in bytes.
    pub fn max_transaction_bytes(&self) -> usize {
        self.shared.rules.mempool.config().max_transaction_bytes
    }

    /// How many transactions wait in this node's pool.
    pub fn pending_count(&self) -> usize {
        self.shared.rules.mempool.len()
    }
}
