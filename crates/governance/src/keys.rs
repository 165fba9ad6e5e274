//! Account keys' lifecycle: a key hands over to a successor (rotation), is withdrawn
//! (revocation), or is reported leaked from a given block (compromise). Every change is final:
//! a retired key never transacts again, at admission or in execution, on any node.
//!
//! A rotation moves nothing but the key: the successor is registered to the same identity, so
//! it holds the same roles, limits and governor weight at once, and the old key is refused
//! from the rotation's block on. The successor proves it consents (and that whoever rotates
//! holds it) by signing [`rotation_digest`].

use crate::{
    AccountStatus, RegistryError, RegistryWriter, Window,
    layout::{self},
};
use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use trellis_state::StateReader;
use trellis_types::Height;

/// What a successor key signs to accept taking over from `old`: keccak-256 of
/// `"trellis key rotation" ‖ old ‖ new`. Only `old` can submit the rotation, so the proof needs
/// no chain id or height: replaying it elsewhere still needs `old`'s own transaction.
pub fn rotation_digest(old: &Address, new: &Address) -> B256 {
    let mut message = b"trellis key rotation".to_vec();
    message.extend_from_slice(old.as_slice());
    message.extend_from_slice(new.as_slice());
    keccak256(message)
}

/// Checks that `proof` (65 bytes: r ‖ s ‖ v, v 0/1 or 27/28) is `new`'s signature of the
/// rotation from `old`.
pub fn check_rotation_proof(
    old: &Address,
    new: &Address,
    proof: &[u8],
) -> Result<(), RegistryError> {
    let signature = Signature::try_from(proof)
        .map_err(|e| RegistryError::MalformedRotationProof(e.to_string()))?;
    let digest = rotation_digest(old, new);
    let signer = alloy_consensus::crypto::secp256k1::recover_signer(&signature, digest)
        .map_err(|e| RegistryError::MalformedRotationProof(e.to_string()))?;
    if signer != *new {
        return Err(RegistryError::BadRotationProof {
            successor: *new,
            signer,
        });
    }
    Ok(())
}

impl<R: StateReader + ?Sized> RegistryWriter<'_, R> {
    /// Registers `new` to `old`'s identity from block `height` on (until `old`'s window ends)
    /// and retires `old` there, recording its successor. `by`: who asked (a proposal, or
    /// [`crate::BY_ITS_KEY`]).
    pub fn rotate_account(
        &mut self,
        old: Address,
        new: Address,
        height: Height,
        by: u64,
    ) -> Result<(), RegistryError> {
        let Some(record) = self.registry().account(&old)? else {
            return Err(RegistryError::NoAccount(old));
        };
        if record.status.is_final() {
            return Err(RegistryError::KeyRetired {
                account: old,
                status: record.status,
            });
        }
        if self.registry().account(&new)?.is_some() {
            return Err(RegistryError::SuccessorTaken(new));
        }
        let window = Window {
            from: height.max(record.window.from),
            until: record.window.until,
        };
        self.add_account(new, record.identity, window)?;
        // A frozen key's successor inherits the freeze: rotating is no way out of one.
        if record.status == AccountStatus::Frozen {
            self.write_status(new, AccountStatus::Frozen, height, record.status_by, None)?;
        }
        self.write_status(old, AccountStatus::Rotated, height, by, None)?;
        self.write(
            layout::account_successor(&old),
            U256::from_be_slice(new.into_word().as_slice()),
        );
        Ok(())
    }

    /// Retires `account` from block `height` on: revoked, or, with `compromised_since`,
    /// reported leaked and suspected from that block (at or before `height`).
    pub fn retire_account(
        &mut self,
        account: Address,
        height: Height,
        by: u64,
        compromised_since: Option<Height>,
    ) -> Result<(), RegistryError> {
        if let Some(since) = compromised_since.filter(|since| *since > height) {
            return Err(RegistryError::CompromiseInFuture { since, now: height });
        }
        let status = match compromised_since {
            Some(_) => AccountStatus::Compromised,
            None => AccountStatus::Revoked,
        };
        self.write_status(account, status, height, by, compromised_since)
    }
}
