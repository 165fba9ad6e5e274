//! Sessions of one token, lent out one caller at a time, and re-attaching to a token that went
//! away and came back.
//!
//! PKCS#11 sessions are not for concurrent use, and an HSM call may take milliseconds: callers
//! take a session from the pool (the lock is held only to pop or push), use it alone, and give
//! it back. A session that failed is dropped instead.
//!
//! A module that lost its device may stay broken until it is initialised again (SoftHSM2 does:
//! every call answers `CKR_GENERAL_ERROR` once its token directory vanished, even after it is
//! back). [`SessionPool::reattach`] then finalises and initialises the module, finds the token
//! by label again and logs in, at most once a second. Callers hold a read lock on the
//! attachment for the length of their HSM call; re-attaching takes it for writing, so the
//! module is never finalised under a call in flight.

use crate::HsmError;
use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    error::{Error as Pkcs11Error, RvError},
    mechanism::MechanismType,
    session::{Session, UserType},
    slot::Slot,
    types::AuthPin,
};
use std::{
    path::{Path, PathBuf},
    sync::{Mutex, RwLock},
    time::{Duration, Instant},
};

/// The least time between two attempts to re-attach.
const REATTACH_SPACING: Duration = Duration::from_secs(1);

/// The slot holding the token and the sessions opened on it.
struct Attachment {
    slot: Slot,
    idle: Mutex<Vec<Session>>,
}

/// Where sessions come from: the module, the token and the PIN to log in with.
pub(crate) struct SessionPool {
    context: Pkcs11,
    module: PathBuf,
    token: String,
    pin: AuthPin,
    attachment: RwLock<Attachment>,
    last_reattach: Mutex<Option<Instant>>,
}

/// Finds the initialised token labelled `label` among the module's slots.
pub(crate) fn find_slot(context: &Pkcs11, module: &Path, label: &str) -> Result<Slot, HsmError> {
    let device = |operation, source| HsmError::Device {
        token: label.to_string(),
        operation,
        source,
    };
    let slots = context
        .get_slots_with_token()
        .map_err(|e| device("listing slots", e))?;
    let mut available = Vec::new();
    for slot in slots {
        let info = context
            .get_token_info(slot)
            .map_err(|e| device("reading token information", e))?;
        if !info.token_initialized() {
            continue;
        }
        let this = info.label().trim_end();
        if this == label {
            return Ok(slot);
        }
        available.push(format!("{this:?}"));
    }
    Err(HsmError::TokenNotFound {
        module: module.display().to_string(),
        label: label.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// Initialises `context`'s module (a module initialised already is fine).
pub(crate) fn initialize(context: &Pkcs11) -> Result<(), Pkcs11Error> {
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(error) => Err(error),
    }
}

impl SessionPool {
    pub(crate) fn new(
        context: Pkcs11,
        module: &Path,
        slot: Slot,
        token: String,
        pin: AuthPin,
    ) -> Self {
        Self {
            context,
            module: module.to_path_buf(),
            token,
            pin,
            attachment: RwLock::new(Attachment {
                slot,
                idle: Mutex::new(Vec::new()),
            }),
            last_reattach: Mutex::new(None),
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
        let attachment = self.attachment.read().expect("attachment lock");
        let idle = attachment.idle.lock().expect("session pool lock").pop();
        let session = match idle {
            Some(session) => session,
            None => self.open_on(attachment.slot)?,
        };
        match work(&session) {
            Ok(value) => {
                attachment
                    .idle
                    .lock()
                    .expect("session pool lock")
                    .push(session);
                Ok(value)
            }
            Err(source) => Err(self.device_error(operation, source)),
        }
    }

    /// Opens a session and logs the user in, to check the PIN.
    pub(crate) fn check_login(&self) -> Result<(), HsmError> {
        let slot = self.attachment.read().expect("attachment lock").slot;
        self.open_on(slot).map(drop)
    }

    /// Opens a read-write session and logs the user in (once per application: a second login
    /// on another session answers "already logged in", which is success).
    fn open_on(&self, slot: Slot) -> Result<Session, HsmError> {
        let session = self
            .context
            .open_rw_session(slot)
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

    /// Initialises the module again and finds the token anew, unless that was tried less than
    /// a second ago. Returns whether it re-attached.
    pub(crate) fn reattach(&self) -> Result<bool, HsmError> {
        {
            let mut last = self.last_reattach.lock().expect("re-attach lock");
            if last.is_some_and(|at| at.elapsed() < REATTACH_SPACING) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let mut attachment = self.attachment.write().expect("attachment lock");
        // Sessions of the old initialisation are dead: forget them without closing them.
        for session in attachment.idle.lock().expect("session pool lock").drain(..) {
            std::mem::forget(session);
        }
        let _ = self.context.clone().finalize();
        initialize(&self.context).map_err(|source| self.device_error("re-initialising", source))?;
        attachment.slot = find_slot(&self.context, &self.module, &self.token)?;
        drop(self.open_on(attachment.slot)?);
        tracing::warn!(token = %self.token, "re-attached to the HSM token");
        Ok(true)
    }

    /// Whether the token offers `mechanism`. (Asked one by one: listing them all makes
    /// cryptoki log an error for each vendor mechanism it does not know.)
    pub(crate) fn supports(&self, mechanism: MechanismType) -> Result<bool, HsmError> {
        let slot = self.attachment.read().expect("attachment lock").slot;
        match self.context.get_mechanism_info(slot, mechanism) {
            Ok(_) => Ok(true),
            Err(Pkcs11Error::Pkcs11(RvError::MechanismInvalid, _)) => Ok(false),
            Err(source) => Err(self.device_error("asking for a mechanism", source)),
        }
    }

    pub(crate) fn device_error(&self, operation: &'static str, source: Pkcs11Error) -> HsmError {
        HsmError::Device {
            token: self.token.clone(),
            operation,
            source,
        }
    }
}
