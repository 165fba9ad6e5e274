//! What validators and full nodes share: the chain opened on disk, and the authenticated,
//! encrypted p2p network with the consensus and gossip channels registered.
//!
//! Every node tracks one peer set per consensus epoch ([`EpochPeers`]): the epoch's validators
//! as primary peers (dialed and kept connected) and the genesis's full nodes as secondary ones
//! (accepted when they dial in, and sent what validators broadcast to all: blocks,
//! certificates, transactions). A key in neither list gets no connection; a validator removed
//! by governance loses its connections once the epoch after its last one is tracked.

use crate::{NodeError, genesis_file::Peer, hello::AnswerThenBlock};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{
    Address, AddressableManager as _, AddressableTrackedPeers,
    authenticated::lookup::{self, Oracle},
};
use commonware_runtime::{Quota, Supervisor as _, telemetry::metrics::MetricsExt as _, tokio};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::{net::SocketAddr, num::NonZeroUsize, time::Duration};
use tracing::{info, warn};
use trellis_chain::{Chain, ChainConfig, Genesis};
use trellis_consensus::{
    BlockTiming, Channels, ConsensusBlock, Member, PeerSets, PublicKey, Timeouts, engine::channel,
};
use trellis_crypto::ValidatorSigner;
use trellis_governance::{MAX_FULL_NODES, MAX_VALIDATORS, NodeRole};
use trellis_types::{BlockLimits, Epoch, ValidatorId};
use trellis_vault::{Protection, Vaulted};

pub use crate::encryption::NodeContext;

/// The p2p handshake's domain, the same for every Trellis chain: nodes of two chains that list
/// each other's keys still connect, and `hello` then names what differs between their
/// genesis files before blocking. Consensus signatures stay separated by chain and genesis.
pub const P2P_NAMESPACE: &[u8] = b"trellis-p2p-v1";

/// Messages per second one peer may send on one channel. Backfill after a restart and block
/// broadcast need headroom: messages over quota are dropped silently.
const CHANNEL_QUOTA: u32 = 1_024;

/// Everything one node (a validator or a full node) needs to start.
pub struct NodeSetup {
    /// The node's ed25519 key: its p2p identity, and a validator's consensus key.
    pub key: ValidatorSigner,
    /// The successor key, while a rotation is under way (`rotation.rs`).
    pub next_key: Option<ValidatorSigner>,
    pub genesis: Genesis,
    /// Every validator of the chain with its p2p address.
    pub peers: Vec<Peer>,
    /// The full nodes the genesis admits, with their addresses.
    pub full_nodes: Vec<Peer>,
    /// Where to listen for p2p if not at this node's own address in `peers`/`full_nodes`.
    pub listen: Option<SocketAddr>,
    /// Prefix of this node's storage partitions; stable across restarts, distinct per node
    /// sharing a storage directory.
    pub partition_prefix: String,
    pub timing: BlockTiming,
    pub timeouts: Timeouts,
    /// Memory for the state's page cache, allocated at start.
    pub state_cache_bytes: usize,
    /// State history to keep, in blocks; `None` keeps all (a ledger's default).
    pub state_keep_blocks: Option<u64>,
    /// Whether what the node writes is encrypted, and under which keys.
    pub protection: Protection,
    /// The risk control watching this node's admission and consensus, if any.
    pub risk: Option<crate::risk::Risk>,
    /// Where a validator keeps the evidence of equivocation it sees (it tells `risk` too).
    pub evidence: Option<crate::evidence::EvidenceLog>,
}

/// A node's default state page cache: enough to hold the hot part of a large state.
pub const DEFAULT_STATE_CACHE_BYTES: usize = 512 << 20;

impl NodeSetup {
    /// Default timing: an empty block at most every second when idle.
    pub fn new(key: ValidatorSigner, genesis: Genesis, peers: Vec<Peer>, prefix: String) -> Self {
        Self {
            key,
            next_key: None,
            genesis,
            peers,
            full_nodes: Vec::new(),
            listen: None,
            partition_prefix: prefix,
            timing: BlockTiming::new(Duration::from_secs(1), Duration::from_millis(500)),
            timeouts: Timeouts::default(),
            state_cache_bytes: DEFAULT_STATE_CACHE_BYTES,
            state_keep_blocks: None,
            protection: Protection::Plain,
            risk: None,
            evidence: None,
        }
    }
}

