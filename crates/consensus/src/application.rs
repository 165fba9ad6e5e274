//! The chain's rules inside consensus: [`App`] builds and checks proposals through the
//! [`Ledger`], and [`Finalizer`] hands finalized blocks to it.
//!
//! `App` is not given to simplex directly: marshal's `Deferred` wrapper turns it into simplex's
//! automaton, fetching parents and ancestors through marshal.

use crate::scheme::Scheme;
use crate::{
    block::{ConsensusBlock, ProposalContext, validator_id},
    epochs::Event,
    ledger::{Built, Ledger, Path, Proposal},
    progress::CatchUp,
};
use commonware_actor::Feedback;
use commonware_consensus::{
    CertifiableBlock as _, Reporter,
    marshal::{Update, ancestry::Ancestry},
};
use commonware_cryptography::Digested;
use commonware_runtime::{Clock, Spawner};
use commonware_utils::{Acknowledgement as _, acknowledgement::Exact};
use futures::{SinkExt as _, StreamExt as _, channel::mpsc};
use std::time::{Duration, UNIX_EPOCH};
use tracing::{debug, warn};
use trellis_types::{Epoch, EpochLength, Height, Timestamp, View};

/// How often a leader with an empty pool looks for new transactions before its empty-block
/// deadline.
const POOL_POLL: Duration = Duration::from_millis(5);

/// The proposer's and verifier's timing rules.
#[derive(Clone, Copy, Debug)]
pub struct BlockTiming {
    /// A leader with no transactions waits this long after its parent's timestamp before
    /// proposing an empty block, so an idle chain does not grow by dozens of blocks a second.
    pub empty_block_interval: Duration,
    /// A leader with transactions still waits this long after its parent's timestamp. Under
    /// load the pool fills meanwhile, so the chain makes fewer, fuller blocks instead of paying
    /// each block's fixed costs (consensus round, roots, durable commit) for a handful of
    /// transactions; when the chain is quiet it adds at most this much latency. A proposer's
    /// pacing rule, not a validity rule: verifiers do not check it.
    pub min_block_interval: Duration,
    /// How far ahead of this node's clock a proposal's timestamp may be. A later one is not
    /// voted for until the clock catches up (or the view times out).
    pub max_future_drift: Duration,
    /// Storage backpressure: a leader whose parent is more than this many blocks above the
    /// ledger's last durable block waits for storage (up to `storage_wait`) before building.
    /// Under load the pool fills meanwhile, so blocks grow instead of the chain of executed,
    /// not yet durable blocks (each of which every later execution reads through).
    pub max_unapplied: u64,
    /// The longest a leader waits for storage; well under the leader timeout.
    pub storage_wait: Duration,
}

impl BlockTiming {
    /// `empty_block_interval` and `max_future_drift` as given; blocks at least 40 ms apart;
    /// storage backpressure at two blocks, waited for up to 250 ms.
    pub fn new(empty_block_interval: Duration, max_future_drift: Duration) -> Self {
        Self {
            empty_block_interval,
            min_block_interval: Duration::from_millis(40).min(empty_block_interval),
            max_future_drift,
            max_unapplied: 2,
            storage_wait: Duration::from_millis(250),
        }
    }
}

#[derive(Clone)]
pub struct App<L> {
    ledger: L,
    timing: BlockTiming,
}

impl<L: Ledger> App<L> {
    pub fn new(ledger: L, timing: BlockTiming) -> Self {
        Self { ledger, timing }
    }

    /// Extends `path` (newest first, starting with `first`) with ancestors until one the ledger
    /// knows, then returns it oldest first. `None` if the ancestry ends before that (it only
    /// does if the chain below is unavailable, which consensus then retries).
    async fn path_to_known(
        &self,
        first: ConsensusBlock,
        ancestry: &mut impl Ancestry<ConsensusBlock>,
    ) -> Option<Path> {
        let mut path = vec![first.into_block()];
        while !self.ledger.knows(&path.last().expect("non-empty").hash()) {
            let next = ancestry.next().await?;
            path.push(next.inner().clone().into_block());
        }
        path.reverse();
        Some(path)
    }

