//! Where a node's ed25519 key is: a key file (development), or a PKCS#11 token (production).
//!
//! ```toml
//! validator_key = "validator.json"          # a key file
//!
//! [validator_key]                           # or a key that never leaves an HSM (a table:
//!                                           # it goes after the file's plain settings)
//! module = "/usr/lib/softhsm/libsofthsm2.so" # the vendor's PKCS#11 library
//! token = "member-0"                        # the token's label
//! label = "validator"                       # the key's label on the token
//! pin_file = "hsm.pin"                      # the user PIN, first line (mode 0600)
//! ```

use crate::NodeError;
use serde::{Deserialize, Serialize};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};
use trellis_crypto::{Passphrase, ValidatorSigner};
use trellis_hsm::{Ed25519Key, Pin, Token};

/// A node key as `node.toml` names it.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum KeySource {
    File(PathBuf),
    Pkcs11(Pkcs11Key),
}

/// An ed25519 key on a PKCS#11 token.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Key {
    pub module: PathBuf,
    pub token: String,
    pub label: String,
    pub pin_file: PathBuf,
}

impl KeySource {
    /// A key named on a command line: a `pkcs11:` URI, or else a key file.
    pub fn from_arg(spec: &str) -> Result<Self, trellis_hsm::HsmError> {
        if !spec.starts_with("pkcs11:") {
            return Ok(Self::File(spec.into()));
        }
        let uri = trellis_hsm::KeyUri::parse(spec)?;
        Ok(Self::Pkcs11(Pkcs11Key {
            module: uri.module,
            token: uri.token,
            label: uri.object,
            pin_file: uri.pin_file,
        }))
    }

    /// Loads the signer; relative paths are taken from `base` (the configuration's directory).
    /// `passphrase` opens a sealed key file.
    pub fn load(
        &self,
        base: &Path,
        passphrase: Option<&Passphrase>,
    ) -> Result<ValidatorSigner, NodeError> {
        match self {
            Self::File(path) => crate::keyfile::load_with(&base.join(path), passphrase)
                .map(|key| key.validator_signer()),
            Self::Pkcs11(key) => key.open(base),
        }
    }
}

impl Pkcs11Key {
    /// Generates a new validator key on the token, under this key's label.
    pub fn generate(&self, base: &Path) -> Result<ValidatorSigner, NodeError> {
        let token = self.open_token(base)?;
        let key = Ed25519Key::generate(&token, &self.label).map_err(|e| self.error(e))?;
        ValidatorSigner::device(Arc::new(key)).map_err(|e| self.wrong_kind(e))
    }

    pub(crate) fn error(&self, problem: trellis_hsm::HsmError) -> NodeError {
        NodeError::Hsm {
            token: self.token.clone(),
            label: self.label.clone(),
            problem: Box::new(problem),
        }
    }

    fn wrong_kind(&self, e: trellis_crypto::KeyError) -> NodeError {
        self.error(trellis_hsm::HsmError::WrongKeyKind {
            token: self.token.clone(),
            label: self.label.clone(),
            kind: "ed25519",
            reason: e.to_string(),
        })
    }

    /// The key's token, logged in with the PIN in `pin_file` (relative to `base`).
    pub fn open_token(&self, base: &Path) -> Result<Arc<Token>, NodeError> {
        let pin = Pin::from_file(&base.join(&self.pin_file)).map_err(|e| self.error(e))?;
        Token::open(&self.module, &self.token, pin).map_err(|e| self.error(e))
    }

    fn open(&self, base: &Path) -> Result<ValidatorSigner, NodeError> {
        let token = self.open_token(base)?;
        let key = Ed25519Key::open(&token, &self.label).map_err(|e| self.error(e))?;
        // Prove the key signs before the node relies on it.
        key.sign(b"trellis: a node checks its key at start")
            .map_err(|e| self.error(e))?;
        ValidatorSigner::device(Arc::new(key)).map_err(|e| self.wrong_kind(e))
    }
}

/// An account key node.toml names, opened: `spec` a key file (relative to `base`) or a
/// `pkcs11:` URI, `from` which account of the file, `passphrase_file` what opens a sealed one.
/// A key that does not open is wrapped by `setting`, naming the line at fault.
pub(crate) fn account_signer(
    base: &std::path::Path,
    spec: &str,
    from: Option<alloy_primitives::Address>,
    passphrase_file: Option<&std::path::Path>,
    setting: fn(Box<trellis_client::ClientError>) -> crate::FileProblem,
) -> Result<std::sync::Arc<dyn trellis_crypto::TxSigner>, crate::FileProblem> {
    let passphrase = passphrase_file
        .map(|file| Passphrase::from_file(&base.join(file)))
        .transpose()?;
    let spec = match spec.starts_with("pkcs11:") {
        true => spec.to_owned(),
        false => base.join(spec).display().to_string(),
    };
    let key = trellis_client::open_signer(&spec, from, passphrase.as_ref())
        .map_err(|e| setting(Box::new(e)))?;
    Ok(std::sync::Arc::from(key))
}
