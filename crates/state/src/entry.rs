//! How the world state is laid out as key/value entries of the authenticated store.
//!
//! Every entry's key is the SHA-256 of a domain separator, a kind tag and the entry's identity,
//! so keys are spread uniformly whatever addresses or slot numbers a contract picks (the store's
//! in-memory index buckets keys by their first bytes). A verifier who knows the address and slot
//! recomputes the key; nothing else about the layout needs trusting. A slot key's preimage is
//! one 64-byte block for the account's storage generation (domain, tag, address, generation,
//! zero padding) followed by the slot, so the SHA-256 state after that block is computed once
//! per account and each slot key costs one compression ([`SlotKeys`]).
//!
//! | entry | table | identity | value |
//! |---|---|---|---|
//! | account | accounts | address | nonce, balance, code hash, storage generation (or: retired) |
//! | code | accounts | code hash | bytecode |
//! | storage slot | storage | address, generation, slot | non-zero 32-byte word |
//!
//! Slots are most of the state and of every block's writes, so they have a table of their own
//! whose values all have one size ([`SlotWord`]): QMDB's fixed-size log costs ~30 % less per
//! write than its variable-size one (measured, see `crates/bench/benches/qmdb_layouts.rs`).
//!
//! Dropping an account's storage (self-destruct, a contract created where storage was) cannot
//! enumerate its slots in an unordered store, so it moves the account to a new storage
//! *generation* instead: slot keys include the generation, and the old slots become
//! unreachable. The generation lives in the account's own entry, so a proof of the account
//! proves which slots are its current ones. A deleted account that had existed leaves a
//! *retired* entry holding the next generation, so an account created there later starts empty.

use crate::Account;
use alloy_primitives::{Address, B256, Bytes, U256};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256, sha256::Digest};
use trellis_types::Height;

/// Domain separator of every key: a key can never equal another structure's hash.
const KEY_DOMAIN: &[u8] = b"trellis.state.v1";

/// A map keyed by store keys. Keys are SHA-256 outputs, so a fast hash suffices; it stays keyed
/// per process, so keys ground to share low bits still spread.
pub(crate) type DigestMap<V> = std::collections::HashMap<Digest, V, ahash::RandomState>;

/// The largest contract code stored. EIP-170 limits deployed code to 24 KiB; genesis may place
/// larger code, so the bound is generous.
pub const MAX_CODE_BYTES: usize = 1 << 20;

/// One entry's identity, before hashing into the store's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKey {
    Account(Address),
    Slot {
        address: Address,
        generation: u64,
        slot: U256,
    },
    Code(B256),
}

impl StateKey {
    /// The key under which the store holds this entry.
    pub fn digest(&self) -> Digest {
        let mut hasher = Sha256::default();
        hasher.update(KEY_DOMAIN);
        match self {
            Self::Account(address) => {
                hasher.update(&[0]);
                hasher.update(address.as_slice());
            }
            Self::Slot {
                address,
                generation,
                slot,
            } => return SlotKeys::new(address, *generation).key(slot),
            Self::Code(hash) => {
                hasher.update(&[3]);
                hasher.update(hash.as_slice());
            }
        }
        hasher.finalize().1
    }
}

/// The keys of the slots of one generation of an account's storage: the SHA-256 state after
/// their common first block, from which each key takes one more compression.
#[derive(Clone)]
pub struct SlotKeys {
    prefix: sha2::Sha256,
}

impl SlotKeys {
    pub fn new(address: &Address, generation: u64) -> Self {
        use sha2::Digest as _;
        let mut block = [0u8; 64];
        block[..KEY_DOMAIN.len()].copy_from_slice(KEY_DOMAIN);
        let tag = KEY_DOMAIN.len();
        block[tag] = 2;
        block[tag + 1..tag + 21].copy_from_slice(address.as_slice());
        block[tag + 21..tag + 29].copy_from_slice(&generation.to_be_bytes());
        let mut prefix = sha2::Sha256::new();
        prefix.update(block);
        Self { prefix }
    }

    /// The store's key of `slot`.
    pub fn key(&self, slot: &U256) -> Digest {
        use sha2::Digest as _;
        let mut hasher = self.prefix.clone();
        hasher.update(slot.to_be_bytes::<32>());
        Digest(hasher.finalize().into())
    }
}

/// A value of the store. The variant is fixed by the key's kind; a stored value of the wrong
/// kind is corruption and reads report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateValue {
    Account {
        account: Account,
        generation: u64,
    },
    /// A deleted account; an account created here later uses `generation` for its storage.
    Retired {
        generation: u64,
    },
    Code(Bytes),
    /// Not an entry: the metadata of each commit, naming the block whose state it holds.
    Commit(Height),
}

