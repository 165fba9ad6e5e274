//! A secp256k1 key on the token: an account that signs Ethereum transactions.

use crate::{
    HsmError,
    token::{KeyHandle, KeyKind, KeyPair, Token},
};
use alloy_consensus::crypto::secp256k1::recover_signer;
use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use cryptoki::{
    mechanism::{Mechanism, MechanismType},
    object::KeyType,
};
use std::{fmt, sync::Arc};
use trellis_crypto::{DeviceFailure, TxSigner};

/// DER of OBJECT IDENTIFIER 1.3.132.0.10 (secp256k1, SEC 2).
const SECP256K1_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

fn kind() -> KeyKind {
    KeyKind {
        name: "secp256k1",
        key_type: KeyType::EC,
        curve: SECP256K1_OID,
        generate: Mechanism::EccKeyPairGen,
        sign: MechanismType::ECDSA,
        sign_name: "CKM_ECDSA",
    }
}

/// An ECDSA signature as Ethereum wants it: low-s, with the parity that recovers the signer.
pub type RecoverableSignature = Signature;

/// A secp256k1 private key that stays on its token, and the address it controls.
pub struct Secp256k1Key {
    token: Arc<Token>,
    label: String,
    private: KeyHandle,
    address: Address,
}

impl Secp256k1Key {
    /// The key labelled `label` on `token`.
    pub fn open(token: &Arc<Token>, label: &str) -> Result<Self, HsmError> {
        let kind = kind();
        token.require(&kind, "account signatures (transactions)")?;
        let pair = token.find(&kind, label)?;
        Self::from_pair(token, label, pair)
    }

    /// Generates a new key labelled `label` on `token`; it can never be exported.
    pub fn generate(token: &Arc<Token>, label: &str) -> Result<Self, HsmError> {
        let kind = kind();
        token.require(&kind, "account signatures (transactions)")?;
        let pair = token.generate(&kind, label)?;
        Self::from_pair(token, label, pair)
    }

    /// Moves an existing key (its 32-byte secret scalar) onto `token` under `label`.
    pub fn import(token: &Arc<Token>, label: &str, secret: &[u8; 32]) -> Result<Self, HsmError> {
        let kind = kind();
        token.require(&kind, "account signatures (transactions)")?;
        let secret_key =
            secp256k1::SecretKey::from_byte_array(secret).map_err(|e| HsmError::WrongKeyKind {
                token: token.label().to_string(),
                label: label.to_string(),
                kind: "secp256k1",
                reason: format!("the secret is not a secp256k1 scalar: {e}"),
            })?;
        let public = secp256k1::PublicKey::from_secret_key_global(&secret_key);
        let mut point = vec![0x04, 0x41];
        point.extend_from_slice(&public.serialize_uncompressed());
        let pair = token.import(&kind, label, secret, point)?;
        Self::from_pair(token, label, pair)
    }

    fn from_pair(token: &Arc<Token>, label: &str, pair: KeyPair) -> Result<Self, HsmError> {
        // The uncompressed point 04‖X‖Y, DER-wrapped in an OCTET STRING (04 41 …) or bare.
        let uncompressed = match pair.point.as_slice() {
            [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
            bare if bare.len() == 65 => bare,
            other => {
                return Err(HsmError::WrongKeyKind {
                    token: token.label().to_string(),
                    label: label.to_string(),
                    kind: "secp256k1",
                    reason: format!("its public point has {} bytes", other.len()),
                });
            }
        };
        let point =
            secp256k1::PublicKey::from_slice(uncompressed).map_err(|e| HsmError::WrongKeyKind {
                token: token.label().to_string(),
                label: label.to_string(),
                kind: "secp256k1",
                reason: format!("its public point is not on the curve: {e}"),
            })?;
        let encoded = point.serialize_uncompressed();
        let address = Address::from_slice(&keccak256(&encoded[1..])[12..]);
        Ok(Self {
            token: Arc::clone(token),
            label: label.to_string(),
            address,
            private: KeyHandle::new(kind, label, pair),
        })
    }

    /// The Ethereum address the key controls.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The key's label on its token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Signs a 32-byte prehash (a transaction's signature hash) inside the token.
    ///
    /// The token's raw ECDSA may return either of the two valid `s`; Ethereum accepts only the
    /// low one (EIP-2), and needs the parity of R, which the token does not give: it is found
    /// by recovering the signer under each parity.
    pub fn sign_hash(&self, hash: B256) -> Result<RecoverableSignature, HsmError> {
        let raw = self.token.sign(
            &self.private,
            "signing (CKM_ECDSA)",
            &Mechanism::Ecdsa,
            hash.as_slice(),
        )?;
        let bad = |reason: String| HsmError::BadSignature {
            token: self.token.label().to_string(),
            reason,
        };
        let mut signature = secp256k1::ecdsa::Signature::from_compact(&raw)
            .map_err(|e| bad(format!("{} bytes that are not r‖s: {e}", raw.len())))?;
        signature.normalize_s();
        let compact = signature.serialize_compact();
        let r = U256::from_be_slice(&compact[..32]);
        let s = U256::from_be_slice(&compact[32..]);
        for parity in [false, true] {
            let candidate = Signature::new(r, s, parity);
            if recover_signer(&candidate, hash).ok() == Some(self.address) {
                return Ok(candidate);
            }
        }
        Err(bad(
            "a signature that recovers to neither parity's key".into()
        ))
    }
}

impl TxSigner for Secp256k1Key {
    fn address(&self) -> Address {
        self.address
    }

    fn sign_hash(&self, hash: B256) -> Result<Signature, DeviceFailure> {
        Secp256k1Key::sign_hash(self, hash).map_err(|e| DeviceFailure(Box::new(e)))
    }
}

impl fmt::Debug for Secp256k1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secp256k1Key")
            .field("token", &self.token.label())
            .field("label", &self.label)
            .field("address", &self.address)
            .finish()
    }
}
