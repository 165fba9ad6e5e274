//! The simulated consortium: four validators and a full node, each the real thing (chain with
//! execution, state, mempool and block store on the runtime's simulated storage; transaction
//! gossip; consensus or, for the full node, the follower) on commonware's simulated network.
//!
//! A node runs as one supervised task: crashing it aborts that task and with it every task the
//! node started, as a killed process loses its threads; what it wrote to storage stays, and a
//! restart opens the same partitions. Links are reconciled with what the active faults want
//! after every change, so overlapping faults compose.

use crate::{
    accusations::Accusations,
    byzantine::{Carries, Spoiling, Twist, Twisted},
    plan::{Fault, LinkQuality, NodeId, Plan, VALIDATORS},
};
use alloy_primitives::{Address, U256};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::Link;
use commonware_runtime::{Handle, Spawner as _, Supervisor as _, deterministic};
use commonware_utils::Probability;
use futures::channel::oneshot;
use std::{collections::BTreeMap, num::NonZeroU64, sync::Arc, time::Duration};
use trellis_chain::{Chain, ChainConfig, Genesis};
use trellis_consensus::{
    Channels, Config, ConsensusBlock, FollowerConfig, PublicKey, Scheme, Set, Timeouts,
    engine::channel,
    simulation::{self, SimOracle, SimPeers, SimReceiver, SimSender},
    validator_id,
};
use trellis_crypto::AccountKey;
use trellis_governance::{
    EpochLength, Founders, FoundingIdentity, FoundingOrganisation, IdentityId, OrgId, Role, Window,
};
use trellis_types::BlockLimits;

/// How long a node refuses a peer it blocked (for a message that did not decode or verify, or
/// a conflicting vote). A node blocks for an hour, or until it restarts; the simulation lifts
/// blocks sooner so that a byzantine validator keeps getting chances to do harm.
const BLOCKED_FOR: Duration = Duration::from_secs(10);

/// A chain on the simulated runtime.
pub type SimChain = Chain<deterministic::Context>;

pub const CHAIN_ID: u64 = 7_357;
/// Every signature of the simulated chain is bound to this namespace.
const NAMESPACE: &[u8] = b"TRELLIS-SIMULATOR";
/// Five nodes share the process: a small page cache each.
const STATE_CACHE_BYTES: usize = 2 << 20;
/// Accounts of the workload, each a registered member's.
pub const SENDERS: u64 = 8;
/// What each sender starts with.
pub const ALLOCATION: u128 = 1_000_000_000_000_000_000;

/// The workload's signing accounts.
pub fn senders() -> Vec<AccountKey> {
    (1..=SENDERS)
        .map(|i| AccountKey::from_seed(1_000 + i))
        .collect()
}

/// The node's transport key (a validator's is also its consensus key).
pub fn node_key(node: NodeId) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(500 + node.0 as u64)
}

/// A governed chain: one organisation whose identities own the senders' accounts.
fn genesis(plan: &Plan) -> Genesis {
    let identities = senders()
        .iter()
        .enumerate()
        .map(|(i, key)| FoundingIdentity {
            id: IdentityId(i as u64 + 1),
            // The first member may also propose rule changes: a governed chain needs one.
            roles: if i == 0 {
                vec![Role::transactor(), Role::governor()]
            } else {
                vec![Role::transactor()]
            },
            accounts: vec![key.address()],
            window: Window::ALWAYS,
        })
        .collect();
    let key_id = |node: NodeId| validator_id(&node_key(node).public_key());
    Genesis {
        founders: Founders(vec![FoundingOrganisation {
            id: OrgId(1),
            name: "Simulated consortium".into(),
            identities,
        }]),
        epoch_length: EpochLength(NonZeroU64::new(plan.epoch_length).expect("not zero")),
        chain_id: CHAIN_ID,
        timestamp: 0,
        block_gas_limit: 30_000_000,
        gas_price: 0,
        validators: NodeId::validators().map(key_id).collect(),
        full_nodes: vec![key_id(NodeId(VALIDATORS))],
        alloc: senders()
            .iter()
            .map(|k| (k.address(), U256::from(ALLOCATION)))
            .collect::<BTreeMap<Address, U256>>(),
    }
}

/// What outlives the nodes' memory across a power loss: the byzantine validator's twist (what
/// it did) and every fault reported.
pub struct Kept {
    twist: Option<(NodeId, Arc<Twist>)>,
    accusations: Arc<Accusations>,
}

