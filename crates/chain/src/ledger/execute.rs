//! Executing blocks on the owned state: building proposals, checking others' blocks, catching
//! up on certified blocks this node has not executed. Runs on the state's owner only.

use super::{ChainError, Executed, Inner, context_of, recovery::RecoveredBlock};
use crate::{Runtime, stored::ReceiptRecord};
use alloy_primitives::{TxHash, keccak256};
use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};
use tracing::{debug, warn};
use trellis_consensus::{Built, Path, Proposal};
use trellis_execution::{
    BlockContext, BlockOutcome, Packed, SkipReason, SkippedTx, recover_senders,
};
use trellis_mempool::BlockBudget;
use trellis_state::{ChangeSet, QmdbStore, Speculative, Staged, StateReader, StateStore};
use trellis_types::{Block, BlockHash, ClaimedSenders, Header, Height, RecoveredTx};

/// How much more gas (by gas limits) the candidates for a block may ask for than the block
/// has. Transactions use less than their limits (an ERC-20 transfer ~35,000 of the usual
/// 60,000) and packing stops when the block is full, so 2 fills blocks by the gas used (1,745
/// ERC-20 transfers instead of 1,000; +5-13 % TPS in release). It stays 1 until the time
/// between blocks no longer grows with their size: with 2, a debug build of 4 validators in one
/// process went 3 s without a block under saturation (CI allows 2 s).
const CANDIDATE_GAS_FACTOR: u64 = 1;

/// The unfinalized blocks from the finalized tip up to one block.
struct Layers {
    /// Their change sets, oldest first.
    changes: Vec<Arc<ChangeSet>>,
    /// Their hashes by height.
    hashes: BTreeMap<Height, BlockHash>,
}

impl<E: Runtime> Inner<E> {
    /// Builds the block following the last block of `path`, after executing the ones before
    /// it; `None` (logged) if that fails.
    pub(super) fn propose(&mut self, path: &Path, proposal: Proposal) -> Option<Built> {
        let built = self
            .catch_up(path)
            .and_then(|()| self.build(path.last().expect("a path is never empty"), proposal));
        match built {
            Ok((executed, senders)) => {
                let block = executed.block.clone();
                self.hold(executed);
                Some(Built { block, senders })
            }
            Err(error) => {
                warn!(%error, "cannot propose");
                None
            }
        }
    }

    /// Executes every block of `path` after the first (the last is the one under
    /// verification), each checked against its header.
    pub(super) fn verify(&mut self, path: &Path) -> Result<(), ChainError> {
        self.catch_up(path)
    }

    /// Keeps an executed block until it is finalized or loses its view.
    pub(super) fn hold(&mut self, executed: Executed) -> Arc<Executed> {
        let hash = executed.block.hash();
        let executed = Arc::new(executed);
        self.pending.insert(hash, executed.clone());
        self.published
            .lock()
            .expect("snapshot lock poisoned")
            .known
            .insert(hash);
        executed
    }

    /// The unfinalized blocks from the finalized tip up to and including `block`; `None` if
    /// `block` does not descend from the tip through blocks executed here.
    fn layers(&self, block: &BlockHash) -> Option<Layers> {
        let mut layers = Vec::new();
        let mut hashes = BTreeMap::new();
        let mut cursor = *block;
        while cursor != self.finalized.tip_hash {
            let executed = self.pending.get(&cursor)?;
            layers.push(executed.changes.clone());
            hashes.insert(executed.block.height(), cursor);
            cursor = executed.block.parent();
        }
        layers.reverse();
        Some(Layers {
            changes: layers,
            hashes,
        })
    }

    /// Transactions in the unfinalized blocks from the tip up to `block`.
    fn in_flight(&self, block: &BlockHash) -> HashSet<TxHash> {
        let mut hashes = HashSet::new();
        let mut cursor = *block;
        while let Some(executed) = self.pending.get(&cursor) {
            hashes.extend(executed.outcome_receipts.iter().map(|r| r.tx_hash));
            cursor = executed.block.parent();
        }
        hashes
    }

