//! Starts one validator's consensus: buffered broadcast of blocks, marshal (ordering, archives,
//! backfill) and simplex, around the chain's [`App`].
//!
//! Generic over the runtime (tokio in the node, the deterministic simulator in tests) and the
//! p2p network (authenticated `lookup` in the node, `simulated` in tests): only channel pairs,
//! a peer provider and a blocker are needed.

use crate::scheme::{Scheme, Signing};
use crate::{
    application::{App, BlockTiming, Finalizer},
    block::ConsensusBlock,
    epochs::{Event, PeerSets, Schemes, epocher},
    ledger::Ledger,
    orchestrator::{self, Orchestrator},
    screen::Screened,
};
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{
        self,
        core::Actor as Marshal,
        resolver::p2p as marshal_resolver,
        standard::{Deferred, Standard},
    },
    types::ViewDelta,
};
use commonware_cryptography::{
    Digested, Signer as _, certificate::Verifier as _, ed25519::PublicKey,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock, Handle, Metrics, Spawner, Storage, buffer::paged::CacheRef,
    telemetry::metrics::MetricsExt as _,
};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize};
use futures::channel::mpsc;
use rand::CryptoRng;
use std::{num::NonZeroUsize, time::Duration};
use trellis_crypto::ValidatorSigner;
use trellis_types::{BlockLimits, EpochLength};

/// Channel ids, the same on every node. Each is its own rate-limited stream.
pub mod channel {
    /// Simplex votes.
    pub const VOTES: u64 = 0;
    /// Simplex certificates (notarizations, nullifications, finalizations).
    pub const CERTIFICATES: u64 = 1;
    /// Simplex fetching certificates it missed.
    pub const SIMPLEX_RESOLVER: u64 = 2;
    /// Full blocks, pushed by their proposer (buffered broadcast).
    pub const BLOCKS: u64 = 3;
    /// Marshal fetching finalized blocks and certificates it missed (backfill).
    pub const BACKFILL: u64 = 4;
    /// Transaction gossip between pools. Not consensus's own, listed here so that every
    /// channel id of the node is in one place.
    pub const TRANSACTIONS: u64 = 5;
    /// Each node's summary of its genesis, so that a peer on another chain is named and
    /// blocked (the node's `hello`).
    pub const HELLO: u64 = 6;
}

/// The `(sender, receiver)` pair of each consensus channel.
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub simplex_resolver: (S, R),
    pub blocks: (S, R),
    pub backfill: (S, R),
}

/// Simplex's timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// How long a follower waits for the leader's proposal. Must exceed the empty-block
    /// interval, or an idle leader's views would time out.
    pub leader: Duration,
    /// How long a follower waits for a proposal to be certified before voting to skip the view.
    pub certification: Duration,
    /// How often a stuck view re-broadcasts its votes.
    pub retry: Duration,
    /// After a leader has been silent this long, its views are skipped at once instead of each
    /// costing `leader`.
    pub skip_silent_leader: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_secs(2),
            certification: Duration::from_secs(3),
            retry: Duration::from_secs(4),
            skip_silent_leader: Duration::from_secs(8),
        }
    }
}

/// Inconsistent consensus settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "timeouts must satisfy leader < certification < skip and retry < skip (got leader {leader:?}, certification {certification:?}, retry {retry:?}, skip {skip:?})"
    )]
    TimeoutOrder {
        leader: Duration,
        certification: Duration,
        retry: Duration,
        skip: Duration,
    },
    #[error(
        "the empty-block interval ({interval:?}) plus the storage wait ({storage:?}) must be shorter than the leader timeout ({leader:?}), or leaders would miss their views"
    )]
    EmptyBlockInterval {
        interval: Duration,
        storage: Duration,
        leader: Duration,
    },
    #[error("an epoch must have at least two blocks (the first of epoch 0 is genesis)")]
    EpochTooShort,
}

