//! What the registry records of a key, for clients asking what a key is and did
//! (`trellis_keyActivity`): an account's or a validator key's status, successor and suspected
//! compromise. Read from the latest finalized state, in the clients' lane.

use super::{Chain, owner::Lane};
use crate::Runtime;
use alloy_primitives::Address;
use trellis_governance::{AccountRecord, Registry, RegistryError, ValidatorLifecycle};
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
}
