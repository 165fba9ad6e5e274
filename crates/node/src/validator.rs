//! One validator: its chain, its authenticated p2p network (encrypted links to the other
//! validators only) and its consensus, on the tokio runtime.

use crate::{NodeError, genesis_file::Peer};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Handle, Quota, Supervisor as _, tokio};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::{net::SocketAddr, time::Duration};
use trellis_chain::{Chain, ChainConfig, Genesis};
use trellis_consensus::{
    BlockTiming, Channels, Config, ConsensusBlock, PublicKey, Set, Timeouts, engine::channel,
};
use trellis_crypto::ValidatorKey;
use trellis_types::{BlockLimits, ValidatorId};

/// Messages per second one peer may send on one channel. Backfill after a restart and block
/// broadcast need headroom: messages over quota are dropped silently.
const CHANNEL_QUOTA: u32 = 1_024;

/// Everything one validator needs to start.
pub struct ValidatorSetup {
    pub key: ValidatorKey,
    pub genesis: Genesis,
    /// Every validator of the chain with its p2p address (this one included).
    pub peers: Vec<Peer>,
    /// Prefix of this validator's storage partitions; stable across restarts, distinct per
    /// validator sharing a storage directory.
    pub partition_prefix: String,
    pub timing: BlockTiming,
    pub timeouts: Timeouts,
    /// Memory for the state's page cache, allocated at start.
    pub state_cache_bytes: usize,
    /// State history to keep, in blocks; `None` keeps all (a ledger's default).
    pub state_keep_blocks: Option<u64>,
}

/// A validator's default state page cache: enough to hold the hot part of a large state.
pub const DEFAULT_STATE_CACHE_BYTES: usize = 512 << 20;

impl ValidatorSetup {
    /// Default timing: an empty block at most every second when idle.
    pub fn new(key: ValidatorKey, genesis: Genesis, peers: Vec<Peer>, prefix: String) -> Self {
        Self {
            key,
            genesis,
            peers,
            partition_prefix: prefix,
            timing: BlockTiming::new(Duration::from_secs(1), Duration::from_millis(500)),
            timeouts: Timeouts::default(),
            state_cache_bytes: DEFAULT_STATE_CACHE_BYTES,
            state_keep_blocks: None,
        }
    }
}

/// A started validator.
pub struct Validator {
    pub chain: Chain<tokio::Context>,
    /// Ends only if consensus stops.
    pub consensus: Handle<()>,
}

fn public_key(id: &ValidatorId) -> PublicKey {
    PublicKey::decode(id.0.to_vec()).expect("genesis validators are checked to be valid keys")
}

/// Refuses early, with the address in the message, if the p2p port is taken.
fn check_port_free(addr: SocketAddr) -> Result<(), NodeError> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| NodeError::P2pPort { addr, source })
}

/// Opens the chain and starts p2p and consensus for one validator.
pub async fn start(
    context: &tokio::Context,
    setup: ValidatorSetup,
) -> Result<Validator, NodeError> {
    let me = setup.key.validator_id();
    let listen = setup
        .peers
        .iter()
        .find(|p| p.id == me)
        .ok_or(NodeError::NotAValidator(me))?
        .p2p;
    check_port_free(listen)?;
    let limits = BlockLimits::default();
    let prefix = setup.partition_prefix;
    let chain = Chain::open(
        context.child("chain").with_attribute("validator", &prefix),
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
    let genesis_block = chain.genesis_block();
    // Signatures of one chain are worthless on any other.
    let namespace = format!(
        "trellis-{}-{}",
        setup.genesis.chain_id,
        genesis_block.hash()
    )
    .into_bytes();

    let validators = Set::from_iter_dedup(setup.peers.iter().map(|p| public_key(&p.id)));
    let signer = setup.key.signer().clone();
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let n = setup.peers.len();
    let p2p = lookup::Config::local(
        handshake,
        &namespace,
        listen,
        NZUsize!(n.max(1)),
        trellis_consensus::max_message_size(n as u32, &limits),
        NZUsize!(1_024),
    );
    let (mut network, mut oracle) = lookup::Network::new(
        context.child("p2p").with_attribute("validator", &prefix),
        p2p,
    );
    let peers: Map<PublicKey, Address> = setup
        .peers
        .iter()
        .map(|p| (public_key(&p.id), p.p2p.into()))
        .collect::<Vec<_>>()
        .try_into()
        .expect("genesis validators are unique");
    let _ = oracle.track(0, peers);
    let quota = Quota::per_second(NZU32!(CHANNEL_QUOTA));
    let channels = Channels {
        votes: network.register(channel::VOTES, quota),
        certificates: network.register(channel::CERTIFICATES, quota),
        simplex_resolver: network.register(channel::SIMPLEX_RESOLVER, quota),
        blocks: network.register(channel::BLOCKS, quota),
        backfill: network.register(channel::BACKFILL, quota),
    };
    let transactions = network.register(channel::TRANSACTIONS, quota);
    network.start();
    trellis_chain::gossip::start(
        context.child("gossip").with_attribute("validator", &prefix),
        chain.clone(),
        transactions,
    );

    let config = Config {
        signer,
        validators,
        namespace,
        partition_prefix: prefix.clone(),
        genesis: ConsensusBlock::new(genesis_block).expect("genesis proposer is a validator key"),
        limits,
        timeouts: setup.timeouts,
        timing: setup.timing,
        ledger: chain.clone(),
    };
    let consensus = trellis_consensus::start(
        context
            .child("consensus")
            .with_attribute("validator", &prefix),
        config,
        oracle.clone(),
        oracle,
        channels,
    )
    .await?;
    Ok(Validator { chain, consensus })
}