/// Everything one validator's consensus needs.
pub struct Config<L> {
    pub signer: ValidatorSigner,
    /// Blocks per epoch; the ledger names each epoch's validators.
    pub epoch_length: EpochLength,
    /// Domain separation for every consensus signature: distinct per chain, so a vote on one
    /// chain is worthless on another.
    pub namespace: Vec<u8>,
    /// Prefix of this validator's storage partitions. Must stay stable across restarts.
    pub partition_prefix: String,
    /// Height 0, identical on every node.
    pub genesis: ConsensusBlock,
    pub limits: BlockLimits,
    pub timeouts: Timeouts,
    pub timing: BlockTiming,
    pub ledger: L,
    /// Told of every conflicting vote seen (the node's risk control), if set.
    pub fault_sink: Option<std::sync::Arc<dyn crate::FaultSink>>,
}

impl<L> Config<L> {
    /// Checks the settings that simplex would otherwise reject with a panic.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = self.timeouts;
        let skip = t.skip_silent_leader;
        if !(t.leader < t.certification && t.certification < skip && t.retry < skip) {
            return Err(ConfigError::TimeoutOrder {
                leader: t.leader,
                certification: t.certification,
                retry: t.retry,
                skip,
            });
        }
        if self.timing.empty_block_interval + self.timing.storage_wait >= t.leader {
            return Err(ConfigError::EmptyBlockInterval {
                interval: self.timing.empty_block_interval,
                storage: self.timing.storage_wait,
                leader: t.leader,
            });
        }
        if self.epoch_length.0.get() < 2 {
            return Err(ConfigError::EpochTooShort);
        }
        Ok(())
    }
}

/// The largest p2p message consensus sends (a full block with its certificate) for `validators`
/// participants. The p2p layer must admit it, and it must never shrink while blocks are stored.
pub fn max_message_size(validators: u32, limits: &BlockLimits) -> u32 {
    let size = marshal::max_payload_size::<Standard<ConsensusBlock>, Scheme>(validators, limits);
    u32::try_from(size).expect("block limits keep messages under 4 GiB")
}

const MAILBOX: NonZeroUsize = NZUsize!(1_024);
const IO_BUFFER: NonZeroUsize = NZUsize!(1 << 20);

/// A started validator's consensus.
pub struct Started<L> {
    /// The orchestrator's handle (it runs one simplex engine per epoch). Await it: when the
    /// task owning the actors ends, the runtime aborts them all.
    pub handle: Handle<()>,
    /// The archived finalization certificates.
    pub certificates: crate::Certificates<L>,
}

/// Starts every consensus actor of one validator and returns the orchestrator's handle with
/// a reader of the certificates. A validator outside an epoch's set follows that epoch without
/// voting; `peers` learns each epoch's validators.
pub async fn start<E, P, B, S, R, L, D>(
    context: E,
    config: Config<L>,
    provider: P,
    blocker: B,
    channels: Channels<S, R>,
    peers: D,
) -> Result<Started<L>, ConfigError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    L: Ledger,
    D: PeerSets,
{
    config.validate()?;
    let me = config.signer.public_key();
    let prefix = config.partition_prefix.clone();
    let schemes = Schemes::new(&config.namespace, Some(config.signer))
        .measured(Signing::register(&context.child("signing")));
    let page_cache = page_cache();
    let genesis = config.genesis;
    let (events, events_in) = orchestrator::events();
    let marshal_mailbox = start_marshal(
        &context,
        MarshalSetup {
            me,
            schemes: schemes.clone(),
            length: config.epoch_length,
            events: events.clone(),
            page_cache: page_cache.clone(),
            genesis: genesis.clone(),
            prefix: prefix.clone(),
            limits: config.limits,
        },
        provider,
        blocker.clone(),
        channels.blocks,
        channels.backfill,
        config.ledger.clone(),
    )
    .await;

    let certificates = crate::Certificates::new(marshal_mailbox.clone(), config.ledger.clone());
    let app = App::new(config.ledger.clone(), config.timing);
    // Deferred: simplex's automaton, relay and reporter; it checks each block's embedded context
    // and runs the app's verification before certifying, and re-proposes an epoch's last block
    // until the next epoch's engine takes over.
    let application = Deferred::new(
        context.child("deferred"),
        app,
        marshal_mailbox.clone(),
        epocher(config.epoch_length),
    );
    let faults = context.family(
        "faults",
        "Conflicting votes seen, by kind and validator key (equivocation evidence)",
    );
    let orchestrator = Orchestrator {
        context,
        faults,
        fault_sink: config.fault_sink,
        ledger: config.ledger,
        peers,
        schemes,
        marshal: marshal_mailbox,
        application,
        blocker,
        length: config.epoch_length,
        timeouts: config.timeouts,
        prefix,
        page_cache,
        genesis: genesis.hash(),
        mailbox_size: MAILBOX,
        io_buffer: IO_BUFFER,
    };
    let handle = orchestrator.start(
        [
            channels.votes,
            channels.certificates,
            channels.simplex_resolver,
        ],
        events_in,
        events,
    );
    Ok(Started {
        handle,
        certificates,
    })
}

