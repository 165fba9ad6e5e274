//! Sessions of one token, lent out one caller at a time.
//!
//! PKCS#11 sessions are not for concurrent use, and an HSM call may take milliseconds: callers
//! take a session from the pool (the lock is held only to pop or push), use it alone, and give
//! it back. A session that failed is dropped instead, so a token that went away and came back
//! is met with a fresh session (and a fresh login) rather than a dead handle.

use crate::HsmError;
use cryptoki::{
    context::Pkcs11,
    error::{Error as Pkcs11Error, RvError},
    mechanism::MechanismType,
    session::{Session, UserType},
    slot::Slot,
    types::AuthPin,
};
use std::sync::Mutex;

/// Where sessions come from: the module, the slot and the PIN to log in with.
pub(crate) struct SessionPool {
    context: Pkcs11,
    slot: Slot,
    token: String,
    pin: AuthPin,
    idle: Mutex<Vec<Session>>,
}

impl SessionPool {
    pub(crate) fn new(context: Pkcs11, slot: Slot, token: String, pin: AuthPin) -> Self {
        Self {
            context,
            slot,
            token,
            pin,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Runs `work` on a logged-in session; the session returns to the pool only if it worked.
    pub(crate) fn with<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Session) -> Result<T, Pkcs11Error>,
    ) -> Result<T, HsmError> {
        let session = match self.take() {
            Some(session) => session,
            None => self.open()?,
        };
        match work(&session) {
            Ok(value) => {
                self.give_back(session);
                Ok(value)
            }
            Err(source) => Err(self.device_error(operation, source)),
        }
    }

    /// Opens a read-write session and logs the user in (once per application: a second login
    /// on another session answers "already logged in", which is success).
    pub(crate) fn open(&self) -> Result<Session, HsmError> {
        let session = self
            .context
            .open_rw_session(self.slot)
            .map_err(|source| self.device_error("opening a session", source))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(Pkcs11Error::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                Err(HsmError::WrongPin {
                    token: self.token.clone(),
                })
            }
            Err(Pkcs11Error::Pkcs11(RvError::PinLocked, _)) => Err(HsmError::PinLocked {
                token: self.token.clone(),
            }),
            Err(source) => Err(self.device_error("logging in", source)),
        }
    }

    /// The mechanisms the token offers.
    pub(crate) fn mechanisms(&self) -> Result<Vec<MechanismType>, HsmError> {
        self.context
            .get_mechanism_list(self.slot)
            .map_err(|source| self.device_error("listing mechanisms", source))
    }

    fn take(&self) -> Option<Session> {
        self.idle.lock().expect("session pool lock").pop()
    }

    fn give_back(&self, session: Session) {
        self.idle.lock().expect("session pool lock").push(session);
    }

    pub(crate) fn device_error(&self, operation: &'static str, source: Pkcs11Error) -> HsmError {
        HsmError::Device {
            token: self.token.clone(),
            operation,
            source,
        }
    }
}
