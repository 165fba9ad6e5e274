//! Access control on the API: who a caller is and what it may call.
//!
//! - [`token`]: an API token is a statement "account A may call this chain's API until T",
//!   signed by A's key the way wallets sign text (EIP-191 `personal_sign`), so MetaMask, ethers
//!   or an HSM-held key make one without new software; no secret is stored on the node.
//! - [`permission`]: the permission each method needs, and the standing (public, member,
//!   auditor) that grants it. The standing itself comes from the chain's registry.
//! - [`limiter`]: a token bucket per caller, so one caller's flood leaves room for the others.

pub mod limiter;
pub mod permission;
pub mod token;

pub use limiter::{Limiter, RetryAfter};
pub use permission::{Permission, Policy, PublicReads, Standing};
pub use token::{TokenClaims, TokenError, UnixTime};
