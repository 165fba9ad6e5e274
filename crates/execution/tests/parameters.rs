//! A governed chain's gas limit and base fee are chain state: a block runs under those of its
//! parent's state, whatever the executor's configuration says.

mod common;

use alloy_primitives::Address;
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::SkipReason;
use trellis_governance::{ChainParams, IdentityId, OrgId, RegistryWriter, Role, Window};
use trellis_state::ChangeSet;

#[test]
fn blocks_run_under_the_parameters_in_their_parents_state() {
    let alice = AccountKey::from_seed(1);
    let mut chain = TestChain::new(&[&alice]);
    let mut writer = RegistryWriter::new(&chain.store);
    writer.add_organisation(OrgId(1), "Bank").unwrap();
    writer
        .add_identity(IdentityId(1), OrgId(1), Window::ALWAYS)
        .unwrap();
    writer
        .add_account(alice.address(), IdentityId(1), Window::ALWAYS)
        .unwrap();
    writer.grant(IdentityId(1), Role::transactor()).unwrap();
    let params = ChainParams {
        block_gas_limit: 100_000,
        base_fee_per_gas: 7,
    };
    writer.set_chain_params(params).unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    let height = chain.store.next_height();
    chain.store.commit(height, &changes).unwrap();
    assert_ne!(
        chain.executor.config().block_gas_limit,
        params.block_gas_limit,
        "the configuration says otherwise"
    );

    let to = Address::repeat_byte(0x42);
    let (outcome, _) = chain.apply(&[
        tx1559_priced(&alice, 0, to, ether(1), 200_000, 7, 0),
        tx1559_priced(&alice, 0, to, ether(1), 21_000, 6, 0),
        tx1559_priced(&alice, 0, to, ether(1), 21_000, 9, 0),
    ]);
    assert_eq!(outcome.gas_limit, 100_000);
    let skipped: Vec<SkipReason> = outcome.skipped.iter().map(|s| s.reason.clone()).collect();
    assert_eq!(
        skipped,
        vec![
            SkipReason::GasLimitAboveBlockLimit {
                gas_limit: 200_000,
                block_gas_limit: 100_000,
            },
            SkipReason::FeeBelowBaseFee { base_fee: 7 },
        ]
    );
    let [paid] = outcome.receipts.try_into().unwrap();
    assert!(paid.success());
    assert_eq!(paid.effective_gas_price, 7, "no tip: the base fee");
    assert_eq!(
        chain.last_header.as_ref().unwrap().gas_limit,
        100_000,
        "the header carries the limit it ran under"
    );
}
