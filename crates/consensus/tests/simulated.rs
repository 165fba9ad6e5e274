//! Consensus over the deterministic runtime and simulated p2p: validators order blocks of
//! transactions and agree on every finalized height.
//!
//! The ledger here is a minimal stand-in for the node's (which executes the EVM and is tested
//! with consensus in the `chain` crate): a transaction is opaque bytes, and a block's "state
//! root" is a hash chain over the transactions, so verification can still reject a block whose
//! header lies about its contents.

use alloy_primitives::keccak256;
use commonware_cryptography::Signer as _;
use commonware_runtime::{
    Clock as _, Handle, Runner as _, Storage as _, Supervisor as _, deterministic,
};
use commonware_utils::sync::Mutex;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};
use trellis_consensus::{
    BlockTiming, Built, Config, ConsensusBlock, EpochLength, Ledger, Member, Path, PrivateKey,
    Proposal, PublicKey, Set, Timeouts,
    simulation::{self, SimOracle},
    validator_id,
};
use trellis_types::{
    B256, Block, BlockHash, BlockLimits, Bloom, Bytes, ClaimedSenders, Epoch, Header, Height,
    StateRoot, Timestamp, View, transactions_root,
};

const N: usize = 4;
const GAS_LIMIT: u64 = 30_000_000;

fn keys() -> Vec<PrivateKey> {
    (0..N as u64).map(PrivateKey::from_seed).collect()
}

fn validators() -> Set<PublicKey> {
    Set::from_iter_dedup(keys().iter().map(|k| k.public_key()))
}

/// The stand-in state transition: root' = keccak(root || tx...).
fn next_root(parent: StateRoot, txs: &[Bytes]) -> StateRoot {
    let mut bytes = parent.0.to_vec();
    for tx in txs {
        bytes.extend_from_slice(tx);
    }
    StateRoot(keccak256(bytes))
}

fn genesis() -> ConsensusBlock {
    let first = validators().iter().next().unwrap().clone();
    let header = Header {
        parent: BlockHash::ZERO,
        height: Height::GENESIS,
        timestamp: Timestamp(0),
        proposer: validator_id(&first),
        epoch: Epoch(0),
        view: View(0),
        parent_view: View(0),
        transactions_root: transactions_root(&[]),
        senders_root: trellis_types::senders_root([]),
        receipts_root: B256::ZERO,
        state_root: StateRoot::ZERO,
        logs_bloom: Bloom::ZERO,
        gas_used: 0,
        gas_limit: GAS_LIMIT,
    };
    ConsensusBlock::new(Block::new(header, vec![]).unwrap()).unwrap()
}

#[derive(Default)]
struct Inner {
    /// Blocks whose resulting state this ledger holds (executed or finalized).
    known: BTreeMap<BlockHash, Block>,
    pool: Vec<Bytes>,
    finalized: Vec<Block>,
    /// Storage that takes this long per finalized block, on the simulated clock.
    slow_storage: Option<(Arc<deterministic::Context>, Duration)>,
    /// The most blocks a proposal's parent was above the last finalized block.
    max_unapplied: u64,
}

#[derive(Clone)]
struct TestLedger(Arc<Mutex<Inner>>);

#[derive(Debug)]
struct Rejected(&'static str);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl TestLedger {
    fn new() -> Self {
        let mut inner = Inner::default();
        let genesis = genesis().into_block();
        inner.known.insert(genesis.hash(), genesis.clone());
        inner.finalized.push(genesis);
        Self(Arc::new(Mutex::new(inner)))
    }

    fn add_transactions(&self, txs: impl IntoIterator<Item = Bytes>) {
        self.0.lock().pool.extend(txs);
    }

    fn finalized(&self) -> Vec<Block> {
        self.0.lock().finalized.clone()
    }

    /// A ledger whose every finalized block takes `delay` to become durable.
    fn with_slow_storage(context: &deterministic::Context, delay: Duration) -> Self {
        let ledger = Self::new();
        ledger.0.lock().slow_storage = Some((Arc::new(context.child("storage")), delay));
        ledger
    }

    /// Executes the unexecuted blocks of a path (certified by consensus) into `known`.
    fn execute_path(inner: &mut Inner, path: &[Block]) {
        for pair in path.windows(2) {
            let (parent, block) = (&pair[0], &pair[1]);
            let root = next_root(parent.header().state_root, block.transactions());
            assert_eq!(root, block.header().state_root, "certified block is wrong");
            inner.known.insert(block.hash(), block.clone());
        }
    }

    /// Transactions already in the unfinalized blocks below `tip`.
    fn in_flight(inner: &Inner, tip: &Block) -> BTreeSet<Bytes> {
        let last_final = inner.finalized.last().unwrap().height();
        let mut txs = BTreeSet::new();
        let mut cursor = Some(tip.clone());
        while let Some(block) = cursor.filter(|b| b.height() > last_final) {
            txs.extend(block.transactions().iter().cloned());
            cursor = inner.known.get(&block.parent()).cloned();
        }
        txs
    }
}

