//! Block execution with real signed transactions and real compiled Solidity.

mod common;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolValue, sol};
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::{ExecutionConfig, SkipReason};

sol! {
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
    function totalSupply() external view returns (uint256);
    event Transfer(address indexed from, address indexed to, uint256 value);
    error InsufficientBalance(address account, uint256 balance, uint256 needed);

    function failWithReason() external;
    function failWithCustomError(uint256 code) external;
    function incrementThenFail() external;
    function increment() external;
    function counter() external view returns (uint256);
    function divide(uint256 a, uint256 b) external returns (uint256);
    error Unauthorized(address caller, uint256 code);
}

fn reasons(outcome: &trellis_execution::BlockOutcome) -> Vec<SkipReason> {
    outcome.skipped.iter().map(|s| s.reason.clone()).collect()
}

fn keys(n: u64) -> Vec<AccountKey> {
    (1..=n).map(AccountKey::from_seed).collect()
}

/// Deploys TrellisToken from `owner` (nonce 0) with `supply` and returns its address.
fn deploy_token(chain: &mut TestChain, owner: &AccountKey, supply: U256) -> Address {
    let args = ("Trellis Test".to_string(), "TRT".to_string(), supply).abi_encode_params();
    let (outcome, _) = chain.apply(&[deploy_tx(owner, 0, creation_code("TrellisToken"), &args)]);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    let receipt = &outcome.receipts[0];
    assert!(receipt.success(), "deployment failed: {receipt:?}");
    let address = receipt.contract_address.expect("creation has an address");
    assert_eq!(address, owner.address().create(0));
    address
}

fn token_balance(chain: &TestChain, token: Address, owner: Address) -> U256 {
    let out = chain.call(token, balanceOfCall { owner }.abi_encode().into());
    assert!(out.success, "{out:?}");
    balanceOfCall::abi_decode_returns(&out.output).unwrap()
}

#[test]
fn native_transfers_of_every_supported_type() {
    let [alice, bob] = <[AccountKey; 2]>::try_from(keys(2)).unwrap();
    let carol = Address::repeat_byte(0xca);
    let mut chain = TestChain::new(&[&alice, &bob]);
    let (outcome, root) = chain.apply(&[
        transfer(&alice, 0, carol, ether(1)),
        legacy(&alice, 1, carol, ether(2), Some(CHAIN_ID)),
        tx2930(&bob, 0, carol, ether(3)),
    ]);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    assert_eq!(outcome.receipts.len(), 3);
    assert!(
        outcome
            .receipts
            .iter()
            .all(|r| r.success() && r.gas_used == 21_000)
    );
    assert_eq!(outcome.receipts[2].cumulative_gas_used(), 63_000);
    assert_eq!(outcome.gas_used, 63_000);
    assert_eq!(
        outcome
            .receipts
            .iter()
            .map(|r| r.tx_type() as u8)
            .collect::<Vec<_>>(),
        vec![2, 0, 1]
    );
    assert_eq!(chain.balance(carol), ether(6));
    assert_eq!(chain.balance(alice.address()), ether(997), "gas is free");
    assert_eq!(chain.nonce(alice.address()), 2);
    assert_eq!(chain.nonce(bob.address()), 1);
    assert_eq!(
        chain.store.committed(),
        Some((trellis_types::Height(1), root))
    );
}

