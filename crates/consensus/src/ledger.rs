//! The seam between consensus and the rest of the node.
//!
//! Consensus decides *which* block comes next; the [`Ledger`] decides what a valid block is
//! (execution, state) and what happens to a finalized one (storage). Consensus never looks
//! inside transactions, and the ledger never sees votes or certificates.

use std::{fmt::Display, future::Future, net::SocketAddr};
use trellis_types::{
    Block, BlockHash, ClaimedSenders, Epoch, Height, Timestamp, ValidatorId, View,
};

/// A validator of an epoch, and where it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub key: ValidatorId,
    /// `None`: where the genesis file says (a genesis validator).
    pub p2p: Option<SocketAddr>,
}

/// What consensus fixes about a block before the ledger builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub epoch: Epoch,
    pub view: View,
    /// The view in which the parent was proposed.
    pub parent_view: View,
    /// This validator: the round's leader.
    pub proposer: ValidatorId,
    /// Not before the parent's timestamp.
    pub timestamp: Timestamp,
}

/// A block this validator built, and the senders of its transactions, which travel beside it
/// for nodes that will apply it once finalized (see [`ClaimedSenders`]).
#[derive(Clone, Debug)]
pub struct Built {
    pub block: Block,
    pub senders: ClaimedSenders,
}

impl Built {
    /// A block sent without a claim of its senders.
    pub fn unclaimed(block: Block) -> Self {
        Self {
            block,
            senders: ClaimedSenders::none(),
        }
    }
}

/// A chain of blocks ending in the one to build on (when proposing) or to check (when
/// verifying), oldest first. The first block is one the ledger [`knows`](Ledger::knows); every
/// block after it names the previous one as its parent. Blocks between the first and the last
/// are certified by consensus but have not been executed here yet (this node missed them, or
/// restarted); the ledger executes them first.
pub type Path = Vec<Block>;

/// The application side of the chain, as consensus sees it.
///
/// `propose` and `verify` are computations (execution); they must be deterministic in everything
/// that ends up in a block. They are futures so that a ledger can run them off consensus's
/// tasks (on the thread that owns its state) without blocking a runtime thread. `finalize`
/// receives each finalized block in height order, *at least once* (again after a restart), and
/// must be idempotent. `knows`, `has_pending_transactions` and `applied_height` answer from
/// memory at once.
pub trait Ledger: Clone + Send + Sync + 'static {
    /// Why a block was rejected. Shown in logs.
    type Error: Display + Send;

    /// What [`prepare`](Ledger::prepare) computes for [`finalize`](Ledger::finalize).
    type Prepared: Send + 'static;

    /// Whether the ledger holds the state after `block`: it is finalized, or was executed while
    /// proposing or verifying.
    fn knows(&self, block: &BlockHash) -> bool;

    /// Whether transactions are waiting to be proposed. A leader with nothing to propose waits
    /// up to the empty-block interval for some to arrive.
    fn has_pending_transactions(&self) -> bool;

    /// The height of the last block [`finalize`](Ledger::finalize) has made durable. A leader
    /// whose parent is far above it waits a little for storage to catch up (see
    /// [`BlockTiming`](crate::BlockTiming)).
    fn applied_height(&self) -> Height;

    /// Builds the block following the last block of `path`, or `None` to skip this turn.
    fn propose(&self, path: Path, proposal: Proposal)
    -> impl Future<Output = Option<Built>> + Send;

    /// Checks the last block of `path` against its parent: its transactions decode, recover and
    /// execute to exactly the header's roots, gas and bloom. An error means the block is
    /// invalid for good.
    fn verify(&self, path: Path) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Work on a finalized block that need not wait for its turn and reads no state (a
    /// catching-up node's transaction decoding, with the `senders` the block came with, or
    /// sender recovery). Called in height order as finalized blocks arrive, while earlier ones
    /// are still being finalized; its result goes to `finalize`.
    fn prepare(
        &self,
        block: &Block,
        senders: &ClaimedSenders,
    ) -> impl Future<Output = Self::Prepared> + Send;

    /// Applies and stores a finalized block. Called in height order, possibly more than once
    /// for the same block. Returns once the block is durable.
    fn finalize(&self, block: Block, prepared: Self::Prepared) -> impl Future<Output = ()> + Send;

    /// The validators of `epoch`, once they are fixed: the last block of the epoch before has
    /// been finalized here (always, for epoch 0). `None` before. The same on every node.
    fn validators(&self, epoch: Epoch) -> impl Future<Output = Option<Vec<Member>>> + Send;

    /// The full nodes the validators of `epoch` let follow (their transport keys), read once
    /// [`Self::validators`] answers for it. None by default.
    fn full_nodes(&self, epoch: Epoch) -> impl Future<Output = Vec<Member>> + Send {
        let _ = epoch;
        std::future::ready(Vec::new())
    }
}