impl StateValue {
    fn tag(&self) -> u8 {
        match self {
            Self::Account { .. } => 0,
            Self::Retired { .. } => 1,
            // Tag 2 held slots when they shared the table (layout 1); it stays unused.
            Self::Code(_) => 3,
            Self::Commit(_) => 4,
        }
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Account { .. } => "account",
            Self::Retired { .. } => "retired account",
            Self::Code(_) => "code",
            Self::Commit(_) => "commit",
        }
    }
}

impl Write for StateValue {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
        match self {
            Self::Account {
                account,
                generation,
            } => {
                account.nonce.write(buf);
                buf.put_slice(&account.balance.to_be_bytes::<32>());
                buf.put_slice(account.code_hash.as_slice());
                generation.write(buf);
            }
            Self::Retired { generation } => generation.write(buf),
            Self::Code(code) => bytes::Bytes::copy_from_slice(code).write(buf),
            Self::Commit(height) => height.get().write(buf),
        }
    }
}

impl EncodeSize for StateValue {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Account { .. } => 8 + 32 + 32 + 8,
            Self::Retired { .. } | Self::Commit(_) => 8,
            Self::Code(code) => code.len().encode_size() + code.len(),
        }
    }
}

impl Read for StateValue {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Self::Account {
                account: Account {
                    nonce: u64::read(buf)?,
                    balance: U256::from_be_bytes(<[u8; 32]>::read(buf)?),
                    code_hash: B256::from(<[u8; 32]>::read(buf)?),
                },
                generation: u64::read(buf)?,
            }),
            1 => Ok(Self::Retired {
                generation: u64::read(buf)?,
            }),
            3 => {
                let code = bytes::Bytes::read_cfg(buf, &RangeCfg::new(..=MAX_CODE_BYTES))?;
                Ok(Self::Code(Bytes::from(code)))
            }
            4 => Ok(Self::Commit(Height(u64::read(buf)?))),
            _ => Err(CodecError::Invalid("StateValue", "unknown tag")),
        }
    }
}

/// A storage slot's value as the storage table holds it: the 32-byte big-endian word (never
/// zero: a slot written zero is deleted).
pub type SlotWord = [u8; 32];

/// The word a slot value is stored as.
pub fn slot_word(value: &U256) -> SlotWord {
    value.to_be_bytes()
}

/// The slot value a stored word holds.
pub fn slot_value(word: &SlotWord) -> U256 {
    U256::from_be_bytes(*word)
}

/// The storage table's commit metadata: the committed block's height, as a word.
pub fn height_word(height: Height) -> SlotWord {
    U256::from(height.get()).to_be_bytes()
}

/// The height a storage commit's metadata names, if it is a height.
pub fn word_height(word: &SlotWord) -> Option<Height> {
    u64::try_from(slot_value(word)).ok().map(Height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn values_round_trip() {
        let values = [
            StateValue::Account {
                account: Account {
                    nonce: 7,
                    balance: U256::MAX,
                    code_hash: B256::repeat_byte(9),
                },
                generation: 2,
            },
            StateValue::Retired { generation: 3 },
            StateValue::Code(Bytes::from_static(&[0x60, 0x00, 0x60])),
            StateValue::Commit(Height(12)),
        ];
        for value in values {
            let encoded = value.encode();
            assert_eq!(encoded.len(), value.encode_size());
            assert_eq!(StateValue::decode(encoded).unwrap(), value);
        }
        assert!(
            StateValue::decode(bytes::Bytes::from_static(&[9u8])).is_err(),
            "unknown tag"
        );
        let mut slot = vec![2u8];
        slot.extend_from_slice(&[0; 32]);
        assert!(
            StateValue::decode(bytes::Bytes::from(slot)).is_err(),
            "slots are not accounts-table values"
        );
        let height = Height(1 << 40);
        assert_eq!(word_height(&height_word(height)), Some(height));
        assert_eq!(word_height(&[0xff; 32]), None);
    }

    #[test]
    fn a_slot_key_hashes_its_padded_account_block_then_the_slot() {
        let (address, generation, slot) = (Address::repeat_byte(7), 3u64, U256::from(99));
        let mut preimage = Vec::new();
        preimage.extend_from_slice(KEY_DOMAIN);
        preimage.push(2);
        preimage.extend_from_slice(address.as_slice());
        preimage.extend_from_slice(&generation.to_be_bytes());
        preimage.resize(64, 0);
        preimage.extend_from_slice(&slot.to_be_bytes::<32>());
        let key = StateKey::Slot {
            address,
            generation,
            slot,
        };
        assert_eq!(key.digest(), Sha256::hash(&[&preimage]));
    }

    #[test]
    fn keys_of_different_kinds_or_generations_differ() {
        let address = Address::repeat_byte(1);
        let slot = |generation| StateKey::Slot {
            address,
            generation,
            slot: U256::ZERO,
        };
        let keys = [
            StateKey::Account(address).digest(),
            slot(0).digest(),
            slot(1).digest(),
            StateKey::Code(B256::ZERO).digest(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
