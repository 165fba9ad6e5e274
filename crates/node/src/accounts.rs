//! Funded accounts created with a new chain (a dev chain's, or `trellis init --accounts`):
//! their keys are written to a file readable only by its owner, their balances into the genesis.

use crate::genesis_file::{OrganisationEntry, consortium_of};
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path};
use trellis_crypto::{AccountKey, KeyError, write_secret_file};

/// Each created account starts with one million ether.
const BALANCE_ETHER: u64 = 1_000_000;

/// One funded account, as the accounts file lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundedAccount {
    pub address: String,
    pub private_key: String,
}

/// `count` new accounts and the genesis balances that fund them.
pub fn create(count: usize) -> Result<(Vec<FundedAccount>, BTreeMap<Address, String>), KeyError> {
    let balance = U256::from(BALANCE_ETHER) * U256::from(10u64).pow(U256::from(18));
    let mut accounts = Vec::with_capacity(count);
    let mut alloc = BTreeMap::new();
    for _ in 0..count {
        let key = AccountKey::generate()?;
        alloc.insert(key.address(), balance.to_string());
        accounts.push(FundedAccount {
            address: key.address().to_checksum(None),
            private_key: key.secret_hex(),
        });
    }
    Ok((accounts, alloc))
}

/// The consortium of created accounts ([`consortium_of`]), for a genesis that registers them.
pub fn consortium(accounts: &[FundedAccount]) -> Vec<OrganisationEntry> {
    let addresses: Vec<Address> = accounts
        .iter()
        .map(|a| a.address.parse().expect("written from a key's address"))
        .collect();
    consortium_of(&addresses)
}

/// Writes the accounts as JSON to a new file (mode 0600); never overwrites.
pub fn write(path: &Path, accounts: &[FundedAccount]) -> Result<(), KeyError> {
    write_with(path, accounts, None)
}

/// [`write`], sealed under `passphrase` if one is given (addresses stay readable).
pub fn write_with(
    path: &Path,
    accounts: &[FundedAccount],
    passphrase: Option<&trellis_crypto::Passphrase>,
) -> Result<(), KeyError> {
    let json = serde_json::to_string_pretty(accounts).expect("accounts serialize");
    let text = match passphrase {
        Some(passphrase) => trellis_crypto::SealedKey::seal_key_file(&json, passphrase)?.to_json(),
        None => json,
    };
    write_secret_file(path, &format!("{text}\n"))
}
