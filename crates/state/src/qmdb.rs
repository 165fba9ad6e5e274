//! [`QmdbStore`]: the world state, durable and authenticated, on commonware-storage QMDB
//! (`current` variant, unordered keys, variable values; see [`crate::entry`] for the layout).
//!
//! # One commit per block
//! A block's change set becomes one QMDB batch whose commit metadata names the block's height.
//! [`QmdbStore::stage`] forks it from its parent's batch (or from committed state) and
//! merkleizes it, which yields the root the block's header carries; nothing is written. When
//! the block is final, [`QmdbStore::commit`] applies the batch and makes it durable. A staged
//! block that loses its view is dropped with its batch; its siblings' batches go stale in QMDB
//! and can no longer be applied, which is exactly what consensus needs.
//!
//! # Reading synchronously
//! The EVM reads state synchronously, and QMDB reads are `async`. Reads (and staging) therefore
//! drive QMDB's futures to completion on the calling thread with [`block_on`]. That is sound
//! because those futures never wait on another task of the runtime: they resolve from memory
//! (index, page cache) or from a blocking file read, which the tokio runtime runs on its
//! blocking pool and the deterministic runtime resolves from memory.

use crate::history::{History, HistoryEntry, HistoryValue, Operation, OperationProof, WriteProof};
use crate::history_index::{BlockWrites, HistoryIndex};
use crate::layout::LayoutRecord;
use crate::{
    Account, ChangeSet, StateError, StateReader, StateStore,
    entry::{DigestMap, StateKey, StateValue},
};
use alloy_primitives::{Address, B256, Bytes, U256};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::Runner as _;
use commonware_runtime::{
    BLOB_PAGE_SIZE,
    buffer::paged::{CacheRef, page_size},
};
use commonware_storage::{
    journal::contiguous::variable::Config as JournalConfig,
    merkle::{Location, full::Config as MerkleConfig},
    mmr,
    qmdb::{
        any::{batch::Slot, unordered::variable::Update},
        current::{self, VariableConfig, batch::MerkleizedBatch},
        floor::{Decision, Entry, Limits, Policy},
    },
    translator::EightCap,
};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    sync::Arc,
};
use trellis_types::{Height, StateRoot};

/// Bytes of one bitmap chunk of the `current` database (256 operations per chunk).
pub(crate) const CHUNK: usize = 32;

/// What the store needs of its runtime: storage, a clock, metrics and spawning.
pub trait Runtime:
    commonware_runtime::Storage
    + commonware_runtime::Clock
    + commonware_runtime::Metrics
    + commonware_runtime::Spawner
{
}

impl<T> Runtime for T where
    T: commonware_runtime::Storage
        + commonware_runtime::Clock
        + commonware_runtime::Metrics
        + commonware_runtime::Spawner
{
}

pub(crate) type Family = mmr::Family;
type Db<E> = current::unordered::variable::Db<
    Family,
    E,
    Digest,
    StateValue,
    Sha256,
    EightCap,
    CHUNK,
    Sequential,
>;
/// The database type with a runtime that is never started: for verifying proofs, which needs
/// no storage.
pub(crate) type VerifierDb = Db<commonware_runtime::deterministic::Context>;
type Batch = MerkleizedBatch<Family, Digest, Update<Digest, StateValue>, CHUNK, Sequential>;
type Unmerkleized = current::batch::UnmerkleizedBatch<
    Family,
    Sha256,
    Update<Digest, StateValue>,
    CHUNK,
    Sequential,
>;

/// Where and how the state is stored.
#[derive(Clone, Debug)]
pub struct QmdbConfig {
    /// Prefix of the store's storage partitions.
    pub partition_prefix: String,
    /// Memory for cached pages of the operation log and Merkle nodes. Throughput depends on it
    /// holding the hot working set: measured here over a million accounts, 256 MiB commits ~4×
    /// more updates per second than 16 MiB, and 512 MiB ~2× more than 256 MiB.
    pub page_cache_bytes: usize,
    /// Operations per log file.
    pub items_per_section: NonZeroU64,
    /// How much history to keep: `None` (the default, for a ledger) keeps every operation, so
    /// every past value stays provable; `Some(n)` lets operations older than the last `n`
    /// committed blocks be pruned once they are inactive (superseded), freeing disk.
    pub keep_blocks: Option<u64>,
}

