//! [`QmdbStore`]: the world state, durable and authenticated, on commonware-storage QMDB
//! (`current` variant, unordered keys), in two tables (see [`crate::entry`] for the layout):
//! *accounts* (accounts, retired accounts, code: variable-size values) and *storage* (every
//! account's slots: 32-byte values). The state root hashes the two tables' roots
//! ([`TableRoots`]).
//!
//! # One commit per block
//! A block's change set becomes one QMDB batch per table, whose commit metadata names the block's
//! height. [`QmdbStore::stage`] forks them from its parent's batches (or from committed state)
//! and merkleizes them, which yields the root the block's header carries; nothing is written.
//! When the block is final, [`QmdbStore::commit`] applies the batches and makes them durable. A
//! staged block that loses its view is dropped with its batches; its siblings' batches go stale
//! in QMDB and can no longer be applied, which is exactly what consensus needs.
//!
//! # Two tables, one state
//! Each table commits on its own, so a crash can leave one a block ahead of the other. Open then
//! cuts the one ahead back to the other's block (QMDB reopens a log at an earlier commit and
//! discards the rest durably; the history index says where each block's commit is), and the
//! node executes that block again from its block archive, reaching the same roots.
//!
//! # Reading synchronously
//! The EVM reads state synchronously, and QMDB reads are `async`. Reads (and staging) therefore
//! drive QMDB's futures to completion on the calling thread with [`block_on`]. That is sound
//! because those futures never wait on another task of the runtime: they resolve from memory
//! (index, page cache) or from a blocking file read, which the tokio runtime runs on its
//! blocking pool and the deterministic runtime resolves from memory.

mod past;

pub use past::PastState;

use crate::history::{History, HistoryEntry, HistoryValue, OperationProof, WriteProof};
use crate::history_index::{Found, HistoryIndex};
use crate::layout::LayoutRecord;
use crate::roots::TableRoots;
use crate::table::{self, Batch, CHUNK, Family, Table, locate_writes};
use crate::{
    Account, ChangeSet, StateError, StateReader, StateStore,
    entry::{
        DigestMap, SlotKeys, SlotWord, StateKey, StateValue, height_word, slot_value, slot_word,
    },
};
use alloy_primitives::{Address, B256, Bytes, U256};
use commonware_codec::Codec;
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::Runner as _;
use commonware_runtime::{
    BLOB_PAGE_SIZE,
    buffer::paged::{CacheRef, page_size},
};
use commonware_storage::{
    journal::contiguous::{Mutable, fixed, variable},
    merkle::{Location, full::Config as MerkleConfig},
    qmdb::{
        any::{
            ValueEncoding,
            batch::Slot,
            value::{FixedEncoding, VariableEncoding},
        },
        current::{self, FixedConfig, VariableConfig},
        floor::{Decision, Entry, Limits, Policy},
    },
    translator::EightCap,
};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    sync::Arc,
};
use trellis_types::{Height, StateRoot};

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

/// How the accounts table encodes its values (variable size).
pub(crate) type AccountsEncoding = VariableEncoding<StateValue>;
/// How the storage table encodes its values (32 bytes each).
pub(crate) type StorageEncoding = FixedEncoding<SlotWord>;
/// An operation of the accounts table's log.
pub(crate) type AccountOperation = table::Operation<AccountsEncoding>;
/// An operation of the storage table's log.
pub(crate) type SlotOperation = table::Operation<StorageEncoding>;
type AccountsLog<E> = variable::Journal<E, AccountOperation>;
type StorageLog<E> = fixed::Journal<E, SlotOperation>;
type AccountsDb<E> = current::unordered::variable::Db<
    Family,
    E,
    Digest,
    StateValue,
    Sha256,
    EightCap,
    CHUNK,
    Sequential,
>;
type StorageDb<E> =
    current::unordered::fixed::Db<Family, E, Digest, SlotWord, Sha256, EightCap, CHUNK, Sequential>;
type Accounts<E> = Table<E, AccountsLog<E>, AccountsEncoding>;
type Storage<E> = Table<E, StorageLog<E>, StorageEncoding>;

