//! Sensitive fields kept off the ledger in clear.
//!
//! An application puts on chain a field's [`Commitment`] (a salted hash: it reveals nothing of
//! the value, and binds the writer to it) and, when the parties must read the value later, an
//! [`Envelope`]: the field's [`Opening`] (value and salt) encrypted to each party's account key
//! and to an auditor's. A holder of the opening proves the value to anyone, an auditor say, who
//! checks it against the commitment found in a finalized transaction ([`locate`]).
//!
//! | piece | on chain | who can read the value |
//! |---|---|---|
//! | [`Commitment`] | 32 bytes: `keccak256("trellis.field.v1" ‖ keccak256(label) ‖ salt ‖ keccak256(value))` | nobody (the 32-byte salt makes guessing hopeless) |
//! | [`Envelope`] | its bytes ([`Envelope::to_bytes`]) | the recipients, with their account keys |
//! | [`Opening`] | never: handed to whom must see the value | whoever holds it |
//!
//! The commitment is what a contract stores or emits; Solidity computes the same hash
//! (`keccak256(abi.encodePacked("trellis.field.v1", keccak256(bytes(label)), salt,
//! keccak256(value)))`), so a contract can check an opening revealed to it.

mod commitment;
mod envelope;
mod locate;

pub use commitment::{Commitment, FieldLabel, Opening, Salt};
pub use envelope::{Envelope, MAX_RECIPIENTS};
pub use locate::{Found, envelopes, locate};

/// Why a field could not be sealed, opened or checked.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    #[error(
        "invalid field label {label:?}: use 1 to {max} letters, digits or . _ : - (e.g. \"claim.diagnosis\")",
        max = commitment::MAX_LABEL
    )]
    Label { label: String },
    #[error(
        "the opening does not match commitment {expected}: it hashes to {actual} (a wrong value, salt or label)"
    )]
    Mismatch {
        expected: Commitment,
        actual: Commitment,
    },
    #[error("an envelope needs 1 to {MAX_RECIPIENTS} recipients, {given} given")]
    Recipients { given: usize },
    #[error("account {account} is not a recipient of this envelope (its recipients: {recipients})")]
    NotRecipient {
        account: alloy_primitives::Address,
        recipients: String,
    },
    #[error(
        "the envelope does not decrypt with the key of {account}: it was altered, or sealed to another key of that account"
    )]
    Undecryptable { account: alloy_primitives::Address },
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("malformed {what}: {reason}")]
    Hex { what: &'static str, reason: String },
    #[error("the operating system's random source failed: {0}")]
    Randomness(String),
}

/// 32 fresh random bytes.
fn random_32() -> Result<[u8; 32], FieldError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| FieldError::Randomness(e.to_string()))?;
    Ok(bytes)
}
