//! Raw QMDB (`current`, unordered keys) with fixed-size values against variable-size values, on
//! the state benchmark's workload: 2,000,000 keys, then blocks of 10,000 updates at random keys,
//! each written, merkleized, applied and committed durably, with Trellis's floor policy.
//!
//! Trellis stores variable-size values (contract code is one); this measures what a layout in
//! which every value has one size (code kept elsewhere) would gain, and what QMDB's staged path
//! (read every key, then write through its read slot: what Trellis does) gains over plain writes.
//! Run it on a release build: `cargo bench -p trellis-bench --bench qmdb_layouts [-- KEYS]
//! [LAYOUT...]`, where a layout word picks the layouts whose names contain it (`staged`, `fixed`).

use alloy_primitives::U256;
use commonware_cryptography::{Hasher, Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::{
    BLOB_PAGE_SIZE, Runner as _,
    buffer::paged::{CacheRef, page_size},
    tokio,
};
use commonware_storage::{
    journal::contiguous::{fixed::Config as FixedJournal, variable::Config as VariableJournal},
    merkle::full::Config as MerkleConfig,
    mmr,
    qmdb::{
        any::batch::Slot,
        current::{self, FixedConfig, VariableConfig},
    },
    translator::EightCap,
};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    time::{Duration, Instant},
};
use trellis_bench::state::{Random, process_cpu};
use trellis_state::{QuarterFloor, entry::StateValue};
use trellis_types::Height;

/// Keys by default; a number among the arguments replaces it (`cargo bench … -- 1000000`).
const KEYS: u64 = 2_000_000;
const UPDATES: u64 = 10_000;
const BLOCKS: usize = 40;
const CACHE_BYTES: usize = 512 << 20;

type Fixed<E> =
    current::unordered::fixed::Db<mmr::Family, E, Digest, Digest, Sha256, EightCap, 32, Sequential>;
/// Values the size of an account entry (tag, nonce, balance, code hash, storage generation).
type Wide<E> = current::unordered::fixed::Db<
    mmr::Family,
    E,
    Digest,
    [u8; WIDE],
    Sha256,
    EightCap,
    32,
    Sequential,
>;
const WIDE: usize = 81;
type Variable<E> = current::unordered::variable::Db<
    mmr::Family,
    E,
    Digest,
    StateValue,
    Sha256,
    EightCap,
    32,
    Sequential,
>;

/// A slot's value as the variable layout stored it when slots shared the accounts table (a tag
/// and the 32-byte word); code of 32 bytes encodes to nearly the same size (34 bytes).
fn slot_value(i: u64) -> StateValue {
    StateValue::Code(U256::from(i).to_be_bytes_vec().into())
}

fn key(i: u64) -> Digest {
    Sha256::hash(&[&i.to_be_bytes()])
}

fn merkle(prefix: &str, cache: &CacheRef) -> MerkleConfig<Sequential> {
    let buffer = buffer();
    MerkleConfig {
        journal_partition: format!("{prefix}-merkle"),
        metadata_partition: format!("{prefix}-merkle-meta"),
        items_per_blob: NonZeroU64::new(65_536).unwrap(),
        write_buffer: buffer,
        replay_buffer: buffer,
        strategy: Sequential,
        page_cache: cache.clone(),
    }
}

fn cache() -> CacheRef {
    let pages = CACHE_BYTES / BLOB_PAGE_SIZE as usize;
    CacheRef::new(page_size(BLOB_PAGE_SIZE), NonZeroUsize::new(pages).unwrap())
}

/// A database named `name` over `cache`, whose log is configured by `journal`.
fn config<J>(name: &str, cache: &CacheRef, journal: J) -> current::Config<EightCap, J, Sequential> {
    current::Config {
        merkle_config: merkle(name, cache),
        journal_config: journal,
        grafted_metadata_partition: format!("{name}-grafted"),
        translator: EightCap,
        init_cache: NonZeroUsize::new(1 << 16),
        init_buffer: buffer(),
        init_concurrency: (),
    }
}

fn buffer() -> NonZeroUsize {
    NonZeroUsize::new(1 << 20).unwrap()
}

fn fixed_config(cache: CacheRef) -> FixedConfig<EightCap, Sequential> {
    let journal = FixedJournal {
        partition: "fixed-log".into(),
        items_per_blob: NonZeroU64::new(65_536).unwrap(),
        page_cache: cache.clone(),
        write_buffer: buffer(),
        replay_buffer: buffer(),
    };
    config("fixed", &cache, journal)
}

