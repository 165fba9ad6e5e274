//! Staging a block: its change set turned into one merkleized QMDB batch per table, forked from
//! the parent's, which yields the block's state root and writes nothing.

use super::{
    ACCOUNTS, AccountsDb, QmdbConfig, QmdbStore, Record, STORAGE, StorageDb, floor::QuarterFloor,
};
use crate::backend::{AccountsEncoding, Batch, CHUNK, Family, Runtime, StorageEncoding, block_on};
use crate::history_index::BlockWrites;
use crate::roots::TableRoots;
use crate::table::locate_writes;
use crate::{
    ChangeSet, StateError, StateStore,
    entry::{DigestMap, SlotKeys, SlotWord, StateKey, StateValue, height_word, slot_word},
};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::Runner as _;
use commonware_storage::qmdb::{any::batch::Slot, current};
use std::sync::Arc;
use trellis_types::{Height, StateRoot};

/// A block's state ahead of finality: its changes merkleized on top of its parent's, in both
/// tables.
pub struct Staged {
    pub(super) height: Height,
    pub(super) roots: TableRoots,
    pub(super) accounts: Arc<Batch<AccountsEncoding>>,
    pub(super) storage: Arc<Batch<StorageEncoding>>,
    /// What the history indexes record for this block once it is committed.
    pub(super) account_writes: BlockWrites,
    pub(super) slot_writes: BlockWrites,
}

impl Staged {
    /// The root the store will have once this block is committed.
    pub fn root(&self) -> StateRoot {
        self.roots.state_root()
    }
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("height", &self.height)
            .field("root", &self.root())
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl<E: Runtime> QmdbStore<E> {
    /// [`StateStore::stage`]: forks a batch per table from the parent's (or from committed
    /// state) and merkleizes them.
    pub(super) fn stage_block(
        &self,
        parent: Option<&Staged>,
        height: Height,
        changes: &ChangeSet,
    ) -> Result<Staged, StateError> {
        let expected = parent.map_or_else(|| self.next_height(), |p| p.height.next());
        if height != expected {
            return Err(StateError::NonSequentialCommit {
                expected,
                got: height,
            });
        }
        let (accounts_db, storage_db) = (self.accounts.db()?, self.storage.db()?);
        let (accounts_batch, storage_batch) = match parent {
            Some(parent) => (
                parent.accounts.new_batch::<Sha256>(),
                parent.storage.new_batch::<Sha256>(),
            ),
            None => (accounts_db.new_batch(), storage_db.new_batch()),
        };
        let ((accounts, tracked_accounts), slots) =
            stage_accounts(accounts_db, accounts_batch, changes, height)?;
        let (storage, tracked_slots) = stage_slots(storage_db, storage_batch, slots, height)?;
        let roots = TableRoots::new(accounts.root(), storage.root());
        Ok(Staged {
            height,
            roots,
            account_writes: locate_writes(&accounts, tracked_accounts),
            slot_writes: locate_writes(&storage, tracked_slots),
            accounts,
            storage,
        })
    }
}

/// The root of a fresh store after committing `changes` at height 0: the genesis state root,
/// computed in memory without a data directory (for `trellis init`, which prints block 0's hash).
///
/// Runs its own deterministic runtime, so it must not be called from inside one.
pub fn genesis_root(changes: &ChangeSet) -> Result<StateRoot, StateError> {
    let changes = changes.clone();
    commonware_runtime::deterministic::Runner::default().start(|context| async move {
        let mut config = QmdbConfig::new("genesis");
        config.page_cache_bytes = 1 << 20;
        let mut store = QmdbStore::open(context, &config).await?;
        let staged = store.stage(None, Height::GENESIS, &changes)?;
        store.commit(&staged).await
    })
}

/// The slots one block writes, as the storage table's staged path takes them: each key, its
/// write, and the transaction that wrote it (what the history index records).
struct SlotWrites {
    keys: Vec<Digest>,
    writes: Vec<Slot<SlotWord>>,
    tracked: DigestMap<Option<u32>>,
}

impl SlotWrites {
    fn with_capacity(slots: usize) -> Self {
        Self {
            keys: Vec::with_capacity(slots),
            writes: Vec::with_capacity(slots),
            tracked: DigestMap::with_capacity_and_hasher(slots, Default::default()),
        }
    }

