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
use crate::{
    Runtime,
    tx_index::{TxIndex, TxIndexError, TxLocation},
};
use alloy_consensus::ReceiptEnvelope;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, TxHash};
use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::archive::{Archive as _, Identifier, immutable};
use commonware_utils::{NZU16, NZUsize};
use futures::lock::Mutex;
use trellis_execution::TxReceipt;
use trellis_types::{Block, BlockHash, BlockLimits, Height};

/// What a receipt needs beyond its Ethereum envelope (status, gas, logs, bloom) to answer
/// `eth_getTransactionReceipt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub tx_hash: TxHash,
    pub from: Address,
    pub to: Option<Address>,
    pub contract_address: Option<Address>,
    pub gas_used: u64,
    pub effective_gas_price: u128,
    pub envelope: ReceiptEnvelope,
}

impl From<&TxReceipt> for ReceiptRecord {
    fn from(r: &TxReceipt) -> Self {
        Self {
            tx_hash: r.tx_hash,
            from: r.from,
            to: r.to,
            contract_address: r.contract_address,
            gas_used: r.gas_used,
            effective_gas_price: r.effective_gas_price,
            envelope: r.envelope.clone(),
        }
    }
}

/// The largest stored receipt envelope. Logs are bounded by gas (375 gas a topic, 8 a byte), so
/// a 60M-gas transaction cannot emit more than ~7.5 MB of log data.
const MAX_RECEIPT_BYTES: usize = 16 << 20;

fn write_address(address: &Option<Address>, buf: &mut impl BufMut) {
    match address {
        Some(a) => {
            buf.put_u8(1);
            buf.put_slice(a.as_slice());
        }
        None => buf.put_u8(0),
    }
}

fn read_address(buf: &mut impl Buf) -> Result<Option<Address>, CodecError> {
    match u8::read(buf)? {
        0 => Ok(None),
        1 => Ok(Some(Address::from(<[u8; 20]>::read(buf)?))),
        _ => Err(CodecError::Invalid("ReceiptRecord", "address tag")),
    }
}

impl Write for ReceiptRecord {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(self.tx_hash.as_slice());
        buf.put_slice(self.from.as_slice());
        write_address(&self.to, buf);
        write_address(&self.contract_address, buf);
        self.gas_used.write(buf);
        self.effective_gas_price.write(buf);
        bytes::Bytes::from(self.envelope.encoded_2718()).write(buf);
    }
}

impl EncodeSize for ReceiptRecord {
    fn encode_size(&self) -> usize {
        let address = |a: &Option<Address>| 1 + a.map_or(0, |_| 20);
        let envelope = self.envelope.encode_2718_len();
        32 + 20
            + address(&self.to)
            + address(&self.contract_address)
            + 8
            + 16
            + envelope.encode_size()
            + envelope
    }
}

impl Read for ReceiptRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tx_hash = B256::from(<[u8; 32]>::read(buf)?);
        let from = Address::from(<[u8; 20]>::read(buf)?);
        let to = read_address(buf)?;
        let contract_address = read_address(buf)?;
        let gas_used = u64::read(buf)?;
        let effective_gas_price = u128::read(buf)?;
        let raw = bytes::Bytes::read_cfg(buf, &RangeCfg::new(..=MAX_RECEIPT_BYTES))?;
        let mut slice = raw.chunk();
        let envelope = ReceiptEnvelope::decode_2718(&mut slice)
            .map_err(|_| CodecError::Invalid("ReceiptRecord", "receipt envelope"))?;
        Ok(Self {
            tx_hash,
            from,
            to,
            contract_address,
            gas_used,
            effective_gas_price,
            envelope,
        })
    }
}

/// A finalized block with its receipts, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    pub block: Block,
    pub receipts: Vec<ReceiptRecord>,
}

impl Write for StoredBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
        self.receipts.write(buf);
    }
}

impl EncodeSize for StoredBlock {
    fn encode_size(&self) -> usize {
        self.block.encode_size() + self.receipts.encode_size()
    }
}

impl Read for StoredBlock {
    type Cfg = BlockLimits;
    fn read_cfg(buf: &mut impl Buf, limits: &BlockLimits) -> Result<Self, CodecError> {
        let block = Block::read_cfg(buf, limits)?;
        let receipts = Vec::<ReceiptRecord>::read_cfg(
            buf,
            &(RangeCfg::new(..=block.transactions().len()), ()),
        )?;
        if receipts.len() != block.transactions().len() {
            return Err(CodecError::Invalid(
                "StoredBlock",
                "one receipt per transaction",
            ));
        }
        Ok(Self { block, receipts })
    }
}

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
