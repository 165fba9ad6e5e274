//! Key files sealed under a passphrase: scrypt derives a key, AES-256-GCM encrypts the key
//! file's JSON. The public half (address, public key) stays readable and is authenticated
//! with the ciphertext, so it cannot be swapped for another key's.
//!
//! ```json
//! { "sealed": 1, "public": { "address": "0x…" },
//!   "kdf": { "scrypt": { "log_n": 15, "r": 8, "p": 1, "salt": "0x…" } },
//!   "nonce": "0x…", "ciphertext": "0x…" }
//! ```

use crate::{KeyError, random_32};
use aes_gcm::{
    Aes256Gcm, Key, KeyInit,
    aead::{Aead, Nonce, Payload},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The format's version: a reader refuses versions it does not know.
const VERSION: u32 = 1;
/// scrypt cost: 2^15 × 8 × 128 bytes = 32 MiB and ~0.1 s per derivation, the cost geth uses
/// for its standard keystore.
pub const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

/// A passphrase, kept out of `Debug` output.
#[derive(Clone)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Reads a passphrase from the first line of a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let line = crate::read_first_line(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if line.is_empty() {
            return Err(KeyError::EmptyPassphrase {
                path: path.display().to_string(),
            });
        }
        Ok(Self::new(line))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    scrypt: ScryptParams,
}

/// A key file's contents sealed under a passphrase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedKey {
    sealed: u32,
    /// What may be known about the key without the passphrase.
    pub public: Value,
    kdf: Kdf,
    nonce: String,
    ciphertext: String,
}

fn invalid(reason: impl Into<String>) -> KeyError {
    KeyError::InvalidKey {
        kind: "sealed key file",
        reason: reason.into(),
    }
}

fn derive(passphrase: &Passphrase, params: &ScryptParams) -> Result<Key<Aes256Gcm>, KeyError> {
    let salt = hex::decode(params.salt.trim_start_matches("0x"))
        .map_err(|e| invalid(format!("salt is not hex: {e}")))?;
    let cost = scrypt::Params::new(params.log_n, params.r, params.p)
        .map_err(|e| invalid(format!("scrypt parameters refused: {e}")))?;
    if params.log_n > 22 {
        return Err(invalid("scrypt log_n above 22 would need gigabytes"));
    }
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase.0.as_bytes(), &salt, &cost, &mut key)
        .expect("a 32-byte output is a valid length");
    Ok(Key::<Aes256Gcm>::from(key))
}

/// The associated data: the version and public half, so neither can be altered.
fn associated(version: u32, public: &Value) -> Vec<u8> {
    format!("trellis-sealed-key/{version}/{public}").into_bytes()
}

impl SealedKey {
    /// Seals `plaintext` (a key file's JSON) under `passphrase`, with `public` beside it.
    pub fn seal(
        plaintext: &[u8],
        public: Value,
        passphrase: &Passphrase,
    ) -> Result<Self, KeyError> {
        Self::seal_with_cost(plaintext, public, passphrase, SCRYPT_LOG_N)
    }

