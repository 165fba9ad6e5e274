//! Opening the store: the layout check, both tables at their last commits, and reconciling a
//! crash that left one table a block ahead of the other.

use super::{AccountsDb, QmdbConfig, QmdbStore, StorageDb, config::history_cache};
use crate::backend::{Family, Runtime, TableName};
use crate::history_index::HistoryIndex;
use crate::layout::LayoutRecord;
use crate::roots::TableRoots;
use crate::table::Table;
use crate::{Holds, OpenError, StateError, StorageError, entry::StateValue};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::merkle::Location;
use trellis_types::Height;

/// How the store opens each of its tables: at its latest commit, or cut back to an earlier one.
trait OpenTable<E: Runtime>: Sized {
    /// Opens the table at its latest commit, or at the latest one within `size` operations.
    async fn init(
        context: E,
        config: &QmdbConfig,
        cache: &CacheRef,
        size: Option<Location<Family>>,
    ) -> Result<Self, StorageError>;

    /// The block the table's last commit holds, if any; `partition` names it in errors.
    async fn height(&self, partition: &str) -> Result<Option<Height>, OpenError>;
}

/// What a failure of the storage of the table in `partition` is reported as at open.
fn failed_at(partition: &str) -> impl Fn(StorageError) -> OpenError + '_ {
    move |source| OpenError::Table {
        partition: partition.to_string(),
        source,
    }
}

impl<E: Runtime> OpenTable<E> for AccountsDb<E> {
    async fn init(
        context: E,
        config: &QmdbConfig,
        cache: &CacheRef,
        size: Option<Location<Family>>,
    ) -> Result<Self, StorageError> {
        let init = Self::init(context, config.accounts(cache), size);
        Ok(init.await?)
    }

    async fn height(&self, partition: &str) -> Result<Option<Height>, OpenError> {
        let metadata = self.get_metadata().await.map_err(StorageError::from);
        match metadata.map_err(failed_at(partition))? {
            None => Ok(None),
            Some(StateValue::Commit(height)) => Ok(Some(height)),
            Some(other) => Err(OpenError::CommitValue {
                partition: partition.to_string(),
                found: other.kind(),
            }),
        }
    }
}

impl<E: Runtime> OpenTable<E> for StorageDb<E> {
    async fn init(
        context: E,
        config: &QmdbConfig,
        cache: &CacheRef,
        size: Option<Location<Family>>,
    ) -> Result<Self, StorageError> {
        let init = Self::init(context, config.storage(cache), size);
        Ok(init.await?)
    }

    async fn height(&self, partition: &str) -> Result<Option<Height>, OpenError> {
        let metadata = self.get_metadata().await.map_err(StorageError::from);
        match metadata.map_err(failed_at(partition))? {
            None => Ok(None),
            Some(word) => crate::entry::word_height(&word).map(Some).ok_or_else(|| {
                OpenError::NoCommitHeight {
                    partition: partition.to_string(),
                }
            }),
        }
    }
}

/// The names of one table's runtime contexts (labels are static).
struct TableLabels {
    table: TableName,
    history: &'static str,
    cut: &'static str,
}

const ACCOUNTS: TableLabels = TableLabels {
    table: TableName::Accounts,
    history: "accounts_history",
    cut: "accounts_cut",
};
const STORAGE: TableLabels = TableLabels {
    table: TableName::Storage,
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
    ) -> Result<Self, OpenError> {
        let name = config.table(labels.table.label());
        let db = D::init(context.child(labels.table.label()), config, cache, None)
            .await
            .map_err(failed_at(&name))?;
        let height = db.height(&name).await?;
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
    async fn reconcile(self, height: Option<Height>) -> Result<(D, HistoryIndex<E>), OpenError> {
        let history_failed = |error: StateError| OpenError::History(Box::new(error));
        let history = HistoryIndex::open(
            self.context.child(self.labels.history),
            self.labels.table,
            &self.name,
            history_cache(),
            height,
        )
        .await
        .map_err(history_failed)?;
        if self.height == height {
            return Ok((self.db, history));
        }
        // The log up to the commit of block `height` (the empty table's first commit: 1).
        let size = match height {
            None => 1,
            Some(height) => history.block(height).await.map_err(history_failed)?.end + 1,
        };
        let name = self.name;
        let cut = |source: OpenError| OpenError::Cut {
            partition: name.clone(),
            to: Holds(height),
            source: Box::new(source),
        };
        drop(self.db);
        let context = self.context.child(self.labels.cut);
        let db = D::init(context, self.config, self.cache, Some(Location::new(size)))
            .await
            .map_err(|e| cut(failed_at(&name)(e)))?;
        match db.height(&name).await.map_err(cut)? {
            now if now == height => Ok((db, history)),
            now => Err(cut(OpenError::CutMissed(Holds(now)))),
        }
    }
}

/// Refuses tables further apart than a crash between their commits leaves them (one block):
/// the rest of one table is missing or from elsewhere, and cutting the other back to it would
/// discard good state.
fn check_gap<E: Runtime, A, S>(
    accounts: &Opened<'_, E, A>,
    storage: &Opened<'_, E, S>,
) -> Result<(), OpenError> {
    let next = |height: Option<Height>| height.map_or(Height::GENESIS, Height::next);
    let (a, s) = (accounts.height, storage.height);
    if a == s || a == Some(next(s)) || s == Some(next(a)) {
        return Ok(());
    }
    Err(OpenError::Apart {
        accounts: accounts.name.clone(),
        accounts_holds: Holds(a),
        storage: storage.name.clone(),
        storage_holds: Holds(s),
    })
}

impl<E: Runtime> QmdbStore<E> {
    /// Opens the store under `config.partition_prefix`, empty if nothing is stored there yet.
    /// The state comes back as of the last block both tables committed.
    pub async fn open(context: E, config: &QmdbConfig) -> Result<Self, StateError> {
        Self::open_tables(context, config)
            .await
            .map_err(|reason| StateError::Open {
                partitions: config.partition_prefix.clone(),
                reason: Box::new(reason),
            })
    }

    async fn open_tables(context: E, config: &QmdbConfig) -> Result<Self, OpenError> {
        // The layout is checked before QMDB reads a log that another layout may have written.
        let layout = LayoutRecord::open(context.child("layout"), &config.partition_prefix).await?;
        let recorded = layout.check()?;
        let cache = config.page_cache();
        let accounts =
            Opened::<E, AccountsDb<E>>::open(&context, &ACCOUNTS, config, &cache).await?;
        let storage = Opened::<E, StorageDb<E>>::open(&context, &STORAGE, config, &cache).await?;
        let holds_state = accounts.height.is_some() || storage.height.is_some();
        layout.settle(recorded, holds_state).await?;
        // `None` (nothing committed) orders first: the tables agree on the older block.
        let height = accounts.height.min(storage.height);
        check_gap(&accounts, &storage)?;
        let (accounts, accounts_history) = accounts.reconcile(height).await?;
        let (storage, storage_history) = storage.reconcile(height).await?;
        let roots = TableRoots::new(accounts.root(), storage.root());
        Ok(Self {
            accounts: Table::new(accounts, accounts_history, TableName::Accounts),
            storage: Table::new(storage, storage_history, TableName::Storage),
            committed: height.map(|height| (height, roots.state_root())),
            keep_blocks: config.keep_blocks,
        })
    }
}