/// Where and how the state is stored.
#[derive(Clone, Debug)]
pub struct QmdbConfig {
    /// Prefix of the store's storage partitions.
    pub partition_prefix: String,
    /// Memory for cached pages of both tables' operation logs and Merkle nodes (one cache).
    /// Throughput depends on it holding the hot working set: measured here over a million
    /// accounts, 256 MiB commits ~4× more updates per second than 16 MiB, and 512 MiB ~2× more
    /// than 256 MiB.
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

    /// One page cache for both tables' logs and Merkle nodes.
    fn page_cache(&self) -> CacheRef {
        let page = page_size(BLOB_PAGE_SIZE);
        let pages = (self.page_cache_bytes / BLOB_PAGE_SIZE as usize).max(16);
        CacheRef::new(page, NonZeroUsize::new(pages).expect("at least 16 pages"))
    }

    /// Entries of the `(location -> key)` cache QMDB uses while rebuilding a table's index at
    /// open (freed once open). A key's update replays against the location of its previous
    /// update, which is far back in the log; a hit saves reading and decoding that operation
    /// again. One entry (~41 bytes) per 256 bytes of page cache: 2,097,152 for the 512 MiB
    /// default, which halved reopening 2,000,000 entries against 65,536 (7–8 s to ~3.5 s).
    fn init_cache_entries(&self) -> usize {
        (self.page_cache_bytes / 256).max(1 << 16)
    }

    /// The prefix of one table's partitions.
    fn table(&self, name: &str) -> String {
        format!("{}-state-{name}", self.partition_prefix)
    }

    fn buffer() -> NonZeroUsize {
        NonZeroUsize::new(1 << 20).expect("non-zero")
    }

    /// A table named `table` over `cache`, whose log is configured by `journal`.
    fn database<J>(
        &self,
        table: &str,
        cache: &CacheRef,
        journal: J,
    ) -> current::Config<EightCap, J, Sequential> {
        current::Config {
            merkle_config: MerkleConfig {
                journal_partition: format!("{table}-merkle"),
                metadata_partition: format!("{table}-merkle-meta"),
                items_per_blob: self.items_per_section,
                write_buffer: Self::buffer(),
                replay_buffer: Self::buffer(),
                strategy: Sequential,
                page_cache: cache.clone(),
            },
            journal_config: journal,
            grafted_metadata_partition: format!("{table}-grafted"),
            translator: EightCap,
            init_cache: NonZeroUsize::new(self.init_cache_entries()),
            init_buffer: Self::buffer(),
            init_concurrency: (),
        }
    }

    fn accounts(&self, cache: &CacheRef) -> VariableConfig<EightCap, ((), ()), Sequential> {
        let table = self.table("accounts");
        let journal = variable::Config {
            partition: format!("{table}-log"),
            items_per_section: self.items_per_section,
            compression: None,
            codec_config: ((), ()),
            page_cache: cache.clone(),
            write_buffer: Self::buffer(),
            replay_buffer: Self::buffer(),
        };
        self.database(&table, cache, journal)
    }

    fn storage(&self, cache: &CacheRef) -> FixedConfig<EightCap, Sequential> {
        let table = self.table("storage");
        let journal = fixed::Config {
            partition: format!("{table}-log"),
            items_per_blob: self.items_per_section,
            page_cache: cache.clone(),
            write_buffer: Self::buffer(),
            replay_buffer: Self::buffer(),
        };
        self.database(&table, cache, journal)
    }
}

/// One of the state's two tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableName {
    /// Accounts, retired accounts, contract code.
    Accounts,
    /// Every account's storage slots.
    Storage,
}

/// A block's state ahead of finality: its changes merkleized on top of its parent's, in both
/// tables.
pub struct Staged {
    height: Height,
    roots: TableRoots,
    accounts: Arc<Batch<AccountsEncoding>>,
    storage: Arc<Batch<StorageEncoding>>,
    /// What the history indexes record for this block once it is committed.
    account_writes: crate::history_index::BlockWrites,
    slot_writes: crate::history_index::BlockWrites,
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

/// The world state on QMDB: one batch per table and block, staged on its parent's, committed
/// once final.
pub struct QmdbStore<E: Runtime> {
    accounts: Accounts<E>,
    storage: Storage<E>,
    committed: Option<(Height, StateRoot)>,
    keep_blocks: Option<u64>,
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

fn corrupt(key: &StateKey, value: &StateValue) -> StateError {
    StateError::Backend(format!(
        "stored state is corrupt: {key:?} holds a {} value",
        value.kind()
    ))
}

/// How the store opens each of its tables: at its latest commit, or cut back to an earlier one.
trait OpenTable<E: Runtime>: Sized {
    /// Opens the table at its latest commit, or at the latest one within `size` operations.
    async fn init(
        context: E,
        config: &QmdbConfig,
        cache: &CacheRef,
        size: Option<Location<Family>>,
    ) -> Result<Self, String>;