    /// [`Self::seal`] with a chosen scrypt cost (tests use a cheap one).
    pub fn seal_with_cost(
        plaintext: &[u8],
        public: Value,
        passphrase: &Passphrase,
        log_n: u8,
    ) -> Result<Self, KeyError> {
        let params = ScryptParams {
            log_n,
            r: SCRYPT_R,
            p: SCRYPT_P,
            salt: format!("0x{}", hex::encode(random_32()?)),
        };
        let key = derive(passphrase, &params)?;
        let nonce_bytes: [u8; 12] = random_32()?[..12].try_into().expect("12 of 32 bytes");
        let nonce = Nonce::<Aes256Gcm>::from(nonce_bytes);
        let aad = associated(VERSION, &public);
        let ciphertext = Aes256Gcm::new(&key)
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| invalid("encryption failed"))?;
        Ok(Self {
            sealed: VERSION,
            public,
            kdf: Kdf { scrypt: params },
            nonce: format!("0x{}", hex::encode(nonce_bytes)),
            ciphertext: format!("0x{}", hex::encode(ciphertext)),
        })
    }

    /// The key file's JSON, if `passphrase` is the one it was sealed with.
    pub fn open(&self, passphrase: &Passphrase) -> Result<Vec<u8>, KeyError> {
        if self.sealed != VERSION {
            return Err(invalid(format!(
                "format version {} is not one this build reads ({VERSION})",
                self.sealed
            )));
        }
        let key = derive(passphrase, &self.kdf.scrypt)?;
        let nonce: [u8; 12] = hex::decode(self.nonce.trim_start_matches("0x"))
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| invalid("nonce is not 12 bytes of hex"))?;
        let ciphertext = hex::decode(self.ciphertext.trim_start_matches("0x"))
            .map_err(|e| invalid(format!("ciphertext is not hex: {e}")))?;
        let aad = associated(self.sealed, &self.public);
        Aes256Gcm::new(&key)
            .decrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyError::WrongPassphrase)
    }

    /// Seals a plaintext key file's JSON; its public half is the JSON without its
    /// `private_key` fields.
    pub fn seal_key_file(text: &str, passphrase: &Passphrase) -> Result<Self, KeyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not a JSON key file: {e}")))?;
        Self::seal(text.as_bytes(), without_secrets(value), passphrase)
    }

    /// Whether `text` is a sealed key file (rather than a plaintext one).
    pub fn is_sealed(text: &str) -> bool {
        serde_json::from_str::<Value>(text)
            .map(|value| value.get("sealed").is_some() && value.get("ciphertext").is_some())
            .unwrap_or(false)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a sealed key serialises")
    }
}

/// `value` with every `private_key` field removed, at any depth.
fn without_secrets(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(name, _)| name != "private_key")
                .map(|(name, inner)| (name, without_secrets(inner)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_secrets).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CHEAP: u8 = 10;

    #[test]
    fn opens_with_its_passphrase_only() {
        let secret = br#"{"private_key":"0x01"}"#;
        let public = json!({ "address": "0xabc" });
        let passphrase = Passphrase::new("correct horse");
        let sealed = SealedKey::seal_with_cost(secret, public, &passphrase, CHEAP).unwrap();
        let text = sealed.to_json();
        assert!(SealedKey::is_sealed(&text));
        assert!(
            !text.contains("private_key") && !text.contains("0x01\""),
            "{text}"
        );
        let parsed: SealedKey = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.open(&passphrase).unwrap(), secret);
        assert!(matches!(
            parsed.open(&Passphrase::new("wrong")),
            Err(KeyError::WrongPassphrase)
        ));
    }

    #[test]
    fn a_key_files_public_half_stays_readable() {
        let bundle = crate::KeyBundle::generate().unwrap();
        let passphrase = Passphrase::new("p");
        let sealed = SealedKey::seal_key_file(&bundle.to_json(), &passphrase).unwrap();
        assert_eq!(sealed.public["account"]["address"], bundle.account.address);
        assert_eq!(
            sealed.public["validator"]["public_key"],
            bundle.validator.public_key
        );
        let text = sealed.to_json();
        assert!(!text.contains(&bundle.account.private_key[2..]), "{text}");
        assert!(!text.contains(&bundle.validator.private_key[2..]), "{text}");
        assert_eq!(
            sealed.open(&passphrase).unwrap(),
            bundle.to_json().as_bytes()
        );
    }

    #[test]
    fn the_public_half_cannot_be_swapped() {
        let passphrase = Passphrase::new("p");
        let mut sealed =
            SealedKey::seal_with_cost(b"secret", json!({"address": "0xabc"}), &passphrase, CHEAP)
                .unwrap();
        sealed.public = json!({"address": "0xdef"});
        assert!(matches!(
            sealed.open(&passphrase),
            Err(KeyError::WrongPassphrase)
        ));
        let mut sealed =
            SealedKey::seal_with_cost(b"secret", json!({}), &passphrase, CHEAP).unwrap();
        sealed.sealed = 9;
        assert!(
            sealed
                .open(&passphrase)
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
    }
}
