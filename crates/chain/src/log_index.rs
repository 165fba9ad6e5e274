//! An index of finalized logs by emitting address and by topic, so `eth_getLogs` over a wide
//! range reads only the blocks that can match.
//!
//! # Layout
//! The chain is cut into sections of [`SECTION_BLOCKS`] blocks. For each section the index
//! holds, per *key* (an emitting address, or a topic at one position), the blocks of the
//! section with a log bearing that key: a posting list of block offsets. A key is a 64-bit
//! fingerprint of what it names (SHA-256 of a kind byte and the bytes), so a posting list may
//! (with probability ~2^-64 per pair of keys) name a block that does not match: callers always
//! check the candidate blocks' logs exactly.
//!
//! A completed section is written to an immutable archive as [`SHARDS`] blobs, split by the
//! fingerprint's top bits, so a query for one key reads one shard of each section. The section
//! being filled lives in memory; at open it is rebuilt from the stored blocks (at most
//! `SECTION_BLOCKS - 1` of them), as is a completed section whose blobs a crash cut short.
//!
//! Unlike the header's 2048-bit bloom, which saturates once a block holds a few hundred logs,
//! posting lists stay exact however busy the blocks are.

use crate::stored::StoredBlock;
use alloy_primitives::{Address, B256, Log, TxHash};
use bytes::Bytes;
use commonware_codec::RangeCfg;
use commonware_runtime::{Clock, Metrics, Storage, buffer::paged::CacheRef};
use commonware_storage::archive::{Archive as _, Identifier, immutable};
use commonware_utils::sequence::FixedBytes;
use sha2::{Digest as _, Sha256};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Mutex as SyncMutex,
};
use trellis_types::{BlockHash, Height};

/// Blocks per section.
pub const SECTION_BLOCKS: u64 = 1_024;
/// Blobs per completed section.
pub const SHARDS: u64 = 16;
/// Most shard blobs kept decoded in memory for repeated queries.
const CACHED_SHARDS: usize = 4_096;
/// The largest shard blob (a section of very busy blocks).
const MAX_SHARD_BYTES: usize = 1 << 30;

/// What a log filter asks of a log: one of `addresses` emitted it (any if empty), and at each
/// position of `topics` its topic is one of those listed (any if the list is empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub addresses: Vec<Address>,
    pub topics: Vec<Vec<B256>>,
}

impl LogQuery {
    /// Whether `log` matches exactly.
    pub fn matches(&self, log: &Log) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        let topics = log.topics();
        self.topics.iter().enumerate().all(|(position, accepted)| {
            accepted.is_empty() || topics.get(position).is_some_and(|t| accepted.contains(t))
        })
    }

    /// The conditions as sets of keys: a block can match only if, for every set, it holds a
    /// log with one of the set's keys. No condition at all: blocks with any log.
    fn key_sets(&self) -> Vec<Vec<Fingerprint>> {
        let mut sets = Vec::new();
        if !self.addresses.is_empty() {
            sets.push(self.addresses.iter().map(address_key).collect());
        }
        for (position, accepted) in self.topics.iter().enumerate() {
            if !accepted.is_empty() {
                sets.push(accepted.iter().map(|t| topic_key(position, t)).collect());
            }
        }
        if sets.is_empty() {
            sets.push(vec![ANY_LOG]);
        }
        sets
    }
}

/// A log that matched a query, with where it is in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundLog {
    pub block_hash: BlockHash,
    pub height: Height,
    pub tx_hash: TxHash,
    /// The transaction's index in its block.
    pub tx_index: usize,
    /// The log's index in its block (counted across the block's transactions).
    pub log_index: usize,
    pub log: Log,
}

/// The logs of `stored` that match `query`, in block order.
pub fn matching_logs(stored: &StoredBlock, query: &LogQuery) -> Vec<FoundLog> {
    let mut found = Vec::new();
    let mut log_index = 0;
    for (tx_index, receipt) in stored.receipts.iter().enumerate() {
        for log in receipt.envelope.logs() {
            if query.matches(log) {
                found.push(FoundLog {
                    block_hash: stored.block.hash(),
                    height: stored.block.height(),
                    tx_hash: receipt.tx_hash,
                    tx_index,
                    log_index,
                    log: log.clone(),
                });
            }
            log_index += 1;
        }
    }
    found
}

