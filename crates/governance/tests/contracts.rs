//! The council decides by weighted vote: proposals, ballots, thresholds, expiry and every
//! refusal, run as the EVM runs them (a call on a state, giving effects) without the EVM.

mod common;

use alloy_primitives::{Bytes, U256};
use alloy_sol_types::{SolCall, SolValue};
use common::{Chain, account, events, freeze, propose_call, refused};
use trellis_governance::{
    AccountStatus, Effects, IdentityId, REGISTRY_ADDRESS, Refusal, Role, SystemCall, SystemError,
    contracts::{
        Action, ActionError, GOVERNANCE_ADDRESS, GovernanceError, ProposalId, ProposalStatus,
        Thresholds, abi::ITrellisGovernance as Gov,
    },
    refusal, system_call,
};
use trellis_state::MemoryStore;
use trellis_types::Height;

#[test]
fn a_freeze_passes_with_two_of_three_governors_and_stops_the_account() {
    let mut chain = Chain::new(3);
    let proposed = chain.propose(1, &freeze(4), 10).unwrap();
    assert_eq!(
        u64::abi_decode(&proposed.output).unwrap(),
        1,
        "the first proposal is 1"
    );
    let [created] = events::<Gov::Proposed>(&proposed).try_into().unwrap();
    assert_eq!(
        (created.id, created.proposer, created.expires),
        (1, account(1), 11)
    );
    assert_eq!(
        events::<Gov::Voted>(&proposed).len(),
        1,
        "the proposer approves"
    );
    assert!(
        events::<Gov::Executed>(&proposed).is_empty(),
        "1 of 3 is not enough"
    );
    assert_eq!(chain.status_of(4), AccountStatus::Normal);
    let open = chain.proposal(1);
    assert_eq!((open.status, open.approvals, open.rejections), (0, 1, 0));
    assert_eq!(Action::decode(&open.action).unwrap(), freeze(4));

    let at = chain.height();
    let passed = chain.vote(2, 1, true).unwrap();
    assert_eq!(events::<Gov::Executed>(&passed).len(), 1);
    assert_eq!(chain.status_of(4), AccountStatus::Frozen);
    let closed = chain.proposal(1);
    assert_eq!(
        (closed.status, closed.approvals),
        (ProposalStatus::Executed.code(), 2)
    );
    assert_eq!(
        refusal(&chain.state, &account(4), false, chain.height()).unwrap(),
        Some(Refusal::Stopped {
            account: account(4),
            status: AccountStatus::Frozen,
            since: at,
            by: 1,
            compromised_since: None,
        })
    );
    assert_eq!(
        refused(chain.vote(3, 1, true)),
        GovernanceError::Closed {
            id: ProposalId(1),
            status: ProposalStatus::Executed
        }
    );

    // Unfreezing is a proposal like any other.
    let unfreeze = Action::SetAccountStatus {
        account: account(4),
        status: AccountStatus::Normal,
    };
    chain.propose(3, &unfreeze, 10).unwrap();
    chain.vote(1, 2, true).unwrap();
    assert_eq!(chain.status_of(4), AccountStatus::Normal);
}

#[test]
fn votes_are_refused_from_non_governors_twice_from_one_identity_and_after_expiry() {
    let mut chain = Chain::new(3);
    chain.propose(1, &freeze(4), 2).unwrap();
    let at = chain.height();
    assert_eq!(
        refused(chain.vote(4, 1, true)),
        GovernanceError::NotGovernor {
            account: account(4),
            height: at
        }
    );
    assert_eq!(
        refused(chain.vote(1, 1, false)),
        GovernanceError::AlreadyVoted {
            id: ProposalId(1),
            identity: IdentityId(1)
        }
    );
    assert_eq!(
        refused(chain.vote(2, 7, true)),
        GovernanceError::NoProposal(ProposalId(7))
    );
    chain.skip(2);
    let error = refused(chain.vote(2, 1, true));
    assert_eq!(
        error,
        GovernanceError::Expired {
            id: ProposalId(1),
            expires: Height(3)
        }
    );
    assert_eq!(
        error.to_string(),
        "proposal 1 expired at block 3: votes no longer count"
    );
    assert_eq!(chain.proposal(1).status, ProposalStatus::Expired.code());
    assert_eq!(chain.status_of(4), AccountStatus::Normal, "nothing changed");
}

