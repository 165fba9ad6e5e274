//! What must hold in every run, and what a broken one reports: the height, the nodes and the
//! values that differ.
//!
//! During the run, every running node's finalized tip is compared with what any node ever
//! finalized at that height ([`Tips`]). At the end, with every node up: the stored chains are
//! prefixes of one another block by block, each links to its parent; each node's state proves
//! to its tip's state root; each transaction that got a receipt is finalized exactly once and
//! still where it first was, on every node; balances and nonces add up to the transfers made.

use crate::{
    cluster::{ALLOCATION, Cluster, SimChain, node_key, senders},
    plan::NodeId,
    workload::{AMOUNT, RECIPIENTS, Receipted, Workload, recipient},
};
use alloy_primitives::U256;
use commonware_cryptography::Signer as _;
use std::{collections::BTreeMap, error::Error, time::Duration};
use trellis_chain::TxLocation;
use trellis_consensus::{Evidence, EvidenceError, validator_id};
use trellis_types::{BlockHash, Height, StateRoot, TxHash, ValidatorId};

/// A broken invariant.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    #[error("fork at height {height}: {a} finalized {a_hash}, {b} finalized {b_hash}")]
    Fork {
        height: Height,
        a: NodeId,
        a_hash: BlockHash,
        b: NodeId,
        b_hash: BlockHash,
    },
    #[error(
        "{node}: block {height} names parent {parent} at height {parent_height}, but its block {expected_height} is {expected}"
    )]
    BrokenChain {
        node: NodeId,
        height: Height,
        parent: BlockHash,
        parent_height: Height,
        expected_height: Height,
        expected: BlockHash,
    },
    #[error("{node}: its state after block {height} has root {computed}, the header says {header}")]
    StateRoot {
        node: NodeId,
        height: Height,
        computed: StateRoot,
        header: StateRoot,
    },
    #[error("{node}: transaction {tx} is finalized twice, in blocks {first} and {second}")]
    Duplicate {
        node: NodeId,
        tx: TxHash,
        first: Height,
        second: Height,
    },
    #[error("{node}: transaction {tx} in block {height} failed; every transfer should succeed")]
    Failed {
        node: NodeId,
        tx: TxHash,
        height: Height,
    },
    #[error("transaction {tx} got a receipt at {was:?}; {node} now has it at {now:?}")]
    ReceiptMoved {
        tx: TxHash,
        node: NodeId,
        was: TxLocation,
        now: Option<TxLocation>,
    },
    #[error("{node}: {what} is {got}, expected {expected} after the transfers that got receipts")]
    Balance {
        node: NodeId,
        what: String,
        got: U256,
        expected: U256,
    },
    #[error(
        "no recovery {bound:?} after the faults healed: {outstanding} transfers without a receipt; finalized heights {heights:?}"
    )]
    Stalled {
        bound: Duration,
        outstanding: usize,
        heights: Vec<(NodeId, Height)>,
    },
    #[error("{node} cannot read {what}: {source}")]
    Storage {
        node: NodeId,
        what: &'static str,
        source: Box<dyn Error + Send + Sync>,
    },
    #[error("{by} reported {accused} ({evidence}), but that validator followed the protocol")]
    FalseAccusation {
        by: NodeId,
        accused: String,
        evidence: String,
    },
    #[error(
        "{by} blocked {peer}, an honest node: it refused a message no honest node sends (one that did not decode or verify, or a vote conflicting with one it sent before)"
    )]
    HonestBlocked { by: NodeId, peer: NodeId },
    #[error("{by} reported a fault whose evidence does not hold: {error}")]
    BadEvidence { by: NodeId, error: EvidenceError },
    #[error("{node} sent {equivocations} conflicting votes and no node reported or blocked it")]
    Unnoticed { node: NodeId, equivocations: u64 },
    #[error("{node}: block {height} is missing below its finalized tip")]
    Missing { node: NodeId, height: Height },
    #[error("a task panicked: {0}")]
    Panic(String),
}

