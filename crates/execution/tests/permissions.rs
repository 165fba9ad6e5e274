//! On a chain whose state holds a registry (its genesis listed founders), execution leaves out
//! what the consortium's rules forbid, with the reason, exactly as admission refuses it.

mod common;

use alloy_primitives::Address;
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::SkipReason;
use trellis_governance::{
    Deployment, IdentityId, OrgId, Refusal, Registry, RegistryWriter, Role, Window,
};
use trellis_state::{ChangeSet, StateReader as _};

/// A chain where Alice may transact and deploy, Bob only transact; Carol is not registered.
fn insurer(alice: &AccountKey, bob: &AccountKey, carol: &AccountKey) -> TestChain {
    let mut chain = TestChain::new(&[alice, bob, carol]);
    let mut writer = RegistryWriter::new(&chain.store);
    writer.add_organisation(OrgId(1), "Insurer").unwrap();
    for (id, key, roles) in [
        (1, alice, vec![Role::transactor(), Role::deployer()]),
        (2, bob, vec![Role::transactor()]),
    ] {
        writer
            .add_identity(IdentityId(id), OrgId(1), Window::ALWAYS)
            .unwrap();
        writer
            .add_account(key.address(), IdentityId(id), Window::ALWAYS)
            .unwrap();
        for role in roles {
            writer.grant(IdentityId(id), role).unwrap();
        }
    }
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    let height = chain.store.next_height();
    chain.store.commit(height, &changes).unwrap();
    chain
}

#[test]
fn only_registered_accounts_with_the_roles_a_transaction_needs_are_executed() {
    let [alice, bob, carol] = [1, 2, 3].map(AccountKey::from_seed);
    let chain = insurer(&alice, &bob, &carol);
    let to = Address::repeat_byte(0x77);
    let outcome = chain.execute(&[
        transfer(&alice, 0, to, ether(1)),
        deploy_tx(&alice, 1, creation_code("Reverter"), &[]),
        transfer(&bob, 0, to, ether(1)),
        deploy_tx(&bob, 1, creation_code("Reverter"), &[]),
        transfer(&carol, 0, to, ether(1)),
    ]);
    assert_eq!(outcome.receipts.len(), 3, "{:?}", outcome.skipped);
    let skipped: Vec<(usize, SkipReason)> = outcome
        .skipped
        .iter()
        .map(|s| (s.index, s.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                3,
                SkipReason::NotPermitted(Refusal::MissingRole {
                    account: bob.address(),
                    identity: IdentityId(2),
                    role: Role::deployer(),
                })
            ),
            (
                4,
                SkipReason::NotPermitted(Refusal::Unregistered(carol.address()))
            ),
        ]
    );
    assert_eq!(
        skipped[0].1.to_string(),
        format!(
            "not permitted: account {} (identity #2) does not hold the deployer role",
            bob.address()
        )
    );
}

alloy_sol_types::sol! {
    interface Factory {
        function make() external returns (address child);
        function makeAt(bytes32 salt) external returns (address child);
    }
}

#[test]
fn a_contract_creates_contracts_only_for_a_signer_who_may_deploy() {
    use alloy_sol_types::SolCall;
    let [alice, bob, carol] = [1, 2, 3].map(AccountKey::from_seed);
    let mut chain = insurer(&alice, &bob, &carol);
    let factory = alice.address().create(0);
    let make = Factory::makeCall {}.abi_encode();
    let make_at = Factory::makeAtCall {
        salt: alloy_primitives::B256::repeat_byte(9),
    }
    .abi_encode();
    let height = chain.context().height;
    let (outcome, _) = chain.apply(&[
        deploy_tx(&alice, 0, creation_code("Factory"), &[]),
        call_tx(&bob, 0, factory, make.clone()),
        call_tx(&bob, 1, factory, make_at.clone()),
        call_tx(&alice, 1, factory, make.clone()),
        call_tx(&alice, 2, factory, make_at),
    ]);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    let [deployed, by_bob, by_bob_create2, by_alice, by_alice_create2] =
        outcome.receipts.clone().try_into().unwrap();
    assert!(deployed.success());
    let refusal = Refusal::MissingRole {
        account: bob.address(),
        identity: IdentityId(2),
        role: Role::deployer(),
    };
    let reason = format!("not permitted: a contract may not create a contract here: {refusal}");
    for receipt in [&by_bob, &by_bob_create2] {
        assert!(!receipt.success(), "a transactor's call created a contract");
        assert_eq!(receipt.revert_reason.as_deref(), Some(reason.as_str()));
    }
    assert!(by_alice.success() && by_alice_create2.success());
    // The factory's first child is at its nonce-1 address: created once, by Alice's call.
    let account = |address| chain.store.account(&address).unwrap();
    let child = account(factory.create(1)).expect("Alice's call created a child");
    assert_ne!(child.code_hash, alloy_primitives::KECCAK256_EMPTY);
    assert!(
        account(factory.create(2)).is_none(),
        "only one CREATE child"
    );
    // The registry names Alice as the deployer of the factory and of its child, created by a
    // transaction she signed; Bob's reverted attempts left no record.
    let registry = Registry::new(&chain.store);
    for contract in [factory, factory.create(1)] {
        assert_eq!(
            registry.deployment(&contract).unwrap(),
            Some(Deployment {
                contract,
                deployer: alice.address(),
                height,
            })
        );
    }
    assert_eq!(registry.deployment(&factory.create(2)).unwrap(), None);
}
