//! API tokens signed by an account's key (a key file or an HSM), for nodes that ask callers
//! for one.

use std::time::Duration;
use trellis_access::{TokenClaims, UnixTime};
use trellis_crypto::{DeviceFailure, TxSigner};

/// A token of `signer`'s account for chain `chain_id`, valid for `valid_for` from now: its
/// claims, and the token to present.
pub fn api_token(
    signer: &dyn TxSigner,
    chain_id: u64,
    valid_for: Duration,
) -> Result<(TokenClaims, String), DeviceFailure> {
    let claims = TokenClaims {
        chain_id,
        account: signer.address(),
        expires: UnixTime(UnixTime::now().0.saturating_add(valid_for.as_secs())),
    };
    let signature = signer.sign_hash(claims.digest())?;
    let token = claims.encode(&signature);
    Ok((claims, token))
}
