//! Reading and writing the council's records (see [`layout`](super::layout)).

use super::layout::{self, GOVERNANCE_ADDRESS};
use crate::contracts::proposal::{Proposal, ProposalId, ProposalStatus, Tally, Thresholds};
use crate::{
    IdentityId, RegistryError,
    layout::{Packer, Unpacker},
    writer::Overlay,
};
use alloy_primitives::{Address, Bytes, U256};
use trellis_state::StateReader;
use trellis_types::Height;

/// The longest action a proposal carries, in bytes.
pub const MAX_ACTION: usize = 1024;

/// How a governor voted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ballot {
    Approve,
    Reject,
}

impl Ballot {
    pub fn code(self) -> u8 {
        match self {
            Self::Approve => 1,
            Self::Reject => 2,
        }
    }
}

/// The council's records as a state holds them.
pub struct Council<'a, R: ?Sized> {
    state: &'a R,
}

impl<'a, R: StateReader + ?Sized> Council<'a, R> {
    pub fn new(state: &'a R) -> Self {
        Self { state }
    }

    fn slot(&self, slot: U256) -> Result<U256, RegistryError> {
        Ok(self.state.storage(&GOVERNANCE_ADDRESS, &slot)?)
    }

    fn u64_at(&self, slot: U256) -> Result<u64, RegistryError> {
        let value = self.slot(slot)?;
        u64::try_from(value).map_err(|_| RegistryError::Corrupt {
            what: "council number",
            slot,
            value,
        })
    }

    /// How many proposals were ever made (the last id).
    pub fn count(&self) -> Result<u64, RegistryError> {
        self.u64_at(layout::count())
    }

    pub fn weight(&self, identity: IdentityId) -> Result<u64, RegistryError> {
        self.u64_at(layout::weight(identity.0))
    }

    pub fn total_weight(&self) -> Result<u64, RegistryError> {
        self.u64_at(layout::total_weight())
    }

    pub fn thresholds(&self) -> Result<Thresholds, RegistryError> {
        let slot = layout::thresholds();
        let value = self.slot(slot)?;
        let mut fields = Unpacker::new(value);
        let marker = fields.byte();
        let thresholds = Thresholds {
            participation_bps: fields.u16(),
            approval_bps: fields.u16(),
        };
        if marker != 1 || !thresholds.is_valid() {
            return Err(RegistryError::Corrupt {
                what: "thresholds",
                slot,
                value,
            });
        }
        Ok(thresholds)
    }

    pub fn ballot(
        &self,
        id: ProposalId,
        identity: IdentityId,
    ) -> Result<Option<Ballot>, RegistryError> {
        let slot = layout::ballot(id.0, identity.0);
        match self.u64_at(slot)? {
            0 => Ok(None),
            1 => Ok(Some(Ballot::Approve)),
            2 => Ok(Some(Ballot::Reject)),
            _ => Err(RegistryError::Corrupt {
                what: "ballot",
                slot,
                value: self.slot(slot)?,
            }),
        }
    }

    /// Proposal `id` with its status as of block `height` (an open one past its expiry is
    /// [`ProposalStatus::Expired`]).
    pub fn proposal(
        &self,
        id: ProposalId,
        height: Height,
    ) -> Result<Option<Proposal>, RegistryError> {
        let slot = layout::proposal(id.0);
        let value = self.slot(slot)?;
        if value.is_zero() {
            return Ok(None);
        }
        let corrupt = |what| RegistryError::Corrupt { what, slot, value };
        let mut fields = Unpacker::new(value);
        if fields.byte() != 1 {
            return Err(corrupt("proposal"));
        }
        let recorded =
            ProposalStatus::from_code(fields.byte()).ok_or(corrupt("proposal status"))?;
        let proposer_identity = IdentityId(fields.u64());
        let created = Height(fields.u64());
        let expires = Height(fields.u64());
        let status = match recorded {
            ProposalStatus::Open if height > expires => ProposalStatus::Expired,
            other => other,
        };
        let proposer_word = self.slot(layout::proposer(id.0))?.to_be_bytes::<32>();
        let mut tally = Unpacker::new(self.slot(layout::tally(id.0))?);
        Ok(Some(Proposal {
            id,
            proposer: Address::from_slice(&proposer_word[12..]),
            proposer_identity,
            created,
            expires,
            status,
            tally: Tally {
                approvals: tally.u64(),
                rejections: tally.u64(),
            },
            action: self.action(id)?,
        }))
    }

