//! A field's opening encrypted to its recipients: the parties and an auditor.
//!
//! The opening is encrypted once, under a fresh content key (AES-256-GCM); the content key is
//! wrapped for each recipient under a key agreed between a fresh ephemeral secp256k1 key and
//! the recipient's account key (ECDH, then HMAC-SHA256 over the two public keys). Everything
//! before the ciphertext (version, commitment, label, recipients, nonce) is authenticated, so
//! no recipient can be added, removed or swapped, nor the envelope moved to another field.
//!
//! Bytes: `0x01` ‖ commitment (32) ‖ label length (1) ‖ label ‖ recipient count (1) ‖ per
//! recipient: address (20), ephemeral public key (33), wrapped key (48) ‖ nonce (12) ‖
//! ciphertext of salt (32) ‖ value, with its 16-byte tag.

use crate::{Commitment, FieldError, FieldLabel, Opening, Salt, random_32};
use aes_gcm::{
    Aes256Gcm, Key, KeyInit,
    aead::{Aead, Nonce, Payload},
};
use alloy_primitives::{Address, B256};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use trellis_crypto::{AccountKey, AccountPublicKey};
use zeroize::Zeroizing;

/// Most recipients of one envelope.
pub const MAX_RECIPIENTS: usize = 16;
const VERSION: u8 = 1;
const WRAP_INFO: &[u8] = b"trellis.field.v1 wrap";
const WRAPPED: usize = 32 + 16;
const RECIPIENT: usize = 20 + 33 + WRAPPED;

/// The content key, wrapped for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wrapped {
    account: Address,
    ephemeral: [u8; 33],
    key: [u8; WRAPPED],
}

