//! `trellis bench limit`: the work a validator cannot avoid per transaction, measured on one
//! core, and the throughput it allows on this machine.
//!
//! Blocks of pre-signed transactions (the same workloads as `bench load`) go through the
//! node's own code, phase by phase: EIP-2718 decoding, the transaction hash, sender recovery,
//! EVM execution against the state, the state update (QMDB staging and the durable commit, on
//! disk) and the block's hashing (transactions and receipts roots, bloom, header). Each phase
//! is timed in the process's CPU time (every thread, so storage work the runtime hands off is
//! counted). Everything else a node does (consensus, networking, JSON-RPC, scheduling) is
//! overhead above this floor; `bench load` reports how close a run came to it.

use crate::workload::{self, ChainParams, Plan, Workload, WorkloadError};
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718 as _;
use alloy_primitives::{Address, Bytes, U256, keccak256};
use commonware_runtime::{Runner as _, tokio};
use serde::Serialize;
use std::{collections::BTreeMap, fmt, hint::black_box, path::Path, time::Duration};
use trellis_crypto::AccountKey;
use trellis_execution::{BlockContext, BlockOutcome, ExecutionConfig, ExecutionError, Executor};
use trellis_state::{Account, ChangeSet, QmdbConfig, QmdbStore, Runtime, StateError, StateStore};
use trellis_types::{Block, BlockHash, Epoch, Height, Timestamp, ValidatorId, View, transaction};

/// The chain id of the measurement's own chain (it never leaves the process).
const CHAIN_ID: u64 = 1_337;

/// What to measure.
#[derive(Clone, Debug)]
pub struct LimitConfig {
    pub workload: Workload,
    /// Senders, each sending in turn to the next.
    pub senders: usize,
    /// Transactions per measured block.
    pub block_transactions: usize,
    /// Measured blocks (after one warm-up block that is not counted).
    pub blocks: usize,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            workload: Workload::Erc20,
            senders: 200,
            block_transactions: 1_000,
            blocks: 10,
        }
    }
}

/// CPU time per transaction of each necessary phase, in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Costs {
    pub decode_us: f64,
    pub hash_us: f64,
    pub recovery_us: f64,
    pub evm_us: f64,
    pub state_us: f64,
    pub block_hashing_us: f64,
}

impl Costs {
    /// `f` applied field by field to `self` and `other`.
    fn zip(self, other: Costs, f: impl Fn(f64, f64) -> f64) -> Costs {
        Costs {
            decode_us: f(self.decode_us, other.decode_us),
            hash_us: f(self.hash_us, other.hash_us),
            recovery_us: f(self.recovery_us, other.recovery_us),
            evm_us: f(self.evm_us, other.evm_us),
            state_us: f(self.state_us, other.state_us),
            block_hashing_us: f(self.block_hashing_us, other.block_hashing_us),
        }
    }

    pub fn total_us(&self) -> f64 {
        self.decode_us
            + self.hash_us
            + self.recovery_us
            + self.evm_us
            + self.state_us
            + self.block_hashing_us
    }
}

/// What was measured, and the ceiling it implies.
#[derive(Clone, Debug, Serialize)]
pub struct Limit {
    pub workload: Workload,
    pub block_transactions: usize,
    pub blocks: usize,
    pub costs: Costs,
    /// This machine's cores (what the ceiling divides among validators).
    pub cores: usize,
}

impl Limit {
    /// The most transactions per second `validators` validators sharing this machine's cores
    /// could finalize if they did nothing but the necessary work (each does all of it).
    pub fn ceiling_tps(&self, validators: usize) -> f64 {
        let per_tx = self.costs.total_us() * validators.max(1) as f64;
        self.cores as f64 * 1e6 / per_tx
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.costs;
        writeln!(
            f,
            "necessary work per {:?} transaction (process CPU time; {} blocks of {}, QMDB on disk):",
            self.workload, self.blocks, self.block_transactions
        )?;
        for (name, us) in [
            ("EIP-2718 decode", c.decode_us),
            ("transaction hash", c.hash_us),
            ("sender recovery", c.recovery_us),
            ("EVM execution", c.evm_us),
            ("state update (stage + durable commit)", c.state_us),
            ("block hashing (roots, bloom, header)", c.block_hashing_us),
        ] {
            writeln!(f, "  {name:<40} {us:>8.2} µs")?;
        }
        writeln!(f, "  {:<40} {:>8.2} µs", "total", c.total_us())?;
        write!(
            f,
            "ceiling on {} core(s): 1 validator {:.0} TPS, 4 validators {:.0} TPS",
            self.cores,
            self.ceiling_tps(1),
            self.ceiling_tps(4)
        )
    }
}

