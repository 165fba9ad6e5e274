//! Block headers: what a block commits to.

use crate::{BlockHash, Epoch, Height, StateRoot, View};
use alloy_primitives::{Address, B256, Bloom, keccak256};
use bytes::BufMut;
use commonware_codec::{Encode, Error, FixedSize, Read, ReadExt, Write};
use std::fmt;

/// Milliseconds since the Unix epoch, as chosen by the block's proposer.
///
/// Consensus checks it against the parent (never earlier); the EVM sees whole seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch: the EVM's `block.timestamp`.
    pub fn seconds(self) -> u64 {
        self.0 / 1000
    }
}

/// A validator's identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ValidatorId(pub [u8; 32]);

impl ValidatorId {
    /// The address credited as the EVM's `block.coinbase` for blocks this validator proposes.
    ///
    /// Derived like an Ethereum address (last 20 bytes of keccak-256) so it is stable and
    /// collision-resistant, though no secp256k1 key controls it.
    pub fn coinbase(&self) -> Address {
        Address::from_slice(&keccak256(self.0)[12..])
    }
}

/// The key in hex, `0x`-prefixed: as node.toml, the genesis file and the CLI write it.
impl fmt::Display for ValidatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", B256::from(self.0))
    }
}

impl fmt::Debug for ValidatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValidatorId({})", B256::from(self.0))
    }
}

/// The header of a block. Its canonical encoding is laid out in the crate documentation.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Header {
    pub parent: BlockHash,
    pub height: Height,
    pub timestamp: Timestamp,
    pub proposer: ValidatorId,
    /// The consensus epoch and view in which the proposer led and proposed this block.
    pub epoch: Epoch,
    pub view: View,
    /// The view in which the parent was proposed. With the fields above it is the consensus
    /// context the block was built in, so a node can check a block it only fetched later.
    pub parent_view: View,
    /// Ethereum ordered-trie root of the block's EIP-2718 transaction envelopes.
    pub transactions_root: B256,
    /// keccak-256 of the transactions' senders, 20 bytes each, in order
    /// ([`senders_root`](crate::senders_root)): certifies who signed each transaction, so a
    /// node can take a block's senders from a peer and check them with one hash.
    pub senders_root: B256,
    /// Ethereum ordered-trie root of the EIP-2718 receipts of the executed transactions.
    pub receipts_root: B256,
    /// The state after executing this block on its parent's state.
    pub state_root: StateRoot,
    /// The union of the blooms of every receipt.
    pub logs_bloom: Bloom,
    pub gas_used: u64,
    pub gas_limit: u64,
}

/// Why a header cannot follow its supposed parent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("height {child} does not follow parent height {parent}")]
    HeightGap { parent: Height, child: Height },
    #[error("parent hash {claimed} is not the parent's hash {actual}")]
    ParentMismatch {
        claimed: BlockHash,
        actual: BlockHash,
    },
    #[error("timestamp {child} ms is earlier than the parent's {parent} ms")]
    TimeTravel { parent: u64, child: u64 },
    #[error("gas used {used} exceeds the gas limit {limit}")]
    GasOverLimit { used: u64, limit: u64 },
}

impl Header {
    /// keccak-256 of the canonical encoding.
    pub fn hash(&self) -> BlockHash {
        BlockHash(keccak256(self.encode()))
    }

    /// Checks the rules linking a header to its parent and its own gas accounting.
    pub fn check_child_of(&self, parent: &Header) -> Result<(), HeaderError> {
        if parent.height.next() != self.height {
            return Err(HeaderError::HeightGap {
                parent: parent.height,
                child: self.height,
            });
        }
        let actual = parent.hash();
        if self.parent != actual {
            return Err(HeaderError::ParentMismatch {
                claimed: self.parent,
                actual,
            });
        }
        if self.timestamp < parent.timestamp {
            return Err(HeaderError::TimeTravel {
                parent: parent.timestamp.0,
                child: self.timestamp.0,
            });
        }
        self.check_gas()
    }

    /// Gas used never exceeds the limit.
    pub fn check_gas(&self) -> Result<(), HeaderError> {
        if self.gas_used > self.gas_limit {
            return Err(HeaderError::GasOverLimit {
                used: self.gas_used,
                limit: self.gas_limit,
            });
        }
        Ok(())
    }
}

impl Write for Header {
    fn write(&self, buf: &mut impl BufMut) {
        self.parent.write(buf);
        self.height.write(buf);
        self.timestamp.0.write(buf);
        buf.put_slice(&self.proposer.0);
        self.epoch.write(buf);
        self.view.write(buf);
        self.parent_view.write(buf);
        buf.put_slice(self.transactions_root.as_slice());
        buf.put_slice(self.senders_root.as_slice());
        buf.put_slice(self.receipts_root.as_slice());
        self.state_root.write(buf);
        buf.put_slice(self.logs_bloom.as_slice());
        self.gas_used.write(buf);
        self.gas_limit.write(buf);
    }
}

impl FixedSize for Header {
    const SIZE: usize = BlockHash::SIZE
        + Height::SIZE
        + u64::SIZE
        + 32
        + Epoch::SIZE
        + View::SIZE
        + View::SIZE
        + 32
        + 32
        + 32
        + StateRoot::SIZE
        + 256
        + u64::SIZE
        + u64::SIZE;
}

