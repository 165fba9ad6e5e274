//! What clients read from the chain besides blocks: the state after any finalized block (the
//! latest directly, earlier ones through the history index), read-only calls on it, and
//! notifications of new blocks and admitted transactions.

use super::{Chain, context_of};
use crate::Runtime;
use alloy_primitives::{Address, Bytes, TxHash, U256};
use trellis_execution::{CallOutcome, CallRequest, ExecutionError};
use trellis_state::{Account, StateError, StateReader};
use trellis_types::{Header, Height};

impl<E: Runtime> Chain<E> {
    /// Runs `read` on the state after block `height` (at most the latest), under the chain's
    /// lock so that it sees one state throughout.
    fn read_at<T>(
        &self,
        height: Height,
        read: impl FnOnce(&dyn StateReader) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let inner = self.lock();
        let finalized = &inner.finalized;
        if height == finalized.tip.height {
            read(&finalized.state)
        } else {
            read(&finalized.state.at(height))
        }
    }

    /// An account after block `height`.
    pub fn account_at(
        &self,
        address: &Address,
        height: Height,
    ) -> Result<Option<Account>, StateError> {
        self.read_at(height, |state| state.account(address))
    }

    /// A storage slot after block `height` (zero if never written).
    pub fn storage_at(
        &self,
        address: &Address,
        slot: &U256,
        height: Height,
    ) -> Result<U256, StateError> {
        self.read_at(height, |state| state.storage(address, slot))
    }

    /// The code of an account after block `height` (empty without code).
    pub fn code_at(&self, address: &Address, height: Height) -> Result<Bytes, StateError> {
        self.read_at(height, |state| {
            let Some(account) = state.account(address)? else {
                return Ok(Bytes::new());
            };
            Ok(state.code(&account.code_hash)?.unwrap_or_default())
        })
    }

    /// Runs a read-only call on the state after the block `header` heads, in that block's
    /// context. Nothing is committed. `BLOCKHASH` sees the finalized blocks of the last 256
    /// (the window the chain keeps in memory) below the block.
    ///
    /// The chain's lock is held for the call so that it reads one consistent state; the call is
    /// bounded by its gas (at most the block gas limit).
    pub fn call_at(
        &self,
        request: &CallRequest,
        header: &Header,
    ) -> Result<CallOutcome, ExecutionError> {
        let inner = self.lock();
        let finalized = &inner.finalized;
        let ancestors = finalized
            .recent
            .range(..header.height)
            .map(|(height, hash)| (*height, *hash))
            .collect();
        let context = context_of(header, &ancestors);
        let executor = &self.shared.executor;
        if header.height == finalized.tip.height {
            executor.call(&context, &finalized.state, request)
        } else {
            executor.call(&context, &finalized.state.at(header.height), request)
        }
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
