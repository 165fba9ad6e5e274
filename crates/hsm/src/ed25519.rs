//! An ed25519 key on the token: a validator's consensus and p2p identity.

use crate::{
    HsmError,
    token::{KeyHandle, KeyKind, KeyPair, Token},
};
use cryptoki::{
    mechanism::{
        Mechanism, MechanismType,
        eddsa::{EddsaParams, EddsaSignatureScheme},
    },
    object::KeyType,
};
use std::{fmt, sync::Arc};
use trellis_crypto::{DeviceFailure, Ed25519Device};

/// DER of OBJECT IDENTIFIER 1.3.101.112 (id-Ed25519, RFC 8410).
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn kind() -> KeyKind {
    KeyKind {
        name: "ed25519",
        key_type: KeyType::EC_EDWARDS,
        curve: ED25519_OID,
        generate: Mechanism::EccEdwardsKeyPairGen,
        sign: MechanismType::EDDSA,
        sign_name: "CKM_EDDSA",
    }
}

/// An ed25519 private key that stays on its token.
pub struct Ed25519Key {
    token: Arc<Token>,
    label: String,
    private: KeyHandle,
    public: [u8; 32],
}

impl Ed25519Key {
    /// The key labelled `label` on `token`.
    pub fn open(token: &Arc<Token>, label: &str) -> Result<Self, HsmError> {
        let kind = kind();
        token.require(
            &kind,
            "validator signatures (consensus votes, p2p handshakes)",
        )?;
        let pair = token.find(&kind, label)?;
        Self::from_pair(token, label, pair)
    }

    /// Generates a new key labelled `label` on `token`; it can never be exported.
    pub fn generate(token: &Arc<Token>, label: &str) -> Result<Self, HsmError> {
        let kind = kind();
        token.require(
            &kind,
            "validator signatures (consensus votes, p2p handshakes)",
        )?;
        let pair = token.generate(&kind, label)?;
        Self::from_pair(token, label, pair)
    }

    /// Moves an existing key (its 32-byte seed) onto `token` under `label`; from then on it
    /// signs there and cannot be read back.
    pub fn import(
        token: &Arc<Token>,
        label: &str,
        seed: &[u8; 32],
        public: &[u8; 32],
    ) -> Result<Self, HsmError> {
        let kind = kind();
        token.require(
            &kind,
            "validator signatures (consensus votes, p2p handshakes)",
        )?;
        let mut point = vec![0x04, 0x20];
        point.extend_from_slice(public);
        let pair = token.import(&kind, label, seed, point)?;
        Self::from_pair(token, label, pair)
    }

    fn from_pair(token: &Arc<Token>, label: &str, pair: KeyPair) -> Result<Self, HsmError> {
        // CKA_EC_POINT of an Edwards key is the 32-byte point, DER-wrapped in an OCTET STRING
        // by most modules (SoftHSM2 among them), bare by some.
        let raw = match pair.point.as_slice() {
            [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
            bare if bare.len() == 32 => bare,
            other => {
                return Err(HsmError::WrongKeyKind {
                    token: token.label().to_string(),
                    label: label.to_string(),
                    kind: "ed25519",
                    reason: format!("its public point has {} bytes", other.len()),
                });
            }
        };
        Ok(Self {
            token: Arc::clone(token),
            label: label.to_string(),
            public: raw.try_into().expect("length checked"),
            private: KeyHandle::new(kind, label, pair),
        })
    }

    /// The public key, as RFC 8032 encodes it.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The key's label on its token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Signs `payload` with pure Ed25519 (no prehash, no context) inside the token.
    pub fn sign(&self, payload: &[u8]) -> Result<[u8; 64], HsmError> {
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let signature =
            self.token
                .sign(&self.private, "signing (CKM_EDDSA)", &mechanism, payload)?;
        signature
            .as_slice()
            .try_into()
            .map_err(|_| HsmError::BadSignature {
                token: self.token.label().to_string(),
                reason: format!("an ed25519 signature of {} bytes", signature.len()),
            })
    }
}

impl Ed25519Device for Ed25519Key {
    fn public_key(&self) -> [u8; 32] {
        self.public
    }

    fn sign(&self, payload: &[u8]) -> Result<[u8; 64], DeviceFailure> {
        Ed25519Key::sign(self, payload).map_err(|e| DeviceFailure(Box::new(e)))
    }

    fn describe(&self) -> String {
        format!(
            "PKCS#11 token {:?}, key {:?}",
            self.token.label(),
            self.label
        )
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("token", &self.token.label())
            .field("label", &self.label)
            .field("public_key", &hex::encode(self.public))
            .finish()
    }
}
