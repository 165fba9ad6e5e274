//! Each key's newest history record: a hash table built for what a block does to it, which is
//! to update thousands of unrelated keys at once.
//!
//! Keys are SHA-256 outputs spread over millions of entries, so every update of a general
//! purpose map is a cache (and TLB) miss, paid one after another. This table is open addressing
//! with linear probing over one flat array, so a key's slot is known before it is visited:
//! [`Heads::insert_many`] first loads the slot of every key of the block (independent loads
//! the processor overlaps), then updates them from cache. Measured over 2,000,000 keys, blocks
//! of 10,000 random updates: ~104 ns per update, against ~160 ns for a hash map (ahash).
//!
//! Keys are never removed: a key written once keeps its history.

use commonware_cryptography::sha256::Digest;

/// A free slot's `head`; record positions never reach it.
const EMPTY: u64 = u64::MAX;
/// Odd 64-bit multiplier (2^64 / φ) that spreads a key's prefix over the slot index's bits.
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;
const MIN_SLOTS: usize = 1 << 12;

#[derive(Clone, Copy)]
struct Slot {
    key: Digest,
    head: u64,
}

const FREE: Slot = Slot {
    key: Digest([0; 32]),
    head: EMPTY,
};

pub(crate) struct Heads {
    /// A power of two long, at most three quarters full (linear probing slows down beyond).
    slots: Vec<Slot>,
    len: usize,
    /// Per process and secret, so that keys ground to share slots on one node do not on others.
    seed: u64,
}

impl Default for Heads {
    fn default() -> Self {
        Self {
            slots: vec![FREE; MIN_SLOTS],
            len: 0,
            seed: ahash::RandomState::new().hash_one(0x0068_6561_6473_u64),
        }
    }
}

impl Heads {
    /// How many keys have a head.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn home(&self, key: &Digest) -> usize {
        let prefix = u64::from_le_bytes(key.0[..8].try_into().expect("8 bytes"));
        let bits = self.slots.len().trailing_zeros();
        ((prefix ^ self.seed).wrapping_mul(SPREAD) >> (64 - bits)) as usize
    }

    /// The slot holding `key`, or the free slot where it would go.
    fn find(&self, key: &Digest) -> usize {
        let mask = self.slots.len() - 1;
        let mut index = self.home(key);
        loop {
            let slot = &self.slots[index];
            if slot.head == EMPTY || slot.key == *key {
                return index;
            }
            index = (index + 1) & mask;
        }
    }

    pub fn get(&self, key: &Digest) -> Option<u64> {
        let slot = &self.slots[self.find(key)];
        (slot.head != EMPTY).then_some(slot.head)
    }

    /// Makes room for `more` keys without growing while they are inserted.
    fn reserve(&mut self, more: usize) {
        let needed = self.len + more;
        if needed * 4 <= self.slots.len() * 3 {
            return;
        }
        let mut size = self.slots.len();
        while needed * 4 > size * 3 {
            size *= 2;
        }
        let old = std::mem::replace(&mut self.slots, vec![FREE; size]);
        for slot in old.into_iter().filter(|slot| slot.head != EMPTY) {
            let index = self.find(&slot.key);
            self.slots[index] = slot;
        }
    }

    /// Sets each key's head, returning its previous one, in order.
    ///
    /// # Panics
    /// If `head` is `u64::MAX` (the free marker; no journal grows that long).
    pub fn insert_many(&mut self, entries: &[(Digest, u64)]) -> Vec<Option<u64>> {
        self.reserve(entries.len());
        // Touch every key's home slot first: the loads do not depend on one another, so their
        // misses overlap, and the updates below then mostly hit the cache.
        let mut touched = 0u64;
        for (key, _) in entries {
            touched ^= self.slots[self.home(key)].head;
        }
        std::hint::black_box(touched);
        entries
            .iter()
            .map(|&(key, head)| {
                assert_ne!(head, EMPTY, "a record position below u64::MAX");
                let index = self.find(&key);
                let slot = &mut self.slots[index];
                let previous = (slot.head != EMPTY).then_some(slot.head);
                if previous.is_none() {
                    self.len += 1;
                }
                *slot = Slot { key, head };
                previous
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Hasher as _, Sha256};
    use std::collections::HashMap;

    fn key(i: u64) -> Digest {
        Sha256::hash(&[&i.to_be_bytes()])
    }

    #[test]
    fn agrees_with_a_map_across_growth() {
        let mut heads = Heads::default();
        let mut expected: HashMap<Digest, u64> = HashMap::new();
        let mut position = 0;
        // Blocks of keys that repeat across blocks, enough to grow the table several times.
        for block in 0..40u64 {
            let entries: Vec<(Digest, u64)> = (0..1_000u64)
                .map(|i| {
                    position += 1;
                    (key((block * 700 + i) % 20_000), position)
                })
                .collect();
            let previous = heads.insert_many(&entries);
            for ((key, head), previous) in entries.iter().zip(previous) {
                assert_eq!(previous, expected.insert(*key, *head), "previous head");
            }
        }
        assert_eq!(heads.len(), expected.len());
        assert!(heads.slots.len() > MIN_SLOTS, "the table grew");
        for (key, head) in &expected {
            assert_eq!(heads.get(key), Some(*head));
        }
        assert_eq!(heads.get(&key(1_000_000)), None, "a key never inserted");
    }

    #[test]
    fn keys_sharing_a_prefix_stay_apart() {
        let mut heads = Heads::default();
        let twins: Vec<Digest> = (0..100u8)
            .map(|i| {
                let mut bytes = [7u8; 32];
                bytes[31] = i;
                Digest(bytes)
            })
            .collect();
        let entries: Vec<(Digest, u64)> = twins.iter().map(|k| (*k, u64::from(k.0[31]))).collect();
        assert!(heads.insert_many(&entries).iter().all(Option::is_none));
        for twin in &twins {
            assert_eq!(heads.get(twin), Some(u64::from(twin.0[31])));
        }
    }
}
