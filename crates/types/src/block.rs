//! Blocks: a header and the ordered EIP-2718 transaction envelopes it commits to.

use crate::{BlockHash, Header, Height};
use alloy_consensus::proofs::ordered_trie_root_encoded;
use alloy_primitives::{B256, Bytes};
use commonware_codec::{EncodeSize, Error, RangeCfg, Read, ReadExt, Write};

/// Bounds applied when decoding a block from untrusted bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Most transactions one block may carry.
    pub max_transactions: usize,
    /// Largest single transaction envelope, in bytes.
    pub max_transaction_bytes: usize,
    /// Most bytes of transaction envelopes in one block, all transactions together. This, not
    /// count × size, is what bounds a block on the wire.
    pub max_block_bytes: usize,
}

impl BlockLimits {
    /// The largest encoding the decoder accepts under these limits. Sizes the p2p messages that
    /// carry blocks.
    pub fn max_encoded_size(&self) -> usize {
        use commonware_codec::{FixedSize, varint::UInt};
        let prefix = |n: usize| UInt(n as u64).encode_size();
        Header::SIZE
            + prefix(self.max_transactions)
            + self.max_transactions * prefix(self.max_transaction_bytes)
            + self.max_block_bytes
    }
}

impl Default for BlockLimits {
    fn default() -> Self {
        Self {
            max_transactions: 100_000,
            // Ethereum clients commonly cap a transaction at 128 KiB; contract deployments
            // (24 KiB code limit, EIP-170) fit well within it.
            max_transaction_bytes: 128 * 1024,
            // A 60M-gas block of calldata costs at least 10 gas a byte (EIP-7623), so 6 MB; a
            // block never needs more than this.
            max_block_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Why a block is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("transactions root {claimed} in the header does not match the transactions ({actual})")]
    TransactionsRootMismatch { claimed: B256, actual: B256 },
}

/// A block. The header commits to the transactions through its transactions root, which every
/// constructor and the decoder check, so a `Block` value is always internally consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    header: Header,
    transactions: Vec<Bytes>,
    hash: BlockHash,
}

/// The Ethereum ordered-trie root of raw EIP-2718 envelopes.
pub fn transactions_root(transactions: &[Bytes]) -> B256 {
    ordered_trie_root_encoded(transactions)
}

impl Block {
    /// Joins a header to its transactions, checking the header's transactions root.
    pub fn new(header: Header, transactions: Vec<Bytes>) -> Result<Self, BlockError> {
        let actual = transactions_root(&transactions);
        if actual != header.transactions_root {
            return Err(BlockError::TransactionsRootMismatch {
                claimed: header.transactions_root,
                actual,
            });
        }
        let hash = header.hash();
        Ok(Self {
            header,
            transactions,
            hash,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn transactions(&self) -> &[Bytes] {
        &self.transactions
    }

    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    pub fn parent(&self) -> BlockHash {
        self.header.parent
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl bytes::BufMut) {
        // Same layout as `Vec<bytes::Bytes>`: a varint count, then each length-prefixed envelope.
        self.header.write(buf);
        self.transactions.len().write(buf);
        for tx in &self.transactions {
            tx.0.write(buf);
        }
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.header.encode_size()
            + self.transactions.len().encode_size()
            + self
                .transactions
                .iter()
                .map(|tx| tx.0.encode_size())
                .sum::<usize>()
    }
}

impl Read for Block {
    type Cfg = BlockLimits;
    fn read_cfg(buf: &mut impl commonware_codec::Buf, limits: &BlockLimits) -> Result<Self, Error> {
        let header = Header::read(buf)?;
        let tx_cfg: RangeCfg<usize> = (..=limits.max_transaction_bytes).into();
        let raw: Vec<bytes::Bytes> =
            Vec::read_cfg(buf, &((..=limits.max_transactions).into(), tx_cfg))?;
        let bytes: usize = raw.iter().map(|tx| tx.len()).sum();
        if bytes > limits.max_block_bytes {
            return Err(Error::Invalid(
                "Block",
                "transactions exceed max_block_bytes",
            ));
        }
        let transactions = raw.into_iter().map(Bytes::from).collect();
        Self::new(header, transactions)
            .map_err(|_| Error::Invalid("Block", "transactions root mismatch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StateRoot, Timestamp, ValidatorId, View};
    use alloy_primitives::Bloom;
    use commonware_codec::{Decode, Encode};

    fn block_with(transactions: Vec<Bytes>) -> Block {
        let header = Header {
            parent: BlockHash(B256::repeat_byte(1)),
            height: Height(1),
            timestamp: Timestamp(5),
            proposer: ValidatorId([3; 32]),
            epoch: Default::default(),
            view: View(1),
            parent_view: View(0),
            transactions_root: transactions_root(&transactions),
            senders_root: B256::ZERO,
            receipts_root: B256::ZERO,
            state_root: StateRoot::ZERO,
            logs_bloom: Bloom::ZERO,
            gas_used: 0,
            gas_limit: 1,
        };
        Block::new(header, transactions).unwrap()
    }

    #[test]
    fn round_trips_and_hash_is_header_hash() {
        let block = block_with(vec![
            Bytes::from_static(b"\x02abc"),
            Bytes::from_static(b"\x01"),
        ]);
        let decoded = Block::decode_cfg(block.encode(), &BlockLimits::default()).unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.hash(), block.header().hash());
    }

    #[test]
    fn empty_block_has_the_ethereum_empty_root() {
        let block = block_with(vec![]);
        assert_eq!(
            block.header().transactions_root,
            alloy_consensus::constants::EMPTY_ROOT_HASH
        );
    }

    #[test]
    fn tampered_transactions_are_rejected() {
        let block = block_with(vec![Bytes::from_static(b"\x02abc")]);
        let err = Block::new(block.header().clone(), vec![Bytes::from_static(b"\x02abd")]);
        assert!(matches!(
            err,
            Err(BlockError::TransactionsRootMismatch { .. })
        ));

        // The same tampering on the wire is caught by the decoder.
        let forged = Block {
            transactions: vec![Bytes::from_static(b"\x02abd")],
            ..block
        };
        assert!(Block::decode_cfg(forged.encode(), &BlockLimits::default()).is_err());
    }

    #[test]
    fn limits_bound_decoding() {
        let block = block_with(vec![Bytes::from(vec![0u8; 64]); 3]);
        let tight = BlockLimits {
            max_transactions: 2,
            max_transaction_bytes: 1024,
            max_block_bytes: 1 << 20,
        };
        assert!(Block::decode_cfg(block.encode(), &tight).is_err());
        let small = BlockLimits {
            max_transactions: 10,
            max_transaction_bytes: 63,
            max_block_bytes: 1024,
        };
        assert!(Block::decode_cfg(block.encode(), &small).is_err());
        let total = BlockLimits {
            max_transactions: 10,
            max_transaction_bytes: 64,
            max_block_bytes: 191,
        };
        assert!(Block::decode_cfg(block.encode(), &total).is_err());
        let fits = BlockLimits {
            max_block_bytes: 192,
            ..total
        };
        let bytes = block.encode();
        assert!(bytes.len() <= fits.max_encoded_size());
        assert_eq!(Block::decode_cfg(bytes, &fits).unwrap(), block);
    }
}
