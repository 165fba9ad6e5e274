//! Whose transactions and logs a call may see, as [`super::Guard`] found it (in the call's
//! extensions): the methods of `read:transactions` narrow their answers by it. A member sees
//! its own transactions (from or to its account), the calls of contracts it deployed (the
//! registry records who signed the transaction creating each contract), the logs naming its
//! account in a topic and the logs of its contracts: the application a member runs is the
//! member's to follow, whoever calls it.

use super::gate::{Caller, CallerKey};
use crate::error::{code, internal};
use alloy_primitives::{Address, TxHash};
use alloy_rpc_types_eth::Log;
use jsonrpsee::types::ErrorObjectOwned;
use std::collections::BTreeSet;
use trellis_access::{Permission, Standing};
use trellis_chain::{Chain, Runtime};

/// A caller's view. A node without access control puts none in a call: everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    /// A member's: its account's transactions and logs, and its contracts'.
    Own(Address),
    Nothing,
}

impl Scope {
    pub(crate) fn of(extensions: &jsonrpsee::Extensions) -> Self {
        extensions.get::<Self>().copied().unwrap_or(Self::All)
    }

    pub(super) fn for_caller(caller: &Caller) -> Self {
        match (caller.standing, &caller.key) {
            (Standing::Auditor, _) => Self::All,
            (Standing::Member, CallerKey::Account(account)) => Self::Own(*account),
            _ => Self::Nothing,
        }
    }

    /// Whether a transaction from `from` to `to` is the caller's to see: from or to its
    /// account, or a call of a contract it deployed.
    pub(crate) async fn sees<E: Runtime>(
        self,
        chain: &Chain<E>,
        from: Address,
        to: Option<Address>,
    ) -> Result<bool, ErrorObjectOwned> {
        match self {
            Self::All => Ok(true),
            Self::Nothing => Ok(false),
            Self::Own(account) if from == account || to == Some(account) => Ok(true),
            Self::Own(account) => match to {
                None => Ok(false),
                Some(to) => Ok(!deployed_by(chain, account, vec![to]).await?.is_empty()),
            },
        }
    }

    /// Keeps the `logs` the caller sees: naming its account in a topic (an ERC-20 `Transfer`
    /// from or to it, say), or emitted by a contract it deployed.
    pub(crate) async fn retain_logs<E: Runtime>(
        self,
        chain: &Chain<E>,
        logs: &mut Vec<Log>,
    ) -> Result<(), ErrorObjectOwned> {
        let account = match self {
            Self::All => return Ok(()),
            Self::Nothing => {
                logs.clear();
                return Ok(());
            }
            Self::Own(account) => account,
        };
        let names = |log: &Log| log.topics().contains(&account.into_word());
        // Each contract asked once, whatever the number of its logs.
        let emitters: BTreeSet<Address> = logs
            .iter()
            .filter(|log| !names(log))
            .map(|log| log.address())
            .collect();
        let own: BTreeSet<Address> = deployed_by(chain, account, emitters.into_iter().collect())
            .await?
            .into_iter()
            .collect();
        logs.retain(|log| names(log) || own.contains(&log.address()));
        Ok(())
    }

    /// The refusal of transaction `hash`, not the caller's to see.
    pub(crate) fn refusal(self, hash: TxHash) -> ErrorObjectOwned {
        let whose = match self {
            Self::Own(account) => format!(
                "is neither from nor to account {account} nor a call of a contract it deployed"
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

async fn deployed_by<E: Runtime>(
    chain: &Chain<E>,
    deployer: Address,
    contracts: Vec<Address>,
) -> Result<Vec<Address>, ErrorObjectOwned> {
    chain
        .deployed_by(deployer, contracts)
        .await
        .map_err(internal)
}