    fn push(&mut self, key: Digest, write: Slot<SlotWord>, tx: Option<u32>) {
        self.keys.push(key);
        self.writes.push(write);
        self.tracked.insert(key, tx);
    }
}
/// A table's batch for one block, before merkleization.
type Unmerkleized<V> = current::batch::UnmerkleizedBatch<
    Family,
    Sha256,
    commonware_storage::qmdb::any::unordered::Update<Digest, V>,
    CHUNK,
    Sequential,
>;
/// A table's merkleized batch for one block, and the keys it writes with the transaction that
/// wrote each (what the history index records).
type Merkleized<V> = (Arc<Batch<V>>, DigestMap<Option<u32>>);

/// Turns one block's account and code changes into the accounts table's merkleized batch,
/// through QMDB's staged path: every key the block writes is read first (`stage`), then written
/// through its read slot. Reading first costs nothing extra, because merkleize would otherwise
/// read each written key's previous operation itself; and staged writes skip the batch's sorted
/// map of mutations. QMDB guarantees that both paths give the same operations and root, so this
/// is not part of the protocol.
///
/// Returns the batch, the account entries written (each with the transaction that wrote it:
/// what the history index records), and the block's slot writes, whose keys depend on the
/// storage generations just read.
fn stage_accounts<E: Runtime>(
    db: &AccountsDb<E>,
    batch: Unmerkleized<AccountsEncoding>,
    changes: &ChangeSet,
    height: Height,
) -> Result<(Merkleized<AccountsEncoding>, SlotWrites), StateError> {
    // The entries whose stored values decide the writes: each account's (whether it exists,
    // its storage generation) and each code's (written once).
    let accounts: Vec<_> = changes.accounts().collect();
    let codes: Vec<_> = changes.codes().collect();
    let keys: Vec<Digest> = accounts
        .iter()
        .map(|(address, _)| StateKey::Account(**address).digest())
        .chain(
            codes
                .iter()
                .map(|(hash, _)| StateKey::Code(**hash).digest()),
        )
        .collect();
    let refs: Vec<&Digest> = keys.iter().collect();
    let (stored, staged) =
        block_on(batch.stage(&refs, db)).map_err(StateError::storage(ACCOUNTS))?;
    let mut stored = stored.into_iter();
    let slot_count: usize = accounts.iter().map(|(_, c)| c.storage.len()).sum();
    let mut writes = Vec::with_capacity(keys.len());
    let mut tracked = DigestMap::with_capacity_and_hasher(accounts.len(), Default::default());
    let mut slots = SlotWrites::with_capacity(slot_count);
    for ((address, change), digest) in accounts.iter().zip(&keys) {
        let key = StateKey::Account(**address);
        let before = Record::from_stored(&key, stored.next().expect("one value per key"))?;
        let Some(account) = change.account else {
            // Deleting an account that never existed (an empty account touched and removed
            // within one block) leaves nothing behind.
            writes.push(match before.exists {
                true => {
                    tracked.insert(*digest, change.written_by);
                    let generation = before.generation + 1;
                    Slot::Put(StateValue::Retired { generation })
                }
                false => Slot::Keep,
            });
            continue;
        };
        let generation = match change.storage_wiped && before.exists {
            true => before.generation + 1,
            false => before.generation,
        };
        tracked.insert(*digest, change.written_by);
        writes.push(Slot::Put(StateValue::Account {
            account,
            generation,
        }));
        // Both maps are in slot order: walk them together rather than look each slot up.
        let mut written_by = change.slots_written_by.iter().peekable();
        let slot_keys = SlotKeys::new(address, generation);
        for (slot, value) in &change.storage {
            while written_by.next_if(|(other, _)| *other < slot).is_some() {}
            let tx = written_by
                .next_if(|(other, _)| *other == slot)
                .map(|(_, tx)| *tx);
            let write = match value.is_zero() {
                true => Slot::Delete,
                false => Slot::Put(slot_word(value)),
            };
            slots.push(slot_keys.key(slot), write, tx);
        }
    }
    for (_, code) in &codes {
        writes.push(match stored.next().expect("one value per key") {
            None => Slot::Put(StateValue::Code((*code).clone())),
            Some(_) => Slot::Keep,
        });
    }
    let metadata = Some(StateValue::Commit(height));
    let batch = block_on(staged.merkleize(writes, Vec::new(), metadata, db, &mut QuarterFloor))
        .map_err(StateError::storage(ACCOUNTS))?;
    Ok(((batch, tracked), slots))
}

/// Turns one block's slot writes into the storage table's merkleized batch, through the staged
/// path (see [`stage_accounts`]).
fn stage_slots<E: Runtime>(
    db: &StorageDb<E>,
    batch: Unmerkleized<StorageEncoding>,
    slots: SlotWrites,
    height: Height,
) -> Result<Merkleized<StorageEncoding>, StateError> {
    let SlotWrites {
        keys,
        writes,
        tracked,
    } = slots;
    let refs: Vec<&Digest> = keys.iter().collect();
    let (_, staged) = block_on(batch.stage(&refs, db)).map_err(StateError::storage(STORAGE))?;
    let metadata = Some(height_word(height));
    let batch = block_on(staged.merkleize(writes, Vec::new(), metadata, db, &mut QuarterFloor))
        .map_err(StateError::storage(STORAGE))?;
    Ok((batch, tracked))
}
