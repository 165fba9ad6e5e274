//! Deciding one call: who the caller is (its token, its account's standing on chain), whether
//! its standing holds the permission the method needs, and whether its rate allows the call.
//!
//! Both lookups are remembered: a token's signature for as long as the node runs (its expiry is
//! checked at each use), an account's standing until the next block (a freeze or a revocation
//! takes effect from the block that records it).

use super::{AccessConfig, AccessWatch};
use crate::error::{code, limit, overloaded};
use alloy_primitives::Address;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};
use trellis_access::{Limiter, Permission, Policy, Standing, TokenClaims, TokenError, UnixTime};
use trellis_chain::{CallerRecord, Chain, Runtime};
use trellis_governance::{AccountStatus, IdentityId, status_setter};
use trellis_types::Height;

/// Entries each cache keeps before it starts over.
const CACHED: usize = 4_096;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CallerKey {
    /// No token.
    Anonymous,
    Account(Address),
}

/// A caller and what it may do.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key: CallerKey,
    pub standing: Standing,
    /// A member's or an auditor's identity: whose transactions are the caller's own.
    pub identity: Option<IdentityId>,
    /// Why an account with a token is not a member (or not an auditor): for refusals.
    why: Arc<str>,
    /// How logs, alarms and the audit log name it (a checksummed address costs a hash: made
    /// once per block, not per call).
    name: Arc<str>,
}

impl Caller {
    /// How logs, alarms and the audit log name it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What the gate read of an account, until the next block.
#[derive(Clone)]
struct Looked {
    height: Height,
    standing: Standing,
    identity: Option<IdentityId>,
    why: Arc<str>,
    name: Arc<str>,
}

pub(crate) struct Gate<E: Runtime> {
    chain: Chain<E>,
    chain_id: u64,
    policy: Policy,
    limiter: Limiter<CallerKey>,
    watch: Option<Arc<dyn AccessWatch>>,
    tokens: Mutex<HashMap<String, Result<TokenClaims, TokenError>>>,
    standings: Mutex<HashMap<Address, Looked>>,
}

impl<E: Runtime> Gate<E> {
    pub fn new(chain: Chain<E>, config: AccessConfig) -> Self {
        Self {
            chain_id: chain.genesis().chain_id,
            chain,
            policy: config.policy,
            limiter: Limiter::new(config.rate, config.burst),
            watch: config.watch,
            tokens: Mutex::new(HashMap::new()),
            standings: Mutex::new(HashMap::new()),
        }
    }

    /// The caller that presented `token` or a client certificate naming account `certified`
    /// (neither: anonymous), or why it is refused.
    pub async fn caller(
        &self,
        token: Option<&str>,
        certified: Option<Address>,
    ) -> Result<Caller, ErrorObjectOwned> {
        if let Some(account) = certified {
            return self.certified(token, account).await;
        }
        let Some(token) = token else {
            return Ok(Caller {
                key: CallerKey::Anonymous,
                standing: Standing::Public,
                identity: None,
                why: "the call carries no API token (make one with `trellis api token` and send it as `Authorization: Bearer <token>`)".into(),
                name: "anonymous".into(),
            });
        };
        let claims = self.claims(token).map_err(|error| {
            let caller = TokenClaims::parse(token)
                .map(|(claims, _)| claims.account.to_checksum(None))
                .unwrap_or_else(|_| "an unreadable token".into());
            if let Some(watch) = &self.watch {
                watch.authentication_failed(&caller, &error);
            }
            unauthorized(
                error.to_string(),
                json!({ "reason": "token", "caller": caller }),
            )
        })?;
        self.account_caller(claims.account).await
    }

    /// The caller of a connection whose client certificate names `account`; a token sent as
    /// well must be valid and name the same account.
    async fn certified(
        &self,
        token: Option<&str>,
        account: Address,
    ) -> Result<Caller, ErrorObjectOwned> {
        if let Some(token) = token {
            let claims = self
                .claims(token)
                .map_err(|error| unauthorized(error.to_string(), json!({ "reason": "token" })))?;
            if claims.account != account {
                return Err(unauthorized(
                    format!(
                        "the API token names account {} but the client certificate names {account}: send one or the other",
                        claims.account
                    ),
                    json!({ "reason": "token" }),
                ));
            }
        }
        self.account_caller(account).await
    }

    async fn account_caller(&self, account: Address) -> Result<Caller, ErrorObjectOwned> {
        let looked = self.standing(account).await?;
        Ok(Caller {
            key: CallerKey::Account(account),
            standing: looked.standing,
            identity: looked.identity,
            why: looked.why,
            name: looked.name,
        })
    }

    fn claims(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let known = lock(&self.tokens).get(token).cloned();
        let verified = match known {
            Some(verified) => verified,
            None => {
                let verified = TokenClaims::verify_signature(token, self.chain_id);
                let mut tokens = lock(&self.tokens);
                if tokens.len() >= CACHED {
                    tokens.clear();
                }
                tokens.insert(token.to_owned(), verified.clone());
                verified
            }
        };
        let claims = verified?;
        claims.check_expiry(UnixTime::now())?;
        Ok(claims)
    }

