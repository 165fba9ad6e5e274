//! What two nodes say first: which chain they are on. Every node sends a summary of its genesis
//! to every connected peer every 2 s (new connections come and go); a peer whose
//! summary differs is named in an error saying which values differ, and blocked. Every block
//! of this node, for whatever reason, is preceded by this node's summary sent to the peer and
//! takes effect two seconds later, so that both sides can name the difference whichever of
//! them noticed first (see [`AnswerThenBlock`]).
//!
//! Without it, a member who started from a different genesis (another chain id, timestamp,
//! gas rule, validator set or allocation) would only see its votes ignored: every consensus
//! signature is domain-separated by the genesis hash, so nothing of the other chain verifies,
//! but nothing says why either.

use alloy_primitives::keccak256;
use commonware_actor::Feedback;
use commonware_p2p::{BlockedSubscription, Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeSet, VecDeque},
    fmt,
    time::{Duration, SystemTime},
};
use tokio::sync::mpsc;
use tracing::{error, warn};
use trellis_chain::Genesis;
use trellis_consensus::PublicKey;
use trellis_types::BlockHash;

/// How often the summary is sent to every connected peer (a few hundred bytes each).
const EVERY: Duration = Duration::from_secs(2);
/// How long a peer to be blocked stays connected after it was sent this node's summary, so
/// that the summary, and the peer's own in answer, arrive on a loaded host before the
/// connection closes.
const BEFORE_BLOCKING: Duration = Duration::from_secs(2);
/// How long a blocked peer's connections are refused (a restart of this node forgets it).
pub const BLOCK_FOR: Duration = Duration::from_secs(3_600);
/// Blocks waiting for their summary to arrive, at most; more are blocked at once.
const MAX_PENDING_BLOCKS: usize = 1_024;
/// A summary larger than this is not one (a few hundred validators fit).
const MAX_SUMMARY_BYTES: usize = 64 << 10;

/// The genesis as peers compare it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    pub chain_id: u64,
    pub genesis_hash: String,
    pub timestamp: u64,
    pub block_gas_limit: u64,
    pub gas_price: u64,
    pub validators: Vec<String>,
    /// keccak-256 over every (address, balance) of the initial allocation, in address order.
    pub alloc_hash: String,
}

/// One value two summaries disagree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub what: &'static str,
    pub ours: String,
    pub theirs: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: ours {}, theirs {}",
            self.what, self.ours, self.theirs
        )
    }
}

impl ChainSummary {
    /// The summary of `genesis`, whose block 0 hashes to `genesis_hash` (the chain has it;
    /// computing it again means building the genesis state, which takes seconds).
    pub fn of(genesis: &Genesis, genesis_hash: BlockHash) -> Self {
        let mut alloc = Vec::new();
        for (address, balance) in &genesis.alloc {
            alloc.extend_from_slice(address.as_slice());
            alloc.extend_from_slice(&balance.to_be_bytes::<32>());
        }
        Self {
            chain_id: genesis.chain_id,
            genesis_hash: genesis_hash.to_string(),
            timestamp: genesis.timestamp,
            block_gas_limit: genesis.block_gas_limit,
            gas_price: genesis.gas_price,
            validators: genesis
                .validators
                .iter()
                .map(|v| format!("{v:?}"))
                .collect(),
            alloc_hash: keccak256(&alloc).to_string(),
        }
    }

    /// Every value `theirs` differs on, most telling first.
    pub fn differences(&self, theirs: &Self) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut differ = |what, ours: String, other: String| {
            if ours != other {
                out.push(Difference {
                    what,
                    ours,
                    theirs: other,
                });
            }
        };
        differ(
            "chain id",
            self.chain_id.to_string(),
            theirs.chain_id.to_string(),
        );
        let ours: BTreeSet<&String> = self.validators.iter().collect();
        let other: BTreeSet<&String> = theirs.validators.iter().collect();
        let only = |a: &BTreeSet<&String>, b: &BTreeSet<&String>| {
            a.difference(b)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if ours != other || self.validators != theirs.validators {
            differ(
                "validator set",
                format!(
                    "{} listed, only ours: [{}]",
                    ours.len(),
                    only(&ours, &other)
                ),
                format!(
                    "{} listed, only theirs: [{}]",
                    other.len(),
                    only(&other, &ours)
                ),
            );
        }
        differ(
            "timestamp",
            self.timestamp.to_string(),
            theirs.timestamp.to_string(),
        );
        differ(
            "block gas limit",
            self.block_gas_limit.to_string(),
            theirs.block_gas_limit.to_string(),
        );
        differ(
            "gas price",
            self.gas_price.to_string(),
            theirs.gas_price.to_string(),
        );
        differ(
            "initial balances (alloc hash)",
            self.alloc_hash.clone(),
            theirs.alloc_hash.clone(),
        );
        differ(
            "genesis hash",
            self.genesis_hash.clone(),
            theirs.genesis_hash.clone(),
        );
        out
    }
}

/// Blocks a peer only after sending it this node's summary, so that a peer blocked for any
/// reason (consensus blocks one whose signatures do not verify, which is every message of a
/// peer on another genesis, often before the periodic summary went out) learns which chain
/// this node is on and can name the difference. Every block requested of consensus, marshal
/// and hello goes through it.
#[derive(Clone)]
pub struct AnswerThenBlock<B> {
    requests: mpsc::Sender<PublicKey>,
    inner: B,
}

