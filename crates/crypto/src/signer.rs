//! A validator's signer: its ed25519 key in memory (development) or in a device (an HSM).
//!
//! Consensus votes and p2p handshakes are signed through [`ValidatorSigner`], whichever holds
//! the key. A device may fail (it was unplugged, its network link dropped): the signer then
//! signs nothing, says so once in the log, counts the failure, and signs again once the device
//! answers. Consensus treats "could not sign" as "did not vote" for that view (simplex records
//! the view as voted before signing), so a key is never used twice in one view, whatever the
//! device does.

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Signer, ed25519};
use commonware_math::algebra::Random;
use rand_core::CryptoRng;
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};
use trellis_types::ValidatorId;

/// Why a device did not sign.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeviceFailure(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// A device holding an ed25519 private key, which signs exact bytes with pure Ed25519.
pub trait Ed25519Device: Send + Sync + 'static {
    /// The public key, as RFC 8032 encodes it.
    fn public_key(&self) -> [u8; 32];
    /// Signs `payload` inside the device.
    fn sign(&self, payload: &[u8]) -> Result<[u8; 64], DeviceFailure>;
    /// Names the device and key, for logs ("pkcs11 token X, key Y").
    fn describe(&self) -> String;
}

#[derive(Clone)]
enum Holder {
    Memory(Arc<ed25519::PrivateKey>),
    Device(Arc<dyn Ed25519Device>),
}

/// Signing health shared by the clones of one signer.
#[derive(Default)]
struct Health {
    failing: AtomicBool,
    failures: AtomicU64,
    signatures: AtomicU64,
}

/// Signs as one validator, with the key in memory or in a device.
#[derive(Clone)]
pub struct ValidatorSigner {
    public: ed25519::PublicKey,
    holder: Holder,
    health: Arc<Health>,
}

impl ValidatorSigner {
    /// A signer holding `key` in memory.
    pub fn memory(key: ed25519::PrivateKey) -> Self {
        Self {
            public: key.public_key(),
            holder: Holder::Memory(Arc::new(key)),
            health: Arc::default(),
        }
    }

    /// A signer whose key stays in `device`.
    pub fn device(device: Arc<dyn Ed25519Device>) -> Result<Self, crate::KeyError> {
        let public = ed25519::PublicKey::decode(device.public_key().to_vec()).map_err(|e| {
            crate::KeyError::InvalidKey {
                kind: "ed25519 validator",
                reason: format!(
                    "{} holds a public key that is not on the curve: {e}",
                    device.describe()
                ),
            }
        })?;
        Ok(Self {
            public,
            holder: Holder::Device(device),
            health: Arc::default(),
        })
    }

    /// Whether the private key is held in this process's memory (not in a device).
    pub fn in_memory(&self) -> bool {
        matches!(self.holder, Holder::Memory(_))
    }

    /// The identity recorded in the headers of blocks this validator proposes.
    pub fn validator_id(&self) -> ValidatorId {
        validator_id_of(&self.public)
    }

    /// The public key as `0x`-prefixed hex.
    pub fn public_hex(&self) -> String {
        format!("0x{}", hex::encode(self.public.encode()))
    }

    /// Signs `msg` under `namespace`, or returns `None` if the device failed.
    pub fn try_sign(&self, namespace: &[u8], msg: &[u8]) -> Option<ed25519::Signature> {
        match &self.holder {
            Holder::Memory(key) => Some(key.sign(namespace, msg)),
            Holder::Device(device) => {
                let payload = commonware_utils::union_unique(namespace, msg);
                match device.sign(&payload) {
                    Ok(bytes) => {
                        self.recovered(device.as_ref());
                        let signature = ed25519::Signature::decode(bytes.to_vec()).ok();
                        if signature.is_some() {
                            self.health.signatures.fetch_add(1, Ordering::Relaxed);
                        }
                        signature
                    }
                    Err(failure) => {
                        self.failed(device.as_ref(), &failure);
                        None
                    }
                }
            }
        }
    }

    /// [`Self::try_sign`] as the 64 bytes a transaction carries (what
    /// [`crate::verify_validator_signature`] checks).
    pub fn sign_bytes(&self, namespace: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        self.try_sign(namespace, msg)
            .map(|signature| signature.encode().to_vec())
    }

    fn failed(&self, device: &dyn Ed25519Device, failure: &DeviceFailure) {
        self.health.failures.fetch_add(1, Ordering::Relaxed);
        if !self.health.failing.swap(true, Ordering::Relaxed) {
            tracing::error!(
                device = %device.describe(),
                error = %failure,
                "ALARM: the validator key's device stopped signing; this validator casts no votes and opens no links until it answers"
            );
        }
    }

    fn recovered(&self, device: &dyn Ed25519Device) {
        if self.health.failing.swap(false, Ordering::Relaxed) {
            tracing::warn!(device = %device.describe(), "the validator key's device signs again");
        }
    }

    /// Signing attempts that failed since start.
    pub fn failures(&self) -> u64 {
        self.health.failures.load(Ordering::Relaxed)
    }

    /// Whether the last signing attempt failed.
    pub fn is_failing(&self) -> bool {
        self.health.failing.load(Ordering::Relaxed)
    }
}

impl Signer for ValidatorSigner {
    type Signature = ed25519::Signature;
    type PublicKey = ed25519::PublicKey;

    fn public_key(&self) -> Self::PublicKey {
        self.public.clone()
    }

    /// The p2p layer's handshake has no way to report a failure: a device that cannot sign
    /// yields a signature that verifies for nothing, so the peer refuses the handshake and it
    /// is retried later.
    fn sign(&self, namespace: &[u8], msg: &[u8]) -> Self::Signature {
        self.try_sign(namespace, msg).unwrap_or_else(|| {
            ed25519::Signature::decode(vec![0u8; 64]).expect("64 zero bytes decode as a signature")
        })
    }
}

impl Random for ValidatorSigner {
    /// A random key in memory: what commonware's test helpers ask for.
    fn random(rng: impl CryptoRng) -> Self {
        Self::memory(ed25519::PrivateKey::random(rng))
    }
}

impl fmt::Debug for ValidatorSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holder = match &self.holder {
            Holder::Memory(_) => "memory".to_string(),
            Holder::Device(device) => device.describe(),
        };
        f.debug_struct("ValidatorSigner")
            .field("public_key", &self.public)
            .field("holder", &holder)
            .finish()
    }
}

/// The validator identity of an ed25519 public key (its 32-byte encoding).
pub(crate) fn validator_id_of(key: &ed25519::PublicKey) -> ValidatorId {
    let bytes: [u8; 32] = key
        .encode()
        .as_ref()
        .try_into()
        .expect("an ed25519 public key is 32 bytes");
    ValidatorId(bytes)
}
