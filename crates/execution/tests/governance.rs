//! The governance system contract inside the EVM: transactions propose and vote, the passing
//! vote freezes an account within its block, refusals revert with their reason, and the calls
//! cost gas.

mod common;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent};
use common::*;
use trellis_crypto::AccountKey;
use trellis_execution::{SkipReason, TxReceipt};
use trellis_governance::{
    AccountStatus, Founders, FoundingIdentity, FoundingOrganisation, IdentityId, OrgId, Refusal,
    RegistryWriter, Role, Window,
    contracts::{Action, GOVERNANCE_ADDRESS, abi::ITrellisGovernance as Gov},
};
use trellis_state::ChangeSet;

/// Governors (and deployers) `keys[0..3]`, a teller `keys[3]`, all transactors in one bank.
fn governed(keys: &[&AccountKey; 4]) -> TestChain {
    let mut chain = TestChain::new(keys);
    let identities = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let mut roles = vec![Role::transactor()];
            if n < 3 {
                roles.extend([Role::governor(), Role::deployer(), Role::approver()]);
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
            compromised_since: None,
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

alloy_sol_types::sol! {
    interface CouncilSeat {
        function vote(uint64 id, bool approve) external;
        function statusOf(uint64 id) external view returns (uint8 status);
        function voteByDelegateCall(uint64 id) external;
    }
    interface Relay {
        function relay(address target, bytes data) external returns (bytes);
    }
    interface ShipmentLog {
        error NotShipper(address account);
        event Shipped(address indexed by, bytes32 indexed consignment);
        function ship(bytes32 consignment) external;
    }
}

#[test]
fn contracts_take_a_governor_seat_and_check_their_own_roles() {
    use alloy_primitives::B256;
    let [g1, g2, g3, teller] = [1, 2, 3, 4].map(AccountKey::from_seed);
    let mut chain = governed(&[&g1, &g2, &g3, &teller]);
    let seat = g3.address().create(0);
    let log = g1.address().create(0);
    let (outcome, _) = chain.apply(&[
        deploy_tx(&g3, 0, creation_code("CouncilSeat"), &[]),
        deploy_tx(&g1, 0, creation_code("ShipmentLog"), &[]),
    ]);
    assert!(outcome.receipts.iter().all(TxReceipt::success));

    // The seat becomes an account of governor identity 3.
    let seat_of_3 = Action::AddAccount {
        account: seat,
        identity: IdentityId(3),
        window: Window::ALWAYS,
    };
    let (outcome, _) = chain.apply(&[
        call_tx(&g1, 1, GOVERNANCE_ADDRESS, propose(&seat_of_3, 10)),
        call_tx(&g2, 0, GOVERNANCE_ADDRESS, vote(1, true)),
    ]);
    assert_eq!(events::<Gov::Executed>(&outcome.receipts[1]).len(), 1);

    // Through the seat, identity 3 passes the grant of an application role to the teller.
    let shipper = Role::named("shipper");
    let grant = Action::GrantRole {
        identity: IdentityId(4),
        role: shipper,
    };
    let seat_vote = CouncilSeat::voteCall {
        id: 2,
        approve: true,
    }
    .abi_encode();
    let (outcome, _) = chain.apply(&[
        call_tx(&g1, 2, GOVERNANCE_ADDRESS, propose(&grant, 10)),
        call_tx(&g3, 1, seat, seat_vote),
    ]);
    let voted = &outcome.receipts[1];
    assert!(voted.success(), "{:?}", voted.revert_reason);
    let [ballot] = events::<Gov::Voted>(voted).try_into().unwrap();
    assert_eq!((ballot.voter, ballot.identity), (seat, 3));
    assert_eq!(events::<Gov::Executed>(voted).len(), 1);
    let status = chain.call(
        seat,
        CouncilSeat::statusOfCall { id: 2 }.abi_encode().into(),
    );
    assert_eq!(
        CouncilSeat::statusOfCall::abi_decode_returns(&status.output).unwrap(),
        1,
        "read through the Solidity interface"
    );

    let consignment = B256::repeat_byte(0xc0);
    let ship = ShipmentLog::shipCall { consignment }.abi_encode();
    let by_delegate = CouncilSeat::voteByDelegateCallCall { id: 2 }.abi_encode();
    let (outcome, _) = chain.apply(&[
        call_tx(&teller, 0, log, ship.clone()),
        call_tx(&g2, 1, log, ship),
        call_tx(&g3, 2, seat, by_delegate),
    ]);
    let [shipped, refused, delegated] = outcome.receipts.try_into().unwrap();
    assert!(shipped.success());
    assert_eq!(
        shipped.logs()[0].topics()[0],
        ShipmentLog::Shipped::SIGNATURE_HASH
    );
    assert!(!refused.success());
    let error = ShipmentLog::NotShipper::abi_decode(&refused.output).unwrap();
    assert_eq!(error.account, g2.address());
    assert_eq!(
        delegated.revert_reason.as_deref(),
        Some("system contracts are called, never delegate-called")
    );
}

#[test]
fn a_restricted_function_is_refused_directly_and_through_other_contracts() {
    use alloy_primitives::{B256, Selector};
    let [g1, g2, g3, teller] = [1, 2, 3, 4].map(AccountKey::from_seed);
    let mut chain = governed(&[&g1, &g2, &g3, &teller]);
    let log = g1.address().create(0);
    let relay = g1.address().create(1);
    let shipper = Role::named("shipper");
    let dispatcher = Role::named("dispatcher");
    let ship_selector = Selector::from(ShipmentLog::shipCall::SELECTOR);
    let restrict = Action::RestrictMethod {
        contract: log,
        selector: ship_selector,
        role: Some(dispatcher),
    };
    let grant = |role| Action::GrantRole {
        identity: IdentityId(4),
        role,
    };
    let (outcome, _) = chain.apply(&[
        deploy_tx(&g1, 0, creation_code("ShipmentLog"), &[]),
        deploy_tx(&g1, 1, creation_code("Relay"), &[]),
        call_tx(&g1, 2, GOVERNANCE_ADDRESS, propose(&grant(shipper), 10)),
        call_tx(&g2, 0, GOVERNANCE_ADDRESS, vote(1, true)),
        call_tx(&g1, 3, GOVERNANCE_ADDRESS, propose(&restrict, 10)),
        call_tx(&g2, 1, GOVERNANCE_ADDRESS, vote(2, true)),
    ]);
    assert!(outcome.receipts.iter().all(TxReceipt::success));
    assert_eq!(outcome.receipts.len(), 6);

    let ship = ShipmentLog::shipCall {
        consignment: B256::repeat_byte(7),
    }
    .abi_encode();
    let relayed = Relay::relayCall {
        target: log,
        data: ship.clone().into(),
    }
    .abi_encode();
    let refusal = Refusal::MethodNotPermitted {
        account: teller.address(),
        contract: log,
        selector: ship_selector,
        role: dispatcher,
    };
    let (outcome, _) = chain.apply(&[
        call_tx(&teller, 0, log, ship.clone()),
        call_tx(&teller, 0, relay, relayed.clone()),
    ]);
    let [skipped] = outcome.skipped.clone().try_into().unwrap();
    assert_eq!(
        (skipped.index, skipped.reason),
        (0, SkipReason::NotPermitted(refusal.clone()))
    );
    let [through_relay] = outcome.receipts.try_into().unwrap();
    assert!(!through_relay.success());
    assert_eq!(
        through_relay.revert_reason,
        Some(format!("not permitted: {refusal}")),
        "the relay bubbles up the refusal of its inner call"
    );

    // Once the teller's identity is a dispatcher, the restriction lets both calls through; the
    // relayed one then meets the contract's own check, which looks at its immediate caller.
    let (outcome, _) = chain.apply(&[
        call_tx(&g1, 4, GOVERNANCE_ADDRESS, propose(&grant(dispatcher), 10)),
        call_tx(&g2, 2, GOVERNANCE_ADDRESS, vote(3, true)),
        call_tx(&teller, 1, log, ship),
        call_tx(&teller, 2, relay, relayed),
    ]);
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    let [.., direct, relayed] = &outcome.receipts[..] else {
        panic!("four receipts")
    };
    assert!(direct.success());
    let error = ShipmentLog::NotShipper::abi_decode(&relayed.output).unwrap();
    assert_eq!(error.account, relay);
    let methods = chain.call(
        trellis_governance::REGISTRY_ADDRESS,
        trellis_governance::contracts::abi::ITrellisRegistry::methodRoleCall {
            target: log,
            selector: ship_selector,
        }
        .abi_encode()
        .into(),
    );
    assert_eq!(&methods.output[..], dispatcher.0.as_slice());
}

#[test]
fn value_limits_per_transaction_and_per_day_hold_the_strictest_of_identity_and_role() {
    use trellis_governance::{LimitHolder, Limits, OverLimit};
    let [g1, g2, g3, teller] = [1, 2, 3, 4].map(AccountKey::from_seed);
    let mut chain = governed(&[&g1, &g2, &g3, &teller]);
    let sink = Address::repeat_byte(0x66);
    let of_teller = Action::SetLimits {
        holder: LimitHolder::Identity(IdentityId(4)),
        limits: Limits {
            per_transaction: Some(ether(5)),
            per_day: Some(ether(8)),
            hold_above: None,
        },
    };
    let (outcome, _) = chain.apply(&[
        call_tx(&g1, 0, GOVERNANCE_ADDRESS, propose(&of_teller, 10)),
        call_tx(&g2, 0, GOVERNANCE_ADDRESS, vote(1, true)),
    ]);
    assert_eq!(events::<Gov::Executed>(&outcome.receipts[1]).len(), 1);

    let (outcome, _) = chain.apply(&[
        transfer(&teller, 0, sink, ether(6)),
        transfer(&teller, 0, sink, ether(4)),
        transfer(&teller, 1, sink, ether(4)),
        transfer(&teller, 2, sink, U256::from(1)),
    ]);
    let reasons: Vec<(usize, SkipReason)> = outcome
        .skipped
        .iter()
        .map(|s| (s.index, s.reason.clone()))
        .collect();
    let identity = LimitHolder::Identity(IdentityId(4));
    assert_eq!(
        reasons,
        vec![
            (
                0,
                SkipReason::NotPermitted(Refusal::ValueAboveLimit(Box::new(OverLimit {
                    account: teller.address(),
                    value: ether(6),
                    limit: ether(5),
                    by: identity,
                    spent: U256::ZERO,
                })))
            ),
            (
                3,
                SkipReason::NotPermitted(Refusal::DailyLimitReached(Box::new(OverLimit {
                    account: teller.address(),
                    value: U256::from(1),
                    spent: ether(8),
                    limit: ether(8),
                    by: identity,
                })))
            ),
        ]
    );
    assert_eq!(chain.balance(sink), ether(8));

    // A stricter limit on a role the teller holds applies instead.
    let of_transactors = Action::SetLimits {
        holder: LimitHolder::Role(Role::transactor()),
        limits: Limits {
            per_transaction: Some(ether(2)),
            per_day: None,
            hold_above: None,
        },
    };
    let (outcome, _) = chain.apply(&[
        call_tx(&g1, 1, GOVERNANCE_ADDRESS, propose(&of_transactors, 10)),
        call_tx(&g2, 1, GOVERNANCE_ADDRESS, vote(2, true)),
        transfer(&g3, 0, sink, ether(3)),
    ]);
    let [skipped] = outcome.skipped.try_into().unwrap();
    assert_eq!(
        skipped.reason.to_string(),
        format!(
            "not permitted: account {} may send at most 2000000000000000000 wei in one transaction (the limit of the transactor role), not 3000000000000000000",
            g3.address()
        )
    );
}

#[test]
fn a_transfer_above_the_hold_threshold_waits_in_escrow_for_another_identitys_approver() {
    use trellis_governance::{
        LimitHolder, Limits, OverLimit,
        contracts::{HOLDS_ADDRESS, abi::ITrellisHolds as Holds},
    };
    let [g1, g2, g3, teller] = [1, 2, 3, 4].map(AccountKey::from_seed);
    let mut chain = governed(&[&g1, &g2, &g3, &teller]);
    let (small, large) = (Address::repeat_byte(0x71), Address::repeat_byte(0x72));
    let hold_above = Action::SetLimits {
        holder: LimitHolder::Identity(IdentityId(4)),
        limits: Limits {
            hold_above: Some(ether(5)),
            ..Limits::default()
        },
    };
    chain.apply(&[
        call_tx(&g1, 0, GOVERNANCE_ADDRESS, propose(&hold_above, 10)),
        call_tx(&g2, 0, GOVERNANCE_ADDRESS, vote(1, true)),
    ]);

    let (outcome, _) = chain.apply(&[
        transfer(&teller, 0, small, ether(3)),
        transfer(&teller, 1, large, ether(7)),
        transfer(&teller, 2, GOVERNANCE_ADDRESS, ether(7)),
        call_tx(
            &teller,
            2,
            HOLDS_ADDRESS,
            Holds::approveCall { id: 1 }.abi_encode(),
        ),
    ]);
    assert_eq!(
        chain.balance(small),
        ether(3),
        "below the threshold: delivered"
    );
    assert_eq!(chain.balance(large), U256::ZERO, "above it: held");
    assert_eq!(chain.balance(HOLDS_ADDRESS), ether(7));
    let held = &outcome.receipts[1];
    assert!(held.success());
    let [event] = held
        .logs()
        .iter()
        .filter_map(|log| Holds::Held::decode_log_data(&log.data).ok())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    assert_eq!((event.id, event.to, event.value), (1, large, ether(7)));
    let [skipped] = outcome.skipped.clone().try_into().unwrap();
    assert_eq!(
        skipped.reason,
        SkipReason::NotPermitted(Refusal::NotHoldable(Box::new(OverLimit {
            account: teller.address(),
            value: ether(7),
            limit: ether(5),
            by: LimitHolder::Identity(IdentityId(4)),
            spent: U256::ZERO,
        })))
    );
    assert_eq!(
        outcome.receipts[2].revert_reason,
        Some(format!(
            "account {} may not decide held transfers: it holds no approver role valid at block {}",
            teller.address(),
            chain.store.next_height().get() - 1
        ))
    );

    let approve = Holds::approveCall { id: 1 }.abi_encode();
    let (outcome, _) = chain.apply(&[
        call_tx(&g3, 0, HOLDS_ADDRESS, approve.clone()),
        call_tx(&g1, 1, HOLDS_ADDRESS, approve),
        transfer(&teller, 3, large, ether(6)),
        call_tx(
            &g1,
            2,
            HOLDS_ADDRESS,
            Holds::reclaimCall { id: 2 }.abi_encode(),
        ),
    ]);
    let reasons: Vec<Option<String>> = outcome
        .receipts
        .iter()
        .map(|r| r.revert_reason.clone())
        .collect();
    assert_eq!(reasons[0], None);
    assert_eq!(
        reasons[1].as_deref(),
        Some("held transfer 1 is released already")
    );
    assert_eq!(reasons[2], None);
    assert!(
        reasons[3]
            .as_deref()
            .is_some_and(|r| r.starts_with("held transfer 2 waits for an approver until block")),
        "{reasons:?}"
    );
    assert_eq!(chain.balance(large), ether(7), "released to its recipient");
    assert_eq!(chain.balance(HOLDS_ADDRESS), ether(6), "the second waits");
    let view = chain.call(
        HOLDS_ADDRESS,
        Holds::holdOfCall { id: 1 }.abi_encode().into(),
    );
    let hold = Holds::holdOfCall::abi_decode_returns(&view.output).unwrap();
    assert_eq!(
        (hold.from, hold.to, hold.status),
        (teller.address(), large, 1)
    );
}