impl<B: Blocker<PublicKey = PublicKey>> Blocker for AnswerThenBlock<B> {
    type PublicKey = PublicKey;

    fn block(&mut self, peer: PublicKey) -> Feedback {
        match self.requests.try_send(peer) {
            Ok(()) => Feedback::Ok,
            // More peers to block at once than ever expected: block at once, unanswered,
            // rather than queue without bound or let one through.
            Err(
                mpsc::error::TrySendError::Full(peer) | mpsc::error::TrySendError::Closed(peer),
            ) => self.inner.block(peer),
        }
    }

    fn blocked(&mut self) -> BlockedSubscription<PublicKey> {
        self.inner.blocked()
    }
}

/// Starts sending this node's summary and checking its peers'; returns the blocker every other
/// part of the node is to use.
pub fn start<E, S, R, B>(
    context: E,
    summary: ChainSummary,
    (sender, mut receiver): (S, R),
    blocker: B,
) -> AnswerThenBlock<B>
where
    E: Spawner + Clock,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let message = serde_json::to_vec(&summary).expect("a summary serializes");
    let (requests, queue) = mpsc::channel(MAX_PENDING_BLOCKS);
    let answer_then_block = AnswerThenBlock {
        requests,
        inner: blocker.clone(),
    };
    context
        .child("hello_out")
        .spawn(move |context| speak(context, message, sender, queue, blocker));
    let mut blocker = answer_then_block.clone();
    context.child("hello_in").spawn(move |_| async move {
        while let Ok((peer, bytes)) = receiver.recv().await {
            let theirs: Option<ChainSummary> = (bytes.len() <= MAX_SUMMARY_BYTES)
                .then(|| serde_json::from_slice(bytes.as_ref()).ok())
                .flatten();
            let Some(theirs) = theirs else {
                error!(?peer, "a peer sent a chain summary that does not decode; blocking it");
                blocker.block(peer);
                continue;
            };
            let differences = summary.differences(&theirs);
            if !differences.is_empty() {
                let list: Vec<String> = differences.iter().map(ToString::to_string).collect();
                error!(
                    ?peer,
                    differences = %list.join("; "),
                    "a peer runs another chain (its genesis differs from ours); blocking it: compare the genesis files"
                );
                blocker.block(peer);
            }
        }
    });
    answer_then_block
}

/// The one owner of outgoing summaries and of blocks waiting for their answer to arrive: sends
/// the summary to all every `EVERY`, and to a peer to be blocked at once, blocking it
/// `BEFORE_BLOCKING` later.
async fn speak<E, S, B>(
    context: E,
    message: Vec<u8>,
    mut sender: S,
    mut queue: mpsc::Receiver<PublicKey>,
    mut blocker: B,
) where
    E: Clock,
    S: Sender<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let mut next_round = context.current();
    // Deadlines are `BEFORE_BLOCKING` after arrival, so the queue stays in deadline order.
    let mut waiting: VecDeque<(SystemTime, PublicKey)> = VecDeque::new();
    let mut pending: BTreeSet<PublicKey> = BTreeSet::new();
    loop {
        let next_block = waiting.front().map(|(at, _)| *at);
        tokio::select! {
            () = context.sleep_until(next_round) => {
                let _ = sender.send(Recipients::All, message.clone(), false);
                next_round = context.current() + EVERY;
            }
            () = context.sleep_until(next_block.unwrap_or(next_round)), if next_block.is_some() => {
                let (_, peer) = waiting.pop_front().expect("a deadline was due");
                pending.remove(&peer);
                warn!(?peer, minutes = BLOCK_FOR.as_secs() / 60, "blocked a peer: disconnected, its connections refused (the reason is logged above)");
                blocker.block(peer);
            }
            peer = queue.recv() => {
                let Some(peer) = peer else { return };
                if pending.insert(peer.clone()) {
                    let _ = sender.send(Recipients::One(peer.clone()), message.clone(), true);
                    waiting.push_back((context.current() + BEFORE_BLOCKING, peer));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, U256};
    use std::collections::BTreeMap;
    use trellis_types::ValidatorId;

    fn genesis() -> Genesis {
        Genesis {
            founders: Default::default(),
            epoch_length: trellis_governance::EpochLength::DEFAULT,
            chain_id: 7,
            timestamp: 0,
            block_gas_limit: 30_000_000,
            gas_price: 0,
            validators: vec![ValidatorId([1; 32]), ValidatorId([2; 32])],
            full_nodes: vec![],
            alloc: BTreeMap::from([(Address::repeat_byte(1), U256::from(5))]),
        }
    }

    #[test]
    fn names_every_value_that_differs() {
        let summary = |g: &Genesis| ChainSummary::of(g, g.initial_block().hash());
        let ours = summary(&genesis());
        assert!(ours.differences(&ours).is_empty());
        let mut other = genesis();
        other.chain_id = 8;
        other.validators[1] = ValidatorId([3; 32]);
        other.alloc.insert(Address::repeat_byte(2), U256::from(1));
        let found: Vec<&str> = ours
            .differences(&summary(&other))
            .iter()
            .map(|d| d.what)
            .collect();
        assert_eq!(
            found,
            [
                "chain id",
                "validator set",
                "initial balances (alloc hash)",
                "genesis hash"
            ]
        );
        let text = ours.differences(&summary(&other))[0].to_string();
        assert_eq!(text, "chain id: ours 7, theirs 8");
    }
}
