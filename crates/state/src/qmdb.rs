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

use crate::{
    Account, AccountChange, ChangeSet, StateError, StateReader, StateStore,
    entry::{StateKey, StateValue},
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
    merkle::full::Config as MerkleConfig,
    mmr,
    qmdb::{
        any::unordered::variable::Update,
        current::{self, VariableConfig, batch::MerkleizedBatch},
        floor::Proportional,
    },
    translator::EightCap,
};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    sync::Arc,
};
use trellis_types::{Height, StateRoot};

/// Bytes of one bitmap chunk of the `current` database (256 operations per chunk).
const CHUNK: usize = 32;

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

type Family = mmr::Family;
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
type Batch = MerkleizedBatch<Family, Digest, Update<Digest, StateValue>, CHUNK, Sequential>;

/// Where and how the state is stored.
#[derive(Clone, Debug)]
pub struct QmdbConfig {
    /// Prefix of the store's storage partitions.
    pub partition_prefix: String,
    /// Memory for cached pages of the operation log and Merkle nodes. Throughput depends on it
    /// holding the hot working set: measured here, 256 MiB commits ~4× more updates per second
    /// than 16 MiB over a million accounts.
    pub page_cache_bytes: usize,
    /// Operations per log file.
    pub items_per_section: NonZeroU64,
}

impl QmdbConfig {
    /// Defaults sized for a validator: a 256 MiB page cache.
    pub fn new(partition_prefix: impl Into<String>) -> Self {
        Self {
            partition_prefix: partition_prefix.into(),
            page_cache_bytes: 256 << 20,
            items_per_section: NonZeroU64::new(65_536).expect("non-zero"),
        }
    }

