//! [`Chain`]: the [`Ledger`] consensus builds on. It executes proposals on the EVM, keeps the
//! state after every block it executed but consensus has not finalized yet, and applies and
//! stores finalized blocks.
//!
//! # Which state a header commits to
//! A header's state root is the state *after its own transactions*: the proposer executes the
//! block before proposing it and every validator executes it before voting. Finality therefore
//! certifies the result, and a receipt is readable the moment its block is finalized, with no
//! extra block to wait for. The price is that execution sits on the critical path of each view
//! (once at the leader, once in parallel at the voters); at Trellis's block sizes it is a few
//! milliseconds against a ~25 ms network round (ARCHITECTURE.md has the figures).
//!
//! # Unfinalized blocks
//! A block executed while proposing or verifying is kept as [`Executed`]: its change set, its
//! receipts and its state staged in QMDB on top of its parent's (which gives the header's state
//! root). A child executes on a [`Speculative`] view: the finalized state with the change sets
//! of its unfinalized ancestors layered on top. When the block is finalized its staged state is
//! committed as is: each finalized block is executed once.
//!
//! # Restart
//! Finalized blocks are stored before their state is committed, so after a crash the state is
//! at most a few blocks behind the block store. Opening re-executes the stored blocks above the
//! state's height (each checked against its header's root); state is never rebuilt from genesis.

mod query;

use crate::Runtime;
use crate::{
    genesis::Genesis,
    store::{BlockStore, ReceiptRecord, StoreError, StoredBlock},
};
use alloy_primitives::{Address, TxHash, keccak256};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};
use tracing::{debug, info, warn};
use trellis_consensus::{Ledger, Path, Proposal};
use trellis_execution::{
    BlockContext, BlockOutcome, ExecutionError, Executor, SkipReason, SkippedTx,
};
use trellis_mempool::{BlockBudget, Mempool, PoolConfig};
use trellis_state::{
    Account, ChangeSet, QmdbConfig, QmdbStore, Speculative, Staged, StateError, StateReader,
    StateStore,
};
use trellis_types::{
    Block, BlockHash, BlockLimits, Header, Height, RecoveredTx, StateRoot, TxError, transaction,
};

/// How many finalized block hashes are kept in memory: the `BLOCKHASH` window.
const RECENT_BLOCKS: u64 = 256;

/// How many admitted transaction hashes wait for a slow subscriber before it skips ahead.
const ADMITTED_BACKLOG: usize = 16_384;

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
        reason: SkipReason,
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

/// A block executed here but not finalized yet.
#[derive(Debug)]
pub struct Executed {
    block: Block,
    changes: Arc<ChangeSet>,
    staged: Staged,
    outcome_receipts: Vec<ReceiptRecord>,
}

/// The last finalized block and the state after it.
struct Finalized<E: Runtime> {
    state: QmdbStore<E>,
    tip: Header,
    tip_hash: BlockHash,
    /// The hashes of the last [`RECENT_BLOCKS`] finalized blocks.
    recent: BTreeMap<Height, BlockHash>,
    /// Position in the whole chain of the next finalized transaction (the transaction index's
    /// key order).
    next_tx_position: u64,
}

struct Inner<E: Runtime> {
    finalized: Finalized<E>,
    /// Executed, unfinalized blocks by hash.
    pending: HashMap<BlockHash, Arc<Executed>>,
}

struct Shared<E: Runtime> {
    executor: Executor,
    genesis: Genesis,
    limits: BlockLimits,
    mempool: Mempool,
    store: BlockStore<E>,
    genesis_block: Block,
    kill_during_commit: Option<Height>,
    inner: Mutex<Inner<E>>,
    /// Where client transactions go to be gossiped, once gossip runs.
    gossip: Mutex<Option<futures::channel::mpsc::UnboundedSender<trellis_types::Bytes>>>,
    /// The height of the last finalized block that is stored and committed (for subscribers).
    heads: tokio::sync::watch::Sender<Height>,
    /// Hashes of transactions as the pool admits them (for subscribers; lagging ones skip).
    admitted: tokio::sync::broadcast::Sender<TxHash>,
}

/// The chain as one validator holds it. Cheap to clone; clones share everything.
pub struct Chain<E: Runtime> {
    shared: Arc<Shared<E>>,
}

impl<E: Runtime> Clone for Chain<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

