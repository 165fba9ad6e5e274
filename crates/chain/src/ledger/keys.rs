//! What the registry records of a key, for clients asking what a key is and did
//! (`trellis_keyActivity`): an account's status, successor and suspected compromise; a
//! validator key's term and successor. Read from the latest finalized state, in the clients'
//! lane.

use super::{Chain, owner::Lane};
use crate::Runtime;
use alloy_primitives::Address;
use trellis_governance::{AccountRecord, Registry, RegistryError, ValidatorRecord};
use trellis_types::ValidatorId;

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

    /// Validator `key`'s record with the key that took over from it, if it was ever a
    /// validator of a governed chain. A chain without a registry keeps its genesis validators
    /// for ever: `None` here.
    pub async fn validator_record(
        &self,
        key: &ValidatorId,
    ) -> Result<Option<(ValidatorRecord, Option<ValidatorId>)>, RegistryError> {
        if self.genesis().epochs().is_none() {
            return Ok(None);
        }
        let key = *key;
        self.ask(Lane::Clients, move |inner| {
            let registry = Registry::new(&inner.finalized.state);
            let Some(record) = registry.validator(&key)? else {
                return Ok(None);
            };
            Ok(Some((record, registry.validator_successor(&key)?)))
        })
        .await
    }
}
