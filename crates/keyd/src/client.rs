//! A node's side: its key-encryption key held by a key manager, reached over the
//! authenticated channel as the node's transport key. The node never holds that key; it sends
//! a data key to be wrapped, or a wrapped one to be opened, and gets the answer back.

use crate::{
    channel,
    protocol::{MAX_MESSAGE, NAMESPACE, Request, Response},
};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::ed25519::PublicKey;
use commonware_runtime::{Clock as _, Network as _, Runner as _, Supervisor as _, tokio};
use commonware_stream::Upgrader as _;
use futures::future::{Either, select};
use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};
use trellis_crypto::ValidatorSigner;
use trellis_vault::{DataKey, KeyWrapper, WrapError};
use zeroize::Zeroizing;

/// How long one request may take, connection and handshake included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the key manager could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum KeydClientError {
    #[error("{key} is not the key manager's ed25519 public key (32 bytes of hex)")]
    BadKey { key: String },
    #[error("cannot reach the key manager at {address}: is trellis-keyd running there?")]
    Connect {
        address: SocketAddr,
        #[source]
        source: commonware_runtime::Error,
    },
    #[error(
        "the key manager at {address} did not complete the handshake: it does not serve this node's key (trellis-keyd allow), or it is not the key manager named"
    )]
    Handshake {
        address: SocketAddr,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the key manager at {address} did not answer within {REQUEST_TIMEOUT:?}")]
    Timeout { address: SocketAddr },
    #[error("the key manager at {address} refused: {reason}")]
    Refused { address: SocketAddr, reason: String },
    #[error("the key manager at {address} answered something else than asked")]
    Unexpected { address: SocketAddr },
    #[error("the key manager's client could not run")]
    Runtime,
}

/// A key-encryption key held by a key manager.
pub struct KeydKek {
    address: SocketAddr,
    server: PublicKey,
    signer: ValidatorSigner,
    id: String,
}

impl KeydKek {
    /// The key the key manager at `address` (identity `server`, hex) holds for `signer`'s node.
    pub fn connect(
        address: SocketAddr,
        server: &str,
        signer: ValidatorSigner,
    ) -> Result<Self, KeydClientError> {
        let bytes = hex::decode(server.trim_start_matches("0x")).ok();
        let server = bytes
            .and_then(|b| PublicKey::decode(b.to_vec()).ok())
            .ok_or_else(|| KeydClientError::BadKey {
                key: server.to_owned(),
            })?;
        let mut kek = Self {
            address,
            server,
            signer,
            id: String::new(),
        };
        match kek.call(Request::Id)? {
            Response::Id { id } => kek.id = id,
            other => return Err(kek.unexpected(other)),
        }
        Ok(kek)
    }

    fn unexpected(&self, response: Response) -> KeydClientError {
        match response {
            Response::Refused { reason } => KeydClientError::Refused {
                address: self.address,
                reason,
            },
            _ => KeydClientError::Unexpected {
                address: self.address,
            },
        }
    }

    /// One request, on a connection and a runtime of its own, on a thread of its own: callers
    /// may be inside another runtime (a running node's), where a runtime cannot start.
    fn call(&self, request: Request) -> Result<Response, KeydClientError> {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let (address, server, signer) = (self.address, self.server.clone(), self.signer.clone());
        let message = Zeroizing::new(serde_json::to_vec(&request).expect("a request serialises"));
        let scratch = std::env::temp_dir().join(format!(
            "trellis-keyd-client-{}-{}",
            std::process::id(),
            CALLS.fetch_add(1, Ordering::Relaxed)
        ));
        let worker = std::thread::spawn(move || {
            let runtime = tokio::Config::new()
                .with_worker_threads(1)
                .with_storage_directory(&scratch);
            let result = tokio::Runner::new(runtime).start(|context| async move {
                let exchange = exchange(&context, (address, server, signer), &message);
                match select(Box::pin(exchange), Box::pin(context.sleep(REQUEST_TIMEOUT))).await {
                    Either::Left((result, _)) => result,
                    Either::Right(_) => Err(KeydClientError::Timeout { address }),
                }
            });
            let _ = std::fs::remove_dir_all(&scratch);
            result
        });
        worker.join().map_err(|_| KeydClientError::Runtime)?
    }
}

async fn exchange(
    context: &tokio::Context,
    (address, server, signer): (SocketAddr, PublicKey, ValidatorSigner),
    message: &[u8],
) -> Result<Response, KeydClientError> {
    let (sink, stream) = context
        .dial(address)
        .await
        .map_err(|source| KeydClientError::Connect { address, source })?;
    let handshake = |source: Box<dyn std::error::Error + Send + Sync>| KeydClientError::Handshake {
        address,
        source,
    };
    let (mut sender, mut receiver) = channel::upgrader(signer)
        .dial(
            context.child("keyd"),
            NAMESPACE,
            MAX_MESSAGE,
            server,
            stream,
            sink,
        )
        .await
        .map_err(|e| handshake(Box::new(e)))?;
    sender
        .send(message.to_vec())
        .await
        .map_err(|e| handshake(Box::new(e)))?;
    let reply = receiver.recv().await.map_err(|e| handshake(Box::new(e)))?;
    serde_json::from_slice(reply.coalesce().as_ref())
        .map_err(|_| KeydClientError::Unexpected { address })
}

impl KeyWrapper for KeydKek {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn wrap(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        let request = Request::Wrap {
            context: hex::encode(context),
            key: hex::encode(key.expose()),
        };
        let unavailable = |e: KeydClientError| WrapError::Unavailable(Box::new(e));
        match self.call(request).map_err(unavailable)? {
            Response::Wrapped { wrapped } => hex::decode(wrapped).map_err(|_| {
                unavailable(KeydClientError::Unexpected {
                    address: self.address,
                })
            }),
            other => Err(unavailable(self.unexpected(other))),
        }
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, WrapError> {
        let request = Request::Unwrap {
            context: hex::encode(context),
            wrapped: hex::encode(wrapped),
        };
        let unavailable = |e: KeydClientError| WrapError::Unavailable(Box::new(e));
        match self.call(request).map_err(unavailable)? {
            Response::Key { key } => {
                let bytes = Zeroizing::new(hex::decode(key).unwrap_or_default());
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    unavailable(KeydClientError::Unexpected {
                        address: self.address,
                    })
                })?;
                Ok(DataKey::from_bytes(key))
            }
            Response::NotItsKey => Err(WrapError::NotItsKey),
            other => Err(unavailable(self.unexpected(other))),
        }
    }
}
