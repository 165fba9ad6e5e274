//! Validators on commonware's simulated network, in the deterministic runtime: the harness of
//! every test that runs consensus end to end (here with a stand-in ledger, in `trellis-chain`
//! with the real one). A seed reproduces a run exactly.

use crate::{
    application::BlockTiming,
    engine::{Channels, Config, channel, max_message_size, start},
    epochs::{PeerSets, participants},
    ledger::{Ledger, Member},
};
use commonware_cryptography::ed25519::PublicKey;
use commonware_p2p::{
    Manager, Sender, TrackedPeers,
    simulated::{self, Link, Network, Oracle},
};
use commonware_runtime::{Handle, Quota, Spawner as _, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize, ordered::Set, probability};
use std::time::Duration;
use trellis_types::{BlockLimits, Epoch};

/// The simulated network's control of its peers.
pub type SimOracle = Oracle<PublicKey, deterministic::Context>;
/// One peer's handle on the simulated network.
pub type SimControl = simulated::Control<PublicKey, deterministic::Context>;
pub type SimSender = simulated::Sender<PublicKey, deterministic::Context>;
pub type SimReceiver = simulated::Receiver<PublicKey>;
/// One registered channel of a simulated peer.
pub type SimChannel = (SimSender, SimReceiver);

/// Messages per second per peer and channel.
const QUOTA: u32 = 1_024;

/// Timing for simulations: empty blocks every 500 ms.
pub fn timing() -> BlockTiming {
    BlockTiming::new(Duration::from_millis(500), Duration::from_secs(1))
}

/// A network of `validators` in which the ones listed in `online` are linked to each other
/// (20 ms ± 5 ms, no loss); the others are cut off, as if down.
pub async fn network(
    context: &deterministic::Context,
    validators: &[PublicKey],
    online: &[usize],
) -> SimOracle {
    let n = validators.len();
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: max_message_size(n as u32, &BlockLimits::default()),
            max_peers_per_set: NZUsize!(n),
            disconnect_on_block: true,
            // The running epoch's and the one before, for nodes still finishing it.
            tracked_peer_sets: NZUsize!(2),
        },
        validators.iter().cloned(),
    )
    .await;
    network.start();
    let link = Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        success_rate: probability!(1.0),
    };
    for &a in online {
        for &b in online {
            if a != b {
                oracle
                    .add_link(validators[a].clone(), validators[b].clone(), link.clone())
                    .await
                    .expect("link two simulated peers");
            }
        }
    }
    oracle
}

/// Registers channel `id` for the peer behind `control`.
pub async fn register(control: &SimControl, id: u64) -> SimChannel {
    control
        .register(id, Quota::per_second(NZU32!(QUOTA)))
        .await
        .expect("register a simulated channel")
}

/// Registers the consensus channels of one peer.
pub async fn channels(control: &SimControl) -> Channels<SimSender, SimReceiver> {
    Channels {
        votes: register(control, channel::VOTES).await,
        certificates: register(control, channel::CERTIFICATES).await,
        simplex_resolver: register(control, channel::SIMPLEX_RESOLVER).await,
        blocks: register(control, channel::BLOCKS).await,
        backfill: register(control, channel::BACKFILL).await,
    }
}

/// The simulated network's peer sets, tracked by epoch: an epoch's validators are its primary
/// peers, `followers` (full nodes) secondary. The network is one for every simulated node, so
/// the first node to enter an epoch tracks it for all; epoch 0 is the set the network was
/// created with.
#[derive(Clone)]
pub struct SimPeers {
    manager: simulated::Manager<PublicKey, deterministic::Context>,
    followers: Vec<PublicKey>,
}

impl SimPeers {
    pub fn new(oracle: &SimOracle, followers: Vec<PublicKey>) -> Self {
        Self {
            manager: oracle.manager(),
            followers,
        }
    }
}

impl PeerSets for SimPeers {
    /// The simulation's followers are fixed: the ledger's full nodes are not asked.
    fn track(&mut self, epoch: Epoch, validators: &[Member], _full_nodes: &[Member]) {
        if epoch.0 == 0 {
            return;
        }
        let primary = participants(validators);
        let secondary = Set::from_iter_dedup(self.followers.iter().cloned());
        let _ = Manager::track(
            &mut self.manager,
            epoch.0,
            TrackedPeers::new(primary, secondary),
        );
    }
}

/// Starts one validator's consensus on the simulated network, in a task of its own.
pub fn spawn<L: Ledger>(
    context: &deterministic::Context,
    oracle: &SimOracle,
    control: SimControl,
    channels: Channels<SimSender, SimReceiver>,
    config: Config<L>,
) -> Handle<()> {
    spawn_followed(context, oracle, control, channels, config, Vec::new())
}

/// [`spawn`], on a network where `followers` (full nodes' keys) stay connected in every epoch,
/// sending through any sender (the simulator's byzantine validator wraps its own).
pub fn spawn_followed<S, L>(
    context: &deterministic::Context,
    oracle: &SimOracle,
    control: SimControl,
    channels: Channels<S, SimReceiver>,
    config: Config<L>,
    followers: Vec<PublicKey>,
) -> Handle<()>
where
    S: Sender<PublicKey = PublicKey>,
    L: Ledger,
{
    let provider = oracle.manager();
    let peers = SimPeers::new(oracle, followers);
    context
        .child("validator")
        .with_attribute("prefix", &config.partition_prefix)
        .spawn(move |ctx| async move {
            let engine = start(ctx, config, provider, control, channels, peers)
                .await
                .expect("a valid simulation config");
            let _ = engine.handle.await;
        })
}
