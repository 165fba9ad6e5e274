//! World state of Trellis: accounts (nonce, balance, code hash), contract code and storage.
//!
//! # The contract with execution
//!
//! Execution reads state through [`StateReader`] and produces one [`ChangeSet`] per block. A
//! [`StateStore`] commits change sets strictly in height order and returns the [`StateRoot`]
//! that commits to everything it holds:
//!
//! ```text
//!            read (StateReader)                      commit(height, &ChangeSet) -> StateRoot
//! execution ───────────────────► StateStore ◄──────────────────────────────────────────── node
//!     │                              ▲
//!     └── ChangeSet per block ───────┘ speculative_root(&[pending...]) -> StateRoot, no write
//! ```
//!
//! Blocks that consensus has not finalized yet are executed against a [`Speculative`] view: the
//! last committed state with the change sets of the unfinalized ancestors layered on top, newest
//! last. Their roots come from [`StateStore::speculative_root`], which writes nothing. When a block
//! finalizes, its change set is committed and the speculative layers below it are dropped.
//!
//! # Guarantees
//! - Deterministic: change sets and stores iterate in key order (`BTreeMap`); the root depends
//!   only on the contents, never on insertion order or the host.
//! - Commits advance by exactly one height; a gap or a repeat is refused with an error, and the
//!   store is left unchanged.
//! - Storage slots holding zero do not exist: writing zero deletes the slot.
//!
//! # Implementations
//! [`MemoryStore`] keeps everything in memory and hashes its contents into the root. The durable,
//! authenticated store on commonware-storage QMDB (with proofs and history) is a later step and
//! will implement the same traits.

pub mod bench;
mod change;
pub mod entry;
mod memory;
mod proof;
mod qmdb;
mod reader;

pub use change::{Account, AccountChange, ChangeSet};
pub use memory::MemoryStore;
pub use proof::{AccountProof, ProofError, SlotProof, StateProof};
pub use qmdb::{QmdbConfig, QmdbStore, Runtime, Staged, block_on, genesis_root};
pub use reader::{Speculative, StateError, StateReader, StateStore};
pub use trellis_types::{Address, B256, Bytes, Height, StateRoot, U256};

/// keccak-256 of empty code: the code hash of every account without code.
pub const EMPTY_CODE_HASH: B256 = alloy_primitives::KECCAK256_EMPTY;