impl Kept {
    pub fn new(plan: &Plan) -> Self {
        Self {
            twist: plan.byzantine.map(|byzantine| {
                let validators =
                    Set::from_iter_dedup(NodeId::validators().map(|n| node_key(n).public_key()));
                let signer = trellis_crypto::ValidatorSigner::memory(node_key(byzantine.node));
                let scheme = Scheme::signer(NAMESPACE, validators, signer)
                    .expect("the byzantine node is a validator");
                (byzantine.node, Twist::new(byzantine, scheme, plan.seed.0))
            }),
            accusations: Arc::default(),
        }
    }
}

/// One node: its task while it runs, and the chain it serves.
struct Node {
    running: Option<(Handle<()>, SimChain)>,
    /// Starts so far; labels each life's metrics apart.
    lives: u32,
}

/// The nodes and the network between them.
pub struct Cluster {
    context: deterministic::Context,
    oracle: SimOracle,
    keys: Vec<PublicKey>,
    genesis: Genesis,
    nodes: Vec<Node>,
    /// The links as they are now.
    links: BTreeMap<(NodeId, NodeId), LinkQuality>,
    /// Since when each node has blocked each peer (the blocker first).
    blocked: BTreeMap<(NodeId, NodeId), Duration>,
    /// The byzantine validator's twist, if the plan has one.
    twist: Option<(NodeId, Arc<Twist>)>,
    accusations: Arc<Accusations>,
}

impl Cluster {
    /// Starts every node of `plan`'s chain, all linked; `kept` is what outlives a power
    /// loss (the byzantine validator's twist and the reports so far).
    pub async fn start(context: &deterministic::Context, plan: &Plan, kept: &Kept) -> Self {
        let keys: Vec<PublicKey> = NodeId::all().map(|n| node_key(n).public_key()).collect();
        let oracle = simulation::network(context, &keys, &[]).await;
        let mut cluster = Self {
            context: context.child("cluster"),
            oracle,
            keys,
            genesis: genesis(plan),
            nodes: NodeId::all()
                .map(|_| Node {
                    running: None,
                    lives: 0,
                })
                .collect(),
            links: BTreeMap::new(),
            blocked: BTreeMap::new(),
            twist: kept.twist.clone(),
            accusations: kept.accusations.clone(),
        };
        for node in NodeId::all() {
            cluster.restart(node).await;
        }
        cluster.reconcile(&[]).await;
        cluster
    }

    /// The chain of `node`, if it runs.
    pub fn chain(&self, node: NodeId) -> Option<&SimChain> {
        self.nodes[node.0].running.as_ref().map(|(_, chain)| chain)
    }

    /// The nodes that run, with their chains.
    pub fn running(&self) -> impl Iterator<Item = (NodeId, &SimChain)> {
        NodeId::all().filter_map(|n| self.chain(n).map(|c| (n, c)))
    }

    /// The running nodes that follow the protocol.
    pub fn honest(&self) -> impl Iterator<Item = (NodeId, &SimChain)> {
        self.running().filter(|(n, _)| !self.is_byzantine(*n))
    }

    pub fn is_byzantine(&self, node: NodeId) -> bool {
        self.twist.as_ref().is_some_and(|(n, _)| *n == node)
    }

    /// The byzantine validator's twist, if any.
    pub fn twist(&self) -> Option<&Arc<Twist>> {
        self.twist.as_ref().map(|(_, twist)| twist)
    }

    /// Every fault the nodes' consensus reported.
    pub fn accusations(&self) -> &Accusations {
        &self.accusations
    }

    pub fn is_running(&self, node: NodeId) -> bool {
        self.nodes[node.0].running.is_some()
    }

    /// Kills `node`'s process: every task it started stops where it is.
    pub fn crash(&mut self, node: NodeId) {
        if let Some((handle, _chain)) = self.nodes[node.0].running.take() {
            handle.abort();
        }
    }

