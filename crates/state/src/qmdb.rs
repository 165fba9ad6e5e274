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

//! # Rooms
//! `config` (partitions and caches), `open` (opening and reconciling the tables), `stage`
//! (a block's batches and root), `floor` (the inactivity-floor policy), `prove` (proofs and
//! histories), `past` (reads at older blocks); this file holds the store and its commits.

mod config;
mod floor;
mod open;
mod past;
mod prove;
mod stage;

pub use config::QmdbConfig;
pub use floor::QuarterFloor;
pub use past::PastState;
pub use stage::{Staged, genesis_root};

use crate::backend::{
    AccountOperation, AccountsEncoding, CHUNK, Family, Runtime, SlotOperation, StorageEncoding,
    TableName, block_on,
};
use crate::roots::TableRoots;
use crate::table::Table;
use crate::{
    Account, ChangeSet, Corruption, StateError, StateReader, StateStore,
    entry::{SlotWord, StateKey, StateValue, slot_value},
};
use alloy_primitives::{Address, B256, Bytes, U256};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_storage::{
    journal::contiguous::{fixed, variable},
    qmdb::current,
    translator::EightCap,
};
use trellis_types::{Height, StateRoot};

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

const ACCOUNTS: TableName = TableName::Accounts;
const STORAGE: TableName = TableName::Storage;

/// The world state on QMDB: one batch per table and block, staged on its parent's, committed
/// once final.
pub struct QmdbStore<E: Runtime> {
    accounts: Accounts<E>,
    storage: Storage<E>,
    committed: Option<(Height, StateRoot)>,
    keep_blocks: Option<u64>,
}

fn corrupt(key: &StateKey, value: &StateValue) -> StateError {
    StateError::Corrupt(Corruption::WrongKind {
        key: *key,
        found: value.kind(),
    })
}

impl<E: Runtime> QmdbStore<E> {
    /// The roots of both tables as last applied.
    pub fn table_roots(&self) -> Result<TableRoots, StateError> {
        Ok(TableRoots::new(
            self.accounts.db()?.root(),
            self.storage.db()?.root(),
        ))
    }

    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        block_on(self.accounts.db()?.get(&key.digest())).map_err(StateError::storage(ACCOUNTS))
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
        self.stage_block(parent, height, changes)
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
    #[cfg(feature = "fault-injection")]
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
            .map_err(StateError::storage(ACCOUNTS))?;
        Record::from_stored(&key, stored)
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
        let stored = block_on(self.storage.db()?.get(&key.digest()))
            .map_err(StateError::storage(STORAGE))?;
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