    /// The block the table's last commit holds, if any.
    async fn height(&self) -> Result<Option<Height>, String>;
}

impl<E: Runtime> OpenTable<E> for AccountsDb<E> {
    async fn init(
        context: E,
        config: &QmdbConfig,
        cache: &CacheRef,
        size: Option<Location<Family>>,
    ) -> Result<Self, String> {
        let init = Self::init(context, config.accounts(cache), size);
        init.await.map_err(|e| e.to_string())
    }

    async fn height(&self) -> Result<Option<Height>, String> {
        match self.get_metadata().await.map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(StateValue::Commit(height)) => Ok(Some(height)),
            Some(other) => Err(format!("its last commit carries a {} value", other.kind())),
        }
    }
}

impl<E: Runtime> OpenTable<E> for StorageDb<E> {
    async fn init(
        context: E,
        config: &QmdbConfig,
        cache: &CacheRef,
        size: Option<Location<Family>>,
    ) -> Result<Self, String> {
        let init = Self::init(context, config.storage(cache), size);
        init.await.map_err(|e| e.to_string())
    }

    async fn height(&self) -> Result<Option<Height>, String> {
        match self.get_metadata().await.map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(word) => crate::entry::word_height(&word)
                .map(Some)
                .ok_or_else(|| "its last commit carries no block height".to_string()),
        }
    }
}

/// The names of one table's runtime contexts (labels are static) and partitions.
struct TableLabels {
    table: &'static str,
    history: &'static str,
    cut: &'static str,
}

const ACCOUNTS: TableLabels = TableLabels {
    table: "accounts",
    history: "accounts_history",
    cut: "accounts_cut",
};
const STORAGE: TableLabels = TableLabels {
    table: "storage",
    history: "storage_history",
    cut: "storage_cut",
};

/// One table as opened, before it is reconciled with the other.
struct Opened<'a, E: Runtime, D> {
    db: D,
    height: Option<Height>,
    /// The table's partitions' prefix.
    name: String,
    labels: &'static TableLabels,
    context: &'a E,
    config: &'a QmdbConfig,
    cache: &'a CacheRef,
}

impl<'a, E: Runtime, D: OpenTable<E>> Opened<'a, E, D> {
    async fn open(
        context: &'a E,
        labels: &'static TableLabels,
        config: &'a QmdbConfig,
        cache: &'a CacheRef,
    ) -> Result<Self, String> {
        let name = config.table(labels.table);
        let named = |e: String| format!("'{name}': {e}");
        let db = D::init(context.child(labels.table), config, cache, None)
            .await
            .map_err(named)?;
        let height = db.height().await.map_err(named)?;
        Ok(Self {
            db,
            height,
            name,
            labels,
            context,
            config,
            cache,
        })
    }

    /// The table with its history index, at block `height` (`None`: empty): cut back to it if
    /// a crash between the two tables' commits left this one ahead.
    async fn reconcile(self, height: Option<Height>) -> Result<(D, HistoryIndex<E>), String> {
        let name = self.name.clone();
        let history = HistoryIndex::open(
            self.context.child(self.labels.history),
            &name,
            history_cache(),
            height,
        )
        .await
        .map_err(|e| e.to_string())?;
        if self.height == height {
            return Ok((self.db, history));
        }
        // The log up to the commit of block `height` (the empty table's first commit: 1).
        let size = match height {
            None => 1,
            Some(height) => history.block(height).await.map_err(|e| e.to_string())?.end + 1,
        };
        let cut = |e: String| format!("'{name}' cut back to block {height:?}: {e}");
        drop(self.db);
        let context = self.context.child(self.labels.cut);
        let db = D::init(context, self.config, self.cache, Some(Location::new(size)))
            .await
            .map_err(cut)?;
        match db.height().await.map_err(cut)? {
            now if now == height => Ok((db, history)),
            now => Err(cut(format!("it holds block {now:?} instead"))),
        }
    }
}