impl QmdbConfig {
    /// Defaults sized for a validator: a 512 MiB page cache.
    pub fn new(partition_prefix: impl Into<String>) -> Self {
        Self {
            partition_prefix: partition_prefix.into(),
            page_cache_bytes: 512 << 20,
            items_per_section: NonZeroU64::new(65_536).expect("non-zero"),
            keep_blocks: None,
        }
    }

    /// One page cache for the log and the Merkle nodes.
    fn page_cache(&self) -> CacheRef {
        let page = page_size(BLOB_PAGE_SIZE);
        let pages = (self.page_cache_bytes / BLOB_PAGE_SIZE as usize).max(16);
        CacheRef::new(page, NonZeroUsize::new(pages).expect("at least 16 pages"))
    }

    /// Entries of the `(location -> key)` cache QMDB uses while rebuilding its index at open
    /// (freed once open). A key's update replays against the location of its previous update,
    /// which is far back in the log; a hit saves reading and decoding that operation again. One
    /// entry (~41 bytes) per 256 bytes of page cache: 2,097,152 for the 512 MiB default, which
    /// halved reopening 2,000,000 entries against 65,536 (7–8 s to ~3.5 s).
    fn init_cache_entries(&self) -> usize {
        (self.page_cache_bytes / 256).max(1 << 16)
    }

    fn qmdb(&self) -> VariableConfig<EightCap, ((), ()), Sequential> {
        let cache = self.page_cache();
        let buffer = NonZeroUsize::new(1 << 20).expect("non-zero");
        let prefix = &self.partition_prefix;
        VariableConfig {
            merkle_config: MerkleConfig {
                journal_partition: format!("{prefix}-state-merkle"),
                metadata_partition: format!("{prefix}-state-merkle-meta"),
                items_per_blob: self.items_per_section,
                write_buffer: buffer,
                replay_buffer: buffer,
                strategy: Sequential,
                page_cache: cache.clone(),
            },
            journal_config: JournalConfig {
                partition: format!("{prefix}-state-log"),
                items_per_section: self.items_per_section,
                compression: None,
                codec_config: ((), ()),
                page_cache: cache,
                write_buffer: buffer,
                replay_buffer: buffer,
            },
            grafted_metadata_partition: format!("{prefix}-state-grafted"),
            translator: EightCap,
            init_cache: NonZeroUsize::new(self.init_cache_entries()),
            init_buffer: buffer,
            init_concurrency: (),
        }
    }
}

/// A block's state ahead of finality: its changes merkleized on top of its parent's.
pub struct Staged {
    height: Height,
    root: StateRoot,
    batch: Arc<Batch>,
    /// What the history index records for this block once it is committed.
    writes: BlockWrites,
}

impl Staged {
    /// The root the store will have once this block is committed.
    pub fn root(&self) -> StateRoot {
        self.root
    }
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("height", &self.height)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// The world state on QMDB: one batch per block, staged on its parent's, committed once final.
pub struct QmdbStore<E: Runtime> {
    /// `None` only while a commit is under way, or after one failed (then every call errs).
    db: Option<Db<E>>,
    committed: Option<(Height, StateRoot)>,
    keep_blocks: Option<u64>,
    history: HistoryIndex<E>,
    /// Where each recent commit ended in the log (since this process started), oldest first:
    /// what pruning by blocks translates into log locations with.
    commit_ends: std::collections::VecDeque<(Height, u64)>,
}

fn backend<T: std::fmt::Display>(error: T) -> StateError {
    StateError::Backend(error.to_string())
}

/// Drives `future` to completion on this thread.
///
/// Unconstrained by tokio's cooperative budget: the budget belongs to the task this thread is
/// polling, and it is only refilled when that task yields to the scheduler, which a blocked
/// thread never does. A constrained storage read would then return `Pending` and wake itself
/// forever, spinning at full CPU (observed once the state outgrew the page cache).
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(tokio::task::unconstrained(future))
}

fn failed() -> StateError {
    StateError::Backend("the state store failed during an earlier commit; restart the node".into())
}

fn root_of(digest: Digest) -> StateRoot {
    StateRoot(B256::from(digest.0))
}

fn corrupt(key: &StateKey, value: &StateValue) -> StateError {
    StateError::Backend(format!(
        "stored state is corrupt: {key:?} holds a {} value",
        value.kind()
    ))
}

