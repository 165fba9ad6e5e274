//! The last few transactions of each sender, kept as an alarm's evidence.
//!
//! Bounded: at most `EVIDENCE` hashes for each of at most `capacity` senders. When a new sender
//! finds it full, everything is forgotten at once (a flood of new senders costs one clear, not
//! one eviction each); an alarm raised just after names fewer transactions, never wrong ones.

use alloy_primitives::{Address, TxHash};
use std::collections::{HashMap, VecDeque};

/// Transactions an alarm names as evidence, at most.
pub const EVIDENCE: usize = 16;

pub(crate) struct Recent {
    capacity: usize,
    senders: HashMap<Address, VecDeque<TxHash>>,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            senders: HashMap::new(),
        }
    }

    pub fn push(&mut self, sender: Address, hash: TxHash) {
        if !self.senders.contains_key(&sender) && self.senders.len() >= self.capacity {
            self.senders.clear();
        }
        let hashes = self.senders.entry(sender).or_default();
        if hashes.len() == EVIDENCE {
            hashes.pop_front();
        }
        hashes.push_back(hash);
    }

    /// The sender's last transactions, oldest first.
    pub fn of(&self, sender: &Address) -> Vec<TxHash> {
        self.senders
            .get(sender)
            .map(|hashes| hashes.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few_per_sender_in_bounded_memory() {
        let mut recent = Recent::new(2);
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        for n in 0..20u8 {
            recent.push(a, TxHash::repeat_byte(n));
        }
        let kept = recent.of(&a);
        assert_eq!(kept.len(), EVIDENCE);
        assert_eq!(kept[0], TxHash::repeat_byte(4), "oldest dropped first");
        assert_eq!(kept[EVIDENCE - 1], TxHash::repeat_byte(19));
        recent.push(b, TxHash::repeat_byte(1));
        recent.push(c, TxHash::repeat_byte(2));
        assert!(
            recent.of(&a).is_empty(),
            "a third sender clears a full record"
        );
        assert_eq!(recent.of(&c), vec![TxHash::repeat_byte(2)]);
    }
}
