//! Salted commitments to a field's value, and the openings that reveal it.

use crate::{FieldError, random_32};
use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use zeroize::Zeroize;

/// Longest label, in bytes.
pub(crate) const MAX_LABEL: usize = 64;
/// Domain tag of the commitment hash: a commitment of another scheme never collides with it.
const TAG: &[u8] = b"trellis.field.v1";

/// What a field is (`claim.diagnosis`): hashed into its commitment, so an opening of one field
/// cannot pass for another's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldLabel(String);

impl FieldLabel {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FieldLabel {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._:-".contains(c);
        if text.is_empty() || text.len() > MAX_LABEL || !text.chars().all(allowed) {
            return Err(FieldError::Label {
                label: text.to_owned(),
            });
        }
        Ok(Self(text.to_owned()))
    }
}

impl TryFrom<String> for FieldLabel {
    type Error = FieldError;

    fn try_from(text: String) -> Result<Self, FieldError> {
        text.parse()
    }
}

impl From<FieldLabel> for String {
    fn from(label: FieldLabel) -> Self {
        label.0
    }
}

impl fmt::Display for FieldLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The random 32 bytes that hide a value inside its commitment: secret until the field is
/// revealed.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct Salt(pub(crate) [u8; 32]);

impl Salt {
    pub fn random() -> Result<Self, FieldError> {
        random_32().map(Self)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(…)")
    }
}

/// A salted hash of a field's label and value: what goes on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Commitment(pub B256);

impl Commitment {
    /// `keccak256("trellis.field.v1" ‖ keccak256(label) ‖ salt ‖ keccak256(value))`.
    pub fn of(label: &FieldLabel, salt: &Salt, value: &[u8]) -> Self {
        let mut preimage = Vec::with_capacity(TAG.len() + 96);
        preimage.extend_from_slice(TAG);
        preimage.extend_from_slice(keccak256(label.as_str()).as_slice());
        preimage.extend_from_slice(&salt.0);
        preimage.extend_from_slice(keccak256(value).as_slice());
        Self(keccak256(&preimage))
    }
}

impl FromStr for Commitment {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        text.trim().parse().map(Self).map_err(|e| FieldError::Hex {
            what: "commitment (32 bytes of hex)",
            reason: format!("{e}"),
        })
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A field's label, value and salt: whoever holds it can show the value is the one committed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub label: FieldLabel,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
    #[serde(with = "hex_salt")]
    pub salt: Salt,
}

impl Opening {
    /// An opening of `value` under a fresh random salt.
    pub fn new(label: FieldLabel, value: Vec<u8>) -> Result<Self, FieldError> {
        Ok(Self {
            label,
            value,
            salt: Salt::random()?,
        })
    }

    pub fn commitment(&self) -> Commitment {
        Commitment::of(&self.label, &self.salt, &self.value)
    }

    /// Whether this opening is of `commitment`; the error says what it hashes to instead.
    pub fn verify(&self, commitment: &Commitment) -> Result<(), FieldError> {
        let actual = self.commitment();
        if actual == *commitment {
            Ok(())
        } else {
            Err(FieldError::Mismatch {
                expected: *commitment,
                actual,
            })
        }
    }

    /// The value as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

impl fmt::Debug for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opening")
            .field("label", &self.label)
            .field("commitment", &self.commitment())
            .finish_non_exhaustive()
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

fn from_hex(what: &'static str, text: &str) -> Result<Vec<u8>, FieldError> {
    hex::decode(text.trim().strip_prefix("0x").unwrap_or(text.trim())).map_err(|e| {
        FieldError::Hex {
            what,
            reason: e.to_string(),
        }
    })
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::from_hex("value", &text).map_err(D::Error::custom)
    }
}

mod hex_salt {
    use super::Salt;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(salt: &Salt, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(salt.0)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Salt, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = super::from_hex("salt", &text).map_err(D::Error::custom)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| D::Error::custom(format!("salt of {} bytes, not 32", b.len())))?;
        Ok(Salt(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(text: &str) -> FieldLabel {
        text.parse().unwrap()
    }

    #[test]
    fn a_commitment_binds_label_salt_and_value() {
        let opening = Opening::new(label("claim.diagnosis"), b"fractured wrist".to_vec()).unwrap();
        let commitment = opening.commitment();
        opening.verify(&commitment).unwrap();
        let mut other = opening.clone();
        other.value = b"sprained wrist".to_vec();
        assert!(matches!(
            other.verify(&commitment),
            Err(FieldError::Mismatch { .. })
        ));
        let mut relabelled = opening.clone();
        relabelled.label = label("claim.cause");
        assert!(relabelled.verify(&commitment).is_err());
        let resalted = Opening::new(opening.label.clone(), opening.value.clone()).unwrap();
        assert_ne!(resalted.commitment(), commitment, "a fresh salt each time");
    }

    #[test]
    fn the_hash_is_the_documented_one() {
        // keccak256(abi.encodePacked("trellis.field.v1", keccak256(bytes("a")), bytes32(0),
        // keccak256(bytes("")))), as a contract computes it.
        let mut preimage = b"trellis.field.v1".to_vec();
        preimage.extend_from_slice(keccak256("a").as_slice());
        preimage.extend_from_slice(&[0u8; 32]);
        preimage.extend_from_slice(keccak256([]).as_slice());
        let commitment = Commitment::of(&label("a"), &Salt([0; 32]), b"");
        assert_eq!(commitment.0, keccak256(&preimage));
        // What clients/ethers/lib/fields.js computes for the same field.
        let ethers: B256 = "0x375268621dabfb1d0b014e0b0587d8d9e3a07551ebeabe6edcdc346cde266c66"
            .parse()
            .unwrap();
        assert_eq!(commitment.0, ethers);
    }

    #[test]
    fn openings_round_trip_as_json_and_bad_labels_are_named() {
        let opening = Opening::new(label("shipment.price"), b"1200 EUR".to_vec()).unwrap();
        let json = serde_json::to_string(&opening).unwrap();
        let back: Opening = serde_json::from_str(&json).unwrap();
        assert_eq!(back, opening);
        assert_eq!(back.text(), Some("1200 EUR"));
        assert!(!format!("{opening:?}").contains("1200"));
        for bad in ["", "with space", &"x".repeat(65), "ünï"] {
            let error = bad.parse::<FieldLabel>().unwrap_err().to_string();
            assert!(error.contains("invalid field label"), "{error}");
        }
        let short_salt = json.replace(&format!("0x{}", hex::encode(opening.salt.0)), "0x00");
        let error = serde_json::from_str::<Opening>(&short_salt).unwrap_err();
        assert!(error.to_string().contains("salt of 1 bytes"), "{error}");
    }
}
