//! The real ledger under consensus, in the deterministic runtime with simulated p2p: validators
//! order blocks of signed transfers, execute them on the EVM, and agree on every block, state
//! root and balance. A validator restarted from its storage continues from where it stopped.
//! The chain is a consortium's: every sender is registered, so every block runs the rules'
//! checks.

mod sim;

use alloy_consensus::TxEip1559;
use alloy_primitives::{TxKind, U256};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, Supervisor as _, deterministic};
use std::{collections::BTreeMap, time::Duration};
use trellis_chain::{Chain, ChainConfig};
use trellis_consensus::{Built, Ledger as _, Proposal, validator_id};
use trellis_governance::{
    AccountStatus, Refusal,
    contracts::{Action, abi::ITrellisGovernance as Gov},
};
use trellis_mempool::AdmissionError;
use trellis_types::{BlockLimits, Bytes, ClaimedSenders, Epoch, Height, Timestamp, View};

use sim::*;
#[test]
fn four_validators_execute_the_same_30_blocks_of_transfers() {
    runner(11).start(|context| async move {
        let txs = transfers(10);
        let chains = start_chains(&context, &[0, 1, 2, 3], &txs).await;
        wait_for_height(&context, &chains, 30).await;
        let included = assert_same_blocks(&chains, 30).await;
        assert!(included <= txs.len());
        // Everything submitted is finalized well before height 30 (a block holds them all).
        assert_eq!(included, txs.len(), "every transfer finalized exactly once");
        let roots: BTreeMap<_, _> = chains
            .iter()
            .map(|c| (c.latest().0.state_root, c.latest().0.height))
            .collect();
        assert_eq!(roots.len(), 1, "the validators reached different states");
        for chain in &chains {
            assert_balances(chain, 10).await;
            assert!(
                chain.pending_count() == 0,
                "included transactions leave the pool"
            );
        }
    });
}

#[test]
fn transactions_sent_to_one_validator_reach_every_leader() {
    runner(15).start(|context| async move {
        let chains = start_chains(&context, &[0, 1, 2, 3], &[]).await;
        // Submitted in rounds to validator 0 only, while the chain runs.
        let txs = transfers(8);
        for round in txs.chunks(SENDERS as usize) {
            submit_all(&chains[0], round).await;
            context.sleep(Duration::from_millis(300)).await;
        }
        let mut height = 1;
        let mut included = 0;
        let mut proposers = std::collections::BTreeSet::new();
        while included < txs.len() {
            wait_for_height(&context, &chains, height).await;
            let block = chains[1].block(Height(height)).await.unwrap().unwrap();
            if !block.block.transactions().is_empty() {
                proposers.insert(block.block.header().proposer);
            }
            included += block.block.transactions().len();
            height += 1;
        }
        assert_eq!(included, txs.len());
        assert!(
            proposers.len() > 1,
            "only one validator proposed transactions: gossip did not reach the others"
        );
        wait_for_height(&context, &chains, height).await;
        for chain in &chains {
            assert_balances(chain, 8).await;
            assert!(
                chain.pending_count() == 0,
                "gossiped copies leave every pool"
            );
        }
    });
}

#[test]
fn with_one_validator_down_the_others_still_finalize_transfers() {
    runner(12).start(|context| async move {
        let txs = transfers(5);
        let chains = start_chains(&context, &[0, 1, 2], &txs).await;
        wait_for_height(&context, &chains, 10).await;
        assert_eq!(assert_same_blocks(&chains, 10).await, txs.len());
        for chain in &chains {
            assert_balances(chain, 5).await;
        }
    });
}

