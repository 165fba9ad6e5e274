//! One record of the audit log and the hash that chains it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use trellis_types::ValidatorId;

/// The namespace records are signed under (no other signature of the key verifies as one).
pub const NAMESPACE: &[u8] = b"trellis-audit";

/// Domain of the record hash.
const DOMAIN: &[u8] = b"trellis-audit-record-v1";

/// A SHA-256 digest, written as 0x-hex.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = hex::decode(text.strip_prefix("0x")?).ok()?;
    bytes.try_into().ok()
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        from_hex(&text).map(Self).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not a 32-byte 0x-hex digest"))
        })
    }
}

/// The signing key, as the record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub ValidatorId);

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("0x{}", hex::encode(self.0.0)))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        from_hex(&text)
            .map(|bytes| Self(ValidatorId(bytes)))
            .ok_or_else(|| {
                serde::de::Error::custom(format!("{text:?} is not a 32-byte 0x-hex key"))
            })
    }
}

/// One record, as a line of the log holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// Its number: 1 for the first record of the log, one more for each after.
    pub seq: u64,
    /// When it was written: milliseconds since the Unix epoch, by the node's clock.
    pub at_ms: u64,
    /// What happened (`node_started`, `risk_rules_loaded`, `alarm`, …).
    pub kind: String,
    /// The details, as a JSON object.
    pub detail: serde_json::Value,
    /// The previous record's hash (zero for the first).
    pub prev: Digest,
    /// The key that signed it: the node's.
    pub key: Key,
    /// The hash of all the fields above.
    pub hash: Digest,
    /// The key's ed25519 signature of `hash` under [`NAMESPACE`], 0x-hex.
    pub signature: String,
}

impl Record {
    /// The hash of a record's content.
    pub fn digest(
        seq: u64,
        at_ms: u64,
        kind: &str,
        detail: &serde_json::Value,
        prev: &Digest,
        key: &ValidatorId,
    ) -> Digest {
        let detail = detail.to_string();
        let hash = Sha256::new()
            .chain_update(DOMAIN)
            .chain_update(seq.to_be_bytes())
            .chain_update(at_ms.to_be_bytes())
            .chain_update((kind.len() as u64).to_be_bytes())
            .chain_update(kind.as_bytes())
            .chain_update((detail.len() as u64).to_be_bytes())
            .chain_update(detail.as_bytes())
            .chain_update(prev.0)
            .chain_update(key.0)
            .finalize();
        Digest(hash.into())
    }

    /// The hash its content gives now (equal to `hash` unless it was changed).
    pub fn content_digest(&self) -> Digest {
        Self::digest(
            self.seq,
            self.at_ms,
            &self.kind,
            &self.detail,
            &self.prev,
            &self.key.0,
        )
    }

    /// Whether `signature` is the key's signature of `hash`.
    pub fn signed(&self) -> bool {
        let Some(bytes) = self
            .signature
            .strip_prefix("0x")
            .and_then(|digits| hex::decode(digits).ok())
        else {
            return false;
        };
        trellis_crypto::verify_validator_signature(&self.key.0, NAMESPACE, &self.hash.0, &bytes)
    }
}