    /// Starts `node` from its storage (a no-op if it runs).
    pub async fn restart(&mut self, node: NodeId) {
        if self.is_running(node) {
            return;
        }
        let life = self.nodes[node.0].lives;
        self.nodes[node.0].lives += 1;
        let (started, chain) = oneshot::channel();
        let setup = NodeSetup {
            node,
            key: node_key(node),
            oracle: self.oracle.clone(),
            genesis: self.genesis.clone(),
            follower: self.keys[VALIDATORS].clone(),
            twist: self
                .twist
                .as_ref()
                .filter(|(n, _)| *n == node)
                .map(|(_, twist)| twist.clone()),
            accusations: self.accusations.clone(),
        };
        let handle = self
            .context
            .child("node")
            .with_attribute("index", node.0)
            .with_attribute("life", life)
            .spawn(move |context| setup.run(context, started));
        let chain = chain
            .await
            .expect("a node opens its chain from its storage");
        self.nodes[node.0].running = Some((handle, chain));
    }

    /// Lifts the blocks older than [`BLOCKED_FOR`] at `now`, and those of nodes that restarted
    /// (a node forgets whom it blocked). Returns how many blocks are in force.
    pub async fn lift_blocks(&mut self, now: Duration) -> usize {
        let node_of = |key: &PublicKey| {
            let index = self.keys.iter().position(|k| k == key);
            NodeId(index.expect("every peer of the simulated network is a node"))
        };
        let current: Vec<(NodeId, NodeId)> = self
            .oracle
            .blocked()
            .await
            .expect("the simulated network answers")
            .iter()
            .map(|(by, peer)| (node_of(by), node_of(peer)))
            .collect();
        self.blocked.retain(|pair, _| current.contains(pair));
        for &(by, peer) in &current {
            self.accusations.blocked(by, peer);
        }
        for pair in &current {
            self.blocked.entry(*pair).or_insert(now);
        }
        let expired: Vec<(NodeId, NodeId)> = self
            .blocked
            .iter()
            .filter(|((by, _), since)| now >= **since + BLOCKED_FOR || !self.is_running(*by))
            .map(|(pair, _)| *pair)
            .collect();
        for (by, peer) in expired {
            self.oracle
                .unblock(self.keys[by.0].clone(), self.keys[peer.0].clone())
                .await
                .expect("the simulated network answers");
            self.blocked.remove(&(by, peer));
        }
        self.blocked.len()
    }

    /// Sets every link to what the running nodes and `active` faults want: none to or from a
    /// stopped node or across a partition, the worst degradation of either end, else healthy.
    pub async fn reconcile(&mut self, active: &[&Fault]) {
        let wanted = self.wanted_links(active);
        let pairs: Vec<(NodeId, NodeId)> = NodeId::all()
            .flat_map(|a| NodeId::all().map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .collect();
        for pair in pairs {
            let want = wanted.get(&pair).copied();
            let have = self.links.get(&pair).copied();
            if want == have {
                continue;
            }
            let (from, to) = (self.keys[pair.0.0].clone(), self.keys[pair.1.0].clone());
            if have.is_some() {
                self.oracle
                    .remove_link(from.clone(), to.clone())
                    .await
                    .expect("remove a simulated link");
                self.links.remove(&pair);
            }
            if let Some(quality) = want {
                self.oracle
                    .add_link(from, to, link(quality))
                    .await
                    .expect("add a simulated link");
                self.links.insert(pair, quality);
            }
        }
    }

    fn wanted_links(&self, active: &[&Fault]) -> BTreeMap<(NodeId, NodeId), LinkQuality> {
        let mut wanted = BTreeMap::new();
        for a in NodeId::all().filter(|n| self.is_running(*n)) {
            for b in NodeId::all().filter(|n| *n != a && self.is_running(*n)) {
                let cut = active.iter().any(|fault| match fault {
                    Fault::Partition(side) => side.contains(&a) != side.contains(&b),
                    _ => false,
                });
                if cut {
                    continue;
                }
                let quality = active
                    .iter()
                    .filter_map(|fault| match fault {
                        Fault::Degrade(nodes, q) if nodes.contains(&a) || nodes.contains(&b) => {
                            Some(*q)
                        }
                        _ => None,
                    })
                    .fold(LinkQuality::HEALTHY, worst);
                wanted.insert((a, b), quality);
            }
        }
        wanted
    }
}

/// The worse of two link qualities, field by field.
fn worst(a: LinkQuality, b: LinkQuality) -> LinkQuality {
    LinkQuality {
        latency: a.latency.max(b.latency),
        jitter: a.jitter.max(b.jitter),
        delivered_percent: a.delivered_percent.min(b.delivered_percent),
    }
}

fn link(quality: LinkQuality) -> Link {
    Link {
        latency: quality.latency,
        jitter: quality.jitter,
        success_rate: Probability::new(u64::from(quality.delivered_percent), 100)
            .expect("a percentage is a probability"),
    }
}

/// What a node's task needs to start it.
struct NodeSetup {
    node: NodeId,
    key: ed25519::PrivateKey,
    oracle: SimOracle,
    genesis: Genesis,
    /// The full node's key: validators keep it connected in every epoch.
    follower: PublicKey,
    /// What this node does wrong, if it is the byzantine one.
    twist: Option<Arc<Twist>>,
    accusations: Arc<Accusations>,
}

impl NodeSetup {
    /// A validator's consensus settings over `ledger` (the chain, or the chain spoiled).
    fn consensus<L>(&self, chain: &SimChain, ledger: L, genesis: ConsensusBlock) -> Config<L> {
        Config {
            signer: trellis_crypto::ValidatorSigner::memory(self.key.clone()),
            epoch_length: chain.epoch_length(),
            namespace: NAMESPACE.to_vec(),
            partition_prefix: format!("n{}", self.node.0),
            genesis,
            limits: BlockLimits::default(),
            timeouts: Timeouts::default(),
            timing: simulation::timing(),
            ledger,
            fault_sink: Some(self.accusations.sink(self.node)),
        }
    }

