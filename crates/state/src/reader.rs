//! Reading state, committing it, and reading it ahead of finality.

use crate::{Account, ChangeSet, StateError};
use alloy_primitives::{Address, B256, Bytes, U256};
use std::sync::Arc;
use trellis_types::{Height, StateRoot};

/// Read access to the world state at one point of the chain.
pub trait StateReader {
    /// The account at `address`, or `None` if it does not exist.
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError>;

    /// The value of a storage slot (zero if never written).
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError>;

    /// Contract code by its keccak-256 hash.
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError>;
}

/// A state that commits one [`ChangeSet`] per block, in height order, and commits to its
/// contents with a root.
///
/// A block's changes are first *staged* on top of its parent (a committed block, or another
/// staged one): that yields the root its header carries and writes nothing. Once the block is
/// final, its staged changes are committed. Staged blocks that never finalize are dropped.
pub trait StateStore: StateReader {
    /// A block's changes, staged on its parent's state.
    type Staged;

    /// The height and root of the last commit; `None` before genesis is committed.
    fn committed(&self) -> Option<(Height, StateRoot)>;

    /// The height the next commit must carry.
    fn next_height(&self) -> Height {
        self.committed()
            .map_or(Height::GENESIS, |(height, _)| height.next())
    }

    /// Stages `changes` of the block at `height` on `parent` (`None`: on committed state).
    ///
    /// Refuses unless `height` follows the parent's height.
    fn stage(
        &self,
        parent: Option<&Self::Staged>,
        height: Height,
        changes: &ChangeSet,
    ) -> Result<Self::Staged, StateError>;

    /// Commits a staged block durably and returns the new root.
    ///
    /// Refuses (leaving the store unchanged) unless it is the block at
    /// [`next_height`](Self::next_height), staged on the last commit.
    fn commit(
        &mut self,
        staged: &Self::Staged,
    ) -> impl Future<Output = Result<StateRoot, StateError>> + Send;
}

/// A read view of committed state with unfinalized blocks' change sets layered on top
/// (oldest first), so a block can execute on a parent that is not final yet.
pub struct Speculative<'a, S: ?Sized> {
    base: &'a S,
    layers: Vec<Arc<ChangeSet>>,
}

impl<'a, S: StateReader + ?Sized> Speculative<'a, S> {
    /// A view of `base` with `layers` applied, oldest first.
    pub fn new(base: &'a S, layers: Vec<Arc<ChangeSet>>) -> Self {
        Self { base, layers }
    }
}

impl<S: StateReader + ?Sized> StateReader for Speculative<'_, S> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        for layer in self.layers.iter().rev() {
            if let Some(change) = layer.account(address) {
                return Ok(change.account);
            }
        }
        self.base.account(address)
    }

    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        for layer in self.layers.iter().rev() {
            if let Some(value) = layer.account(address).and_then(|change| change.slot(slot)) {
                return Ok(value);
            }
        }
        self.base.storage(address, slot)
    }

    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        for layer in self.layers.iter().rev() {
            if let Some(code) = layer.code(code_hash) {
                return Ok(Some(code.clone()));
            }
        }
        self.base.code(code_hash)
    }
}
