//! Proposals, their tallies and the thresholds that decide them.

use crate::IdentityId;
use alloy_primitives::{Address, Bytes};
use std::fmt;
use trellis_types::Height;

/// A proposal's number: 1, 2, … in the order they were made (0 stands for genesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId(pub u64);

impl fmt::Display for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Open for votes until its expiry height.
    Open,
    /// Passed and carried out.
    Executed,
    /// Can no longer pass: the rejections outweigh what approval needs.
    Rejected,
    /// Passed, but its action could not be carried out any more (the chain changed since).
    Failed,
    /// Open past its expiry height: no vote can pass it any more.
    Expired,
}

impl ProposalStatus {
    pub fn code(self) -> u8 {
        match self {
            Self::Open => 0,
            Self::Executed => 1,
            Self::Rejected => 2,
            Self::Failed => 3,
            Self::Expired => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::Open,
            Self::Executed,
            Self::Rejected,
            Self::Failed,
            Self::Expired,
        ]
        .into_iter()
        .find(|status| status.code() == code)
    }
}

impl fmt::Display for ProposalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Executed => "executed",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Expired => "expired",
        })
    }
}

/// A proposal as the council records it, its status as of the height it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub id: ProposalId,
    pub proposer: Address,
    pub proposer_identity: IdentityId,
    pub created: Height,
    /// The last height at which votes count.
    pub expires: Height,
    pub status: ProposalStatus,
    pub tally: Tally,
    /// The `ITrellisActions` call it carries out, ABI-encoded.
    pub action: Bytes,
}

/// The governors' weight for and against a proposal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub approvals: u64,
    pub rejections: u64,
}

impl Tally {
    pub fn cast(&self) -> u64 {
        self.approvals + self.rejections
    }
}

/// One ten-thousandth: thresholds are in basis points.
const BPS: u128 = 10_000;

/// When a proposal passes: enough of the governors' total weight voted (participation), and
/// enough of the weight that voted approved (approval). Both in basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub participation_bps: u16,
    pub approval_bps: u16,
}

impl Thresholds {
    /// Two thirds of the weight votes, two thirds of the votes approve (66.66 %, so 2 of 3
    /// is enough).
    pub const DEFAULT: Self = Self {
        participation_bps: 6_666,
        approval_bps: 6_666,
    };

    /// Participation in 1..=10000 basis points; approval above half (so a minority never
    /// passes what the majority rejected) and at most 10000.
    pub fn is_valid(&self) -> bool {
        (1..=10_000).contains(&self.participation_bps)
            && (5_001..=10_000).contains(&self.approval_bps)
    }

    pub fn passed(&self, tally: Tally, total_weight: u64) -> bool {
        let cast = u128::from(tally.cast());
        cast * BPS >= u128::from(self.participation_bps) * u128::from(total_weight)
            && u128::from(tally.approvals) * BPS >= u128::from(self.approval_bps) * cast
            && tally.approvals > 0
    }

    /// Whether no votes still to come can pass it: even if every governor who has not voted
    /// approves, the approvals fall short.
    pub fn doomed(&self, tally: Tally, total_weight: u64) -> bool {
        let outstanding = total_weight.saturating_sub(tally.cast());
        let best = Tally {
            approvals: tally.approvals + outstanding,
            rejections: tally.rejections,
        };
        !self.passed(best, total_weight.max(best.cast()))
    }
}

impl fmt::Display for Thresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "participation {}.{:02} %, approval {}.{:02} %",
            self.participation_bps / 100,
            self.participation_bps % 100,
            self.approval_bps / 100,
            self.approval_bps % 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(approvals: u64, rejections: u64) -> Tally {
        Tally {
            approvals,
            rejections,
        }
    }

    #[test]
    fn two_thirds_of_four_equal_governors_is_three() {
        let t = Thresholds::DEFAULT;
        assert!(
            !t.passed(tally(2, 0), 4),
            "half the weight has not participated enough"
        );
        assert!(t.passed(tally(3, 0), 4));
        assert!(t.passed(tally(2, 1), 4), "two of three votes approve");
        assert!(!t.passed(tally(1, 2), 4));
        assert!(t.passed(tally(2, 0), 3), "two of three governors");
    }

    #[test]
    fn a_proposal_is_doomed_once_approval_is_out_of_reach() {
        let t = Thresholds::DEFAULT;
        assert!(!t.doomed(tally(1, 1), 4), "two more approvals make 3 of 4");
        assert!(t.doomed(tally(1, 2), 4), "at best 2 of 4 approve");
        assert!(t.doomed(tally(0, 1), 1));
    }

    #[test]
    fn a_lone_governor_passes_alone() {
        assert!(Thresholds::DEFAULT.passed(tally(1, 0), 1));
        assert!(!Thresholds::DEFAULT.passed(tally(0, 0), 1));
    }

    #[test]
    fn thresholds_outside_their_ranges_are_invalid() {
        let bad = |participation_bps, approval_bps| {
            !Thresholds {
                participation_bps,
                approval_bps,
            }
            .is_valid()
        };
        assert!(bad(0, 6_000));
        assert!(bad(10_001, 6_000));
        assert!(bad(5_000, 5_000), "half is not a majority");
        assert!(!bad(10_000, 10_000));
    }
}
