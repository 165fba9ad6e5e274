//! On a chain whose state holds a registry (its genesis listed founders), execution leaves out
//! what the consortium's rules forbid, with the reason, exactly as admission refuses it.

mod common;

use alloy_primitives::Address;
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::SkipReason;
use trellis_governance::{IdentityId, OrgId, Refusal, RegistryWriter, Role, Window};
use trellis_state::ChangeSet;

#[test]
fn only_registered_accounts_with_the_roles_a_transaction_needs_are_executed() {
    let [alice, bob, carol] = [1, 2, 3].map(AccountKey::from_seed);
    let mut chain = TestChain::new(&[&alice, &bob, &carol]);
    // Alice may transact and deploy, Bob only transact; Carol is not registered.
    let mut writer = RegistryWriter::new(&chain.store);
    writer.add_organisation(OrgId(1), "Insurer").unwrap();
    for (id, key, roles) in [
        (1, &alice, vec![Role::transactor(), Role::deployer()]),
        (2, &bob, vec![Role::transactor()]),
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
