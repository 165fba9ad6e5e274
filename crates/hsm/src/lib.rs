//! Keys held in a hardware security module, reached through PKCS#11 (`cryptoki`).
//!
//! A [`Token`] is one logged-in token of one PKCS#11 module; its keys are found (or generated)
//! by label and never leave it: Trellis asks the token to sign and reads back only public keys.
//!
//! | key | mechanism | what Trellis gets back |
//! |---|---|---|
//! | [`Ed25519Key`] | `CKM_EDDSA` (pure Ed25519) | a 64-byte signature, as RFC 8032 defines it |
//! | [`AesKek`] | `CKM_AES_GCM` (a 12-byte random nonce, a 128-bit tag) | a data key of encrypted storage, wrapped or unwrapped |
//! | [`Secp256k1Key`] | `CKM_ECDSA` over a 32-byte (keccak) digest | `(r, s)`, normalised to low-s, with the recovery id found by recovery |
//!
//! Keys this crate generates are `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` and not
//! `CKA_EXTRACTABLE`: the token refuses to export them, to Trellis or anyone.
//!
//! Tested against SoftHSM2 (`/usr/lib/softhsm/libsofthsm2.so`); a production HSM plugs in by
//! naming its vendor's PKCS#11 module instead.

mod aes_kek;
mod ed25519;
mod error;
mod secp256k1;
mod session;
mod token;
mod uri;

pub use aes_kek::AesKek;
pub use ed25519::Ed25519Key;
pub use error::HsmError;
pub use secp256k1::{RecoverableSignature, Secp256k1Key};
pub use token::{Pin, Token};
pub use uri::{KeyUri, SOFTHSM2_MODULE};
