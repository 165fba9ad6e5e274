//! What the state's storage is built from, and nothing that uses it: the runtime the store needs,
//! the QMDB database and operation types of its two tables, and the value encodings each uses.
//!
//! Every module that touches QMDB names its types through here, so that the store ([`crate::qmdb`])
//! depends on the tables, indexes and proofs, and none of them depends back on the store.

use crate::entry::{SlotWord, StateValue};
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_storage::{
    index::unordered::Index,
    merkle::Location,
    mmr,
    qmdb::{
        any::{
            unordered::{Operation as UnorderedOperation, Update},
            value::{FixedEncoding, VariableEncoding},
        },
        current::{self, batch::MerkleizedBatch, proof::RangeProof},
    },
    translator::EightCap,
};

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

/// Drives `future` to completion on this thread.
///
/// Unconstrained by tokio's cooperative budget: the budget belongs to the task this thread is
/// polling, and it is only refilled when that task yields to the scheduler, which a blocked
/// thread never does. A constrained storage read would then return `Pending` and wake itself
/// forever, spinning at full CPU (observed once the state outgrew the page cache).
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(tokio::task::unconstrained(future))
}

/// Bytes of one bitmap chunk of the `current` database (256 operations per chunk).
pub(crate) const CHUNK: usize = 32;

/// The Merkle structure of every table.
pub(crate) type Family = mmr::Family;
/// A state database whose log is journal `C` of operations on values encoded by `V`.
pub(crate) type Db<E, C, V> = current::unordered::db::Db<
    Family,
    E,
    C,
    Digest,
    V,
    Index<EightCap, Location<Family>>,
    Sha256,
    CHUNK,
    Sequential,
>;
/// One operation of a table's log.
pub(crate) type Operation<V> = UnorderedOperation<Family, Digest, V>;
/// A block's merkleized batch of one table.
pub(crate) type Batch<V> = MerkleizedBatch<Family, Digest, Update<Digest, V>, CHUNK, Sequential>;
/// A range proof of operations of a table's log.
pub(crate) type OperationsProof = RangeProof<Family, Digest>;

/// How the accounts table encodes its values (variable size).
pub(crate) type AccountsEncoding = VariableEncoding<StateValue>;
/// How the storage table encodes its values (32 bytes each).
pub(crate) type StorageEncoding = FixedEncoding<SlotWord>;
/// An operation of the accounts table's log.
pub(crate) type AccountOperation = Operation<AccountsEncoding>;
/// An operation of the storage table's log.
pub(crate) type SlotOperation = Operation<StorageEncoding>;

/// One of the state's two tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableName {
    /// Accounts, retired accounts, contract code.
    Accounts,
    /// Every account's storage slots.
    Storage,
}

impl TableName {
    /// The name its partitions carry after `<prefix>-state-`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::Storage => "storage",
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
