//! The finalization certificates marshal archived, read back for auditors: which validators
//! signed the finalization of a block (the votes a validator key cast, for
//! `trellis_keyActivity`), with the certificate itself as the proof.

use crate::{block::ConsensusBlock, epochs::participants, ledger::Ledger, scheme::Scheme};
use commonware_codec::Encode as _;
use commonware_consensus::marshal::{core::Mailbox, standard::Standard};
use trellis_types::{BlockHash, Epoch, Height, ValidatorId, View};

/// One block's finalization certificate, as archived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizationRecord {
    pub height: Height,
    pub epoch: Epoch,
    pub view: View,
    pub block: BlockHash,
    /// The validators whose finalize votes the certificate carries, in the epoch's order.
    pub signers: Vec<ValidatorId>,
    /// The certificate in its canonical encoding (proposal and ed25519 signatures): checkable
    /// by anyone who knows the epoch's validators and the chain's namespace.
    pub encoded: Vec<u8>,
}

/// Reads finalization certificates from marshal's archive.
#[derive(Clone)]
pub struct Certificates<L> {
    marshal: Mailbox<Scheme, Standard<ConsensusBlock>>,
    ledger: L,
}

impl<L: Ledger> Certificates<L> {
    pub(crate) fn new(marshal: Mailbox<Scheme, Standard<ConsensusBlock>>, ledger: L) -> Self {
        Self { marshal, ledger }
    }

    /// The finalization certificate of the block at `height`, if one was archived: a block
    /// finalized only through a descendant's certificate has none of its own.
    pub async fn finalization(&self, height: Height) -> Option<FinalizationRecord> {
        let height_ = commonware_consensus::types::Height::new(height.get());
        let finalization = self.marshal.get_finalization(height_).await?;
        let round = finalization.proposal.round;
        let epoch = Epoch(round.epoch().get());
        let validators = self.ledger.validators(epoch).await?;
        let set = participants(&validators);
        let signers = finalization
            .certificate
            .signers
            .iter()
            .filter_map(|index| set.get(usize::from(index)))
            .map(crate::block::validator_id)
            .collect();
        Some(FinalizationRecord {
            height,
            epoch,
            view: View(round.view().get()),
            block: finalization.proposal.payload,
            signers,
            encoded: finalization.encode().to_vec(),
        })
    }
}