/// A node's chain and its p2p network, started.
pub(crate) struct Joined<Sd, Rv> {
    pub chain: Chain<NodeContext>,
    /// The key the node runs with: the setup's, or its successor once the chain moved the seat.
    pub key: ValidatorSigner,
    /// The successor key still to take over, if any.
    pub next_key: Option<ValidatorSigner>,
    /// Domain separation of every consensus signature.
    pub namespace: Vec<u8>,
    pub genesis_block: ConsensusBlock,
    /// The peer provider.
    pub oracle: Oracle<PublicKey>,
    /// What consensus tells whom to connect to, epoch by epoch.
    pub peers: EpochPeers,
    /// What consensus blocks peers with: tells the peer which chain this node is on first.
    pub blocker: AnswerThenBlock<Oracle<PublicKey>>,
    pub channels: Channels<Sd, Rv>,
}

pub(crate) fn public_key(id: &ValidatorId) -> PublicKey {
    PublicKey::decode(id.0.to_vec()).expect("genesis keys are checked to be valid keys")
}

impl NodeSetup {
    /// `context` with storage as this node's data directory keeps it: what the chain and
    /// consensus run on.
    pub(crate) fn store(&self, context: tokio::Context) -> NodeContext {
        Vaulted::with(context, self.protection.clone())
    }

    /// Where this node listens: its own or its successor key's address in `listed` (a genesis
    /// list), else `listen` from node.toml (a node added by governance is in no genesis list).
    pub(crate) fn listen_among(&self, listed: &[Peer]) -> Option<SocketAddr> {
        let keys = std::iter::once(&self.key).chain(&self.next_key);
        let ids: Vec<_> = keys.map(|key| key.validator_id()).collect();
        let found = listed.iter().find(|p| ids.contains(&p.id));
        found.map(|p| p.p2p).or(self.listen)
    }
}

/// Refuses early, with the address in the message, if the p2p port is taken.
pub(crate) fn check_port_free(addr: SocketAddr) -> Result<(), NodeError> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| NodeError::P2pPort { addr, source })
}

/// The p2p layer's peer sets, by consensus epoch: the epoch's validators, and the full nodes
/// beside, at their registered addresses (a genesis node's from the genesis file).
#[derive(Clone)]
pub(crate) struct EpochPeers {
    oracle: Oracle<PublicKey>,
    /// The genesis file's validators and full nodes, with their addresses.
    listed: Vec<Peer>,
}

impl EpochPeers {
    /// `members` with their addresses; one without any is left out, with a warning.
    fn addressed(&self, epoch: Epoch, members: &[Member]) -> Map<PublicKey, Address> {
        let mut peers = Vec::with_capacity(members.len());
        for member in members {
            let listed = self.listed.iter().find(|p| p.id == member.key);
            match member.p2p.or(listed.map(|p| p.p2p)) {
                Some(addr) => peers.push((public_key(&member.key), Address::from(addr))),
                None => {
                    warn!(%epoch, key = ?member.key, "a node key without an address: it cannot be reached")
                }
            }
        }
        Map::try_from(peers).expect("the registry records each key once")
    }
}

impl PeerSets for EpochPeers {
    fn track(&mut self, epoch: Epoch, validators: &[Member], full_nodes: &[Member]) {
        let primary = self.addressed(epoch, validators);
        let secondary = self.addressed(epoch, full_nodes);
        info!(
            %epoch,
            validators = validators.len(),
            full_nodes = full_nodes.len(),
            "tracking the epoch's peers"
        );
        let _ = self
            .oracle
            .track(epoch.0, AddressableTrackedPeers::new(primary, secondary));
    }
}

