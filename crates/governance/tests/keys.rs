//! Account keys' lifecycle through the registry's system contract and the council: a key hands
//! its identity to a successor that proved it holds its key, retires itself, is reported
//! compromised from a block; each is final and refused from then on.

mod common;

use alloy_primitives::{Address, Bytes};
use alloy_sol_types::{SolCall, SolEvent};
use common::{Chain, account, pass, registry_error};
use trellis_crypto::AccountKey;
use trellis_governance::{
    AccountStatus, IdentityId, REGISTRY_ADDRESS, Refusal, Registry, RegistryError, SystemError,
    changes_rules,
    contracts::{Action, ActionError, abi::ITrellisRegistry},
    refusal, rotation_digest,
};
use trellis_types::Height;

/// `new`'s proof that it takes over from `old`: r ‖ s ‖ v.
fn proof(old: Address, new: &AccountKey) -> Bytes {
    new.sign_hash(rotation_digest(&old, &new.address()))
        .as_bytes()
        .to_vec()
        .into()
}

fn rotate(
    chain: &Chain,
    from: u8,
    successor: Address,
    proof: Bytes,
) -> Result<trellis_governance::Effects, SystemError> {
    let input = ITrellisRegistry::rotateKeyCall { successor, proof }.abi_encode();
    chain.call(from, REGISTRY_ADDRESS, input)
}

fn revoke(
    chain: &Chain,
    from: u8,
    suspected: Option<u64>,
) -> Result<trellis_governance::Effects, SystemError> {
    let input = ITrellisRegistry::revokeKeyCall {
        compromised: suspected.is_some(),
        suspectedFrom: suspected.unwrap_or(0),
    }
    .abi_encode();
    chain.call(from, REGISTRY_ADDRESS, input)
}

#[test]
fn a_key_hands_its_identity_to_a_successor_that_proved_it_holds_its_key() {
    let mut chain = Chain::new(3);
    let successor = AccountKey::from_seed(40);
    let effects = rotate(
        &chain,
        4,
        successor.address(),
        proof(account(4), &successor),
    )
    .unwrap();
    let rotated: Vec<_> = effects
        .logs
        .iter()
        .filter_map(|log| ITrellisRegistry::KeyRotated::decode_log_data(&log.data).ok())
        .collect();
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        (rotated[0].account, rotated[0].successor),
        (account(4), successor.address())
    );
    assert!(
        effects.logs.iter().all(changes_rules),
        "pools re-check their senders"
    );
    let height = chain.height();
    chain.commit(&effects);

    let registry = Registry::new(&chain.state);
    let old = registry.account(&account(4)).unwrap().unwrap();
    assert_eq!(old.status, AccountStatus::Rotated);
    assert_eq!(old.successor, Some(successor.address()));
    assert_eq!(old.status_since, height);
    let new = registry.account(&successor.address()).unwrap().unwrap();
    assert_eq!(
        new.identity,
        IdentityId(4),
        "the identity, and so its roles, move"
    );
    assert_eq!(new.status, AccountStatus::Normal);

    let now = chain.height();
    assert_eq!(
        refusal(&chain.state, &successor.address(), false, now).unwrap(),
        None
    );
    let refused = refusal(&chain.state, &account(4), false, now)
        .unwrap()
        .unwrap();
    assert!(matches!(
        refused,
        Refusal::Stopped {
            status: AccountStatus::Rotated,
            ..
        }
    ));
    let text = refused.to_string();
    assert!(
        text.contains("rotated to a successor key") && text.contains("by its own key"),
        "{text}"
    );

    // Final: the old key can neither rotate again nor come back.
    let again = AccountKey::from_seed(41);
    let error = registry_error(rotate(
        &chain,
        4,
        again.address(),
        proof(account(4), &again),
    ));
    assert!(matches!(error, RegistryError::KeyRetired { .. }), "{error}");
    let answer = chain
        .call(
            9,
            REGISTRY_ADDRESS,
            ITrellisRegistry::successorOfCall {
                account: account(4),
            }
            .abi_encode(),
        )
        .unwrap();
    assert_eq!(
        ITrellisRegistry::successorOfCall::abi_decode_returns(&answer.output).unwrap(),
        successor.address()
    );
}

