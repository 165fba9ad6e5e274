//! A benchmark of the state layer as nodes use it: blocks of storage updates staged and
//! committed through [`QmdbStore`], over a large population of accounts.
//!
//! The workload is a token contract: `accounts` holders, each an account with a balance and
//! a storage slot in the contract (2 × `accounts` entries). Each measured block updates the
//! slots of `updates_per_block` distinct holders chosen at random (seeded, so runs compare).

use alloy_primitives::{Address, B256, U256};
use std::time::{Duration, Instant};
use trellis_state::{
    Account, ChangeSet, ProofError, QmdbConfig, QmdbStore, Runtime, StateError, StateStore,
};

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum StateBenchError {
    #[error("the benchmark needs an empty storage directory")]
    NotEmpty,
    #[error(transparent)]
    State(#[from] StateError),
    #[error("a fresh proof fails: {0}")]
    Proof(ProofError),
    #[error("a fresh history fails: {0}")]
    History(ProofError),
    #[error("the task committing blocks stopped")]
    Stopped,
    #[error("cannot read the directory's blobs")]
    Census(#[source] std::io::Error),
    #[error("{left} blob(s) are still under the old data key after the re-encryption pass")]
    NotMoved { left: usize },
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub accounts: u64,
    pub updates_per_block: usize,
    pub blocks: usize,
    pub page_cache_bytes: usize,
    /// How many holders' slots to prove (and verify) after the blocks.
    pub proofs: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            accounts: 1_000_000,
            updates_per_block: 10_000,
            blocks: 20,
            page_cache_bytes: 512 << 20,
            proofs: 1_000,
        }
    }
}

/// What was measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Writing the initial state (accounts and their slots), in blocks of 100,000 entries.
    pub populate: Duration,
    /// Each measured block: staging (writes, merkleization) plus the durable commit.
    pub blocks: Vec<Duration>,
    /// CPU time the whole process used while the measured blocks were staged, applied and
    /// synced (every thread, user and system; building each block's change set, the workload's
    /// part, is left out), where the platform reports it: the work the blocks cost, wherever
    /// the runtime ran it.
    pub blocks_cpu: Option<Duration>,
    pub updates_per_block: usize,
    /// Generating proofs of `proofs` slots (each with its account's proof).
    pub proving: Duration,
    /// Verifying them.
    pub verifying: Duration,
    pub proofs: usize,
    /// Reading the histories of the same slots (each write with its three proofs).
    pub history_reading: Duration,
    /// Verifying them.
    pub history_verifying: Duration,
    /// Writes listed over all those histories.
    pub history_entries: usize,
    /// Reopening the store afterwards (a node's restart): rebuilding QMDB's index from its log.
    pub reopen: Duration,
}

impl BenchReport {
    /// Committed slot updates per second over all measured blocks.
    pub fn updates_per_second(&self) -> f64 {
        let total: Duration = self.blocks.iter().sum();
        (self.blocks.len() * self.updates_per_block) as f64 / total.as_secs_f64()
    }

    /// Committed slot updates per second of the process's CPU time, where it was measured.
    pub fn updates_per_cpu_second(&self) -> Option<f64> {
        let cpu = self.blocks_cpu?;
        Some((self.blocks.len() * self.updates_per_block) as f64 / cpu.as_secs_f64())
    }

    /// The median block's duration.
    pub fn median_block(&self) -> Duration {
        let mut sorted = self.blocks.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }
}

/// The token contract every holder has a slot in.
pub fn token() -> Address {
    Address::repeat_byte(0x70)
}

/// Holder `i`'s address.
pub fn holder(i: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0x01;
    bytes[12..].copy_from_slice(&i.to_be_bytes());
    Address::from(bytes)
}

/// A seeded generator (splitmix64): the same holders are updated on every run.
pub struct Random(pub u64);

