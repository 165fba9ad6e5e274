//! What the registry records of a key, for clients asking what a key is and did
//! (`trellis_keyActivity`): an account's or a validator key's status, successor and suspected
//! compromise. Read from the latest finalized state, in the clients' lane.

use super::{Chain, owner::Lane};
use crate::Runtime;
use alloy_primitives::Address;
use trellis_governance::{
    AccountRecord, IdentityId, IdentityRecord, Registry, RegistryError, Role, ValidatorLifecycle,
};
use trellis_state::StateReader as _;
use trellis_types::{Height, ValidatorId};

/// What the registry records of an API caller's account, for access control: read at once
/// from the latest finalized state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerRecord {
    /// The block the state was read after.
    pub height: Height,
    pub account: Option<AccountRecord>,
    /// The account's identity, if the account is registered and the identity exists.
    pub identity: Option<IdentityRecord>,
    /// Whether that identity holds the `auditor` role.
    pub auditor: bool,
}

impl<E: Runtime> Chain<E> {
    /// `account`'s registration, if any (always `None` on a chain without a registry).
    pub async fn account_record(
        &self,
        account: &Address,
    ) -> Result<Option<AccountRecord>, RegistryError> {
        if self.genesis().epochs().is_none() {
            return Ok(None);
        }
        let account = *account;
        self.ask(Lane::Clients, move |inner| {
            Registry::new(&inner.finalized.state).account(&account)
        })
        .await
    }

    /// Validator `key`'s records (term, successor, reported compromise), if it was ever a
    /// validator of a governed chain. A chain without a registry keeps its genesis validators
    /// for ever: `None` here.
    pub async fn validator_lifecycle(
        &self,
        key: &ValidatorId,
    ) -> Result<Option<ValidatorLifecycle>, RegistryError> {
        if self.genesis().epochs().is_none() {
            return Ok(None);
        }
        let key = *key;
        self.ask(Lane::Clients, move |inner| {
            Registry::new(&inner.finalized.state).validator_lifecycle(&key)
        })
        .await
    }

    /// `account`'s registration, identity and auditor role, as the API's access control needs
    /// them; on a chain without a registry, nothing is registered.
    pub async fn caller_record(&self, account: &Address) -> Result<CallerRecord, RegistryError> {
        if self.genesis().epochs().is_none() {
            return Ok(CallerRecord {
                height: self.latest().0.height,
                account: None,
                identity: None,
                auditor: false,
            });
        }
        let account = *account;
        self.ask(Lane::Clients, move |inner| {
            let registry = Registry::new(&inner.finalized.state);
            let record = registry.account(&account)?;
            let identity = match &record {
                Some(record) => registry.identity(record.identity)?,
                None => None,
            };
            let auditor = match &identity {
                Some(identity) => registry.holds(identity.id, &Role::auditor())?,
                None => false,
            };
            Ok(CallerRecord {
                height: inner.finalized.tip.height,
                account: record,
                identity,
                auditor,
            })
        })
        .await
    }

    /// Which of `candidates` are `identity`'s: its accounts (registered to it, whatever their
    /// status now, so a rotated key's past stays its own) and the contracts they deployed. Read
    /// at once from the latest finalized state; on a chain without a registry, none.
    pub async fn belonging_to(
        &self,
        identity: IdentityId,
        candidates: Vec<Address>,
    ) -> Result<Vec<Address>, RegistryError> {
        if self.genesis().epochs().is_none() || candidates.is_empty() {
            return Ok(Vec::new());
        }
        self.ask(Lane::Clients, move |inner| {
            let registry = Registry::new(&inner.finalized.state);
            let of_identity = |account: &Address| -> Result<bool, RegistryError> {
                Ok(registry
                    .account(account)?
                    .is_some_and(|record| record.identity == identity))
            };
            let mut own = Vec::new();
            for candidate in candidates {
                let deployed_by_it = match registry.deployment(&candidate)? {
                    Some(deployment) => of_identity(&deployment.deployer)?,
                    None => false,
                };
                if deployed_by_it || of_identity(&candidate)? {
                    own.push(candidate);
                }
            }
            Ok(own)
        })
        .await
    }

    /// Whether `identity` may read `address`'s account: it holds code (a contract: an
    /// application the members share) or is registered to the identity. Read from the latest
    /// finalized state; on a chain without a registry, only contracts.
    pub async fn shared_or_belongs(
        &self,
        identity: IdentityId,
        address: Address,
    ) -> Result<bool, RegistryError> {
        let governed = self.genesis().epochs().is_some();
        self.ask(Lane::Clients, move |inner| {
            let state = &inner.finalized.state;
            let code = state
                .account(&address)?
                .is_some_and(|account| account.code_hash != alloy_primitives::KECCAK256_EMPTY);
            if code || !governed {
                return Ok(code);
            }
            Ok(Registry::new(state)
                .account(&address)?
                .is_some_and(|record| record.identity == identity))
        })
        .await
    }
}
