//! The block as consensus handles it: a ledger [`Block`] plus the traits simplex and marshal
//! need from it.
//!
//! The consensus digest of a block is its keccak-256 [`BlockHash`], so the hash a quorum
//! certifies is the one clients see. The consensus context (epoch, view, leader, parent view) is
//! part of the header, hence of that hash: a node that fetched a block after the fact can check
//! that it was proposed in the round its certificate names.
//!
//! Beside the block travels its proposer's claim of the transactions' senders
//! ([`ClaimedSenders`]), outside the hash: validators recover senders themselves, but a node
//! applying blocks already finalized uses the claim instead and checks it through the certified
//! state root.

use bytes::BufMut;
use commonware_codec::{Buf, DecodeExt, EncodeSize, Error, Read, Write};
use commonware_consensus::{
    Heightable,
    simplex::types::Context,
    types::{Epoch, Height as ConsensusHeight, Round, View as ConsensusView},
};
use commonware_cryptography::{Digestible, ed25519::PublicKey};
use trellis_types::{Block, BlockHash, BlockLimits, ClaimedSenders, ValidatorId};

/// The consensus context a block was proposed in.
pub type ProposalContext = Context<BlockHash, PublicKey>;

/// A ledger block whose proposer field is a valid ed25519 key: the form consensus orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusBlock {
    block: Block,
    /// The header's proposer, decoded once (it is the leader in the block's context).
    leader: PublicKey,
    /// Not covered by the digest: two copies of one block may claim differently.
    senders: ClaimedSenders,
}

/// Why a ledger block cannot be ordered by consensus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusBlockError {
    #[error("block {hash} names proposer {proposer:?}, which is not a valid ed25519 public key")]
    InvalidProposer {
        hash: BlockHash,
        proposer: ValidatorId,
    },
    #[error("block {hash} has {transactions} transactions but claims {senders} senders")]
    SendersMismatch {
        hash: BlockHash,
        transactions: usize,
        senders: usize,
    },
}

impl ConsensusBlock {
    /// A block without a claim of its senders.
    pub fn new(block: Block) -> Result<Self, ConsensusBlockError> {
        Self::with_senders(block, ClaimedSenders::none())
    }

    /// A block with the senders of its transactions (none, or one per transaction).
    pub fn with_senders(
        block: Block,
        senders: ClaimedSenders,
    ) -> Result<Self, ConsensusBlockError> {
        if !senders.is_empty() && !senders.covers(&block) {
            return Err(ConsensusBlockError::SendersMismatch {
                hash: block.hash(),
                transactions: block.transactions().len(),
                senders: senders.as_slice().len(),
            });
        }
        let proposer = block.header().proposer;
        let leader = PublicKey::decode(proposer.0.to_vec()).map_err(|_| {
            ConsensusBlockError::InvalidProposer {
                hash: block.hash(),
                proposer,
            }
        })?;
        Ok(Self {
            block,
            leader,
            senders,
        })
    }

    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The senders its proposer (or the peer it came from) claims; unchecked.
    pub fn senders(&self) -> &ClaimedSenders {
        &self.senders
    }

    pub fn into_block(self) -> Block {
        self.block
    }

    pub fn hash(&self) -> BlockHash {
        self.block.hash()
    }

    pub fn height(&self) -> trellis_types::Height {
        self.block.height()
    }
}

/// The ledger's identity of a consensus participant.
pub fn validator_id(key: &PublicKey) -> ValidatorId {
    let bytes: [u8; 32] = key
        .as_ref()
        .try_into()
        .expect("ed25519 public keys are 32 bytes");
    ValidatorId(bytes)
}

impl Write for ConsensusBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
        self.senders.write(buf);
    }
}

impl EncodeSize for ConsensusBlock {
    fn encode_size(&self) -> usize {
        self.block.encode_size() + self.senders.encode_size()
    }
}

impl Read for ConsensusBlock {
    type Cfg = BlockLimits;
    fn read_cfg(buf: &mut impl Buf, limits: &BlockLimits) -> Result<Self, Error> {
        let block = Block::read_cfg(buf, limits)?;
        let senders = ClaimedSenders::read_cfg(buf, &limits.max_transactions)?;
        Self::with_senders(block, senders).map_err(|e| match e {
            ConsensusBlockError::InvalidProposer { .. } => {
                Error::Invalid("ConsensusBlock", "invalid proposer key")
            }
            ConsensusBlockError::SendersMismatch { .. } => {
                Error::Invalid("ConsensusBlock", "not one claimed sender per transaction")
            }
        })
    }
}

impl Digestible for ConsensusBlock {
    type Digest = BlockHash;
    fn digest(&self) -> BlockHash {
        self.block.hash()
    }
}