#[test]
fn erc20_deploy_transfer_balance_and_log() {
    let [owner, holder] = <[AccountKey; 2]>::try_from(keys(2)).unwrap();
    let mut chain = TestChain::new(&[&owner, &holder]);
    let supply = ether(1_000_000);
    let token = deploy_token(&mut chain, &owner, supply);
    assert_eq!(token_balance(&chain, token, owner.address()), supply);

    let amount = ether(250);
    let call = transferCall {
        to: holder.address(),
        value: amount,
    };
    let (outcome, _) = chain.apply(&[call_tx(&owner, 1, token, call.abi_encode())]);
    let receipt = &outcome.receipts[0];
    assert!(receipt.success(), "{receipt:?}");
    assert!(transferCall::abi_decode_returns(&receipt.output).unwrap());

    // The Transfer log: emitted by the token, topics = [signature, from, to], data = value.
    assert_eq!(receipt.logs().len(), 1);
    let log = &receipt.logs()[0];
    assert_eq!(log.address, token);
    assert_eq!(
        log.topics(),
        &[
            Transfer::SIGNATURE_HASH,
            owner.address().into_word(),
            holder.address().into_word()
        ]
    );
    assert_eq!(
        log.data.data.as_ref(),
        amount.to_be_bytes::<32>().as_slice()
    );
    let decoded = Transfer::decode_log(log).unwrap();
    assert_eq!(
        (decoded.from, decoded.to, decoded.value),
        (owner.address(), holder.address(), amount)
    );
    assert!(
        receipt
            .logs_bloom()
            .contains_input(alloy_primitives::BloomInput::Raw(token.as_slice()))
    );
    assert_eq!(&outcome.logs_bloom, receipt.logs_bloom());

    assert_eq!(token_balance(&chain, token, holder.address()), amount);
    assert_eq!(
        token_balance(&chain, token, owner.address()),
        supply - amount
    );

    // Sending more than the balance reverts with the token's custom error, data intact.
    let too_much = transferCall {
        to: owner.address(),
        value: amount + U256::from(1),
    };
    let (outcome, _) = chain.apply(&[call_tx(&holder, 0, token, too_much.abi_encode())]);
    let receipt = &outcome.receipts[0];
    assert!(!receipt.success());
    let error = InsufficientBalance::abi_decode(&receipt.output).unwrap();
    assert_eq!(error.account, holder.address());
    assert_eq!(error.balance, amount);
    assert_eq!(error.needed, amount + U256::from(1));
    assert_eq!(token_balance(&chain, token, holder.address()), amount);
}

#[test]
fn revert_reason_custom_error_and_panic_are_preserved() {
    let [user] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let mut chain = TestChain::new(&[&user]);
    let (outcome, _) = chain.apply(&[deploy_tx(&user, 0, creation_code("Reverter"), &[])]);
    let reverter = outcome.receipts[0].contract_address.unwrap();

    let (outcome, _) = chain.apply(&[
        call_tx(&user, 1, reverter, failWithReasonCall {}.abi_encode()),
        call_tx(
            &user,
            2,
            reverter,
            failWithCustomErrorCall {
                code: U256::from(42),
            }
            .abi_encode(),
        ),
        call_tx(
            &user,
            3,
            reverter,
            divideCall {
                a: U256::from(1),
                b: U256::ZERO,
            }
            .abi_encode(),
        ),
        call_tx(&user, 4, reverter, incrementThenFailCall {}.abi_encode()),
        call_tx(&user, 5, reverter, incrementCall {}.abi_encode()),
    ]);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    let r = &outcome.receipts;
    assert!(!r[0].success());
    assert_eq!(r[0].revert_reason.as_deref(), Some("Reverter: not allowed"));
    assert_eq!(
        alloy_sol_types::Revert::abi_decode(&r[0].output)
            .unwrap()
            .reason,
        "Reverter: not allowed"
    );

    assert!(!r[1].success());
    assert_eq!(
        r[1].revert_reason, None,
        "custom errors are left to the caller's ABI"
    );
    let custom = Unauthorized::abi_decode(&r[1].output).unwrap();
    assert_eq!(
        (custom.caller, custom.code),
        (user.address(), U256::from(42))
    );
    assert_eq!(&r[1].output[..4], Unauthorized::SELECTOR.as_slice());

    assert!(!r[2].success());
    assert!(
        r[2].revert_reason
            .as_deref()
            .unwrap()
            .contains("division or modulo by zero")
    );

    assert!(!r[3].success());
    assert_eq!(r[3].revert_reason.as_deref(), Some("Reverter: rolled back"));
    assert!(r[4].success());

    // The reverted increment left no trace; the successful one did. Failed calls still used
    // their nonces, as on Ethereum.
    let counter = chain.call(reverter, counterCall {}.abi_encode().into());
    assert_eq!(
        counterCall::abi_decode_returns(&counter.output).unwrap(),
        U256::from(1)
    );
    assert_eq!(chain.nonce(user.address()), 6);

    // The same failure through a read-only call.
    let out = chain.call(reverter, failWithReasonCall {}.abi_encode().into());
    assert!(!out.success);
    assert_eq!(out.revert_reason.as_deref(), Some("Reverter: not allowed"));
}