#[test]
fn a_proposal_is_rejected_once_it_can_no_longer_pass() {
    let mut chain = Chain::new(3);
    chain.propose(1, &freeze(4), 10).unwrap();
    assert!(events::<Gov::Rejected>(&chain.vote(2, 1, false).unwrap()).is_empty());
    let last = chain.vote(3, 1, false).unwrap();
    assert_eq!(events::<Gov::Rejected>(&last).len(), 1, "1 of 3 approves");
    assert_eq!(chain.proposal(1).status, ProposalStatus::Rejected.code());
    assert_eq!(chain.status_of(4), AccountStatus::Normal);
}

#[test]
fn proposals_that_cannot_be_carried_out_are_refused_with_their_reason() {
    let mut chain = Chain::new(1);
    let cases: Vec<(Vec<u8>, GovernanceError)> = vec![
        (
            propose_call(Bytes::from_static(b"\x01\x02\x03\x04 not an action"), 10),
            GovernanceError::Action(ActionError::Malformed(String::new())),
        ),
        (
            propose_call(
                Action::RevokeRole {
                    identity: IdentityId(1),
                    role: Role::governor(),
                }
                .encode(),
                10,
            ),
            GovernanceError::Action(ActionError::LastGovernor(IdentityId(1))),
        ),
        (
            propose_call(freeze(9).encode(), 10),
            GovernanceError::Action(ActionError::Registry(
                trellis_governance::RegistryError::NoAccount(account(9)),
            )),
        ),
        (
            propose_call(
                Action::SetThresholds(Thresholds {
                    participation_bps: 100,
                    approval_bps: 4_000,
                })
                .encode(),
                10,
            ),
            GovernanceError::Action(ActionError::BadThresholds(Thresholds {
                participation_bps: 100,
                approval_bps: 4_000,
            })),
        ),
        (
            propose_call(freeze(4).encode(), 0),
            GovernanceError::VotingBlocks(0),
        ),
        (
            propose_call(
                Action::GrantRole {
                    identity: IdentityId(4),
                    role: Role::transactor(),
                }
                .encode(),
                10,
            ),
            GovernanceError::Action(ActionError::RoleHeld {
                identity: IdentityId(4),
                role: Role::transactor(),
            }),
        ),
        (
            propose_call(
                Action::RestrictMethod {
                    contract: account(7),
                    selector: alloy_primitives::Selector::repeat_byte(1),
                    role: None,
                }
                .encode(),
                10,
            ),
            GovernanceError::Action(ActionError::SameMethodRole {
                contract: account(7),
                selector: alloy_primitives::Selector::repeat_byte(1),
            }),
        ),
    ];
    for (input, expected) in cases {
        let error = refused(chain.send(1, input));
        match (&error, &expected) {
            (
                GovernanceError::Action(ActionError::Malformed(detail)),
                GovernanceError::Action(ActionError::Malformed(_)),
            ) => assert!(!detail.is_empty()),
            _ => assert_eq!(error, expected),
        }
    }
    let count = chain
        .call(
            1,
            GOVERNANCE_ADDRESS,
            Gov::proposalCountCall {}.abi_encode(),
        )
        .unwrap();
    assert_eq!(
        u64::abi_decode(&count.output).unwrap(),
        0,
        "no proposal was made"
    );
}

#[test]
fn a_lone_governor_decides_alone_and_weights_change_the_count() {
    let mut chain = Chain::new(1);
    // Alone, the proposer's own approval passes it at once.
    let grant = Action::GrantRole {
        identity: IdentityId(4),
        role: Role::governor(),
    };
    assert_eq!(
        events::<Gov::Executed>(&chain.propose(1, &grant, 5).unwrap()).len(),
        1
    );
    let weight = |chain: &Chain, input: Vec<u8>| {
        let effects = chain.call(1, GOVERNANCE_ADDRESS, input).unwrap();
        u64::abi_decode(&effects.output).unwrap()
    };
    assert_eq!(weight(&chain, Gov::totalWeightCall {}.abi_encode()), 2);
    // Two governors: governor 1 needs governor 4 now, to weigh 3.
    let heavier = Action::SetGovernorWeight {
        identity: IdentityId(1),
        weight: 3,
    };
    chain.propose(1, &heavier, 5).unwrap();
    chain.vote(4, 2, true).unwrap();
    assert_eq!(weight(&chain, Gov::totalWeightCall {}.abi_encode()), 4);
    let of_one = Gov::governorWeightCall { identity: 1 }.abi_encode();
    assert_eq!(weight(&chain, of_one), 3);
    // With 3 of 4, governor 1 passes alone again.
    let executed = chain.propose(1, &freeze(4), 5).unwrap();
    assert_eq!(events::<Gov::Executed>(&executed).len(), 1);
}

