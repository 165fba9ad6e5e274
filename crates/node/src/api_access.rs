//! Who may call this node's API, as node.toml sets it, and where what the API's access control
//! hears goes: failed authentications and callers' reads to risk control, refusals and reads of
//! protected data to the audit log (reads counted per window, `api_reads.rs`).
//!
//! ```toml
//! api_access = "tokens"   # every caller presents an API token (`trellis api token`); the
//!                         # default when rpc_addr is reachable from other hosts
//! # api_access = "anonymous" # anyone may call anything: only with rpc_addr on loopback (the
//! #                       # default there) and on dev chains
//! api_public = "blocks"   # with tokens: what a caller without one may read, "nothing" (the
//!                         # default) or "blocks" (chain facts, blocks with transaction hashes)
//! api_rate = 1000         # calls a second each caller may make (twice that at once)
//! ```

use crate::{FileProblem, api_reads::Reads, audit::Audit, risk::Risk};
use serde::Deserialize;
use serde_json::json;
use std::{net::SocketAddr, sync::Arc};
use trellis_access::{Permission, Policy, PublicReads, TokenError};
use trellis_risk::Event;
use trellis_rpc::access::{AccessConfig, AccessWatch};

/// Calls a second per caller unless node.toml says otherwise.
pub const DEFAULT_RATE: u32 = 1_000;

/// `api_access`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    Tokens,
    Anonymous,
}

/// `api_public`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PublicMode {
    Nothing,
    Blocks,
}

/// node.toml's API settings, as written.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiFile {
    pub access: Option<AccessMode>,
    pub public: Option<PublicMode>,
    pub rate: Option<u32>,
}

/// The API's access settings, checked: `None` is anonymous access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    pub policy: Policy,
    pub rate: u32,
}

impl ApiFile {
    /// Checks the settings for a server on `rpc_addr` of a chain that has a registry of
    /// accounts (`governed`) or not.
    pub fn check(
        self,
        rpc_addr: SocketAddr,
        governed: bool,
    ) -> Result<Option<ApiSettings>, FileProblem> {
        let local = rpc_addr.ip().is_loopback();
        let mode = self.access.unwrap_or(if local {
            AccessMode::Anonymous
        } else {
            AccessMode::Tokens
        });
        match mode {
            AccessMode::Anonymous if !local => Err(FileProblem::AnonymousApi(rpc_addr)),
            AccessMode::Anonymous if self.public.is_some() || self.rate.is_some() => {
                Err(FileProblem::AnonymousApiSettings)
            }
            AccessMode::Anonymous => Ok(None),
            AccessMode::Tokens if !governed => Err(FileProblem::TokensWithoutRegistry(rpc_addr)),
            AccessMode::Tokens if self.rate == Some(0) => Err(FileProblem::ZeroApiRate),
            AccessMode::Tokens => Ok(Some(ApiSettings {
                policy: Policy {
                    public: match self.public {
                        Some(PublicMode::Blocks) => PublicReads::Blocks,
                        Some(PublicMode::Nothing) | None => PublicReads::Nothing,
                    },
                },
                rate: self.rate.unwrap_or(DEFAULT_RATE),
            })),
        }
    }
}

impl ApiSettings {
    /// A dev chain's, when it asks for tokens: callers without one read blocks; each caller
    /// may make `rate` calls a second ([`DEFAULT_RATE`] if `None`).
    pub fn dev(rate: Option<u32>) -> Self {
        Self {
            policy: Policy {
                public: PublicReads::Blocks,
            },
            rate: rate.unwrap_or(DEFAULT_RATE),
        }
    }

    /// The server's access control, telling `risk` and `audit` what it hears.
    pub fn access(
        self,
        context: &commonware_runtime::tokio::Context,
        risk: Option<Risk>,
        audit: Audit,
    ) -> AccessConfig {
        let reads = Reads::start(context, audit.clone());
        AccessConfig {
            policy: self.policy,
            rate: self.rate,
            burst: self.rate.saturating_mul(2),
            watch: Some(Arc::new(ApiWatch { risk, audit, reads })),
        }
    }
}

/// Hands on what access control hears, without waiting.
struct ApiWatch {
    risk: Option<Risk>,
    audit: Audit,
    reads: Reads,
}

impl AccessWatch for ApiWatch {
    fn authentication_failed(&self, caller: &str, error: &TokenError) {
        if let Some(risk) = &self.risk {
            risk.report(Event::FailedAuthentication {
                caller: caller.to_owned(),
            });
        }
        self.audit.record(
            "api_token_refused",
            json!({ "caller": caller, "reason": error.to_string() }),
        );
    }

    fn refused(&self, caller: &str, method: &str, permission: Permission) {
        self.audit.record(
            "api_call_refused",
            json!({ "caller": caller, "method": method, "permission": permission.name() }),
        );
    }

    fn permitted(&self, caller: &str, method: &str, permission: Permission) {
        self.reads.add(caller, method, permission);
    }

    fn served(&self, caller: &str, calls: u64) {
        if let Some(risk) = &self.risk {
            risk.report(Event::Reads {
                caller: caller.to_owned(),
                records: calls,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn anonymous_access_is_for_loopback_only() {
        let open = ApiFile::default();
        assert!(matches!(open.check(addr("127.0.0.1:8545"), true), Ok(None)));
        let Ok(outside) = open.check(addr("0.0.0.0:8545"), true) else {
            panic!("tokens refused");
        };
        assert_eq!(outside.map(|s| s.rate), Some(DEFAULT_RATE));
        let anonymous = ApiFile {
            access: Some(AccessMode::Anonymous),
            ..ApiFile::default()
        };
        assert!(matches!(
            anonymous.check(addr("10.0.0.5:8545"), true),
            Err(FileProblem::AnonymousApi(_))
        ));
        assert!(matches!(
            open.check(addr("10.0.0.5:8545"), false),
            Err(FileProblem::TokensWithoutRegistry(_))
        ));
    }

    #[test]
    fn tokens_on_loopback_take_the_public_reads_and_rate_given() {
        let file = ApiFile {
            access: Some(AccessMode::Tokens),
            public: Some(PublicMode::Blocks),
            rate: Some(50),
        };
        let Ok(settings) = file.check(addr("127.0.0.1:8545"), true) else {
            panic!("valid settings refused");
        };
        assert_eq!(
            settings,
            Some(ApiSettings {
                policy: Policy {
                    public: PublicReads::Blocks
                },
                rate: 50
            })
        );
        let zero = ApiFile {
            rate: Some(0),
            ..file
        };
        assert!(zero.check(addr("127.0.0.1:8545"), true).is_err());
    }
}