/// The page cache a node's consensus archives (and simplex's journal) share.
pub(crate) fn page_cache() -> CacheRef {
    CacheRef::new(NZU16!(4_096), NZUsize!(1_024))
}

/// What marshal needs, shared by validators and full nodes.
pub(crate) struct MarshalSetup {
    pub me: PublicKey,
    /// Every known epoch's scheme: signing on a validator in the set, verifying otherwise.
    pub schemes: Schemes,
    pub length: EpochLength,
    /// Where the finalizer reports each epoch's last block.
    pub events: mpsc::Sender<Event>,
    pub page_cache: CacheRef,
    pub genesis: ConsensusBlock,
    pub prefix: String,
    pub limits: BlockLimits,
}

/// Starts buffered broadcast of blocks, the backfill resolver and marshal, which verifies
/// finalization certificates, archives finalized blocks with them and hands them to the ledger
/// in height order. Returns marshal's mailbox (simplex's, or a full node's, reporter).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_marshal<E, P, B, S, R, L>(
    context: &E,
    setup: MarshalSetup,
    provider: P,
    blocker: B,
    blocks_channel: (S, R),
    backfill_channel: (S, R),
    ledger: L,
) -> marshal::core::Mailbox<Scheme, Standard<ConsensusBlock>>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    L: Ledger,
{
    let MarshalSetup {
        me,
        schemes,
        length,
        events,
        page_cache,
        genesis,
        prefix,
        limits,
    } = setup;
    let (broadcast, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: MAILBOX,
            deque_size: 16,
            priority: false,
            codec_config: limits,
            peer_provider: provider.clone(),
            strategy: Sequential,
        },
    );
    let (blocks_out, blocks_in) = blocks_channel;
    broadcast.start((
        blocks_out,
        Screened::<_, ConsensusBlock, _>::new(blocks_in, limits, blocker.clone(), "block"),
    ));

    let backfill = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: me,
            peer_provider: provider,
            blocker,
            mailbox_size: MAILBOX,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        backfill_channel,
    );

    // The durable record: every finalized block and the certificate that finalized it.
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive_config(
            &prefix,
            "finalizations",
            &page_cache,
            Scheme::certificate_codec_config_unbounded(),
        ),
    )
    .await
    .expect("open the finalizations archive");
    let blocks = immutable::Archive::init(
        context.child("blocks"),
        archive_config(&prefix, "blocks", &page_cache, limits),
    )
    .await
    .expect("open the finalized blocks archive");

    let (marshal, marshal_mailbox, _floor) = Marshal::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: schemes,
            epocher: epocher(length),
            // Ignored once storage holds progress.
            start: marshal::Start::Genesis(Digested::precomputed(genesis.clone(), genesis.hash())),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size: MAILBOX,
            view_retention: ViewDelta::new(10),
            prunable_items_per_section: NZU64!(64),
            page_cache,
            replay_buffer: IO_BUFFER,
            key_write_buffer: IO_BUFFER,
            value_write_buffer: IO_BUFFER,
            block_codec_config: limits,
            max_repair: NZUsize!(16),
            max_pending_acks: NZUsize!(16),
            strategy: Sequential,
        },
    )
    .await;
    let finalizer = Finalizer::start(context.child("finalizer"), ledger, length, events);
    marshal.start(finalizer, buffer, backfill);
    marshal_mailbox
}