impl Random {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn token_account() -> Account {
    Account {
        nonce: 1,
        balance: U256::ZERO,
        code_hash: B256::repeat_byte(0x7c),
    }
}

pub async fn commit<E: Runtime>(
    store: &mut QmdbStore<E>,
    changes: &ChangeSet,
) -> Result<(), StateError> {
    let staged = store.stage(None, store.next_height(), changes)?;
    store.commit(&staged).await?;
    Ok(())
}

/// Fills a fresh `store` with `accounts` holders, each with a balance and a slot in the token.
pub async fn populate<E: Runtime>(
    store: &mut QmdbStore<E>,
    accounts: u64,
    progress: &mut impl FnMut(&str),
) -> Result<(), StateError> {
    let chunk = 50_000;
    let mut first = 0;
    while first < accounts {
        let last = (first + chunk).min(accounts);
        let mut changes = ChangeSet::new();
        changes.set_account(token(), token_account());
        for i in first..last {
            changes.set_account(holder(i), Account::with_balance(U256::from(1_000 + i)));
            changes.set_storage(token(), U256::from(i), U256::from(i + 1));
        }
        commit(store, &changes).await?;
        first = last;
        progress(&format!("populated {last} accounts"));
    }
    Ok(())
}

/// A block's changes: `count` random holders' slots set to random values.
pub fn updates(random: &mut Random, accounts: u64, count: usize) -> ChangeSet {
    let mut changes = ChangeSet::new();
    changes.set_account(token(), token_account());
    while changes
        .account(&token())
        .map_or(0, |change| change.storage.len())
        < count
    {
        let i = random.next_u64() % accounts;
        changes.set_storage(token(), U256::from(i), U256::from(random.next_u64()));
    }
    changes
}

/// Runs the benchmark on a fresh store in `context`'s storage; `progress` hears each phase.
pub async fn run<E: Runtime>(
    context: E,
    config: &BenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, StateBenchError> {
    let mut state_config = QmdbConfig::new("bench");
    state_config.page_cache_bytes = config.page_cache_bytes;
    let mut store = QmdbStore::open(context.child("state"), &state_config).await?;
    if store.committed().is_some() {
        return Err(StateBenchError::NotEmpty);
    }

    let start = Instant::now();
    populate(&mut store, config.accounts, &mut progress).await?;
    let populate = start.elapsed();

    let mut random = Random(42);
    let mut blocks = Vec::with_capacity(config.blocks);
    let mut blocks_cpu = Some(Duration::ZERO);
    for block in 0..config.blocks {
        let changes = updates(&mut random, config.accounts, config.updates_per_block);
        let cpu_before = process_cpu();
        let start = Instant::now();
        let staged = store.stage(None, store.next_height(), &changes)?;
        let staged_at = start.elapsed();
        store.apply(&staged).await?;
        let applied_at = start.elapsed();
        store.sync().await?;
        blocks.push(start.elapsed());
        let cpu = process_cpu()
            .zip(cpu_before)
            .map(|(a, b)| a.saturating_sub(b));
        blocks_cpu = blocks_cpu.zip(cpu).map(|(sum, cpu)| sum + cpu);
        progress(&format!(
            "block {}: staged (writes, merkleize) {staged_at:?}, applied {:?}, synced {:?}",
            block + 1,
            applied_at - staged_at,
            blocks[block] - applied_at
        ));
    }
    let root = store.committed().expect("committed above").1;
    let holders: Vec<U256> = (0..config.proofs)
        .map(|_| U256::from(random.next_u64() % config.accounts))
        .collect();
    let start = Instant::now();
    let mut proofs = Vec::with_capacity(holders.len());
    for slot in &holders {
        proofs.push(store.prove(&token(), std::slice::from_ref(slot)).await?);
    }
    let proving = start.elapsed();
    let start = Instant::now();
    for proof in &proofs {
        proof.verify(&root).map_err(StateBenchError::Proof)?;
    }
    let verifying = start.elapsed();
    progress(&format!("proved and verified {} slots", proofs.len()));
    let start = Instant::now();
    let mut histories = Vec::with_capacity(holders.len());
    for slot in &holders {
        histories.push(store.history(&token(), Some(*slot), 100).await?);
    }
    let history_reading = start.elapsed();
    let start = Instant::now();
    for history in &histories {
        history.verify(&root).map_err(StateBenchError::History)?;
    }
    let history_verifying = start.elapsed();
    let history_entries = histories.iter().map(|h| h.entries.len()).sum();
    progress(&format!(
        "read and verified {} slot histories",
        histories.len()
    ));
    drop(store);
    let start = Instant::now();
    let reopened = QmdbStore::open(context.child("reopened"), &state_config).await?;
    let reopen = start.elapsed();
    assert_eq!(
        reopened.committed().map(|c| c.1),
        Some(root),
        "reopened at the same root"
    );
    Ok(BenchReport {
        populate,
        blocks,
        blocks_cpu,
        updates_per_block: config.updates_per_block,
        proving,
        verifying,
        proofs: proofs.len(),
        history_reading,
        history_verifying,
        history_entries,
        reopen,
    })
}

/// The CPU time this process has used so far, all threads (`CLOCK_PROCESS_CPUTIME_ID`, ns
/// resolution). `None` where the platform has no such clock.
pub fn process_cpu() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(seconds, nanos))
}
