//! A validator's key file, in either of the two shapes Trellis writes:
//!
//! - a key bundle of `trellis keys new --out` (`{"account": …, "validator": …}`), whose
//!   validator half the node uses;
//! - a validator key alone (`{"public_key", "private_key"}`), as `trellis init --validators`
//!   and dev chains write it: a member's node needs no account key.

use crate::{FileProblem, NodeError};
use serde::Deserialize;
use std::path::Path;
use trellis_crypto::{
    KeyBundle, Passphrase, SealedKey, ValidatorEntry, ValidatorKey, write_secret_file,
};

#[derive(Deserialize)]
#[serde(untagged)]
enum KeyFile {
    Bundle(KeyBundle),
    Validator(ValidatorEntry),
}

fn key_error(path: &Path, problem: impl Into<FileProblem>) -> NodeError {
    NodeError::KeyFile {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Reads a plaintext validator key, checking that its public half belongs to its private half.
pub fn load(path: &Path) -> Result<ValidatorKey, NodeError> {
    load_with(path, None)
}

/// Reads a validator key, opening it with `passphrase` if it is sealed.
pub fn load_with(path: &Path, passphrase: Option<&Passphrase>) -> Result<ValidatorKey, NodeError> {
    let stored = std::fs::read_to_string(path).map_err(|e| key_error(path, e))?;
    let text = if SealedKey::is_sealed(&stored) {
        let sealed: SealedKey = serde_json::from_str(&stored)
            .map_err(|e| key_error(path, FileProblem::NotAKeyFile(e)))?;
        let passphrase = passphrase.ok_or_else(|| key_error(path, FileProblem::Sealed))?;
        let opened = sealed.open(passphrase).map_err(|e| key_error(path, e))?;
        String::from_utf8(opened).map_err(|_| key_error(path, FileProblem::KeyMismatch))?
    } else {
        if passphrase.is_some() {
            tracing::warn!(
                path = %path.display(),
                "this key file is not sealed although a passphrase is configured: seal it with `trellis keys seal`"
            );
        }
        stored
    };
    let file: KeyFile =
        serde_json::from_str(&text).map_err(|e| key_error(path, FileProblem::NotAKeyFile(e)))?;
    match file {
        KeyFile::Bundle(bundle) => bundle
            .keys()
            .map(|(_, validator)| validator)
            .map_err(|e| key_error(path, e)),
        KeyFile::Validator(entry) => {
            let key = ValidatorKey::from_hex(&entry.private_key).map_err(|e| key_error(path, e))?;
            if !key.public_hex().eq_ignore_ascii_case(&entry.public_key) {
                return Err(key_error(path, FileProblem::KeyMismatch));
            }
            Ok(key)
        }
    }
}

/// Writes a validator key alone to a new file readable only by its owner; never overwrites.
pub fn write(path: &Path, key: &ValidatorKey) -> Result<(), NodeError> {
    write_with(path, key, None)
}

/// [`write`], sealed under `passphrase` if one is given.
pub fn write_with(
    path: &Path,
    key: &ValidatorKey,
    passphrase: Option<&Passphrase>,
) -> Result<(), NodeError> {
    let entry = ValidatorEntry {
        public_key: key.public_hex(),
        private_key: key.secret_hex(),
    };
    let json = serde_json::to_string_pretty(&entry).expect("a key entry serializes");
    let text = match passphrase {
        Some(passphrase) => SealedKey::seal_key_file(&json, passphrase)
            .map_err(|e| key_error(path, e))?
            .to_json(),
        None => json,
    };
    write_secret_file(path, &format!("{text}\n")).map_err(|e| key_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_shapes_and_refuses_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let key = ValidatorKey::generate().unwrap();
        let alone = dir.path().join("validator.json");
        write(&alone, &key).unwrap();
        assert_eq!(load(&alone).unwrap().public_hex(), key.public_hex());
        assert!(write(&alone, &key).is_err(), "never overwritten");

        let bundle = KeyBundle::generate().unwrap();
        let bundled = dir.path().join("keys.json");
        write_secret_file(&bundled, &bundle.to_json()).unwrap();
        assert_eq!(
            load(&bundled).unwrap().public_hex(),
            bundle.validator.public_key
        );

        let other = ValidatorKey::generate().unwrap();
        let mismatched = dir.path().join("mismatched.json");
        let text = format!(
            "{{\"public_key\": \"{}\", \"private_key\": \"{}\"}}",
            other.public_hex(),
            key.secret_hex()
        );
        std::fs::write(&mismatched, text).unwrap();
        let error = load(&mismatched).unwrap_err().to_string();
        assert!(error.contains("does not belong"), "{error}");

        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "{\"hello\": 1}").unwrap();
        let error = load(&junk).unwrap_err().to_string();
        assert!(error.contains("not a key file"), "{error}");
    }
}
