//! Whose transactions and logs a call may see, as [`super::Guard`] found it (in the call's
//! extensions): the methods of `read:transactions` narrow their answers by it. A member is an
//! identity, not one key: it sees the transactions from or to any account registered to its
//! identity (a rotated key's past included), the calls of the contracts those accounts deployed
//! (the registry records who signed the transaction creating each contract), the logs naming
//! one of its accounts in a topic and the logs of its contracts: the application a member runs
//! is the member's to follow, whoever calls it. Of state, a member reads its identity's accounts
//! and every contract, not others' accounts (their balances, nonces, proofs and histories).

use super::gate::{Caller, CallerKey};
use crate::error::{code, internal};
use alloy_primitives::{Address, B256, TxHash};
use alloy_rpc_types_eth::Log;
use jsonrpsee::types::ErrorObjectOwned;
use std::collections::BTreeSet;
use trellis_access::{Permission, Standing};
use trellis_chain::{Chain, Runtime};
use trellis_governance::IdentityId;

/// A caller's view. A node without access control puts none in a call: everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    /// A member's: its identity's accounts' transactions and logs, and its contracts'.
    Own {
        /// The account the caller's token names: its own transactions need no lookup.
        account: Address,
        identity: IdentityId,
    },
    Nothing,
}

impl Scope {
    pub(crate) fn of(extensions: &jsonrpsee::Extensions) -> Self {
        extensions.get::<Self>().copied().unwrap_or(Self::All)
    }

    pub(super) fn for_caller(caller: &Caller) -> Self {
        match (caller.standing, &caller.key, caller.identity) {
            (Standing::Auditor, _, _) => Self::All,
            (Standing::Member, CallerKey::Account(account), Some(identity)) => Self::Own {
                account: *account,
                identity,
            },
            _ => Self::Nothing,
        }
    }

    /// Whether a transaction from `from` to `to` is the caller's to see.
    pub(crate) async fn sees<E: Runtime>(
        self,
        chain: &Chain<E>,
        from: Address,
        to: Option<Address>,
    ) -> Result<bool, ErrorObjectOwned> {
        match self {
            Self::All => Ok(true),
            Self::Nothing => Ok(false),
            Self::Own { account, .. } if from == account || to == Some(account) => Ok(true),
            Self::Own { identity, .. } => {
                let candidates = std::iter::once(from).chain(to).collect();
                Ok(!belonging_to(chain, identity, candidates).await?.is_empty())
            }
        }
    }

    /// Keeps the `logs` the caller sees: naming one of its accounts in a topic (an ERC-20
    /// `Transfer` from or to it, say), or emitted by one of its contracts.
    pub(crate) async fn retain_logs<E: Runtime>(
        self,
        chain: &Chain<E>,
        logs: &mut Vec<Log>,
    ) -> Result<(), ErrorObjectOwned> {
        let (account, identity) = match self {
            Self::All => return Ok(()),
            Self::Nothing => {
                logs.clear();
                return Ok(());
            }
            Self::Own { account, identity } => (account, identity),
        };
        let names_account = |log: &Log| log.topics().contains(&account.into_word());
        // Each address asked once, whatever the number of logs naming it.
        let candidates: BTreeSet<Address> = logs
            .iter()
            .filter(|log| !names_account(log))
            .flat_map(|log| {
                let named = log.topics().iter().filter_map(address_in);
                std::iter::once(log.address()).chain(named)
            })
            .collect();
        let own: BTreeSet<Address> =
            belonging_to(chain, identity, candidates.into_iter().collect())
                .await?
                .into_iter()
                .collect();
        logs.retain(|log| {
            names_account(log)
                || own.contains(&log.address())
                || log
                    .topics()
                    .iter()
                    .filter_map(address_in)
                    .any(|named| own.contains(&named))
        });
        Ok(())
    }

    /// Whether the caller may read `address`'s account (its balance, nonce, proof or
    /// history): a member reads its identity's accounts and every contract (the applications
    /// members share), not others' accounts; refused, the error says so.
    pub(crate) async fn reads_account<E: Runtime>(
        self,
        chain: &Chain<E>,
        address: Address,
    ) -> Result<(), ErrorObjectOwned> {
        let identity = match self {
            Self::All => return Ok(()),
            Self::Own { account, .. } if account == address => return Ok(()),
            Self::Own { identity, .. } => identity,
            Self::Nothing => return Err(not_readable(address, "the caller is no member")),
        };
        match chain.shared_or_belongs(identity, address).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(not_readable(
                address,
                &format!("it is neither an account of identity {identity} nor a contract"),
            )),
            Err(error) => Err(internal(error)),
        }
    }

    /// The refusal of transaction `hash`, not the caller's to see.
    pub(crate) fn refusal(self, hash: TxHash) -> ErrorObjectOwned {
        let whose = match self {
            Self::Own { account, identity } => format!(
                "is neither from nor to account {account} or another account of its identity {identity}, nor a call of a contract they deployed"
            ),
            Self::All | Self::Nothing => "is not the caller's".to_owned(),
        };
        ErrorObjectOwned::owned(
            code::UNAUTHORIZED,
            format!(
                "transaction {hash} {whose}: others' transactions need the permission {}, which auditors hold",
                Permission::AllTransactions
            ),
            Some(serde_json::json!({ "permission": Permission::AllTransactions.name() })),
        )
    }
}

/// The refusal of a read of `address`'s account.
fn not_readable(address: Address, why: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        code::UNAUTHORIZED,
        format!(
            "account {address} is not the caller's to read ({why}): others' balances, nonces, proofs and histories need the permission {}, which auditors hold",
            Permission::AllState
        ),
        Some(serde_json::json!({ "permission": Permission::AllState.name() })),
    )
}

/// The address a topic holds, if it has an address's shape (an indexed `address` argument:
/// twelve zero bytes, then twenty not all zero).
fn address_in(topic: &B256) -> Option<Address> {
    let (pad, address) = topic.split_at(12);
    (pad.iter().all(|byte| *byte == 0) && address.iter().any(|byte| *byte != 0))
        .then(|| Address::from_slice(address))
}

async fn belonging_to<E: Runtime>(
    chain: &Chain<E>,
    identity: IdentityId,
    candidates: Vec<Address>,
) -> Result<Vec<Address>, ErrorObjectOwned> {
    chain
        .belonging_to(identity, candidates)
        .await
        .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_address_shaped_topics_name_an_account() {
        let account = Address::repeat_byte(0xab);
        assert_eq!(address_in(&account.into_word()), Some(account));
        assert_eq!(address_in(&B256::ZERO), None);
        assert_eq!(address_in(&B256::repeat_byte(1)), None);
    }
}