fn variable_config(cache: CacheRef) -> VariableConfig<EightCap, ((), ()), Sequential> {
    let journal = VariableJournal {
        partition: "variable-log".into(),
        items_per_section: NonZeroU64::new(65_536).unwrap(),
        compression: None,
        codec_config: ((), ()),
        page_cache: cache.clone(),
        write_buffer: buffer(),
        replay_buffer: buffer(),
    };
    config("variable", &cache, journal)
}

/// Each measured block's wall time, and the process's CPU time over them.
struct Measured {
    blocks: Vec<Duration>,
    cpu: Option<Duration>,
}

impl Measured {
    fn print(&self, layout: &str) {
        let total: Duration = self.blocks.iter().sum();
        let updates = (self.blocks.len() as u64 * UPDATES) as f64;
        let mut sorted = self.blocks.clone();
        sorted.sort();
        print!(
            "{layout}: {:.0} committed updates per second, median block {:.1} ms",
            updates / total.as_secs_f64(),
            sorted[sorted.len() / 2].as_secs_f64() * 1e3
        );
        match self.cpu {
            Some(cpu) => println!(
                ", {:.0} per CPU second ({:.0} ns of CPU per update)",
                updates / cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e9 / updates
            ),
            None => println!(),
        }
    }
}

/// `total` plus the process's CPU time since `before` (picking a block's keys, the workload's
/// part, is left out of the measured CPU).
fn add_cpu_since(total: Option<Duration>, before: Option<Duration>) -> Option<Duration> {
    let spent = process_cpu()
        .zip(before)
        .map(|(now, b)| now.saturating_sub(b));
    total.zip(spent).map(|(total, spent)| total + spent)
}

/// Writes `value(i, round)` under each key of `keys`, merkleizes, applies and commits.
macro_rules! commit {
    ($db:ident, $keys:expr, $value:expr, $metadata:expr) => {{
        let mut batch = $db.new_batch();
        for (key, value) in $keys.map(|i| (key(i), $value(i))) {
            batch = batch.write(key, Some(value));
        }
        let batch = batch
            .merkleize(&$db, $metadata, &mut QuarterFloor)
            .await
            .unwrap();
        $db = $db.apply_batch(batch).await.unwrap();
        $db = $db.commit().await.unwrap();
    }};
}

/// The same through QMDB's staged path: every key read first (`stage`), then written through its
/// read slot, which skips the mutation map and merkleize's second read of each key.
macro_rules! commit_staged {
    ($db:ident, $keys:expr, $value:expr, $metadata:expr) => {{
        let (keys, values): (Vec<_>, Vec<_>) =
            $keys.map(|i| (key(i), Slot::Put($value(i)))).unzip();
        let refs: Vec<_> = keys.iter().collect();
        let (_, staged) = $db.new_batch().stage(&refs, &$db).await.unwrap();
        let batch = staged
            .merkleize(values, Vec::new(), $metadata, &$db, &mut QuarterFloor)
            .await
            .unwrap();
        $db = $db.apply_batch(batch).await.unwrap();
        $db = $db.commit().await.unwrap();
    }};
}

macro_rules! measure {
    ($db:ident, $keys:expr, $value:expr, $metadata:expr) => {{ measure!($db, $keys, $value, $metadata, commit) }};
    ($db:ident, $keys:expr, $value:expr, $metadata:expr, $commit:ident) => {{
        let keys: u64 = $keys;
        for first in (0..keys).step_by(100_000) {
            commit!($db, first..(first + 100_000).min(keys), $value, $metadata);
        }
        let mut random = Random(42);
        let mut blocks = Vec::with_capacity(BLOCKS);
        let mut cpu = Some(Duration::ZERO);
        for _ in 0..BLOCKS {
            let mut picked = std::collections::BTreeSet::new();
            while (picked.len() as u64) < UPDATES {
                picked.insert(random.next_u64() % keys);
            }
            let before = process_cpu();
            let start = Instant::now();
            $commit!($db, picked.into_iter(), $value, $metadata);
            blocks.push(start.elapsed());
            cpu = add_cpu_since(cpu, before);
        }
        Measured { blocks, cpu }
    }};
}

