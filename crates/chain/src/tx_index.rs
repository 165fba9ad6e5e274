//! The transaction index: a finalized transaction's hash → where it is (height, index in
//! block), written behind the chain's progress.
//!
//! On disk it is an immutable archive (index = the transaction's position in the whole chain,
//! key = its hash) and a marker, the last height whose entries are all durable. Each entry costs
//! the archive a table read and a table write, two trips through the runtime's blocking pool;
//! written before a block became visible they made up most of a loaded block's latency (4
//! validators at 2,250 TPS: p50 195–293 ms with them, 61–77 ms without). So a block's entries
//! go into memory (`unwritten`) before the block becomes visible, and a writer task puts them
//! into the archive, syncs it every [`SYNC_EVERY_BLOCKS`] blocks (or when idle), moves the
//! marker, and only then drops them from memory. Lookups read memory first. The queue to the writer is bounded: a writer that falls behind holds back
//! the blocks being stored, so memory stays bounded too.
//!
//! After a crash, the blocks stored above the marker are indexed again at open. An entry
//! written twice (a crash between the archive's sync and the marker's) sits at two positions
//! naming the same place, so lookups are unaffected.
//!
//! The index is [`SHARDS`] archives, a transaction going to the one its hash's first byte
//! names, written concurrently: each put waits on two blocking-pool trips, so one archive
//! written entry after entry took ~100 µs per transaction and held a catching-up node to
//! ~10,000 transactions a second. Shard 0 is the archive of the index before it was sharded
//! (the same partitions), so a lookup that misses its own shard also asks shard 0.

use crate::{Runtime, stored::StoredBlock};
use alloy_primitives::TxHash;
use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, Read, ReadExt, Write};
use commonware_runtime::{Handle, buffer::paged::CacheRef};
use commonware_storage::{
    archive::{Archive as _, Identifier, immutable},
    metadata::{self, Metadata},
};
use commonware_utils::sequence::{FixedBytes, U64};
use futures::lock::Mutex;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};
use trellis_types::Height;

/// Calls to [`TxIndex::add`] that may wait for the writer before callers are held back.
const QUEUE: usize = 16;
/// Entries the writer puts while holding the archive; lookups wait at most this many puts.
const PUTS_PER_HOLD: usize = 256;
/// The writer syncs once this many blocks' entries are put (each sync is a handful of fsyncs,
/// a cost per block otherwise), or once no block came for [`SYNC_WHEN_IDLE`]. Until then the
/// entries stay in memory too, so this bounds memory along with [`QUEUE`].
const SYNC_EVERY_BLOCKS: usize = 64;
const SYNC_WHEN_IDLE: Duration = Duration::from_millis(500);
/// The marker's key in its metadata store.
const COVERED: U64 = U64::new(0);

/// Where a transaction is in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
}

impl Write for TxLocation {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.index.write(buf);
    }
}

impl commonware_codec::FixedSize for TxLocation {
    const SIZE: usize = 8 + 4;
}

impl Read for TxLocation {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            height: Height::read(buf)?,
            index: u32::read(buf)?,
        })
    }
}

