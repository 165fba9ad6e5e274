//! The authenticated, encrypted channel between a node and its key manager: the same handshake
//! and cipher as the nodes' p2p links (SAKE with ed25519 identities, then ChaCha20-Poly1305
//! records), under a namespace of its own.

use commonware_cryptography::ChaCha20Poly1305;
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use std::time::Duration;
use trellis_crypto::ValidatorSigner;

/// How long a handshake may take, and how far the two clocks may differ.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The upgrader that authenticates as `identity`.
pub fn upgrader(identity: ValidatorSigner) -> Cups<Sake<ValidatorSigner>, ChaCha20Poly1305> {
    Cups::new(
        Sake {
            signer: identity,
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: HANDSHAKE_TIMEOUT,
            version: sake::Version::V1,
        },
        cups::Version::V1,
    )
}
