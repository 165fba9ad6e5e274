//! The audit log: what a node's operator and the node itself did (start, configuration
//! changes, key use and rotation, governance calls it made, alarms, refusals), one record per
//! line, each chained to the one before by its hash and signed by the node's key.
//!
//! A record's hash covers its number, time, kind, details, the previous record's hash and the
//! signing key (`record.rs`); [`verify`] walks a log from its first record and names the first
//! that was edited, removed, inserted or moved, or whose signature does not hold
//! (`verify.rs`). A log cut short at its end still verifies: compare its head (the last
//! record's number and hash) with one kept elsewhere (an export, or an anchor on chain).
//! [`AuditLog`] appends and syncs records (`log.rs`); [`check_anchors`] compares a log with
//! the anchors of its head kept on chain (`anchor.rs`).

mod anchor;
mod log;
mod record;
mod verify;

pub use anchor::{Anchor, AnchorProblem, check_anchors};
pub use log::{AuditError, AuditLog, Head};
pub use record::{Digest, NAMESPACE, Record};
pub use verify::{Broken, Problem, Summary, verify};

#[cfg(test)]
mod tests;
