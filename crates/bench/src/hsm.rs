//! `trellis bench hsm`: signatures per second through a PKCS#11 token, for the two key kinds
//! Trellis keeps there, beside the same signatures made in memory.
//!
//! The keys are generated on the token under labels of their own and destroyed afterwards.

use std::{
    path::Path,
    time::{Duration, Instant},
};
use trellis_crypto::{AccountKey, ValidatorKey};
use trellis_hsm::{Ed25519Key, HsmError, Pin, Secp256k1Key, Token};

/// Signing rates, one row per key kind.
#[derive(Debug)]
pub struct HsmReport {
    pub signatures: u32,
    pub ed25519_token: Duration,
    pub ed25519_memory: Duration,
    pub secp256k1_token: Duration,
    pub secp256k1_memory: Duration,
}

fn rate(count: u32, took: Duration) -> f64 {
    f64::from(count) / took.as_secs_f64()
}

impl std::fmt::Display for HsmReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.signatures;
        writeln!(f, "{n} signatures of each kind (one thread):")?;
        for (name, token, memory) in [
            (
                "ed25519 (CKM_EDDSA, votes)",
                self.ed25519_token,
                self.ed25519_memory,
            ),
            (
                "secp256k1 (CKM_ECDSA, transactions)",
                self.secp256k1_token,
                self.secp256k1_memory,
            ),
        ] {
            writeln!(
                f,
                "  {name:<38} token {:>8.0}/s ({:>6.1} µs each)   in memory {:>8.0}/s",
                rate(n, token),
                token.as_secs_f64() * 1e6 / f64::from(n),
                rate(n, memory),
            )?;
        }
        Ok(())
    }
}

/// Times `signatures` signatures of each kind on the token labelled `token` of `module`.
pub fn run(module: &Path, token: &str, pin: Pin, signatures: u32) -> Result<HsmReport, HsmError> {
    let token = Token::open(module, token, pin)?;
    let label = format!("trellis-bench-{}", std::process::id());
    let result = measure(&token, &label, signatures);
    token.destroy(&format!("{label}-ed25519"))?;
    token.destroy(&format!("{label}-secp256k1"))?;
    result
}

fn measure(
    token: &std::sync::Arc<Token>,
    label: &str,
    signatures: u32,
) -> Result<HsmReport, HsmError> {
    let messages: Vec<[u8; 32]> = (0..signatures)
        .map(|i| *alloy_primitives::keccak256(i.to_be_bytes()))
        .collect();

    let ed25519 = Ed25519Key::generate(token, &format!("{label}-ed25519"))?;
    let start = Instant::now();
    for message in &messages {
        ed25519.sign(message)?;
    }
    let ed25519_token = start.elapsed();
    let memory = ValidatorKey::from_bytes(&[1; 32]).validator_signer();
    let start = Instant::now();
    for message in &messages {
        commonware_cryptography::Signer::sign(&memory, b"bench", message);
    }
    let ed25519_memory = start.elapsed();

    let secp256k1 = Secp256k1Key::generate(token, &format!("{label}-secp256k1"))?;
    let start = Instant::now();
    for message in &messages {
        secp256k1.sign_hash((*message).into())?;
    }
    let secp256k1_token = start.elapsed();
    let account = AccountKey::from_seed(1);
    let start = Instant::now();
    for message in &messages {
        account.sign_hash((*message).into());
    }
    let secp256k1_memory = start.elapsed();
    Ok(HsmReport {
        signatures,
        ed25519_token,
        ed25519_memory,
        secp256k1_token,
        secp256k1_memory,
    })
}
