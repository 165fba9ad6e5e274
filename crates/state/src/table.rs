//! [`Table`]: one QMDB `current` database of the state (unordered keys) with its history index,
//! and what the store does the same way to each: apply a block's batch, make it durable, prune,
//! prove an operation of its log.
//!
//! The state is two tables (see `crate::qmdb`): *accounts* (variable-size values) and
//! *storage* (32-byte slot values). QMDB gives both one database type, generic over the log's
//! journal and the value encoding, which is what this type is generic over.

use crate::backend::{Batch, CHUNK, Db, Operation, OperationsProof, Runtime, TableName};
use crate::history_index::{BlockWrites, HistoryIndex};
use crate::{Corruption, StateError};
use commonware_codec::Codec;
use commonware_cryptography::sha256::Digest;
use commonware_storage::{
    journal::contiguous::Mutable,
    merkle::Location,
    qmdb::any::{
        ValueEncoding,
        unordered::{Operation as UnorderedOperation, Update},
    },
};
use std::{collections::VecDeque, num::NonZeroU64, sync::Arc};
use trellis_types::Height;

/// One state database and the index of the writes in its log.
pub(crate) struct Table<E: Runtime, C, V>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    /// `None` only while a write is under way, or after one failed (then every call errs).
    db: Option<Db<E, C, V>>,
    history: HistoryIndex<E>,
    /// Where each recent commit ended in the log (since this process started), oldest first:
    /// what pruning by blocks translates into log locations with.
    commit_ends: VecDeque<(Height, u64)>,
    /// Which table this is, for messages.
    table: TableName,
}

impl<E: Runtime, C, V> Table<E, C, V>
where
    V: ValueEncoding,
    C: Mutable<Item = Operation<V>>,
    Operation<V>: Codec,
{
    pub fn new(db: Db<E, C, V>, history: HistoryIndex<E>, table: TableName) -> Self {
        Self {
            db: Some(db),
            history,
            commit_ends: VecDeque::new(),
            table,
        }
    }

    pub fn db(&self) -> Result<&Db<E, C, V>, StateError> {
        self.db.as_ref().ok_or(StateError::Failed(self.table))
    }

    pub fn history(&self) -> &HistoryIndex<E> {
        &self.history
    }

    fn take(&mut self) -> Result<Db<E, C, V>, StateError> {
        self.db()?;
        Ok(self.db.take().expect("checked above"))
    }

    /// Checks that `batch` applies to the table as it is.
    pub fn validate(&self, batch: &Batch<V>) -> Result<(), StateError> {
        self.db()?
            .validate_batch(batch)
            .map_err(StateError::storage(self.table))
    }

    /// Records the block's writes in the index and makes them durable, while the batch is
    /// applied (appended to the log's buffers, published to readers). Returns the new root.
    /// The caller has checked the batch with [`validate`](Self::validate) (the store checks both
    /// tables' batches before either changes).
    ///
    /// The index is durable before the table's commit is (a crash in between makes the node
    /// execute this block again, and open cuts the index back; see `history_index`).
    pub async fn apply(
        &mut self,
        height: Height,
        batch: &Arc<Batch<V>>,
        writes: &BlockWrites,
    ) -> Result<Digest, StateError> {
        self.history.record(height, writes).await?;
        let db = self.take()?;
        let (indexed, applied) =
            futures::join!(self.history.commit(), db.apply_batch(batch.clone()));
        indexed?;
        let db = applied.map_err(StateError::storage(self.table))?;
        let root = db.root();
        self.db = Some(db);
        Ok(root)
    }

    /// Makes every applied batch durable.
    pub async fn commit(&mut self) -> Result<(), StateError> {
        let db = self.take()?;
        self.db = Some(db.commit().await.map_err(StateError::storage(self.table))?);
        Ok(())
    }

    /// The log's retained operations, `[first, end)`: pruning moves `first` up.
    pub fn retained(&self) -> Result<std::ops::Range<u64>, StateError> {
        let bounds = self.db()?.bounds();
        Ok(*bounds.start..*bounds.end)
    }

    /// Prunes operations of blocks older than the last `keep` commits (the newest is `height`),
    /// as far as QMDB allows (only wholly inactive log sections go).
    pub async fn prune(&mut self, keep: u64, height: Height) -> Result<(), StateError> {
        let end = *self.db()?.bounds().end;
        self.commit_ends.push_back((height, end));
        let oldest_kept = height.get().saturating_sub(keep);
        let mut prune_to = None;
        while let Some(&(h, end)) = self.commit_ends.front() {
            if h.get() > oldest_kept {
                break;
            }
            prune_to = Some(end);
            self.commit_ends.pop_front();
        }
        let Some(prune_to) = prune_to else {
            return Ok(());
        };
        let db = self.db()?;
        let target = Location::new(prune_to).min(db.sync_boundary());
        if target <= db.bounds().start {
            return Ok(());
        }
        let db = self.take()?;
        self.db = Some(
            db.prune(target)
                .await
                .map_err(StateError::storage(self.table))?,
        );
        Ok(())
    }

    /// One operation of the log with its range proof (and bitmap chunks) against the table's
    /// root.
    pub async fn prove_operation(
        &self,
        location: u64,
    ) -> Result<(OperationsProof, Operation<V>, Vec<[u8; CHUNK]>), StateError> {
        let one = NonZeroU64::new(1).expect("non-zero");
        let (proof, operations, chunks) = self
            .db()?
            .range_proof(Location::new(location), one)
            .await
            .map_err(StateError::storage(self.table))?;
        let operation = operations
            .into_iter()
            .next()
            .ok_or(Corruption::NoOperation {
                table: self.table,
                location,
            })?;
        Ok((proof, operation, chunks))
    }
}

/// Where in the table's log the block's tracked writes landed: the merkleized batch's operations
/// are the block's writes (in the order given), then the floor walk's moves of older entries
/// (not writes: their values are unchanged), then the commit.
pub(crate) fn locate_writes<V: ValueEncoding>(
    batch: &Batch<V>,
    mut tracked: crate::entry::DigestMap<Option<u32>>,
) -> BlockWrites
where
    Operation<V>: Codec,
{
    let (start, operations) = batch.operations();
    let start = *start;
    let end = start + operations.len() as u64 - 1;
    assert!(
        matches!(operations.last(), Some(UnorderedOperation::CommitFloor(..))),
        "a block's operations end with its commit"
    );
    let mut writes = Vec::with_capacity(tracked.len());
    for (offset, operation) in operations.iter().enumerate() {
        // Once every write is found, the rest are the floor walk's moves.
        if tracked.is_empty() {
            break;
        }
        let key = match operation {
            UnorderedOperation::Update(Update(key, _)) | UnorderedOperation::Delete(key) => key,
            UnorderedOperation::CommitFloor(..) => continue,
        };
        // The first operation of a key is the block's write; a later one would be a move.
        if let Some(tx) = tracked.remove(key) {
            writes.push((*key, tx, start + offset as u64));
        }
    }
    BlockWrites { writes, start, end }
}
