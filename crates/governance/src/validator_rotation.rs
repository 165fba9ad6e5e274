//! A node key's rotation: a validator (or a full node) hands its seat to a new ed25519 key (its
//! consensus and p2p identity; a full node's transport key) from the next epoch on, while the
//! chain keeps finalizing.
//!
//! The set's size does not change, so no vote is needed and the fault-tolerance floor does not
//! apply; instead both keys consent: the current key proves that its holder asks (a stolen
//! account key cannot move a seat), the new key that its holder has it (nobody is handed a
//! seat it cannot sign for). Both sign [`validator_rotation_message`], which names the
//! address the new key will listen on, so a relayed proof cannot point peers elsewhere.
//! A validator with an operator identity must also send the rotation from one of that
//! identity's accounts.

use crate::{
    NodeRole, RegistryError, RegistryWriter, RotationSigner, layout, validators::NewValidator,
};
use alloy_primitives::{Address, U256};
use std::net::SocketAddr;
use trellis_state::StateReader;
use trellis_types::{Epoch, ValidatorId};

/// The domain both keys sign a rotation under, apart from every consensus or p2p signature.
pub const VALIDATOR_ROTATION_NAMESPACE: &[u8] = b"trellis-validator-rotation";

/// What both keys sign: `old ‖ new ‖ the new key's p2p address as text`.
pub fn validator_rotation_message(
    old: &ValidatorId,
    new: &ValidatorId,
    p2p: &SocketAddr,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(64 + 48);
    message.extend_from_slice(&old.0);
    message.extend_from_slice(&new.0);
    message.extend_from_slice(p2p.to_string().as_bytes());
    message
}

/// A rotation as a transaction asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorRotation {
    pub old: ValidatorId,
    pub new: ValidatorId,
    /// Where the new key listens for p2p.
    pub p2p: SocketAddr,
    /// The current key's signature of the rotation message.
    pub old_signature: Vec<u8>,
    /// The new key's signature of the rotation message.
    pub new_signature: Vec<u8>,
}

impl ValidatorRotation {
    /// Checks both signatures.
    pub fn check(&self) -> Result<(), RegistryError> {
        let message = validator_rotation_message(&self.old, &self.new, &self.p2p);
        let signed = |key: &ValidatorId, signature: &[u8]| {
            trellis_crypto::verify_validator_signature(
                key,
                VALIDATOR_ROTATION_NAMESPACE,
                &message,
                signature,
            )
        };
        for (signer, key, signature) in [
            (RotationSigner::Current, &self.old, &self.old_signature),
            (RotationSigner::New, &self.new, &self.new_signature),
        ] {
            if !signed(key, signature) {
                return Err(RegistryError::BadValidatorRotation { key: *key, signer });
            }
        }
        Ok(())
    }
}

impl<R: StateReader + ?Sized> RegistryWriter<'_, R> {
    /// Ends `rotation.old`'s term before epoch `from` and starts `rotation.new`'s there, with
    /// the same operator, recording the successor. `caller`: the account that sent it (an
    /// account of the operator, if the validator has one). The signatures are checked by
    /// [`ValidatorRotation::check`] first.
    pub fn rotate_validator(
        &mut self,
        rotation: &ValidatorRotation,
        caller: Address,
        from: Epoch,
    ) -> Result<(), RegistryError> {
        let registry = self.registry();
        let known = registry.validator(&rotation.old)?;
        let record =
            known
                .filter(|record| record.term.contains(from))
                .ok_or(RegistryError::NotANode {
                    key: rotation.old,
                    role: known.map_or(NodeRole::Validator, |record| record.role),
                    epoch: from,
                })?;
        if let Some(operator) = record.identity {
            let sender = registry.account(&caller)?.map(|account| account.identity);
            if sender != Some(operator) {
                return Err(RegistryError::NotTheOperator {
                    key: rotation.old,
                    operator,
                    caller,
                });
            }
        }
        self.end_term(&record, from);
        let successor = NewValidator {
            key: rotation.new,
            p2p: Some(rotation.p2p),
            identity: record.identity,
        };
        self.add_node(record.role, successor, from)?;
        self.write(
            layout::validator_successor(&rotation.old),
            U256::from_be_bytes(rotation.new.0),
        );
        Ok(())
    }
}

