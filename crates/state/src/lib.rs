//! World state of Trellis: accounts (nonce, balance, code hash), contract code and storage.
//!
//! # The contract with execution
//!
//! Execution reads state through [`StateReader`] and produces one [`ChangeSet`] per block. A
//! [`StateStore`] stages each block's changes on its parent and commits them, strictly in
//! height order, once the block is final:
//!
//! ```text
//!            read (StateReader)              stage(parent, height, &ChangeSet) -> Staged (root,
//! execution ───────────────────► StateStore ◄────────────────────────────────── node   no write)
//!     │                              ▲        commit(&Staged) -> StateRoot (durable)
//!     └── ChangeSet per block ───────┘
//! ```
//!
//! Blocks that consensus has not finalized yet are executed against a [`Speculative`] view: the
//! last committed state with the change sets of the unfinalized ancestors layered on top, newest
//! last. Their roots come from staging, which writes nothing. When a block finalizes, its staged
//! changes are committed; staged blocks that lose their view are dropped.
//!
//! # Guarantees
//! - Deterministic: change sets iterate in key order (`BTreeMap`) and staging writes in that
//!   order, so the same blocks give the same root on every node and host.
//! - Commits advance by exactly one height; a gap or a repeat is refused with an error, and the
//!   store is left unchanged.
//! - Storage slots holding zero do not exist: writing zero deletes the slot.
//!
//! # Implementations
//! [`QmdbStore`] is the durable, authenticated state on commonware-storage QMDB, with proofs
//! ([`StateProof`]) and configurable history. [`MemoryStore`] keeps everything in memory, for
//! tests of execution and admission.

mod backend;
mod change;
pub mod entry;
mod error;
mod heads;
mod history;
mod history_index;
mod layout;
mod memory;
mod proof;
mod qmdb;
mod reader;
mod roots;
mod table;

pub use backend::{Runtime, TableName, block_on};
pub use change::{Account, AccountChange, ChangeSet};
pub use error::{Corruption, Holds, OpenError, Retention, StateError, StorageError};
pub use history::{History, HistoryEntry, HistoryValue, OperationProof, WriteProof};
pub use memory::MemoryStore;
pub use proof::{AccountProof, ProofError, SlotProof, StateProof};
pub use qmdb::{PastState, QmdbConfig, QmdbStore, QuarterFloor, Staged, genesis_root};
pub use reader::{Speculative, StateReader, StateStore};
pub use roots::TableRoots;
pub use trellis_types::{Address, B256, Bytes, Height, StateRoot, U256};

/// keccak-256 of empty code: the code hash of every account without code.
pub const EMPTY_CODE_HASH: B256 = alloy_primitives::KECCAK256_EMPTY;
