//! A full node's consensus: it follows the validators without voting.
//!
//! It runs the same buffered broadcast, backfill and marshal as a validator, with a scheme that
//! can verify certificates but not sign. The validators' simplex engines send every
//! certificate to all connected peers, full nodes included; the follower checks each
//! finalization against the validator set and reports it to marshal, which fetches the block
//! (from the broadcast buffer or a peer), backfills any gap below it, and hands the blocks to
//! the ledger in height order, where they are executed as on a validator.
//!
//! Certificates travel on sub-channels keyed by epoch; the follower checks each against its
//! epoch's validators, which it learns, as validators do, when the finalizer reports the last
//! block of the epoch before (and tracks them in the p2p layer). A certificate of an epoch it
//! has not reached makes it fetch the last block of its own epoch from that peer, so a full
//! node that was down walks forward epoch by epoch.
//!
//! A peer that sends a certificate that does not decode, or a finalization that does not
//! verify, is blocked. Votes and simplex's own fetches also reach full nodes; they are read
//! and dropped (a channel left unread would fill, and one not registered would cost the
//! connection).

use crate::{
    block::ConsensusBlock,
    engine::{Channels, MarshalSetup, page_cache, start_marshal},
    epochs::{self, Event, PeerSets, Schemes},
    ledger::Ledger,
    orchestrator,
    scheme::Scheme,
};
use commonware_codec::Decode as _;
use commonware_consensus::{
    Epochable as _, Reporter as _,
    marshal::{core::Mailbox, standard::Standard},
    simplex::types::{Activity, Certificate},
    types::Round,
};
use commonware_cryptography::{certificate::Verifier as _, ed25519::PublicKey};
use commonware_p2p::{Blocker, Provider, Receiver, Sender, utils::mux};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::vec::NonEmptyVec;
use futures::{StreamExt as _, channel::mpsc};
use rand::CryptoRng;
use tracing::{debug, warn};
use trellis_types::{BlockHash, BlockLimits, Epoch, EpochLength};

/// Everything a full node's consensus needs.
pub struct FollowerConfig<L> {
    /// This node's p2p identity (not a validator's key).
    pub public_key: PublicKey,
    /// Blocks per epoch; the ledger names each epoch's validators.
    pub epoch_length: EpochLength,
    /// The chain's signature namespace, as validators use it.
    pub namespace: Vec<u8>,
    /// Prefix of this node's storage partitions. Must stay stable across restarts.
    pub partition_prefix: String,
    pub genesis: ConsensusBlock,
    pub limits: BlockLimits,
    pub ledger: L,
}

/// Starts a full node's consensus; the handle ends only if the epoch tracker stops.
pub async fn follow<E, P, B, S, R, L, D>(
    context: E,
    config: FollowerConfig<L>,
    provider: P,
    blocker: B,
    channels: Channels<S, R>,
    peers: D,
) -> Handle<()>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    L: Ledger,
    D: PeerSets,
{
    let schemes = Schemes::new(&config.namespace, None);
    let length = config.epoch_length;
    let (events, events_in) = orchestrator::events();
    let marshal = start_marshal(
        &context,
        MarshalSetup {
            me: config.public_key,
            schemes: schemes.clone(),
            length,
            events: events.clone(),
            page_cache: page_cache(),
            genesis: config.genesis,
            prefix: config.partition_prefix,
            limits: config.limits,
        },
        provider,
        blocker.clone(),
        channels.blocks,
        channels.backfill,
        config.ledger.clone(),
    )
    .await;
    let (_, mut votes) = channels.votes;
    context
        .child("votes")
        .spawn(move |_| async move { while votes.recv().await.is_ok() {} });
    let (_, mut fetches) = channels.simplex_resolver;
    context
        .child("simplex_fetches")
        .spawn(move |_| async move { while fetches.recv().await.is_ok() {} });

    let mut tracker = Tracker {
        ledger: config.ledger,
        schemes: schemes.clone(),
        peers,
        length,
        marshal: marshal.clone(),
        epoch: Epoch(0),
    };
    tracker.epoch = epochs::resumed(length, tracker.ledger.applied_height());
    epochs::learn(&tracker.ledger, &schemes, &mut tracker.peers, tracker.epoch).await;

    let (_, certificates) = channels.certificates;
    let reader = CertificateReader {
        schemes,
        marshal,
        blocker,
        ahead: events,
    };
    context
        .child("certificates")
        .spawn(move |context| reader.run(context, certificates));
    context
        .child("epochs")
        .spawn(move |_| tracker.run(events_in))
}

/// Follows the epochs: learns each one's validators when the finalizer reports the last block
/// before it, and fetches that block when peers are ahead.
struct Tracker<L, D> {
    ledger: L,
    schemes: Schemes,
    peers: D,
    length: EpochLength,
    marshal: Mailbox<Scheme, Standard<ConsensusBlock>>,
    epoch: Epoch,
}

impl<L: Ledger, D: PeerSets> Tracker<L, D> {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        while let Some(event) = events.next().await {
            match event {
                Event::Boundary { next, .. } if next > self.epoch => {
                    epochs::learn(&self.ledger, &self.schemes, &mut self.peers, next).await;
                    debug!(epoch = %next, "following epoch");
                    self.epoch = next;
                }
                Event::Ahead { epoch, from } if epoch > self.epoch => {
                    let last = self.length.last_before(Epoch(self.epoch.0 + 1));
                    let last = last.expect("an epoch after another has a last block before it");
                    self.marshal.hint_finalized(
                        commonware_consensus::types::Height::new(last.get()),
                        NonEmptyVec::new(from),
                    );
                }
                _ => {}
            }
        }
    }
}

/// Checks the finalizations validators send and reports them to marshal.
struct CertificateReader<B> {
    schemes: Schemes,
    marshal: Mailbox<Scheme, Standard<ConsensusBlock>>,
    blocker: B,
    ahead: mpsc::Sender<Event>,
}

impl<B: Blocker<PublicKey = PublicKey>> CertificateReader<B> {
    async fn run<R: Receiver<PublicKey = PublicKey>>(
        mut self,
        mut context: impl CryptoRng,
        mut certificates: R,
    ) {
        // Every validator sends each finalization: report each round once.
        let mut latest: Option<Round> = None;
        while let Ok((peer, message)) = certificates.recv().await {
            let Ok((epoch, message)) = mux::parse(message) else {
                warn!(?peer, "a certificate without its epoch; blocking the peer");
                self.blocker.block(peer);
                continue;
            };
            let epoch = Epoch(epoch);
            let Some(scheme) = self.schemes.get(epoch) else {
                // An epoch not reached yet (or long past): let the tracker decide.
                let _ = self.ahead.try_send(Event::Ahead { epoch, from: peer });
                continue;
            };
            let codec = scheme.certificate_codec_config();
            let certificate = match Certificate::<Scheme, BlockHash>::decode_cfg(message, &codec) {
                Ok(certificate) => certificate,
                Err(error) => {
                    warn!(?peer, %error, "undecodable certificate; blocking the peer");
                    self.blocker.block(peer);
                    continue;
                }
            };
            let Certificate::Finalization(finalization) = certificate else {
                continue;
            };
            if latest.is_some_and(|round| finalization.round() <= round) {
                continue;
            }
            if finalization.epoch().get() != epoch.0
                || !finalization.verify(&mut context, scheme.as_ref(), &Sequential)
            {
                warn!(?peer, round = %finalization.round(), "a finalization that does not verify; blocking the peer");
                self.blocker.block(peer);
                continue;
            }
            latest = Some(finalization.round());
            self.marshal.report(Activity::Finalization(finalization));
        }
    }
}
