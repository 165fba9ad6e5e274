//! 32-byte digests with distinct meanings get distinct types, so a state root can never be
//! passed where a block hash is expected.

use alloy_primitives::B256;
use bytes::BufMut;
use commonware_codec::{Error, FixedSize, Read, ReadExt, Write};
use std::fmt;

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub B256);

        impl $name {
            /// The all-zero digest.
            pub const ZERO: Self = Self(B256::ZERO);

            /// The digest as raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0.0
            }
        }

        impl From<B256> for $name {
            fn from(value: B256) -> Self {
                Self(value)
            }
        }

        impl From<$name> for B256 {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                buf.put_slice(self.0.as_slice());
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = 32;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, Error> {
                Ok(Self(B256::from(<[u8; 32]>::read(buf)?)))
            }
        }
    };
}

digest_type!(
    /// The identity of a block: keccak-256 of its header's canonical encoding.
    BlockHash
);
digest_type!(
    /// The commitment to the whole world state after a block.
    StateRoot
);

// Consensus votes on block hashes directly: what the quorum certifies is the same keccak-256
// hash that clients see as `blockHash`.
impl std::ops::Deref for BlockHash {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl AsRef<[u8]> for BlockHash {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl commonware_utils::Span for BlockHash {}
impl commonware_utils::Array for BlockHash {}

impl commonware_math::algebra::Random for BlockHash {
    fn random(mut rng: impl rand_core::CryptoRng) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(B256::from(bytes))
    }
}

impl commonware_cryptography::Digest for BlockHash {
    const EMPTY: Self = Self::ZERO;
}
