//! Account keys from the files Trellis writes, or on a PKCS#11 token.

use crate::ClientError;
use alloy_primitives::Address;
use serde::Deserialize;
use std::path::Path;
use trellis_crypto::{AccountEntry, AccountKey, KeyBundle, Passphrase, SealedKey, TxSigner};
use trellis_hsm::{KeyUri, Pin, Secp256k1Key, Token};

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

/// The signer `spec` names: a `pkcs11:` key URI (the key stays on its token), or a key file
/// (with `from` choosing among its accounts).
pub fn open_signer(
    spec: &str,
    from: Option<Address>,
    passphrase: Option<&Passphrase>,
) -> Result<Box<dyn TxSigner>, ClientError> {
    if spec.starts_with("pkcs11:") {
        let uri = KeyUri::parse(spec)?;
        let token = Token::open(&uri.module, &uri.token, Pin::from_file(&uri.pin_file)?)?;
        let key = Secp256k1Key::open(&token, &uri.object)?;
        if let Some(from) = from.filter(|from| *from != key.address()) {
            return Err(ClientError::NotThisKey {
                key: spec.to_string(),
                holds: key.address(),
                asked: from,
            });
        }
        return Ok(Box::new(key));
    }
    Ok(Box::new(load_account_key_with(
        Path::new(spec),
        from,
        passphrase,
    )?))
}

/// The key of account `from` (or the file's only account) in `path`, checked against the
/// address the file gives for it.
pub fn load_account_key(path: &Path, from: Option<Address>) -> Result<AccountKey, ClientError> {
    load_account_key_with(path, from, None)
}

/// [`load_account_key`], opening a sealed key file with `passphrase`.
pub fn load_account_key_with(
    path: &Path,
    from: Option<Address>,
    passphrase: Option<&Passphrase>,
) -> Result<AccountKey, ClientError> {
    let shown = path.display().to_string();
    let problem = |problem: String| ClientError::KeyFile {
        path: shown.clone(),
        problem,
    };
    let stored = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    let text = if SealedKey::is_sealed(&stored) {
        let sealed: SealedKey = serde_json::from_str(&stored)
            .map_err(|e| problem(format!("a damaged sealed key file: {e}")))?;
        let passphrase = passphrase.ok_or_else(|| {
            problem("sealed under a passphrase: give its file with --passphrase-file".into())
        })?;
        let opened = sealed
            .open(passphrase)
            .map_err(|e| problem(e.to_string()))?;
        String::from_utf8(opened).map_err(|_| problem("sealed contents are not text".into()))?
    } else {
        stored
    };
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
