//! Admission, ordering and removal, against a real in-memory state.

use alloy_consensus::{TxEip1559, TxLegacy};
use alloy_primitives::{Address, TxKind, U256};
use std::collections::HashSet;
use trellis_crypto::AccountKey;
use trellis_governance::{Day, When};
use trellis_mempool::{AdmissionError, BlockBudget, Mempool, PoolConfig};
use trellis_state::{Account, ChangeSet, MemoryStore};
use trellis_types::{Bytes, Height};

const CHAIN_ID: u64 = 7_777;
const ETH: u128 = 1_000_000_000_000_000_000;
/// The block the transactions are admitted for.
const NEXT: When = When {
    height: Height(1),
    day: Day(0),
};

fn funded(keys: &[&AccountKey], balance: u128) -> MemoryStore {
    let mut changes = ChangeSet::new();
    for key in keys {
        changes.set_account(key.address(), Account::with_balance(U256::from(balance)));
    }
    let mut store = MemoryStore::new();
    store.commit(Height::GENESIS, &changes).unwrap();
    store
}

/// Block 1 moves `key`'s account to nonce 1, with 1 ETH left.
fn nonce_moves_to_1(state: &mut MemoryStore, key: &AccountKey) {
    let mut changes = ChangeSet::new();
    changes.set_account(
        key.address(),
        Account {
            nonce: 1,
            ..Account::with_balance(U256::from(ETH))
        },
    );
    state.commit(Height(1), &changes).unwrap();
}

fn pool() -> Mempool {
    Mempool::new(PoolConfig::new(CHAIN_ID, 30_000_000, 1))
}

fn transfer(key: &AccountKey, nonce: u64, fee: u128, value: u128) -> Bytes {
    key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: fee,
        to: TxKind::Call(Address::repeat_byte(0xbb)),
        value: U256::from(value),
        ..TxEip1559::default()
    })
}

fn budget() -> BlockBudget {
    BlockBudget {
        gas: 30_000_000,
        bytes: 1 << 20,
        transactions: 10_000,
    }
}

#[test]
fn a_valid_transfer_is_admitted_once() {
    let key = AccountKey::from_seed(1);
    let state = funded(&[&key], ETH);
    let pool = pool();
    let raw = transfer(&key, 0, 10, 5);
    let hash = pool.add(raw.clone(), &state, NEXT).unwrap();
    assert!(pool.contains(&hash));
    assert_eq!(pool.get(&hash).unwrap().sender(), key.address());
    assert_eq!(
        pool.add(raw, &state, NEXT),
        Err(AdmissionError::AlreadyKnown)
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn each_bad_transaction_gets_its_own_error_and_nothing_is_admitted() {
    let key = AccountKey::from_seed(2);
    let poor = AccountKey::from_seed(3);
    let mut state = funded(&[&key, &poor], ETH);
    nonce_moves_to_1(&mut state, &key);
    let pool = pool();

    let err = |raw: Bytes| pool.add(raw, &state, NEXT).unwrap_err();
    assert!(matches!(
        err(Bytes::from_static(b"\x02\xc0garbage")),
        AdmissionError::Malformed(_)
    ));
    assert!(matches!(
        err(transfer(&key, 0, 10, 0)),
        AdmissionError::NonceTooLow {
            expected: 1,
            got: 0
        }
    ));
    assert!(matches!(
        err(transfer(&key, 5_000, 10, 0)),
        AdmissionError::NonceTooHigh { .. }
    ));
    assert!(matches!(
        err(transfer(&poor, 0, 10, 2 * ETH)),
        AdmissionError::InsufficientFunds { .. }
    ));
    assert!(matches!(
        err(transfer(&key, 1, 0, 0)),
        AdmissionError::FeeTooLow { .. }
    ));
    let wrong_chain = key.sign_transaction(TxLegacy {
        chain_id: Some(1),
        nonce: 1,
        gas_price: 10,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        ..TxLegacy::default()
    });
    assert!(matches!(
        err(wrong_chain),
        AdmissionError::WrongChainId {
            expected: CHAIN_ID,
            got: Some(1)
        }
    ));
    let no_chain = key.sign_transaction(TxLegacy {
        chain_id: None,
        nonce: 1,
        gas_price: 10,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        ..TxLegacy::default()
    });
    let message = err(no_chain).to_string();
    assert!(message.contains("pre-EIP-155"), "{message}");
    let huge = key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 1,
        gas_limit: 30_000_001,
        max_fee_per_gas: 10,
        to: TxKind::Call(Address::ZERO),
        ..TxEip1559::default()
    });
    assert!(matches!(err(huge), AdmissionError::GasLimitTooHigh { .. }));
    let oversized = key.sign_transaction(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 1,
        gas_limit: 21_000,
        max_fee_per_gas: 10,
        to: TxKind::Call(Address::ZERO),
        input: vec![1u8; 200 * 1024].into(),
        ..TxEip1559::default()
    });
    assert!(matches!(err(oversized), AdmissionError::Oversized { .. }));
    // r = 2^255 + 2 is a valid scalar but the x-coordinate of no curve point, so no public key
    // can be recovered from the signature.
    let mut forged = transfer(&key, 1, 10, 0).to_vec();
    let r_at = forged.len() - 65;
    assert_eq!(forged[r_at - 1], 0xa0, "r is a 32-byte RLP string");
    forged[r_at..r_at + 32].fill(0);
    forged[r_at] = 0x80;
    forged[r_at + 31] = 0x02;
    assert_eq!(err(forged.into()), AdmissionError::InvalidSignature);
    assert!(pool.is_empty());
}

