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
//! # One owner
//! That state has one owner, a task on a thread of its own ([`owner`]): proposing, verifying,
//! finalizing and every client read are jobs it runs one at a time, consensus's first. Nothing
//! holds a lock across storage I/O, and no runtime worker ever blocks on the state.
//!
//! # Restart
//! Finalized blocks are stored before their state is committed, so after a crash the state is
//! at most a few blocks behind the block store. Opening re-executes the stored blocks above the
//! state's height (each checked against its header's root); state is never rebuilt from genesis.

mod admission;
mod error;
mod execute;
mod finalize;
mod keys;
mod owner;
mod query;
mod records;
mod recovery;
mod resume;
mod system_slots;

pub use error::ChainError;
pub use keys::CallerRecord;
pub use recovery::RecoveredBlock;

use crate::Runtime;
use crate::{
    faults::Faults,
    genesis::Genesis,
    store::BlockStore,
    stored::{ReceiptRecord, StoredBlock},
};
use alloy_primitives::TxHash;
use finalize::{Finalized, ToStore};
use owner::{Lane, Mailbox, Published, Snapshot};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};
use tracing::{debug, info, warn};
use trellis_consensus::{Built, Ledger, Member, Path, Proposal};
use trellis_execution::{BlockContext, Executor};
use trellis_governance::Registry;
use trellis_mempool::{Mempool, PoolConfig};
use trellis_state::{ChangeSet, QmdbConfig, QmdbStore, Staged, StateStore as _};
use trellis_types::{
    Block, BlockHash, BlockLimits, ClaimedSenders, Epoch, EpochLength, Header, Height,
};

/// How many finalized block hashes are kept in memory: the `BLOCKHASH` window.
const RECENT_BLOCKS: u64 = 256;

/// How many admitted transaction hashes wait for a slow subscriber before it skips ahead.
const ADMITTED_BACKLOG: usize = 16_384;

/// A block executed here but not finalized yet.
#[derive(Debug)]
pub struct Executed {
    block: Block,
    changes: Arc<ChangeSet>,
    staged: Staged,
    outcome_receipts: Vec<ReceiptRecord>,
}

/// What never changes once the chain is open.
struct Rules {
    executor: Executor,
    genesis: Genesis,
    limits: BlockLimits,
    mempool: Mempool,
    // Read only by the injected faults, which a release build does not have.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    faults: Faults,
}

/// The chain's mutable state, owned by one task ([`owner`]).
struct Inner<E: Runtime> {
    rules: Arc<Rules>,
    finalized: Finalized<E>,
    /// Executed, unfinalized blocks by hash.
    pending: HashMap<BlockHash, Arc<Executed>>,
    /// Where the owner publishes the tip and the blocks it knows.
    published: Published,
    /// Registry slots admission read from the finalized state.
    system_slots: system_slots::SystemSlots,
}

impl<E: Runtime> Inner<E> {
    /// Publishes the tip and every block held, after the tip moved.
    fn publish(&self) {
        let finalized = &self.finalized;
        let known = finalized
            .recent
            .values()
            .chain(self.pending.keys())
            .copied()
            .collect();
        *self.published.lock().expect("snapshot lock poisoned") = Snapshot {
            tip: finalized.tip.clone(),
            tip_hash: finalized.tip_hash,
            known,
        };
    }
}

