//! An account's public key, for encrypting to the account (the key agreement of
//! [`crate::AccountKey::agree`]): what a counterparty hands out so others can seal data to it.

use crate::KeyError;
use alloy_consensus::crypto::secp256k1::public_key_to_address;
use alloy_primitives::Address;
use secp256k1::PublicKey;
use std::{fmt, str::FromStr};

const KIND: &str = "secp256k1 account public";

/// A secp256k1 public key, written as 33 bytes of compressed point in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AccountPublicKey(pub(crate) PublicKey);

impl AccountPublicKey {
    /// Its compressed encoding.
    pub fn to_bytes(&self) -> [u8; 33] {
        self.0.serialize()
    }

    /// Parses a compressed (33-byte) or uncompressed (65-byte) encoding.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        PublicKey::from_slice(bytes)
            .map(Self)
            .map_err(|e| KeyError::InvalidKey {
                kind: KIND,
                reason: format!("{e} ({} bytes given; 33 or 65 expected)", bytes.len()),
            })
    }

    /// The account (address) this key controls.
    pub fn address(&self) -> Address {
        public_key_to_address(self.0)
    }
}

impl FromStr for AccountPublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
        let bytes = hex::decode(digits).map_err(|e| KeyError::InvalidKey {
            kind: KIND,
            reason: format!("not hex: {e}"),
        })?;
        Self::from_slice(&bytes)
    }
}

impl fmt::Display for AccountPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for AccountPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountPublicKey({self} of {})", self.address())
    }
}