#[test]
fn balance_covers_all_pending_transactions_of_a_sender() {
    let key = AccountKey::from_seed(4);
    // Enough for two transfers of 0.4 ETH plus gas, not three.
    let state = funded(&[&key], ETH);
    let pool = pool();
    pool.add(transfer(&key, 0, 10, 4 * ETH / 10), &state, NEXT)
        .unwrap();
    pool.add(transfer(&key, 1, 10, 4 * ETH / 10), &state, NEXT)
        .unwrap();
    assert!(matches!(
        pool.add(transfer(&key, 2, 10, 4 * ETH / 10), &state, NEXT),
        Err(AdmissionError::InsufficientFunds { .. })
    ));
}

#[test]
fn the_balance_check_follows_replacements_gaps_and_stale_nonces() {
    let key = AccountKey::from_seed(6);
    let state = funded(&[&key], ETH);
    let pool = pool();
    let tenths = |n: u128| n * ETH / 10;
    pool.add(transfer(&key, 2, 10, tenths(3)), &state, NEXT)
        .unwrap();
    pool.add(transfer(&key, 0, 10, tenths(3)), &state, NEXT)
        .unwrap();
    // Nonce 2 came ahead of a gap: it is not earlier than nonce 1, so only nonce 0 counts.
    assert!(matches!(
        pool.add(transfer(&key, 1, 10, tenths(8)), &state, NEXT),
        Err(AdmissionError::InsufficientFunds { .. })
    ));
    pool.add(transfer(&key, 1, 10, tenths(45) / 10), &state, NEXT)
        .unwrap();
    // A replacement's cost takes the place of the one it replaces: 0.2 + 0.45 + 0.3 pending.
    pool.add(transfer(&key, 0, 11, tenths(2)), &state, NEXT)
        .unwrap();
    assert!(matches!(
        pool.add(transfer(&key, 3, 10, tenths(1)), &state, NEXT),
        Err(AdmissionError::InsufficientFunds { .. })
    ));
    // Once the account's nonce is 1 (nonce 0 final and paid), the stale nonce 0 still in the
    // pool spends nothing more: 0.45 + 0.3 pending.
    let mut state = state;
    nonce_moves_to_1(&mut state, &key);
    pool.add(transfer(&key, 3, 10, tenths(2)), &state, NEXT)
        .unwrap();
}

#[test]
fn replacement_needs_a_ten_percent_bump() {
    let key = AccountKey::from_seed(5);
    let state = funded(&[&key], ETH);
    let pool = pool();
    let first = pool.add(transfer(&key, 0, 100, 1), &state, NEXT).unwrap();
    assert_eq!(
        pool.add(transfer(&key, 0, 105, 1), &state, NEXT),
        Err(AdmissionError::ReplacementUnderpriced)
    );
    let second = pool.add(transfer(&key, 0, 110, 1), &state, NEXT).unwrap();
    assert!(!pool.contains(&first));
    assert!(pool.contains(&second));
    assert_eq!(pool.len(), 1);
}

#[test]
fn a_full_pool_says_so() {
    let keys: Vec<AccountKey> = (10..14).map(AccountKey::from_seed).collect();
    let state = funded(&keys.iter().collect::<Vec<_>>(), ETH);
    let pool = Mempool::new(PoolConfig {
        capacity: 3,
        ..PoolConfig::new(CHAIN_ID, 30_000_000, 1)
    });
    for key in &keys[..3] {
        pool.add(transfer(key, 0, 10, 1), &state, NEXT).unwrap();
    }
    let err = pool
        .add(transfer(&keys[3], 0, 10, 1), &state, NEXT)
        .unwrap_err();
    assert_eq!(err, AdmissionError::PoolFull { capacity: 3 });
    assert!(err.to_string().contains("txpool is full"));
    // Refused before recovery: even a malformed transaction hears that the pool is full.
    let garbage = pool.prepare(Bytes::from_static(&[0x02, 0xff])).unwrap_err();
    assert_eq!(garbage, AdmissionError::PoolFull { capacity: 3 });
    assert_eq!(pool.len(), 3);
}