/// A field's opening, encrypted to its recipients; see the module's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    commitment: Commitment,
    label: FieldLabel,
    recipients: Vec<Wrapped>,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl Envelope {
    /// Encrypts `opening` to `recipients` (each party and the auditor; a key named twice is
    /// sealed to once).
    pub fn seal(opening: &Opening, recipients: &[AccountPublicKey]) -> Result<Self, FieldError> {
        let mut unique: Vec<AccountPublicKey> = Vec::with_capacity(recipients.len());
        for key in recipients {
            if !unique.contains(key) {
                unique.push(*key);
            }
        }
        if unique.is_empty() || unique.len() > MAX_RECIPIENTS {
            return Err(FieldError::Recipients {
                given: unique.len(),
            });
        }
        let content = Zeroizing::new(random_32()?);
        let commitment = opening.commitment();
        let recipients = unique
            .iter()
            .map(|key| wrap(&content, key, &commitment))
            .collect::<Result<Vec<_>, _>>()?;
        let nonce: [u8; 12] = random_32()?[..12].try_into().expect("12 of 32 bytes");
        let mut envelope = Self {
            commitment,
            label: opening.label.clone(),
            recipients,
            nonce,
            ciphertext: Vec::new(),
        };
        let mut plaintext = Zeroizing::new(Vec::with_capacity(32 + opening.value.len()));
        plaintext.extend_from_slice(opening.salt.as_bytes());
        plaintext.extend_from_slice(&opening.value);
        let aad = envelope.header();
        envelope.ciphertext = cipher(&content)
            .encrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| FieldError::Malformed("encryption failed".into()))?;
        Ok(envelope)
    }

    /// The opening inside, decrypted with recipient `key`, checked against the commitment the
    /// envelope names (a sender cannot seal one value and commit to another unnoticed).
    pub fn open(&self, key: &AccountKey) -> Result<Opening, FieldError> {
        let account = key.address();
        let wrapped = self
            .recipients
            .iter()
            .find(|wrapped| wrapped.account == account)
            .ok_or_else(|| FieldError::NotRecipient {
                account,
                recipients: self
                    .recipients()
                    .iter()
                    .map(Address::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let undecryptable = || FieldError::Undecryptable { account };
        let ephemeral =
            AccountPublicKey::from_slice(&wrapped.ephemeral).map_err(|_| undecryptable())?;
        let wrap_key = wrap_key(&key.agree(&ephemeral), &ephemeral, &key.public_key());
        let content = cipher(&wrap_key)
            .decrypt(
                &Nonce::<Aes256Gcm>::default(),
                Payload {
                    msg: &wrapped.key,
                    aad: self.commitment.0.as_slice(),
                },
            )
            .map_err(|_| undecryptable())?;
        let content: Zeroizing<[u8; 32]> =
            Zeroizing::new(content.as_slice().try_into().map_err(|_| undecryptable())?);
        let plaintext = Zeroizing::new(
            cipher(&content)
                .decrypt(
                    &Nonce::<Aes256Gcm>::from(self.nonce),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &self.header(),
                    },
                )
                .map_err(|_| undecryptable())?,
        );
        let salt: [u8; 32] = plaintext[..32].try_into().map_err(|_| undecryptable())?;
        let opening = Opening {
            label: self.label.clone(),
            value: plaintext[32..].to_vec(),
            salt: Salt::from_bytes(salt),
        };
        opening.verify(&self.commitment)?;
        Ok(opening)
    }

    pub fn commitment(&self) -> Commitment {
        self.commitment
    }

    pub fn label(&self) -> &FieldLabel {
        &self.label
    }

    /// The accounts that can open it.
    pub fn recipients(&self) -> Vec<Address> {
        self.recipients.iter().map(|w| w.account).collect()
    }

    /// Its bytes, for a transaction's data or a contract's storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.header();
        bytes.extend_from_slice(&self.ciphertext);
        bytes
    }

    /// Reads [`Self::to_bytes`]'s output, saying what is wrong with bytes that are not one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FieldError> {
        let mut reader = Reader(bytes);
        let version = reader.take(1, "version")?[0];
        if version != VERSION {
            return Err(FieldError::Malformed(format!(
                "version {version}; this build reads version {VERSION}"
            )));
        }
        let commitment = Commitment(B256::from_slice(reader.take(32, "commitment")?));
        let length = reader.take(1, "label length")?[0] as usize;
        let label = std::str::from_utf8(reader.take(length, "label")?)
            .map_err(|_| FieldError::Malformed("the label is not text".into()))?
            .parse()?;
        let count = reader.take(1, "recipient count")?[0] as usize;
        if count == 0 || count > MAX_RECIPIENTS {
            return Err(FieldError::Malformed(format!(
                "{count} recipients (1 to {MAX_RECIPIENTS} allowed)"
            )));
        }
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            let entry = reader.take(RECIPIENT, "recipient")?;
            recipients.push(Wrapped {
                account: Address::from_slice(&entry[..20]),
                ephemeral: entry[20..53].try_into().expect("33 bytes"),
                key: entry[53..].try_into().expect("48 bytes"),
            });
        }
        let nonce = reader.take(12, "nonce")?.try_into().expect("12 bytes");
        let ciphertext = reader.0.to_vec();
        if ciphertext.len() < 32 + 16 {
            return Err(FieldError::Malformed(format!(
                "ciphertext of {} bytes is shorter than a salt and a tag (48)",
                ciphertext.len()
            )));
        }
        Ok(Self {
            commitment,
            label,
            recipients,
            nonce,
            ciphertext,
        })
    }

    /// Everything before the ciphertext: authenticated with it.
    fn header(&self) -> Vec<u8> {
        let label = self.label.as_str().as_bytes();
        let mut bytes = Vec::with_capacity(35 + label.len() + RECIPIENT * self.recipients.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(self.commitment.0.as_slice());
        bytes.push(u8::try_from(label.len()).expect("labels are at most 64 bytes"));
        bytes.extend_from_slice(label);
        bytes.push(u8::try_from(self.recipients.len()).expect("at most 16 recipients"));
        for wrapped in &self.recipients {
            bytes.extend_from_slice(wrapped.account.as_slice());
            bytes.extend_from_slice(&wrapped.ephemeral);
            bytes.extend_from_slice(&wrapped.key);
        }
        bytes.extend_from_slice(&self.nonce);
        bytes
    }
}

/// The content key wrapped for `recipient` under a fresh ephemeral key.
fn wrap(
    content: &[u8; 32],
    recipient: &AccountPublicKey,
    commitment: &Commitment,
) -> Result<Wrapped, FieldError> {
    let ephemeral = AccountKey::generate().map_err(|e| FieldError::Randomness(e.to_string()))?;
    let ephemeral_public = ephemeral.public_key();
    let wrap_key = wrap_key(&ephemeral.agree(recipient), &ephemeral_public, recipient);
    // The wrap key is used once (its ephemeral key is fresh): a fixed nonce is safe.
    let key = cipher(&wrap_key)
        .encrypt(
            &Nonce::<Aes256Gcm>::default(),
            Payload {
                msg: content,
                aad: commitment.0.as_slice(),
            },
        )
        .map_err(|_| FieldError::Malformed("key wrapping failed".into()))?;
    Ok(Wrapped {
        account: recipient.address(),
        ephemeral: ephemeral_public.to_bytes(),
        key: key.try_into().expect("a 32-byte key and a 16-byte tag"),
    })
}

