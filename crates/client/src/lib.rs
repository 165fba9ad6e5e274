//! A node's JSON-RPC from the outside, as an operator's tools use it: transactions signed with
//! an account key, sent, and their receipts awaited; read-only calls; and the governance
//! system contract's proposals and votes in its own terms.
//!
//! Every failure says what went wrong where: a refused transaction with the node's reason
//! (learned by estimating it first, so nothing is sent that would fail), a key file that does
//! not hold the key asked for, a node that does not answer.

mod anchors;
mod error;
mod fields;
mod governance;
mod holds;
mod key;
mod node;
mod tls;
mod token;

pub use error::ClientError;
pub use fields::{Disclosed, Mined};
pub use governance::{Decided, GovernanceClient, GovernanceEvent, RegistrationEnd};
pub use holds::{Decision, HeldTransfer, HoldEvent, HoldsClient, Settled};
pub use key::{load_account_key, load_account_key_with, open_signer};
pub use node::{Node, Sent};
pub use tls::ClientTls;
pub use token::api_token;
