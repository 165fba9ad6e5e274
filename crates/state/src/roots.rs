//! The state root: one digest over the roots of the state's two tables (accounts, storage).
//!
//! A header carries only the state root. Proofs and histories carry both table roots, so a
//! verifier first checks that they hash to the root it trusts, then each value against the root
//! of its table.

use alloy_primitives::B256;
use commonware_cryptography::{Hasher, Sha256, sha256::Digest};
use serde::{Deserialize, Serialize};
use trellis_types::StateRoot;

/// Domain separator of the state root: it can never equal another structure's hash.
const ROOT_DOMAIN: &[u8] = b"trellis.state-root.v2";

/// The roots of the state's two QMDB tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRoots {
    /// The accounts table's root: accounts, retired accounts, contract code.
    pub accounts: B256,
    /// The storage table's root: every account's storage slots.
    pub storage: B256,
}

impl TableRoots {
    pub(crate) fn new(accounts: Digest, storage: Digest) -> Self {
        Self {
            accounts: B256::from(accounts.0),
            storage: B256::from(storage.0),
        }
    }

    /// SHA-256(domain ‖ accounts root ‖ storage root).
    pub fn state_root(&self) -> StateRoot {
        let mut hasher = Sha256::default();
        hasher.update(ROOT_DOMAIN);
        hasher.update(self.accounts.as_slice());
        hasher.update(self.storage.as_slice());
        StateRoot(B256::from(hasher.finalize().1.0))
    }

    pub(crate) fn accounts_digest(&self) -> Digest {
        Digest(self.accounts.0)
    }

    pub(crate) fn storage_digest(&self) -> Digest {
        Digest(self.storage.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_root_binds_both_tables_in_order() {
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let roots = |accounts, storage| TableRoots { accounts, storage }.state_root();
        assert_ne!(roots(a, b), roots(b, a));
        assert_ne!(roots(a, b), roots(a, a));
        assert_eq!(roots(a, b), roots(a, b));
    }
}