impl Ledger for TestLedger {
    type Error = Rejected;
    type Prepared = ();

    fn knows(&self, block: &BlockHash) -> bool {
        self.0.lock().known.contains_key(block)
    }

    fn has_pending_transactions(&self) -> bool {
        !self.0.lock().pool.is_empty()
    }

    fn applied_height(&self) -> Height {
        self.0.lock().finalized.last().unwrap().height()
    }

    async fn propose(&self, path: Path, proposal: Proposal) -> Option<Built> {
        let mut inner = self.0.lock();
        Self::execute_path(&mut inner, &path);
        let parent = path.last().unwrap();
        let applied = inner.finalized.last().unwrap().height().get();
        inner.max_unapplied = inner
            .max_unapplied
            .max(parent.height().get().saturating_sub(applied));
        let in_flight = Self::in_flight(&inner, parent);
        let txs: Vec<Bytes> = inner
            .pool
            .iter()
            .filter(|tx| !in_flight.contains(*tx))
            .take(5)
            .cloned()
            .collect();
        let header = Header {
            parent: parent.hash(),
            height: parent.height().next(),
            timestamp: proposal.timestamp,
            proposer: proposal.proposer,
            epoch: proposal.epoch,
            view: proposal.view,
            parent_view: proposal.parent_view,
            transactions_root: transactions_root(&txs),
            senders_root: trellis_types::senders_root([]),
            receipts_root: B256::ZERO,
            state_root: next_root(parent.header().state_root, &txs),
            logs_bloom: Bloom::ZERO,
            gas_used: 0,
            gas_limit: GAS_LIMIT,
        };
        let block = Block::new(header, txs).unwrap();
        inner.known.insert(block.hash(), block.clone());
        Some(Built::unclaimed(block))
    }

    async fn verify(&self, path: Path) -> Result<(), Rejected> {
        let mut inner = self.0.lock();
        let (block, ancestors) = path.split_last().unwrap();
        Self::execute_path(&mut inner, ancestors);
        let parent = ancestors.last().unwrap();
        if next_root(parent.header().state_root, block.transactions()) != block.header().state_root
        {
            return Err(Rejected("state root does not match the transactions"));
        }
        inner.known.insert(block.hash(), block.clone());
        Ok(())
    }

    async fn prepare(&self, _: &Block, _: &ClaimedSenders) {}

    async fn validators(&self, _: Epoch) -> Option<Vec<Member>> {
        let members = keys().into_iter().map(|key| Member {
            key: validator_id(&key.public_key()),
            p2p: None,
        });
        Some(members.collect())
    }

    async fn finalize(&self, block: Block, _: ()) {
        let slow = self.0.lock().slow_storage.clone();
        if let Some((clock, delay)) = slow {
            clock.sleep(delay).await;
        }
        let mut inner = self.0.lock();
        let last = inner.finalized.last().unwrap();
        if block.height() <= last.height() {
            // Redelivered: it must be the block we already hold.
            let held = &inner.finalized[block.height().get() as usize];
            assert_eq!(
                held.hash(),
                block.hash(),
                "two blocks finalized at one height"
            );
            return;
        }
        assert_eq!(
            block.height(),
            last.height().next(),
            "finalized heights skip"
        );
        assert_eq!(
            block.parent(),
            last.hash(),
            "finalized block does not extend the chain"
        );
        let included: BTreeSet<_> = block.transactions().iter().cloned().collect();
        inner.pool.retain(|tx| !included.contains(tx));
        inner.known.insert(block.hash(), block.clone());
        inner.finalized.push(block);
    }
}

async fn network(context: &deterministic::Context, online: &[usize]) -> SimOracle {
    let keys: Vec<PublicKey> = keys().iter().map(|k| k.public_key()).collect();
    simulation::network(context, &keys, online).await
}

