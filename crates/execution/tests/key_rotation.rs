//! A key rotation and a revocation carried by transactions through the EVM: from the
//! transaction that makes them on, the old key's transactions are left out, with the reason,
//! and the successor acts with the identity's roles.

mod common;

use alloy_primitives::Address;
use alloy_sol_types::SolCall;
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::SkipReason;
use trellis_governance::{
    AccountStatus, IdentityId, OrgId, REGISTRY_ADDRESS, Refusal, RegistryWriter, Role, Window,
    contracts::abi::ITrellisRegistry, rotation_digest,
};
use trellis_state::ChangeSet;

/// Alice may transact and deploy; Dave, her successor-to-be, is funded but not registered.
fn chain(alice: &AccountKey, dave: &AccountKey) -> TestChain {
    let mut chain = TestChain::new(&[alice, dave]);
    let mut writer = RegistryWriter::new(&chain.store);
    writer.add_organisation(OrgId(1), "Insurer").unwrap();
    writer
        .add_identity(IdentityId(1), OrgId(1), Window::ALWAYS)
        .unwrap();
    writer
        .add_account(alice.address(), IdentityId(1), Window::ALWAYS)
        .unwrap();
    writer.grant(IdentityId(1), Role::transactor()).unwrap();
    writer.grant(IdentityId(1), Role::deployer()).unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    let height = chain.store.next_height();
    chain.store.commit(height, &changes).unwrap();
    chain
}

fn stopped(reason: &SkipReason) -> Option<AccountStatus> {
    match reason {
        SkipReason::NotPermitted(Refusal::Stopped { status, .. }) => Some(*status),
        _ => None,
    }
}

#[test]
fn a_rotated_key_is_refused_from_its_rotation_on_and_its_successor_acts_for_it() {
    let [alice, dave] = [1, 4].map(AccountKey::from_seed);
    let mut chain = chain(&alice, &dave);
    let to = Address::repeat_byte(0x77);
    let proof = dave.sign_hash(rotation_digest(&alice.address(), &dave.address()));
    let rotate = ITrellisRegistry::rotateKeyCall {
        successor: dave.address(),
        proof: proof.as_bytes().to_vec().into(),
    }
    .abi_encode();
    let (outcome, _) = chain.apply(&[
        transfer(&alice, 0, to, ether(1)),
        call_tx(&alice, 1, REGISTRY_ADDRESS, rotate),
        // Later in the same block: the old key is out already, the new one in.
        transfer(&alice, 2, to, ether(1)),
        transfer(&dave, 0, to, ether(1)),
    ]);
    assert_eq!(outcome.receipts.len(), 3, "{:?}", outcome.skipped);
    assert!(
        outcome.receipts.iter().all(|r| r.envelope.status()),
        "{:?}",
        outcome.receipts
    );
    assert_eq!(outcome.skipped.len(), 1);
    assert_eq!(outcome.skipped[0].index, 2);
    assert_eq!(
        stopped(&outcome.skipped[0].reason),
        Some(AccountStatus::Rotated)
    );
    let text = outcome.skipped[0].reason.to_string();
    assert!(
        text.contains("rotated to a successor key") && text.contains("by its own key"),
        "{text}"
    );

    // The successor holds the identity's roles: it may deploy.
    let (outcome, _) = chain.apply(&[deploy_tx(&dave, 1, creation_code("Reverter"), &[])]);
    assert_eq!(outcome.receipts.len(), 1, "{:?}", outcome.skipped);
}

#[test]
fn a_key_reported_compromised_is_refused_with_the_block_it_is_suspected_from() {
    let [alice, dave] = [1, 4].map(AccountKey::from_seed);
    let mut chain = chain(&alice, &dave);
    let height = chain.store.next_height().get();
    let revoke = ITrellisRegistry::revokeKeyCall {
        compromised: true,
        suspectedFrom: height - 1,
    }
    .abi_encode();
    let to = Address::repeat_byte(0x77);
    let (outcome, _) = chain.apply(&[
        call_tx(&alice, 0, REGISTRY_ADDRESS, revoke),
        transfer(&alice, 1, to, ether(1)),
    ]);
    assert_eq!(outcome.receipts.len(), 1, "{:?}", outcome.skipped);
    assert_eq!(
        stopped(&outcome.skipped[0].reason),
        Some(AccountStatus::Compromised)
    );
    let text = outcome.skipped[0].reason.to_string();
    assert!(
        text.contains(&format!("suspected of misuse from block {}", height - 1)),
        "{text}"
    );
    assert_eq!(chain.balance(to), ether(0));
}
