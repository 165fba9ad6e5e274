//! The pool's indexes: every pending transaction by hash and by sender and nonce, and each
//! sender's total cost, which every operation keeps in agreement (checked in debug builds).

use crate::PooledTx;
use alloy_primitives::{Address, TxHash, U256};
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

/// Both indexes of the pool and the per-sender cost totals, kept in agreement.
#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) by_hash: HashMap<TxHash, Arc<PooledTx>>,
    /// Per sender, nonce → transaction.
    pub(crate) by_sender: HashMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
    /// Per sender, the sum of its pooled transactions' costs, so admission need not add up
    /// a queue of up to the nonce window on every transaction.
    pub(crate) cost_by_sender: HashMap<Address, U256>,
    /// Transactions in `by_sender`'s queues, which must be as many as `by_hash` holds.
    pub(crate) queued: usize,
    pub(crate) next_seq: u64,
}

impl Inner {
    pub(crate) fn insert(&mut self, pooled: Arc<PooledTx>) {
        let sender = pooled.tx.sender();
        let replaced = self
            .by_sender
            .entry(sender)
            .or_default()
            .insert(pooled.nonce(), pooled.clone());
        let total = self.cost_by_sender.entry(sender).or_default();
        *total += pooled.cost;
        match replaced {
            Some(old) => {
                *total -= old.cost;
                self.by_hash.remove(&old.tx.hash());
            }
            None => self.queued += 1,
        }
        self.by_hash.insert(pooled.tx.hash(), pooled);
        self.debug_check(&sender);
    }

    /// In debug builds, checks what every operation must leave behind: both indexes hold the
    /// same number of transactions, and `sender`'s queue is keyed by nonce, holds only its
    /// transactions, each indexed by hash (the same one), and sums to its cost total. Together
    /// with the counts, checking each touched sender keeps the indexes in one-to-one agreement
    /// at O(the sender's queue) a call, so debug runs under load do not turn quadratic.
    fn debug_check(&self, sender: &Address) {
        if !cfg!(debug_assertions) {
            return;
        }
        assert_eq!(
            self.by_hash.len(),
            self.queued,
            "both indexes hold the same transactions"
        );
        let Some(queue) = self.by_sender.get(sender) else {
            assert!(
                !self.cost_by_sender.contains_key(sender),
                "no cost total without a queue"
            );
            return;
        };
        assert!(!queue.is_empty(), "no empty queue is kept");
        let mut total = U256::ZERO;
        for (nonce, pooled) in queue {
            assert_eq!(*nonce, pooled.nonce(), "a queue is keyed by nonce");
            assert_eq!(
                pooled.tx.sender(),
                *sender,
                "a queue holds its sender's only"
            );
            let indexed = self.by_hash.get(&pooled.tx.hash());
            assert!(
                indexed.is_some_and(|by_hash| Arc::ptr_eq(by_hash, pooled)),
                "every queued transaction is indexed by its hash"
            );
            total += pooled.cost;
        }
        assert_eq!(
            self.cost_by_sender.get(sender),
            Some(&total),
            "a sender's cost total is its queue's"
        );
    }

    /// What `sender`'s pooled transactions with nonces in `from..to` may spend (`from <= to`).
    pub(crate) fn cost_between(&self, sender: &Address, from: u64, to: u64) -> U256 {
        debug_assert!(from <= to, "a nonce below the account's is refused before");
        let Some(queue) = self.by_sender.get(sender) else {
            return U256::ZERO;
        };
        let sum = |range: std::collections::btree_map::Range<'_, u64, Arc<PooledTx>>| {
            range.map(|(_, p)| p.cost).fold(U256::ZERO, |a, b| a + b)
        };
        // Transactions arrive in nonce order, so the ranges outside `from..to` are short:
        // below, only stale ones not yet removed; above, only those sent ahead of a gap.
        let total = self.cost_by_sender.get(sender).copied().unwrap_or_default();
        total - sum(queue.range(..from)) - sum(queue.range(to..))
    }

    pub(crate) fn remove(&mut self, hash: &TxHash) -> Option<Arc<PooledTx>> {
        let pooled = self.by_hash.remove(hash)?;
        let sender = pooled.tx.sender();
        if let Some(queue) = self.by_sender.get_mut(&sender) {
            if queue.remove(&pooled.nonce()).is_some() {
                self.queued -= 1;
            }
            if queue.is_empty() {
                self.by_sender.remove(&sender);
                self.cost_by_sender.remove(&sender);
            } else if let Some(total) = self.cost_by_sender.get_mut(&sender) {
                *total -= pooled.cost;
            }
        }
        self.debug_check(&sender);
        Some(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::TxEip1559;
    use alloy_primitives::TxKind;
    use trellis_crypto::AccountKey;
    use trellis_types::transaction;

    const CHAIN_ID: u64 = 7_777;

    fn pooled(key: &AccountKey, nonce: u64, value: u64) -> Arc<PooledTx> {
        let raw = key.sign_transaction(TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            max_priority_fee_per_gas: 10,
            to: TxKind::Call(Address::repeat_byte(0xbb)),
            value: U256::from(value),
            ..TxEip1559::default()
        });
        let tx = transaction::decode(raw).expect("a signed transfer decodes");
        Arc::new(PooledTx {
            tx,
            seq: nonce,
            cost: U256::from(21_000 * 10 + value),
        })
    }

    #[test]
    fn inserts_replacements_and_removals_keep_the_indexes_in_agreement() {
        let key = AccountKey::from_seed(1);
        let mut inner = Inner::default();
        for nonce in 0..3 {
            inner.insert(pooled(&key, nonce, nonce));
        }
        // A replacement at nonce 1: another transaction (another value) for the same nonce.
        let replacement = pooled(&key, 1, 9);
        inner.insert(replacement.clone());
        assert_eq!((inner.by_hash.len(), inner.queued), (3, 3));
        inner.remove(&replacement.tx.hash()).expect("it is pooled");
        inner
            .remove(&pooled(&key, 0, 0).tx.hash())
            .expect("it is pooled");
        inner
            .remove(&pooled(&key, 2, 2).tx.hash())
            .expect("it is pooled");
        assert!(inner.by_sender.is_empty() && inner.cost_by_sender.is_empty());
        assert_eq!((inner.by_hash.len(), inner.queued), (0, 0));
    }

    #[test]
    #[cfg_attr(
        not(debug_assertions),
        ignore = "the index checks run in debug builds only"
    )]
    #[should_panic(expected = "both indexes hold the same transactions")]
    fn a_transaction_indexed_by_hash_only_is_caught() {
        let key = AccountKey::from_seed(2);
        let mut inner = Inner::default();
        let stray = pooled(&key, 0, 0);
        inner.by_hash.insert(stray.tx.hash(), stray);
        inner.insert(pooled(&key, 1, 1));
    }

    #[test]
    #[cfg_attr(
        not(debug_assertions),
        ignore = "the index checks run in debug builds only"
    )]
    #[should_panic(expected = "a sender's cost total is its queue's")]
    fn a_cost_total_out_of_step_is_caught() {
        let key = AccountKey::from_seed(3);
        let mut inner = Inner::default();
        inner.insert(pooled(&key, 0, 0));
        *inner.cost_by_sender.get_mut(&key.address()).unwrap() += U256::from(1);
        inner.insert(pooled(&key, 1, 1));
    }
}
