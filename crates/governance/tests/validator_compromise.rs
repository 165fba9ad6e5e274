//! A leaked validator key reported through the registry (by its operator) or the council: the
//! chain records the block it is suspected from, the key leaves the set at the next epoch, and
//! a consenting successor takes its seat.

mod common;

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::{SolCall, SolEvent};
use common::{Chain, EPOCH_LENGTH, pass, registry_error, validator_key};
use std::net::SocketAddr;
use trellis_crypto::ValidatorKey;
use trellis_governance::{
    BY_ITS_OPERATOR, IdentityId, REGISTRY_ADDRESS, Registry, RegistryError, Role, SeatSuccessor,
    VALIDATOR_ROTATION_NAMESPACE, ValidatorCompromise,
    contracts::{Action, abi::ITrellisRegistry},
    validator_rotation_message,
};
use trellis_types::{Epoch, Height, ValidatorId};

fn set(chain: &Chain, epoch: u64) -> Vec<ValidatorId> {
    let registry = Registry::new(&chain.state);
    let records = registry.validators(Epoch(epoch)).unwrap();
    records.iter().map(|record| record.key).collect()
}

/// Successor `seed`'s consent to take `old`'s seat, signed by `signer`.
fn successor(old: ValidatorId, seed: u8, signer: u8) -> SeatSuccessor {
    let key = validator_key(seed);
    let p2p: SocketAddr = "127.0.0.1:30320".parse().unwrap();
    let message = validator_rotation_message(&old, &key, &p2p);
    let signature = ValidatorKey::from_bytes(&[signer; 32])
        .validator_signer()
        .sign_bytes(VALIDATOR_ROTATION_NAMESPACE, &message)
        .unwrap();
    SeatSuccessor {
        key,
        p2p,
        signature,
    }
}

fn report_call(report: &ValidatorCompromise) -> Vec<u8> {
    let successor = report.successor.as_ref();
    ITrellisRegistry::reportValidatorCompromisedCall {
        key: report.key.0.into(),
        suspectedFrom: report.since.get(),
        successor: successor.map_or(B256::ZERO, |s| s.key.0.into()),
        p2p: successor.map_or(String::new(), |s| s.p2p.to_string()),
        successorSignature: successor.map_or(Bytes::new(), |s| s.signature.clone().into()),
    }
    .abi_encode()
}

#[test]
fn an_operator_reports_its_leaked_key_and_hands_the_seat_to_a_successor() {
    let mut chain = Chain::new(3);
    // Identity 4 (the teller, account 0x04…) becomes the operator of validator 8.
    let grant = Action::GrantRole {
        identity: IdentityId(4),
        role: Role::validator_operator(),
    };
    assert_eq!(pass(&mut chain, &grant), None);
    let operated = Action::AddValidator {
        key: validator_key(8),
        p2p: "127.0.0.1:30308".parse().unwrap(),
        operator: Some(IdentityId(4)),
    };
    assert_eq!(pass(&mut chain, &operated), None);
    chain.skip(12);
    assert!(set(&chain, 1).contains(&validator_key(8)));

    let report = ValidatorCompromise {
        key: validator_key(8),
        since: Height(11),
        successor: Some(successor(validator_key(8), 9, 9)),
    };
    // Only the operator's accounts may report; a genesis validator has none.
    let error = registry_error(chain.call(3, REGISTRY_ADDRESS, report_call(&report)));
    assert!(
        matches!(error, RegistryError::NotTheOperator { .. }),
        "{error}"
    );
    let orphan = ValidatorCompromise {
        key: validator_key(0),
        since: Height(1),
        successor: None,
    };
    let error = registry_error(chain.call(4, REGISTRY_ADDRESS, report_call(&orphan)));
    assert!(error.to_string().contains("only the council"), "{error}");
    let forged = ValidatorCompromise {
        successor: Some(successor(validator_key(8), 9, 7)),
        ..report.clone()
    };
    let error = registry_error(chain.call(4, REGISTRY_ADDRESS, report_call(&forged)));
    assert!(error.to_string().contains("the new key"), "{error}");

    let reported_at = chain.height();
    let effects = chain
        .call(4, REGISTRY_ADDRESS, report_call(&report))
        .unwrap();
    chain.commit(&effects);
    let from = EPOCH_LENGTH.next_epoch(reported_at);
    let event = effects
        .logs
        .iter()
        .find_map(|log| ITrellisRegistry::ValidatorCompromised::decode_log_data(&log.data).ok())
        .expect("a ValidatorCompromised event");
    assert_eq!(event.suspectedFrom, 11);
    assert_eq!(event.successor, B256::from(validator_key(9).0));
    assert_eq!(event.fromEpoch, from.0);
    let running = EPOCH_LENGTH.epoch_of(reported_at).0;
    assert!(
        set(&chain, running).contains(&validator_key(8)),
        "the running epoch keeps it"
    );
    let next = set(&chain, from.0);
    assert!(!next.contains(&validator_key(8)) && next.contains(&validator_key(9)));

    let recorded = Registry::new(&chain.state)
        .validator_compromise(&validator_key(8))
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.since, recorded.reported),
        (Height(11), reported_at)
    );
    assert_eq!(recorded.by, BY_ITS_OPERATOR);
    let view = ITrellisRegistry::validatorOfCall {
        key: validator_key(8).0.into(),
    };
    let output = chain
        .call(1, REGISTRY_ADDRESS, view.abi_encode())
        .unwrap()
        .output;
    let record = ITrellisRegistry::validatorOfCall::abi_decode_returns(&output).unwrap();
    assert!(record.compromised);
    assert_eq!(record.suspectedFrom, 11);
    assert_eq!(record.untilEpoch, from.0);
    assert_eq!(record.successor, B256::from(validator_key(9).0));
}

#[test]
fn the_council_reports_a_genesis_validator_and_names_a_successor_when_the_floor_needs_one() {
    let mut chain = Chain::new(3);
    chain.skip(3);
    let alone = Action::CompromiseValidator(ValidatorCompromise {
        key: validator_key(1),
        since: Height(2),
        successor: None,
    });
    assert_eq!(Action::decode(&alone.encode()).unwrap(), alone);
    let reason = pass(&mut chain, &alone).unwrap();
    assert!(reason.contains("name a successor key"), "{reason}");

    let seated = Action::CompromiseValidator(ValidatorCompromise {
        key: validator_key(1),
        since: Height(2),
        successor: Some(successor(validator_key(1), 9, 9)),
    });
    assert_eq!(Action::decode(&seated.encode()).unwrap(), seated);
    assert!(
        seated.to_string().contains("its seat handed to"),
        "{seated}"
    );
    assert_eq!(pass(&mut chain, &seated), None);
    let ids = |seeds: &[u8]| seeds.iter().map(|s| validator_key(*s)).collect::<Vec<_>>();
    assert_eq!(set(&chain, 1), ids(&[0, 2, 3, 9]));
    let recorded = Registry::new(&chain.state)
        .validator_compromise(&validator_key(1))
        .unwrap()
        .unwrap();
    assert_eq!(recorded.since, Height(2));
    assert_eq!(
        recorded.by, 1,
        "proposal 1 (the first, refused when made, was never recorded)"
    );

    // A report is final: a second one is refused with the first's block.
    let again = Action::CompromiseValidator(ValidatorCompromise {
        key: validator_key(1),
        since: Height(1),
        successor: None,
    });
    let reason = pass(&mut chain, &again).unwrap();
    assert!(reason.contains("since block 2"), "{reason}");
}
