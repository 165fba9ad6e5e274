//! A benchmark of log queries as `eth_getLogs` runs them: a block store on disk holding a long
//! chain of blocks with token transfers, queried by emitting contract and recipient topic over
//! the whole range through the log index.
//!
//! The workload: `contracts` token contracts; each block holds `logs_per_block` transactions,
//! each emitting one `Transfer(from, to, value)` from a contract chosen at random (seeded), to
//! one of `recipients` addresses. A query asks for one contract's transfers to one recipient:
//! on average `blocks × logs_per_block / (contracts × recipients)` logs.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom};
use alloy_primitives::{Address, B256, Bytes, Log, LogData, TxHash, U256, keccak256};
use std::time::{Duration, Instant};
use trellis_chain::{
    BlockStore, LogQuery, LogsError, ReceiptRecord, Runtime, StoreError, StoredBlock,
};
use trellis_types::{Block, BlockHash, BlockLimits, Header, Height, transactions_root};

/// What to measure.
#[derive(Clone, Debug)]
pub struct LogBenchConfig {
    pub blocks: u64,
    pub logs_per_block: usize,
    pub contracts: u64,
    pub recipients: u64,
    pub queries: usize,
}

impl Default for LogBenchConfig {
    fn default() -> Self {
        Self {
            blocks: 100_000,
            logs_per_block: 20,
            contracts: 100,
            recipients: 1_000,
            queries: 100,
        }
    }
}

/// What was measured.
#[derive(Clone, Debug)]
pub struct LogBenchReport {
    /// Writing the blocks (and the log index) to the store.
    pub load: Duration,
    /// Each query over the whole chain: index lookup, candidate blocks read, logs matched.
    pub queries: Vec<Duration>,
    /// Logs all queries returned.
    pub logs_found: usize,
    /// Blocks the index named as candidates, over all queries.
    pub candidates: usize,
    /// Reopening the store (rebuilding the log index's open section from the blocks).
    pub reopen: Duration,
}

impl LogBenchReport {
    /// The query duration at quantile `q` (0 to 1).
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.queries.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum LogBenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Logs(#[from] LogsError),
    #[error("query {query} found {found} logs, but {expected} were written")]
    Wrong {
        query: usize,
        found: usize,
        expected: usize,
    },
}

/// `keccak256("Transfer(address,address,uint256)")`.
pub fn transfer_topic() -> B256 {
    keccak256("Transfer(address,address,uint256)")
}

/// The `i`th token contract of the workload.
pub fn contract(i: u64) -> Address {
    Address::left_padding_from(&(0xc0_0000 + i).to_be_bytes())
}

/// The `i`th recipient, as its indexed topic.
pub fn recipient_topic(i: u64) -> B256 {
    B256::left_padding_from(&(0xa0_0000 + i).to_be_bytes())
}

/// A transfer log of `contract` to `recipient`.
pub fn transfer_log(contract: Address, recipient: B256, value: u64) -> Log {
    Log {
        address: contract,
        data: LogData::new_unchecked(
            vec![transfer_topic(), B256::ZERO, recipient],
            Bytes::from(U256::from(value).to_be_bytes::<32>().to_vec()),
        ),
    }
}

/// A stored block at `height` on `parent` with one transaction per log in `logs` (the
/// transactions are placeholders: only the receipts matter to the log index).
pub fn synthetic_block(height: Height, parent: BlockHash, logs: Vec<Log>) -> StoredBlock {
    let transactions: Vec<Bytes> = (0..logs.len())
        .map(|i| Bytes::from([height.get().to_be_bytes(), (i as u64).to_be_bytes()].concat()))
        .collect();
    let header = Header {
        parent,
        height,
        transactions_root: transactions_root(&transactions),
        gas_limit: 30_000_000,
        ..Header::default()
    };
    let receipts = logs
        .into_iter()
        .zip(&transactions)
        .map(|(log, raw)| {
            let receipt = Receipt {
                status: Eip658Value::Eip658(true),
                cumulative_gas_used: 0,
                logs: vec![log],
            };
            let bloom = receipt.bloom_slow();
            ReceiptRecord {
                tx_hash: TxHash::from(keccak256(raw)),
                from: Address::ZERO,
                to: None,
                contract_address: None,
                gas_used: 0,
                effective_gas_price: 0,
                envelope: ReceiptEnvelope::Eip1559(ReceiptWithBloom::new(receipt, bloom)),
            }
        })
        .collect();
    let block = Block::new(header, transactions).expect("the transactions root is computed");
    StoredBlock { block, receipts }
}

/// A small deterministic generator (SplitMix64), so runs compare.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}

/// Runs the benchmark on `context`'s storage; `progress` gets a line now and then.
pub async fn run<E: Runtime>(
    context: E,
    config: &LogBenchConfig,
    progress: impl Fn(String),
) -> Result<LogBenchReport, LogBenchError> {
    let limits = BlockLimits::default();
    let store = BlockStore::open(context.child("store"), "bench", limits).await?;
    let mut random = Seeded(7);
    // Which (contract, recipient) pair each log has, to check every query's answer.
    let mut written = std::collections::HashMap::<(u64, u64), usize>::new();
    let started = Instant::now();
    let mut parent = BlockHash::default();
    let mut batch = Vec::new();
    for height in 0..config.blocks {
        let logs = (0..config.logs_per_block)
            .map(|i| {
                let (c, r) = (
                    random.below(config.contracts),
                    random.below(config.recipients),
                );
                *written.entry((c, r)).or_default() += 1;
                transfer_log(contract(c), recipient_topic(r), i as u64)
            })
            .collect();
        let stored = synthetic_block(Height(height), parent, logs);
        parent = stored.block.hash();
        batch.push(stored);
        if batch.len() == 1_000 || height + 1 == config.blocks {
            store.put_many(&batch).await?;
            batch.clear();
            progress(format!("{} blocks stored", height + 1));
        }
    }
    let load = started.elapsed();
    let last = Height(config.blocks - 1);
    let mut queries = Vec::new();
    let (mut logs_found, mut candidates) = (0, 0);
    for query in 0..config.queries {
        let (c, r) = (
            random.below(config.contracts),
            random.below(config.recipients),
        );
        let filter = LogQuery {
            addresses: vec![contract(c)],
            topics: vec![vec![transfer_topic()], vec![], vec![recipient_topic(r)]],
        };
        let started = Instant::now();
        let found = store.logs(&filter, Height(0), last, usize::MAX).await?;
        queries.push(started.elapsed());
        let expected = written.get(&(c, r)).copied().unwrap_or(0);
        if found.len() != expected {
            return Err(LogBenchError::Wrong {
                query,
                found: found.len(),
                expected,
            });
        }
        logs_found += found.len();
        candidates += store.log_candidates(&filter, Height(0), last).await?.len();
    }
    store.close().await?;
    let started = Instant::now();
    let _reopened = BlockStore::open(context.child("reopened"), "bench", limits).await?;
    let reopen = started.elapsed();
    Ok(LogBenchReport {
        load,
        queries,
        logs_found,
        candidates,
        reopen,
    })
}
