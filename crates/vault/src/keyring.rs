//! The data keys a node holds in memory: shared by every vaulted context of the node, and
//! added to while it runs when a data key rotates (blobs made from then on use the new key;
//! older blobs keep theirs, so no key is ever dropped).

use crate::{DataKey, HeaderError, KeyId};
use std::{collections::BTreeMap, sync::RwLock};

/// The data keys, and the one new blobs are encrypted under.
#[derive(Debug)]
pub struct Keyring {
    /// Held only to look a key up or to add one, never across I/O.
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    current: KeyId,
    keys: BTreeMap<KeyId, DataKey>,
}

impl Keyring {
    /// A keyring of one key, used for every new blob.
    pub fn new(id: KeyId, key: DataKey) -> Self {
        Self::of(State {
            current: id,
            keys: BTreeMap::from([(id, key)]),
        })
    }

    /// A keyring of `keys`, `current` used for new blobs (`None` if it is not among them).
    pub fn from_keys(current: KeyId, keys: BTreeMap<KeyId, DataKey>) -> Option<Self> {
        keys.contains_key(&current)
            .then(|| Self::of(State { current, keys }))
    }

    fn of(state: State) -> Self {
        Self {
            state: RwLock::new(state),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .expect("the keyring lock is never held across a panic")
    }

    /// The key new blobs are encrypted under.
    pub fn current(&self) -> KeyId {
        self.read().current
    }

    /// Every key's id, in order.
    pub fn ids(&self) -> Vec<KeyId> {
        self.read().keys.keys().copied().collect()
    }

    /// Takes in the keys of `newer` (a keystore read again) that this keyring lacks, and its
    /// current key. Returns the new current key if it changed.
    pub fn update(&self, newer: Keyring) -> Option<KeyId> {
        let newer = newer
            .state
            .into_inner()
            .expect("the keyring lock is never held across a panic");
        let mut state = self
            .state
            .write()
            .expect("the keyring lock is never held across a panic");
        for (id, key) in newer.keys {
            state.keys.entry(id).or_insert(key);
        }
        let changed = state.current != newer.current;
        state.current = newer.current;
        changed.then_some(newer.current)
    }

    /// The current key, with its id.
    pub(crate) fn current_key(&self) -> (KeyId, DataKey) {
        let state = self.read();
        let key = state.keys[&state.current].clone();
        (state.current, key)
    }

    /// Key `id`, if the keyring holds it.
    pub(crate) fn key(&self, id: KeyId) -> Result<DataKey, HeaderError> {
        self.read()
            .keys
            .get(&id)
            .cloned()
            .ok_or(HeaderError::UnknownKey(id))
    }

    #[cfg(test)]
    pub(crate) fn key_bytes(&self, id: KeyId) -> Option<[u8; 32]> {
        self.read().keys.get(&id).map(|key| *key.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_adds_keys_and_moves_the_current_one() {
        let ring = Keyring::new(KeyId(1), DataKey::from_bytes([1; 32]));
        let newer = Keyring::from_keys(
            KeyId(2),
            BTreeMap::from([
                (KeyId(1), DataKey::from_bytes([1; 32])),
                (KeyId(2), DataKey::from_bytes([2; 32])),
            ]),
        )
        .unwrap();
        assert_eq!(ring.update(newer), Some(KeyId(2)));
        assert_eq!(ring.current(), KeyId(2));
        assert_eq!(ring.ids(), vec![KeyId(1), KeyId(2)]);
        assert_eq!(ring.current_key().1.expose(), &[2; 32]);
        let same = Keyring::new(KeyId(2), DataKey::from_bytes([2; 32]));
        assert_eq!(ring.update(same), None);
        assert_eq!(ring.ids().len(), 2, "no key is dropped");
        assert!(Keyring::from_keys(KeyId(3), BTreeMap::new()).is_none());
    }
}
