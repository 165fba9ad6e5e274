//! Opening the chain: the genesis on an empty directory, or the finalized chain from its block
//! store and committed state, re-executing stored blocks the state had not committed.
//!
//! Runs once, inside `Chain::open`, before the state has an owner and before anything else can
//! read it; staging and execution drive storage futures synchronously here for that reason.

use super::{ChainError, Finalized, RECENT_BLOCKS, context_of};
use crate::{Runtime, genesis::Genesis, store::BlockStore, stored::StoredBlock};
use std::collections::BTreeMap;
use tracing::info;
use trellis_execution::Executor;
use trellis_state::{QmdbStore, StateStore};
use trellis_types::{Block, Height};

/// Commits the genesis state and stores block 0. Either step may already be done (a crash
/// between them); doing it again is harmless.
pub(super) async fn start_from_genesis<E: Runtime>(
    mut state: QmdbStore<E>,
    genesis: &Genesis,
    store: &BlockStore<E>,
) -> Result<(QmdbStore<E>, Block), ChainError> {
    let root = match state.committed() {
        Some((_, root)) => root,
        None => {
            let staged = state.stage(None, Height::GENESIS, &genesis.changes())?;
            state.commit(&staged).await?
        }
    };
    let block = genesis.block(root);
    let stored = StoredBlock {
        block: block.clone(),
        receipts: Vec::new(),
    };
    store.put(&stored).await?;
    Ok((state, block))
}

/// The finalized chain from its committed state and its block store: checks that they agree,
/// re-executes stored blocks the state has not committed yet, and loads the recent hashes.
pub(super) async fn resume<E: Runtime>(
    executor: &Executor,
    store: &BlockStore<E>,
    state: QmdbStore<E>,
    genesis_block: &Block,
) -> Result<Finalized<E>, ChainError> {
    let (state_height, state_root) = state.committed().expect("genesis is committed");
    let last = store.last_height().await.unwrap_or(Height::GENESIS);
    if state_height > last {
        return Err(ChainError::StateAhead {
            state: state_height,
            stored: last,
        });
    }
    let stored_block = |height: Height| async move {
        store
            .block(height)
            .await?
            .map(|stored| stored.block)
            .ok_or(ChainError::MissingBlock { height, last })
    };
    let tip = stored_block(state_height).await?;
    if tip.header().state_root != state_root {
        return Err(ChainError::StateRootMismatch {
            height: state_height,
            state: state_root,
            header: tip.header().state_root,
        });
    }
    let mut recent = BTreeMap::new();
    let first_recent = Height(state_height.get().saturating_sub(RECENT_BLOCKS - 1));
    for height in first_recent.get()..state_height.get() {
        let height = Height(height);
        recent.insert(height, stored_block(height).await?.hash());
    }
    recent.insert(state_height, tip.hash());
    let mut finalized = Finalized {
        state,
        tip: tip.header().clone(),
        tip_hash: tip.hash(),
        recent,
    };
    debug_assert!(state_height > Height::GENESIS || tip.hash() == genesis_block.hash());
    // Blocks stored but not committed to state: a crash came between the two.
    while finalized.tip.height < last {
        let height = finalized.tip.height.next();
        let block = stored_block(height).await?;
        let context = context_of(block.header(), &finalized.recent);
        let outcome = executor.execute(&context, &finalized.state, block.transactions())?;
        let staged = finalized.state.stage(None, height, &outcome.changes)?;
        if staged.root() != block.header().state_root || block.parent() != finalized.tip_hash {
            return Err(ChainError::CorruptReplay { height });
        }
        finalized.state.commit(&staged).await?;
        finalized.advance(&block);
        info!(%height, "re-executed a stored block whose state was not committed");
    }
    Ok(finalized)
}