#[test]
fn wrong_nonces_are_skipped_without_effect() {
    let [alice] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let to = Address::repeat_byte(1);
    let mut chain = TestChain::new(&[&alice]);
    chain.apply(&[transfer(&alice, 0, to, ether(1))]);
    let root_before = chain.store.committed().unwrap().1;

    let outcome = chain.execute(&[
        transfer(&alice, 0, to, ether(1)),
        transfer(&alice, 5, to, ether(1)),
    ]);
    assert!(outcome.receipts.is_empty());
    assert_eq!(
        reasons(&outcome),
        vec![
            SkipReason::NonceTooLow {
                expected: 1,
                got: 0
            },
            SkipReason::NonceTooHigh {
                expected: 1,
                got: 5
            },
        ]
    );
    assert_eq!(outcome.skipped[0].sender, Some(alice.address()));
    assert!(
        outcome.changes.is_empty(),
        "skipped transactions change nothing"
    );
    assert_eq!(
        chain.store.speculative_root(&[&outcome.changes]).unwrap(),
        root_before
    );
}

#[test]
fn insufficient_funds_is_skipped() {
    let [rich] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let poor = AccountKey::from_seed(99);
    let mut chain = TestChain::new(&[&rich]);
    chain.apply(&[transfer(&rich, 0, poor.address(), ether(1))]);
    let outcome = chain.execute(&[
        transfer(&poor, 0, rich.address(), ether(2)),
        transfer(&poor, 0, rich.address(), ether(1)),
    ]);
    assert!(matches!(
        outcome.skipped[0].reason,
        SkipReason::InsufficientFunds { needed, balance } if needed == ether(2) && balance == ether(1)
    ));
    // The skipped transaction did not consume the nonce: the next one with nonce 0 runs.
    assert_eq!(outcome.receipts.len(), 1);
    assert_eq!(outcome.receipts[0].index, 1);
    assert!(outcome.receipts[0].success());
}

#[test]
fn wrong_or_missing_chain_id_is_skipped() {
    let [alice] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let chain = TestChain::new(&[&alice]);
    let to = Address::repeat_byte(2);
    let outcome = chain.execute(&[
        legacy(&alice, 0, to, ether(1), Some(CHAIN_ID + 1)),
        legacy(&alice, 0, to, ether(1), None),
    ]);
    assert_eq!(
        reasons(&outcome),
        vec![
            SkipReason::WrongChainId {
                expected: CHAIN_ID,
                got: Some(CHAIN_ID + 1)
            },
            SkipReason::WrongChainId {
                expected: CHAIN_ID,
                got: None
            },
        ]
    );
    assert!(outcome.changes.is_empty());
}

#[test]
fn gas_beyond_the_block_is_skipped() {
    let [alice, bob] = <[AccountKey; 2]>::try_from(keys(2)).unwrap();
    let mut config = ExecutionConfig::new(CHAIN_ID);
    config.block_gas_limit = 1_010_000;
    let chain = TestChain::with_config(config, &[&alice, &bob]);
    let to = Address::repeat_byte(3);
    let over = tx1559_priced(&alice, 0, to, U256::ZERO, 2_000_000, 0, 0);
    // A 1M-gas transfer fits once (using 21k); the second no longer fits in what is left.
    let outcome = chain.execute(&[
        over,
        transfer(&alice, 0, to, U256::from(1)),
        transfer(&bob, 0, to, U256::from(1)),
    ]);
    assert_eq!(
        outcome.skipped[0].reason,
        SkipReason::GasLimitAboveBlockLimit {
            gas_limit: 2_000_000,
            block_gas_limit: 1_010_000
        }
    );
    assert_eq!(
        outcome.skipped[1].reason,
        SkipReason::BlockGasExhausted {
            gas_limit: GAS,
            remaining: 1_010_000 - 21_000
        }
    );
    assert_eq!(outcome.receipts.len(), 1);
}