#[test]
fn system_contracts_refuse_what_they_cannot_do() {
    let chain = Chain::new(1);
    let propose = propose_call(freeze(4).encode(), 5);
    let mut call = SystemCall {
        caller: account(1),
        height: chain.height(),
        input: &propose,
        is_static: true,
        value: U256::ZERO,
    };
    let run = |call: &SystemCall<'_>| system_call(&chain.state, &GOVERNANCE_ADDRESS, call).unwrap();
    assert_eq!(run(&call), Err(SystemError::StaticCall));
    call.is_static = false;
    call.value = U256::from(1);
    assert_eq!(run(&call), Err(SystemError::ValueSent));
    call.value = U256::ZERO;
    let unknown = [0xde, 0xad, 0xbe, 0xef];
    call.input = &unknown;
    assert!(matches!(run(&call), Err(SystemError::UnknownFunction(_))));
    call.input = &unknown[..2];
    assert_eq!(run(&call), Err(SystemError::NoSelector(2)));
    assert_eq!(
        system_call(&MemoryStore::new(), &GOVERNANCE_ADDRESS, &call).unwrap(),
        Err(SystemError::NotGoverned)
    );
    assert!(system_call(&chain.state, &account(1), &call).is_none());
}

#[test]
fn a_daily_limit_counts_per_utc_day_and_limited_roles_are_listed_while_limited() {
    use trellis_governance::{
        Day, Intent, LimitHolder, Limits, Registry, Request, When, spending_record, tx_refusal,
    };
    let mut chain = Chain::new(1);
    let daily = |per_day: u64| Limits {
        per_transaction: None,
        per_day: Some(U256::from(per_day)),
        hold_above: None,
    };
    let teller = Action::SetLimits {
        holder: LimitHolder::Identity(IdentityId(4)),
        limits: daily(10),
    };
    assert_eq!(
        events::<Gov::Executed>(&chain.propose(1, &teller, 5).unwrap()).len(),
        1
    );
    let request = Request {
        sender: account(4),
        intent: Intent::Call {
            contract: account(9),
            selector: None,
        },
        value: U256::from(7),
    };
    let today = When {
        height: chain.height(),
        day: Day(20_000),
    };
    assert_eq!(tx_refusal(&chain.state, &request, today), Ok(None));
    let (slot, total) = spending_record(&chain.state, &account(4), U256::from(7), today.day)
        .unwrap()
        .expect("a daily limit applies, so spending is counted");
    let mut spent = Effects::default();
    spent.writes.insert((REGISTRY_ADDRESS, slot), total);
    chain.commit(&spent);
    assert!(matches!(
        tx_refusal(&chain.state, &request, today),
        Ok(Some(Refusal::DailyLimitReached(over))) if over.spent == U256::from(7)
    ));
    let tomorrow = When {
        day: Day(20_001),
        ..today
    };
    assert_eq!(tx_refusal(&chain.state, &request, tomorrow), Ok(None));

    // Roles enter the list of limited roles when given limits and leave it when lifted.
    for (role, limits) in [
        (Role::auditor(), daily(1)),
        (Role::oracle(), daily(2)),
        (Role::auditor(), Limits::default()),
    ] {
        let action = Action::SetLimits {
            holder: LimitHolder::Role(role),
            limits,
        };
        chain.propose(1, &action, 5).unwrap();
    }
    let registry = Registry::new(&chain.state);
    assert_eq!(registry.limited_roles().unwrap(), vec![Role::oracle()]);
    assert_eq!(
        registry.limits(LimitHolder::Role(Role::auditor())).unwrap(),
        Limits::default()
    );
}
