//! The council: the governors deciding, by weighted vote on proposals, every change to the
//! consortium's rules. Its records live in the storage of [`GOVERNANCE_ADDRESS`].

mod action;
mod describe;
mod handler;
pub mod layout;
mod records;

pub use action::Action;
pub use layout::GOVERNANCE_ADDRESS;
pub use records::{Ballot, Council, MAX_ACTION};

pub(crate) use handler::governance;
pub(crate) use records::Records;
