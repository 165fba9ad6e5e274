//! Why state could not be opened, read or committed: one enum for callers to match on
//! ([`StateError`]), with what the storage reported kept whole ([`StorageError`]) and the ways
//! stored data can contradict what the store wrote ([`Corruption`]).

use crate::backend::{Family, TableName};
use crate::entry::StateKey;
use alloy_primitives::B256;
use std::sync::Arc;
use trellis_types::Height;

/// A failure reported by the storage under the state, as the storage layer typed it (shared,
/// so that the error stays cheap to clone).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Qmdb(Arc<commonware_storage::qmdb::Error<Family>>),
    #[error("{0}")]
    Journal(Arc<commonware_storage::journal::Error>),
    #[error("{0}")]
    Metadata(Arc<commonware_storage::metadata::Error>),
}

/// Two reports are equal only if they are the same report (the storage's errors do not compare),
/// which lets errors that carry them still be compared in tests and matched on by callers.
impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Qmdb(a), Self::Qmdb(b)) => Arc::ptr_eq(a, b),
            (Self::Journal(a), Self::Journal(b)) => Arc::ptr_eq(a, b),
            (Self::Metadata(a), Self::Metadata(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for StorageError {}

impl From<commonware_storage::qmdb::Error<Family>> for StorageError {
    fn from(error: commonware_storage::qmdb::Error<Family>) -> Self {
        Self::Qmdb(Arc::new(error))
    }
}

impl From<commonware_storage::journal::Error> for StorageError {
    fn from(error: commonware_storage::journal::Error) -> Self {
        Self::Journal(Arc::new(error))
    }
}

impl From<commonware_storage::metadata::Error> for StorageError {
    fn from(error: commonware_storage::metadata::Error) -> Self {
        Self::Metadata(Arc::new(error))
    }
}

/// Why state could not be read or committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("commit at height {got} refused: the next height to commit is {expected}")]
    NonSequentialCommit { expected: Height, got: Height },
    #[error("state table '{table}' failed: {source}")]
    Storage {
        table: TableName,
        source: StorageError,
    },
    #[error("state history index of table '{table}' failed: {source}")]
    History {
        table: TableName,
        source: StorageError,
    },
    #[error("the state table '{0}' failed during an earlier write; restart the node")]
    Failed(TableName),
    #[error(
        "the state history index of table '{0}' failed during an earlier write; restart the node"
    )]
    HistoryFailed(TableName),
    #[error(
        "block {got} recorded in the state history index of table '{table}', which expects block {expected}"
    )]
    HistoryOrder {
        table: TableName,
        expected: u64,
        got: Height,
    },
    #[error(
        "stored state is corrupt: {0}. Restore the data directory from a backup, or start from an empty one and let the node catch up from its peers"
    )]
    Corrupt(#[from] Corruption),
    #[error("state at block {height} is not available: {reason}")]
    NotRetained { height: Height, reason: Retention },
    #[error(
        "cannot open the state stored in partitions {partitions}-state-*: {reason}. The data directory is damaged: restore it from a backup, or start from an empty data directory and let the node catch up from its peers"
    )]
    Open {
        partitions: String,
        reason: Box<OpenError>,
    },
}

impl StateError {
    /// What a failure of `table`'s storage is reported as.
    pub(crate) fn storage<T: Into<StorageError>>(table: TableName) -> impl Fn(T) -> Self {
        move |error| Self::Storage {
            table,
            source: error.into(),
        }
    }

    /// What a failure of the storage of `table`'s history index is reported as.
    pub(crate) fn history<T: Into<StorageError>>(table: TableName) -> impl Fn(T) -> Self {
        move |error| Self::History {
            table,
            source: error.into(),
        }
    }
}

/// Stored data that contradicts what the store wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("system account {0} is missing from a governed chain's state")]
    MissingSystemAccount(alloy_primitives::Address),
    #[error("{key:?} holds a {found} value")]
    WrongKind { key: StateKey, found: &'static str },
    #[error("code {0} is referenced but not stored")]
    MissingCode(B256),
    #[error("stored code {0} is not valid bytecode")]
    InvalidCode(B256),
    #[error("the history index names a commit as a write of {0:?}")]
    CommitAsWrite(StateKey),
    #[error("the history index points a key at block {0} to an operation that does not write it")]
    NotAWrite(Height),
    #[error(
        "record {position} of the history of table '{table}' belongs to another key than the list it is on"
    )]
    ForeignRecord { table: TableName, position: u64 },
    #[error("no operation at location {location} of the log of table '{table}'")]
    NoOperation { table: TableName, location: u64 },
    #[error(
        "the state history index covers {covered} block(s) but the state has {wanted}: the partitions '{partitions}-history-*' are missing, damaged or from another data directory"
    )]
    HistoryBlocks {
        partitions: String,
        covered: u64,
        wanted: u64,
    },
    #[error(
        "the state history index's blocks name {named} record(s) but {stored} are stored: the partition '{partitions}-history-writes' is damaged"
    )]
    HistoryRecords {
        partitions: String,
        named: u64,
        stored: u64,
    },
}

/// Why the state at an earlier block cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Retention {
    #[error("the write of block {0} it needs was pruned (the node keeps recent history only)")]
    Pruned(Height),
    #[error("the state is committed up to {0}")]
    NotCommitted(Holds),
}

/// What a table (or the state) holds: nothing yet, or the state after a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holds(pub Option<Height>);

impl std::fmt::Display for Holds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("nothing"),
            Some(height) => write!(f, "block {height}"),
        }
    }
}

/// Why the stored state could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("partition '{partition}': {source}")]
    Layout {
        partition: String,
        source: StorageError,
    },
    #[error(
        "partition '{partition}' records state layout {found}, but this release reads layout {expected} only"
    )]
    OtherLayout {
        partition: String,
        found: u64,
        expected: u64,
    },
    #[error(
        "the state has no layout record (partition '{partition}'): it was written by an earlier release, whose layout this release does not read"
    )]
    Unrecorded { partition: String },
    #[error("'{partition}': {source}")]
    Table {
        partition: String,
        source: StorageError,
    },
    #[error("'{partition}': its last commit carries a {found} value")]
    CommitValue {
        partition: String,
        found: &'static str,
    },
    #[error("'{partition}': its last commit carries no block height")]
    NoCommitHeight { partition: String },
    #[error(
        "'{accounts}' holds {accounts_holds} but '{storage}' holds {storage_holds}: a crash leaves them at most one block apart, so one is damaged, missing or from another data directory; nothing was changed"
    )]
    Apart {
        accounts: String,
        accounts_holds: Holds,
        storage: String,
        storage_holds: Holds,
    },
    #[error("'{partition}' cut back to {to}: {source}")]
    Cut {
        partition: String,
        to: Holds,
        source: Box<OpenError>,
    },
    #[error("it holds {0} instead")]
    CutMissed(Holds),
    #[error(transparent)]
    History(Box<StateError>),
}
