//! The history index: for every account and storage slot, each block that wrote it, the
//! transaction that did, and where the write sits in QMDB's operation log.
//!
//! # Why an index
//! QMDB's log keeps every operation (unless pruning is configured), and a range proof shows any
//! of them against today's state root; what the log cannot do is find a key's operations. This
//! index does. It is outside the authenticated state and only says where to look: every claim
//! it makes is checked against the log by [`crate::History::verify`].
//!
//! # Layout
//! Two append-only journals of fixed-size items, written once per block and read by position:
//! - *writes*: one [`Record`] per key a block writes, naming the position of the key's
//!   previous record (a list per key, newest first);
//! - *blocks*: at position `h`, where block `h`'s records end and where its operations are in
//!   the log.
//!
//! The head of each key's list (its newest record) is kept in memory ([`Heads`]) and rebuilt at
//! open by reading the writes journal once: a write costs an append and a table update, never a
//! disk read. Memory grows with the number of keys ever written (a 40-byte slot each, in a table
//! kept between three eighths and three quarters full: 53–107 bytes per key).
//!
//! # Durability
//! A block's records are made durable before its state commit (see
//! [`QmdbStore::apply`](crate::QmdbStore::apply)). Open cuts the index back to the last block
//! the state committed, so a block recorded before a crash is recorded afresh when the node
//! executes it again.

use crate::backend::{Runtime, TableName};
use crate::heads::Heads;
use crate::{Corruption, StateError};
use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::sha256::Digest;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::journal::contiguous::{
    Contiguous as _, Many,
    fixed::{Config as JournalConfig, Journal},
};
use std::num::{NonZeroU64, NonZeroUsize};
use trellis_types::Height;

/// "None" in a fixed-size field.
const NONE: u64 = u64::MAX;
/// Records read per request while rebuilding the heads.
const REPLAY_CHUNK: u64 = 4_096;

/// One write of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub key: Digest,
    pub height: Height,
    /// The transaction's index in the block; `None` for changes outside transactions (genesis).
    pub tx: Option<u32>,
    /// The write's operation in the log.
    pub location: u64,
    /// The position of the key's previous record, if any.
    pub previous: Option<u64>,
}

impl Write for Record {
    fn write(&self, buf: &mut impl BufMut) {
        self.key.write(buf);
        self.height.get().write(buf);
        self.tx.map_or(NONE, u64::from).write(buf);
        self.location.write(buf);
        self.previous.unwrap_or(NONE).write(buf);
    }
}

impl FixedSize for Record {
    const SIZE: usize = 32 + 8 * 4;
}

impl Read for Record {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let key = Digest::read(buf)?;
        let height = Height(u64::read(buf)?);
        let tx = match u64::read(buf)? {
            NONE => None,
            tx => {
                Some(u32::try_from(tx).map_err(|_| CodecError::Invalid("Record", "transaction"))?)
            }
        };
        let location = u64::read(buf)?;
        let previous = Some(u64::read(buf)?).filter(|p| *p != NONE);
        Ok(Self {
            key,
            height,
            tx,
            location,
            previous,
        })
    }
}

/// Where one block's records end and where its operations are in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockRecord {
    /// The writes journal's size after this block's records.
    pub records_end: u64,
    /// The block's first operation; the operation before it is the previous block's commit.
    pub start: u64,
    /// The block's commit operation, the last of its operations.
    pub end: u64,
}

impl Write for BlockRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.records_end.write(buf);
        self.start.write(buf);
        self.end.write(buf);
    }
}

impl FixedSize for BlockRecord {
    const SIZE: usize = 8 * 3;
}

impl Read for BlockRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            records_end: u64::read(buf)?,
            start: u64::read(buf)?,
            end: u64::read(buf)?,
        })
    }
}

/// The keys one block wrote and where its operations are in the log.
#[derive(Clone, Debug, Default)]
pub(crate) struct BlockWrites {
    /// `(state key, transaction, location)` of each tracked write, in log order.
    pub writes: Vec<(Digest, Option<u32>, u64)>,
    pub start: u64,
    pub end: u64,
}

/// One write as the history reads it: the record with its block's operation range.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    pub record: Record,
    pub block: BlockRecord,
}