    /// Decodes a block's transactions, reusing the senders recovered ahead of time (`early`)
    /// or by the pool at admission.
    fn recover(
        &self,
        block: &Block,
        early: &mut RecoveredBlock,
    ) -> Result<Vec<RecoveredTx>, ChainError> {
        let raws = block.transactions();
        let mut found: Vec<Option<RecoveredTx>> = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                early
                    .take(i)
                    .or_else(|| self.rules.mempool.get(&keccak256(raw)))
            })
            .collect();
        // The rest (all of a block this node catches up on: its pool never saw them) on every
        // core: serially, recovery was 60 % of a catching-up node's owner thread.
        let missing: Vec<usize> = (0..raws.len()).filter(|&i| found[i].is_none()).collect();
        let to_recover: Vec<_> = missing.iter().map(|&i| raws[i].clone()).collect();
        for (index, recovered) in missing.into_iter().zip(recover_senders(&to_recover)) {
            let tx = recovered.map_err(|error| ChainError::InvalidTransaction {
                block: block.hash(),
                index,
                error,
            })?;
            found[index] = Some(tx);
        }
        Ok(found
            .into_iter()
            .map(|tx| tx.expect("every transaction found in the pool or recovered"))
            .collect())
    }

    /// The state `context.parent` leaves: the finalized state under the unfinalized blocks up
    /// to it. Fills in `context.ancestors` for `BLOCKHASH`.
    fn parent_view(
        &self,
        context: &mut BlockContext,
    ) -> Result<Speculative<'_, QmdbStore<E>>, ChainError> {
        let Layers {
            changes: layers,
            hashes,
        } = self
            .layers(&context.parent)
            .ok_or(ChainError::UnknownParent {
                parent: context.parent,
            })?;
        context.ancestors = self.finalized.recent.clone();
        context.ancestors.extend(hashes);
        Ok(Speculative::new(&self.finalized.state, layers))
    }

    /// Stages a block's changes on its parent's, for its state root.
    fn stage(&self, context: &BlockContext, changes: &ChangeSet) -> Result<Staged, ChainError> {
        let parent = self.pending.get(&context.parent).map(|e| &e.staged);
        Ok(self
            .finalized
            .state
            .stage(parent, context.height, changes)?)
    }

    /// Executes a block proposed by someone else and checks it against its header.
    pub(super) fn execute_block(&self, block: &Block) -> Result<Executed, ChainError> {
        self.execute_recovered_block(block, &mut RecoveredBlock::default())
    }

    /// [`execute_block`](Self::execute_block), with senders recovered ahead of time.
    pub(super) fn execute_recovered_block(
        &self,
        block: &Block,
        early: &mut RecoveredBlock,
    ) -> Result<Executed, ChainError> {
        let hash = block.hash();
        let transactions = self.recover(block, early)?;
        let mut context = context_of(block.header(), &BTreeMap::new());
        let view = self.parent_view(&mut context)?;
        let outcome = self
            .rules
            .executor
            .execute_recovered(&context, &view, &transactions)?;
        let staged = self.stage(&context, &outcome.changes)?;
        if let Some(SkippedTx { index, reason, .. }) = outcome.skipped.first() {
            return Err(ChainError::SkippedTransaction {
                block: hash,
                index: *index,
                reason: Box::new(reason.clone()),
            });
        }
        let expected = outcome.header(&context, staged.root());
        if &expected != block.header() {
            return Err(ChainError::HeaderMismatch {
                block: hash,
                fields: header_diff(&expected, block.header()),
            });
        }
        Ok(executed(block.clone(), outcome, staged))
    }

    /// Makes sure every block of `path` after the first is executed here (they are certified by
    /// consensus; this node missed them or restarted).
    fn catch_up(&mut self, path: &[Block]) -> Result<(), ChainError> {
        for block in path.iter().skip(1) {
            let hash = block.hash();
            let finalized = &self.finalized;
            if block.height() <= finalized.tip.height {
                match finalized.hash_at(block.height()) {
                    Some(h) if h == hash => continue,
                    Some(finalized) => {
                        return Err(ChainError::ConflictsWithFinalized {
                            height: block.height(),
                            hash,
                            finalized,
                        });
                    }
                    None => {
                        return Err(ChainError::TooOld {
                            height: block.height(),
                            hash,
                        });
                    }
                }
            }
            if self.pending.contains_key(&hash) {
                continue;
            }
            let executed = self.execute_block(block)?;
            self.hold(executed);
        }
        Ok(())
    }

    /// Builds a block on `parent` from the pool: packs candidates, leaving out the ones that
    /// cannot run (evicting those that never will). Candidates are chosen by their gas limits,
    /// [`CANDIDATE_GAS_FACTOR`] times the block's gas, and packed by the gas they use.
    fn build(
        &self,
        parent: &Block,
        proposal: Proposal,
    ) -> Result<(Executed, ClaimedSenders), ChainError> {
        let rules = &self.rules;
        let mut context = BlockContext {
            height: parent.height().next(),
            parent: parent.hash(),
            timestamp: proposal.timestamp,
            proposer: proposal.proposer,
            epoch: proposal.epoch,
            view: proposal.view,
            parent_view: proposal.parent_view,
            ancestors: BTreeMap::new(),
        };
        let view = self.parent_view(&mut context)?;
        let budget = BlockBudget {
            gas: rules
                .executor
                .params(&view)?
                .block_gas_limit
                .saturating_mul(CANDIDATE_GAS_FACTOR),
            bytes: rules.limits.max_block_bytes,
            transactions: rules.limits.max_transactions,
        };
        let exclude = self.in_flight(&parent.hash());
        let candidates = rules.mempool.candidates(budget, &exclude, |sender| {
            view.account(sender).ok().map(|a| a.map_or(0, |a| a.nonce))
        });
        let Packed {
            transactions,
            outcome,
        } = rules.executor.pack(&context, &view, &candidates)?;
        let staged = self.stage(&context, &outcome.changes)?;
        let evict: Vec<TxHash> = outcome
            .skipped
            .iter()
            .filter(|s| never_includable(&s.reason))
            .map(|s| s.tx_hash)
            .collect();
        if !evict.is_empty() {
            debug!(
                evicted = evict.len(),
                "evicting candidates that can never run"
            );
            rules.mempool.evict(&evict);
        }
        let header = outcome.header(&context, staged.root());
        let raw = transactions.iter().map(|tx| tx.raw().clone()).collect();
        let senders = ClaimedSenders::new(transactions.iter().map(RecoveredTx::sender).collect());
        let block = Block::new(header, raw).expect("the header commits to these transactions");
        Ok((executed(block, outcome, staged), senders))
    }
}

