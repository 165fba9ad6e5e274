//! Finalized blocks, their receipts and a transaction index, on disk.
//!
//! Three indexes under the node's storage directory:
//! - blocks: an immutable archive, index = height, key = block hash, value = the block and its
//!   receipts;
//! - transactions: hash → (height, index in block) ([`crate::tx_index`]), written behind the
//!   chain's progress;
//! - logs: the log index by address and topic ([`crate::log_index`]).
//!
//! A block is synced before consensus is told it is durable, so after a crash the block
//! archive's last height is the last block stored; the other two indexes are rebuilt from the
//! blocks for what a crash left out. Writes of an existing index are no-ops, so a block
//! delivered again after a restart is harmless.

use crate::log_index::{FoundLog, LogIndex, LogIndexError, LogQuery, matching_logs};
use crate::stored::StoredBlock;
use crate::{
    Runtime,
    tx_index::{TxIndex, TxIndexError, TxLocation},
};
use alloy_primitives::TxHash;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::archive::{Archive as _, Identifier, immutable};
use commonware_utils::{NZU16, NZUsize};
use futures::lock::Mutex;
use trellis_types::{BlockHash, BlockLimits, Height};

/// Why a log query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("query returned more than {max} results: narrow the block range or the filter")]
    TooMany { max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A storage failure. The node cannot continue without its storage, so callers stop.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("block store: {0}")]
    Archive(#[from] commonware_storage::archive::Error),
    #[error(transparent)]
    LogIndex(#[from] LogIndexError),
    #[error(transparent)]
    TxIndex(#[from] TxIndexError),
    #[error(
        "block store: block {0} is missing below the last stored block (stored data is corrupt)"
    )]
    Missing(Height),
}

type BlockArchive<E> = immutable::Archive<E, BlockHash, StoredBlock>;

/// The durable record of the finalized chain.
pub struct BlockStore<E: Runtime> {
    // The archive's writes consume and return it; `None` only while a write is in flight.
    blocks: Mutex<Option<BlockArchive<E>>>,
    transactions: TxIndex<E>,
    logs: LogIndex<E>,
}

impl<E: Runtime> BlockStore<E> {
    pub async fn open(context: E, prefix: &str, limits: BlockLimits) -> Result<Self, StoreError> {
        let cache = CacheRef::new(NZU16!(4_096), NZUsize!(1_024));
        let blocks = immutable::Archive::init(
            context.child("ledger_blocks"),
            trellis_consensus::engine::archive_config(prefix, "ledger-blocks", &cache, limits),
        )
        .await?;
        let transactions =
            TxIndex::open(context.child("ledger_transactions"), prefix, &cache).await?;
        let logs = LogIndex::open(context.child("ledger_logs"), prefix, &cache).await?;
        let store = Self {
            blocks: Mutex::new(Some(blocks)),
            transactions,
            logs,
        };
        store.catch_up_log_index().await?;
        store.catch_up_tx_index().await?;
        Ok(store)
    }

    /// Adds the entries of the stored blocks the transaction index may lack (those above its
    /// last durable height).
    async fn catch_up_tx_index(&self) -> Result<(), StoreError> {
        let Some(last) = self.last_height().await else {
            return Ok(());
        };
        let mut height = self
            .transactions
            .covered_at_open()
            .map_or(Height::GENESIS, Height::next);
        while height <= last {
            let stored = self
                .block(height)
                .await?
                .ok_or(StoreError::Missing(height))?;
            self.transactions.add(std::slice::from_ref(&stored)).await?;
            height = height.next();
        }
        Ok(())
    }

    /// Makes everything stored durable and stops the store's writer, so that it can be opened
    /// again in this process.
    pub async fn close(self) -> Result<(), StoreError> {
        Ok(self.transactions.close().await?)
    }

    /// Adds the stored blocks the log index lacks (its open section, and a completed section
    /// whose write a crash cut short).
    async fn catch_up_log_index(&self) -> Result<(), StoreError> {
        let Some(last) = self.last_height().await else {
            return Ok(());
        };
        let mut height = self.logs.next_height();
        while height <= last {
            let stored = self
                .block(height)
                .await?
                .ok_or(StoreError::Missing(height))?;
            self.logs.add(&stored).await?;
            height = height.next();
        }
        Ok(())
    }

    /// The height of the last stored block, if any.
    pub async fn last_height(&self) -> Option<Height> {
        let blocks = self.blocks.lock().await;
        blocks
            .as_ref()
            .expect("not mid-write")
            .last_index()
            .map(Height)
    }

    /// Stores a finalized block. Returns once it is durable and its transactions can be
    /// looked up.
    pub async fn put(&self, stored: &StoredBlock) -> Result<(), StoreError> {
        self.put_many(std::slice::from_ref(stored)).await
    }

    /// Stores consecutive finalized blocks, syncing once. Returns once they are durable and
    /// their transactions can be looked up (the transaction index is durable later, and a
    /// crash before then is repaired at open).
    pub async fn put_many(&self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        {
            let mut slot = self.blocks.lock().await;
            let mut archive = slot.take().expect("not mid-write");
            for stored in blocks {
                let height = stored.block.height();
                archive = archive
                    .put(height.get(), stored.block.hash(), stored)
                    .await?;
            }
            *slot = Some(archive.sync().await?);
        }
        for stored in blocks {
            self.logs.add(stored).await?;
        }
        self.transactions.add(blocks).await?;
        Ok(())
    }

    /// The heights in `from..=to` whose blocks may hold logs matching `query`, ascending
    /// (see [`LogIndex::candidates`]): check their logs exactly.
    pub async fn log_candidates(
        &self,
        query: &LogQuery,
        from: Height,
        to: Height,
    ) -> Result<Vec<Height>, StoreError> {
        Ok(self.logs.candidates(query, from, to).await?)
    }

    /// The logs of blocks `from..=to` matching `query`, in chain order; refused once more than
    /// `max` match. Only the blocks the log index names as candidates are read.
    pub async fn logs(
        &self,
        query: &LogQuery,
        from: Height,
        to: Height,
        max: usize,
    ) -> Result<Vec<FoundLog>, LogsError> {
        let mut found = Vec::new();
        for height in self.log_candidates(query, from, to).await? {
            let stored = self
                .block(height)
                .await?
                .ok_or(StoreError::Missing(height))?;
            found.extend(matching_logs(&stored, query));
            if found.len() > max {
                return Err(LogsError::TooMany { max });
            }
        }
        Ok(found)
    }

    pub async fn block(&self, height: Height) -> Result<Option<StoredBlock>, StoreError> {
        let blocks = self.blocks.lock().await;
        let archive = blocks.as_ref().expect("not mid-write");
        Ok(archive.get(Identifier::Index(height.get())).await?)
    }

    pub async fn block_by_hash(&self, hash: &BlockHash) -> Result<Option<StoredBlock>, StoreError> {
        let blocks = self.blocks.lock().await;
        let archive = blocks.as_ref().expect("not mid-write");
        Ok(archive.get(Identifier::Key(hash)).await?)
    }

    pub async fn transaction(&self, hash: &TxHash) -> Result<Option<TxLocation>, StoreError> {
        Ok(self.transactions.get(hash).await?)
    }
}