/// What the chain needs to open.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    pub genesis: Genesis,
    pub limits: BlockLimits,
    /// Prefix of the chain's storage partitions (distinct per validator sharing a directory).
    pub partition_prefix: String,
    /// Memory for the state's page cache (allocated up front).
    pub state_cache_bytes: usize,
    /// State history to keep: `None` keeps all (see [`QmdbConfig::keep_blocks`]).
    pub state_keep_blocks: Option<u64>,
    /// Crash test hook, `None` in service: while committing this block's state (applied, and
    /// durable in the storage table but not yet in the accounts table), the process kills itself
    /// with SIGKILL.
    pub kill_during_commit: Option<Height>,
}

impl<E: Runtime> Chain<E> {
    /// Opens the chain stored under `config.partition_prefix`, or starts it from the genesis.
    ///
    /// The state comes back as of its last commit; stored blocks above it (a crash between
    /// storing a block and committing its state) are executed again, each checked against its
    /// header's state root.
    pub async fn open(context: E, config: ChainConfig) -> Result<Self, ChainError> {
        let genesis = config.genesis;
        let executor = Executor::new(genesis.execution_config());
        let mempool = Mempool::new(PoolConfig::new(
            genesis.chain_id,
            genesis.block_gas_limit,
            u128::from(genesis.gas_price),
        ));
        let store = BlockStore::open(
            context.child("store"),
            &config.partition_prefix,
            config.limits,
        )
        .await?;
        let mut state_config = QmdbConfig::new(&config.partition_prefix);
        state_config.page_cache_bytes = config.state_cache_bytes;
        state_config.keep_blocks = config.state_keep_blocks;
        let state = QmdbStore::open(context.child("state"), &state_config).await?;

        let stored_genesis = store.block(Height::GENESIS).await?;
        let (state, genesis_block) = match (state.committed(), stored_genesis) {
            (None, Some(_)) => return Err(ChainError::StateMissing),
            (None, None) | (Some((Height::GENESIS, _)), None) => {
                start_from_genesis(state, &genesis, &store).await?
            }
            (Some(_), None) => return Err(ChainError::StateMissing),
            (Some(_), Some(stored)) => {
                let expected = genesis.block(stored.block.header().state_root);
                if stored.block.hash() != expected.hash() {
                    return Err(ChainError::OtherChain {
                        stored: stored.block.hash(),
                        expected: expected.hash(),
                    });
                }
                (state, stored.block)
            }
        };
        let finalized = resume(&executor, &store, state, &genesis_block).await?;
        info!(height = %finalized.tip.height, hash = %finalized.tip_hash, "chain opened");
        let heads = tokio::sync::watch::Sender::new(finalized.tip.height);
        let (admitted, _) = tokio::sync::broadcast::channel(ADMITTED_BACKLOG);
        Ok(Self {
            shared: Arc::new(Shared {
                executor,
                genesis,
                limits: config.limits,
                mempool,
                store,
                genesis_block,
                kill_during_commit: config.kill_during_commit,
                inner: Mutex::new(Inner {
                    finalized,
                    pending: HashMap::new(),
                }),
                gossip: Mutex::new(None),
                heads,
                admitted,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
        self.shared.inner.lock().expect("chain lock poisoned")
    }

    pub fn genesis(&self) -> &Genesis {
        &self.shared.genesis
    }

    pub fn mempool(&self) -> &Mempool {
        &self.shared.mempool
    }

    pub fn store(&self) -> &BlockStore<E> {
        &self.shared.store
    }

    /// The block consensus starts from (height 0).
    pub fn genesis_block(&self) -> Block {
        self.shared.genesis_block.clone()
    }

    /// The last finalized block's header and hash.
    pub fn latest(&self) -> (Header, BlockHash) {
        let inner = self.lock();
        (inner.finalized.tip.clone(), inner.finalized.tip_hash)
    }

    /// An account in the latest finalized state.
    pub fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.lock().finalized.state.account(address)
    }

    /// Proofs of an account and some of its slots in the latest finalized state, with the
    /// header whose state root they verify against (read together, under the chain's lock).
    pub fn prove(
        &self,
        address: &Address,
        slots: &[trellis_types::U256],
    ) -> Result<(Header, BlockHash, trellis_state::StateProof), StateError> {
        let inner = self.lock();
        let finalized = &inner.finalized;
        let proof = trellis_state::block_on(finalized.state.prove(address, slots))?;
        Ok((finalized.tip.clone(), finalized.tip_hash, proof))
    }

    /// The history of an account (`slot` = `None`) or one of its storage slots, proven against
    /// the latest finalized state root, with that block's header (read together, under the
    /// chain's lock). Transaction hashes are not filled in (see the block store).
    pub fn history(
        &self,
        address: &Address,
        slot: Option<trellis_types::U256>,
        limit: usize,
    ) -> Result<(Header, BlockHash, trellis_state::History), StateError> {
        let inner = self.lock();
        let finalized = &inner.finalized;
        let history = trellis_state::block_on(finalized.state.history(address, slot, limit))?;
        Ok((finalized.tip.clone(), finalized.tip_hash, history))
    }

    /// Admits a transaction from a client to the pool, checked against the latest finalized
    /// state, and queues it for gossip to the other validators.
    pub fn submit(
        &self,
        raw: trellis_types::Bytes,
    ) -> Result<TxHash, trellis_mempool::AdmissionError> {
        let hash = self.admit(raw.clone())?;
        let feed = self.shared.gossip.lock().expect("gossip lock poisoned");
        if let Some(feed) = feed.as_ref() {
            // Unbounded, but fed only by admitted transactions: the pool's capacity bounds it.
            let _ = feed.unbounded_send(raw);
        }
        Ok(hash)
    }

    /// Admits a transaction another validator gossiped (not gossiped again: every validator
    /// is connected to every other).
    pub fn admit(
        &self,
        raw: trellis_types::Bytes,
    ) -> Result<TxHash, trellis_mempool::AdmissionError> {
        // Recovery happens inside `add` before any state is read; the chain lock is taken
        // per read, never across it.
        let hash = self.shared.mempool.add(raw, &LatestState(self))?;
        // No receiver is not an error: nobody subscribed.
        let _ = self.shared.admitted.send(hash);
        Ok(hash)
    }

    /// The transactions clients submit from now on, for gossip. Replaces any earlier feed.
    pub fn gossip_feed(&self) -> futures::channel::mpsc::UnboundedReceiver<trellis_types::Bytes> {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        *self.shared.gossip.lock().expect("gossip lock poisoned") = Some(sender);
        receiver
    }
}

/// The latest finalized state, locked for each read only.
struct LatestState<'a, E: Runtime>(&'a Chain<E>);

impl<E: Runtime> StateReader for LatestState<'_, E> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.0.lock().finalized.state.account(address)
    }