/// The history index of one state store.
pub(crate) struct HistoryIndex<E: Runtime> {
    /// `None` only while a write is under way, or after one failed.
    writes: Option<Journal<E, Record>>,
    blocks: Option<Journal<E, BlockRecord>>,
    /// Each key's newest record.
    heads: Heads,
    /// Which table's writes this indexes, for messages.
    table: TableName,
}

fn journal_config(partition: String, page_cache: &CacheRef) -> JournalConfig {
    let buffer = NonZeroUsize::new(1 << 20).expect("non-zero");
    JournalConfig {
        partition,
        items_per_blob: NonZeroU64::new(1 << 20).expect("non-zero"),
        page_cache: page_cache.clone(),
        write_buffer: buffer,
        replay_buffer: buffer,
    }
}

impl<E: Runtime> HistoryIndex<E> {
    /// Opens the index of `table`, whose partitions start with `partitions`, cut back to the
    /// blocks up to `committed` (the state's last commit), and rebuilds each key's head.
    pub async fn open(
        context: E,
        table: TableName,
        partitions: &str,
        page_cache: CacheRef,
        committed: Option<Height>,
    ) -> Result<Self, StateError> {
        let blocks_wanted = committed.map_or(0, |h| h.get() + 1);
        let blocks = Journal::<E, BlockRecord>::init_at_most(
            context.child("history_blocks"),
            journal_config(format!("{partitions}-history-blocks"), &page_cache),
            blocks_wanted,
        )
        .await
        .map_err(StateError::history(table))?;
        if blocks.size() != blocks_wanted {
            return Err(Corruption::HistoryBlocks {
                partitions: partitions.to_string(),
                covered: blocks.size(),
                wanted: blocks_wanted,
            }
            .into());
        }
        let records_end = match blocks_wanted {
            0 => 0,
            n => {
                blocks
                    .read(n - 1)
                    .await
                    .map_err(StateError::history(table))?
                    .records_end
            }
        };
        let writes = Journal::<E, Record>::init_at_most(
            context.child("history_writes"),
            journal_config(format!("{partitions}-history-writes"), &page_cache),
            records_end,
        )
        .await
        .map_err(StateError::history(table))?;
        if writes.size() != records_end {
            return Err(Corruption::HistoryRecords {
                partitions: partitions.to_string(),
                named: records_end,
                stored: writes.size(),
            }
            .into());
        }
        let heads = rebuild_heads(&writes, table).await?;
        Ok(Self {
            writes: Some(writes),
            blocks: Some(blocks),
            heads,
            table,
        })
    }

    fn writes(&self) -> Result<&Journal<E, Record>, StateError> {
        self.writes
            .as_ref()
            .ok_or(StateError::HistoryFailed(self.table))
    }

    fn blocks(&self) -> Result<&Journal<E, BlockRecord>, StateError> {
        self.blocks
            .as_ref()
            .ok_or(StateError::HistoryFailed(self.table))
    }

    /// Appends the records of the block at `height` (the block after the last one recorded);
    /// [`commit`](Self::commit) makes them durable.
    pub async fn record(&mut self, height: Height, block: &BlockWrites) -> Result<(), StateError> {
        let expected = self.blocks()?.size();
        if height.get() != expected {
            return Err(StateError::HistoryOrder {
                table: self.table,
                expected,
                got: height,
            });
        }
        let writes = self
            .writes
            .take()
            .ok_or(StateError::HistoryFailed(self.table))?;
        let first = writes.size();
        let positions: Vec<(Digest, u64)> = (block.writes.iter().enumerate())
            .map(|(offset, &(key, _, _))| (key, first + offset as u64))
            .collect();
        let previous = self.heads.insert_many(&positions);
        let records: Vec<Record> = (block.writes.iter().zip(previous))
            .map(|(&(key, tx, location), previous)| Record {
                key,
                height,
                tx,
                location,
                previous,
            })
            .collect();
        // An empty block (no transactions) writes nothing; the journal refuses empty appends.
        let writes = match records.is_empty() {
            true => writes,
            false => {
                writes
                    .append_many(Many::Flat(&records))
                    .await
                    .map_err(StateError::history(self.table))?
                    .0
            }
        };
        let records_end = writes.size();
        assert_eq!(
            records_end,
            first + records.len() as u64,
            "one position a record"
        );
        self.writes = Some(writes);
        let blocks = self
            .blocks
            .take()
            .ok_or(StateError::HistoryFailed(self.table))?;
        let (blocks, _) = blocks
            .append(&BlockRecord {
                records_end,
                start: block.start,
                end: block.end,
            })
            .await
            .map_err(StateError::history(self.table))?;
        self.blocks = Some(blocks);
        Ok(())
    }

