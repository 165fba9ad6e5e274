//! The validator set changes by proposal, at the next epoch boundary, and never into a set that
//! could not run the chain.

mod common;

use common::{Chain, EPOCH_LENGTH, pass, refused, validator_key};
use trellis_governance::{
    IdentityId, Registry, RegistryError, Role,
    contracts::{Action, ActionError, GovernanceError},
};
use trellis_types::{Epoch, ValidatorId};

fn set(chain: &Chain, epoch: u64) -> Vec<ValidatorId> {
    let registry = Registry::new(&chain.state);
    let records = registry.validators(Epoch(epoch)).unwrap();
    records.iter().map(|record| record.key).collect()
}

#[test]
fn a_validator_joins_and_leaves_at_the_next_epoch_boundary() {
    let mut chain = Chain::new(3);
    chain.skip(12);
    let genesis: Vec<_> = (0..4).map(validator_key).collect();
    let newcomer = validator_key(9);
    let add = Action::AddValidator {
        key: newcomer,
        p2p: "127.0.0.1:30309".parse().unwrap(),
        operator: None,
    };
    let decided_at = chain.height();
    assert_eq!(pass(&mut chain, &add), None);
    let next = EPOCH_LENGTH.next_epoch(decided_at).0;
    assert_eq!(next, 2, "decided in epoch 1 (blocks 10–19)");
    assert_eq!(set(&chain, 1), genesis, "the running epoch keeps its set");
    let mut grown = genesis.clone();
    grown.push(newcomer);
    assert_eq!(set(&chain, 2), grown);
    let record = Registry::new(&chain.state)
        .validator(&newcomer)
        .unwrap()
        .unwrap();
    assert_eq!(record.p2p, Some("127.0.0.1:30309".parse().unwrap()));

    chain.skip(10);
    let remove = Action::RemoveValidator { key: genesis[1] };
    assert_eq!(pass(&mut chain, &remove), None);
    assert_eq!(set(&chain, 2), grown, "epoch 2 has begun: it keeps its set");
    assert_eq!(
        set(&chain, 3),
        vec![genesis[0], genesis[2], genesis[3], newcomer]
    );

    // A retired key never returns; its operator registers a new one.
    let back = Action::AddValidator {
        key: genesis[1],
        p2p: "127.0.0.1:30301".parse().unwrap(),
        operator: None,
    };
    let reason = pass(&mut chain, &back).unwrap();
    assert!(reason.contains("recorded already"), "{reason}");
}

#[test]
fn changes_that_would_break_the_set_fail_with_their_reason() {
    let mut chain = Chain::new(3);
    // Four validators tolerate one fault; three would not.
    let reason = pass(
        &mut chain,
        &Action::RemoveValidator {
            key: validator_key(0),
        },
    )
    .unwrap();
    assert!(reason.contains("leave 3 validators"), "{reason}");
    assert_eq!(set(&chain, 1).len(), 4, "nothing changed");

    let unknown = Action::RemoveValidator {
        key: validator_key(7),
    };
    let reason = pass(&mut chain, &unknown).unwrap();
    assert!(reason.contains("is not a validator in epoch 1"), "{reason}");

    // An operator must hold the validator-operator role.
    let operated = Action::AddValidator {
        key: validator_key(8),
        p2p: "10.0.0.8:30300".parse().unwrap(),
        operator: Some(IdentityId(4)),
    };
    let reason = pass(&mut chain, &operated).unwrap();
    let expected = RegistryError::NotAnOperator(IdentityId(4)).to_string();
    assert!(reason.ends_with(&expected), "{reason}");
    let grant = Action::GrantRole {
        identity: IdentityId(4),
        role: Role::validator_operator(),
    };
    assert_eq!(pass(&mut chain, &grant), None);
    assert_eq!(pass(&mut chain, &operated), None);
    let record = Registry::new(&chain.state)
        .validator(&validator_key(8))
        .unwrap()
        .unwrap();
    assert_eq!(record.identity, Some(IdentityId(4)));
}

#[test]
fn malformed_validator_actions_are_refused_when_proposed() {
    let mut chain = Chain::new(3);
    let call = |key: [u8; 32], p2p: &str| {
        trellis_governance::contracts::abi::ITrellisActions::addValidatorCall {
            key: key.into(),
            p2p: p2p.into(),
            operator: 0,
        }
    };
    let host_name = alloy_sol_types::SolCall::abi_encode(&call(validator_key(9).0, "node9:30300"));
    assert_eq!(
        refused(chain.send(1, common::propose_call(host_name.into(), 10))),
        GovernanceError::Action(ActionError::BadAddress("node9:30300".into()))
    );
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    let action = Action::AddValidator {
        key: ValidatorId(off_curve),
        p2p: "127.0.0.1:1".parse().unwrap(),
        operator: None,
    };
    let reason = pass(&mut chain, &action).unwrap();
    assert!(reason.contains("not an ed25519 public key"), "{reason}");
}

#[test]
fn a_validator_key_expires_at_an_epoch_set_ahead_and_the_floor_counts_it_gone() {
    let mut chain = Chain::new(3);
    let fifth = Action::AddValidator {
        key: validator_key(9),
        p2p: "127.0.0.1:30309".parse().unwrap(),
        operator: None,
    };
    assert_eq!(pass(&mut chain, &fifth), None);
    chain.skip(10);
    let next = EPOCH_LENGTH.next_epoch(chain.height()).0;

    let now = Action::ExpireNodeKey {
        key: validator_key(0),
        until: Epoch(next - 1),
    };
    let reason = pass(&mut chain, &now).unwrap();
    assert!(reason.contains("from epoch"), "{reason}");

    let expiry = Action::ExpireNodeKey {
        key: validator_key(0),
        until: Epoch(next + 2),
    };
    assert_eq!(Action::decode(&expiry.encode()).unwrap(), expiry);
    assert_eq!(pass(&mut chain, &expiry), None);
    assert!(set(&chain, next + 1).contains(&validator_key(0)));
    assert!(!set(&chain, next + 2).contains(&validator_key(0)));
    assert_eq!(set(&chain, next + 2).len(), 4);

    // With one key set to go, removing another would leave three by then.
    let remove = Action::RemoveValidator {
        key: validator_key(1),
    };
    let reason = pass(&mut chain, &remove).unwrap();
    assert!(reason.contains("leave 3 validators"), "{reason}");
    assert_eq!(set(&chain, next).len(), 5, "nothing changed");
}