impl Read for Header {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, Error> {
        let header = Self {
            parent: BlockHash::read(buf)?,
            height: Height::read(buf)?,
            timestamp: Timestamp(u64::read(buf)?),
            proposer: ValidatorId(<[u8; 32]>::read(buf)?),
            epoch: Epoch::read(buf)?,
            view: View::read(buf)?,
            parent_view: View::read(buf)?,
            transactions_root: B256::from(<[u8; 32]>::read(buf)?),
            senders_root: B256::from(<[u8; 32]>::read(buf)?),
            receipts_root: B256::from(<[u8; 32]>::read(buf)?),
            state_root: StateRoot::read(buf)?,
            logs_bloom: Bloom::from(<[u8; 256]>::read(buf)?),
            gas_used: u64::read(buf)?,
            gas_limit: u64::read(buf)?,
        };
        header
            .check_gas()
            .map_err(|_| Error::Invalid("Header", "gas used exceeds gas limit"))?;
        Ok(header)
    }
}

// Keep the layout table in the crate docs true.
const _: () =
    assert!(Header::SIZE == 32 + 8 + 8 + 32 + 8 + 8 + 8 + 32 + 32 + 32 + 32 + 256 + 8 + 8);

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::DecodeExt;

    pub(crate) fn sample() -> Header {
        Header {
            parent: BlockHash(B256::repeat_byte(1)),
            height: Height(7),
            timestamp: Timestamp(1_700_000_000_123),
            proposer: ValidatorId([9; 32]),
            epoch: Epoch(0),
            view: View(11),
            parent_view: View(10),
            transactions_root: B256::repeat_byte(2),
            senders_root: B256::repeat_byte(6),
            receipts_root: B256::repeat_byte(3),
            state_root: StateRoot(B256::repeat_byte(4)),
            logs_bloom: Bloom::repeat_byte(5),
            gas_used: 21_000,
            gas_limit: 30_000_000,
        }
    }

    #[test]
    fn encoding_round_trips_and_has_fixed_size() {
        let header = sample();
        let bytes = header.encode();
        assert_eq!(bytes.len(), Header::SIZE);
        assert_eq!(Header::decode(bytes).unwrap(), header);
    }

    /// Pins the canonical encoding: if this changes, every block hash changes, so it must only
    /// ever change on purpose (and with a protocol version bump). The expected value was
    /// computed independently (Python, pycryptodome keccak) from the layout in the crate docs.
    #[test]
    fn canonical_hash_test_vector() {
        assert_eq!(sample().encode().len(), 504);
        assert_eq!(
            sample().hash().to_string(),
            "0x18dd82b00d24331235df32ae0155e079db45b5c0d65f22c9289d7948fa1ed068"
        );
    }

    #[test]
    fn hash_changes_with_every_field() {
        let base = sample();
        let mut variants = Vec::new();
        let mut h = base.clone();
        h.height = Height(8);
        variants.push(h);
        let mut h = base.clone();
        h.timestamp = Timestamp(1);
        variants.push(h);
        let mut h = base.clone();
        h.state_root = StateRoot(B256::repeat_byte(0xee));
        variants.push(h);
        let mut h = base.clone();
        h.view = View(12);
        variants.push(h);
        let mut h = base.clone();
        h.parent_view = View(9);
        variants.push(h);
        let mut h = base.clone();
        h.gas_used = 1;
        variants.push(h);
        let mut h = base.clone();
        h.senders_root = B256::repeat_byte(0xee);
        variants.push(h);
        for v in variants {
            assert_ne!(v.hash(), base.hash());
        }
    }

    #[test]
    fn child_rules_are_enforced() {
        let parent = sample();
        let mut child = Header {
            parent: parent.hash(),
            height: parent.height.next(),
            timestamp: parent.timestamp,
            ..sample()
        };
        child.check_child_of(&parent).unwrap();

        let mut gap = child.clone();
        gap.height = Height(9);
        assert!(matches!(
            gap.check_child_of(&parent),
            Err(HeaderError::HeightGap { .. })
        ));

        let mut orphan = child.clone();
        orphan.parent = BlockHash::ZERO;
        assert!(matches!(
            orphan.check_child_of(&parent),
            Err(HeaderError::ParentMismatch { .. })
        ));

        child.timestamp = Timestamp(parent.timestamp.0 - 1);
        assert!(matches!(
            child.check_child_of(&parent),
            Err(HeaderError::TimeTravel { .. })
        ));
    }

    #[test]
    fn decoding_rejects_gas_over_limit_and_truncation() {
        let mut header = sample();
        header.gas_used = header.gas_limit + 1;
        assert!(Header::decode(header.encode()).is_err());
        let bytes = sample().encode();
        assert!(Header::decode(bytes.slice(..bytes.len() - 1)).is_err());
    }

    #[test]
    fn coinbase_is_stable() {
        assert_eq!(
            ValidatorId([9; 32]).coinbase(),
            ValidatorId([9; 32]).coinbase()
        );
        assert_ne!(
            ValidatorId([9; 32]).coinbase(),
            ValidatorId([8; 32]).coinbase()
        );
    }
}