    /// Makes every recorded block durable.
    pub async fn commit(&mut self) -> Result<(), StateError> {
        let writes = self
            .writes
            .take()
            .ok_or(StateError::HistoryFailed(self.table))?;
        let blocks = self
            .blocks
            .take()
            .ok_or(StateError::HistoryFailed(self.table))?;
        let (writes, blocks) = futures::try_join!(writes.commit(), blocks.commit())
            .map_err(StateError::history(self.table))?;
        self.writes = Some(writes);
        self.blocks = Some(blocks);
        Ok(())
    }

    /// Where the block at `height` (recorded) has its operations in the log.
    pub async fn block(&self, height: Height) -> Result<BlockRecord, StateError> {
        self.blocks()?
            .read(height.get())
            .await
            .map_err(StateError::history(self.table))
    }

    /// The newest write of `key` at or before block `height`, if any.
    ///
    /// Walks the key's list from its newest write back, so it costs one read per write of the
    /// key after `height`.
    pub async fn record_at(
        &self,
        key: &Digest,
        height: Height,
    ) -> Result<Option<Record>, StateError> {
        let writes = self.writes()?;
        let mut next = self.heads.get(key);
        while let Some(position) = next {
            let record = writes
                .read(position)
                .await
                .map_err(StateError::history(self.table))?;
            if record.key != *key {
                return Err(Corruption::ForeignRecord {
                    table: self.table,
                    position,
                }
                .into());
            }
            if record.height <= height {
                return Ok(Some(record));
            }
            next = record.previous;
        }
        Ok(None)
    }

    /// Up to `limit` writes of `key`, newest first.
    pub async fn records(&self, key: &Digest, limit: usize) -> Result<Vec<Found>, StateError> {
        let (writes, blocks) = (self.writes()?, self.blocks()?);
        let mut found: Vec<Found> = Vec::new();
        let mut next = self.heads.get(key);
        while let Some(position) = next {
            if found.len() == limit {
                break;
            }
            let record = writes
                .read(position)
                .await
                .map_err(StateError::history(self.table))?;
            if record.key != *key {
                return Err(Corruption::ForeignRecord {
                    table: self.table,
                    position,
                }
                .into());
            }
            if let Some(newer) = found.last() {
                assert!(
                    record.height < newer.record.height,
                    "a key's records go back in height"
                );
            }
            let block = blocks
                .read(record.height.get())
                .await
                .map_err(StateError::history(self.table))?;
            found.push(Found { record, block });
            next = record.previous;
        }
        Ok(found)
    }
}

/// Each key's newest record, from one pass over the writes journal.
async fn rebuild_heads<E: Runtime>(
    writes: &Journal<E, Record>,
    table: TableName,
) -> Result<Heads, StateError> {
    let mut heads = Heads::default();
    let end = writes.size();
    let mut position = 0;
    while position < end {
        let chunk: Vec<u64> = (position..end.min(position + REPLAY_CHUNK)).collect();
        let records = writes
            .read_many(&chunk)
            .await
            .map_err(StateError::history(table))?;
        let positions: Vec<(Digest, u64)> = (records.iter().enumerate())
            .map(|(offset, record)| (record.key, position + offset as u64))
            .collect();
        heads.insert_many(&positions);
        position += chunk.len() as u64;
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn records_round_trip() {
        let records = [
            Record {
                key: Digest([7; 32]),
                height: Height(7),
                tx: Some(3),
                location: 1_000,
                previous: Some(12),
            },
            Record {
                key: Digest([1; 32]),
                height: Height(0),
                tx: None,
                location: 1,
                previous: None,
            },
        ];
        for record in records {
            let encoded = record.encode();
            assert_eq!(encoded.len(), Record::SIZE);
            assert_eq!(Record::decode(encoded).unwrap(), record);
        }
        let block = BlockRecord {
            records_end: 9,
            start: 100,
            end: 180,
        };
        assert_eq!(BlockRecord::decode(block.encode()).unwrap(), block);
    }
}