#[test]
fn malformed_and_unsupported_transactions_are_skipped() {
    let [alice] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let chain = TestChain::new(&[&alice]);
    let good = transfer(&alice, 0, Address::repeat_byte(4), U256::from(1));
    let mut truncated = good.to_vec();
    truncated.truncate(truncated.len() - 3);
    let mut bad_signature = good.to_vec();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0xff; // corrupt `s`
    let outcome = chain.execute(&[
        Bytes::from_static(b"\x02not rlp"),
        Bytes::from(truncated),
        Bytes::from_static(&[0x03, 0xc0]),
        Bytes::from(bad_signature),
        good,
    ]);
    let reasons: Vec<_> = outcome.skipped.iter().map(|s| &s.reason).collect();
    assert!(
        matches!(reasons[0], SkipReason::Malformed(_)),
        "{reasons:?}"
    );
    assert!(
        matches!(reasons[1], SkipReason::Malformed(_)),
        "{reasons:?}"
    );
    assert!(
        matches!(
            reasons[2],
            SkipReason::Malformed(_) | SkipReason::UnsupportedType(3)
        ),
        "{reasons:?}"
    );
    assert!(
        matches!(
            reasons[3],
            SkipReason::InvalidSignature
                | SkipReason::NonceTooHigh { .. }
                | SkipReason::InsufficientFunds { .. }
        ),
        "a corrupted signature is refused or recovers to a stranger: {reasons:?}"
    );
    assert_eq!(outcome.receipts.len(), 1, "the good transaction still runs");
    assert_eq!(outcome.receipts[0].index, 4);
}

#[test]
fn same_block_on_same_parent_gives_identical_results() {
    let senders = keys(5);
    let refs: Vec<&AccountKey> = senders.iter().collect();
    let mut chain = TestChain::new(&refs);
    let token = deploy_token(&mut chain, &senders[0], ether(1_000));
    let mut txs = Vec::new();
    for (i, key) in senders.iter().enumerate().skip(1) {
        txs.push(transfer(key, 0, senders[0].address(), ether(i as u64)));
    }
    txs.push(call_tx(
        &senders[0],
        1,
        token,
        transferCall {
            to: senders[1].address(),
            value: ether(5),
        }
        .abi_encode(),
    ));
    let first = chain.execute(&txs);
    let second = chain.execute(&txs);
    assert_eq!(first, second);
    let root_a = chain.store.speculative_root(&[&first.changes]).unwrap();
    let root_b = chain.store.speculative_root(&[&second.changes]).unwrap();
    assert_eq!(root_a, root_b);
    assert_ne!(first.receipts_root, B256::ZERO);
    assert_eq!(chain.apply(&txs).1, root_a);
}

#[test]
fn blocks_execute_on_speculative_parents_as_on_committed_ones() {
    let [alice, bob] = <[AccountKey; 2]>::try_from(keys(2)).unwrap();
    let to = Address::repeat_byte(5);
    let block_a = [transfer(&alice, 0, to, ether(1))];
    let block_b = [
        transfer(&alice, 1, to, ether(2)),
        transfer(&bob, 0, to, ether(3)),
    ];

    // Speculatively: B runs on top of A's uncommitted changes.
    let mut chain = TestChain::new(&[&alice, &bob]);
    let a = chain.execute(&block_a);
    let mut context_b = chain.context();
    context_b.height = context_b.height.next();
    let view =
        trellis_state::Speculative::new(&chain.store, vec![std::sync::Arc::new(a.changes.clone())]);
    let b = chain.executor.execute(&context_b, &view, &block_b).unwrap();
    assert!(b.skipped.is_empty(), "{:?}", b.skipped);
    let predicted = chain
        .store
        .speculative_root(&[&a.changes, &b.changes])
        .unwrap();

    // For real: A committed, then B.
    chain.apply(&block_a);
    let (b_committed, root) = chain.apply(&block_b);
    assert_eq!(root, predicted);
    assert_eq!(b_committed.receipts_root, b.receipts_root);
    assert_eq!(b_committed.changes, b.changes);
    assert_eq!(chain.balance(to), ether(6));
}

