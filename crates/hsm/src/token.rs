//! One logged-in token of one PKCS#11 module, and how its keys are found or made.

use crate::{HsmError, session::SessionPool};
use cryptoki::{
    context::Pkcs11,
    mechanism::{Mechanism, MechanismType},
    object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
    types::AuthPin,
};
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

/// A token's user PIN, kept out of `Debug` output and zeroed when dropped.
pub struct Pin(AuthPin);

impl Pin {
    pub fn new(pin: impl Into<String>) -> Self {
        Self(AuthPin::from(pin.into()))
    }

    /// Reads the PIN from the first line of a file (trailing newline ignored).
    pub fn from_file(path: &Path) -> Result<Self, HsmError> {
        let pin = trellis_crypto::read_first_line(path).map_err(|source| HsmError::PinFile {
            path: path.display().to_string(),
            source,
        })?;
        if pin.is_empty() {
            return Err(HsmError::EmptyPin {
                path: path.display().to_string(),
            });
        }
        Ok(Self::new(pin))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(…)")
    }
}

/// A PKCS#11 token with its user logged in. Cheap to share (`Arc`); its keys hold it.
pub struct Token {
    module: PathBuf,
    pub(crate) sessions: SessionPool,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.module)
            .field("label", &self.sessions.token())
            .finish()
    }
}

/// What a key of one kind looks like to the token.
pub(crate) struct KeyKind {
    pub name: &'static str,
    pub key_type: KeyType,
    /// DER of the curve's OBJECT IDENTIFIER (CKA_EC_PARAMS).
    pub curve: &'static [u8],
    pub generate: Mechanism<'static>,
    pub sign: MechanismType,
    pub sign_name: &'static str,
}

/// A private key's handle, found again by label if the token stops knowing it (a token that
/// was removed and came back gives its objects new handles).
pub(crate) struct KeyHandle {
    /// A function, not the value: a `Mechanism` may hold pointers and is not `Sync`.
    kind: fn() -> KeyKind,
    label: String,
    point: Vec<u8>,
    handle: Mutex<ObjectHandle>,
}

impl KeyHandle {
    pub(crate) fn new(kind: fn() -> KeyKind, label: &str, pair: KeyPair) -> Self {
        Self {
            kind,
            label: label.to_string(),
            point: pair.point,
            handle: Mutex::new(pair.private),
        }
    }

    fn current(&self) -> ObjectHandle {
        *self.handle.lock().expect("key handle lock")
    }
}

/// The two halves of a key pair on the token.
pub(crate) struct KeyPair {
    pub private: ObjectHandle,
    /// CKA_EC_POINT of the public half, as the token stores it.
    pub point: Vec<u8>,
}

/// Modules are initialised once per process (PKCS#11 allows one `C_Initialize` per
/// application), then shared by every token opened on them.
fn module(path: &Path) -> Result<Pkcs11, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .expect("module table lock");
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }
    let not_a_module = |source| HsmError::NotAModule {
        path: path.display().to_string(),
        source,
    };
    let context = Pkcs11::new(path).map_err(not_a_module)?;
    crate::session::initialize(&context).map_err(not_a_module)?;
    modules.insert(path.to_path_buf(), context.clone());
    Ok(context)
}

impl Token {
    /// Loads `module`, finds the token labelled `label` and logs its user in with `pin`.
    pub fn open(module_path: &Path, label: &str, pin: Pin) -> Result<Arc<Self>, HsmError> {
        let context = module(module_path)?;
        let slot = crate::session::find_slot(&context, module_path, label)?;
        let sessions = SessionPool::new(context, module_path, slot, label.to_string(), pin.0);
        // Log in now, so a wrong PIN is reported when the token is opened, not at first use.
        sessions.check_login()?;
        Ok(Arc::new(Self {
            module: module_path.to_path_buf(),
            sessions,
        }))
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        self.sessions.token()
    }

    /// Refuses a token without the mechanism a key kind signs with.
    pub(crate) fn require(&self, kind: &KeyKind, purpose: &'static str) -> Result<(), HsmError> {
        if self.sessions.supports(kind.sign)? {
            Ok(())
        } else {
            Err(HsmError::MechanismMissing {
                token: self.label().to_string(),
                mechanism: kind.sign_name,
                purpose,
            })
        }
    }

