//! A block of 1,000 ERC-20 transfers from 100 senders: every transfer lands, balances add up,
//! and the execution time is printed (no timing assertion: speed belongs in benchmarks).

mod common;

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolValue, sol};
use common::*;
use std::time::Instant;
use trellis_crypto::AccountKey;

sol! {
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
}

const SENDERS: u64 = 100;
const PER_SENDER: u64 = 10;

fn token_balance(chain: &TestChain, token: Address, owner: Address) -> U256 {
    let out = chain.call(token, balanceOfCall { owner }.abi_encode().into());
    balanceOfCall::abi_decode_returns(&out.output).unwrap()
}

#[test]
fn thousand_erc20_transfers_from_hundred_senders() {
    let owner = AccountKey::from_seed(0);
    let senders: Vec<AccountKey> = (1..=SENDERS).map(AccountKey::from_seed).collect();
    let recipients: Vec<Address> = (0..50u8).map(|i| Address::repeat_byte(0x80 + i)).collect();
    let mut chain = TestChain::new(&[&owner]);

    // Block 1: deploy; block 2: fund each sender with 1,000 tokens.
    let args = (
        "Load".to_string(),
        "LD".to_string(),
        U256::from(10u64).pow(U256::from(30)),
    )
        .abi_encode_params();
    let (deployed, _) = chain.apply(&[deploy_tx(&owner, 0, creation_code("TrellisToken"), &args)]);
    let token = deployed.receipts[0].contract_address.unwrap();
    let funding: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let call = transferCall {
                to: key.address(),
                value: U256::from(1_000u64),
            };
            call_tx(&owner, 1 + i as u64, token, call.abi_encode())
        })
        .collect();
    let (funded, _) = chain.apply(&funding);
    assert_eq!(funded.receipts.len(), SENDERS as usize);
    assert!(funded.receipts.iter().all(|r| r.success()));

    // Block 3: 1,000 transfers, interleaved across senders as a mempool would order them.
    let mut block = Vec::new();
    for nonce in 0..PER_SENDER {
        for (i, key) in senders.iter().enumerate() {
            let to = recipients[(i + nonce as usize) % recipients.len()];
            let call = transferCall {
                to,
                value: U256::from(1 + nonce),
            };
            block.push(call_tx(key, nonce, token, call.abi_encode()));
        }
    }
    assert_eq!(block.len(), 1_000);

    // Sender recovery alone, on one thread: the largest per-transaction cost of the node.
    let started = Instant::now();
    for raw in &block {
        trellis_types::transaction::decode(raw.clone()).expect("valid transaction");
    }
    println!(
        "decoded and recovered 1,000 senders on one thread: {:.1} µs per transaction",
        started.elapsed().as_secs_f64() * 1e6 / 1_000.0
    );

    let started = Instant::now();
    let outcome = chain.execute(&block);
    let elapsed = started.elapsed();
    let root = chain.store.speculative_root(&[&outcome.changes]).unwrap();
    let with_root = started.elapsed();
    println!(
        "executed 1,000 ERC-20 transfers from {SENDERS} senders in {:.1} ms ({:.0} tx/s); \
         with state root {:.1} ms; gas used {}",
        elapsed.as_secs_f64() * 1e3,
        1_000.0 / elapsed.as_secs_f64(),
        with_root.as_secs_f64() * 1e3,
        outcome.gas_used
    );

    assert!(outcome.skipped.is_empty(), "{:?}", &outcome.skipped[..1]);
    assert_eq!(outcome.receipts.len(), 1_000);
    assert!(
        outcome
            .receipts
            .iter()
            .all(|r| r.success() && r.logs().len() == 1)
    );
    assert_eq!(
        outcome.gas_used,
        outcome.receipts.iter().map(|r| r.gas_used).sum::<u64>()
    );
    assert_eq!(
        outcome.receipts.last().unwrap().cumulative_gas_used(),
        outcome.gas_used
    );

    let (_, committed_root) = chain.apply(&block);
    assert_eq!(committed_root, root);
    // Each sender sent 1+2+…+10 = 55 tokens; the recipients received all of it.
    for key in &senders {
        assert_eq!(
            token_balance(&chain, token, key.address()),
            U256::from(1_000 - 55)
        );
        assert_eq!(chain.nonce(key.address()), PER_SENDER);
    }
    let received: U256 = recipients
        .iter()
        .map(|r| token_balance(&chain, token, *r))
        .fold(U256::ZERO, |a, b| a + b);
    assert_eq!(received, U256::from(55 * SENDERS));
}