/// Refuses tables further apart than a crash between their commits leaves them (one block):
/// the rest of one table is missing or from elsewhere, and cutting the other back to it would
/// discard good state.
fn check_gap<E: Runtime, A, S>(
    accounts: &Opened<'_, E, A>,
    storage: &Opened<'_, E, S>,
) -> Result<(), String> {
    let next = |height: Option<Height>| height.map_or(Height::GENESIS, Height::next);
    let (a, s) = (accounts.height, storage.height);
    if a == s || a == Some(next(s)) || s == Some(next(a)) {
        return Ok(());
    }
    let holds = |height: Option<Height>| match height {
        None => "nothing".to_string(),
        Some(height) => format!("block {height}"),
    };
    Err(format!(
        "'{}' holds {} but '{}' holds {}: a crash leaves them at most one block apart, so one \
         is damaged, missing or from another data directory; nothing was changed",
        accounts.name,
        holds(a),
        storage.name,
        holds(s)
    ))
}

impl<E: Runtime> QmdbStore<E> {
    /// Opens the store under `config.partition_prefix`, empty if nothing is stored there yet.
    /// The state comes back as of the last block both tables committed.
    pub async fn open(context: E, config: &QmdbConfig) -> Result<Self, StateError> {
        let opening = |reason: String| StateError::Open {
            partitions: config.partition_prefix.clone(),
            reason,
        };
        // The layout is checked before QMDB reads a log that another layout may have written.
        let layout = LayoutRecord::open(context.child("layout"), &config.partition_prefix)
            .await
            .map_err(opening)?;
        let recorded = layout.check().map_err(opening)?;
        let cache = config.page_cache();
        let accounts = Opened::<E, AccountsDb<E>>::open(&context, &ACCOUNTS, config, &cache)
            .await
            .map_err(opening)?;
        let storage = Opened::<E, StorageDb<E>>::open(&context, &STORAGE, config, &cache)
            .await
            .map_err(opening)?;
        let holds_state = accounts.height.is_some() || storage.height.is_some();
        layout
            .settle(recorded, holds_state)
            .await
            .map_err(opening)?;
        // `None` (nothing committed) orders first: the tables agree on the older block.
        let height = accounts.height.min(storage.height);
        check_gap(&accounts, &storage).map_err(opening)?;
        let (accounts_name, storage_name) = (accounts.name.clone(), storage.name.clone());
        let (accounts, accounts_history) = accounts.reconcile(height).await.map_err(opening)?;
        let (storage, storage_history) = storage.reconcile(height).await.map_err(opening)?;
        let roots = TableRoots::new(accounts.root(), storage.root());
        Ok(Self {
            accounts: Table::new(accounts, accounts_history, accounts_name),
            storage: Table::new(storage, storage_history, storage_name),
            committed: height.map(|height| (height, roots.state_root())),
            keep_blocks: config.keep_blocks,
        })
    }

    /// The roots of both tables as last applied.
    pub fn table_roots(&self) -> Result<TableRoots, StateError> {
        Ok(TableRoots::new(
            self.accounts.db()?.root(),
            self.storage.db()?.root(),
        ))
    }

    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        block_on(self.accounts.db()?.get(&key.digest())).map_err(backend)
    }
}

impl<E: Runtime> StateStore for QmdbStore<E> {
    type Staged = Staged;

    fn committed(&self) -> Option<(Height, StateRoot)> {
        self.committed
    }

    /// Forks a batch per table from the parent's (or from committed state) and merkleizes them.
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

    /// Applies the staged batches and makes them durable.
    async fn commit(&mut self, staged: &Staged) -> Result<StateRoot, StateError> {
        let root = self.apply(staged).await?;
        self.sync().await?;
        Ok(root)
    }
}