impl Violation {
    /// What a failed read of `node`'s `what` becomes.
    pub fn storage<E: Error + Send + Sync + 'static>(
        node: NodeId,
        what: &'static str,
    ) -> impl FnOnce(E) -> Violation {
        move |source| Violation::Storage {
            node,
            what,
            source: Box::new(source),
        }
    }
}

/// The block each height was first seen finalized with, and by whom.
#[derive(Default)]
pub struct Tips(BTreeMap<Height, (BlockHash, NodeId)>);

impl Tips {
    /// Records every running node's finalized tip; a different block at a height already seen
    /// is a fork.
    pub fn observe(&mut self, cluster: &Cluster) -> Result<(), Violation> {
        for (node, chain) in cluster.honest() {
            let (header, hash) = chain.latest();
            let (seen, by) = *self.0.entry(header.height).or_insert((hash, node));
            if seen != hash {
                return Err(Violation::Fork {
                    height: header.height,
                    a: by,
                    a_hash: seen,
                    b: node,
                    b_hash: hash,
                });
            }
        }
        Ok(())
    }
}

/// Every honest node's finalized height.
pub fn heights(cluster: &Cluster) -> Vec<(NodeId, Height)> {
    cluster
        .honest()
        .map(|(node, chain)| (node, chain.latest().0.height))
        .collect()
}

/// The end-of-run checks, with every node running and every transfer receipted. Returns the
/// longest honest chain's block hashes, from genesis.
pub async fn check_settled(
    cluster: &Cluster,
    workload: &Workload,
) -> Result<Vec<BlockHash>, Violation> {
    accusations_are_true(cluster)?;
    honest_nodes_never_blocked(cluster)?;
    let mut chains: Vec<(NodeId, Vec<BlockHash>)> = Vec::new();
    for (node, chain) in cluster.honest() {
        chains.push((node, chain_of(node, chain).await?));
    }
    same_prefixes(&chains)?;
    for (node, chain) in cluster.honest() {
        state_matches_header(node, chain).await?;
        finalized_once(node, chain, workload.receipted()).await?;
        balances_add_up(node, chain, workload).await?;
    }
    Ok(chains
        .into_iter()
        .map(|(_, hashes)| hashes)
        .max_by_key(Vec::len)
        .unwrap_or_default())
}

/// Below this many equivocations, none need be noticed: each needs a peer to get both votes
/// (over links that may lose them) while that view is still tracked.
const EQUIVOCATIONS_THAT_MUST_BE_SEEN: u64 = 5;

fn node_id(node: NodeId) -> ValidatorId {
    validator_id(&node_key(node).public_key())
}

/// Every report's evidence verifies on its own; only the byzantine validator is ever reported;
/// once it equivocated enough, some honest node noticed.
///
/// Noticing is a report with evidence or a block. A node keeps evidence only while the view
/// still holds the first of the two votes: once a view has its certificate, commonware keeps
/// just who voted, so a conflicting vote arriving then (late, over a slow link) gets its sender
/// blocked without evidence.
fn accusations_are_true(cluster: &Cluster) -> Result<(), Violation> {
    let accusations = cluster.accusations().all();
    let byzantine = NodeId::validators().find(|n| cluster.is_byzantine(*n));
    for accusation in &accusations {
        let bad = |error| Violation::BadEvidence {
            by: accusation.by,
            error,
        };
        // From its bytes alone, as `trellis verify-evidence` checks it.
        let evidence = Evidence::from_bytes(&accusation.evidence).map_err(bad)?;
        let validator = evidence.verify().map_err(bad)?;
        let accused = NodeId::validators().find(|n| node_id(*n) == validator);
        if accused.is_none() || accused != byzantine {
            return Err(Violation::FalseAccusation {
                by: accusation.by,
                accused: accused.map_or(validator.to_string(), |n| n.to_string()),
                evidence: evidence.to_string(),
            });
        }
    }
    if let (Some(node), Some(twist)) = (byzantine, cluster.twist()) {
        let equivocations = twist.misdeeds().equivocations;
        let blocked_by_honest = cluster
            .accusations()
            .blockers_of(node)
            .into_iter()
            .any(|by| !cluster.is_byzantine(by));
        if equivocations >= EQUIVOCATIONS_THAT_MUST_BE_SEEN
            && accusations.is_empty()
            && !blocked_by_honest
        {
            return Err(Violation::Unnoticed {
                node,
                equivocations,
            });
        }
    }
    Ok(())
}