/// Why the measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{0} already exists: the measurement needs a fresh directory it may delete")]
    DirExists(String),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error("execution: {0}")]
    Execution(#[from] ExecutionError),
    #[error("a signed transaction does not decode: {0}")]
    Transaction(String),
    #[error("block {height}: {count} transactions did not run (the first: {first})")]
    Skipped {
        height: Height,
        count: usize,
        first: String,
    },
    #[error("block {height}: {count} transactions reverted")]
    Reverted { height: Height, count: usize },
    #[error("the measurement needs at least 2 senders and 1 transaction per block")]
    TooSmall,
}

/// Measures in `dir` (created, and removed afterwards) on one runtime worker thread.
pub fn measure(dir: &Path, config: &LimitConfig) -> Result<Limit, LimitError> {
    if config.senders < 2 || config.block_transactions == 0 {
        return Err(LimitError::TooSmall);
    }
    if dir.exists() {
        return Err(LimitError::DirExists(dir.display().to_string()));
    }
    let runtime = tokio::Config::new()
        .with_worker_threads(1)
        .with_storage_directory(dir);
    let config = config.clone();
    let result = tokio::Runner::new(runtime).start(|context| measure_in(context, config));
    let _ = std::fs::remove_dir_all(dir);
    result
}

async fn measure_in<E: Runtime>(context: E, config: LimitConfig) -> Result<Limit, LimitError> {
    let keys: Vec<AccountKey> = (1..=config.senders as u64)
        .map(AccountKey::from_seed)
        .collect();
    let mut chain = BenchChain::open(context, &keys, &config).await?;
    let params = ChainParams {
        chain_id: CHAIN_ID,
        gas_price: 0,
    };
    let mut nonces = vec![0u64; keys.len()];
    let token = match config.workload {
        Workload::Transfer => None,
        Workload::Erc20 => Some(chain.deploy_token(&keys, &mut nonces, params).await?),
    };
    let rounds = config.block_transactions.div_ceil(keys.len());
    let mut total = Costs::default();
    for block in 0..=config.blocks {
        let plan = Plan {
            keys: &keys,
            nonces: &nonces,
            token,
            params,
        };
        let raws: Vec<Bytes> = (0..rounds)
            .flat_map(|round| (0..keys.len()).map(move |s| (s, round)))
            .take(config.block_transactions)
            .map(|(s, round)| plan.transaction(s, round).raw)
            .collect();
        // Transaction i is sender i % n's: each sent one per whole round, the first few one more.
        let n = keys.len();
        for (s, nonce) in nonces.iter_mut().enumerate() {
            *nonce += (raws.len() / n + usize::from(s < raws.len() % n)) as u64;
        }
        let costs = chain.measured_block(&raws).await?;
        // The first block warms the caches (code, accounts, the page cache) and is not counted.
        if block > 0 {
            total = total.zip(costs, |a, b| a + b);
        }
    }
    Ok(Limit {
        workload: config.workload,
        block_transactions: config.block_transactions,
        blocks: config.blocks,
        // Each block's costs are per transaction already: their mean is over blocks.
        costs: total.zip(total, |a, _| a / config.blocks as f64),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// A chain of one node's state on disk and its executor, without consensus.
struct BenchChain<E: Runtime> {
    state: QmdbStore<E>,
    executor: Executor,
    parent: BlockHash,
    ancestors: BTreeMap<Height, BlockHash>,
}

impl<E: Runtime> BenchChain<E> {
    /// The genesis: every sender funded.
    async fn open(
        context: E,
        keys: &[AccountKey],
        config: &LimitConfig,
    ) -> Result<Self, LimitError> {
        let mut state = QmdbStore::open(context, &QmdbConfig::new("limit")).await?;
        let mut genesis = ChangeSet::new();
        for key in keys {
            genesis.set_account(key.address(), Account::with_balance(U256::MAX >> 8));
        }
        let staged = state.stage(None, Height::GENESIS, &genesis)?;
        let root = state.commit(&staged).await?;
        let parent = BlockHash(keccak256(root.0));
        let mut execution = ExecutionConfig::new(CHAIN_ID);
        // Room for the block whatever its size: the gas limit is not what is measured.
        execution.block_gas_limit = execution
            .block_gas_limit
            .max(config.block_transactions as u64 * 100_000);
        Ok(Self {
            state,
            executor: Executor::new(execution),
            parent,
            ancestors: BTreeMap::from([(Height::GENESIS, parent)]),
        })
    }

    /// Deploys the token and shares it out (two unmeasured blocks); returns its address.
    async fn deploy_token(
        &mut self,
        keys: &[AccountKey],
        nonces: &mut [u64],
        params: ChainParams,
    ) -> Result<Address, LimitError> {
        let supply = workload::TOKENS_PER_SENDER * U256::from(keys.len());
        let deploy = workload::deploy(&keys[0], params, nonces[0], supply)?;
        nonces[0] += 1;
        let token = keys[0].address().create(0);
        self.measured_block(&[deploy.raw]).await?;
        let shares: Vec<Bytes> = keys[1..]
            .iter()
            .map(|key| {
                let share = workload::share(&keys[0], params, nonces[0], token, key.address());
                nonces[0] += 1;
                share.raw
            })
            .collect();
        self.measured_block(&shares).await?;
        Ok(token)
    }

    fn context(&self) -> BlockContext {
        let height = self.state.next_height();
        BlockContext {
            height,
            parent: self.parent,
            timestamp: Timestamp(1_750_000_000_000 + height.get() * 500),
            proposer: ValidatorId([7; 32]),
            epoch: Epoch(0),
            view: View(height.get()),
            parent_view: View(height.get() - 1),
            ancestors: self.ancestors.clone(),
        }
    }

    /// Runs one block through every phase, timing each; every transaction must succeed.
    async fn measured_block(&mut self, raws: &[Bytes]) -> Result<Costs, LimitError> {
        let context = self.context();
        let decode = cpu_of(|| {
            for raw in raws {
                black_box(TxEnvelope::decode_2718_exact(raw).ok());
            }
        });
        let hash = cpu_of(|| {
            for raw in raws {
                black_box(keccak256(raw));
            }
        });
        let started = process_cpu();
        let recovered = raws
            .iter()
            .map(|raw| transaction::decode(raw.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LimitError::Transaction(e.to_string()))?;
        let full_decode = process_cpu().saturating_sub(started);
        let started = process_cpu();
        let outcome = self
            .executor
            .execute_recovered(&context, &self.state, &recovered)?;
        let evm = process_cpu().saturating_sub(started);
        check_all_ran(&context, &outcome)?;
        let started = process_cpu();
        let staged = self.state.stage(None, context.height, &outcome.changes)?;
        let root = self.state.commit(&staged).await?;
        let state = process_cpu().saturating_sub(started);
        let started = process_cpu();
        let header = outcome.header(&context, root);
        let block = Block::new(header, raws.to_vec())
            .expect("the header commits to the block's transactions");
        let block_hash = block.hash();
        let block_hashing = process_cpu().saturating_sub(started);
        self.parent = block_hash;
        self.ancestors.insert(context.height, block_hash);
        let n = raws.len() as f64;
        let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
        Ok(Costs {
            decode_us: us(decode),
            hash_us: us(hash),
            // Decoding with recovery also decodes and hashes: recovery is what is left.
            recovery_us: us(full_decode.saturating_sub(decode + hash)),
            evm_us: us(evm),
            state_us: us(state),
            block_hashing_us: us(block_hashing),
        })
    }
}

fn check_all_ran(context: &BlockContext, outcome: &BlockOutcome) -> Result<(), LimitError> {
    if let Some(skipped) = outcome.skipped.first() {
        return Err(LimitError::Skipped {
            height: context.height,
            count: outcome.skipped.len(),
            first: format!("{:?}", skipped.reason),
        });
    }
    let reverted = outcome.receipts.iter().filter(|r| !r.success()).count();
    if reverted > 0 {
        return Err(LimitError::Reverted {
            height: context.height,
            count: reverted,
        });
    }
    Ok(())
}

/// The CPU time every thread of this process has used so far.
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn cpu_of(work: impl FnOnce()) -> Duration {
    let started = process_cpu();
    work();
    process_cpu().saturating_sub(started)
}
