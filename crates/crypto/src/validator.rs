//! ed25519 validator keys: the identity of a consensus participant and of its p2p links.

use crate::{KeyError, ValidatorSigner, parse_hex_32, random_32};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Signer, ed25519};
use std::fmt;
use trellis_types::ValidatorId;

const KIND: &str = "ed25519 validator";

/// An ed25519 signing key in the form commonware's consensus and p2p crates use.
#[derive(Clone)]
pub struct ValidatorKey {
    private: ed25519::PrivateKey,
}

impl ValidatorKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self::from_bytes(&random_32()?))
    }

    /// The key with the given 32-byte ed25519 seed (every seed is valid).
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        let private = ed25519::PrivateKey::decode(seed.to_vec())
            .expect("any 32 bytes decode as an ed25519 seed");
        Self { private }
    }

    /// Parses a hex seed (`0x` prefix optional).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        Ok(Self::from_bytes(&parse_hex_32(KIND, text)?))
    }

    /// The commonware signer, for consensus and p2p.
    pub fn signer(&self) -> &ed25519::PrivateKey {
        &self.private
    }

    /// The public key, the validator's identity.
    pub fn public_key(&self) -> ed25519::PublicKey {
        self.private.public_key()
    }

    /// The identity recorded in the headers of blocks this validator proposes.
    pub fn validator_id(&self) -> ValidatorId {
        crate::signer::validator_id_of(&self.public_key())
    }

    /// A signer holding this key in memory.
    pub fn validator_signer(&self) -> ValidatorSigner {
        ValidatorSigner::memory(self.private.clone())
    }

    /// The public key as `0x`-prefixed hex.
    pub fn public_hex(&self) -> String {
        format!("0x{}", hex::encode(self.public_key().encode()))
    }

    /// The private seed as `0x`-prefixed hex.
    pub fn secret_hex(&self) -> String {
        // The codec encoding of an ed25519 private key is its 32-byte seed.
        format!("0x{}", hex::encode(self.private.encode()))
    }
}

/// Whether `id` is an ed25519 public key consensus and p2p accept (a valid curve point, in
/// canonical encoding): what a registry checks before recording a validator.
pub fn is_valid_validator_id(id: &ValidatorId) -> bool {
    ed25519::PublicKey::decode(id.0.to_vec()).is_ok()
}

/// Whether `signature` (64 bytes) is `id`'s ed25519 signature of `msg` under `namespace` (the
/// form [`ValidatorSigner::try_sign`] makes). A key or signature that does not decode is no
/// signature.
pub fn verify_validator_signature(
    id: &ValidatorId,
    namespace: &[u8],
    msg: &[u8],
    signature: &[u8],
) -> bool {
    use commonware_cryptography::Verifier as _;
    let (Ok(key), Ok(signature)) = (
        ed25519::PublicKey::decode(id.0.to_vec()),
        ed25519::Signature::decode(signature.to_vec()),
    ) else {
        return false;
    };
    key.verify(namespace, msg, &signature)
}

impl fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorKey")
            .field("public_key", &self.public_hex())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Verifier;

    #[test]
    fn rfc8032_test_vector_public_key() {
        // RFC 8032 section 7.1, TEST 1.
        let key = ValidatorKey::from_hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .unwrap();
        assert_eq!(
            key.public_hex(),
            "0xd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn only_curve_points_are_validator_keys() {
        let key = ValidatorKey::from_bytes(&[7; 32]);
        assert!(is_valid_validator_id(&key.validator_id()));
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(!is_valid_validator_id(&ValidatorId(off_curve)));
    }

    #[test]
    fn signs_and_verifies_under_namespace() {
        let key = ValidatorKey::generate().unwrap();
        let signature = key.signer().sign(b"trellis-test", b"message");
        assert!(
            key.public_key()
                .verify(b"trellis-test", b"message", &signature)
        );
        assert!(!key.public_key().verify(b"other", b"message", &signature));
        let again = ValidatorKey::from_hex(&key.secret_hex()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(
            format!("0x{}", hex::encode(key.validator_id().0)),
            key.public_hex()
        );
    }
}