async fn spawn_validator(
    context: &deterministic::Context,
    oracle: &SimOracle,
    index: usize,
    ledger: TestLedger,
) -> Handle<()> {
    let timing = simulation::timing();
    spawn_validator_with(context, oracle, index, ledger, timing, EpochLength::FOREVER).await
}

async fn spawn_validator_with(
    context: &deterministic::Context,
    oracle: &SimOracle,
    index: usize,
    ledger: TestLedger,
    timing: BlockTiming,
    epoch_length: EpochLength,
) -> Handle<()> {
    let signer = keys()[index].clone();
    let control = oracle.control(signer.public_key());
    let channels = simulation::channels(&control).await;
    let config = Config {
        signer: trellis_crypto::ValidatorSigner::memory(signer),
        epoch_length,
        namespace: b"TRELLIS-TEST".to_vec(),
        partition_prefix: format!("v{index}"),
        genesis: genesis(),
        limits: BlockLimits::default(),
        timeouts: Timeouts::default(),
        timing,
        ledger,
        fault_sink: None,
    };
    simulation::spawn(context, oracle, control, channels, config)
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(600))),
    )
}

fn transactions(range: std::ops::Range<u32>) -> Vec<Bytes> {
    range
        .map(|i| Bytes::from(format!("tx-{i:04}").into_bytes()))
        .collect()
}

/// One ledger per validator in `validators`, each with `txs` in its pool.
fn ledgers_holding(validators: &[usize], txs: &[Bytes]) -> Vec<TestLedger> {
    validators
        .iter()
        .map(|_| {
            let ledger = TestLedger::new();
            ledger.add_transactions(txs.to_vec());
            ledger
        })
        .collect()
}

async fn wait_for_height(context: &deterministic::Context, ledgers: &[TestLedger], height: usize) {
    while ledgers.iter().any(|l| l.finalized().len() <= height) {
        context.sleep(Duration::from_millis(100)).await;
    }
}

/// Every ledger holds the same blocks up to `height`, and the transactions in them are exactly
/// `expected`, each once.
fn assert_same_chain(ledgers: &[TestLedger], height: usize) -> Vec<Block> {
    let reference = ledgers[0].finalized()[..=height].to_vec();
    for (i, ledger) in ledgers.iter().enumerate() {
        let chain = ledger.finalized();
        for h in 0..=height {
            assert_eq!(
                chain[h].hash(),
                reference[h].hash(),
                "validator {i} differs at height {h}"
            );
        }
    }
    reference
}

fn assert_each_once(chain: &[Block], expected: &[Bytes]) {
    let included: Vec<&Bytes> = chain.iter().flat_map(|b| b.transactions()).collect();
    let unique: BTreeSet<&Bytes> = included.iter().copied().collect();
    assert_eq!(
        unique.len(),
        included.len(),
        "a transaction was finalized twice"
    );
    for tx in expected {
        assert!(unique.contains(tx), "transaction {tx} was never finalized");
    }
}

#[test]
fn four_validators_finalize_the_same_30_blocks_of_transactions() {
    runner(7).start(|context| async move {
        let all = [0, 1, 2, 3];
        let oracle = network(&context, &all).await;
        let txs = transactions(0..100);
        let ledgers = ledgers_holding(&all, &txs);
        for i in all {
            spawn_validator(&context, &oracle, i, ledgers[i].clone()).await;
        }
        wait_for_height(&context, &ledgers, 30).await;
        let chain = assert_same_chain(&ledgers, 30);
        // 5 per block: the first 20 blocks carry all 100.
        assert_each_once(&chain, &txs);
        for (i, block) in chain.iter().enumerate().skip(1) {
            assert_eq!(block.height(), Height(i as u64));
            assert!(
                block.header().view.get() >= i as u64,
                "views never lag heights"
            );
        }
    });
}

#[test]
fn the_chain_runs_through_epoch_boundaries_without_a_gap() {
    runner(11).start(|context| async move {
        let all = [0, 1, 2, 3];
        let oracle = network(&context, &all).await;
        let txs = transactions(0..100);
        let ledgers = ledgers_holding(&all, &txs);
        let length = EpochLength(std::num::NonZeroU64::new(8).unwrap());
        for i in all {
            let timing = simulation::timing();
            spawn_validator_with(&context, &oracle, i, ledgers[i].clone(), timing, length).await;
        }
        wait_for_height(&context, &ledgers, 40).await;
        let chain = assert_same_chain(&ledgers, 40);
        assert_each_once(&chain, &txs);
        for block in chain.iter().skip(1) {
            assert_eq!(
                block.header().epoch,
                length.epoch_of(block.height()),
                "block {} was proposed in the epoch its height is in",
                block.height()
            );
        }
        // Old epochs' journals are removed; the running epoch's is kept.
        let running = length.epoch_of(ledgers[0].applied_height()).0;
        let journal = |epoch: u64| format!("v0-simplex-{epoch}");
        let old = context.scan(&journal(1)).await.unwrap_or_default();
        assert!(old.is_empty(), "epoch 1's journal is still there: {old:?}");
        let current = context.scan(&journal(running)).await.unwrap_or_default();
        assert!(!current.is_empty(), "epoch {running} has no journal");
    });
}

