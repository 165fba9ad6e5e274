//! Opening the store: the layout check, both tables at their last commits, and reconciling a
//! crash that left one table a block ahead of the other.

use super::{AccountsDb, QmdbConfig, QmdbStore, StorageDb, config::history_cache};
use crate::backend::{Family, Runtime};
use crate::history_index::HistoryIndex;
use crate::layout::LayoutRecord;
use crate::roots::TableRoots;
use crate::table::Table;
use crate::{StateError, entry::StateValue};
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
}
