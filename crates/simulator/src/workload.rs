//! The members' wallets: transfers sent to a running validator throughout the run, receipts
//! looked up, and what has no receipt after a while sent again (to another validator, as a
//! wallet retries after its node went down). What got a receipt is remembered, so the end of
//! the run can check it is still there, once, on every node.

use crate::{
    cluster::{Cluster, senders},
    invariants::Violation,
    plan::{Draw, NodeId, Seed},
};
use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use std::{collections::BTreeMap, time::Duration};
use trellis_chain::{AdmissionError, TxLocation};
use trellis_crypto::AccountKey;
use trellis_types::{Bytes, TxHash};

/// Transfers of one sender in flight at most (the pool's nonce window is wider).
const IN_FLIGHT: u64 = 4;
/// A transfer without a receipt this long is sent again.
const RESEND_AFTER: Duration = Duration::from_secs(3);
/// Every transfer moves this much.
pub const AMOUNT: u64 = 1_000;
/// Accounts that receive.
pub const RECIPIENTS: u8 = 6;

pub fn recipient(i: u8) -> Address {
    Address::with_last_byte(0xb0 + i)
}

struct InFlight {
    raw: Bytes,
    sender: usize,
    sent_at: Duration,
}

/// A transfer's receipt as first seen.
#[derive(Clone, Copy, Debug)]
pub struct Receipted {
    pub location: TxLocation,
    pub sender: usize,
}

pub struct Workload {
    keys: Vec<AccountKey>,
    next_nonce: Vec<u64>,
    in_flight: BTreeMap<TxHash, InFlight>,
    receipted: BTreeMap<TxHash, Receipted>,
    draw: Draw,
    /// Submissions a node refused (full pool, a copy it already had…): retried later.
    pub refusals: u64,
}

impl Workload {
    pub fn new(seed: Seed) -> Self {
        let keys = senders();
        Self {
            next_nonce: vec![0; keys.len()],
            keys,
            in_flight: BTreeMap::new(),
            receipted: BTreeMap::new(),
            draw: Draw::new(seed.0 ^ 0x5eed_f0a1_1e75_0001),
            refusals: 0,
        }
    }

    pub fn receipted(&self) -> &BTreeMap<TxHash, Receipted> {
        &self.receipted
    }

    /// Transfers sent that have no receipt yet.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// Transfers `sender` signed (its next nonce); once the run has settled, every one of
    /// them has a receipt.
    pub fn sent_by(&self, sender: usize) -> u64 {
        self.next_nonce[sender]
    }

    /// Signs the next transfer of a sender with room in flight and sends it to a running
    /// validator; nothing if every sender is at its limit or no validator runs.
    pub async fn send(&mut self, cluster: &Cluster, now: Duration) {
        let start = self.draw.below(self.keys.len() as u64) as usize;
        let Some(sender) = (0..self.keys.len())
            .map(|i| (start + i) % self.keys.len())
            .find(|&s| self.in_flight_of(s) < IN_FLIGHT)
        else {
            return;
        };
        let nonce = self.next_nonce[sender];
        let to = recipient(self.draw.below(u64::from(RECIPIENTS)) as u8);
        let raw = self.keys[sender].sign_transaction(TxEip1559 {
            chain_id: crate::cluster::CHAIN_ID,
            nonce,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            value: U256::from(AMOUNT),
            ..TxEip1559::default()
        });
        let hash = alloy_primitives::keccak256(&raw);
        self.next_nonce[sender] += 1;
        self.submit(cluster, &raw).await;
        self.in_flight.insert(
            hash,
            InFlight {
                raw,
                sender,
                sent_at: now,
            },
        );
    }

    fn in_flight_of(&self, sender: usize) -> u64 {
        self.in_flight
            .values()
            .filter(|t| t.sender == sender)
            .count() as u64
    }

    async fn submit(&mut self, cluster: &Cluster, raw: &Bytes) {
        let running: Vec<NodeId> = NodeId::validators()
            .filter(|n| cluster.is_running(*n))
            .collect();
        if running.is_empty() {
            return;
        }
        let node = running[self.draw.below(running.len() as u64) as usize];
        let chain = cluster.chain(node).expect("running");
        match chain.submit(raw.clone()).await {
            Ok(_) | Err(AdmissionError::NonceTooLow { .. }) => {}
            Err(_) => self.refusals += 1,
        }
    }

    /// Looks up the receipts of what is in flight on `node`, then sends again what has waited
    /// too long.
    pub async fn poll(
        &mut self,
        cluster: &Cluster,
        node: NodeId,
        now: Duration,
    ) -> Result<(), Violation> {
        let Some(chain) = cluster.chain(node) else {
            return Ok(());
        };
        let hashes: Vec<TxHash> = self.in_flight.keys().copied().collect();
        for hash in hashes {
            let location = chain
                .transaction_location(&hash)
                .await
                .map_err(Violation::storage(node, "its transaction index"))?;
            if let Some(location) = location {
                let sender = self.in_flight.remove(&hash).expect("listed").sender;
                self.receipted.insert(hash, Receipted { location, sender });
            }
        }
        let stale: Vec<TxHash> = self
            .in_flight
            .iter()
            .filter(|(_, t)| now.saturating_sub(t.sent_at) >= RESEND_AFTER)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in stale {
            let raw = self.in_flight[&hash].raw.clone();
            self.submit(cluster, &raw).await;
            self.in_flight.get_mut(&hash).expect("listed").sent_at = now;
        }
        Ok(())
    }
}
