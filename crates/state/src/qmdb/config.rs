//! Where and how the store keeps its two tables: partitions, page cache, log sections, history.

use commonware_parallel::Sequential;
use commonware_runtime::{
    BLOB_PAGE_SIZE,
    buffer::paged::{CacheRef, page_size},
};
use commonware_storage::{
    journal::contiguous::{fixed, variable},
    merkle::full::Config as MerkleConfig,
    qmdb::current::{self, FixedConfig, VariableConfig},
    translator::EightCap,
};
use std::num::{NonZeroU64, NonZeroUsize};

/// Where and how the state is stored.
#[derive(Clone, Debug)]
pub struct QmdbConfig {
    /// Prefix of the store's storage partitions.
    pub partition_prefix: String,
    /// Memory for cached pages of both tables' operation logs and Merkle nodes (one cache).
    /// Throughput depends on it holding the hot working set: measured here over a million
    /// accounts, 256 MiB commits ~4× more updates per second than 16 MiB, and 512 MiB ~2× more
    /// than 256 MiB.
    pub page_cache_bytes: usize,
    /// Operations per log file.
    pub items_per_section: NonZeroU64,
    /// How much history to keep: `None` (the default, for a ledger) keeps every operation, so
    /// every past value stays provable; `Some(n)` lets operations older than the last `n`
    /// committed blocks be pruned once they are inactive (superseded), freeing disk.
    pub keep_blocks: Option<u64>,
}

impl QmdbConfig {
    /// Defaults sized for a validator: a 512 MiB page cache.
    pub fn new(partition_prefix: impl Into<String>) -> Self {
        Self {
            partition_prefix: partition_prefix.into(),
            page_cache_bytes: 512 << 20,
            items_per_section: NonZeroU64::new(65_536).expect("non-zero"),
            keep_blocks: None,
        }
    }

    /// One page cache for both tables' logs and Merkle nodes.
    pub(super) fn page_cache(&self) -> CacheRef {
        let page = page_size(BLOB_PAGE_SIZE);
        let pages = (self.page_cache_bytes / BLOB_PAGE_SIZE as usize).max(16);
        CacheRef::new(page, NonZeroUsize::new(pages).expect("at least 16 pages"))
    }

    /// Entries of the `(location -> key)` cache QMDB uses while rebuilding a table's index at
    /// open (freed once open). A key's update replays against the location of its previous
    /// update, which is far back in the log; a hit saves reading and decoding that operation
    /// again. One entry (~41 bytes) per 256 bytes of page cache: 2,097,152 for the 512 MiB
    /// default, which halved reopening 2,000,000 entries against 65,536 (7–8 s to ~3.5 s).
    pub(super) fn init_cache_entries(&self) -> usize {
        (self.page_cache_bytes / 256).max(1 << 16)
    }

    /// The prefix of one table's partitions.
    pub(super) fn table(&self, name: &str) -> String {
        format!("{}-state-{name}", self.partition_prefix)
    }

    fn buffer() -> NonZeroUsize {
        NonZeroUsize::new(1 << 20).expect("non-zero")
    }

    /// A table named `table` over `cache`, whose log is configured by `journal`.
    fn database<J>(
        &self,
        table: &str,
        cache: &CacheRef,
        journal: J,
    ) -> current::Config<EightCap, J, Sequential> {
        current::Config {
            merkle_config: MerkleConfig {
                journal_partition: format!("{table}-merkle"),
                metadata_partition: format!("{table}-merkle-meta"),
                items_per_blob: self.items_per_section,
                write_buffer: Self::buffer(),
                replay_buffer: Self::buffer(),
                strategy: Sequential,
                page_cache: cache.clone(),
            },
            journal_config: journal,
            grafted_metadata_partition: format!("{table}-grafted"),
            translator: EightCap,
            init_cache: NonZeroUsize::new(self.init_cache_entries()),
            init_buffer: Self::buffer(),
            init_concurrency: (),
        }
    }

    pub(super) fn accounts(
        &self,
        cache: &CacheRef,
    ) -> VariableConfig<EightCap, ((), ()), Sequential> {
        let table = self.table("accounts");
        let journal = variable::Config {
            partition: format!("{table}-log"),
            items_per_section: self.items_per_section,
            compression: None,
            codec_config: ((), ()),
            page_cache: cache.clone(),
            write_buffer: Self::buffer(),
            replay_buffer: Self::buffer(),
        };
        self.database(&table, cache, journal)
    }

    pub(super) fn storage(&self, cache: &CacheRef) -> FixedConfig<EightCap, Sequential> {
        let table = self.table("storage");
        let journal = fixed::Config {
            partition: format!("{table}-log"),
            items_per_blob: self.items_per_section,
            page_cache: cache.clone(),
            write_buffer: Self::buffer(),
            replay_buffer: Self::buffer(),
        };
        self.database(&table, cache, journal)
    }
}

/// The history index's own page cache, so that reading histories never evicts the state's pages.
pub(super) fn history_cache() -> CacheRef {
    let pages = (16 << 20) / BLOB_PAGE_SIZE as usize;
    CacheRef::new(
        page_size(BLOB_PAGE_SIZE),
        NonZeroUsize::new(pages).expect("non-zero"),
    )
}
