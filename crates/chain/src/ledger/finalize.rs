//! Applying finalized blocks to the owned state: the tip moves by one block at a time, after the
//! block is stored. Runs on the state's owner only.

use super::{Executed, Inner, RECENT_BLOCKS, recovery::RecoveredBlock};
use crate::Runtime;
use alloy_primitives::Address;
use std::{collections::BTreeMap, sync::Arc};
use tracing::warn;
use trellis_state::{QmdbStore, StateReader, StateStore as _};
use trellis_types::{Block, BlockHash, Header, Height};

/// The last finalized block and the state after it.
pub(super) struct Finalized<E: Runtime> {
    pub state: QmdbStore<E>,
    pub tip: Header,
    pub tip_hash: BlockHash,
    /// The hashes of the last [`RECENT_BLOCKS`] finalized blocks.
    pub recent: BTreeMap<Height, BlockHash>,
}

impl<E: Runtime> Finalized<E> {
    /// Moves the tip to `block`, which was just committed.
    pub fn advance(&mut self, block: &Block) {
        assert_eq!(
            block.height(),
            self.tip.height.next(),
            "heights advance by one"
        );
        assert_eq!(block.parent(), self.tip_hash, "a block extends the tip");
        self.tip = block.header().clone();
        self.tip_hash = block.hash();
        self.recent.insert(block.height(), block.hash());
        while self.recent.len() as u64 > RECENT_BLOCKS {
            self.recent.pop_first();
        }
    }

    /// The finalized hash at `height`, if within the recent window.
    pub fn hash_at(&self, height: Height) -> Option<BlockHash> {
        self.recent.get(&height).copied()
    }
}

/// What storing a finalized block needs: its execution.
pub(super) struct ToStore {
    pub executed: Arc<Executed>,
}

impl<E: Runtime> Inner<E> {
    /// The execution of a newly finalized `block` (executing it now if this node has not), or
    /// `None` if it is already applied.
    ///
    /// # Panics
    /// If another block was finalized at its height, or it fails execution: consensus
    /// certified it, so this node's state or code is wrong and must not go on.
    pub(super) fn prepare_store(
        &mut self,
        block: &Block,
        mut early: RecoveredBlock,
    ) -> Option<ToStore> {
        let hash = block.hash();
        let finalized = &self.finalized;
        if block.height() <= finalized.tip.height {
            // Delivered again (after a restart): it must be the block already applied.
            if let Some(held) = finalized.hash_at(block.height()) {
                assert_eq!(held, hash, "two different blocks finalized at one height");
            }
            return None;
        }
        let executed = match self.pending.get(&hash) {
            Some(executed) => executed.clone(),
            None => {
                let executed = self
                    .execute_recovered_block(block, &mut early)
                    .unwrap_or_else(|e| panic!("a finalized block fails execution: {e}"));
                self.hold(executed)
            }
        };
        Some(ToStore { executed })
    }

    /// Commits a stored finalized block's changes, moves the tip and publishes it. Returns the
    /// new nonces of its senders, for the pool.
    pub(super) fn apply(&mut self, block: &Block, executed: &Executed) -> Applied {
        #[cfg(feature = "fault-injection")]
        self.interrupt_commit(block, executed);
        let finalized = &mut self.finalized;
        // On the owner, so no proposal or vote reads the state mid-commit. The commit waits
        // only on storage (the runtime's blocking pool), never on another task.
        let root = trellis_state::block_on(finalized.state.commit(&executed.staged))
            .unwrap_or_else(|e| panic!("cannot commit finalized block: {e}"));
        assert_eq!(
            root,
            block.header().state_root,
            "finalized state diverges from the block's root"
        );
        finalized.advance(block);
        let height = block.height();
        self.pending.retain(|_, e| e.block.height() > height);
        self.publish();
        let nonces = executed
            .outcome_receipts
            .iter()
            .map(|receipt| {
                let nonce = self
                    .finalized
                    .state
                    .account(&receipt.from)
                    .ok()
                    .flatten()
                    .map_or(0, |a| a.nonce);
                (receipt.from, nonce)
            })
            .collect();
        let rules_changed = executed.outcome_receipts.iter().any(|receipt| {
            receipt
                .envelope
                .logs()
                .iter()
                .any(trellis_governance::changes_rules)
        });
        let barred = if rules_changed {
            self.refresh_params();
            self.barred_senders(height.next())
        } else {
            Vec::new()
        };
        Applied { nonces, barred }
    }

    /// Gives admission the gas limit and fee floor of the finalized state (a proposal may have
    /// changed them).
    pub(super) fn refresh_params(&self) {
        match self.rules.executor.params(&self.finalized.state) {
            Ok(params) => self
                .rules
                .mempool
                .set_params(params.block_gas_limit, params.base_fee_per_gas),
            Err(error) => warn!(%error, "cannot read the chain's parameters for admission"),
        }
    }

    /// The pool's senders the rules in the finalized state refuse at `height` (a proposal
    /// froze or abolished them, or took a role they need).
    fn barred_senders(&self, height: Height) -> Vec<Address> {
        let state = &self.finalized.state;
        self.rules
            .mempool
            .senders()
            .into_iter()
            .filter(|sender| {
                match trellis_governance::refusal(state, sender, false, height) {
                    Ok(refused) => refused.is_some(),
                    Err(error) => {
                        warn!(%sender, %error, "cannot re-check a pending sender against the rules");
                        false
                    }
                }
            })
            .collect()
    }
}

/// What applying a finalized block means for the pool.
pub(super) struct Applied {
    /// The nonce of each sender of the block in the new state.
    pub nonces: Vec<(Address, u64)>,
    /// Senders the rules refuse from now on.
    pub barred: Vec<Address>,
}

#[cfg(feature = "fault-injection")]
impl<E: Runtime> Inner<E> {
    /// The injected fault [`crate::InterruptCommit`], if it is for this block: the block's state
    /// made durable in the storage table only, then the process stopped.
    fn interrupt_commit(&mut self, block: &Block, executed: &Executed) {
        let Some(interrupt) = self.rules.faults.interrupt_commit else {
            return;
        };
        if interrupt.height != block.height() {
            return;
        }
        let state = &mut self.finalized.state;
        // On the owner's dedicated thread, as the commit it interrupts (see `apply`).
        let _ = trellis_state::block_on(async {
            state.apply(&executed.staged).await?;
            (state.sync_one_table(trellis_state::TableName::Storage)).await
        });
        (interrupt.stop)(block.height())
    }
}
