//! One simplex engine per epoch: the orchestrator owns the running epoch's engine and replaces
//! it when the finalizer reports the epoch's last block final.
//!
//! Votes, certificates and simplex's fetches travel on sub-channels keyed by epoch (commonware's
//! mux), so the engines of two epochs never read each other's messages. A message of an epoch
//! this node has not entered tells it that its peers have moved on: it asks marshal for the
//! finalization of its own epoch's last block from that peer, which lets a node that was down,
//! or just joined, walk forward epoch by epoch.
//!
//! Entering an epoch: its validators from the ledger, their scheme into [`Schemes`] (signing if
//! this node is one of them, verifying otherwise: a node outside the set follows as an
//! observer), the p2p layer told whom to connect to, then the engine started from the last
//! block of the epoch before (its genesis). The previous engine is aborted once the new one
//! runs.

use crate::faults::{Fault, FaultSink, FaultWatch};
use crate::{
    application::App,
    block::ConsensusBlock,
    engine::Timeouts,
    epochs::{self, Event, PeerSets, Schemes},
    ledger::Ledger,
    scheme::Scheme,
    screen::{EpochPrefixed, Screened},
};
use commonware_consensus::{
    marshal::{core::Mailbox as MarshalMailbox, standard::Deferred, standard::Standard},
    simplex::{
        self,
        config::{Floor, ForwardPolicy, SkipBudget, SkipPolicy},
        elector::RoundRobin,
    },
    types::{FixedEpocher, ViewDelta},
};
use commonware_cryptography::{ed25519::PublicKey, sha256::Sha256};
use commonware_p2p::{
    Blocker, Receiver, Sender,
    utils::mux::{Builder as _, MuxHandle, Muxer},
};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock, Handle, Metrics, Spawner, Storage, buffer::paged::CacheRef,
    telemetry::metrics::CounterFamily,
};
use commonware_utils::{NZDuration, vec::NonEmptyVec};
use futures::{StreamExt as _, channel::mpsc};
use rand::CryptoRng;
use std::{num::NonZeroUsize, time::Duration};
use tracing::{debug, info};
use trellis_types::{BlockHash, Epoch, EpochLength};

/// The simplex application of every epoch's engine.
pub(crate) type Application<E, L> = Deferred<E, Scheme, App<L>, ConsensusBlock, FixedEpocher>;

/// What every epoch's engine shares.
pub(crate) struct Orchestrator<E, B, L, D>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    L: Ledger,
{
    pub context: E,
    pub ledger: L,
    pub peers: D,
    pub schemes: Schemes,
    pub marshal: MarshalMailbox<Scheme, Standard<ConsensusBlock>>,
    pub application: Application<E, L>,
    /// Conflicting votes seen (`faults.rs`).
    pub faults: CounterFamily<Fault>,
    /// Who else hears of them (the node's risk control).
    pub fault_sink: Option<std::sync::Arc<dyn FaultSink>>,
    pub blocker: B,
    pub length: EpochLength,
    pub timeouts: Timeouts,
    pub prefix: String,
    pub page_cache: CacheRef,
    /// Block 0: the first epoch's genesis.
    pub genesis: BlockHash,
    pub mailbox_size: NonZeroUsize,
    pub io_buffer: NonZeroUsize,
}

/// The sub-channel handles of the three simplex channels.
struct Channels<S: Sender> {
    votes: MuxHandle<S>,
    certificates: MuxHandle<S>,
    resolver: MuxHandle<S>,
}

/// The running epoch's engine, aborted when replaced.
struct Active {
    epoch: Epoch,
    handle: Handle<()>,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Events queued for the orchestrator: boundaries (one per epoch) and hints from peers ahead
/// (dropped when the queue is full; one is enough).
pub(crate) const EVENTS: usize = 64;

impl<E, B, L, D> Orchestrator<E, B, L, D>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = PublicKey>,
    L: Ledger,
    D: PeerSets,
{
    /// Starts the orchestrator on the three simplex channels; `events` come from the finalizer
    /// (`sender` is its other end, for the channels' hints). The handle ends with the node.
    pub fn start<S, R>(
        self,
        channels: [(S, R); 3],
        events: mpsc::Receiver<Event>,
        sender: mpsc::Sender<Event>,
    ) -> Handle<()>
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let context = self.context.child("orchestrator");
        context.spawn(move |_| self.run(channels, events, sender))
    }

    async fn run<S, R>(
        mut self,
        [votes, certificates, resolver]: [(S, R); 3],
        mut events: mpsc::Receiver<Event>,
        sender: mpsc::Sender<Event>,
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let mut channels = Channels {
            votes: self.mux("votes", votes, Some(sender.clone())),
            certificates: self.mux("certificates", certificates, Some(sender)),
            resolver: self.mux("resolver", resolver, None),
        };
        let (epoch, floor) = self.resume().await;
        let mut active = self.enter(epoch, floor, &mut channels).await;
        while let Some(event) = events.next().await {
            match event {
                Event::Boundary { next, block } if next > active.epoch => {
                    let entered = self.enter(next, block, &mut channels).await;
                    // Dropping the old engine aborts it.
                    active = entered;
                }
                Event::Boundary { .. } => {}
                Event::Ahead { epoch, from } if epoch > active.epoch => {
                    let last = self.length.last_before(Epoch(active.epoch.0 + 1));
                    let last = last.expect("an epoch after another has a last block before it");
                    debug!(ours = %active.epoch, theirs = %epoch, %last, "a peer is in a later epoch; fetching our epoch's last block");
                    self.marshal.hint_finalized(
                        commonware_consensus::types::Height::new(last.get()),
                        NonEmptyVec::new(from),
                    );
                }
                Event::Ahead { .. } => {}
            }
        }
        drop(active);
    }

