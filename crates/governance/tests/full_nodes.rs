//! Full nodes' transport keys are registry records like validators' keys, in a role of their
//! own: let in and cut off by vote at the next epoch, rotated by consent of both keys, and
//! never counted as validators.

mod common;

use alloy_sol_types::SolCall;
use common::{Chain, EPOCH_LENGTH, pass, validator_key};
use std::net::SocketAddr;
use trellis_crypto::ValidatorKey;
use trellis_governance::{
    NodeRole, REGISTRY_ADDRESS, Registry, VALIDATOR_ROTATION_NAMESPACE,
    contracts::{Action, abi::ITrellisRegistry},
    validator_rotation_message,
};
use trellis_types::{Epoch, ValidatorId};

fn full_nodes(chain: &Chain, epoch: u64) -> Vec<ValidatorId> {
    let records = Registry::new(&chain.state)
        .full_nodes(Epoch(epoch))
        .unwrap();
    records.iter().map(|record| record.key).collect()
}

fn validators(chain: &Chain, epoch: u64) -> Vec<ValidatorId> {
    let records = Registry::new(&chain.state)
        .validators(Epoch(epoch))
        .unwrap();
    records.iter().map(|record| record.key).collect()
}

/// The rotation of node key `old` to `new` at `p2p`, signed by both.
fn rotation(old: u8, new: u8, p2p: &str) -> Vec<u8> {
    let p2p: SocketAddr = p2p.parse().unwrap();
    let (old_id, new_id) = (validator_key(old), validator_key(new));
    let message = validator_rotation_message(&old_id, &new_id, &p2p);
    let sign = |seed: u8| {
        ValidatorKey::from_bytes(&[seed; 32])
            .validator_signer()
            .sign_bytes(VALIDATOR_ROTATION_NAMESPACE, &message)
            .unwrap()
    };
    ITrellisRegistry::rotateValidatorCall {
        key: old_id.0.into(),
        successor: new_id.0.into(),
        p2p: p2p.to_string(),
        keySignature: sign(old).into(),
        successorSignature: sign(new).into(),
    }
    .abi_encode()
}

#[test]
fn a_full_node_is_let_in_rotated_and_cut_off_at_epoch_boundaries() {
    let mut chain = Chain::new(3);
    let add = Action::AddFullNode {
        key: validator_key(20),
        p2p: "127.0.0.1:30320".parse().unwrap(),
        operator: None,
    };
    assert_eq!(Action::decode(&add.encode()).unwrap(), add);
    let decided_at = chain.height();
    assert_eq!(pass(&mut chain, &add), None);
    let next = EPOCH_LENGTH.next_epoch(decided_at).0;
    assert!(full_nodes(&chain, next - 1).is_empty());
    assert_eq!(full_nodes(&chain, next), vec![validator_key(20)]);
    assert_eq!(validators(&chain, next).len(), 4, "a full node never votes");
    let record = Registry::new(&chain.state)
        .validator(&validator_key(20))
        .unwrap()
        .unwrap();
    assert_eq!(record.role, NodeRole::FullNode);

    // A validator's removal does not take full nodes, nor the reverse.
    let wrong = Action::RemoveValidator {
        key: validator_key(20),
    };
    let reason = pass(&mut chain, &wrong).unwrap();
    assert!(reason.contains("is not a validator in epoch"), "{reason}");
    let wrong = Action::RemoveFullNode {
        key: validator_key(0),
    };
    let reason = pass(&mut chain, &wrong).unwrap();
    assert!(reason.contains("is not a full node in epoch"), "{reason}");

    // Its operator's keys consent; the successor is a full node too, from the next epoch.
    chain.skip(10);
    let rotated_at = chain.height();
    let effects = chain
        .call(4, REGISTRY_ADDRESS, rotation(20, 21, "127.0.0.1:30321"))
        .unwrap();
    chain.commit(&effects);
    let from = EPOCH_LENGTH.next_epoch(rotated_at).0;
    assert_eq!(full_nodes(&chain, from - 1), vec![validator_key(20)]);
    assert_eq!(full_nodes(&chain, from), vec![validator_key(21)]);
    assert_eq!(validators(&chain, from).len(), 4);

    // Cut off without any floor: a chain needs no full node.
    let remove = Action::RemoveFullNode {
        key: validator_key(21),
    };
    assert_eq!(pass(&mut chain, &remove), None);
    let gone = EPOCH_LENGTH.next_epoch(chain.height()).0;
    assert!(full_nodes(&chain, gone).is_empty());
    // A retired key never returns, in either role.
    let back = Action::AddValidator {
        key: validator_key(20),
        p2p: "127.0.0.1:30320".parse().unwrap(),
        operator: None,
    };
    let reason = pass(&mut chain, &back).unwrap();
    assert!(reason.contains("recorded already"), "{reason}");
}
