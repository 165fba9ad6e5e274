//! The governance system contract inside the EVM: transactions propose and vote, the passing
//! vote freezes an account within its block, refusals revert with their reason, and the calls
//! cost gas.

mod common;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_sol_types::{SolCall, SolEvent};
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::{SkipReason, TxReceipt};
use trellis_governance::{
    AccountStatus, Founders, FoundingIdentity, FoundingOrganisation, IdentityId, OrgId, Refusal,
    RegistryWriter, Role, Window,
    contracts::{Action, GOVERNANCE_ADDRESS, abi::ITrellisGovernance as Gov},
};
use trellis_state::ChangeSet;

/// Governors `keys[0..3]`, a teller `keys[3]`, all transactors in one bank.
fn governed(keys: &[&AccountKey; 4]) -> TestChain {
    let mut chain = TestChain::new(keys);
    let identities = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let mut roles = vec![Role::transactor()];
            if n < 3 {
                roles.push(Role::governor());
            }
            FoundingIdentity {
                id: IdentityId(n as u64 + 1),
                roles,
                accounts: vec![key.address()],
                window: Window::ALWAYS,
            }
        })
        .collect();
    let founders = Founders(vec![FoundingOrganisation {
        id: OrgId(1),
        name: "Bank".into(),
        identities,
    }]);
    let mut writer = RegistryWriter::new(&chain.store);
    founders.write(&mut writer).unwrap();
    let mut changes = ChangeSet::new();
    writer.finish(&mut changes).unwrap();
    let height = chain.store.next_height();
    chain.store.commit(height, &changes).unwrap();
    chain
}

fn propose(action: &Action, voting_blocks: u64) -> Vec<u8> {
    Gov::proposeCall {
        action: action.encode(),
        votingBlocks: voting_blocks,
    }
    .abi_encode()
}

fn vote(id: u64, approve: bool) -> Vec<u8> {
    Gov::voteCall { id, approve }.abi_encode()
}

fn events<E: SolEvent>(receipt: &TxReceipt) -> Vec<E> {
    receipt
        .logs()
        .iter()
        .filter(|log| log.address == GOVERNANCE_ADDRESS)
        .filter_map(|log| E::decode_log_data(&log.data).ok())
        .collect()
}

#[test]
fn a_passing_vote_freezes_an_account_for_the_rest_of_its_block() {
    let [g1, g2, g3, teller] = [1, 2, 3, 4].map(AccountKey::from_seed);
    let mut chain = governed(&[&g1, &g2, &g3, &teller]);
    let freeze = Action::SetAccountStatus {
        account: teller.address(),
        status: AccountStatus::Frozen,
    };
    let (outcome, _) = chain.apply(&[call_tx(&g1, 0, GOVERNANCE_ADDRESS, propose(&freeze, 10))]);
    let [proposed] = outcome.receipts.try_into().unwrap();
    assert!(proposed.success(), "{:?}", proposed.revert_reason);
    assert_eq!(events::<Gov::Proposed>(&proposed).len(), 1);
    assert_eq!(events::<Gov::Voted>(&proposed).len(), 1);
    assert!(
        proposed.gas_used > 21_000 + 100_000,
        "a proposal writes several slots: {} gas",
        proposed.gas_used
    );

    let at = chain.store.next_height();
    let sink = Address::repeat_byte(0x55);
    let (outcome, _) = chain.apply(&[
        transfer(&teller, 0, sink, ether(1)),
        call_tx(&teller, 1, GOVERNANCE_ADDRESS, vote(1, true)),
        call_tx(&g1, 1, GOVERNANCE_ADDRESS, vote(1, true)),
        call_tx(&g2, 0, GOVERNANCE_ADDRESS, vote(1, true)),
        transfer(&teller, 2, sink, ether(1)),
    ]);
    let reasons: Vec<Option<String>> = outcome
        .receipts
        .iter()
        .map(|r| r.revert_reason.clone())
        .collect();
    assert_eq!(
        reasons,
        vec![
            None,
            Some(format!(
                "account {} may not propose or vote: it is no governor's account valid at block {at}",
                teller.address()
            )),
            Some("identity #1 has voted on proposal 1 already".into()),
            None,
        ]
    );
    assert_eq!(events::<Gov::Executed>(&outcome.receipts[3]).len(), 1);
    let [skipped] = outcome.skipped.try_into().unwrap();
    assert_eq!(skipped.index, 4);
    assert_eq!(
        skipped.reason,
        SkipReason::NotPermitted(Refusal::Stopped {
            account: teller.address(),
            status: AccountStatus::Frozen,
            since: at,
            by: 1,
        })
    );
    assert_eq!(
        skipped.reason.to_string(),
        format!(
            "not permitted: account {} is frozen since block {at} by proposal 1",
            teller.address()
        )
    );
    assert_eq!(
        chain.balance(sink),
        ether(1),
        "only the transfer before the freeze"
    );

    let view = chain.call(
        GOVERNANCE_ADDRESS,
        Gov::proposalCall { id: 1 }.abi_encode().into(),
    );
    let proposal = Gov::proposalCall::abi_decode_returns(&view.output).unwrap();
    assert_eq!((proposal.status, proposal.approvals), (1, 2));
}

#[test]
fn a_vote_without_enough_gas_changes_nothing() {
    let [g1, g2, g3, teller] = [1, 2, 3, 4].map(AccountKey::from_seed);
    let mut chain = governed(&[&g1, &g2, &g3, &teller]);
    let freeze = Action::SetAccountStatus {
        account: teller.address(),
        status: AccountStatus::Frozen,
    };
    chain.apply(&[call_tx(&g1, 0, GOVERNANCE_ADDRESS, propose(&freeze, 10))]);
    let starved = sign(
        &g2,
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 30_000,
            to: TxKind::Call(GOVERNANCE_ADDRESS),
            input: Bytes::from(vote(1, true)),
            ..TxEip1559::default()
        },
    );
    let (outcome, _) = chain.apply(&[starved]);
    assert!(!outcome.receipts[0].success());
    assert_eq!(outcome.receipts[0].gas_used, 30_000, "a halt takes all gas");
    let view = chain.call(
        GOVERNANCE_ADDRESS,
        Gov::proposalCall { id: 1 }.abi_encode().into(),
    );
    let proposal = Gov::proposalCall::abi_decode_returns(&view.output).unwrap();
    assert_eq!((proposal.status, proposal.approvals), (0, 1), "still open");
    // With gas, the same vote passes it.
    let (outcome, _) = chain.apply(&[call_tx(&g2, 1, GOVERNANCE_ADDRESS, vote(1, true))]);
    assert_eq!(events::<Gov::Executed>(&outcome.receipts[0]).len(), 1);
}

#[test]
fn on_a_chain_without_a_registry_governance_calls_revert_saying_why() {
    let alice = AccountKey::from_seed(1);
    let mut chain = TestChain::new(&[&alice]);
    let (outcome, _) = chain.apply(&[call_tx(&alice, 0, GOVERNANCE_ADDRESS, vote(1, true))]);
    assert_eq!(
        outcome.receipts[0].revert_reason.as_deref(),
        Some(
            "this chain has no registry: its genesis lists no [[organisations]], so nothing is governed"
        )
    );
    assert_eq!(chain.balance(GOVERNANCE_ADDRESS), U256::ZERO);
}
