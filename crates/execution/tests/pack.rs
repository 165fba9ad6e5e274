//! Packing a block from candidates, as a proposer does: what cannot run is left out without a
//! place, the block fills by the gas transactions use, and the outcome is exactly that of
//! executing the packed list, as every other validator will.

mod common;

use alloy_primitives::{Address, Bytes, U256};
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::{ExecutionConfig, Packed, SkipReason};
use trellis_types::{RecoveredTx, transaction};

fn recovered(raw: &[Bytes]) -> Vec<RecoveredTx> {
    raw.iter()
        .map(|tx| transaction::decode(tx.clone()).expect("a valid transaction"))
        .collect()
}

fn pack(chain: &TestChain, candidates: &[Bytes]) -> Packed {
    chain
        .executor
        .pack(&chain.context(), &chain.store, &recovered(candidates))
        .expect("block packs")
}

#[test]
fn candidates_that_cannot_run_give_up_their_places() {
    let keys: Vec<AccountKey> = (1..=2).map(AccountKey::from_seed).collect();
    let [alice, bob] = [&keys[0], &keys[1]];
    let mut config = ExecutionConfig::new(CHAIN_ID);
    config.block_gas_limit = 1_030_000;
    let chain = TestChain::with_config(config, &[alice, bob]);
    let to = Address::repeat_byte(3);
    let candidates = [
        transfer(alice, 0, to, U256::from(1)),
        transfer(bob, 7, to, U256::from(1)), // nonce too high
        tx1559_priced(bob, 0, to, U256::ZERO, 2_000_000, 0, 0), // above the block gas limit
        transfer(bob, 0, to, U256::from(2)),
        transfer(alice, 1, to, U256::from(3)), // 1M gas limit: more than is left
        legacy(alice, 0, to, U256::from(4), Some(CHAIN_ID)), // nonce too low: alice's 0 ran
    ];
    let Packed {
        transactions,
        outcome,
    } = pack(&chain, &candidates);

    let left_out: Vec<(usize, &SkipReason)> = outcome
        .skipped
        .iter()
        .map(|s| (s.index, &s.reason))
        .collect();
    assert!(matches!(left_out[0], (1, SkipReason::NonceTooHigh { .. })));
    assert!(matches!(
        left_out[1],
        (2, SkipReason::GasLimitAboveBlockLimit { .. })
    ));
    assert!(matches!(
        left_out[2],
        (4, SkipReason::BlockGasExhausted { .. })
    ));
    assert!(matches!(left_out[3], (5, SkipReason::NonceTooLow { .. })));
    assert_eq!(left_out.len(), 4);
    let packed: Vec<Bytes> = transactions.iter().map(|tx| tx.raw().clone()).collect();
    assert_eq!(packed, [candidates[0].clone(), candidates[3].clone()]);
    let places: Vec<usize> = outcome.receipts.iter().map(|r| r.index).collect();
    assert_eq!(places, [0, 1], "only executed transactions take places");

    let listed = chain.execute(&packed);
    assert!(listed.skipped.is_empty(), "{:?}", listed.skipped);
    assert_eq!(
        listed,
        pack(&chain, &packed).outcome,
        "packing a packed list leaves it as it is"
    );
    assert_eq!(listed.receipts, outcome.receipts);
    assert_eq!(listed.changes, outcome.changes);
    assert_eq!(listed.transactions_root, outcome.transactions_root);
    assert_eq!(listed.receipts_root, outcome.receipts_root);
    assert_eq!(listed.gas_used, outcome.gas_used);
}

#[test]
fn a_block_fills_by_the_gas_used_not_the_gas_limits() {
    let key = AccountKey::from_seed(1);
    let mut config = ExecutionConfig::new(CHAIN_ID);
    config.block_gas_limit = 100_000;
    let chain = TestChain::with_config(config, &[&key]);
    let to = Address::repeat_byte(3);
    // 30,000 gas asked, 21,000 used: four fit (84,000), though their limits add up to 120,000;
    // then 16,000 are left, too little for any transaction, and packing stops.
    let candidates: Vec<Bytes> = (0..10)
        .map(|nonce| tx1559_priced(&key, nonce, to, U256::from(1), 30_000, 0, 0))
        .collect();
    let Packed {
        transactions,
        outcome,
    } = pack(&chain, &candidates);
    assert_eq!(transactions.len(), 4);
    assert_eq!(outcome.gas_used, 84_000);
    assert!(
        outcome.skipped.is_empty(),
        "candidates after a full block are not tried: {:?}",
        outcome.skipped
    );
    let listed = chain.execute(&candidates[..4]);
    assert_eq!(listed, outcome);
}