    /// Waits until the minimum block interval has passed and there is something to propose, or
    /// until the empty-block deadline passes.
    async fn wait_for_transactions(&self, clock: &impl Clock, parent: Timestamp) {
        let earliest = parent.millis() + duration_ms(self.timing.min_block_interval);
        let deadline = parent.millis() + duration_ms(self.timing.empty_block_interval);
        loop {
            let now = now_ms(clock);
            if now >= deadline || (now >= earliest && self.ledger.has_pending_transactions()) {
                return;
            }
            let next = if now < earliest { earliest } else { deadline };
            clock
                .sleep(POOL_POLL.min(Duration::from_millis(next - now)))
                .await;
        }
    }
}

impl<L: Ledger> App<L> {
    /// Waits while the parent is more than `max_unapplied` blocks above the ledger's last
    /// durable block, for at most `storage_wait`.
    async fn wait_for_storage(&self, clock: &impl Clock, parent: Height) {
        let deadline = now_ms(clock) + duration_ms(self.timing.storage_wait);
        while parent.get() > self.ledger.applied_height().get() + self.timing.max_unapplied {
            let now = now_ms(clock);
            if now >= deadline {
                debug!(%parent, applied = %self.ledger.applied_height(), "proposing ahead of storage");
                return;
            }
            clock
                .sleep(POOL_POLL.min(Duration::from_millis(deadline - now)))
                .await;
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The node's wall clock in milliseconds. Only proposals and votes read it; nothing executed
/// does (blocks carry the proposer's timestamp).
fn now_ms(clock: &impl Clock) -> u64 {
    clock
        .current()
        .duration_since(UNIX_EPOCH)
        .map(duration_ms)
        .unwrap_or(0)
}

fn proposal_of(context: &ProposalContext, timestamp: Timestamp) -> Proposal {
    Proposal {
        epoch: Epoch(context.round.epoch().get()),
        view: View(context.round.view().get()),
        parent_view: View(context.parent.0.get()),
        proposer: validator_id(&context.leader),
        timestamp,
    }
}

impl<E, L> commonware_consensus::Application<E> for App<L>
where
    E: Clock + Send + 'static,
    L: Ledger,
{
    type SigningScheme = Scheme;
    type Context = ProposalContext;
    type Block = ConsensusBlock;
    type Input = ();

    /// `ancestry` yields the parent first, then older blocks.
    async fn propose(
        &mut self,
        (clock, context): (E, ProposalContext),
        mut ancestry: impl Ancestry<ConsensusBlock>,
        _input: (),
    ) -> Option<Digested<ConsensusBlock>> {
        let parent = ancestry.next().await?.inner().clone();
        let parent_time = parent.block().header().timestamp;
        self.wait_for_transactions(&clock, parent_time).await;
        self.wait_for_storage(&clock, parent.height()).await;
        let path = self.path_to_known(parent, &mut ancestry).await?;
        let timestamp = Timestamp(now_ms(&clock).max(parent_time.millis()));
        let Built { block, senders } = self
            .ledger
            .propose(path, proposal_of(&context, timestamp))
            .await?;
        let block = ConsensusBlock::with_senders(block, senders)
            .expect("our own key is a valid proposer, our claim one sender per transaction");
        debug!(height = %block.height(), hash = %block.hash(), "proposed");
        let hash = block.hash();
        Some(Digested::precomputed(block, hash))
    }

    /// `ancestry` yields the block under verification first, then its parent. Answers `false`
    /// only for a block that is invalid for good; a block from the future is answered once the
    /// clock has caught up.
    async fn verify(
        &mut self,
        (clock, context): (E, ProposalContext),
        mut ancestry: impl Ancestry<ConsensusBlock>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let block = block.inner().clone();
        if block.context() != context {
            warn!(hash = %block.hash(), "proposal's embedded context is not the round's");
            return false;
        }
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        let parent = parent.inner().clone();
        self.check(&clock, block, parent, &mut ancestry).await
    }
}

impl<L: Ledger> App<L> {
    async fn check(
        &self,
        clock: &impl Clock,
        block: ConsensusBlock,
        parent: ConsensusBlock,
        ancestry: &mut impl Ancestry<ConsensusBlock>,
    ) -> bool {
        let header = block.block().header();
        if let Err(error) = header.check_child_of(parent.block().header()) {
            warn!(hash = %block.hash(), %error, "proposal does not follow its parent");
            return false;
        }
        let limit = header.timestamp.millis();
        let drift = duration_ms(self.timing.max_future_drift);
        while now_ms(clock).saturating_add(drift) < limit {
            // Not invalid, only early: abstain until our clock admits it.
            let wait = limit - drift - now_ms(clock);
            clock.sleep(Duration::from_millis(wait)).await;
        }
        let hash = block.hash();
        let mut path = vec![block.into_block()];
        let Some(rest) = self.path_to_known(parent, ancestry).await else {
            return false;
        };
        path.splice(0..0, rest);
        match self.ledger.verify(path).await {
            Ok(()) => true,
            Err(error) => {
                warn!(%hash, %error, "rejected proposal");
                false
            }
        }
    }
}

/// Marshal's reporter. `report` must not block marshal, so it only forwards updates to
/// [`Finalizer::run`].
#[derive(Clone)]
pub struct Finalizer(mpsc::UnboundedSender<Update<ConsensusBlock>>);

impl Reporter for Finalizer {
    type Activity = Update<ConsensusBlock>;
    fn report(&mut self, update: Update<ConsensusBlock>) -> Feedback {
        match self.0.unbounded_send(update) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

/// Finalized blocks prepared ahead of their turn, at most (marshal hands out 16 before it waits
/// for acknowledgements).
const PREPARED_AHEAD: usize = 8;

/// An update from marshal, its block prepared.
enum Step<P> {
    Tip(u64),
    Block {
        block: Box<ConsensusBlock>,
        ack: Exact,
        prepared: P,
    },
}

impl Finalizer {
    /// Starts the tasks that hand each finalized block to the ledger, in height order, and
    /// acknowledge it to marshal once the ledger has made it durable: one prepares blocks as
    /// they arrive ([`Ledger::prepare`]), the other finalizes them one by one, so the next
    /// blocks' preparation overlaps this one's execution and storage. Marshal delivers the
    /// genesis block too (height 0); the ledger already holds it.
    ///
    /// After the last block of an epoch is durable, the epoch's owner hears of it on `epochs`
    /// (before marshal does, through the acknowledgement).
    pub(crate) fn start<L: Ledger>(
        context: impl Spawner + Clock,
        ledger: L,
        length: EpochLength,
        mut epochs: mpsc::Sender<Event>,
    ) -> Self {
        let (sender, mut updates) = mpsc::unbounded::<Update<ConsensusBlock>>();
        let (mut ready, mut steps) = mpsc::channel::<Step<L::Prepared>>(PREPARED_AHEAD);
        let preparer = ledger.clone();
        context.child("prepare").spawn(move |_| async move {
            while let Some(update) = updates.next().await {
                let step = match update {
                    // A new finalized tip; its block follows as `Update::Block`.
                    Update::Tip(_, height, _) => Step::Tip(height.get()),
                    Update::Block(block, ack) => {
                        let block = Box::new(block.inner().clone());
                        let prepared = preparer.prepare(block.block(), block.senders()).await;
                        Step::Block {
                            block,
                            ack,
                            prepared,
                        }
                    }
                };
                if ready.send(step).await.is_err() {
                    return;
                }
            }
        });
        context.child("finalize").spawn(move |context| async move {
            let mut progress = CatchUp::default();
            while let Some(step) = steps.next().await {
                let (block, ack, prepared) = match step {
                    Step::Tip(height) => {
                        progress.tip(height);
                        continue;
                    }
                    Step::Block {
                        block,
                        ack,
                        prepared,
                    } => (block, ack, prepared),
                };
                let height = block.height();
                let transactions = block.block().transactions().len();
                let boundary = crate::epochs::boundary(length, &block);
                if height.get() > 0 {
                    ledger.finalize(block.into_block(), prepared).await;
                }
                if let Some(event) = boundary {
                    // Fails only once the epoch's owner has stopped, with the node.
                    let _ = epochs.send(event).await;
                }
                ack.acknowledge();
                progress.applied(height, transactions, context.current());
            }
        });
        Self(sender)
    }
}