#[test]
fn a_restarted_chain_continues_from_its_stored_blocks() {
    // First run: four validators finalize the transfers; then everything stops.
    let (state, checkpoint) = runner(13).start_and_recover(|context| async move {
        let txs = transfers(3);
        let chains = start_chains(&context, &[0, 1, 2, 3], &txs).await;
        wait_for_height(&context, &chains, 5).await;
        // Stop at a height every validator has finalized and stored.
        let (header, hash) = chains[0].latest();
        (header.height, hash, header.state_root)
    });
    // Second run on the same storage: the chain reopens at least where it was, with the same
    // block there, and its durable state (not replayed from genesis) has every transfer.
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let chain = open_chain(&context, 0).await;
        let (header, _) = chain.latest();
        assert!(header.height >= state.0, "height went back after restart");
        let stored = chain.block(state.0).await.unwrap().unwrap();
        assert_eq!(stored.block.hash(), state.1);
        assert_eq!(stored.block.header().state_root, state.2);
        assert_balances(&chain, 3).await;
        let mut indexed = 0;
        for h in 1..=state.0.get() {
            let stored = chain.block(Height(h)).await.unwrap().unwrap();
            for receipt in &stored.receipts {
                let location = chain
                    .transaction_location(&receipt.tx_hash)
                    .await
                    .unwrap()
                    .expect("finalized transactions are indexed");
                assert_eq!(location.height, Height(h));
                indexed += 1;
            }
        }
        assert_eq!(
            indexed,
            3 * SENDERS,
            "every transfer is indexed where it was finalized"
        );
    });
}

#[test]
fn the_genesis_block_computed_in_memory_is_the_one_a_chain_stores() {
    let stored = runner(15).start(|context| async move {
        let chain = open_chain(&context, 0).await;
        let stored = chain.block(Height::GENESIS).await.unwrap().unwrap();
        assert_eq!(stored.block, chain.genesis_block());
        stored.block
    });
    // What `trellis init` prints: no data directory, its own in-memory runtime.
    assert_eq!(genesis().initial_block(), stored);
}

#[test]
fn a_data_directory_of_another_chain_is_refused() {
    let (_, checkpoint) = runner(14).start_and_recover(|context| async move {
        open_chain(&context, 0).await;
    });
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let mut other = genesis();
        other.chain_id += 1;
        let result = Chain::open(
            context.child("chain"),
            ChainConfig {
                genesis: other,
                limits: BlockLimits::default(),
                partition_prefix: "v0-chain".into(),
                state_cache_bytes: STATE_CACHE_BYTES,
                faults: Default::default(),
                state_keep_blocks: None,
            },
        )
        .await;
        let error = result
            .err()
            .expect("another genesis is refused")
            .to_string();
        assert!(error.contains("holds the chain with genesis"), "{error}");
    });
}

#[test]
fn a_flood_beyond_the_admission_queue_is_refused_as_busy_and_admitted_when_resent() {
    runner(16).start(|context| async move {
        let chain = open_chain(&context, 0).await;
        // Submitted all at once, before the admission thread gets to run any of them.
        let txs = transfers(410);
        let answers =
            futures::future::join_all(txs.iter().map(|tx| chain.submit(tx.clone()))).await;
        let mut busy = Vec::new();
        for (tx, answer) in txs.iter().zip(answers) {
            match answer {
                Ok(_) => {}
                Err(AdmissionError::Busy { .. }) => busy.push(tx.clone()),
                Err(error) => panic!("a valid transfer refused: {error}"),
            }
        }
        assert!(
            !busy.is_empty(),
            "{} transactions at once overflow a queue of 4,096",
            txs.len()
        );
        // Nothing was lost: the refused ones come in when sent again.
        submit_all(&chain, &busy).await;
        assert_eq!(chain.pending_count(), txs.len());
    });
}

#[test]
fn a_burst_of_single_submissions_reaches_every_peer_pool() {
    runner(17).start(|context| async move {
        let oracle = network(&context, &[0, 1, 2, 3]).await;
        let mut chains = Vec::new();
        for i in 0..N {
            let chain = open_chain(&context, i).await;
            start_gossip(&context, &oracle, i, &chain).await;
            chains.push(chain);
        }
        // No consensus runs, so nothing leaves a pool. Each sender's client submits its
        // transactions one by one, all senders at once: more transactions a second than the
        // channel's quota of messages, which gossip must batch to reach every peer.
        let txs = transfers(200);
        let clients = (0..SENDERS as usize).map(|sender| {
            let own: Vec<Bytes> = txs
                .iter()
                .skip(sender)
                .step_by(SENDERS as usize)
                .cloned()
                .collect();
            let chain = chains[0].clone();
            async move { submit_all(&chain, &own).await }
        });
        futures::future::join_all(clients).await;
        context.sleep(Duration::from_secs(2)).await;
        for (i, chain) in chains.iter().enumerate() {
            assert_eq!(
                chain.pending_count(),
                txs.len(),
                "validator {i} holds every transaction submitted to validator 0"
            );
        }
    });
}