#[test]
fn base_fee_is_burned_and_tip_goes_to_the_proposer() {
    let [alice] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let gwei = |n: u128| n * 1_000_000_000;
    let mut config = ExecutionConfig::new(CHAIN_ID);
    config.base_fee_per_gas = gwei(1) as u64;
    let mut chain = TestChain::with_config(config, &[&alice]);
    let coinbase = chain.context().coinbase();
    let to = Address::repeat_byte(6);
    let paying =
        |nonce, max_fee, tip| tx1559_priced(&alice, nonce, to, ether(1), 21_000, max_fee, tip);
    let (outcome, _) = chain.apply(&[paying(0, gwei(3), gwei(1)), paying(1, gwei(1) / 2, 0)]);
    assert_eq!(outcome.receipts.len(), 1);
    assert_eq!(outcome.receipts[0].effective_gas_price, gwei(2));
    assert_eq!(
        outcome.skipped[0].reason,
        SkipReason::FeeBelowBaseFee {
            base_fee: gwei(1) as u64
        }
    );
    let fee = U256::from(21_000 * gwei(2));
    assert_eq!(chain.balance(alice.address()), ether(1000) - ether(1) - fee);
    assert_eq!(
        chain.balance(coinbase),
        U256::from(21_000 * gwei(1)),
        "only the tip is paid out"
    );
}

#[test]
fn a_transaction_repeated_in_a_block_runs_once() {
    let [alice] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let to = Address::repeat_byte(7);
    let mut chain = TestChain::new(&[&alice]);
    let tx = transfer(&alice, 0, to, ether(10));
    let (outcome, _) = chain.apply(&[tx.clone(), tx]);
    assert_eq!(outcome.receipts.len(), 1);
    assert_eq!(
        reasons(&outcome),
        vec![SkipReason::NonceTooLow {
            expected: 1,
            got: 0
        }]
    );
    assert_eq!(outcome.skipped[0].tx_hash, outcome.receipts[0].tx_hash);
    assert_eq!(chain.balance(to), ether(10));
}

#[test]
fn touching_an_empty_account_does_not_create_it() {
    // EIP-161: a zero-value transfer to a fresh address leaves no account behind.
    let [alice] = <[AccountKey; 1]>::try_from(keys(1)).unwrap();
    let ghost = Address::repeat_byte(0x99);
    let mut chain = TestChain::new(&[&alice]);
    let (outcome, _) = chain.apply(&[transfer(&alice, 0, ghost, U256::ZERO)]);
    assert!(outcome.receipts[0].success());
    assert!(
        outcome
            .changes
            .account(&ghost)
            .is_none_or(|c| c.account.is_none())
    );
    assert_eq!(
        trellis_state::StateReader::account(&chain.store, &ghost).unwrap(),
        None
    );
    assert_eq!(chain.store.account_count(), 1);
}

#[test]
fn each_change_is_attributed_to_the_last_transaction_that_made_it() {
    let [alice, bob] = <[AccountKey; 2]>::try_from(keys(2)).unwrap();
    let mut chain = TestChain::new(&[&alice, &bob]);
    let token = deploy_token(&mut chain, &alice, U256::from(1_000));
    let carol = Address::repeat_byte(0xca);
    let dave = Address::repeat_byte(0xda);
    // A skipped transaction (a nonce far ahead) still takes an index in the block.
    let outcome = chain.execute(&[
        call_tx(
            &alice,
            1,
            token,
            transferCall {
                to: carol,
                value: U256::from(5),
            }
            .abi_encode(),
        ),
        transfer(&bob, 7, dave, ether(1)),
        transfer(&bob, 0, dave, ether(1)),
        call_tx(
            &alice,
            2,
            token,
            transferCall {
                to: dave,
                value: U256::from(7),
            }
            .abi_encode(),
        ),
    ]);
    assert_eq!(reasons(&outcome).len(), 1, "{:?}", outcome.skipped);
    let change = |address: &Address| outcome.changes.account(address).unwrap();
    let balance_slot = |owner: Address| {
        U256::from_be_bytes(alloy_primitives::keccak256((owner, U256::from(3)).abi_encode()).0)
    };
    assert_eq!(change(&bob.address()).written_by, Some(2));
    assert_eq!(
        change(&alice.address()).written_by,
        Some(3),
        "alice's last transaction"
    );
    let token_change = change(&token);
    assert_eq!(token_change.slots_written_by[&balance_slot(carol)], 0);
    assert_eq!(token_change.slots_written_by[&balance_slot(dave)], 3);
    assert_eq!(
        token_change.slots_written_by[&balance_slot(alice.address())],
        3
    );
    assert_eq!(
        change(&dave).written_by,
        Some(2),
        "dave's ether came in transaction 2"
    );
}
