//! A data key rotated while the node runs (`trellis data rotate-key`): the node reads its
//! keystore again when the file changes and encrypts the blobs it makes from then on under
//! the new key; blobs already written move to it in the background (`reencrypt.rs`).

use commonware_runtime::{Clock as _, Spawner as _, Supervisor as _, tokio};
use std::{sync::Arc, time::Duration, time::SystemTime};
use tracing::{info, warn};
use trellis_vault::{KeyStore, KeyStoreError, KeyWrapper, Keyring, Protection, Vaulted};

/// How often the keystore's modification time is looked at.
const POLL: Duration = Duration::from_secs(2);

/// What follows a running node's keystore.
pub struct KeyWatch {
    pub(crate) store: KeyStore,
    pub(crate) kek: Box<dyn KeyWrapper>,
    pub(crate) keys: Arc<Keyring>,
    pub(crate) seen: Option<SystemTime>,
    /// The node's storage protection (sharing its open blobs), for the re-encryption.
    pub(crate) protection: Protection,
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
/// with an HSM key-encryption key, a call into the token); moves data under older keys to the
/// current one in the background, now and after each rotation.
pub fn follow(context: &tokio::Context, mut watch: KeyWatch) {
    let dir = watch
        .store
        .path()
        .parent()
        .expect("the keystore is a file in the data directory")
        .to_path_buf();
    let vaulted = Vaulted::with(context.child("data_keys"), watch.protection.clone());
    let mut nudge = crate::reencrypt::start(vaulted, dir);
    context
        .child("data_keys")
        .shared(true)
        .spawn(move |context| async move {
            loop {
                context.sleep(POLL).await;
                match watch.poll() {
                    Ok(Some(current)) => {
                        info!(%current, "a rotated data key now encrypts the data written from here on");
                        nudge.again();
                    }
                    Ok(None) => {}
                    Err(error) => {
                        warn!(%error, "cannot read the data keys again; new data stays under the current key");
                    }
                }
            }
        });
}