    /// Starts a muxer over `channel`; with `ahead`, messages of epochs not entered become
    /// [`Event::Ahead`].
    fn mux<S, R>(
        &self,
        name: &'static str,
        (sender, receiver): (S, R),
        ahead: Option<mpsc::Sender<Event>>,
    ) -> MuxHandle<S>
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let context = self.context.child(name);
        let receiver =
            Screened::<_, EpochPrefixed, _>::new(receiver, (), self.blocker.clone(), name);
        let Some(mut ahead) = ahead else {
            let (muxer, handle) = Muxer::new(context, sender, receiver);
            muxer.start();
            return handle;
        };
        let (muxer, handle, mut unrouted) = Muxer::builder(context.child("mux"), sender, receiver)
            .with_backup()
            .build();
        muxer.start();
        context.spawn(move |_| async move {
            while let Some((epoch, (from, _))) = unrouted.recv().await {
                let event = Event::Ahead {
                    epoch: Epoch(epoch),
                    from,
                };
                // Full: the orchestrator has hints to act on already.
                let _ = ahead.try_send(event);
            }
        });
        handle
    }

    /// The epoch to run after a restart (the one after the last block applied) and its genesis.
    async fn resume(&mut self) -> (Epoch, BlockHash) {
        let epoch = epochs::resumed(self.length, self.ledger.applied_height());
        let Some(last) = self.length.last_before(epoch) else {
            return (epoch, self.genesis);
        };
        let height = commonware_consensus::types::Height::new(last.get());
        let block = self.marshal.get_block(height).await.unwrap_or_else(|| {
            panic!(
                "block {last}, the last of epoch {}, is applied but not archived",
                epoch.0 - 1
            )
        });
        (epoch, block.inner().hash())
    }

    async fn enter<S>(
        &mut self,
        epoch: Epoch,
        floor: BlockHash,
        channels: &mut Channels<S>,
    ) -> Active
    where
        S: Sender<PublicKey = PublicKey>,
    {
        let (validators, scheme, signs) =
            epochs::learn(&self.ledger, &self.schemes, &mut self.peers, epoch).await;
        let handle = self.engine(epoch, floor, (*scheme).clone(), channels).await;
        info!(%epoch, validators = validators.len(), voting = signs, "entered epoch");
        // The journal of two epochs back: its engine stopped an epoch ago (the last one's
        // may still be closing its files).
        if let Some(old) = epoch.0.checked_sub(2) {
            let partition = self.partition(Epoch(old));
            if let Err(error) = self.context.remove(&partition, None).await {
                debug!(%partition, %error, "no journal of an old epoch to remove");
            }
        }
        Active { epoch, handle }
    }

    /// Where simplex journals `epoch`. Epoch 0 keeps the name it had before epochs existed.
    fn partition(&self, epoch: Epoch) -> String {
        match epoch.0 {
            0 => format!("{}-simplex", self.prefix),
            n => format!("{}-simplex-{n}", self.prefix),
        }
    }

    async fn engine<S>(
        &mut self,
        epoch: Epoch,
        floor: BlockHash,
        scheme: Scheme,
        channels: &mut Channels<S>,
    ) -> Handle<()>
    where
        S: Sender<PublicKey = PublicKey>,
    {
        let t = self.timeouts;
        let partition = self.partition(epoch);
        let engine = simplex::Engine::new(
            self.context
                .child("simplex")
                .with_attribute("epoch", epoch.0),
            simplex::config::Config {
                scheme: scheme.clone(),
                elector: RoundRobin::<Sha256>::default(),
                blocker: self.blocker.clone(),
                automaton: self.application.clone(),
                relay: self.application.clone(),
                reporter: FaultWatch {
                    inner: self.application.clone(),
                    faults: self.faults.clone(),
                    epoch,
                    scheme,
                    namespace: self.schemes.namespace().into(),
                    sink: self.fault_sink.clone(),
                },
                strategy: Sequential,
                partition,
                mailbox_size: self.mailbox_size,
                epoch: commonware_consensus::types::Epoch::new(epoch.0),
                floor: Floor::Genesis(floor),
                replay_buffer: self.io_buffer,
                write_buffer: self.io_buffer,
                page_cache: self.page_cache.clone(),
                leader_timeout: t.leader,
                certification_timeout: t.certification,
                timeout_retry: t.retry,
                view_retention: ViewDelta::new(256),
                skip: SkipPolicy::Enabled {
                    timeout: t.skip_silent_leader,
                    budget: SkipBudget::Participants,
                },
                fetch_timeout: NZDuration!(Duration::from_secs(1)),
                fetch_retry_delay: Duration::from_millis(100),
                forward: ForwardPolicy::SilentVoters,
                track_historical_votes: false,
            },
        );
        let votes = open(channels.votes.register(epoch.0).await).await;
        let certificates = open(channels.certificates.register(epoch.0).await).await;
        let resolver = open(channels.resolver.register(epoch.0).await).await;
        engine.start(votes, certificates, resolver)
    }
}

/// A muxer's registration. Muxers close only when the node's runtime stops, a validator's
/// restart under its successor key included: then this waits to be aborted with every other
/// task. A panic here would end the process before it could restart (seen in CI: the
/// rotated validator never came back).
async fn open<T, E>(registration: Result<T, E>) -> T {
    match registration {
        Ok(registered) => registered,
        Err(_) => std::future::pending().await,
    }
}

/// The finalizer's end of the orchestrator's events.
pub(crate) fn events() -> (mpsc::Sender<Event>, mpsc::Receiver<Event>) {
    mpsc::channel(EVENTS)
}
