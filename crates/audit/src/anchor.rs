//! A log checked against the anchors of its head kept on chain: each anchor says "record `seq`
//! of the log has hash `hash`", finalized where no one can rewrite it. A log named by its first
//! record's hash that matches every anchor was not rewritten before the newest anchor, even by
//! someone holding the node's key, nor cut short below it.

use crate::record::Digest;

/// One anchor of a log's head, as the chain holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: Digest,
    /// The block that holds it.
    pub block: u64,
}

/// Why a log does not match its anchors.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnchorProblem {
    #[error(
        "record {seq} is not the one anchored in block {block}: the chain holds hash {anchored}, the log {found}; the log was rewritten at or before record {seq}"
    )]
    Differs {
        seq: u64,
        block: u64,
        anchored: Digest,
        found: Digest,
    },
    #[error(
        "block {block} anchored record {seq}, but the log ends at record {last}: it was cut short"
    )]
    CutShort { seq: u64, block: u64, last: u64 },
    #[error(
        "no anchor of this log (first record {first}) is on chain: it was never anchored there, or it was rewritten from its first record"
    )]
    Unanchored { first: Digest },
}

/// Checks a log's record hashes (`hashes[i]` is record `i + 1`'s, as [`crate::verify`] found
/// them) against `anchors` of it; the newest anchor when all match.
pub fn check_anchors(hashes: &[Digest], anchors: &[Anchor]) -> Result<Anchor, AnchorProblem> {
    let first = hashes.first().copied().unwrap_or_default();
    let mut newest: Option<Anchor> = None;
    for anchor in anchors {
        let index = usize::try_from(anchor.seq).unwrap_or(usize::MAX);
        let found = index
            .checked_sub(1)
            .and_then(|index| hashes.get(index))
            .ok_or(AnchorProblem::CutShort {
                seq: anchor.seq,
                block: anchor.block,
                last: hashes.len() as u64,
            })?;
        if *found != anchor.hash {
            return Err(AnchorProblem::Differs {
                seq: anchor.seq,
                block: anchor.block,
                anchored: anchor.hash,
                found: *found,
            });
        }
        if newest.is_none_or(|newest| anchor.seq > newest.seq) {
            newest = Some(*anchor);
        }
    }
    newest.ok_or(AnchorProblem::Unanchored { first })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(n: u8) -> Vec<Digest> {
        (1..=n).map(|i| Digest([i; 32])).collect()
    }

    fn anchor(seq: u64, hash: Digest) -> Anchor {
        Anchor {
            seq,
            hash,
            block: 10 * seq,
        }
    }

    #[test]
    fn a_log_matches_its_anchors_or_says_where_it_does_not() {
        let log = hashes(5);
        let anchors = [anchor(2, log[1]), anchor(4, log[3])];
        assert_eq!(check_anchors(&log, &anchors), Ok(anchors[1]));
        let mut rewritten = log.clone();
        rewritten[3] = Digest([9; 32]);
        assert!(matches!(
            check_anchors(&rewritten, &anchors),
            Err(AnchorProblem::Differs {
                seq: 4,
                block: 40,
                ..
            })
        ));
        assert_eq!(
            check_anchors(&log[..3], &anchors),
            Err(AnchorProblem::CutShort {
                seq: 4,
                block: 40,
                last: 3
            })
        );
        assert_eq!(
            check_anchors(&log, &[]),
            Err(AnchorProblem::Unanchored { first: log[0] })
        );
        assert!(check_anchors(&log, &[anchor(0, log[0])]).is_err());
    }
}