impl<E: Runtime> QmdbStore<E> {
    /// Opens the store under `config.partition_prefix`, empty if nothing is stored there yet.
    /// The state comes back as of the last commit that completed.
    pub async fn open(context: E, config: &QmdbConfig) -> Result<Self, StateError> {
        let opening = |reason: String| StateError::Open {
            partitions: config.partition_prefix.clone(),
            reason,
        };
        let history_context = context.child("history");
        // The layout is checked before QMDB reads a log that another layout may have written.
        let layout = LayoutRecord::open(context.child("layout"), &config.partition_prefix)
            .await
            .map_err(opening)?;
        let recorded = layout.check().map_err(opening)?;
        let db = Db::init(context, config.qmdb(), None)
            .await
            .map_err(|e| opening(e.to_string()))?;
        let committed = match db
            .get_metadata()
            .await
            .map_err(|e| opening(e.to_string()))?
        {
            None => None,
            Some(StateValue::Commit(height)) => Some((height, root_of(db.root()))),
            Some(other) => {
                return Err(opening(format!(
                    "its last commit carries a {} value",
                    other.kind()
                )));
            }
        };
        layout
            .settle(recorded, committed.is_some())
            .await
            .map_err(opening)?;
        let history = HistoryIndex::open(
            history_context,
            &config.partition_prefix,
            history_cache(),
            committed.map(|(height, _)| height),
        )
        .await
        .map_err(|e| opening(e.to_string()))?;
        Ok(Self {
            db: Some(db),
            committed,
            keep_blocks: config.keep_blocks,
            history,
            commit_ends: std::collections::VecDeque::new(),
        })
    }

    fn db(&self) -> Result<&Db<E>, StateError> {
        self.db.as_ref().ok_or_else(failed)
    }

    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        block_on(self.db()?.get(&key.digest())).map_err(backend)
    }
}

impl<E: Runtime> StateStore for QmdbStore<E> {
    type Staged = Staged;

    fn committed(&self) -> Option<(Height, StateRoot)> {
        self.committed
    }

    /// Forks a batch from the parent's (or from committed state) and merkleizes it.
    fn stage(
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
        let db = self.db()?;
        let batch = match parent {
            Some(parent) => parent.batch.new_batch::<Sha256>(),
            None => db.new_batch(),
        };
        let (batch, tracked) = stage_changes(db, batch, changes, height)?;
        let writes = locate_writes(&batch, tracked);
        Ok(Staged {
            height,
            root: root_of(batch.root()),
            batch,
            writes,
        })
    }

    /// Applies the staged batch and makes it durable.
    async fn commit(&mut self, staged: &Staged) -> Result<StateRoot, StateError> {
        let root = self.apply(staged).await?;
        self.sync().await?;
        Ok(root)
    }
}

impl<E: Runtime> QmdbStore<E> {
    /// The first half of [`commit`](StateStore::commit): publishes the staged block to readers
    /// and appends it to the log, without waiting for the disk. A crash before
    /// [`sync`](Self::sync) returns the store to its previous commit.
    pub async fn apply(&mut self, staged: &Staged) -> Result<StateRoot, StateError> {
        let expected = self.next_height();
        if staged.height != expected {
            return Err(StateError::NonSequentialCommit {
                expected,
                got: staged.height,
            });
        }
        self.db()?.validate_batch(&staged.batch).map_err(backend)?;
        // The index is durable before the state's commit is (a crash in between makes the node
        // execute this block again, and open cuts the index back; see `history_index`). Its
        // disk writes overlap applying the batch, which only appends to the log's buffers.
        self.history.record(staged.height, &staged.writes).await?;
        let db = self.db.take().expect("checked above");
        let (indexed, applied) =
            futures::join!(self.history.commit(), db.apply_batch(staged.batch.clone()));
        indexed?;
        let db = applied.map_err(backend)?;
        let root = root_of(db.root());
        assert_eq!(root, staged.root, "an applied batch keeps its staged root");
        self.db = Some(db);
        self.committed = Some((staged.height, root));
        Ok(root)
    }

    /// The second half of [`commit`](StateStore::commit): makes every applied block durable,
    /// then prunes history beyond [`QmdbConfig::keep_blocks`], if set.
    pub async fn sync(&mut self) -> Result<(), StateError> {
        let db = self.db.take().ok_or_else(failed)?;
        self.db = Some(db.commit().await.map_err(backend)?);
        self.prune().await
    }

    /// The log's retained operations, `[first, end)`: pruning moves `first` up.
    pub fn retained_operations(&self) -> Result<std::ops::Range<u64>, StateError> {
        let bounds = self.db()?.bounds();
        Ok(*bounds.start..*bounds.end)
    }

