//! Why a token could not be opened, or a key found, made or used.

use cryptoki::error::{Error as Pkcs11Error, RvError};

/// A failure of the HSM or of its configuration, saying what to check.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error(
        "{path} is not a PKCS#11 module: {source}; name the module's shared library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
    )]
    NotAModule {
        path: String,
        #[source]
        source: Pkcs11Error,
    },
    #[error(
        "no token labelled {label:?} in {module} (tokens there: {available}); create it (softhsm2-util --init-token --free --label {label:?}) or correct the label"
    )]
    TokenNotFound {
        module: String,
        label: String,
        available: String,
    },
    #[error("the PIN for token {token:?} is wrong; check the PIN file")]
    WrongPin { token: String },
    #[error(
        "token {token:?} is locked after too many wrong PINs; its security officer must reset the user PIN"
    )]
    PinLocked { token: String },
    #[error("cannot read the PIN file {path}: {source}")]
    PinFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the PIN file {path} is empty; write the token's user PIN in it")]
    EmptyPin { path: String },
    #[error(
        "token {token:?} holds no {kind} private key labelled {label:?}; generate one (trellis keys new --hsm …) or correct the key label"
    )]
    KeyNotFound {
        token: String,
        label: String,
        kind: &'static str,
    },
    #[error("token {token:?} holds {count} keys labelled {label:?}; labels must name one key")]
    AmbiguousLabel {
        token: String,
        label: String,
        count: usize,
    },
    #[error("token {token:?} already holds a key labelled {label:?}; choose another label")]
    LabelTaken { token: String, label: String },
    #[error("the key labelled {label:?} on token {token:?} is not a {kind} key: {reason}")]
    WrongKeyKind {
        token: String,
        label: String,
        kind: &'static str,
        reason: String,
    },
    #[error("token {token:?} does not offer {mechanism}; Trellis needs it for {purpose}")]
    MechanismMissing {
        token: String,
        mechanism: &'static str,
        purpose: &'static str,
    },
    #[error(
        "the key labelled {label:?} on token {token:?} is not the key this node opened; refusing to sign with it"
    )]
    KeyChanged { token: String, label: String },
    #[error("token {token:?} returned a signature Trellis cannot use: {reason}")]
    BadSignature { token: String, reason: String },
    #[error("the HSM failed during {operation} on token {token:?}: {source}")]
    Device {
        token: String,
        operation: &'static str,
        #[source]
        source: Pkcs11Error,
    },
    #[error("the operating system's random generator failed")]
    Random(#[source] getrandom::Error),
    #[error(
        "invalid PKCS#11 key URI {uri:?}: {reason}; expected pkcs11:token=LABEL;object=KEY?module-path=/path/lib.so&pin-source=file:/path/pin"
    )]
    BadUri { uri: String, reason: String },
}

impl HsmError {
    /// Whether the failure may pass by itself (the device is gone or busy), as opposed to a
    /// configuration error that only the operator can fix.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Device { source, .. } => matches!(
                source,
                Pkcs11Error::Pkcs11(
                    RvError::DeviceError
                        | RvError::DeviceRemoved
                        | RvError::DeviceMemory
                        | RvError::TokenNotPresent
                        | RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::UserNotLoggedIn
                        | RvError::KeyHandleInvalid
                        | RvError::CryptokiNotInitialized
                        | RvError::ObjectHandleInvalid
                        | RvError::FunctionFailed
                        | RvError::GeneralError,
                    _
                )
            ),
            _ => false,
        }
    }
}