fn executed(block: Block, outcome: BlockOutcome, staged: Staged) -> Executed {
    assert_eq!(
        outcome.receipts.len(),
        block.transactions().len(),
        "one receipt per included transaction"
    );
    Executed {
        outcome_receipts: outcome.receipts.iter().map(ReceiptRecord::from).collect(),
        changes: Arc::new(outcome.changes),
        staged,
        block,
    }
}

/// Names the header fields that differ.
fn header_diff(expected: &Header, got: &Header) -> String {
    let mut fields = Vec::new();
    let mut check = |name, same: bool| {
        if !same {
            fields.push(name);
        }
    };
    check("state root", expected.state_root == got.state_root);
    check("receipts root", expected.receipts_root == got.receipts_root);
    check(
        "transactions root",
        expected.transactions_root == got.transactions_root,
    );
    check("logs bloom", expected.logs_bloom == got.logs_bloom);
    check("gas used", expected.gas_used == got.gas_used);
    check("gas limit", expected.gas_limit == got.gas_limit);
    if fields.is_empty() {
        fields.push("consensus fields");
    }
    fields.join(", ")
}

/// Whether a transaction skipped by the proposer's own execution can never be included.
fn never_includable(reason: &SkipReason) -> bool {
    matches!(
        reason,
        SkipReason::Malformed(_)
            | SkipReason::UnsupportedType(_)
            | SkipReason::InvalidSignature
            | SkipReason::WrongChainId { .. }
            | SkipReason::NonceTooLow { .. }
            | SkipReason::GasLimitAboveBlockLimit { .. }
            | SkipReason::FeeBelowBaseFee { .. }
            | SkipReason::Rejected(_)
            | SkipReason::NotPermitted(_)
    )
}
