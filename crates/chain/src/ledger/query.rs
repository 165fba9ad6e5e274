//! What clients read from the chain besides blocks: the latest state's slots and code, read-only
//! calls on it, and notifications of new blocks and admitted transactions.

use super::{Chain, context_of};
use crate::Runtime;
use alloy_primitives::{Address, Bytes, TxHash, U256};
use trellis_execution::{CallOutcome, CallRequest, ExecutionError};
use trellis_state::{StateError, StateReader as _};
use trellis_types::{Header, Height};

impl<E: Runtime> Chain<E> {
    /// A storage slot of an account in the latest finalized state (zero if never written).
    pub fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.lock().finalized.state.storage(address, slot)
    }

    /// The code of an account in the latest finalized state (empty without code).
    pub fn code(&self, address: &Address) -> Result<Bytes, StateError> {
        let inner = self.lock();
        let state = &inner.finalized.state;
        let Some(account) = state.account(address)? else {
            return Ok(Bytes::new());
        };
        Ok(state.code(&account.code_hash)?.unwrap_or_default())
    }

    /// Runs a read-only call on the latest finalized state, in the context of the latest block,
    /// and returns that block's header with the outcome. Nothing is committed.
    ///
    /// The chain's lock is held for the call so that it reads one consistent state; the call is
    /// bounded by its gas (at most the block gas limit).
    pub fn call(&self, request: &CallRequest) -> Result<(Header, CallOutcome), ExecutionError> {
        let inner = self.lock();
        let finalized = &inner.finalized;
        let context = context_of(&finalized.tip, &finalized.recent);
        let outcome = self
            .shared
            .executor
            .call(&context, &finalized.state, request)?;
        Ok((finalized.tip.clone(), outcome))
    }

    /// The height of the latest finalized block, stored and committed; it changes each time a
    /// block is finalized (skipped heights are never skipped blocks: read from the last seen).
    pub fn heads(&self) -> tokio::sync::watch::Receiver<Height> {
        self.shared.heads.subscribe()
    }

    /// The hashes of transactions the pool admits from now on (from clients and from other
    /// validators). A receiver that falls behind by more than the backlog is told how many it
    /// missed.
    pub fn admitted(&self) -> tokio::sync::broadcast::Receiver<TxHash> {
        self.shared.admitted.subscribe()
    }
}
