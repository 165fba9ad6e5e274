//! An AES-256 key-encryption key on the token: it wraps a node's data keys (AES-GCM, inside
//! the token) and never leaves it, so the data keys stored beside the data open only where the
//! token is.

use crate::{HsmError, token::Token};
use cryptoki::{
    error::{Error as Pkcs11Error, RvError},
    mechanism::{Mechanism, MechanismType, aead::GcmParams},
    object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
};
use std::sync::Arc;
use trellis_vault::{DataKey, KeyWrapper, WRAP_DOMAIN, WrapError};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const TAG_BITS: u64 = 128;
/// Bytes of the random CKA_ID a generated key gets: part of its id in a keystore.
const ID_LEN: usize = 8;

/// An AES-256 key on a token, used to wrap and unwrap data keys.
pub struct AesKek {
    token: Arc<Token>,
    label: String,
    handle: ObjectHandle,
    /// The key's CKA_ID (random at generation): tells a regenerated key under the same label
    /// from the one that wrapped a keystore.
    id: Vec<u8>,
}

impl std::fmt::Debug for AesKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesKek")
            .field("token", &self.token.label())
            .field("label", &self.label)
            .finish()
    }
}

fn template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

impl AesKek {
    /// The AES key labelled `label` on `token`.
    pub fn open(token: &Arc<Token>, label: &str) -> Result<Self, HsmError> {
        require(token)?;
        let found = token.sessions.with("searching for a key", |session| {
            session.find_objects(&template(label))
        })?;
        let handle = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(HsmError::KeyNotFound {
                    token: token.label().to_string(),
                    label: label.to_string(),
                    kind: "AES-256 key-encryption",
                });
            }
            many => {
                return Err(HsmError::AmbiguousLabel {
                    token: token.label().to_string(),
                    label: label.to_string(),
                    count: many.len(),
                });
            }
        };
        let attributes = token
            .sessions
            .with("reading a key's attributes", |session| {
                session.get_attributes(handle, &[AttributeType::Id, AttributeType::ValueLen])
            })?;
        let mut id = Vec::new();
        for attribute in attributes {
            match attribute {
                Attribute::Id(bytes) => id = bytes,
                Attribute::ValueLen(len) if u64::from(len) != 32 => {
                    return Err(HsmError::WrongKeyKind {
                        token: token.label().to_string(),
                        label: label.to_string(),
                        kind: "AES-256",
                        reason: format!("it is {} bytes long", u64::from(len)),
                    });
                }
                _ => {}
            }
        }
        Ok(Self {
            token: Arc::clone(token),
            label: label.to_string(),
            handle,
            id,
        })
    }

    /// Generates a new AES-256 key labelled `label` on `token`: sensitive, never extractable,
    /// usable only to encrypt and decrypt.
    pub fn generate(token: &Arc<Token>, label: &str) -> Result<Self, HsmError> {
        require(token)?;
        let taken = token.sessions.with("searching for a key", |session| {
            session.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        })?;
        if !taken.is_empty() {
            return Err(HsmError::LabelTaken {
                token: token.label().to_string(),
                label: label.to_string(),
            });
        }
        let mut id = [0u8; ID_LEN];
        getrandom::fill(&mut id).map_err(HsmError::Random)?;
        let mut attributes = template(label);
        attributes.extend([
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::ValueLen(32.into()),
            Attribute::Id(id.to_vec()),
        ]);
        token.sessions.with("generating an AES key", |session| {
            session.generate_key(&Mechanism::AesKeyGen, &attributes)
        })?;
        Self::open(token, label)
    }

    /// The key's label on its token.
    pub fn label(&self) -> &str {
        &self.label
    }
}

fn require(token: &Token) -> Result<(), HsmError> {
    if token.sessions.supports(MechanismType::AES_GCM)? {
        Ok(())
    } else {
        Err(HsmError::MechanismMissing {
            token: token.label().to_string(),
            mechanism: "CKM_AES_GCM",
            purpose: "wrapping the data keys of encrypted storage",
        })
    }
}

/// A decryption the token refused because the tag did not match: another key, or altered data.
fn not_its_key(error: &HsmError) -> bool {
    matches!(
        error,
        HsmError::Device {
            source: Pkcs11Error::Pkcs11(
                RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                _
            ),
            ..
        }
    )
}

impl KeyWrapper for AesKek {
    fn id(&self) -> String {
        let mut id = format!("pkcs11:{}/{}", self.token.label(), self.label);
        if !self.id.is_empty() {
            id.push('#');
            id.push_str(&hex::encode(&self.id));
        }
        id
    }

    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| WrapError::Unavailable(Box::new(e)))?;
        let aad = [WRAP_DOMAIN, context].concat();
        let mut iv = nonce;
        let sealed = self
            .token
            .sessions
            .with("wrapping a data key (CKM_AES_GCM)", |session| {
                let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())?;
                session.encrypt(&Mechanism::AesGcm(params), self.handle, key.expose())
            })
            .map_err(|e| WrapError::Unavailable(Box::new(e)))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, WrapError> {
        let (nonce, sealed) = wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or(WrapError::NotItsKey)?;
        let mut iv: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
        let aad = [WRAP_DOMAIN, context].concat();
        let opened = self
            .token
            .sessions
            .with("unwrapping a data key (CKM_AES_GCM)", |session| {
                let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())?;
                session.decrypt(&Mechanism::AesGcm(params), self.handle, sealed)
            })
            .map_err(|e| match not_its_key(&e) {
                true => WrapError::NotItsKey,
                false => WrapError::Unavailable(Box::new(e)),
            })?;
        let opened = Zeroizing::new(opened);
        let bytes: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| WrapError::NotItsKey)?;
        Ok(DataKey::from_bytes(bytes))
    }
}