/// Opens the chain, starts p2p on `listen` (the node's advertised address, unless the setup
/// names another) and transaction gossip; returns the consensus
/// channels for the caller to start a validator's or a full node's consensus on.
pub(crate) async fn join(
    context: &tokio::Context,
    setup: &NodeSetup,
    (role, listen): (NodeRole, SocketAddr),
) -> Result<
    Joined<
        impl commonware_p2p::Sender<PublicKey = PublicKey>,
        impl commonware_p2p::Receiver<PublicKey = PublicKey>,
    >,
    NodeError,
> {
    let listen = setup.listen.unwrap_or(listen);
    check_port_free(listen)?;
    let limits = BlockLimits::default();
    let prefix = &setup.partition_prefix;
    let chain = Chain::open(
        setup.store(context.child("chain").with_attribute("node", prefix)),
        ChainConfig {
            genesis: setup.genesis.clone(),
            limits,
            partition_prefix: format!("{prefix}-chain"),
            state_cache_bytes: setup.state_cache_bytes,
            faults: crate::faults::from_env(),
            state_keep_blocks: setup.state_keep_blocks,
        },
    )
    .await?;
    if let Some(risk) = &setup.risk {
        chain.watch_admissions(std::sync::Arc::new(risk.clone()));
    }
    let (key, next_key) =
        crate::rotation::choose(&chain, role, &setup.key, setup.next_key.as_ref()).await;
    let genesis_block = chain.genesis_block();
    // Signatures of one chain are worthless on any other.
    let namespace = format!(
        "trellis-{}-{}",
        setup.genesis.chain_id,
        genesis_block.hash()
    )
    .into_bytes();

    let p2p_context = context.child("p2p").with_attribute("node", prefix);
    let handshake = crate::handshakes::Watched {
        inner: Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: key.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        ),
        failures: p2p_context.family(
            "handshake_failures",
            "p2p handshakes that failed, by direction and reason (unknown_peer: a key outside the network's set)",
        ),
        risk: setup.risk.clone(),
    };
    // Sized for the largest validator set governance allows, so messages (certificates carry
    // a signature per validator) never outgrow what peers accept as the set grows.
    let largest_set = MAX_VALIDATORS + MAX_FULL_NODES;
    let mut p2p = lookup::Config::local(
        handshake,
        P2P_NAMESPACE,
        listen,
        NonZeroUsize::new(largest_set).expect("at least one validator"),
        trellis_consensus::max_message_size(MAX_VALIDATORS as u32, &limits),
        NZUsize!(1_024),
    );
    p2p.block_duration = crate::hello::BLOCK_FOR;
    // The running epoch's peers and the one before's, for nodes still finishing it.
    p2p.tracked_peer_sets = NZUsize!(2);
    let (mut network, oracle) = lookup::Network::new(p2p_context, p2p);
    let peers = EpochPeers {
        oracle: oracle.clone(),
        listed: setup
            .peers
            .iter()
            .chain(&setup.full_nodes)
            .cloned()
            .collect(),
    };
    let quota = Quota::per_second(NZU32!(CHANNEL_QUOTA));
    let channels = Channels {
        votes: network.register(channel::VOTES, quota),
        certificates: network.register(channel::CERTIFICATES, quota),
        simplex_resolver: network.register(channel::SIMPLEX_RESOLVER, quota),
        blocks: network.register(channel::BLOCKS, quota),
        backfill: network.register(channel::BACKFILL, quota),
    };
    let transactions = network.register(channel::TRANSACTIONS, quota);
    let hello = network.register(channel::HELLO, quota);
    network.start();
    let blocker = crate::hello::start(
        context.child("hello").with_attribute("node", prefix),
        crate::hello::ChainSummary::of(&setup.genesis, genesis_block.hash()),
        hello,
        oracle.clone(),
    );
    trellis_chain::gossip::start(
        context.child("gossip").with_attribute("node", prefix),
        chain.clone(),
        transactions,
        blocker.clone(),
    );
    Ok(Joined {
        chain,
        key,
        next_key,
        namespace,
        genesis_block: ConsensusBlock::new(genesis_block)
            .expect("the genesis proposer is a validator key"),
        oracle,
        peers,
        blocker,
        channels,
    })
}