/// The key wrapping the content key for one recipient: HMAC-SHA256 keyed by the agreed secret
/// over both public keys, so it is bound to this exchange.
fn wrap_key(
    shared: &[u8; 32],
    ephemeral: &AccountPublicKey,
    recipient: &AccountPublicKey,
) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(shared)
        .expect("HMAC takes a key of any length");
    mac.update(WRAP_INFO);
    mac.update(&ephemeral.to_bytes());
    mac.update(&recipient.to_bytes());
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

/// Reads an envelope's bytes front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FieldError> {
        if self.0.len() < n {
            return Err(FieldError::Malformed(format!(
                "cut short in its {what} ({n} bytes needed, {} left)",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening() -> Opening {
        Opening::new(
            "claim.diagnosis".parse().unwrap(),
            b"fractured wrist".to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn every_recipient_opens_it_and_no_one_else() {
        let (insurer, clinic, auditor, outsider) = (
            AccountKey::generate().unwrap(),
            AccountKey::generate().unwrap(),
            AccountKey::generate().unwrap(),
            AccountKey::generate().unwrap(),
        );
        let opening = opening();
        let keys = [
            insurer.public_key(),
            clinic.public_key(),
            auditor.public_key(),
        ];
        let envelope = Envelope::seal(&opening, &keys).unwrap();
        let bytes = envelope.to_bytes();
        assert!(
            !bytes.windows(8).any(|w| w == b"fracture"),
            "the value is not in clear"
        );
        let read = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!(read, envelope);
        for key in [&insurer, &clinic, &auditor] {
            let opened = read.open(key).unwrap();
            assert_eq!(opened, opening);
            opened.verify(&read.commitment()).unwrap();
        }
        let error = read.open(&outsider).unwrap_err().to_string();
        assert!(error.contains("is not a recipient"), "{error}");
        assert!(error.contains(&auditor.address().to_string()), "{error}");
    }

    #[test]
    fn an_altered_envelope_does_not_open() {
        let key = AccountKey::generate().unwrap();
        let envelope = Envelope::seal(&opening(), &[key.public_key()]).unwrap();
        let bytes = envelope.to_bytes();
        // Flip a bit of the ciphertext, then of the commitment (the header is authenticated).
        for position in [bytes.len() - 1, 5] {
            let mut altered = bytes.clone();
            altered[position] ^= 1;
            let error = Envelope::from_bytes(&altered)
                .unwrap()
                .open(&key)
                .unwrap_err();
            assert!(matches!(error, FieldError::Undecryptable { .. }), "{error}");
        }
    }

    #[test]
    fn a_sender_cannot_seal_one_value_and_commit_to_another() {
        let key = AccountKey::generate().unwrap();
        let honest = opening();
        let mut lie = honest.clone();
        lie.value = b"nothing at all".to_vec();
        // A forger builds an envelope of the lie under the honest commitment.
        let mut envelope = Envelope::seal(&lie, &[key.public_key()]).unwrap();
        envelope.commitment = honest.commitment();
        let content = Zeroizing::new(random_32().unwrap());
        envelope.recipients =
            vec![wrap(&content, &key.public_key(), &envelope.commitment).unwrap()];
        let mut plaintext = lie.salt.as_bytes().to_vec();
        plaintext.extend_from_slice(&lie.value);
        let aad = envelope.header();
        envelope.ciphertext = cipher(&content)
            .encrypt(
                &Nonce::<Aes256Gcm>::from(envelope.nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .unwrap();
        let error = envelope.open(&key).unwrap_err();
        assert!(matches!(error, FieldError::Mismatch { .. }), "{error}");
    }

    #[test]
    fn malformed_bytes_and_recipient_counts_are_named() {
        let key = AccountKey::generate().unwrap();
        let bytes = Envelope::seal(&opening(), &[key.public_key()])
            .unwrap()
            .to_bytes();
        let error = Envelope::from_bytes(&bytes[..40]).unwrap_err().to_string();
        assert!(error.contains("cut short in its"), "{error}");
        let mut version = bytes.clone();
        version[0] = 9;
        let error = Envelope::from_bytes(&version).unwrap_err().to_string();
        assert!(error.contains("version 9"), "{error}");
        assert!(matches!(
            Envelope::seal(&opening(), &[]),
            Err(FieldError::Recipients { given: 0 })
        ));
        let twice = Envelope::seal(&opening(), &[key.public_key(), key.public_key()]).unwrap();
        assert_eq!(twice.recipients(), vec![key.address()]);
    }
}
