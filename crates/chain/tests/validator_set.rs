//! The consortium changes its validators by vote, and the chain keeps finalizing through the
//! change: a validator added by a passed proposal catches up from genesis and proposes blocks
//! from the next epoch on; a removed one proposes nothing after its last epoch. Real ledgers,
//! simulated network, deterministic runtime.

mod sim;

use commonware_cryptography::{Signer as _, ed25519};
use commonware_runtime::Runner as _;
use sim::*;
use std::num::NonZeroU64;
use trellis_consensus::validator_id;
use trellis_governance::{EpochLength, contracts::Action};
use trellis_types::{Height, ValidatorId};

const LENGTH: EpochLength = EpochLength(NonZeroU64::new(10).unwrap());

fn key(index: usize) -> ValidatorId {
    validator_id(&ed25519::PrivateKey::from_seed(index as u64).public_key())
}

/// The proposers of the blocks `from..=to` of `chain`.
async fn proposers(chain: &TestChain, from: u64, to: u64) -> Vec<ValidatorId> {
    let mut keys = Vec::new();
    for height in from..=to {
        let block = chain.block(Height(height)).await.unwrap().unwrap();
        keys.push(block.block.header().proposer);
    }
    keys
}

#[test]
fn a_validator_voted_in_joins_at_the_next_epoch_and_one_voted_out_leaves() {
    runner(21).start(|context| async move {
        let newcomer = N;
        let all = [0, 1, 2, 3, newcomer];
        let oracle = network(&context, &all).await;
        let mut chains = Vec::new();
        for i in all {
            chains.push(open_chain_on(&context, i, genesis_with(LENGTH)).await);
        }
        for (i, chain) in chains.iter().enumerate() {
            spawn_validator(&context, &oracle, i, chain.clone()).await;
        }
        let (validators, joiner) = (&chains[..N], &chains[newcomer]);

        let add = Action::AddValidator {
            key: key(newcomer),
            p2p: "127.0.0.1:30304".parse().unwrap(),
            operator: None,
        };
        let passed = pass(&context, validators, add, 0).await;
        let joins = LENGTH.next_epoch(Height(passed));

        // Two epochs later every chain, the newcomer's too, holds the same blocks, and the
        // newcomer has led some since it joined.
        let first = joins.0 * LENGTH.0.get();
        let until = first + 2 * LENGTH.0.get();
        wait_for_height(&context, &chains, until).await;
        let before = proposers(joiner, 1, first - 1).await;
        assert!(!before.contains(&key(newcomer)), "it led before its epoch");
        let after = proposers(joiner, first, until).await;
        assert!(
            after.contains(&key(newcomer)),
            "the newcomer never led a block in epochs {} and {}",
            joins.0,
            joins.0 + 1
        );
        assert_eq!(after, proposers(&validators[2], first, until).await);

        // Validator 0 is voted out; the rest, the newcomer included, carry on.
        let remove = Action::RemoveValidator { key: key(0) };
        let rest = [
            chains[1].clone(),
            chains[2].clone(),
            chains[3].clone(),
            joiner.clone(),
        ];
        let passed = pass(&context, &rest, remove, 1).await;
        let leaves = LENGTH.next_epoch(Height(passed));
        let first = leaves.0 * LENGTH.0.get();
        let until = first + 2 * LENGTH.0.get();
        wait_for_height(&context, &rest, until).await;
        let after = proposers(&rest[0], first, until).await;
        assert!(!after.contains(&key(0)), "a removed validator led a block");
        assert!(after.contains(&key(newcomer)));
        let tip = rest[0].latest().0.height.get();
        assert!(
            chains[0].latest().0.height.get() < tip,
            "the removed validator's node still follows the chain"
        );
    });
}

/// The four validators' chains from a genesis with epochs of [`LENGTH`], on `oracle`.
async fn start_four(context: &commonware_runtime::deterministic::Context) -> Vec<TestChain> {
    let all = [0, 1, 2, 3];
    let oracle = network(context, &all).await;
    let mut chains = Vec::new();
    for i in all {
        chains.push(open_chain_on(context, i, genesis_with(LENGTH)).await);
    }
    for (i, chain) in chains.iter().enumerate() {
        spawn_validator(context, &oracle, i, chain.clone()).await;
    }
    chains
}

#[test]
fn validators_restarted_in_a_later_epoch_resume_it_and_go_on() {
    let (reached, checkpoint) = runner(22).start_and_recover(|context| async move {
        let chains = start_four(&context).await;
        wait_for_height(&context, &chains, 3 * LENGTH.0.get() + 5).await;
        let lowest = chains.iter().map(|c| c.latest().0.height).min().unwrap();
        lowest.get()
    });
    commonware_runtime::deterministic::Runner::from(checkpoint).start(|context| async move {
        // Every validator reopens in the epoch after its last applied block, from that
        // epoch's first block, and the four go on together.
        let chains = start_four(&context).await;
        let target = reached + 3 * LENGTH.0.get();
        wait_for_height(&context, &chains, target).await;
        assert_same_blocks(&chains, target).await;
        let mut proposers = std::collections::BTreeSet::new();
        for height in reached + 1..=target {
            let block = chains[0].block(Height(height)).await.unwrap().unwrap();
            let header = block.block.header();
            assert_eq!(header.epoch, LENGTH.epoch_of(Height(height)));
            proposers.insert(header.proposer);
        }
        assert_eq!(
            proposers.len(),
            N,
            "every validator leads again after the restart"
        );
    });
}