    fn qmdb(&self) -> VariableConfig<EightCap, ((), ()), Sequential> {
        let page = page_size(BLOB_PAGE_SIZE);
        let pages = (self.page_cache_bytes / BLOB_PAGE_SIZE as usize).max(16);
        let cache = CacheRef::new(page, NonZeroUsize::new(pages).expect("at least 16 pages"));
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
            init_cache: NonZeroUsize::new(1 << 16),
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
}

impl Staged {
    pub fn height(&self) -> Height {
        self.height
    }

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

/// The world state on QMDB. See the [module documentation](self).
pub struct QmdbStore<E: Runtime> {
    /// `None` only while a commit is under way, or after one failed (then every call errs).
    db: Option<Db<E>>,
    committed: Option<(Height, StateRoot)>,
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
        let db = Db::init(context, config.qmdb(), None)
            .await
            .map_err(backend)?;
        let committed = match db.get_metadata().await.map_err(backend)? {
            None => None,
            Some(StateValue::Commit(height)) => Some((height, root_of(db.root()))),
            Some(other) => {
                return Err(StateError::Backend(format!(
                    "stored state is corrupt: its last commit carries a {} value",
                    other.kind()
                )));
            }
        };
        Ok(Self {
            db: Some(db),
            committed,
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
        let mut batch = match parent {
            Some(parent) => parent.batch.new_batch::<Sha256>(),
            None => db.new_batch(),
        };
        let mut writer = Writer {
            db,
            batch: &batch,
            writes: Vec::new(),
        };
        for (address, change) in changes.accounts() {
            writer.account(address, change)?;
        }
        for (hash, code) in changes.codes() {
            writer.code(hash, code)?;
        }
        for (key, value) in std::mem::take(&mut writer.writes) {
            batch = batch.write(key.digest(), value);
        }
        let batch =
            block_on(batch.merkleize(db, Some(StateValue::Commit(height)), &mut Proportional))
                .map_err(backend)?;
        Ok(Staged {
            height,
            root: root_of(batch.root()),
            batch,
        })
    }

    fn staged_root(staged: &Staged) -> StateRoot {
        staged.root
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
        let db = self.db.take().expect("checked above");
        let db = db
            .apply_batch(staged.batch.clone())
            .await
            .map_err(backend)?;
        let root = root_of(db.root());
        assert_eq!(root, staged.root, "an applied batch keeps its staged root");
        self.db = Some(db);
        self.committed = Some((staged.height, root));
        Ok(root)
    }

    /// The second half of [`commit`](StateStore::commit): makes every applied block durable.
    pub async fn sync(&mut self) -> Result<(), StateError> {
        let db = self.db.take().ok_or_else(failed)?;
        self.db = Some(db.commit().await.map_err(backend)?);
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

/// Turns one block's changes into writes, reading its parent's state through the batch.
///
/// A change set touches each address and code hash once, so no write depends on another write
/// of the same block: reads see the parent's state, and the writes go into the batch at the end.
struct Writer<'a, E: Runtime> {
    db: &'a Db<E>,
    batch: &'a current::batch::UnmerkleizedBatch<
        Family,
        Sha256,
        Update<Digest, StateValue>,
        CHUNK,
        Sequential,
    >,
    writes: Vec<(StateKey, Option<StateValue>)>,
}

impl<E: Runtime> Writer<'_, E> {
    /// Reads the parent's state: its ancestors' writes, then committed state.
    fn read(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        block_on(self.batch.get(&key.digest(), self.db)).map_err(backend)
    }

    fn write(&mut self, key: StateKey, value: Option<StateValue>) {
        self.writes.push((key, value));
    }

    fn existed(&self, address: &Address) -> Result<bool, StateError> {
        let key = StateKey::Account(*address);
        match self.read(&key)? {
            None => Ok(false),
            Some(StateValue::Account(_)) => Ok(true),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }

    fn generation(&self, address: &Address) -> Result<u64, StateError> {
        let key = StateKey::Generation(*address);
        match self.read(&key)? {
            None => Ok(0),
            Some(StateValue::Generation(generation)) => Ok(generation),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }

    /// Drops the storage an existing account had, by moving it to a fresh generation.
    fn drop_storage(&mut self, address: &Address) -> Result<u64, StateError> {
        let generation = self.generation(address)?;
        if !self.existed(address)? {
            // An account that does not exist has no reachable storage: its last deletion
            // already moved it to a fresh generation.
            return Ok(generation);
        }
        let next = generation + 1;
        self.write(
            StateKey::Generation(*address),
            Some(StateValue::Generation(next)),
        );
        Ok(next)
    }

    fn account(&mut self, address: &Address, change: &AccountChange) -> Result<(), StateError> {
        let Some(account) = change.account else {
            self.drop_storage(address)?;
            self.write(StateKey::Account(*address), None);
            return Ok(());
        };
        let generation = if change.storage_wiped {
            self.drop_storage(address)?
        } else if change.storage.is_empty() {
            0 // unused
        } else {
            self.generation(address)?
        };
        self.write(
            StateKey::Account(*address),
            Some(StateValue::Account(account)),
        );
        for (slot, value) in &change.storage {
            let key = StateKey::Slot {
                address: *address,
                generation,
                slot: *slot,
            };
            let value = (!value.is_zero()).then_some(StateValue::Slot(*value));
            self.write(key, value);
        }
        Ok(())
    }

    fn code(&mut self, hash: &B256, code: &Bytes) -> Result<(), StateError> {
        let key = StateKey::Code(*hash);
        if self.read(&key)?.is_none() {
            self.write(key, Some(StateValue::Code(code.clone())));
        }
        Ok(())
    }
}

impl<E: Runtime> StateReader for QmdbStore<E> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        let key = StateKey::Account(*address);
        match self.get(&key)? {
            None => Ok(None),
            Some(StateValue::Account(account)) => Ok(Some(account)),
            Some(other) => Err(corrupt(&key, &other)),
        }
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        let generation_key = StateKey::Generation(*address);
        let generation = match self.get(&generation_key)? {
            None => 0,
            Some(StateValue::Generation(generation)) => generation,
            Some(other) => return Err(corrupt(&generation_key, &other)),
        };
        let key = StateKey::Slot {
            address: *address,
            generation,
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