    /// The node's process: opens its chain, hands it out, then runs gossip and consensus
    /// until aborted.
    async fn run(self, context: deterministic::Context, started: oneshot::Sender<SimChain>) {
        let index = self.node.0;
        let chain = Chain::open(
            context.child("chain"),
            ChainConfig {
                genesis: self.genesis.clone(),
                limits: BlockLimits::default(),
                partition_prefix: format!("n{index}-chain"),
                state_cache_bytes: STATE_CACHE_BYTES,
                faults: Default::default(),
                state_keep_blocks: None,
            },
        )
        .await
        .expect("a node's chain opens from its own storage");
        let control = self.oracle.control(self.key.public_key());
        let transactions = simulation::register(&control, channel::TRANSACTIONS).await;
        trellis_chain::gossip::start(
            context.child("gossip"),
            chain.clone(),
            transactions,
            control.clone(),
        );
        let channels = simulation::channels(&control).await;
        let genesis = ConsensusBlock::new(chain.genesis_block()).expect("genesis is a block");
        let _ = started.send(chain.clone());
        let consensus = if self.node.is_validator() {
            let followers = vec![self.follower.clone()];
            match &self.twist {
                None => {
                    let config = self.consensus(&chain, chain.clone(), genesis);
                    simulation::spawn_followed(
                        &context,
                        &self.oracle,
                        control,
                        channels,
                        config,
                        followers,
                    )
                }
                Some(twist) => {
                    let ledger = Spoiling::new(chain.clone(), twist.clone());
                    let config = self.consensus(&chain, ledger, genesis);
                    let channels = twisted(channels, twist);
                    simulation::spawn_followed(
                        &context,
                        &self.oracle,
                        control,
                        channels,
                        config,
                        followers,
                    )
                }
            }
        } else {
            let config = FollowerConfig {
                public_key: self.key.public_key(),
                epoch_length: chain.epoch_length(),
                namespace: NAMESPACE.to_vec(),
                partition_prefix: format!("n{index}"),
                genesis,
                limits: BlockLimits::default(),
                ledger: chain,
            };
            let peers = SimPeers::new(&self.oracle, vec![self.follower]);
            trellis_consensus::follow(
                context.child("follower"),
                config,
                self.oracle.manager(),
                control.clone(),
                channels,
                peers,
            )
            .await
        };
        let _ = consensus.await;
    }
}

/// The byzantine validator's channels: what it sends goes through its twist.
fn twisted(
    channels: Channels<SimSender, SimReceiver>,
    twist: &Arc<Twist>,
) -> Channels<Twisted<SimSender>, SimReceiver> {
    let wrap = |(sender, receiver): (SimSender, SimReceiver), carries| {
        (Twisted::new(sender, twist.clone(), carries), receiver)
    };
    Channels {
        votes: wrap(channels.votes, Carries::Votes),
        certificates: wrap(channels.certificates, Carries::Certificates),
        simplex_resolver: wrap(channels.simplex_resolver, Carries::Other),
        blocks: wrap(channels.blocks, Carries::Blocks),
        backfill: wrap(channels.backfill, Carries::Other),
    }
}