#[test]
fn candidates_follow_nonce_order_and_arrival_and_skip_gaps() {
    let a = AccountKey::from_seed(20);
    let b = AccountKey::from_seed(21);
    let state = funded(&[&a, &b], ETH);
    let pool = pool();
    // Arrival: b0, a1, a0, b2 (b has a gap at 1), a2.
    let b0 = pool.add(transfer(&b, 0, 10, 1), &state, NEXT).unwrap();
    let a1 = pool.add(transfer(&a, 1, 10, 1), &state, NEXT).unwrap();
    let a0 = pool.add(transfer(&a, 0, 10, 1), &state, NEXT).unwrap();
    pool.add(transfer(&b, 2, 10, 1), &state, NEXT).unwrap();
    let a2 = pool.add(transfer(&a, 2, 10, 1), &state, NEXT).unwrap();
    assert_eq!(pool.pending_nonce(&a.address(), 0), 3);
    assert_eq!(pool.pending_nonce(&b.address(), 0), 1);

    let picked: Vec<_> = pool
        .candidates(budget(), &HashSet::new(), |_| Some(0))
        .iter()
        .map(|tx| tx.hash())
        .collect();
    assert_eq!(picked, vec![b0, a0, a1, a2]);

    // Already in an unfinalized ancestor: passed over, the sender continues after it.
    let picked: Vec<_> = pool
        .candidates(budget(), &HashSet::from([a0, b0]), |_| Some(0))
        .iter()
        .map(|tx| tx.hash())
        .collect();
    assert_eq!(picked, vec![a1, a2]);

    let two = BlockBudget {
        gas: 42_000,
        ..budget()
    };
    assert_eq!(pool.candidates(two, &HashSet::new(), |_| Some(0)).len(), 2);
}

#[test]
fn finalized_and_stale_transactions_leave_the_pool() {
    let a = AccountKey::from_seed(30);
    let b = AccountKey::from_seed(31);
    let state = funded(&[&a, &b], ETH);
    let pool = pool();
    let a0 = pool.add(transfer(&a, 0, 10, 1), &state, NEXT).unwrap();
    let a1 = pool.add(transfer(&a, 1, 10, 1), &state, NEXT).unwrap();
    let b0 = pool.add(transfer(&b, 0, 10, 1), &state, NEXT).unwrap();
    // A block included a0; another transaction of a's with nonce 1 also landed (a's nonce is
    // now 2), so a1 can never be included.
    pool.remove_finalized(&[a0], [(a.address(), 2)]);
    assert!(!pool.contains(&a0));
    assert!(!pool.contains(&a1));
    assert!(pool.contains(&b0));
    pool.evict(&[b0]);
    assert!(pool.is_empty());
}

/// With a registry in the state (a genesis that listed founders), only a registered account
/// holding the transactor role is admitted, with the reason when not: the check block execution
/// makes.
#[test]
fn on_a_governed_chain_only_registered_transactors_are_admitted() {
    use trellis_governance::{IdentityId, OrgId, Refusal, RegistryWriter, Role, Window};
    let (alice, bob) = (AccountKey::from_seed(1), AccountKey::from_seed(2));
    let mut state = funded(&[&alice, &bob], ETH);
    let mut writer = RegistryWriter::new(&state);
    writer.add_organisation(OrgId(1), "Bank").unwrap();
    writer
        .add_identity(IdentityId(1), OrgId(1), Window::ALWAYS)
        .unwrap();
    writer
        .add_account(alice.address(), IdentityId(1), Window::ALWAYS)
        .unwrap();
    writer.grant(IdentityId(1), Role::transactor()).unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    state.commit(Height(1), &changes).unwrap();

    let pool = pool();
    let next = When {
        height: Height(2),
        day: Day(0),
    };
    pool.add(transfer(&alice, 0, 10, 1), &state, next).unwrap();
    assert_eq!(
        pool.add(transfer(&bob, 0, 10, 1), &state, next),
        Err(AdmissionError::NotPermitted(Refusal::Unregistered(
            bob.address()
        )))
    );
    assert_eq!(pool.len(), 1);
}