impl Heightable for ConsensusBlock {
    fn height(&self) -> ConsensusHeight {
        ConsensusHeight::new(self.block.height().get())
    }
}

impl commonware_consensus::Block for ConsensusBlock {
    fn parent(&self) -> BlockHash {
        self.block.parent()
    }
}

impl commonware_consensus::CertifiableBlock for ConsensusBlock {
    type Context = ProposalContext;
    fn context(&self) -> ProposalContext {
        let header = self.block.header();
        ProposalContext {
            round: Round::new(
                Epoch::new(header.epoch.get()),
                ConsensusView::new(header.view.get()),
            ),
            leader: self.leader.clone(),
            parent: (ConsensusView::new(header.parent_view.get()), header.parent),
        }
    }
}

impl commonware_consensus::BoundedBlock for ConsensusBlock {
    fn max_encode_size(limits: &BlockLimits) -> usize {
        limits.max_encoded_size() + ClaimedSenders::max_encoded_size(limits.max_transactions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode as _, Encode as _};
    use commonware_consensus::CertifiableBlock as _;
    use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
    use trellis_types::{Address, B256, Bloom, Epoch, Header, Height, StateRoot, Timestamp, View};

    fn block_by(proposer: ValidatorId) -> Block {
        block_with(proposer, vec![])
    }

    fn block_with(proposer: ValidatorId, transactions: Vec<trellis_types::Bytes>) -> Block {
        let header = Header {
            parent: BlockHash(B256::repeat_byte(1)),
            height: Height(3),
            timestamp: Timestamp(10),
            proposer,
            epoch: Epoch(0),
            view: View(5),
            parent_view: View(4),
            transactions_root: trellis_types::transactions_root(&transactions),
            senders_root: trellis_types::senders_root([]),
            receipts_root: B256::ZERO,
            state_root: StateRoot::ZERO,
            logs_bloom: Bloom::ZERO,
            gas_used: 0,
            gas_limit: 1,
        };
        Block::new(header, transactions).unwrap()
    }

    #[test]
    fn claimed_senders_travel_beside_the_block_one_per_transaction() {
        let key = PrivateKey::from_seed(1).public_key();
        let txs = vec![
            trellis_types::Bytes::from_static(b"a"),
            trellis_types::Bytes::from_static(b"b"),
        ];
        let block = block_with(validator_id(&key), txs);
        let two = ClaimedSenders::new(vec![Address::repeat_byte(1), Address::repeat_byte(2)]);
        let claimed = ConsensusBlock::with_senders(block.clone(), two.clone()).unwrap();
        let decoded =
            ConsensusBlock::decode_cfg(claimed.encode(), &BlockLimits::default()).unwrap();
        assert_eq!(decoded.senders(), &two);
        assert_eq!(
            decoded.digest(),
            ConsensusBlock::new(block.clone()).unwrap().digest()
        );

        let one = ClaimedSenders::new(vec![Address::repeat_byte(1)]);
        assert!(matches!(
            ConsensusBlock::with_senders(block.clone(), one.clone()),
            Err(ConsensusBlockError::SendersMismatch {
                transactions: 2,
                senders: 1,
                ..
            })
        ));
        // The same claim crafted on the wire is refused when decoding.
        let mut bytes = block.encode().to_vec();
        bytes.extend_from_slice(&one.encode());
        assert!(
            ConsensusBlock::decode_cfg(bytes::Bytes::from(bytes), &BlockLimits::default()).is_err()
        );
    }

    #[test]
    fn context_is_read_from_the_header() {
        let key = PrivateKey::from_seed(1).public_key();
        let block = ConsensusBlock::new(block_by(validator_id(&key))).unwrap();
        let context = block.context();
        assert_eq!(context.round.view().get(), 5);
        assert_eq!(context.round.epoch().get(), 0);
        assert_eq!(
            context.parent,
            (ConsensusView::new(4), block.block().parent())
        );
        assert_eq!(context.leader, key);
        let decoded = ConsensusBlock::decode_cfg(block.encode(), &BlockLimits::default()).unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.digest(), block.block().header().hash());
    }

    #[test]
    fn a_proposer_that_is_not_a_key_is_refused() {
        // y = 2 (little-endian) is on no point of the curve: (y² - 1) / (d·y² + 1) has no
        // square root modulo 2^255 - 19.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let bogus = ValidatorId(bytes);
        assert!(matches!(
            ConsensusBlock::new(block_by(bogus)),
            Err(ConsensusBlockError::InvalidProposer { .. })
        ));
        let bytes = block_by(bogus).encode();
        assert!(ConsensusBlock::decode_cfg(bytes, &BlockLimits::default()).is_err());
    }
}