/// Two databases, as a layout with storage slots apart from accounts would use: `keys / 2`
/// accounts (variable values the size of an account entry) and `keys / 2` slots (fixed 32-byte
/// values). Each block updates `UPDATES` slots through the staged path and one account (the
/// token contract's), and commits both databases.
async fn split<
    E: commonware_runtime::Storage
        + commonware_runtime::Clock
        + commonware_runtime::Metrics
        + commonware_runtime::Spawner,
>(
    context: E,
    keys: u64,
) -> Measured {
    // One page cache for both, as one store would have.
    let cache = cache();
    let mut accounts = Variable::init(
        context.child("accounts"),
        variable_config(cache.clone()),
        None,
    )
    .await
    .unwrap();
    let mut storage = Fixed::init(context.child("storage"), fixed_config(cache), None)
        .await
        .unwrap();
    let half = keys / 2;
    let account = |i: u64| StateValue::Account {
        account: trellis_state::Account {
            nonce: i,
            balance: U256::from(i),
            code_hash: alloy_primitives::B256::repeat_byte(7),
        },
        generation: 0,
    };
    let metadata = Some(StateValue::Commit(Height(1)));
    for first in (0..half).step_by(100_000) {
        let last = (first + 100_000).min(half);
        commit!(accounts, first..last, account, metadata.clone());
        commit!(storage, first..last, |i: u64| key(i ^ 0x5555), None);
    }
    let mut random = Random(42);
    let mut blocks = Vec::with_capacity(BLOCKS);
    let mut cpu = Some(Duration::ZERO);
    for round in 0..BLOCKS as u64 {
        let mut picked = std::collections::BTreeSet::new();
        while (picked.len() as u64) < UPDATES {
            picked.insert(random.next_u64() % half);
        }
        let before = process_cpu();
        let start = Instant::now();
        commit!(
            accounts,
            std::iter::once(round % half),
            account,
            metadata.clone()
        );
        commit_staged!(storage, picked.into_iter(), |i: u64| key(i ^ round), None);
        blocks.push(start.elapsed());
        cpu = add_cpu_since(cpu, before);
    }
    Measured { blocks, cpu }
}

fn run(layout: &str, keys: u64) -> Measured {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = tokio::Config::new()
        .with_worker_threads(1)
        .with_storage_directory(dir.path());
    tokio::Runner::new(config).start(|context| async move {
        match layout {
            "split: accounts variable, slots fixed, staged" => split(context, keys).await,
            "fixed" => {
                let mut db = Fixed::init(context, fixed_config(cache()), None)
                    .await
                    .unwrap();
                measure!(db, keys, |i: u64| key(i ^ 0x5555), None)
            }
            "fixed, 81-byte values" => {
                let mut db = Wide::init(context, fixed_config(cache()), None)
                    .await
                    .unwrap();
                measure!(
                    db,
                    keys,
                    |i: u64| {
                        let mut value = [0u8; WIDE];
                        value[..8].copy_from_slice(&i.to_be_bytes());
                        value
                    },
                    None
                )
            }
            "fixed, staged" => {
                let mut db = Fixed::init(context, fixed_config(cache()), None)
                    .await
                    .unwrap();
                measure!(db, keys, |i: u64| key(i ^ 0x5555), None, commit_staged)
            }
            "variable, staged" => {
                let mut db = Variable::init(context, variable_config(cache()), None)
                    .await
                    .unwrap();
                measure!(
                    db,
                    keys,
                    slot_value,
                    Some(StateValue::Commit(Height(1))),
                    commit_staged
                )
            }
            _ => {
                let mut db = Variable::init(context, variable_config(cache()), None)
                    .await
                    .unwrap();
                measure!(db, keys, slot_value, Some(StateValue::Commit(Height(1))))
            }
        }
    })
}

fn main() {
    let keys = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(KEYS);
    println!(
        "raw QMDB current: {keys} keys, {BLOCKS} blocks of {UPDATES} updates, {} MiB page cache, \
         one worker thread",
        CACHE_BYTES >> 20
    );
    let layouts = [
        "fixed",
        "fixed, staged",
        "fixed, 81-byte values",
        "variable",
        "variable, staged",
        "split: accounts variable, slots fixed, staged",
    ];
    // Words among the arguments pick layouts by prefix (`-- staged` runs the staged ones).
    let picks: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg.parse::<u64>().is_err() && !arg.starts_with('-'))
        .collect();
    for layout in layouts {
        if picks.is_empty() || picks.iter().any(|pick| layout.contains(pick.as_str())) {
            run(layout, keys).print(layout);
        }
    }
}