    fn action(&self, id: ProposalId) -> Result<Bytes, RegistryError> {
        let slot = layout::action_length(id.0);
        let length = self.u64_at(slot)?;
        let length = usize::try_from(length)
            .ok()
            .filter(|l| *l <= MAX_ACTION)
            .ok_or(RegistryError::Corrupt {
                what: "action length",
                slot,
                value: U256::from(length),
            })?;
        let mut bytes = Vec::with_capacity(length.next_multiple_of(32));
        for index in 0..length.div_ceil(32) as u64 {
            let word = self.slot(layout::action_word(id.0, index))?;
            bytes.extend_from_slice(&word.to_be_bytes::<32>());
        }
        bytes.truncate(length);
        Ok(bytes.into())
    }
}

/// Writes council records into an overlay.
pub(crate) struct Records<'o, 'a, R: ?Sized> {
    overlay: &'o mut Overlay<'a, R>,
}

impl<'o, 'a, R: StateReader + ?Sized> Records<'o, 'a, R> {
    pub fn new(overlay: &'o mut Overlay<'a, R>) -> Self {
        Self { overlay }
    }

    fn set(&mut self, slot: U256, value: U256) {
        self.overlay.set(GOVERNANCE_ADDRESS, slot, value);
    }

    pub fn set_count(&mut self, count: u64) {
        self.set(layout::count(), U256::from(count));
    }

    pub fn set_weight(&mut self, identity: IdentityId, weight: u64) {
        self.set(layout::weight(identity.0), U256::from(weight));
    }

    pub fn set_total_weight(&mut self, total: u64) {
        self.set(layout::total_weight(), U256::from(total));
    }

    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        let value = Packer::default()
            .byte(1)
            .u16(thresholds.participation_bps)
            .u16(thresholds.approval_bps)
            .finish();
        self.set(layout::thresholds(), value);
    }

    pub fn set_ballot(&mut self, id: ProposalId, identity: IdentityId, ballot: Ballot) {
        self.set(layout::ballot(id.0, identity.0), U256::from(ballot.code()));
    }

    pub fn set_status(&mut self, proposal: &Proposal, status: ProposalStatus) {
        let value = Packer::default()
            .byte(1)
            .byte(status.code())
            .u64(proposal.proposer_identity.0)
            .u64(proposal.created.get())
            .u64(proposal.expires.get())
            .finish();
        self.set(layout::proposal(proposal.id.0), value);
    }

    pub fn set_tally(&mut self, id: ProposalId, tally: Tally) {
        let value = Packer::default()
            .u64(tally.approvals)
            .u64(tally.rejections)
            .finish();
        self.set(layout::tally(id.0), value);
    }

    /// Records a new proposal (open, no votes yet).
    pub fn create(&mut self, proposal: &Proposal) {
        assert!(
            proposal.action.len() <= MAX_ACTION,
            "actions are checked before"
        );
        self.set_status(proposal, ProposalStatus::Open);
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(proposal.proposer.as_slice());
        self.set(layout::proposer(proposal.id.0), U256::from_be_bytes(word));
        self.set_tally(proposal.id, Tally::default());
        let length = proposal.action.len();
        self.set(layout::action_length(proposal.id.0), U256::from(length));
        for (index, chunk) in proposal.action.chunks(32).enumerate() {
            let mut word = [0u8; 32];
            word[..chunk.len()].copy_from_slice(chunk);
            let slot = layout::action_word(proposal.id.0, index as u64);
            self.set(slot, U256::from_be_bytes(word));
        }
    }
}