impl<E: Runtime> QmdbStore<E> {
    /// The first half of [`commit`](StateStore::commit): publishes the staged block to readers
    /// and appends it to both tables' logs, without waiting for the disk. A crash before
    /// [`sync`](Self::sync) returns the store to its previous commit.
    pub async fn apply(&mut self, staged: &Staged) -> Result<StateRoot, StateError> {
        let expected = self.next_height();
        if staged.height != expected {
            return Err(StateError::NonSequentialCommit {
                expected,
                got: staged.height,
            });
        }
        // Both are checked before either changes, so a stale block leaves the store as it was.
        self.accounts.validate(&staged.accounts)?;
        self.storage.validate(&staged.storage)?;
        let (accounts, storage) = futures::join!(
            self.accounts
                .apply(staged.height, &staged.accounts, &staged.account_writes),
            self.storage
                .apply(staged.height, &staged.storage, &staged.slot_writes),
        );
        let roots = TableRoots::new(accounts?, storage?);
        assert_eq!(
            roots, staged.roots,
            "applied batches keep their staged roots"
        );
        let root = roots.state_root();
        self.committed = Some((staged.height, root));
        Ok(root)
    }

    /// The second half of [`commit`](StateStore::commit): makes every applied block durable in
    /// both tables (their disk writes overlap; open reconciles a crash between them), then
    /// prunes history beyond [`QmdbConfig::keep_blocks`], if set.
    pub async fn sync(&mut self) -> Result<(), StateError> {
        let (accounts, storage) = futures::join!(self.accounts.commit(), self.storage.commit());
        accounts?;
        storage?;
        if let (Some(keep), Some((height, _))) = (self.keep_blocks, self.committed) {
            self.accounts.prune(keep, height).await?;
            self.storage.prune(keep, height).await?;
        }
        Ok(())
    }

    /// Makes the applied blocks durable in one table only: the state a crash between the two
    /// tables' commits leaves behind, for tests of recovering from it.
    #[doc(hidden)]
    pub async fn sync_one_table(&mut self, table: TableName) -> Result<(), StateError> {
        match table {
            TableName::Accounts => self.accounts.commit().await,
            TableName::Storage => self.storage.commit().await,
        }
    }

    /// Each table's retained log operations, `[first, end)` (accounts, storage): pruning moves
    /// `first` up.
    pub fn retained_operations(
        &self,
    ) -> Result<(std::ops::Range<u64>, std::ops::Range<u64>), StateError> {
        Ok((self.accounts.retained()?, self.storage.retained()?))
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
    let (stored, staged) = block_on(batch.stage(&refs, db)).map_err(backend)?;
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
        .map_err(backend)?;
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
    let (_, staged) = block_on(batch.stage(&refs, db)).map_err(backend)?;
    let metadata = Some(height_word(height));
    let batch = block_on(staged.merkleize(writes, Vec::new(), metadata, db, &mut QuarterFloor))
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

    async fn stored_record(&self, address: &Address) -> Result<Record, StateError> {
        let key = StateKey::Account(*address);
        let stored = self
            .accounts
            .db()?
            .get(&key.digest())
            .await
            .map_err(backend)?;
        Record::from_stored(&key, stored)
    }

    /// Proofs of `address`'s account and of `slots`, against the root of the last commit.
    pub async fn prove(
        &self,
        address: &Address,
        slots: &[U256],
    ) -> Result<crate::StateProof, StateError> {
        let (accounts, storage) = (self.accounts.db()?, self.storage.db()?);
        let record = self.stored_record(address).await?;
        let account = match record.account {
            None => None,
            Some(account) => {
                let key = StateKey::Account(*address).digest();
                let proof = accounts.key_value_proof(key).await.map_err(backend)?;
                Some(crate::AccountProof {
                    nonce: alloy_primitives::U64::from(account.nonce),
                    balance: account.balance,
                    code_hash: account.code_hash,
                    storage_generation: alloy_primitives::U64::from(record.generation),
                    proof: crate::proof::encode(&proof),
                })
            }
        };
        let mut proven = Vec::with_capacity(slots.len());
        for slot in slots {
            let key = StateKey::Slot {
                address: *address,
                generation: record.generation,
                slot: *slot,
            }
            .digest();
            let stored = match record.exists {
                true => storage.get(&key).await.map_err(backend)?,
                false => None,
            };
            proven.push(match stored {
                None => crate::SlotProof {
                    key: *slot,
                    value: U256::ZERO,
                    proof: None,
                },
                Some(word) => crate::SlotProof {
                    key: *slot,
                    value: slot_value(&word),
                    proof: Some(crate::proof::encode(
                        &storage.key_value_proof(key).await.map_err(backend)?,
                    )),
                },
            });
        }
        Ok(crate::StateProof {
            address: *address,
            table_roots: self.table_roots()?,
            account,
            storage: proven,
        })
    }

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
        let (entries, truncated) = match slot {
            None => {
                let keys = [StateKey::Account(*address)];
                let value = HistoryValue::from_account_operation;
                proven_writes(&self.accounts, &keys, limit, value).await?
            }
            Some(slot) => {
                let generation = self.stored_record(address).await?.generation;
                let keys: Vec<StateKey> = (0..=generation)
                    .rev()
                    .map(|generation| StateKey::Slot {
                        address: *address,
                        generation,
                        slot,
                    })
                    .collect();
                let value = HistoryValue::from_slot_operation;
                proven_writes(&self.storage, &keys, limit, value).await?
            }
        };
        Ok(History {
            address: *address,
            slot,
            table_roots: self.table_roots()?,
            entries,
            truncated,
        })
    }
}

