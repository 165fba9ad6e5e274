//! A full node's consensus: it follows the validators without voting.
//!
//! It runs the same buffered broadcast, backfill and marshal as a validator, with a scheme that
//! can verify certificates but not sign. The validators' simplex engines send every
//! certificate to all connected peers, full nodes included; the follower checks each
//! finalization against the validator set and reports it to marshal, which fetches the block
//! (from the broadcast buffer or a peer), backfills any gap below it, and hands the blocks to
//! the ledger in height order, where they are executed as on a validator.
//!
//! A peer that sends a certificate that does not decode, or a finalization that does not
//! verify, is blocked. Votes and simplex's own fetches also reach full nodes; they are read
//! and dropped (a channel left unread would fill, and one not registered would cost the
//! connection).

use crate::{
    block::ConsensusBlock,
    engine::{Channels, MarshalSetup, page_cache, single_epoch, start_marshal},
    ledger::Ledger,
};
use commonware_codec::Decode as _;
use commonware_consensus::{
    Reporter as _,
    simplex::{
        scheme::ed25519::Scheme,
        types::{Activity, Certificate},
    },
    types::Round,
};
use commonware_cryptography::{certificate::Verifier as _, ed25519::PublicKey};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::ordered::Set;
use rand::CryptoRng;
use tracing::warn;
use trellis_types::{BlockHash, BlockLimits};

/// Everything a full node's consensus needs.
pub struct FollowerConfig<L> {
    /// This node's p2p identity (not a validator's key).
    pub public_key: PublicKey,
    pub validators: Set<PublicKey>,
    /// The chain's signature namespace, as validators use it.
    pub namespace: Vec<u8>,
    /// Prefix of this node's storage partitions. Must stay stable across restarts.
    pub partition_prefix: String,
    pub genesis: ConsensusBlock,
    pub limits: BlockLimits,
    pub ledger: L,
}

/// Starts a full node's consensus; the handle ends only if the certificate reader stops.
pub async fn follow<E, P, B, S, R, L>(
    context: E,
    config: FollowerConfig<L>,
    provider: P,
    blocker: B,
    channels: Channels<S, R>,
) -> Handle<()>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    L: Ledger,
{
    let scheme = Scheme::verifier(&config.namespace, config.validators);
    let mut marshal = start_marshal(
        &context,
        MarshalSetup {
            me: config.public_key,
            scheme: scheme.clone(),
            epocher: single_epoch(),
            page_cache: page_cache(),
            genesis: config.genesis,
            prefix: config.partition_prefix,
            limits: config.limits,
        },
        provider,
        blocker.clone(),
        channels.blocks,
        channels.backfill,
        config.ledger,
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

    let (_, mut certificates) = channels.certificates;
    let mut blocker = blocker;
    context
        .child("certificates")
        .spawn(move |mut context| async move {
            let codec = scheme.certificate_codec_config();
            // Every validator sends each finalization: report each round once.
            let mut latest: Option<Round> = None;
            while let Ok((peer, message)) = certificates.recv().await {
                let certificate = match Certificate::<Scheme, BlockHash>::decode_cfg(
                    message,
                    &codec,
                ) {
                    Ok(certificate) => certificate,
                    Err(error) => {
                        warn!(?peer, %error, "undecodable certificate; blocking the peer");
                        blocker.block(peer);
                        continue;
                    }
                };
                let Certificate::Finalization(finalization) = certificate else {
                    continue;
                };
                if latest.is_some_and(|round| finalization.round() <= round) {
                    continue;
                }
                if !finalization.verify(&mut context, &scheme, &Sequential) {
                    warn!(?peer, round = %finalization.round(), "a finalization that does not verify; blocking the peer");
                    blocker.block(peer);
                    continue;
                }
                latest = Some(finalization.round());
                marshal.report(Activity::Finalization(finalization));
            }
        })
}