    fn storage(
        &self,
        address: &Address,
        slot: &trellis_types::U256,
    ) -> Result<trellis_types::U256, StateError> {
        self.0.lock().finalized.state.storage(address, slot)
    }

    fn code(&self, hash: &trellis_types::B256) -> Result<Option<trellis_types::Bytes>, StateError> {
        self.0.lock().finalized.state.code(hash)
    }
}

/// Commits the genesis state and stores block 0. Either step may already be done (a crash
/// between them); doing it again is harmless.
async fn start_from_genesis<E: Runtime>(
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
    store.put(&stored, 0).await?;
    Ok((state, block))
}

/// The finalized chain from its committed state and its block store: checks that they agree,
/// re-executes stored blocks the state has not committed yet, and loads the recent hashes.
async fn resume<E: Runtime>(
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
        next_tx_position: store.transactions_stored().await,
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

impl<E: Runtime> Finalized<E> {
    /// Moves the tip to `block`, which was just committed.
    fn advance(&mut self, block: &Block) {
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
    fn hash_at(&self, height: Height) -> Option<BlockHash> {
        self.recent.get(&height).copied()
    }

    fn is_finalized(&self, hash: &BlockHash) -> bool {
        self.recent.values().any(|h| h == hash)
    }
}

/// The execution context of a block, from its header and its ancestors' hashes.
fn context_of(header: &Header, ancestors: &BTreeMap<Height, BlockHash>) -> BlockContext {
    BlockContext {
        height: header.height,
        parent: header.parent,
        timestamp: header.timestamp,
        proposer: header.proposer,
        epoch: header.epoch,
        view: header.view,
        parent_view: header.parent_view,
        ancestors: ancestors.clone(),
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
    )
}

/// The unfinalized blocks from the finalized tip up to one block.
struct Layers {
    /// Their change sets, oldest first.
    changes: Vec<Arc<ChangeSet>>,
    /// Their hashes by height.
    hashes: BTreeMap<Height, BlockHash>,
}

impl<E: Runtime> Inner<E> {
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
}

impl<E: Runtime> Chain<E> {
    /// Decodes a block's transactions, reusing the senders the pool recovered at admission.
    fn recover(&self, block: &Block) -> Result<Vec<RecoveredTx>, ChainError> {
        block
            .transactions()
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let hash = keccak256(raw);
                match self.shared.mempool.get(&hash) {
                    Some(tx) => Ok(tx),
                    None => transaction::decode(raw.clone()).map_err(|error| {
                        ChainError::InvalidTransaction {
                            block: block.hash(),
                            index,
                            error,
                        }
                    }),
                }
            })
            .collect()
    }

    /// Runs `transactions` as the block `context` on top of `context.parent`.
    fn run(
        &self,
        inner: &Inner<E>,
        context: &mut BlockContext,
        transactions: &[RecoveredTx],
    ) -> Result<(BlockOutcome, Staged), ChainError> {
        let Layers {
            changes: layers,
            hashes,
        } = inner
            .layers(&context.parent)
            .ok_or(ChainError::UnknownParent {
                parent: context.parent,
            })?;
        context.ancestors = inner.finalized.recent.clone();
        context.ancestors.extend(hashes);
        let state = &inner.finalized.state;
        let view = Speculative::new(state, layers.clone());
        let outcome = self
            .shared
            .executor
            .execute_recovered(context, &view, transactions)?;
        let parent = inner.pending.get(&context.parent).map(|e| &e.staged);
        let staged = state.stage(parent, context.height, &outcome.changes)?;
        Ok((outcome, staged))
    }

    /// Executes a block proposed by someone else and checks it against its header.
    fn execute_block(&self, inner: &Inner<E>, block: &Block) -> Result<Executed, ChainError> {
        let hash = block.hash();
        let transactions = self.recover(block)?;
        let mut context = context_of(block.header(), &BTreeMap::new());
        let (outcome, staged) = self.run(inner, &mut context, &transactions)?;
        if let Some(SkippedTx { index, reason, .. }) = outcome.skipped.first() {
            return Err(ChainError::SkippedTransaction {
                block: hash,
                index: *index,
                reason: reason.clone(),
            });
        }
        let expected = outcome.header(&context, self.shared.genesis.block_gas_limit, staged.root());
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
    fn catch_up(&self, inner: &mut Inner<E>, path: &[Block]) -> Result<(), ChainError> {
        for block in path.iter().skip(1) {
            let hash = block.hash();
            let finalized = &inner.finalized;
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
            if inner.pending.contains_key(&hash) {
                continue;
            }
            let executed = self.execute_block(inner, block)?;
            inner.pending.insert(hash, Arc::new(executed));
        }
        Ok(())
    }

    /// Builds a block on `parent` from the pool: executes candidates, drops the ones that cannot
    /// run (evicting those that never will), and executes the rest again if any were dropped.
    fn build(
        &self,
        inner: &Inner<E>,
        parent: &Block,
        proposal: Proposal,
    ) -> Result<Executed, ChainError> {
        let limits = self.shared.limits;
        let budget = BlockBudget {
            gas: self.shared.genesis.block_gas_limit,
            bytes: limits.max_block_bytes,
            transactions: limits.max_transactions,
        };
        let exclude = inner.in_flight(&parent.hash());
        let layers = inner
            .layers(&parent.hash())
            .ok_or(ChainError::UnknownParent {
                parent: parent.hash(),
            })?;
        let view = Speculative::new(&inner.finalized.state, layers.changes);
        let mut candidates = self.shared.mempool.candidates(budget, &exclude, |sender| {
            view.account(sender).ok().map(|a| a.map_or(0, |a| a.nonce))
        });
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
        let (mut outcome, mut staged) = self.run(inner, &mut context, &candidates)?;
        if !outcome.skipped.is_empty() {
            let dropped: HashSet<usize> = outcome.skipped.iter().map(|s| s.index).collect();
            let evict: Vec<TxHash> = outcome
                .skipped
                .iter()
                .filter(|s| never_includable(&s.reason))
                .map(|s| s.tx_hash)
                .collect();
            debug!(
                skipped = dropped.len(),
                evicted = evict.len(),
                "dropping candidates"
            );
            self.shared.mempool.evict(&evict);
            candidates = candidates
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !dropped.contains(i))
                .map(|(_, tx)| tx)
                .collect();
            (outcome, staged) = self.run(inner, &mut context, &candidates)?;
            assert!(
                outcome.skipped.is_empty(),
                "a skipped transaction has no effect, so without them none is skipped"
            );
        }
        let header = outcome.header(&context, self.shared.genesis.block_gas_limit, staged.root());
        let raw = candidates.iter().map(|tx| tx.raw().clone()).collect();
        let block = Block::new(header, raw).expect("the header commits to these transactions");
        Ok(executed(block, outcome, staged))
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

impl<E: Runtime> Ledger for Chain<E> {
    type Error = ChainError;

    fn knows(&self, block: &BlockHash) -> bool {
        let inner = self.lock();
        inner.pending.contains_key(block) || inner.finalized.is_finalized(block)
    }

    fn has_pending_transactions(&self) -> bool {
        !self.shared.mempool.is_empty()
    }

    fn propose(&self, path: Path, proposal: Proposal) -> Option<Block> {
        let mut inner = self.lock();
        let built = self.catch_up(&mut inner, &path).and_then(|()| {
            self.build(
                &inner,
                path.last().expect("a path is never empty"),
                proposal,
            )
        });
        match built {
            Ok(executed) => {
                let block = executed.block.clone();
                inner.pending.insert(block.hash(), Arc::new(executed));
                Some(block)
            }
            Err(error) => {
                warn!(%error, "cannot propose");
                None
            }
        }
    }

    fn verify(&self, path: Path) -> Result<(), ChainError> {
        let mut inner = self.lock();
        self.catch_up(&mut inner, &path)
    }

    async fn finalize(&self, block: Block) {
        let hash = block.hash();
        let (executed, position) = {
            let mut inner = self.lock();
            let finalized = &inner.finalized;
            if block.height() <= finalized.tip.height {
                // Delivered again (after a restart): it must be the block already applied.
                if let Some(held) = finalized.hash_at(block.height()) {
                    assert_eq!(held, hash, "two different blocks finalized at one height");
                }
                return;
            }
            let executed = match inner.pending.get(&hash) {
                Some(executed) => executed.clone(),
                None => {
                    let executed = self
                        .execute_block(&inner, &block)
                        .unwrap_or_else(|e| panic!("a finalized block fails execution: {e}"));
                    let executed = Arc::new(executed);
                    inner.pending.insert(hash, executed.clone());
                    executed
                }
            };
            (executed, inner.finalized.next_tx_position)
        };
        let stored = StoredBlock {
            block: block.clone(),
            receipts: executed.outcome_receipts.clone(),
        };
        self.shared
            .store
            .put(&stored, position)
            .await
            .unwrap_or_else(|e| panic!("cannot store finalized block {hash}: {e}"));
        let senders = self.apply(&block, &executed);
        let included: Vec<TxHash> = executed
            .outcome_receipts
            .iter()
            .map(|r| r.tx_hash)
            .collect();
        self.shared.mempool.remove_finalized(&included, senders);
        self.shared.heads.send_replace(block.height());
        debug!(height = %block.height(), %hash, txs = included.len(), "finalized");
    }
}

impl<E: Runtime> Chain<E> {
    /// Commits a stored finalized block's changes and moves the tip. Returns the new nonces of
    /// its senders, for the pool.
    fn apply(&self, block: &Block, executed: &Executed) -> Vec<(Address, u64)> {
        let mut inner = self.lock();
        let finalized = &mut inner.finalized;
        if self.shared.kill_during_commit == Some(block.height()) {
            // Killed with the block applied and durable in one state table but not the other.
            let _ = trellis_state::block_on(async {
                finalized.state.apply(&executed.staged).await?;
                let table = trellis_state::TableName::Storage;
                finalized.state.sync_one_table(table).await
            });
            kill_this_process(block.height());
        }
        // Under the chain's lock, so no proposal or vote reads the state mid-commit. The commit
        // waits only on storage, never on another task (see `trellis_state::QmdbStore`).
        let root = trellis_state::block_on(finalized.state.commit(&executed.staged))
            .unwrap_or_else(|e| panic!("cannot commit finalized block: {e}"));
        assert_eq!(
            root,
            block.header().state_root,
            "finalized state diverges from the block's root"
        );
        finalized.next_tx_position += block.transactions().len() as u64;
        finalized.advance(block);
        let height = block.height();
        inner.pending.retain(|_, e| e.block.height() > height);
        let senders: Vec<Address> = executed.outcome_receipts.iter().map(|r| r.from).collect();
        senders
            .into_iter()
            .map(|sender| {
                let nonce = inner
                    .finalized
                    .state
                    .account(&sender)
                    .ok()
                    .flatten()
                    .map_or(0, |a| a.nonce);
                (sender, nonce)
            })
            .collect()
    }
}

/// The crash test hook: SIGKILL, as an operator's `kill -9` or the kernel's OOM killer would.
fn kill_this_process(height: Height) -> ! {
    warn!(%height, "crash test hook: killing this process in the middle of a state commit");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    // Only if `kill` could not run: still abrupt, with no cleanup.
    std::process::abort()
}
