//! The key file: one account key and one validator key, as JSON, readable only by its owner.

use crate::{AccountKey, KeyError, ValidatorKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// What `trellis keys new` prints and stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBundle {
    pub account: AccountEntry,
    pub validator: ValidatorEntry,
}

/// The secp256k1 half of a [`KeyBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    pub address: String,
    pub private_key: String,
}

/// The ed25519 half of a [`KeyBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    pub public_key: String,
    pub private_key: String,
}

impl KeyBundle {
    /// A bundle of two fresh keys.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self::from_keys(
            &AccountKey::generate()?,
            &ValidatorKey::generate()?,
        ))
    }

    /// The bundle describing the given keys.
    pub fn from_keys(account: &AccountKey, validator: &ValidatorKey) -> Self {
        Self {
            account: AccountEntry {
                address: account.address().to_checksum(None),
                private_key: account.secret_hex(),
            },
            validator: ValidatorEntry {
                public_key: validator.public_hex(),
                private_key: validator.secret_hex(),
            },
        }
    }

    /// Parses the keys back, checking that each public half matches its private half.
    pub fn keys(&self) -> Result<(AccountKey, ValidatorKey), KeyError> {
        let account = AccountKey::from_hex(&self.account.private_key)?;
        if !account
            .address()
            .to_string()
            .eq_ignore_ascii_case(&self.account.address)
        {
            return Err(KeyError::InvalidKey {
                kind: "secp256k1 account",
                reason: format!(
                    "address {} does not belong to the private key (it gives {})",
                    self.account.address,
                    account.address()
                ),
            });
        }
        let validator = ValidatorKey::from_hex(&self.validator.private_key)?;
        if !validator
            .public_hex()
            .eq_ignore_ascii_case(&self.validator.public_key)
        {
            return Err(KeyError::InvalidKey {
                kind: "ed25519 validator",
                reason: "public key does not belong to the private key".into(),
            });
        }
        Ok((account, validator))
    }

    /// Pretty JSON, the on-disk and printed form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a key bundle always serialises")
    }
}

/// The first line of a secret's file (a passphrase, a PIN), without its line ending; empty if
/// the file is.
pub fn read_first_line(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_owned())
}

/// Writes `contents` to a new file readable and writable only by its owner (mode 0600).
///
/// Fails rather than overwrite an existing file: a key overwritten by accident is a key lost.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), KeyError> {
    let display = path.display().to_string();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::FileExists {
            path: display.clone(),
        },
        _ => KeyError::Io {
            path: display.clone(),
            source,
        },
    })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Io {
            path: display,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_round_trips_through_json() {
        let bundle = KeyBundle::generate().unwrap();
        let parsed: KeyBundle = serde_json::from_str(&bundle.to_json()).unwrap();
        assert_eq!(parsed, bundle);
        let (account, validator) = parsed.keys().unwrap();
        assert_eq!(account.address().to_checksum(None), bundle.account.address);
        assert_eq!(validator.public_hex(), bundle.validator.public_key);
    }

    #[test]
    fn mismatched_halves_are_rejected() {
        let mut bundle = KeyBundle::generate().unwrap();
        bundle.account.address = AccountKey::from_seed(1).address().to_string();
        assert!(matches!(bundle.keys(), Err(KeyError::InvalidKey { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn secret_file_is_owner_only_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        write_secret_file(&path, "first").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = write_secret_file(&path, "second").unwrap_err();
        assert!(matches!(err, KeyError::FileExists { .. }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
    }
}