    /// Finds the key pair labelled `label`, checking it is of `kind`.
    pub(crate) fn find(&self, kind: &KeyKind, label: &str) -> Result<KeyPair, HsmError> {
        let token = self.label().to_string();
        let private = self.only_object(ObjectClass::PRIVATE_KEY, kind, label)?;
        let public = self.only_object(ObjectClass::PUBLIC_KEY, kind, label)?;
        let attributes = self.sessions.with("reading a public key", |session| {
            session.get_attributes(
                public,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
        })?;
        let mut point = None;
        for attribute in attributes {
            let wrong = |reason: String| HsmError::WrongKeyKind {
                token: token.clone(),
                label: label.to_string(),
                kind: kind.name,
                reason,
            };
            match attribute {
                Attribute::KeyType(key_type) if key_type != kind.key_type => {
                    return Err(wrong(format!("its key type is {key_type}")));
                }
                Attribute::EcParams(params) if params != kind.curve => {
                    return Err(wrong(format!(
                        "its curve parameters are {}",
                        hex::encode(params)
                    )));
                }
                Attribute::EcPoint(bytes) => point = Some(bytes),
                _ => {}
            }
        }
        let point = point.ok_or_else(|| HsmError::WrongKeyKind {
            token: token.clone(),
            label: label.to_string(),
            kind: kind.name,
            reason: "its public half has no CKA_EC_POINT".into(),
        })?;
        Ok(KeyPair { private, point })
    }

    fn only_object(
        &self,
        class: ObjectClass,
        kind: &KeyKind,
        label: &str,
    ) -> Result<ObjectHandle, HsmError> {
        let template = [
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let found = self.sessions.with("searching for a key", |session| {
            session.find_objects(&template)
        })?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(HsmError::KeyNotFound {
                token: self.label().to_string(),
                label: label.to_string(),
                kind: kind.name,
            }),
            many => Err(HsmError::AmbiguousLabel {
                token: self.label().to_string(),
                label: label.to_string(),
                count: many.len(),
            }),
        }
    }

    fn refuse_taken(&self, label: &str) -> Result<(), HsmError> {
        let taken = [Attribute::Label(label.as_bytes().to_vec())];
        let existing = self.sessions.with("searching for a key", |session| {
            session.find_objects(&taken)
        })?;
        if existing.is_empty() {
            Ok(())
        } else {
            Err(HsmError::LabelTaken {
                token: self.label().to_string(),
                label: label.to_string(),
            })
        }
    }

    /// Stores an existing private key (`secret`, CKA_VALUE) and its public point on the token,
    /// unextractable from then on: how a file key moves into an HSM.
    pub(crate) fn import(
        &self,
        kind: &KeyKind,
        label: &str,
        secret: &[u8],
        point: Vec<u8>,
    ) -> Result<KeyPair, HsmError> {
        self.refuse_taken(label)?;
        let common = |class| {
            vec![
                Attribute::Class(class),
                Attribute::KeyType(kind.key_type),
                Attribute::Token(true),
                Attribute::EcParams(kind.curve.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
            ]
        };
        let mut public = common(ObjectClass::PUBLIC_KEY);
        public.extend([
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcPoint(point),
        ]);
        let mut private = common(ObjectClass::PRIVATE_KEY);
        private.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Value(secret.to_vec()),
        ]);
        self.sessions.with("storing a key", |session| {
            session.create_object(&public)?;
            session.create_object(&private)
        })?;
        self.find(kind, label)
    }

    /// Signs `data` with `key`. If the token failed in a way that may pass, the key is looked
    /// up again by its label (checked to be the same public key: a different key under the
    /// label is refused, never used) and the signature tried once more.
    pub(crate) fn sign(
        &self,
        key: &KeyHandle,
        operation: &'static str,
        mechanism: &Mechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let handle = key.current();
        match self
            .sessions
            .with(operation, |session| session.sign(mechanism, handle, data))
        {
            Err(error) if error.is_transient() => {
                let found = match self.find(&(key.kind)(), &key.label) {
                    Ok(found) => found,
                    // The module may need initialising again before it sees its token.
                    Err(_) if self.sessions.reattach().unwrap_or(false) => {
                        self.find(&(key.kind)(), &key.label).map_err(|_| error)?
                    }
                    Err(_) => return Err(error),
                };
                if found.point != key.point {
                    return Err(HsmError::KeyChanged {
                        token: self.label().to_string(),
                        label: key.label.clone(),
                    });
                }
                *key.handle.lock().expect("key handle lock") = found.private;
                self.sessions.with(operation, |session| {
                    session.sign(mechanism, found.private, data)
                })
            }
            result => result,
        }
    }

    /// Destroys every object labelled `label` (both halves of a key pair); returns how many.
    pub fn destroy(&self, label: &str) -> Result<usize, HsmError> {
        let template = [Attribute::Label(label.as_bytes().to_vec())];
        self.sessions.with("destroying a key", |session| {
            let found = session.find_objects(&template)?;
            for object in &found {
                session.destroy_object(*object)?;
            }
            Ok(found.len())
        })
    }

    /// Generates a key pair of `kind` labelled `label`, its private half unextractable.
    pub(crate) fn generate(&self, kind: &KeyKind, label: &str) -> Result<KeyPair, HsmError> {
        self.refuse_taken(label)?;
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(kind.curve.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        self.sessions.with("generating a key pair", |session| {
            session.generate_key_pair(&kind.generate, &public, &private)
        })?;
        self.find(kind, label)
    }
}