#[test]
fn three_of_four_still_finalize() {
    runner(8).start(|context| async move {
        let online = [0, 1, 2];
        let oracle = network(&context, &online).await;
        let txs = transactions(0..40);
        let ledgers = ledgers_holding(&online, &txs);
        for i in online {
            spawn_validator(&context, &oracle, i, ledgers[i].clone()).await;
        }
        wait_for_height(&context, &ledgers, 30).await;
        let chain = assert_same_chain(&ledgers, 30);
        assert_each_once(&chain, &txs);
        // The absent validator never proposed a finalized block.
        let absent = validator_id(&keys()[3].public_key());
        assert!(chain.iter().skip(1).all(|b| b.header().proposer != absent));
    });
}

#[test]
fn an_idle_chain_proposes_empty_blocks_at_the_configured_interval() {
    runner(9).start(|context| async move {
        let all = [0, 1, 2, 3];
        let oracle = network(&context, &all).await;
        let ledgers: Vec<TestLedger> = all.iter().map(|_| TestLedger::new()).collect();
        for i in all {
            spawn_validator(&context, &oracle, i, ledgers[i].clone()).await;
        }
        wait_for_height(&context, &ledgers, 10).await;
        let chain = assert_same_chain(&ledgers, 10);
        for pair in chain[1..].windows(2) {
            let gap = pair[1].header().timestamp.millis() - pair[0].header().timestamp.millis();
            assert!(
                gap >= 500,
                "empty blocks {gap} ms apart, interval is 500 ms"
            );
        }
    });
}

#[test]
fn leaders_with_transactions_wait_the_minimum_block_interval() {
    runner(10).start(|context| async move {
        let all = [0, 1, 2, 3];
        let oracle = network(&context, &all).await;
        let txs = transactions(0..100);
        let ledgers = ledgers_holding(&all, &txs);
        // Well above a round on this network (20 ms links), so without the rule blocks would
        // follow each other faster.
        let mut timing = simulation::timing();
        timing.min_block_interval = Duration::from_millis(150);
        for i in all {
            let length = EpochLength::FOREVER;
            spawn_validator_with(&context, &oracle, i, ledgers[i].clone(), timing, length).await;
        }
        wait_for_height(&context, &ledgers, 12).await;
        let chain = assert_same_chain(&ledgers, 12);
        for pair in chain[1..].windows(2) {
            assert!(!pair[1].transactions().is_empty(), "the pool never ran dry");
            let gap = pair[1].header().timestamp.millis() - pair[0].header().timestamp.millis();
            assert!(gap >= 150, "blocks {gap} ms apart, the minimum is 150 ms");
        }
    });
}

#[test]
fn leaders_wait_for_slow_storage_instead_of_running_ahead() {
    runner(10).start(|context| async move {
        let all = [0, 1, 2, 3];
        let oracle = network(&context, &all).await;
        // Storage takes 120 ms a block, slower than consensus (20 ms links), and well within
        // the 250 ms a leader waits for it.
        let ledgers: Vec<TestLedger> = all
            .iter()
            .map(|_| TestLedger::with_slow_storage(&context, Duration::from_millis(120)))
            .collect();
        let txs = transactions(0..200);
        for ledger in &ledgers {
            ledger.add_transactions(txs.clone());
        }
        for i in all {
            spawn_validator(&context, &oracle, i, ledgers[i].clone()).await;
        }
        wait_for_height(&context, &ledgers, 20).await;
        assert_same_chain(&ledgers, 20);
        let limit = simulation::timing().max_unapplied;
        for (i, ledger) in ledgers.iter().enumerate() {
            let deepest = ledger.0.lock().max_unapplied;
            assert!(
                deepest <= limit,
                "validator {i} built on a parent {deepest} blocks above its durable tip (limit {limit})"
            );
        }
    });
}