/// No honest node ever blocked another: an honest node sends only what decodes and verifies,
/// and never, even after a crash or a power loss took back unsynced writes, a vote that
/// conflicts with one it sent before.
fn honest_nodes_never_blocked(cluster: &Cluster) -> Result<(), Violation> {
    let honest = |node: NodeId| !cluster.is_byzantine(node);
    match cluster
        .accusations()
        .blocks()
        .into_iter()
        .find(|(by, peer)| honest(*by) && honest(*peer))
    {
        Some((by, peer)) => Err(Violation::HonestBlocked { by, peer }),
        None => Ok(()),
    }
}

/// The hashes of `node`'s stored blocks from genesis, each checked to name the one before.
async fn chain_of(node: NodeId, chain: &SimChain) -> Result<Vec<BlockHash>, Violation> {
    let tip = chain.latest().0.height;
    let mut hashes: Vec<BlockHash> = Vec::with_capacity(tip.0 as usize + 1);
    for h in 0..=tip.0 {
        let block = stored_block(node, chain, Height(h)).await?.block;
        if let Some(&expected) = hashes.last() {
            let header = block.header();
            if header.parent != expected || header.height != Height(h) {
                return Err(Violation::BrokenChain {
                    node,
                    height: header.height,
                    parent: header.parent,
                    parent_height: Height(h.saturating_sub(1)),
                    expected_height: Height(h - 1),
                    expected,
                });
            }
        }
        hashes.push(block.hash());
    }
    Ok(hashes)
}

async fn stored_block(
    node: NodeId,
    chain: &SimChain,
    height: Height,
) -> Result<trellis_chain::StoredBlock, Violation> {
    chain
        .block(height)
        .await
        .map_err(Violation::storage(node, "its block store"))?
        .ok_or_else(|| Violation::Missing { node, height })
}

/// Any two nodes' chains agree up to the shorter one's tip.
fn same_prefixes(chains: &[(NodeId, Vec<BlockHash>)]) -> Result<(), Violation> {
    let Some((first, reference)) = chains.iter().max_by_key(|(_, c)| c.len()) else {
        return Ok(());
    };
    for (node, hashes) in chains {
        if let Some(h) = (0..hashes.len()).find(|&h| hashes[h] != reference[h]) {
            return Err(Violation::Fork {
                height: Height(h as u64),
                a: *first,
                a_hash: reference[h],
                b: *node,
                b_hash: hashes[h],
            });
        }
    }
    Ok(())
}

/// The node's state, as its tables prove it, has its tip header's root.
async fn state_matches_header(node: NodeId, chain: &SimChain) -> Result<(), Violation> {
    let (header, _, proof) = chain
        .prove(&senders()[0].address(), &[])
        .await
        .map_err(Violation::storage(node, "a proof of its state"))?;
    let computed = proof.table_roots.state_root();
    if computed != header.state_root {
        return Err(Violation::StateRoot {
            node,
            height: header.height,
            computed,
            header: header.state_root,
        });
    }
    Ok(())
}