/// A block finalized elsewhere, applied by chains whose pools never saw its transactions: with
/// its proposer's claim of the senders (certified by the header's senders root), with a wrong
/// claim (refused, the senders recovered instead), and with none. Each reaches the proposer's
/// state and receipts.
#[test]
fn a_finalized_block_applies_with_its_claimed_senders_and_despite_a_wrong_claim() {
    runner(11).start(|context| async move {
        let proposer = open_chain(&context, 0).await;
        submit_all(&proposer, &transfers(3)).await;
        let proposal = Proposal {
            epoch: Epoch(0),
            view: View(1),
            parent_view: View(0),
            proposer: validator_id(&validator_keys()[0].public_key()),
            timestamp: Timestamp(1),
        };
        let Built { block, senders } = proposer
            .propose(vec![proposer.genesis_block()], proposal)
            .await
            .expect("the proposer builds a block");
        assert_eq!(block.transactions().len(), 3 * SENDERS as usize);
        assert!(senders.covers(&block));
        let prepared = proposer.prepare(&block, &senders).await;
        proposer.finalize(block.clone(), prepared).await;
        assert_balances(&proposer, 3).await;

        // Every position names another sender, yet the nonces line up and the state would end
        // the same: only the senders root tells.
        let wrong = ClaimedSenders::new(senders.as_slice().iter().rev().copied().collect());
        assert!(
            senders
                .as_slice()
                .iter()
                .zip(wrong.as_slice())
                .all(|(a, b)| a != b)
        );
        for (index, claim) in [(1, senders), (2, wrong), (3, ClaimedSenders::none())] {
            let follower = open_chain(&context, index).await;
            let prepared = follower.prepare(&block, &claim).await;
            follower.finalize(block.clone(), prepared).await;
            assert_eq!(follower.latest(), proposer.latest(), "follower {index}");
            assert_balances(&follower, 3).await;
            // The same receipts, each naming the sender that signed it.
            assert_eq!(
                follower.block(Height(1)).await.unwrap(),
                proposer.block(Height(1)).await.unwrap()
            );
        }
    });
}

#[test]
fn a_freeze_drops_the_frozen_accounts_pending_transactions_from_every_pool() {
    use alloy_sol_types::SolCall;
    runner(17).start(|context| async move {
        let chains = start_chains(&context, &[0, 1, 2, 3], &[]).await;
        let keys = senders();
        let (g1, g2, suspect) = (&keys[0], &keys[1], &keys[9]);
        let pay = |nonce| {
            suspect.sign_transaction(TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: 21_000,
                to: TxKind::Call(recipient(0)),
                value: U256::from(1),
                ..TxEip1559::default()
            })
        };
        // Nonce 1 while the account is at 0: it waits in every pool for nonce 0.
        let waiting = chains[0].submit(pay(1)).await.unwrap();
        for chain in &chains[1..] {
            chain.submit(pay(1)).await.unwrap();
        }
        let freeze = Action::SetAccountStatus {
            account: suspect.address(),
            status: AccountStatus::Frozen,
        };
        let propose = Gov::proposeCall {
            action: freeze.encode(),
            votingBlocks: 100,
        };
        submit_all(&chains[0], &[governance_tx(g1, 0, propose.abi_encode())]).await;
        let proposed = chains[0].latest().0.height.get();
        wait_for_height(&context, &chains, proposed + 3).await;
        assert!(
            chains
                .iter()
                .all(|c| c.pending_transaction(&waiting).is_some()),
            "one governor of three does not freeze anyone"
        );

        let vote = Gov::voteCall {
            id: 1,
            approve: true,
        };
        submit_all(&chains[1], &[governance_tx(g2, 0, vote.abi_encode())]).await;
        let passed = block_passing_a_proposal(&context, &chains[1], proposed).await;
        wait_for_height(&context, &chains, passed + 1).await;
        for (i, chain) in chains.iter().enumerate() {
            assert!(
                chain.pending_transaction(&waiting).is_none(),
                "validator {i} still holds the frozen account's transaction"
            );
        }
        assert_eq!(
            chains[2].submit(pay(0)).await,
            Err(AdmissionError::NotPermitted(Refusal::Stopped {
                account: suspect.address(),
                status: AccountStatus::Frozen,
                since: Height(passed),
                by: 1,
                compromised_since: None,
            }))
        );
    });
}
