//! Why a block was rejected, or why the chain could not open.

use super::RECENT_BLOCKS;
use crate::store::StoreError;
use trellis_execution::{ExecutionError, SkipReason};
use trellis_state::StateError;
use trellis_types::{BlockHash, Height, StateRoot, TxError};

/// Why a block was rejected, or why the chain could not open.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the parent {parent} is neither the finalized tip nor a block executed on top of it")]
    UnknownParent { parent: BlockHash },
    #[error("block {hash} at height {height} conflicts with the finalized block {finalized}")]
    ConflictsWithFinalized {
        height: Height,
        hash: BlockHash,
        finalized: BlockHash,
    },
    #[error("block {hash} at height {height} is below the last {RECENT_BLOCKS} finalized blocks")]
    TooOld { height: Height, hash: BlockHash },
    #[error("transaction {index} of block {block} is invalid: {error}")]
    InvalidTransaction {
        block: BlockHash,
        index: usize,
        error: TxError,
    },
    #[error("transaction {index} of block {block} cannot execute: {reason}")]
    SkippedTransaction {
        block: BlockHash,
        index: usize,
        /// Boxed: a refusal by the rules is large, and errors travel often.
        reason: Box<SkipReason>,
    },
    #[error("block {block} does not match its execution: {fields} differ")]
    HeaderMismatch { block: BlockHash, fields: String },
    #[error("execution failed: {0}")]
    Execution(#[from] ExecutionError),
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "this data directory holds the chain with genesis {stored}, not {expected}: use another directory, or the genesis it was created with"
    )]
    OtherChain {
        stored: BlockHash,
        expected: BlockHash,
    },
    #[error("stored block {height} does not replay to its own state root (stored data is corrupt)")]
    CorruptReplay { height: Height },
    #[error(
        "the state is at block {state}, but the block store ends at block {stored}: the block store was truncated or belongs to another data directory"
    )]
    StateAhead { state: Height, stored: Height },
    #[error(
        "the state at block {height} has root {state}, but stored block {height} commits to {header}: the state or the block store is corrupt"
    )]
    StateRootMismatch {
        height: Height,
        state: StateRoot,
        header: StateRoot,
    },
    #[error(
        "blocks are stored but the state is empty: its partitions were deleted; restore them or start from an empty data directory"
    )]
    StateMissing,
    #[error(
        "stored block {height} is missing, though blocks up to {last} are stored (stored data is corrupt)"
    )]
    MissingBlock { height: Height, last: Height },
}