/// Why the index cannot answer or take entries. The node cannot continue without it.
#[derive(Debug, thiserror::Error)]
pub enum TxIndexError {
    #[error("transaction index: {0}")]
    Archive(#[from] commonware_storage::archive::Error),
    #[error("transaction index marker: {0}")]
    Marker(#[from] commonware_storage::metadata::Error),
    #[error("transaction index: its writer has stopped (a storage write failed; see the log)")]
    WriterStopped,
}

type TxKey = FixedBytes<32>;
type TxArchive<E> = immutable::Archive<E, TxKey, TxLocation>;
type Marker<E> = Metadata<E, U64, u64>;
/// One shard, shared by the writer and lookups; `None` only while a write is in flight.
type SharedArchive<E> = Arc<Mutex<Option<TxArchive<E>>>>;

/// Archives the index is spread over, written concurrently.
const SHARDS: usize = 4;

/// The shard holding `hash`'s entry.
fn shard_of(hash: &TxHash) -> usize {
    usize::from(hash.0[0]) % SHARDS
}

/// The partition name of shard `shard`; shard 0 keeps the unsharded index's.
fn shard_name(shard: usize) -> String {
    match shard {
        0 => "ledger-transactions".to_string(),
        k => format!("ledger-transactions-{k}"),
    }
}
type Unwritten = Arc<SyncMutex<HashMap<TxHash, TxLocation>>>;

/// One block's entries, in the block's order.
struct Entries {
    height: Height,
    entries: Vec<(TxHash, TxLocation)>,
}

enum Command {
    Write(Vec<Entries>),
    /// Answered once everything queued before it is durable.
    Flush(oneshot::Sender<()>),
}

/// The transaction index of one chain.
pub struct TxIndex<E: Runtime> {
    shards: Vec<SharedArchive<E>>,
    unwritten: Unwritten,
    queue: mpsc::Sender<Command>,
    writer: Handle<()>,
    /// The last height whose entries were durable when the index opened.
    covered_at_open: Option<Height>,
}

impl<E: Runtime> TxIndex<E> {
    /// Opens the index stored under `prefix` and starts its writer. Blocks stored above
    /// [`Self::covered_at_open`] may lack entries: the caller adds them before serving.
    pub async fn open(context: E, prefix: &str, cache: &CacheRef) -> Result<Self, TxIndexError> {
        let mut archives: Vec<TxArchive<E>> = Vec::with_capacity(SHARDS);
        for shard in 0..SHARDS {
            let name = shard_name(shard);
            archives.push(
                immutable::Archive::init(
                    context.child("archive").with_attribute("shard", shard),
                    trellis_consensus::engine::archive_config(prefix, &name, cache, ()),
                )
                .await?,
            );
        }
        let marker: Marker<E> = Metadata::init(
            context.child("marker"),
            metadata::Config {
                partition: format!("{prefix}-ledger-transactions-covered"),
                codec_config: (),
            },
        )
        .await?;
        let covered_at_open = covered(&archives, &marker).await?;
        let next_positions = archives
            .iter()
            .map(|archive| archive.last_index().map_or(0, |last| last + 1))
            .collect();
        let shards: Vec<SharedArchive<E>> = archives
            .into_iter()
            .map(|archive| Arc::new(Mutex::new(Some(archive))))
            .collect();
        let unwritten = Unwritten::default();
        let (queue, commands) = mpsc::channel(QUEUE);
        let (shared, memory) = (shards.clone(), unwritten.clone());
        let writer = context.child("writer").spawn(move |context| {
            let writer = Writer {
                context,
                shards: shared,
                marker: Some(marker),
                unwritten: memory,
                next_positions,
                unsynced: Vec::new(),
                unsynced_blocks: 0,
                last_put: None,
            };
            writer.run(commands)
        });
        Ok(Self {
            shards,
            unwritten,
            queue,
            writer,
            covered_at_open,
        })
    }

    /// The last height whose entries were all durable when the index opened (`None`: none
    /// were written yet).
    pub fn covered_at_open(&self) -> Option<Height> {
        self.covered_at_open
    }

    /// Indexes consecutive stored blocks. Their entries answer lookups at once; they are
    /// durable later. Waits while the writer is [`QUEUE`] calls behind.
    pub async fn add(&self, blocks: &[StoredBlock]) -> Result<(), TxIndexError> {
        let batch: Vec<Entries> = blocks.iter().map(entries_of).collect();
        {
            let mut unwritten = self.unwritten.lock().expect("tx index lock poisoned");
            for block in &batch {
                unwritten.extend(block.entries.iter().copied());
            }
        }
        match self.queue.try_send(Command::Write(batch)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(command)) => {
                // Said, because the blocks being stored (and their visibility) wait meanwhile.
                tracing::warn!(
                    queued = QUEUE,
                    "the transaction index writer is behind; storing blocks waits for it"
                );
                self.queue
                    .send(command)
                    .await
                    .map_err(|_| TxIndexError::WriterStopped)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TxIndexError::WriterStopped),
        }
    }

    /// Where the finalized transaction `hash` is, if it is finalized.
    pub async fn get(&self, hash: &TxHash) -> Result<Option<TxLocation>, TxIndexError> {
        let pending = self
            .unwritten
            .lock()
            .expect("tx index lock poisoned")
            .get(hash)
            .copied();
        if pending.is_some() {
            return Ok(pending);
        }
        // Not in memory: written before this lookup began, or not finalized.
        let shard = shard_of(hash);
        let found = self.lookup(shard, hash).await?;
        if found.is_some() || shard == 0 {
            return Ok(found);
        }
        // Indexed before the index was sharded.
        self.lookup(0, hash).await
    }

    async fn lookup(
        &self,
        shard: usize,
        hash: &TxHash,
    ) -> Result<Option<TxLocation>, TxIndexError> {
        let archive = self.shards[shard].lock().await;
        // Left empty only by a write that failed, which stopped the writer.
        let archive = archive.as_ref().ok_or(TxIndexError::WriterStopped)?;
        Ok(archive.get(Identifier::Key(&TxKey::new(hash.0))).await?)
    }

    /// Waits until every entry added so far is durable.
    pub async fn flush(&self) -> Result<(), TxIndexError> {
        let (done, flushed) = oneshot::channel();
        self.queue
            .send(Command::Flush(done))
            .await
            .map_err(|_| TxIndexError::WriterStopped)?;
        flushed.await.map_err(|_| TxIndexError::WriterStopped)
    }

    /// Makes every entry durable and stops the writer, so the index can be opened again.
    pub async fn close(self) -> Result<(), TxIndexError> {
        self.flush().await?;
        drop(self.queue);
        self.writer.await.map_err(|_| TxIndexError::WriterStopped)
    }
}

/// The entries of one block.
fn entries_of(stored: &StoredBlock) -> Entries {
    let height = stored.block.height();
    let entries = stored
        .receipts
        .iter()
        .enumerate()
        .map(|(i, receipt)| {
            let index = u32::try_from(i).expect("fewer than 2^32 transactions a block");
            (receipt.tx_hash, TxLocation { height, index })
        })
        .collect();
    Entries { height, entries }
}

/// The last height whose entries are durable: the marker, or for an index written before the
/// marker existed (unsharded: every stored block was indexed before it was stored), the height
/// of shard 0's last entry.
async fn covered<E: Runtime>(
    archives: &[TxArchive<E>],
    marker: &Marker<E>,
) -> Result<Option<Height>, TxIndexError> {
    let archive = &archives[0];
    let last_entry = match archive.last_index() {
        Some(last) => archive
            .get(Identifier::Index(last))
            .await?
            .map(|location| location.height),
        None => None,
    };
    let marked = marker.get(&COVERED).copied().map(Height);
    Ok(marked.max(last_entry))
}

/// The task that makes entries durable, the shards' only writer.
struct Writer<E: Runtime> {
    context: E,
    shards: Vec<SharedArchive<E>>,
    // `None` only while its sync is in flight.
    marker: Option<Marker<E>>,
    unwritten: Unwritten,
    /// Each shard's next position.
    next_positions: Vec<u64>,
    /// Entries put in the archive but not synced yet, and the last height they reach.
    unsynced: Vec<TxHash>,
    unsynced_blocks: usize,
    last_put: Option<Height>,
}

impl<E: Runtime> Writer<E> {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        if let Err(e) = self.serve(&mut commands).await {
            // Senders see the queue close; the node stops storing blocks.
            tracing::error!(error = %e, "cannot write the transaction index");
        }
    }

    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> Result<(), TxIndexError> {
        loop {
            let command = if self.unsynced_blocks == 0 {
                commands.recv().await
            } else {
                tokio::select! {
                    biased;
                    command = commands.recv() => command,
                    _ = self.context.sleep(SYNC_WHEN_IDLE) => {
                        self.sync().await?;
                        continue;
                    }
                }
            };
            let Some(first) = command else {
                // Closed: everything queued was received.
                return self.sync().await;
            };
            // Whatever queued meanwhile is put in one go.
            let mut blocks = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next {
                match command {
                    Command::Write(batch) => blocks.extend(batch),
                    Command::Flush(done) => flushes.push(done),
                }
                next = commands.try_recv().ok();
            }
            self.put(&blocks).await?;
            if !flushes.is_empty() || self.unsynced_blocks >= SYNC_EVERY_BLOCKS {
                self.sync().await?;
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Puts the blocks' entries in their shards, all shards at once, a few hundred entries per
    /// hold of a shard's lock.
    async fn put(&mut self, blocks: &[Entries]) -> Result<(), TxIndexError> {
        let mut by_shard: Vec<Vec<(TxHash, TxLocation)>> = vec![Vec::new(); SHARDS];
        for (hash, location) in blocks.iter().flat_map(|block| block.entries.iter()) {
            by_shard[shard_of(hash)].push((*hash, *location));
        }
        let puts = self
            .shards
            .iter()
            .zip(self.next_positions.iter_mut())
            .zip(&by_shard)
            .map(|((shard, next), entries)| put_shard(shard, next, entries));
        futures::future::try_join_all(puts).await?;
        self.unsynced
            .extend(by_shard.iter().flatten().map(|(hash, _)| *hash));
        self.unsynced_blocks += blocks.len();
        if let Some(last) = blocks.last() {
            self.last_put = Some(last.height);
        }
        Ok(())
    }

    /// Syncs the archive, moves the marker to the last height put, then forgets the synced
    /// entries in memory.
    async fn sync(&mut self) -> Result<(), TxIndexError> {
        let Some(last) = self.last_put else {
            return Ok(());
        };
        if self.unsynced_blocks == 0 {
            return Ok(());
        }
        futures::future::try_join_all(self.shards.iter().map(sync_shard)).await?;
        let marker = self.marker.take().expect("not mid-sync");
        self.marker = Some(marker.put_sync(COVERED, last.get()).await?);
        let mut unwritten = self.unwritten.lock().expect("tx index lock poisoned");
        for hash in self.unsynced.drain(..) {
            unwritten.remove(&hash);
        }
        self.unsynced_blocks = 0;
        Ok(())
    }
}

/// Puts `entries` in `shard` from position `next` on.
async fn put_shard<E: Runtime>(
    shard: &SharedArchive<E>,
    next: &mut u64,
    entries: &[(TxHash, TxLocation)],
) -> Result<(), TxIndexError> {
    for chunk in entries.chunks(PUTS_PER_HOLD) {
        let mut slot = shard.lock().await;
        let mut archive = slot.take().expect("not mid-write");
        for (hash, location) in chunk {
            archive = archive.put(*next, TxKey::new(hash.0), location).await?;
            *next += 1;
        }
        *slot = Some(archive);
    }
    Ok(())
}

async fn sync_shard<E: Runtime>(shard: &SharedArchive<E>) -> Result<(), TxIndexError> {
    let mut slot = shard.lock().await;
    let archive = slot.take().expect("not mid-write");
    *slot = Some(archive.sync().await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
    use commonware_utils::{NZU16, NZUsize};

    /// A hash whose entry goes to `shard`.
    fn hash_in(shard: u8, n: u8) -> TxHash {
        let mut bytes = [n; 32];
        bytes[0] = shard;
        TxHash::from(bytes)
    }

    /// A data directory from before the index was sharded holds every entry in shard 0's
    /// partitions; each is still found, wherever its hash would go now, next to new entries.
    #[test]
    fn entries_of_the_unsharded_index_are_still_found() {
        deterministic::Runner::default().start(|context| async move {
            let cache = CacheRef::new(NZU16!(4_096), NZUsize!(64));
            let old = hash_in(3, 1);
            let location = TxLocation {
                height: Height(7),
                index: 2,
            };
            let unsharded: TxArchive<_> = immutable::Archive::init(
                context.child("old"),
                trellis_consensus::engine::archive_config("p", "ledger-transactions", &cache, ()),
            )
            .await
            .unwrap();
            let unsharded = unsharded
                .put(0, TxKey::new(old.0), &location)
                .await
                .unwrap();
            drop(unsharded.sync().await.unwrap());

            let index = TxIndex::open(context.child("index"), "p", &cache)
                .await
                .unwrap();
            assert_eq!(index.covered_at_open(), Some(Height(7)));
            assert_eq!(index.get(&old).await.unwrap(), Some(location));
            assert_eq!(index.get(&hash_in(3, 9)).await.unwrap(), None);
            index.close().await.unwrap();
        });
    }
}
