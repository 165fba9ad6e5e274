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
//! One [`Record`] per key a block writes, in a commonware freezer (a disk-resident hash table:
//! memory use does not grow with the number of keys), stored twice:
//! - under the state key itself: the freezer returns the newest value of a key, so this is the
//!   head of the key's history;
//! - under `hash(state key, height)`: the record of one block, reached from the next newer
//!   record's `previous`.
//!
//! # Durability
//! A block's records are made durable before its state commit is (see
//! [`QmdbStore::apply`](crate::QmdbStore::apply)). A crash in between leaves the index one
//! block ahead; the node then re-executes that block, and recording it again finds its own
//! head record and keeps the older `previous`, so the index holds one list per key either way.
//! A metadata record names the freezer checkpoint and the blocks covered; freezer data beyond
//! the checkpoint is discarded on open.

use crate::{StateError, qmdb::Runtime};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256, sha256::Digest};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::{
    freezer::{self, Checkpoint, Freezer, Identifier},
    metadata::{self, Metadata},
};
use commonware_utils::sequence::U64;
use std::num::NonZeroUsize;
use trellis_types::Height;

/// Domain separator of the per-block record keys.
const AT_DOMAIN: &[u8] = b"trellis.history.at.v1";

/// The metadata key of the index's [`Progress`].
fn progress_key() -> U64 {
    U64::new(0)
}

/// One write of one key: by which block and transaction, and where in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub height: Height,
    /// The transaction's index in the block; `None` for changes outside transactions (genesis).
    pub tx: Option<u32>,
    /// The write's operation in the log.
    pub location: u64,
    /// The block's first operation; the operation before it is the previous block's commit.
    pub block_start: u64,
    /// The block's commit operation, the last of its operations.
    pub block_end: u64,
    /// The block that wrote this key before, if any.
    pub previous: Option<Height>,
}

impl Write for Record {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.get().write(buf);
        self.tx.write(buf);
        self.location.write(buf);
        self.block_start.write(buf);
        self.block_end.write(buf);
        self.previous.map(Height::get).write(buf);
    }
}

impl EncodeSize for Record {
    fn encode_size(&self) -> usize {
        8 + self.tx.encode_size() + 8 * 3 + self.previous.map(Height::get).encode_size()
    }
}

impl Read for Record {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            height: Height(u64::read(buf)?),
            tx: Option::<u32>::read(buf)?,
            location: u64::read(buf)?,
            block_start: u64::read(buf)?,
            block_end: u64::read(buf)?,
            previous: Option::<u64>::read(buf)?.map(Height),
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

/// What the index covers, committed with the freezer checkpoint that holds it.
#[derive(Clone, Copy, Debug)]
struct Progress {
    checkpoint: Checkpoint,
    /// The first block indexed: blocks committed before the index existed have no records.
    first: Height,
    /// The last block indexed.
    last: Height,
}

impl Write for Progress {
    fn write(&self, buf: &mut impl BufMut) {
        self.checkpoint.write(buf);
        self.first.get().write(buf);
        self.last.get().write(buf);
    }
}

impl FixedSize for Progress {
    const SIZE: usize = Checkpoint::SIZE + 8 + 8;
}

impl Read for Progress {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            checkpoint: Checkpoint::read(buf)?,
            first: Height(u64::read(buf)?),
            last: Height(u64::read(buf)?),
        })
    }
}

fn failure<T: std::fmt::Display>(error: T) -> StateError {
    StateError::Backend(format!("state history index: {error}"))
}

fn failed() -> StateError {
    StateError::Backend(
        "the state history index failed during an earlier write; restart the node".into(),
    )
}

/// The key of `key`'s record for the block at `height`.
fn at(key: &Digest, height: Height) -> Digest {
    let mut hasher = Sha256::default();
    hasher.update(AT_DOMAIN);
    hasher.update(key.as_ref());
    hasher.update(&height.get().to_be_bytes());
    hasher.finalize().1
}

/// The history index of one state store.
pub(crate) struct HistoryIndex<E: Runtime> {
    /// `None` only while a write is under way, or after one failed.
    freezer: Option<Freezer<E, Digest, Record>>,
    metadata: Option<Metadata<E, U64, Progress>>,
    progress: Option<Progress>,
}