impl<R: StateReader + ?Sized> crate::Registry<'_, R> {
    /// The key that took over from validator `key`, if it was rotated.
    pub fn validator_successor(
        &self,
        key: &ValidatorId,
    ) -> Result<Option<ValidatorId>, RegistryError> {
        let value = self.slot_value(layout::validator_successor(key))?;
        Ok((!value.is_zero()).then(|| ValidatorId(value.to_be_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use crate::validators::tests::{committed, genesis, set_of};
    use trellis_crypto::ValidatorKey;

    fn key(seed: u8) -> ValidatorKey {
        ValidatorKey::from_bytes(&[seed; 32])
    }

    fn rotation(
        old: &ValidatorKey,
        new: &ValidatorKey,
        signer_of_new: &ValidatorKey,
    ) -> ValidatorRotation {
        let p2p: SocketAddr = "127.0.0.1:30309".parse().unwrap();
        let message = validator_rotation_message(&old.validator_id(), &new.validator_id(), &p2p);
        let sign = |key: &ValidatorKey| {
            key.validator_signer()
                .sign_bytes(VALIDATOR_ROTATION_NAMESPACE, &message)
                .unwrap()
        };
        ValidatorRotation {
            old: old.validator_id(),
            new: new.validator_id(),
            p2p,
            old_signature: sign(old),
            new_signature: sign(signer_of_new),
        }
    }

    #[test]
    fn a_rotated_key_leaves_and_its_successor_joins_at_the_epoch_named() {
        let state = genesis(4);
        let rotation = rotation(&key(1), &key(9), &key(9));
        rotation.check().unwrap();
        let mut writer = RegistryWriter::new(&state);
        writer
            .rotate_validator(&rotation, Address::ZERO, Epoch(3))
            .unwrap();
        let state = committed(&state, writer);
        let registry = Registry::new(&state);
        let keys = |epoch| set_of(&state, Epoch(epoch));
        let id = |seed| key(seed).validator_id();
        assert_eq!(keys(2), vec![id(0), id(1), id(2), id(3)]);
        assert_eq!(keys(3), vec![id(0), id(2), id(3), id(9)]);
        let old = registry.validator(&id(1)).unwrap().unwrap();
        assert_eq!(registry.validator_successor(&old.key).unwrap(), Some(id(9)));
        let new = registry.validator(&id(9)).unwrap().unwrap();
        assert_eq!(new.p2p, Some(rotation.p2p));

        // A retired key cannot rotate again, and a recorded key cannot be a successor.
        let mut writer = RegistryWriter::new(&state);
        let again = super::tests::rotation(&key(1), &key(8), &key(8));
        let error = writer
            .rotate_validator(&again, Address::ZERO, Epoch(4))
            .unwrap_err();
        assert!(matches!(error, RegistryError::NotANode { .. }), "{error}");
        let taken = super::tests::rotation(&key(2), &key(9), &key(9));
        let error = writer
            .rotate_validator(&taken, Address::ZERO, Epoch(4))
            .unwrap_err();
        assert!(matches!(error, RegistryError::ValidatorKnown(_)), "{error}");
    }

    #[test]
    fn a_rotation_needs_both_keys_signatures() {
        let forged = rotation(&key(1), &key(9), &key(7));
        let error = forged.check().unwrap_err();
        assert_eq!(
            error,
            RegistryError::BadValidatorRotation {
                key: key(9).validator_id(),
                signer: RotationSigner::New
            }
        );
        assert!(error.to_string().contains("the new key"), "{error}");
        let mut stolen = rotation(&key(1), &key(9), &key(9));
        stolen.old_signature = rotation(&key(2), &key(9), &key(9)).old_signature;
        let error = stolen.check().unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::BadValidatorRotation {
                    signer: RotationSigner::Current,
                    ..
                }
            ),
            "{error}"
        );
        // The address is signed: a relayed proof cannot send peers elsewhere.
        let mut moved = rotation(&key(1), &key(9), &key(9));
        moved.p2p = "10.0.0.1:30309".parse().unwrap();
        assert!(moved.check().is_err());
        stolen.old_signature = vec![1, 2, 3];
        assert!(stolen.check().is_err(), "a short signature is no signature");
    }
}
