//! Account keys from the files Trellis writes.

use crate::ClientError;
use alloy_primitives::Address;
use serde::Deserialize;
use std::path::Path;
use trellis_crypto::{AccountEntry, AccountKey, KeyBundle};

/// The shapes of file an account key is read from.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyFile {
    /// `trellis keys new --out`.
    Bundle(KeyBundle),
    /// `dev-accounts.json`, `accounts.json` of `trellis init --accounts`.
    Accounts(Vec<AccountEntry>),
    /// One account.
    Account(AccountEntry),
}

/// The key of account `from` (or the file's only account) in `path`, checked against the
/// address the file gives for it.
pub fn load_account_key(path: &Path, from: Option<Address>) -> Result<AccountKey, ClientError> {
    let shown = path.display().to_string();
    let problem = |problem: String| ClientError::KeyFile {
        path: shown.clone(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    let file: KeyFile = serde_json::from_str(&text).map_err(|_| {
        problem(
            "not a key file (a `trellis keys new` bundle, or a list of {address, private_key})"
                .into(),
        )
    })?;
    let entries = match file {
        KeyFile::Bundle(bundle) => vec![bundle.account],
        KeyFile::Accounts(entries) => entries,
        KeyFile::Account(entry) => vec![entry],
    };
    let mut keys = Vec::with_capacity(entries.len());
    for entry in &entries {
        let key = AccountKey::from_hex(&entry.private_key).map_err(|e| problem(e.to_string()))?;
        if !key
            .address()
            .to_string()
            .eq_ignore_ascii_case(&entry.address)
        {
            return Err(problem(format!(
                "the private key listed for {} is the key of {}",
                entry.address,
                key.address()
            )));
        }
        keys.push(key);
    }
    match from {
        Some(address) => keys.into_iter().find(|key| key.address() == address).ok_or(
            ClientError::NoSuchAccount {
                path: shown,
                address,
            },
        ),
        None if keys.len() == 1 => Ok(keys.remove(0)),
        None => Err(ClientError::WhichAccount {
            path: shown,
            count: keys.len(),
        }),
    }
}
