//! A data key rotated while the node runs (`trellis data rotate-key`): the node reads its
//! keystore again when the file changes and encrypts the blobs it makes from then on under
//! the new key. Blobs already written keep theirs.

use commonware_runtime::{Clock as _, Spawner as _, Supervisor as _, tokio};
use std::{sync::Arc, time::Duration, time::SystemTime};
use tracing::{info, warn};
use trellis_vault::{KeyStore, KeyStoreError, KeyWrapper, Keyring};

/// How often the keystore's modification time is looked at.
const POLL: Duration = Duration::from_secs(2);

/// What follows a running node's keystore.
pub struct KeyWatch {
    pub(crate) store: KeyStore,
    pub(crate) kek: Box<dyn KeyWrapper>,
    pub(crate) keys: Arc<Keyring>,
    pub(crate) seen: Option<SystemTime>,
}

impl KeyWatch {
    /// Reads the keystore again if it changed since last seen; the new current key, if any.
    pub fn poll(&mut self) -> Result<Option<trellis_vault::KeyId>, KeyStoreError> {
        let modified = std::fs::metadata(self.store.path())
            .and_then(|m| m.modified())
            .ok();
        if modified.is_none() || modified == self.seen {
            return Ok(None);
        }
        let newer = self.store.open(self.kek.as_ref())?;
        self.seen = modified;
        Ok(self.keys.update(newer))
    }
}

/// Follows the keystore for the node's life, on a thread that may block (a file read and,
/// with an HSM key-encryption key, a call into the token).
pub fn follow(context: &tokio::Context, mut watch: KeyWatch) {
    context
        .child("data_keys")
        .shared(true)
        .spawn(move |context| async move {
            loop {
                context.sleep(POLL).await;
                match watch.poll() {
                    Ok(Some(current)) => {
                        info!(%current, "a rotated data key now encrypts the data written from here on");
                    }
                    Ok(None) => {}
                    Err(error) => {
                        warn!(%error, "cannot read the data keys again; new data stays under the current key");
                    }
                }
            }
        });
}