struct Shared<E: Runtime> {
    rules: Arc<Rules>,
    store: BlockStore<E>,
    genesis_block: Block,
    owner: Mailbox<E>,
    /// Sender recovery for admission, off the runtime's workers.
    admission: admission::Admission,
    /// Sender recovery of finalized blocks ahead of their turn.
    recovery: recovery::BlockRecovery,
    published: Published,
    /// Where client transactions go to be gossiped, once gossip runs.
    gossip: Mutex<Option<futures::channel::mpsc::UnboundedSender<Vec<trellis_types::Bytes>>>>,
    /// The height of the last finalized block that is stored and committed (for subscribers).
    heads: tokio::sync::watch::Sender<Height>,
    /// Hashes of transactions as the pool admits them (for subscribers; lagging ones skip).
    admitted: tokio::sync::broadcast::Sender<TxHash>,
    metrics: crate::metrics::ChainMetrics,
    /// Risk control's view of admission, once the node sets one.
    watch: std::sync::OnceLock<Arc<dyn crate::watch::AdmissionWatch>>,
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
    /// Faults a test injects (none in service; see [`Faults`]).
    pub faults: Faults,
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
                resume::start_from_genesis(state, &genesis, &store).await?
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
        let finalized = resume::resume(&executor, &store, state, &genesis_block).await?;
        info!(height = %finalized.tip.height, hash = %finalized.tip_hash, "chain opened");
        let heads = tokio::sync::watch::Sender::new(finalized.tip.height);
        let metrics = crate::metrics::ChainMetrics::register(&context);
        metrics.finalized(finalized.tip.height.0, 0, 0);
        let (admitted, _) = tokio::sync::broadcast::channel(ADMITTED_BACKLOG);
        let rules = Arc::new(Rules {
            executor,
            genesis,
            limits: config.limits,
            mempool,
            faults: config.faults,
        });
        let published = Arc::new(Mutex::new(Snapshot {
            tip: finalized.tip.clone(),
            tip_hash: finalized.tip_hash,
            known: Default::default(),
        }));
        let inner = Inner {
            rules: rules.clone(),
            finalized,
            pending: HashMap::new(),
            published: published.clone(),
            system_slots: Default::default(),
        };
        inner.refresh_params();
        inner.publish();
        let owner = owner::start(context.child("owner"), inner);
        let admission = admission::Admission::start(context.child("admission"), rules.clone());
        let recovery =
            recovery::BlockRecovery::start(context.child("recovery"), rules.mempool.clone());
        Ok(Self {
            shared: Arc::new(Shared {
                rules,
                store,
                genesis_block,
                owner,
                admission,
                recovery,
                published,
                gossip: Mutex::new(None),
                heads,
                admitted,
                metrics,
                watch: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn genesis(&self) -> &Genesis {
        &self.shared.rules.genesis
    }

    /// Blocks per consensus epoch: the genesis's on a governed chain, whose validators change
    /// at epoch boundaries; one endless epoch otherwise.
    pub fn epoch_length(&self) -> EpochLength {
        self.genesis().epochs().unwrap_or(EpochLength::FOREVER)
    }

    /// The block consensus starts from (height 0).
    pub fn genesis_block(&self) -> Block {
        self.shared.genesis_block.clone()
    }

    /// The last finalized block's header and hash (stored, and its state committed).
    pub fn latest(&self) -> (Header, BlockHash) {
        let published = self
            .shared
            .published
            .lock()
            .expect("snapshot lock poisoned");
        (published.tip.clone(), published.tip_hash)
    }

    /// Runs `job` on the chain's state, on its owner.
    async fn ask<T: Send + 'static>(
        &self,
        lane: Lane,
        job: impl FnOnce(&mut Inner<E>) -> T + Send + 'static,
    ) -> T {
        self.shared.owner.ask(lane, job).await
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

impl<E: Runtime> Ledger for Chain<E> {
    type Error = ChainError;
    type Prepared = RecoveredBlock;

    fn knows(&self, block: &BlockHash) -> bool {
        let published = self
            .shared
            .published
            .lock()
            .expect("snapshot lock poisoned");
        published.known.contains(block)
    }

    fn has_pending_transactions(&self) -> bool {
        !self.shared.rules.mempool.is_empty()
    }

    fn applied_height(&self) -> Height {
        *self.shared.heads.borrow()
    }

    async fn propose(&self, path: Path, proposal: Proposal) -> Option<Built> {
        self.ask(Lane::Consensus, move |inner| inner.propose(&path, proposal))
            .await
    }

    async fn verify(&self, path: Path) -> Result<(), ChainError> {
        self.ask(Lane::Consensus, move |inner| inner.verify(&path))
            .await
    }

    async fn prepare(&self, block: &Block, senders: &ClaimedSenders) -> RecoveredBlock {
        // Executed already (verified as a validator, or applied before a restart).
        if self.knows(&block.hash()) || block.height() <= self.applied_height() {
            return RecoveredBlock::default();
        }
        self.shared
            .recovery
            .recover(block.transactions().to_vec(), certified(block, senders))
            .await
    }

    async fn validators(&self, epoch: Epoch) -> Option<Vec<Member>> {
        let genesis = self.genesis();
        let Some(length) = genesis.epochs() else {
            let members = genesis.validators.iter().map(|key| Member {
                key: *key,
                p2p: None,
            });
            return Some(members.collect());
        };
        if length
            .last_before(epoch)
            .is_some_and(|last| self.applied_height() < last)
        {
            return None;
        }
        let records = self
            .ask(Lane::Consensus, move |inner| {
                Registry::new(&inner.finalized.state).validators(epoch)
            })
            .await
            .unwrap_or_else(|e| panic!("cannot read the validators of epoch {epoch}: {e}"));
        assert!(
            !records.is_empty(),
            "the registry names no validator for epoch {epoch}: governance never empties the set"
        );
        let members = records.into_iter().map(|record| Member {
            key: record.key,
            p2p: record.p2p,
        });
        Some(members.collect())
    }

    async fn full_nodes(&self, epoch: Epoch) -> Vec<Member> {
        let genesis = self.genesis();
        if genesis.epochs().is_none() {
            let members = genesis.full_nodes.iter().map(|key| Member {
                key: *key,
                p2p: None,
            });
            return members.collect();
        }
        let records = self
            .ask(Lane::Consensus, move |inner| {
                Registry::new(&inner.finalized.state).full_nodes(epoch)
            })
            .await
            .unwrap_or_else(|e| panic!("cannot read the full nodes of epoch {epoch}: {e}"));
        let members = records.into_iter().map(|record| Member {
            key: record.key,
            p2p: record.p2p,
        });
        members.collect()
    }

    async fn finalize(&self, block: Block, early: RecoveredBlock) {
        let hash = block.hash();
        let job_block = block.clone();
        let to_store = self
            .ask(Lane::Consensus, move |inner| {
                inner.prepare_store(&job_block, early)
            })
            .await;
        let Some(ToStore { executed }) = to_store else {
            return;
        };
        let stored = StoredBlock {
            block: block.clone(),
            receipts: executed.outcome_receipts.clone(),
        };
        self.shared
            .store
            .put(&stored)
            .await
            .unwrap_or_else(|e| panic!("cannot store finalized block {hash}: {e}"));
        let included: Vec<TxHash> = executed
            .outcome_receipts
            .iter()
            .map(|r| r.tx_hash)
            .collect();
        let height = block.height();
        let applied = self
            .ask(Lane::Consensus, move |inner| inner.apply(&block, &executed))
            .await;
        let mempool = &self.shared.rules.mempool;
        mempool.remove_finalized(&included, applied.nonces);
        if !applied.barred.is_empty() {
            let dropped = mempool.remove_senders(&applied.barred);
            info!(%height, senders = applied.barred.len(), dropped, "dropped the pending transactions of accounts the rules now refuse");
        }
        self.shared.heads.send_replace(height);
        let metrics = &self.shared.metrics;
        metrics.finalized(height.0, included.len(), mempool.len());
        debug!(%height, %hash, txs = included.len(), "finalized");
    }
}

/// `senders` if the block's header certifies them, else no claim (they are recovered instead).
fn certified(block: &Block, senders: &ClaimedSenders) -> ClaimedSenders {
    if senders.certified_by(block) {
        return senders.clone();
    }
    if !senders.is_empty() {
        warn!(hash = %block.hash(), "a block came with senders its header does not certify; recovering them");
    }
    ClaimedSenders::none()
}