/// No transaction is in two blocks, every one succeeded, and each receipted one is where its
/// receipt first put it.
async fn finalized_once(
    node: NodeId,
    chain: &SimChain,
    receipted: &BTreeMap<TxHash, Receipted>,
) -> Result<(), Violation> {
    let mut seen: BTreeMap<TxHash, Height> = BTreeMap::new();
    for h in 1..=chain.latest().0.height.0 {
        let stored = stored_block(node, chain, Height(h)).await?;
        for (raw, receipt) in stored.block.transactions().iter().zip(&stored.receipts) {
            let tx = alloy_primitives::keccak256(raw);
            if let Some(first) = seen.insert(tx, Height(h)) {
                return Err(Violation::Duplicate {
                    node,
                    tx,
                    first,
                    second: Height(h),
                });
            }
            if !receipt.envelope.status() {
                return Err(Violation::Failed {
                    node,
                    tx,
                    height: Height(h),
                });
            }
        }
    }
    for (tx, was) in receipted {
        let now = chain
            .transaction_location(tx)
            .await
            .map_err(Violation::storage(node, "its transaction index"))?;
        if now != Some(was.location) {
            return Err(Violation::ReceiptMoved {
                tx: *tx,
                node,
                was: was.location,
                now,
            });
        }
    }
    Ok(())
}

/// Each sender's nonce counts its transfers and its balance paid for them; the recipients hold
/// all of it (gas is free on the simulated chain).
async fn balances_add_up(
    node: NodeId,
    chain: &SimChain,
    workload: &Workload,
) -> Result<(), Violation> {
    let mut total_sent = U256::ZERO;
    for (i, key) in senders().iter().enumerate() {
        let account = chain
            .account(&key.address())
            .await
            .map_err(Violation::storage(node, "an account"))?;
        let (nonce, balance) = account.map_or((0, U256::ZERO), |a| (a.nonce, a.balance));
        let sent = workload.sent_by(i);
        total_sent += U256::from(sent * AMOUNT);
        let expected_balance = U256::from(ALLOCATION) - U256::from(sent * AMOUNT);
        for (what, got, expected) in [
            ("nonce", U256::from(nonce), U256::from(sent)),
            ("balance", balance, expected_balance),
        ] {
            if got != expected {
                return Err(Violation::Balance {
                    node,
                    what: format!("the {what} of {}", key.address()),
                    got,
                    expected,
                });
            }
        }
    }
    let mut received = U256::ZERO;
    for i in 0..RECIPIENTS {
        let account = chain
            .account(&recipient(i))
            .await
            .map_err(Violation::storage(node, "an account"))?;
        received += account.map_or(U256::ZERO, |a| a.balance);
    }
    if received != total_sent {
        return Err(Violation::Balance {
            node,
            what: "what the recipients hold".into(),
            got: received,
            expected: total_sent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    fn hash(byte: u8) -> BlockHash {
        BlockHash(B256::repeat_byte(byte))
    }

    #[test]
    fn chains_that_agree_up_to_the_shorter_tip_pass() {
        let long = vec![hash(0), hash(1), hash(2)];
        let short = vec![hash(0), hash(1)];
        assert!(same_prefixes(&[(NodeId(0), long), (NodeId(4), short)]).is_ok());
    }

    #[test]
    fn a_different_block_below_the_shorter_tip_is_a_fork_naming_both_nodes() {
        let long = vec![hash(0), hash(1), hash(2)];
        let forked = vec![hash(0), hash(9)];
        let found = same_prefixes(&[(NodeId(0), long), (NodeId(2), forked)]);
        match found {
            Err(Violation::Fork {
                height,
                a,
                a_hash,
                b,
                b_hash,
            }) => {
                assert_eq!((height, a, b), (Height(1), NodeId(0), NodeId(2)));
                assert_eq!((a_hash, b_hash), (hash(1), hash(9)));
            }
            other => panic!("expected a fork, got {other:?}"),
        }
        let message = same_prefixes(&[
            (NodeId(0), vec![hash(0), hash(1)]),
            (NodeId(2), vec![hash(0), hash(9)]),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            message.contains("height 1") && message.contains("validator 2"),
            "{message}"
        );
    }
}
