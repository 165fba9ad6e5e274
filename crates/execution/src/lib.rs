//! Block execution on revm.
//!
//! [`Executor::execute`] takes a block's transactions (EIP-2718 envelopes, in block order) and
//! a parent state ([`trellis_state::StateReader`]: committed or [`trellis_state::Speculative`])
//! and returns a [`BlockOutcome`]: one [`TxReceipt`] per executed transaction, one
//! [`SkippedTx`] per transaction that could not run, the block's [`trellis_state::ChangeSet`],
//! and the header fields that commit to them (gas used, logs bloom, transactions and receipts
//! roots). The caller commits the change set to a [`trellis_state::StateStore`] to obtain the
//! state root, and builds the header with [`BlockOutcome::header`].
//!
//! # Rules
//! - EVM hardfork: Prague ([`ExecutionConfig::SPEC`]); blob and set-code transactions refused.
//! - Gas: a fixed base fee per gas (zero by default: free gas), burned; priority fees go to the
//!   proposer's coinbase ([`trellis_types::ValidatorId::coinbase`]).
//! - A transaction is skipped, with a [`SkipReason`] and no effect on state, when it is
//!   malformed, badly signed, signed for another chain (or not EIP-155 protected), has a wrong
//!   nonce, cannot pay for its gas and value, or asks for more gas than the block has left.
//!   Reverted and halted transactions are executed: they get a failed receipt, pay for gas and
//!   bump the nonce, as on Ethereum. Revert data (reason strings and custom errors) is kept.
//! - Deterministic: no clock, no randomness; revm's hash maps are sorted before anything is
//!   written. Sender recovery runs on several threads but its results are put back in block
//!   order.
//!
//! # Not here
//! No state storage (see `trellis-state`), no consensus checks on headers (see
//! `trellis_types::Header::check_child_of`).
//!
//! # System contracts
//! Calls to the registry (`0x…1000`) and governance (`0x…1001`) addresses, from transactions or
//! contracts, are answered by `trellis-governance` through revm's precompile hook, reading and
//! writing revm's journal, so they revert with the calls around them and cost gas like
//! storage work.

mod config;
mod context;
mod db;
mod deploy;
mod executor;
mod journal;
mod outcome;
mod system;

pub use config::ExecutionConfig;
pub use context::BlockContext;
pub use db::DbError;
pub use executor::{CallOutcome, CallRequest, ExecutionError, Executor, Packed, recover_senders};
pub use outcome::{BlockOutcome, SkipReason, SkippedTx, TxReceipt};
/// Why the EVM halted a transaction or call (out of gas, invalid opcode…), as revm types it.
pub use revm::context::result::HaltReason;