impl<E: Runtime> HistoryIndex<E> {
    /// Opens the index under `prefix`, as of its last durable block.
    pub async fn open(context: E, prefix: &str, page_cache: CacheRef) -> Result<Self, StateError> {
        let metadata = Metadata::<E, U64, Progress>::init(
            context.child("history_metadata"),
            metadata::Config {
                partition: format!("{prefix}-state-history-meta"),
                codec_config: (),
            },
        )
        .await
        .map_err(failure)?;
        let progress = metadata.get(&progress_key()).copied();
        let buffer = NonZeroUsize::new(1 << 20).expect("non-zero");
        let freezer = Freezer::init(
            context.child("history"),
            freezer::Config {
                key_partition: format!("{prefix}-state-history-keys"),
                key_write_buffer: buffer,
                key_page_cache: page_cache,
                value_partition: format!("{prefix}-state-history-values"),
                value_compression: None,
                value_write_buffer: buffer,
                value_target_size: 256 << 20,
                table_partition: format!("{prefix}-state-history-table"),
                table_initial_size: 1 << 16,
                table_resize_frequency: 4,
                table_resize_chunk_size: 1 << 16,
                table_replay_buffer: buffer,
                codec_config: (),
            },
            progress.map(|p| p.checkpoint),
        )
        .await
        .map_err(failure)?;
        Ok(Self {
            freezer: Some(freezer),
            metadata: Some(metadata),
            progress,
        })
    }

    /// The blocks indexed, first and last, if any.
    pub fn range(&self) -> Option<(Height, Height)> {
        self.progress.map(|p| (p.first, p.last))
    }

    fn freezer(&self) -> Result<&Freezer<E, Digest, Record>, StateError> {
        self.freezer.as_ref().ok_or_else(failed)
    }

    /// Records the writes of the block at `height` and makes them durable.
    ///
    /// The block must follow the last one indexed, or be that block again (after a crash
    /// between this and the state commit).
    pub async fn record(&mut self, height: Height, block: &BlockWrites) -> Result<(), StateError> {
        if let Some(progress) = self.progress {
            let again = height == progress.last;
            if !again && height != progress.last.next() {
                return Err(failure(format!(
                    "block {height} does not follow block {} (the last indexed)",
                    progress.last
                )));
            }
        }
        let mut freezer = self.freezer.take().ok_or_else(failed)?;
        for &(key, tx, location) in &block.writes {
            let previous = match freezer.get(Identifier::Key(&key)).await.map_err(failure)? {
                None => None,
                Some(head) if head.height == height => head.previous,
                Some(head) if head.height < height => Some(head.height),
                Some(head) => {
                    return Err(failure(format!(
                        "key {key} was indexed at block {}, after block {height}",
                        head.height
                    )));
                }
            };
            let record = Record {
                height,
                tx,
                location,
                block_start: block.start,
                block_end: block.end,
                previous,
            };
            (freezer, _) = freezer
                .put(at(&key, height), &record)
                .await
                .map_err(failure)?;
            (freezer, _) = freezer.put(key, &record).await.map_err(failure)?;
        }
        let (freezer, checkpoint) = freezer.sync().await.map_err(failure)?;
        self.freezer = Some(freezer);
        let progress = Progress {
            checkpoint,
            first: self.progress.map_or(height, |p| p.first),
            last: height,
        };
        let metadata = self.metadata.take().ok_or_else(failed)?;
        self.metadata = Some(
            metadata
                .put_sync(progress_key(), progress)
                .await
                .map_err(failure)?,
        );
        self.progress = Some(progress);
        Ok(())
    }

    /// Up to `limit` records of `key`, newest first.
    pub async fn records(&self, key: &Digest, limit: usize) -> Result<Vec<Record>, StateError> {
        let freezer = self.freezer()?;
        let mut records = Vec::new();
        let mut next = freezer.get(Identifier::Key(key)).await.map_err(failure)?;
        while let Some(record) = next {
            if records.len() == limit {
                break;
            }
            next = match record.previous {
                None => None,
                Some(previous) => {
                    let older = freezer
                        .get(Identifier::Key(&at(key, previous)))
                        .await
                        .map_err(failure)?
                        .ok_or_else(|| {
                            failure(format!(
                                "the record of key {key} at block {previous} is missing"
                            ))
                        })?;
                    assert!(
                        older.height < record.height,
                        "history records of a key go back in height"
                    );
                    Some(older)
                }
            };
            records.push(record);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn records_round_trip() {
        let records = [
            Record {
                height: Height(7),
                tx: Some(3),
                location: 1_000,
                block_start: 990,
                block_end: 1_200,
                previous: Some(Height(2)),
            },
            Record {
                height: Height(0),
                tx: None,
                location: 1,
                block_start: 1,
                block_end: 10,
                previous: None,
            },
        ];
        for record in records {
            let encoded = record.encode();
            assert_eq!(encoded.len(), record.encode_size());
            assert_eq!(Record::decode(encoded).unwrap(), record);
        }
    }

    #[test]
    fn per_block_keys_differ_by_key_and_height() {
        let a = Digest([1; 32]);
        let b = Digest([2; 32]);
        assert_ne!(at(&a, Height(1)), at(&a, Height(2)));
        assert_ne!(at(&a, Height(1)), at(&b, Height(1)));
        assert_ne!(at(&a, Height(1)), a);
    }
}
