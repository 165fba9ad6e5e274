//! The key manager: its own directory and identity, one key-encryption key per node it
//! serves, and the loop that answers them.
//!
//! ```text
//! DIR/keyd.toml        listen = "…"; [[clients]] name, public_key (the nodes it serves)
//! DIR/identity.key     its ed25519 identity, 32 bytes in hex (mode 0600)
//! DIR/keks/<node>.kek  each node's key-encryption key (mode 0600), never sent anywhere
//! ```

use crate::{
    channel,
    protocol::{MAX_MESSAGE, NAMESPACE, Request, Response},
};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ed25519::PublicKey;
use commonware_runtime::{
    Listener as _, Network as _, Runner as _, Spawner as _, Supervisor as _, tokio,
};
use commonware_stream::Upgrader as _;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};
use tracing::{info, warn};
use trellis_crypto::ValidatorKey;
use trellis_vault::{DataKey, KeyWrapper, LocalKek, WrapError};

/// Why the key manager could not start or change.
#[derive(Debug, thiserror::Error)]
pub enum KeydError {
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a keyd configuration")]
    Config {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{0} already holds a key manager")]
    Exists(String),
    #[error("{key} is not an ed25519 public key (32 bytes of hex)")]
    BadKey { key: String },
    #[error("{path} is not an identity key (32 bytes of hex)")]
    BadIdentity { path: String },
    #[error(transparent)]
    Kek(#[from] trellis_vault::KekFileError),
    #[error("the operating system's random generator failed")]
    Random(#[source] trellis_crypto::KeyError),
    #[error("the key manager's runtime")]
    Runtime(#[source] commonware_runtime::Error),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeydError + '_ {
    move |source| KeydError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `keyd.toml`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: SocketAddr,
    #[serde(default)]
    clients: Vec<Client>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Client {
    name: String,
    public_key: String,
}

/// A key manager's directory.
pub struct KeydDir {
    dir: PathBuf,
}

impl KeydDir {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("keyd.toml")
    }

    fn identity_path(&self) -> PathBuf {
        self.dir.join("identity.key")
    }

    fn kek_path(&self, client: &str) -> PathBuf {
        self.dir.join("keks").join(format!("{client}.kek"))
    }

    /// Makes the directory: an identity, and no node served yet. Returns its public key.
    pub fn init(&self, listen: SocketAddr) -> Result<String, KeydError> {
        if self.config_path().exists() {
            return Err(KeydError::Exists(self.dir.display().to_string()));
        }
        std::fs::create_dir_all(self.dir.join("keks")).map_err(io(&self.dir))?;
        let key = ValidatorKey::generate().map_err(KeydError::Random)?;
        write_secret(&self.identity_path(), &key.secret_hex())?;
        self.write_config(&Config {
            listen,
            clients: Vec::new(),
        })?;
        Ok(key.public_hex())
    }

    /// Serves node `public_key` (named `name`): makes its key-encryption key. Returns the
    /// key's id.
    pub fn allow(&self, name: &str, public_key: &str) -> Result<String, KeydError> {
        let key = parse_public(public_key)?;
        let hex_key = hex::encode(key.as_ref());
        let mut config = self.config()?;
        let kek = LocalKek::load_or_create(&self.kek_path(&hex_key))?;
        if !config
            .clients
            .iter()
            .any(|c| c.public_key.ends_with(&hex_key))
        {
            config.clients.push(Client {
                name: name.to_owned(),
                public_key: format!("0x{hex_key}"),
            });
            self.write_config(&config)?;
        }
        self.kek_id(&kek)
    }

    /// The key manager's public key.
    pub fn public_key(&self) -> Result<String, KeydError> {
        Ok(self.identity()?.public_hex())
    }

    fn identity(&self) -> Result<ValidatorKey, KeydError> {
        let path = self.identity_path();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(io(&path))?);
        ValidatorKey::from_hex(text.trim()).map_err(|_| KeydError::BadIdentity {
            path: path.display().to_string(),
        })
    }

    fn kek_id(&self, kek: &LocalKek) -> Result<String, KeydError> {
        let me = self.public_key()?;
        let short = me
            .trim_start_matches("0x")
            .get(..16)
            .unwrap_or_default()
            .to_owned();
        Ok(format!("keyd:{short}/{}", kek.id()))
    }

    fn config(&self) -> Result<Config, KeydError> {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        toml::from_str(&text).map_err(|source| KeydError::Config {
            path: path.display().to_string(),
            source,
        })
    }

    fn write_config(&self, config: &Config) -> Result<(), KeydError> {
        let path = self.config_path();
        let text = format!(
            "# trellis-keyd: the nodes it serves, each by its transport key's public half.\n{}",
            toml::to_string(config).expect("the configuration serialises")
        );
        let staged = path.with_extension("toml.new");
        std::fs::write(&staged, text).map_err(io(&staged))?;
        std::fs::rename(&staged, &path).map_err(io(&path))
    }

    /// Answers the nodes it serves until the process ends; `ready` gets the address it
    /// listens on.
    pub fn serve(&self, ready: impl FnOnce(SocketAddr) + Send + 'static) -> Result<(), KeydError> {
        let config = self.config()?;
        let identity = self.identity()?.validator_signer();
        let mut keks = BTreeMap::new();
        for client in &config.clients {
            let key = parse_public(&client.public_key)?;
            let kek = LocalKek::load(&self.kek_path(&hex::encode(key.as_ref())))?;
            let id = self.kek_id(&kek)?;
            keks.insert(key, (client.name.clone(), id, kek));
        }
        let keks = Arc::new(keks);
        let runtime = tokio::Config::new().with_storage_directory(self.dir.join("runtime"));
        tokio::Runner::new(runtime).start(|context| async move {
            let mut listener = context
                .bind(config.listen)
                .await
                .map_err(KeydError::Runtime)?;
            let local = listener.local_addr().map_err(io(Path::new("listener")))?;
            info!(%local, clients = keks.len(), "trellis-keyd listening");
            ready(local);
            loop {
                let (peer, sink, stream) = listener.accept().await.map_err(KeydError::Runtime)?;
                let keks = keks.clone();
                let upgrader = channel::upgrader(identity.clone());
                context.child("connection").spawn(move |context| async move {
                    let allowed = keks.clone();
                    let bouncer = move |key: PublicKey| async move { allowed.contains_key(&key) };
                    let upgraded = upgrader
                        .listen(context, NAMESPACE, MAX_MESSAGE, bouncer, stream, sink)
                        .await;
                    let (key, mut sender, mut receiver) = match upgraded {
                        Ok(upgraded) => upgraded,
                        Err(error) => {
                            warn!(%peer, %error, "refused a connection: not a node this key manager serves, or a failed handshake");
                            return;
                        }
                    };
                    let Some((name, id, kek)) = keks.get(&key) else {
                        return;
                    };
                    while let Ok(message) = receiver.recv().await {
                        let response = answer(message.coalesce().as_ref(), id, kek);
                        info!(node = %name, "answered a request");
                        let bytes = serde_json::to_vec(&response).expect("a response serialises");
                        if sender.send(bytes).await.is_err() {
                            break;
                        }
                    }
                });
            }
        })
    }
}

fn answer(message: &[u8], id: &str, kek: &LocalKek) -> Response {
    let request: Request = match serde_json::from_slice(message) {
        Ok(request) => request,
        Err(error) => {
            return Response::Refused {
                reason: format!("not a request: {error}"),
            };
        }
    };
    let bytes = |text: &str| hex::decode(text).map_err(|e| format!("bad hex: {e}"));
    let result = match request {
        Request::Id => Ok(Response::Id { id: id.to_owned() }),
        Request::Wrap { context, key } => (|| {
            let key: [u8; 32] = bytes(&key)?
                .try_into()
                .map_err(|_| "a data key is 32 bytes".to_owned())?;
            let wrapped = kek
                .wrap(&DataKey::from_bytes(key), &bytes(&context)?)
                .map_err(|e| e.to_string())?;
            Ok(Response::Wrapped {
                wrapped: hex::encode(wrapped),
            })
        })(),
        Request::Unwrap { context, wrapped } => {
            (|| match kek.unwrap(&bytes(&wrapped)?, &bytes(&context)?) {
                Ok(key) => Ok(Response::Key {
                    key: hex::encode(key.expose()),
                }),
                Err(WrapError::NotItsKey) => Ok(Response::NotItsKey),
                Err(error) => Err(error.to_string()),
            })()
        }
    };
    result.unwrap_or_else(|reason| Response::Refused { reason })
}

fn parse_public(text: &str) -> Result<PublicKey, KeydError> {
    let bad = || KeydError::BadKey {
        key: text.to_owned(),
    };
    let bytes = hex::decode(text.trim_start_matches("0x")).map_err(|_| bad())?;
    PublicKey::decode(bytes.to_vec()).map_err(|_| bad())
}

/// Writes a secret readable by its owner only; never over an existing file.
fn write_secret(path: &Path, text: &str) -> Result<(), KeydError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(path))
}