/// The newest `limit` writes of `keys` in `table`, oldest first, each with its proofs (`value`
/// reads the written value from an operation), and whether older ones exist beyond them.
async fn proven_writes<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    keys: &[StateKey],
    limit: usize,
    value: fn(&StateKey, &table::Operation<V>) -> Option<HistoryValue>,
) -> Result<(Vec<HistoryEntry>, bool), StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = table::Operation<V>>,
    table::Operation<V>: Codec,
{
    let (found, truncated) = find_writes(table, keys, limit).await?;
    let mut entries = Vec::with_capacity(found.len());
    for (key, found) in found {
        entries.push(prove_write(table, &found, |operation| value(&key, operation)).await?);
    }
    Ok((entries, truncated))
}

/// The newest `limit` writes of `keys` (tried in order) in `table`, oldest first, and whether
/// older ones exist (or were pruned) beyond them.
async fn find_writes<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    keys: &[StateKey],
    limit: usize,
) -> Result<(Vec<(StateKey, Found)>, bool), StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = table::Operation<V>>,
    table::Operation<V>: Codec,
{
    let retained_from = table.retained()?.start;
    let mut found = Vec::new();
    let mut truncated = false;
    for key in keys {
        let remaining = limit - found.len();
        let records = table
            .history()
            .records(&key.digest(), remaining + 1)
            .await?;
        for record in records {
            let provable = record.block.start.saturating_sub(1) >= retained_from;
            if found.len() == limit || !provable {
                truncated = true;
                break;
            }
            found.push((*key, record));
        }
        if truncated {
            break;
        }
    }
    found.sort_by_key(|(_, found)| found.record.height);
    Ok((found, truncated))
}

/// One operation of `table`'s log, encoded with its proof against the table's root.
async fn prove_operation<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    location: u64,
) -> Result<(OperationProof, table::Operation<V>), StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = table::Operation<V>>,
    table::Operation<V>: Codec,
{
    let (proof, operation, chunks) = table.prove_operation(location).await?;
    Ok((
        OperationProof::encode(location, &proof, &operation, &chunks),
        operation,
    ))
}

/// A write found by the index, with the proofs of it and of its block's bounds; `value` reads
/// the written value from the operation (`None`: the operation does not write the key).
async fn prove_write<E: Runtime, C, V>(
    table: &Table<E, C, V>,
    found: &Found,
    value: impl FnOnce(&table::Operation<V>) -> Option<HistoryValue>,
) -> Result<HistoryEntry, StateError>
where
    V: ValueEncoding,
    C: Mutable<Item = table::Operation<V>>,
    table::Operation<V>: Codec,
{
    let (record, block) = (&found.record, &found.block);
    let (write, operation) = prove_operation(table, record.location).await?;
    let value = value(&operation).ok_or_else(|| {
        StateError::Backend(format!(
            "the history index points a key at block {} to an operation that does not write it",
            record.height
        ))
    })?;
    let (commit, _) = prove_operation(table, block.end).await?;
    let previous_commit = match block.start.checked_sub(1) {
        None => None,
        Some(location) => Some(prove_operation(table, location).await?.0),
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
        let stored = block_on(self.storage.db()?.get(&key.digest())).map_err(backend)?;
        Ok(stored.map_or(U256::ZERO, |word| slot_value(&word)))
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
