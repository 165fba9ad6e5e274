//! The ledger consensus builds on: the EVM executes proposals on the state they build on,
//! finalized blocks are applied once and stored with their receipts and a transaction index.
//!
//! [`Chain`] implements [`trellis_consensus::Ledger`]. It holds the finalized state (durable, on
//! QMDB: [`trellis_state::QmdbStore`]), the blocks executed but not yet finalized with their
//! state staged on top, and the node's [`trellis_mempool::Mempool`]. Clients (the RPC layer)
//! read it through `Chain`'s read API: blocks, transaction locations, logs and pending
//! transactions (`ledger/records.rs`), and the state at any finalized block
//! (`ledger/query.rs`); the block store and the pool stay inside.
//!
//! # Guarantees
//! - A finalized block is applied exactly once, in height order, and only after it is durable
//!   and its transactions can be looked up; a block delivered again is checked to be the same
//!   one.
//! - A block is voted for only if every transaction decodes, recovers and executes (none would
//!   be skipped) and the header's roots, bloom and gas are exactly what execution produced.
//! - A data directory of another chain (a different genesis block) is refused at open.

mod faults;
mod genesis;
pub mod gossip;
mod ledger;
pub mod log_index;
mod metrics;
mod store;
mod stored;
mod tx_index;
pub mod watch;

pub use faults::Faults;
#[cfg(feature = "fault-injection")]
pub use faults::InterruptCommit;
pub use genesis::{Genesis, GenesisError};

pub use ledger::{CallerRecord, Chain, ChainConfig, ChainError};
pub use log_index::{FoundLog, LogQuery, matching_logs};
pub use store::{BlockStore, LogsError, StoreError};
pub use stored::{ReceiptRecord, StoredBlock};
/// Why the pool refused a transaction ([`Chain::submit`]).
pub use trellis_mempool::AdmissionError;
/// What the chain needs of its runtime: storage, a clock, metrics and spawning (QMDB's).
pub use trellis_state::Runtime;
pub use tx_index::{TxIndexError, TxLocation};