type Fingerprint = u64;

/// The key every block with at least one log carries.
const ANY_LOG: Fingerprint = 0;

fn fingerprint(kind: u8, bytes: &[u8]) -> Fingerprint {
    let digest = Sha256::new()
        .chain_update([kind])
        .chain_update(bytes)
        .finalize();
    let value = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // ANY_LOG is reserved.
    value.max(1)
}

fn address_key(address: &Address) -> Fingerprint {
    fingerprint(0xff, address.as_slice())
}

fn topic_key(position: usize, topic: &B256) -> Fingerprint {
    fingerprint(position as u8, topic.as_slice())
}

/// The keys of one block's logs, deduplicated.
fn block_keys(stored: &StoredBlock) -> Vec<Fingerprint> {
    let mut keys = Vec::new();
    for receipt in &stored.receipts {
        for log in receipt.envelope.logs() {
            keys.push(address_key(&log.address));
            for (position, topic) in log.topics().iter().enumerate() {
                keys.push(topic_key(position, topic));
            }
        }
    }
    if !keys.is_empty() {
        keys.push(ANY_LOG);
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Block offsets within a section.
type Offset = u16;
const _: () = assert!(SECTION_BLOCKS <= Offset::MAX as u64 + 1);

/// The section being filled: key → offsets of its blocks, ascending.
#[derive(Default)]
struct OpenSection {
    postings: BTreeMap<Fingerprint, Vec<Offset>>,
}

impl OpenSection {
    fn add(&mut self, offset: Offset, keys: &[Fingerprint]) {
        for key in keys {
            self.postings.entry(*key).or_default().push(offset);
        }
    }

    fn lookup(&self, key: Fingerprint) -> &[Offset] {
        self.postings.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The section as `SHARDS` blobs.
    fn encode(&self) -> Vec<Bytes> {
        let mut shards: Vec<Vec<(Fingerprint, &[Offset])>> = vec![Vec::new(); SHARDS as usize];
        for (key, offsets) in &self.postings {
            shards[shard_of(*key) as usize].push((*key, offsets));
        }
        shards.iter().map(|entries| encode_shard(entries)).collect()
    }
}

fn shard_of(key: Fingerprint) -> u64 {
    key >> (64 - SHARDS.trailing_zeros())
}

/// `[count: u32][keys: u64 × count][starts: u32 × (count + 1)][offsets: u16 …]`, little-endian,
/// keys ascending: looked up in place by binary search.
fn encode_shard(entries: &[(Fingerprint, &[Offset])]) -> Bytes {
    let total: usize = entries.iter().map(|(_, offsets)| offsets.len()).sum();
    let mut out = Vec::with_capacity(4 + entries.len() * 12 + 4 + total * 2);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (key, _) in entries {
        out.extend_from_slice(&key.to_le_bytes());
    }
    let mut start = 0u32;
    for (_, offsets) in entries {
        out.extend_from_slice(&start.to_le_bytes());
        start += offsets.len() as u32;
    }
    out.extend_from_slice(&start.to_le_bytes());
    for (_, offsets) in entries {
        for offset in *offsets {
            out.extend_from_slice(&offset.to_le_bytes());
        }
    }
    out.into()
}

/// The offsets `key` has in an encoded shard.
fn lookup_shard(blob: &[u8], key: Fingerprint) -> Vec<Offset> {
    let read_u32 = |at: usize| u32::from_le_bytes(blob[at..at + 4].try_into().expect("4 bytes"));
    let count = read_u32(0) as usize;
    let key_at = |i: usize| {
        let at = 4 + i * 8;
        u64::from_le_bytes(blob[at..at + 8].try_into().expect("8 bytes"))
    };
    let (mut low, mut high) = (0, count);
    while low < high {
        let middle = (low + high) / 2;
        match key_at(middle).cmp(&key) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => {
                let starts = 4 + count * 8;
                let (from, to) = (
                    read_u32(starts + middle * 4) as usize,
                    read_u32(starts + (middle + 1) * 4) as usize,
                );
                let offsets = starts + (count + 1) * 4;
                return (from..to)
                    .map(|i| {
                        let at = offsets + i * 2;
                        Offset::from_le_bytes([blob[at], blob[at + 1]])
                    })
                    .collect();
            }
        }
    }
    Vec::new()
}

/// Why the log index failed: its archive failed (the node cannot continue without storage).
#[derive(Debug, thiserror::Error)]
#[error("log index: {0}")]
pub struct LogIndexError(#[from] commonware_storage::archive::Error);

type ShardKey = FixedBytes<8>;
type ShardArchive<E> = immutable::Archive<E, ShardKey, Bytes>;

/// Recently read shard blobs, evicted oldest first.
#[derive(Default)]
struct ShardCache {
    blobs: HashMap<u64, Bytes>,
    order: VecDeque<u64>,
}

impl ShardCache {
    fn get(&self, index: u64) -> Option<Bytes> {
        self.blobs.get(&index).cloned()
    }

    fn insert(&mut self, index: u64, blob: Bytes) {
        if self.blobs.insert(index, blob).is_none() {
            self.order.push_back(index);
        }
        while self.order.len() > CACHED_SHARDS {
            let oldest = self.order.pop_front().expect("not empty");
            self.blobs.remove(&oldest);
        }
    }
}

/// The open section and the next height to index.
struct Filling {
    section: OpenSection,
    next: Height,
}

/// The log index of the finalized chain. Blocks are added in height order as they are stored.
pub struct LogIndex<E: Storage + Clock + Metrics> {
    archive: futures::lock::Mutex<Option<ShardArchive<E>>>,
    filling: SyncMutex<Filling>,
    cache: SyncMutex<ShardCache>,
}

impl<E: Storage + Clock + Metrics> LogIndex<E> {
    /// Opens the index. Its next height is the first block of the first section not durably
    /// written: the caller adds the stored blocks from [`LogIndex::next_height`] on.
    pub async fn open(context: E, prefix: &str, cache: &CacheRef) -> Result<Self, LogIndexError> {
        let config = trellis_consensus::engine::archive_config(
            prefix,
            "ledger-logs",
            cache,
            RangeCfg::new(0..=MAX_SHARD_BYTES),
        );
        let archive: ShardArchive<E> = immutable::Archive::init(context, config).await?;
        // Shards are written in order and synced after a section's last one: sections before
        // the first incomplete one are whole.
        let sections = archive.last_index().map_or(0, |last| (last + 1) / SHARDS);
        Ok(Self {
            archive: futures::lock::Mutex::new(Some(archive)),
            filling: SyncMutex::new(Filling {
                section: OpenSection::default(),
                next: Height(sections * SECTION_BLOCKS),
            }),
            cache: SyncMutex::new(ShardCache::default()),
        })
    }

    /// The next block to add.
    pub fn next_height(&self) -> Height {
        self.filling.lock().expect("log index lock poisoned").next
    }

    /// Adds the next finalized block; writes its section when it completes it. A block below
    /// the next height (delivered again) is ignored.
    pub async fn add(&self, stored: &StoredBlock) -> Result<(), LogIndexError> {
        let height = stored.block.height();
        let completed = {
            let mut filling = self.filling.lock().expect("log index lock poisoned");
            if height < filling.next {
                return Ok(());
            }
            assert_eq!(
                height, filling.next,
                "the log index takes blocks in height order"
            );
            let offset = (height.get() % SECTION_BLOCKS) as Offset;
            filling.section.add(offset, &block_keys(stored));
            if !height.next().get().is_multiple_of(SECTION_BLOCKS) {
                filling.next = height.next();
                return Ok(());
            }
            filling.section.encode()
        };
        let section = height.get() / SECTION_BLOCKS;
        let mut slot = self.archive.lock().await;
        let mut archive = slot.take().expect("not mid-write");
        for (shard, blob) in completed.iter().enumerate() {
            let index = section * SHARDS + shard as u64;
            archive = archive
                .put(index, ShardKey::new(index.to_be_bytes()), blob)
                .await?;
        }
        *slot = Some(archive.sync().await?);
        drop(slot);
        // Only now does the next section open: until its blobs are durable, queries read the
        // completed section from memory.
        let mut filling = self.filling.lock().expect("log index lock poisoned");
        filling.section = OpenSection::default();
        filling.next = height.next();
        Ok(())
    }

    /// The heights in `from..=to` whose blocks may hold a log matching `query` (every block
    /// that does is among them), ascending. The chain past the indexed blocks has none.
    pub async fn candidates(
        &self,
        query: &LogQuery,
        from: Height,
        to: Height,
    ) -> Result<Vec<Height>, LogIndexError> {
        let sets = query.key_sets();
        let mut heights = Vec::new();
        if from > to {
            return Ok(heights);
        }
        for section in from.get() / SECTION_BLOCKS..=to.get() / SECTION_BLOCKS {
            let base = section * SECTION_BLOCKS;
            let Some(offsets) = self.section_candidates(section, &sets).await? else {
                break;
            };
            heights.extend(
                offsets
                    .into_iter()
                    .map(|offset| base + u64::from(offset))
                    .filter(|h| (from.get()..=to.get()).contains(h))
                    .map(Height),
            );
        }
        Ok(heights)
    }

    /// The offsets of `section` that hold a key of every set; `None` past the indexed chain.
    async fn section_candidates(
        &self,
        section: u64,
        sets: &[Vec<Fingerprint>],
    ) -> Result<Option<Vec<Offset>>, LogIndexError> {
        let mut result: Option<Vec<Offset>> = None;
        for keys in sets {
            let mut union = Vec::new();
            for key in keys {
                match self.lookup(section, *key).await? {
                    Some(offsets) => union.extend(offsets),
                    None => return Ok(None),
                }
            }
            union.sort_unstable();
            union.dedup();
            result = Some(match result {
                None => union,
                Some(previous) => previous
                    .into_iter()
                    .filter(|o| union.binary_search(o).is_ok())
                    .collect(),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        Ok(result)
    }

    /// The offsets of `key` in `section`; `None` if the section is not indexed yet.
    async fn lookup(
        &self,
        section: u64,
        key: Fingerprint,
    ) -> Result<Option<Vec<Offset>>, LogIndexError> {
        {
            let filling = self.filling.lock().expect("log index lock poisoned");
            let open = filling.next.get() / SECTION_BLOCKS;
            if section > open {
                return Ok(None);
            }
            if section == open {
                return Ok(Some(filling.section.lookup(key).to_vec()));
            }
        }
        let index = section * SHARDS + shard_of(key);
        if let Some(blob) = self
            .cache
            .lock()
            .expect("log cache lock poisoned")
            .get(index)
        {
            return Ok(Some(lookup_shard(&blob, key)));
        }
        let blob = {
            let slot = self.archive.lock().await;
            let archive = slot.as_ref().expect("not mid-write");
            archive.get(Identifier::Index(index)).await?
        };
        let Some(blob) = blob else {
            // Written by `add` before the open section moved past it, so only a section the
            // open one has not reached yet can be missing.
            return Ok(None);
        };
        let offsets = lookup_shard(&blob, key);
        self.cache
            .lock()
            .expect("log cache lock poisoned")
            .insert(index, blob);
        Ok(Some(offsets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_answer_every_key_in_place() {
        let mut section = OpenSection::default();
        let keys: Vec<Fingerprint> = (1..200u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for (offset, key) in keys.iter().enumerate() {
            section.add(offset as Offset, &[*key, ANY_LOG]);
            section.add(offset as Offset + 500, &[*key]);
        }
        let shards = section.encode();
        assert_eq!(shards.len() as u64, SHARDS);
        for (offset, key) in keys.iter().enumerate() {
            let blob = &shards[shard_of(*key) as usize];
            assert_eq!(
                lookup_shard(blob, *key),
                vec![offset as Offset, offset as Offset + 500]
            );
        }
        assert_eq!(lookup_shard(&shards[0], ANY_LOG).len(), keys.len());
        assert!(lookup_shard(&shards[3], 3 << 60 | 12345).is_empty());
    }

    #[test]
    fn keys_distinguish_addresses_topics_and_positions() {
        let topic = B256::repeat_byte(7);
        assert_ne!(topic_key(0, &topic), topic_key(1, &topic));
        let address = Address::repeat_byte(7);
        assert_ne!(
            address_key(&address),
            topic_key(0, &B256::left_padding_from(address.as_slice()))
        );
        let query = LogQuery::default();
        assert_eq!(query.key_sets(), vec![vec![ANY_LOG]]);
    }
}