#[test]
fn a_rotation_without_the_successors_own_signature_is_refused() {
    let chain = Chain::new(3);
    let successor = AccountKey::from_seed(50);
    let impostor = AccountKey::from_seed(51);
    // Signed by another key than the successor's.
    let error = registry_error(rotate(
        &chain,
        4,
        successor.address(),
        proof(account(4), &impostor),
    ));
    let text = error.to_string();
    assert!(
        text.contains(&impostor.address().to_string())
            || matches!(error, RegistryError::BadRotationProof { .. }),
        "{text}"
    );
    assert!(
        matches!(error, RegistryError::BadRotationProof { .. }),
        "{text}"
    );
    // The successor's proof for another old key does not move this one.
    let error = registry_error(rotate(
        &chain,
        4,
        successor.address(),
        proof(account(3), &successor),
    ));
    assert!(
        matches!(error, RegistryError::BadRotationProof { .. }),
        "{error}"
    );
    let error = registry_error(rotate(&chain, 4, successor.address(), vec![1u8; 10].into()));
    assert!(
        matches!(error, RegistryError::MalformedRotationProof(_)),
        "{error}"
    );
    // A successor must be a new key: not another member's account.
    let taken = AccountKey::from_seed(52);
    let mut chain = chain;
    let effects = rotate(&chain, 3, taken.address(), proof(account(3), &taken)).unwrap();
    chain.commit(&effects);
    let error = registry_error(rotate(
        &chain,
        4,
        taken.address(),
        proof(account(4), &taken),
    ));
    assert!(matches!(error, RegistryError::SuccessorTaken(_)), "{error}");
    // An unregistered caller has nothing to rotate.
    let error = registry_error(rotate(
        &chain,
        9,
        successor.address(),
        proof(account(9), &successor),
    ));
    assert!(matches!(error, RegistryError::NoAccount(_)), "{error}");
}

#[test]
fn a_key_revokes_itself_or_reports_its_own_compromise() {
    let mut chain = Chain::new(3);
    chain.skip(5);
    let effects = revoke(&chain, 4, None).unwrap();
    chain.commit(&effects);
    assert_eq!(chain.status_of(4), AccountStatus::Revoked);

    let now = chain.height();
    let error = registry_error(revoke(&chain, 3, Some(now.get() + 1)));
    assert!(
        matches!(error, RegistryError::CompromiseInFuture { .. }),
        "{error}"
    );
    let effects = revoke(&chain, 3, Some(2)).unwrap();
    chain.commit(&effects);
    let record = Registry::new(&chain.state)
        .account(&account(3))
        .unwrap()
        .unwrap();
    assert_eq!(record.status, AccountStatus::Compromised);
    assert_eq!(record.compromised_since, Some(Height(2)));
    let text = refusal(&chain.state, &account(3), false, chain.height())
        .unwrap()
        .unwrap()
        .to_string();
    assert!(
        text.contains("reported compromised") && text.contains("suspected of misuse from block 2"),
        "{text}"
    );
    // Final, even for the council: a compromised key is not unfrozen back into use.
    let error = registry_error(revoke(&chain, 3, None));
    assert!(matches!(error, RegistryError::KeyRetired { .. }), "{error}");
}

#[test]
fn the_council_retires_or_rotates_a_key_whose_holder_lost_it() {
    let mut chain = Chain::new(3);
    chain.skip(3);
    let retire = Action::RetireAccount {
        account: account(4),
        compromised_since: Some(Height(1)),
    };
    assert_eq!(pass(&mut chain, &retire), None);
    let record = Registry::new(&chain.state)
        .account(&account(4))
        .unwrap()
        .unwrap();
    assert_eq!(record.status, AccountStatus::Compromised);
    assert_eq!(record.status_by, 1, "by proposal 1");

    // Governor 3 lost its key but holds a new one: the council moves its seat.
    let successor = AccountKey::from_seed(60);
    let rotate = Action::RotateAccount {
        account: account(3),
        successor: successor.address(),
        proof: proof(account(3), &successor),
    };
    assert_eq!(Action::decode(&rotate.encode()).unwrap(), rotate);
    assert_eq!(pass(&mut chain, &rotate), None);
    let moved = Registry::new(&chain.state)
        .account(&successor.address())
        .unwrap()
        .unwrap();
    assert_eq!(moved.identity, IdentityId(3));

    // A forged proof makes the proposal fail, with the reason.
    let forged = Action::RotateAccount {
        account: account(2),
        successor: AccountKey::from_seed(61).address(),
        proof: proof(account(2), &AccountKey::from_seed(62)),
    };
    let reason = pass(&mut chain, &forged).expect("refused");
    assert!(reason.contains("not signed by"), "{reason}");

    // Retirement statuses come only with their records.
    let raw = trellis_governance::contracts::abi::ITrellisActions::setAccountStatusCall {
        account: account(2),
        status: AccountStatus::Compromised.code(),
    }
    .abi_encode();
    assert!(matches!(
        Action::decode(&raw),
        Err(ActionError::RetirementNeedsItsAction(
            AccountStatus::Compromised
        ))
    ));
}

#[test]
fn a_frozen_key_hands_its_freeze_to_its_successor() {
    let mut chain = Chain::new(3);
    assert_eq!(pass(&mut chain, &common::freeze(4)), None);
    let successor = AccountKey::from_seed(70);
    let effects = rotate(
        &chain,
        4,
        successor.address(),
        proof(account(4), &successor),
    )
    .unwrap();
    chain.commit(&effects);
    let new = Registry::new(&chain.state)
        .account(&successor.address())
        .unwrap()
        .unwrap();
    assert_eq!(new.status, AccountStatus::Frozen);
}