    /// Prunes operations older than the last `keep_blocks` commits, as far as QMDB allows
    /// (only wholly inactive log sections go).
    async fn prune(&mut self) -> Result<(), StateError> {
        let (Some(keep), Some((height, _))) = (self.keep_blocks, self.committed) else {
            return Ok(());
        };
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
        let db = self.db.as_ref().ok_or_else(failed)?;
        let target = Location::new(prune_to).min(db.sync_boundary());
        if target <= db.bounds().start {
            return Ok(());
        }
        let db = self.db.take().ok_or_else(failed)?;
        self.db = Some(db.prune(target).await.map_err(backend)?);
        Ok(())
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

/// Turns one block's changes into a merkleized batch through QMDB's staged path: every key the
/// block writes is read first (`stage`, `expand`), then written through its read slot. Reading
/// first costs nothing extra, because merkleize would otherwise read each written key's previous
/// operation itself; and staged writes skip the batch's sorted map of mutations. Measured on the
/// state benchmark, this is ~15 % less CPU per update than plain writes. QMDB guarantees that
/// both paths give the same operations and root, so this is not part of the protocol.
///
/// Returns the batch with the account and slot entries written, each with the transaction that
/// wrote it: what the history index records.
fn stage_changes<E: Runtime>(
    db: &Db<E>,
    batch: Unmerkleized,
    changes: &ChangeSet,
    height: Height,
) -> Result<(Arc<Batch>, DigestMap<Option<u32>>), StateError> {
    // First the entries whose stored values decide the writes: each account's (whether it
    // exists, its storage generation) and each code's (written once).
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
    let (stored, staged) = block_on(batch.stage(&refs, db)).map_err(backend)?;
    let mut stored = stored.into_iter();
    let slot_count: usize = accounts.iter().map(|(_, c)| c.storage.len()).sum();
    let mut slots = Vec::with_capacity(keys.len() + slot_count);
    let mut tracked =
        DigestMap::with_capacity_and_hasher(accounts.len() + slot_count, Default::default());
    let mut slot_keys = Vec::with_capacity(slot_count);
    let mut slot_writes = Vec::with_capacity(slot_count);
    for ((address, change), digest) in accounts.iter().zip(&keys) {
        let key = StateKey::Account(**address);
        let before = Record::from_stored(&key, stored.next().expect("one value per key"))?;
        let Some(account) = change.account else {
            // Deleting an account that never existed (an empty account touched and removed
            // within one block) leaves nothing behind.
            slots.push(match before.exists {
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
        slots.push(Slot::Put(StateValue::Account {
            account,
            generation,
        }));
        // Both maps are in slot order: walk them together rather than look each slot up.
        let mut written_by = change.slots_written_by.iter().peekable();
        for (slot, value) in &change.storage {
            while written_by.next_if(|(other, _)| *other < slot).is_some() {}
            let tx = written_by
                .next_if(|(other, _)| *other == slot)
                .map(|(_, tx)| *tx);
            let digest = StateKey::Slot {
                address: **address,
                generation,
                slot: *slot,
            }
            .digest();
            tracked.insert(digest, tx);
            slot_keys.push(digest);
            slot_writes.push(match value.is_zero() {
                true => Slot::Delete,
                false => Slot::Put(StateValue::Slot(*value)),
            });
        }
    }
    for (_, code) in &codes {
        slots.push(match stored.next().expect("one value per key") {
            None => Slot::Put(StateValue::Code((*code).clone())),
            Some(_) => Slot::Keep,
        });
    }
    // Then the slots, whose keys depend on the generations just read.
    let staged = match slot_keys.is_empty() {
        true => staged,
        false => {
            let refs: Vec<&Digest> = slot_keys.iter().collect();
            block_on(staged.expand(&refs, db)).map_err(backend)?.2
        }
    };
    slots.append(&mut slot_writes);
    let metadata = Some(StateValue::Commit(height));
    let batch = block_on(staged.merkleize(slots, Vec::new(), metadata, db, &mut QuarterFloor))
        .map_err(backend)?;
    Ok((batch, tracked))
}

/// An account entry as stored: whether the account exists and which storage generation it
/// (or an account created there next) uses.
#[derive(Clone, Copy, Debug)]
struct Record {
    account: Option<Account>,
    exists: bool,
    generation: u64,
}

impl Record {
    fn from_stored(key: &StateKey, value: Option<StateValue>) -> Result<Self, StateError> {
        match value {
            None => Ok(Self {
                account: None,
                exists: false,
                generation: 0,
            }),
            Some(StateValue::Account {
                account,
                generation,
            }) => Ok(Self {
                account: Some(account),
                exists: true,
                generation,
            }),
            Some(StateValue::Retired { generation }) => Ok(Self {
                account: None,
                exists: false,
                generation,
            }),
            Some(other) => Err(corrupt(key, &other)),
        }
    }
}

impl<E: Runtime> QmdbStore<E> {
    fn record(&self, address: &Address) -> Result<Record, StateError> {
        let key = StateKey::Account(*address);
        Record::from_stored(&key, self.get(&key)?)
    }
}

impl<E: Runtime> QmdbStore<E> {
    /// Proofs of `address`'s account and of `slots`, against the root of the last commit.
    pub async fn prove(
        &self,
        address: &Address,
        slots: &[U256],
    ) -> Result<crate::StateProof, StateError> {
        let db = self.db()?;
        let key = StateKey::Account(*address);
        let record = Record::from_stored(&key, db.get(&key.digest()).await.map_err(backend)?)?;
        let account = match record.account {
            None => None,
            Some(account) => {
                let proof = db.key_value_proof(key.digest()).await.map_err(backend)?;
                Some(crate::AccountProof {
                    nonce: alloy_primitives::U64::from(account.nonce),
                    balance: account.balance,
                    code_hash: account.code_hash,
                    storage_generation: alloy_primitives::U64::from(record.generation),
                    proof: crate::proof::encode(&proof),
                })
            }
        };
        let mut storage = Vec::with_capacity(slots.len());
        for slot in slots {
            let key = StateKey::Slot {
                address: *address,
                generation: record.generation,
                slot: *slot,
            };
            let stored = match record.exists {
                true => db.get(&key.digest()).await.map_err(backend)?,
                false => None,
            };
            let proven = match stored {
                None => crate::SlotProof {
                    key: *slot,
                    value: U256::ZERO,
                    proof: None,
                },
                Some(StateValue::Slot(value)) => crate::SlotProof {
                    key: *slot,
                    value,
                    proof: Some(crate::proof::encode(
                        &db.key_value_proof(key.digest()).await.map_err(backend)?,
                    )),
                },
                Some(other) => return Err(corrupt(&key, &other)),
            };
            storage.push(proven);
        }
        Ok(crate::StateProof {
            address: *address,
            account,
            storage,
        })
    }
}

impl<E: Runtime> QmdbStore<E> {
    /// The history of `address`'s account entry (`slot` = `None`) or of one of its storage
    /// slots, in every generation of its storage: the newest `limit` writes, oldest first, each
    /// proven against the root of the last commit. Writes whose operations were pruned
    /// ([`QmdbConfig::keep_blocks`]) are left out, and `truncated` says so.
    pub async fn history(
        &self,
        address: &Address,
        slot: Option<U256>,
        limit: usize,
    ) -> Result<History, StateError> {
        let keys: Vec<StateKey> = match slot {
            None => vec![StateKey::Account(*address)],
            Some(slot) => {
                let key = StateKey::Account(*address);
                let stored = self.db()?.get(&key.digest()).await.map_err(backend)?;
                let generation = Record::from_stored(&key, stored)?.generation;
                (0..=generation)
                    .rev()
                    .map(|generation| StateKey::Slot {
                        address: *address,
                        generation,
                        slot,
                    })
                    .collect()
            }
        };
        let retained_from = *self.db()?.bounds().start;
        let mut found = Vec::new();
        let mut truncated = false;
        for key in keys {
            let remaining = limit - found.len();
            let records = self.history.records(&key.digest(), remaining + 1).await?;
            for record in records {
                let provable = record.block.start.saturating_sub(1) >= retained_from;
                if found.len() == limit || !provable {
                    truncated = true;
                    break;
                }
                found.push((key, record));
            }
            if truncated {
                break;
            }
        }
        found.sort_by_key(|(_, found)| found.record.height);
        let mut entries = Vec::with_capacity(found.len());
        for (key, record) in found {
            entries.push(self.prove_write(&key, &record).await?);
        }
        Ok(History {
            address: *address,
            slot,
            entries,
            truncated,
        })
    }

    /// One operation of the log with its range proof against the last commit's root.
    async fn prove_operation(
        &self,
        location: u64,
    ) -> Result<(OperationProof, Operation), StateError> {
        let one = NonZeroU64::new(1).expect("non-zero");
        let (proof, operations, chunks) = self
            .db()?
            .range_proof(Location::new(location), one)
            .await
            .map_err(backend)?;
        let operation = operations.into_iter().next().ok_or_else(|| {
            StateError::Backend(format!(
                "no operation at location {location} of the state log"
            ))
        })?;
        let encoded = OperationProof::encode(location, &proof, &operation, &chunks);
        Ok((encoded, operation))
    }

    async fn prove_write(
        &self,
        key: &StateKey,
        found: &crate::history_index::Found,
    ) -> Result<HistoryEntry, StateError> {
        let (record, block) = (&found.record, &found.block);
        let (write, operation) = self.prove_operation(record.location).await?;
        let value = HistoryValue::from_operation(key, &operation).ok_or_else(|| {
            StateError::Backend(format!(
                "the history index points {key:?} at block {} to an operation that does not write it",
                record.height
            ))
        })?;
        let (commit, _) = self.prove_operation(block.end).await?;
        let previous_commit = match block.start.checked_sub(1) {
            None => None,
            Some(location) => Some(self.prove_operation(location).await?.0),
        };
        Ok(HistoryEntry {
            block_number: alloy_primitives::U64::from(record.height.get()),
            transaction_index: record.tx.map(alloy_primitives::U64::from),
            transaction_hash: None,
            value,
            proof: WriteProof {
                previous_commit,
                write,
                commit,
            },
        })
    }
}

impl<E: Runtime> StateReader for QmdbStore<E> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        Ok(self.record(address)?.account)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        let record = self.record(address)?;
        if !record.exists {
            return Ok(U256::ZERO);
        }
        let key = StateKey::Slot {
            address: *address,
            generation: record.generation,
            slot: *slot,
        };
        match self.get(&key)? {
            None => Ok(U256::ZERO),
            Some(StateValue::Slot(value)) => Ok(value),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        let key = StateKey::Code(*code_hash);
        match self.get(&key)? {
            None => Ok(None),
            Some(StateValue::Code(code)) => Ok(Some(code)),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }
}

/// Where in the log the block's tracked writes landed: the merkleized batch's operations are
/// the block's writes (in the order given), then the floor walk's moves of older entries (not
/// writes: their values are unchanged), then the commit.
fn locate_writes(batch: &Batch, mut tracked: DigestMap<Option<u32>>) -> BlockWrites {
    let (start, operations) = batch.operations();
    let start = *start;
    let end = start + operations.len() as u64 - 1;
    assert!(
        matches!(operations.last(), Some(Operation::CommitFloor(..))),
        "a block's operations end with its commit"
    );
    let mut writes = Vec::with_capacity(tracked.len());
    for (offset, operation) in operations.iter().enumerate() {
        // Once every write is found, the rest are the floor walk's moves.
        if tracked.is_empty() {
            break;
        }
        let key = match operation {
            Operation::Update(commonware_storage::qmdb::any::unordered::Update(key, _))
            | Operation::Delete(key) => key,
            Operation::CommitFloor(..) => continue,
        };
        // The first operation of a key is the block's write; a later one would be a move.
        if let Some(tx) = tracked.remove(key) {
            writes.push((*key, tx, start + offset as u64));
        }
    }
    BlockWrites { writes, start, end }
}

/// The history index's own page cache, so that reading histories never evicts the state's pages.
fn history_cache() -> CacheRef {
    let pages = (16 << 20) / BLOB_PAGE_SIZE as usize;
    CacheRef::new(
        page_size(BLOB_PAGE_SIZE),
        NonZeroUsize::new(pages).expect("non-zero"),
    )
}

/// How each block advances QMDB's inactivity floor: one active entry moved to the tip for every
/// four operations the block made inactive (QMDB's `Proportional` moves one for each).
///
/// Moves exist to let pruning reclaim old log sections and to bound the log a restart replays;
/// a ledger that keeps every operation (the default) reclaims nothing, so each move is pure
/// cost: a read and a write, and more log to replay at restart than to prune. The policy
/// decides which operations
/// every validator appends, so it is part of the protocol: fixed here, never configurable.
pub struct QuarterFloor;

impl<F: commonware_storage::merkle::Family, K, V> Policy<F, K, V> for QuarterFloor {
    fn evicts(&self) -> bool {
        false
    }

    fn limits(&self, made_inactive: usize) -> Limits {
        Limits {
            entries: made_inactive / 4 + 1,
            skips: u64::MAX,
        }
    }

    fn decide<'a>(&mut self, entry: Entry<'a, F, K, V>) -> Decision<'a, V> {
        entry.keep()
    }
}
