//! The senders of a block's transactions as the node that recovered them claims, carried beside
//! the block (never in its hash), so that a node applying finalized blocks it never verified
//! need not recover every signature again.
//!
//! A claim is trusted for nothing by itself: it must hash to the header's senders root, which
//! the block's certificate covers.

use crate::Block;
use alloy_primitives::{Address, B256, Keccak256};
use commonware_codec::{EncodeSize, Error, RangeCfg, Read, Write};

/// keccak-256 of `senders`' 20-byte addresses, in order: a header's senders root.
pub fn senders_root(senders: impl IntoIterator<Item = Address>) -> B256 {
    let mut hasher = Keccak256::new();
    for sender in senders {
        hasher.update(sender.as_slice());
    }
    hasher.finalize()
}

/// One sender per transaction of a block, in order, or none at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimedSenders(Vec<Address>);

impl ClaimedSenders {
    pub fn new(senders: Vec<Address>) -> Self {
        Self(senders)
    }

    /// No claim (a block without transactions, or whose senders the node did not know).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn as_slice(&self) -> &[Address] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this names one sender for each of `block`'s transactions.
    pub fn covers(&self, block: &Block) -> bool {
        !self.0.is_empty() && self.0.len() == block.transactions().len()
    }

    /// Whether these are the senders `block`'s header certifies.
    pub fn certified_by(&self, block: &Block) -> bool {
        self.covers(block) && senders_root(self.0.iter().copied()) == block.header().senders_root
    }

    /// The most bytes the claim for `max_transactions` transactions encodes to.
    pub fn max_encoded_size(max_transactions: usize) -> usize {
        max_transactions.encode_size() + max_transactions * Address::len_bytes()
    }
}

impl Write for ClaimedSenders {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        self.0.len().write(buf);
        for sender in &self.0 {
            buf.put_slice(sender.as_slice());
        }
    }
}

impl EncodeSize for ClaimedSenders {
    fn encode_size(&self) -> usize {
        self.0.len().encode_size() + self.0.len() * Address::len_bytes()
    }
}

impl Read for ClaimedSenders {
    /// The most senders accepted (a block's transaction limit).
    type Cfg = usize;
    fn read_cfg(buf: &mut impl commonware_codec::Buf, max: &usize) -> Result<Self, Error> {
        let count = usize::read_cfg(buf, &RangeCfg::from(..=*max))?;
        if buf.remaining() < count * Address::len_bytes() {
            return Err(Error::EndOfBuffer);
        }
        let senders = (0..count)
            .map(|_| {
                let mut bytes = [0u8; 20];
                buf.copy_to_slice(&mut bytes);
                Address::from(bytes)
            })
            .collect();
        Ok(Self(senders))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode, Encode};

    /// Pinned, computed independently (Python, pycryptodome keccak): the root is part of every
    /// block hash.
    #[test]
    fn senders_root_test_vectors() {
        assert_eq!(senders_root([]), alloy_primitives::KECCAK256_EMPTY);
        assert_eq!(
            senders_root([Address::repeat_byte(1), Address::repeat_byte(2)]).to_string(),
            "0xce6c5b9e2cfc570f359b4cdc1f7f7c88077248388fbb0cf6c829ef8da029615e"
        );
    }

    #[test]
    fn round_trips_and_refuses_more_than_the_limit() {
        let claim = ClaimedSenders::new(vec![Address::repeat_byte(1), Address::repeat_byte(2)]);
        let bytes = claim.encode();
        assert_eq!(bytes.len(), claim.encode_size());
        assert_eq!(
            ClaimedSenders::decode_cfg(bytes.clone(), &2).unwrap(),
            claim
        );
        assert!(ClaimedSenders::decode_cfg(bytes.clone(), &1).is_err());
        // Truncated: fewer addresses than the count says.
        assert!(ClaimedSenders::decode_cfg(bytes.slice(..bytes.len() - 1), &2).is_err());
        assert_eq!(
            ClaimedSenders::decode_cfg(ClaimedSenders::none().encode(), &0).unwrap(),
            ClaimedSenders::none()
        );
    }
}
