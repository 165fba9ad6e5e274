//! secp256k1 account keys: the keys that sign Ethereum transactions.

use crate::{AccountPublicKey, KeyError, parse_hex_32, random_32};
use alloy_consensus::crypto::secp256k1::{public_key_to_address, sign_message};
use alloy_consensus::{SignableTransaction, Signed, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature};
use secp256k1::{PublicKey, SecretKey};
use std::fmt;

const KIND: &str = "secp256k1 account";

/// A secp256k1 private key and the Ethereum address it controls.
#[derive(Clone)]
pub struct AccountKey {
    secret: SecretKey,
    address: Address,
}

impl AccountKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        // A uniformly random 32-byte string is a valid scalar with overwhelming probability;
        // retry in the astronomically unlikely case it is zero or above the group order.
        loop {
            if let Ok(key) = Self::from_bytes(&random_32()?) {
                return Ok(key);
            }
        }
    }

    /// The key whose secret scalar is `bytes` (big-endian).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let secret = SecretKey::from_byte_array(bytes).map_err(|e| KeyError::InvalidKey {
            kind: KIND,
            reason: e.to_string(),
        })?;
        let address = public_key_to_address(PublicKey::from_secret_key_global(&secret));
        Ok(Self { secret, address })
    }

    /// Parses a hex private key (`0x` prefix optional), as wallets export it.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        Self::from_bytes(&parse_hex_32(KIND, text)?)
    }

    /// A deterministic key for tests and development chains: never use it for real funds.
    pub fn from_seed(seed: u64) -> Self {
        let digest = alloy_primitives::keccak256(format!("trellis-dev-account-{seed}"));
        Self::from_bytes(&digest.0).expect("keccak output is a valid secp256k1 scalar")
    }

    /// The Ethereum address of this key.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The public key, which others encrypt to.
    pub fn public_key(&self) -> AccountPublicKey {
        AccountPublicKey(PublicKey::from_secret_key_global(&self.secret))
    }

    /// The secret this key shares with the holder of `public` (ECDH: SHA-256 of the shared
    /// point, as libsecp256k1 computes it); either side gets the same 32 bytes.
    pub fn agree(&self, public: &AccountPublicKey) -> [u8; 32] {
        secp256k1::ecdh::SharedSecret::new(&public.0, &self.secret).secret_bytes()
    }

    /// The private key as `0x`-prefixed hex, the form wallets import.
    pub fn secret_hex(&self) -> String {
        format!("0x{}", hex::encode(self.secret.secret_bytes()))
    }

    /// Signs a 32-byte prehash (such as a transaction's signature hash).
    pub fn sign_hash(&self, hash: B256) -> Signature {
        sign_message(B256::from(self.secret.secret_bytes()), hash)
            .expect("a validated secret key always signs")
    }

    /// Signs a transaction and returns its EIP-2718 envelope, ready for
    /// `eth_sendRawTransaction`.
    pub fn sign_transaction<T>(&self, tx: T) -> Bytes
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        let signature = self.sign_hash(tx.signature_hash());
        TxEnvelope::from(tx.into_signed(signature))
            .encoded_2718()
            .into()
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::crypto::secp256k1::recover_signer;

    #[test]
    fn known_vector_gives_known_address() {
        // Private key 1 is the generator point: its address is a well-known constant.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = AccountKey::from_bytes(&one).unwrap();
        assert_eq!(
            key.address(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn signature_recovers_to_address() {
        let key = AccountKey::generate().unwrap();
        let hash = alloy_primitives::keccak256(b"trellis");
        let signature = key.sign_hash(hash);
        assert_eq!(recover_signer(&signature, hash).unwrap(), key.address());
    }

    #[test]
    fn both_sides_agree_and_a_public_key_names_its_account() {
        let (alice, bob) = (
            AccountKey::generate().unwrap(),
            AccountKey::generate().unwrap(),
        );
        assert_eq!(
            alice.agree(&bob.public_key()),
            bob.agree(&alice.public_key())
        );
        let carol = AccountKey::generate().unwrap();
        assert_ne!(
            alice.agree(&bob.public_key()),
            carol.agree(&bob.public_key())
        );
        let text = alice.public_key().to_string();
        assert_eq!(text.len(), 2 + 66);
        let parsed: AccountPublicKey = text.parse().unwrap();
        assert_eq!(parsed, alice.public_key());
        assert_eq!(parsed.address(), alice.address());
        assert!("0x02ff".parse::<AccountPublicKey>().is_err());
        assert!("zz".parse::<AccountPublicKey>().is_err());
    }

    #[test]
    fn hex_round_trip_and_bad_input() {
        let key = AccountKey::generate().unwrap();
        let again = AccountKey::from_hex(&key.secret_hex()).unwrap();
        assert_eq!(key.address(), again.address());
        assert!(matches!(
            AccountKey::from_hex("0x1234"),
            Err(KeyError::InvalidKey { .. })
        ));
        assert!(matches!(
            AccountKey::from_bytes(&[0u8; 32]),
            Err(KeyError::InvalidKey { .. })
        ));
        assert!(!format!("{key:?}").contains(&key.secret_hex()[2..]));
    }
}