    async fn standing(&self, account: Address) -> Result<Looked, ErrorObjectOwned> {
        let height = self.chain.latest().0.height;
        if let Some(looked) = lock(&self.standings).get(&account)
            && looked.height == height
        {
            return Ok(looked.clone());
        }
        let record = self
            .chain
            .caller_record(&account)
            .await
            .map_err(crate::error::internal)?;
        let (standing, why) = standing_of(&record, account);
        let looked = Looked {
            height: record.height,
            standing,
            identity: (standing != Standing::Public)
                .then(|| record.account.as_ref().map(|account| account.identity))
                .flatten(),
            why: why.into(),
            name: account.to_checksum(None).into(),
        };
        let mut standings = lock(&self.standings);
        if standings.len() >= CACHED {
            standings.clear();
        }
        standings.insert(account, looked.clone());
        Ok(looked)
    }

    /// Whether `caller` may call `method` with `params`; refused, the error names the
    /// permission missing and why the caller lacks it.
    pub fn permit(
        &self,
        caller: &Caller,
        method: &str,
        params: Option<&str>,
    ) -> Result<(), ErrorObjectOwned> {
        let permission = Permission::of(method, params);
        if self.policy.allows(caller.standing, permission) {
            if let Some(watch) = &self.watch {
                watch.permitted(caller.name(), method, permission);
            }
            return Ok(());
        }
        if let Some(watch) = &self.watch {
            watch.refused(caller.name(), method, permission);
        }
        let needs = self.policy.needs(permission);
        Err(unauthorized(
            format!(
                "{method} needs the permission {permission}, which {needs} hold: {}",
                caller.why
            ),
            json!({ "permission": permission.name(), "caller": caller.name() }),
        ))
    }

    /// Takes `calls` from `caller`'s rate; refused, the error says when to come back.
    pub fn limit(&self, caller: &Caller, calls: u32) -> Result<(), ErrorObjectOwned> {
        let burst = self.limiter.burst();
        if calls > burst {
            return Err(limit(format!(
                "a batch of {calls} calls is more than the {burst} one caller may make at once: split it"
            )));
        }
        match self.limiter.take(&caller.key, calls, Instant::now()) {
            Ok(()) => {
                if let Some(watch) = &self.watch {
                    watch.served(caller.name(), u64::from(calls));
                }
                Ok(())
            }
            Err(retry) => {
                let retry_ms = u64::try_from(retry.0.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                Err(overloaded(
                    format!(
                        "{} is over its rate of API calls at this node: retry after {retry_ms} ms",
                        caller.name()
                    ),
                    retry_ms,
                ))
            }
        }
    }
}

/// What an account with a valid token is to the API, and why it is no more than that.
fn standing_of(record: &CallerRecord, address: Address) -> (Standing, String) {
    let name = address.to_checksum(None);
    let height = record.height;
    let public = |why: String| (Standing::Public, why);
    let Some(account) = &record.account else {
        return public(format!("account {name} is not registered on this chain"));
    };
    if account.status != AccountStatus::Normal {
        return public(format!(
            "account {name} is {} ({}, from block {})",
            account.status,
            status_setter(account.status_by),
            account.status_since
        ));
    }
    if !account.window.contains(height) {
        return public(format!(
            "account {name}'s registration is not valid at block {height}"
        ));
    }
    let identity = account.identity;
    match &record.identity {
        None => public(format!(
            "account {name}'s identity {identity} does not exist"
        )),
        Some(record_of) if !record_of.window.contains(height) => public(format!(
            "account {name}'s identity {identity} is not valid at block {height}"
        )),
        Some(_) if record.auditor => (Standing::Auditor, String::new()),
        Some(_) => (
            Standing::Member,
            format!(
                "account {name} is a member (identity {identity}), and its identity does not hold the auditor role"
            ),
        ),
    }
}

/// EIP-1193's "unauthorized": the caller is not allowed what it asked.
fn unauthorized(message: String, data: serde_json::Value) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code::UNAUTHORIZED, message, Some(data))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_governance::{AccountRecord, IdentityRecord, OrgId, Window};

    fn record(status: AccountStatus, auditor: bool) -> CallerRecord {
        let address = Address::repeat_byte(7);
        CallerRecord {
            height: Height(50),
            account: Some(AccountRecord {
                address,
                identity: IdentityId(3),
                window: Window::ALWAYS,
                status,
                status_since: Height(40),
                status_by: 9,
                compromised_since: None,
                successor: None,
            }),
            identity: Some(IdentityRecord {
                id: IdentityId(3),
                organisation: OrgId(1),
                window: Window {
                    from: Height(0),
                    until: Some(Height(60)),
                },
            }),
            auditor,
        }
    }

    #[test]
    fn standing_follows_the_registry() {
        let address = Address::repeat_byte(7);
        assert_eq!(
            standing_of(&record(AccountStatus::Normal, false), address).0,
            Standing::Member
        );
        assert_eq!(
            standing_of(&record(AccountStatus::Normal, true), address).0,
            Standing::Auditor
        );
        let (standing, why) = standing_of(&record(AccountStatus::Frozen, true), address);
        assert_eq!(standing, Standing::Public);
        assert!(
            why.contains("is frozen (by proposal 9, from block 40)"),
            "{why}"
        );
        let mut expired = record(AccountStatus::Normal, true);
        expired.height = Height(60);
        let (standing, why) = standing_of(&expired, address);
        assert_eq!(standing, Standing::Public);
        assert!(
            why.contains("identity #3 is not valid at block 60"),
            "{why}"
        );
        let unknown = CallerRecord {
            account: None,
            identity: None,
            ..record(AccountStatus::Normal, false)
        };
        assert!(standing_of(&unknown, address).1.contains("not registered"));
    }
}