/// The layout of one immutable archive (a freezer table for lookups by key and an ordinal
/// index by position), as every archive of the node uses it. Partitions are named
/// `{prefix}-{name}-…`.
pub fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: &CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    let partition = |part: &str| format!("{prefix}-{name}-{part}");
    immutable::Config {
        metadata_partition: partition("metadata"),
        freezer_table_partition: partition("freezer-table"),
        freezer_table_initial_size: 1 << 16,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 10,
        freezer_key_partition: partition("freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: partition("freezer-value"),
        freezer_value_target_size: 1 << 28,
        freezer_value_compression: None,
        ordinal_partition: partition("ordinal"),
        items_per_section: NZU64!(1 << 12),
        codec_config,
        replay_buffer: IO_BUFFER,
        freezer_key_write_buffer: IO_BUFFER,
        freezer_value_write_buffer: IO_BUFFER,
        ordinal_write_buffer: IO_BUFFER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Path, Proposal};
    use trellis_types::{Block, BlockHash, Height};

    #[derive(Clone)]
    struct NoLedger;

    impl Ledger for NoLedger {
        type Error = String;
        type Prepared = ();
        fn knows(&self, _: &BlockHash) -> bool {
            false
        }
        fn has_pending_transactions(&self) -> bool {
            false
        }
        fn applied_height(&self) -> Height {
            Height::GENESIS
        }
        async fn propose(&self, _: Path, _: Proposal) -> Option<crate::Built> {
            None
        }
        async fn verify(&self, _: Path) -> Result<(), String> {
            Err("unused".into())
        }
        async fn prepare(&self, _: &Block, _: &trellis_types::ClaimedSenders) {}
        async fn finalize(&self, _: Block, _: ()) {}
        async fn validators(&self, _: trellis_types::Epoch) -> Option<Vec<crate::Member>> {
            None
        }
    }

    fn config(signer: u64) -> Config<NoLedger> {
        use commonware_cryptography::ed25519::PrivateKey;
        let keys: Vec<_> = (0..4).map(PrivateKey::from_seed).collect();
        let genesis_key = keys[0].public_key();
        let header = trellis_types::Header {
            proposer: crate::validator_id(&genesis_key),
            transactions_root: trellis_types::transactions_root(&[]),
            ..Default::default()
        };
        Config {
            signer: ValidatorSigner::memory(PrivateKey::from_seed(signer)),
            epoch_length: EpochLength::FOREVER,
            namespace: b"test".to_vec(),
            partition_prefix: "p".into(),
            genesis: ConsensusBlock::new(Block::new(header, vec![]).unwrap()).unwrap(),
            limits: BlockLimits::default(),
            timeouts: Timeouts::default(),
            timing: BlockTiming::new(Duration::from_secs(1), Duration::from_secs(1)),
            ledger: NoLedger,
            fault_sink: None,
        }
    }

    #[test]
    fn defaults_are_valid() {
        config(0).validate().unwrap();
    }

    #[test]
    fn inconsistent_settings_are_named() {
        let mut c = config(0);
        c.timeouts.certification = c.timeouts.leader;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TimeoutOrder { .. })
        ));

        let mut c = config(0);
        c.timing.empty_block_interval = c.timeouts.leader;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::EmptyBlockInterval { .. })
        ));

        // Each alone is shorter than the leader timeout, but a leader may wait for both.
        let mut c = config(0);
        c.timing.empty_block_interval = c.timeouts.leader * 3 / 4;
        c.timing.storage_wait = c.timeouts.leader / 2;
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("storage wait"), "{err}");

        let mut c = config(0);
        c.epoch_length = EpochLength(NZU64!(1));
        assert_eq!(c.validate(), Err(ConfigError::EpochTooShort));
    }

    #[test]
    fn a_full_block_fits_in_one_message() {
        let limits = BlockLimits::default();
        assert!(max_message_size(4, &limits) as usize > limits.max_encoded_size());
    }
}
