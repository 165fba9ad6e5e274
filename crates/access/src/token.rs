//! API tokens: `trellis-api-v1.<chain id>.<account>.<expires>.<signature>`, the signature an
//! EIP-191 `personal_sign` by the account's key over [`TokenClaims::message`].
//!
//! The signed text is readable so a person signing in a wallet sees what they grant. A token
//! names its chain (a token for a test chain is refused by production) and its expiry (seconds
//! since the Unix epoch, checked against the node's clock: access control is not consensus).

use alloy_primitives::{Address, B256, Signature, eip191_hash_message};
use std::fmt;

/// How every token starts: the format's name and version.
pub const PREFIX: &str = "trellis-api-v1";

/// Seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The host's clock now (a clock before 1970 reads as 0).
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(since.as_secs())
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a token states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenClaims {
    pub chain_id: u64,
    pub account: Address,
    /// The first second it is no longer valid.
    pub expires: UnixTime,
}

/// Why a token is refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error(
        "the API token is malformed ({why}): expected {PREFIX}.<chain id>.<account>.<expires>.<signature>, as `trellis api token` prints"
    )]
    Malformed { why: &'static str },
    #[error("the API token is for chain {token}, this node serves chain {node}")]
    WrongChain { token: u64, node: u64 },
    #[error("the API token expired at {expires} (now {now}, seconds since 1970): make a new one")]
    Expired { expires: UnixTime, now: UnixTime },
    #[error(
        "the API token's signature is not {claimed}'s (it recovers to {signer}): forged or altered"
    )]
    Forged { claimed: Address, signer: Address },
    #[error("the API token's signature does not verify: forged or altered")]
    BadSignature,
}

impl TokenClaims {
    /// The text the account signs.
    pub fn message(&self) -> String {
        format!(
            "Trellis API token\nchain: {}\naccount: {}\nexpires: {}",
            self.chain_id,
            self.account.to_checksum(None),
            self.expires
        )
    }

    /// The EIP-191 digest of [`Self::message`]: what the key signs.
    pub fn digest(&self) -> B256 {
        eip191_hash_message(self.message())
    }

    /// The token: these claims with the account's signature of [`Self::digest`].
    pub fn encode(&self, signature: &Signature) -> String {
        format!(
            "{PREFIX}.{}.{:#x}.{}.0x{}",
            self.chain_id,
            self.account,
            self.expires,
            hex::encode(signature.as_bytes())
        )
    }

    /// Reads a token's claims and signature, checking nothing else.
    pub fn parse(token: &str) -> Result<(Self, Signature), TokenError> {
        let malformed = |why| TokenError::Malformed { why };
        let mut parts = token.trim().split('.');
        if parts.next() != Some(PREFIX) {
            return Err(malformed("it does not start with trellis-api-v1"));
        }
        let (Some(chain), Some(account), Some(expires), Some(signature), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed("it does not have five parts"));
        };
        let chain_id = chain.parse().map_err(|_| malformed("bad chain id"))?;
        let account = account.parse().map_err(|_| malformed("bad account"))?;
        let expires = UnixTime(expires.parse().map_err(|_| malformed("bad expiry"))?);
        let signature = signature.strip_prefix("0x").unwrap_or(signature);
        let raw = hex::decode(signature).map_err(|_| malformed("the signature is not hex"))?;
        let signature =
            Signature::from_raw(&raw).map_err(|_| malformed("the signature is not 65 bytes"))?;
        let claims = Self {
            chain_id,
            account,
            expires,
        };
        Ok((claims, signature))
    }

    /// The claims of a token valid for chain `chain_id` at `now`, signed by its account.
    pub fn verify(token: &str, chain_id: u64, now: UnixTime) -> Result<Self, TokenError> {
        let claims = Self::verify_signature(token, chain_id)?;
        claims.check_expiry(now)?;
        Ok(claims)
    }

    /// The claims of a token for chain `chain_id` signed by its account, whatever the time:
    /// what a node may remember of a token, checking [`Self::check_expiry`] at each use.
    pub fn verify_signature(token: &str, chain_id: u64) -> Result<Self, TokenError> {
        let (claims, signature) = Self::parse(token)?;
        if claims.chain_id != chain_id {
            return Err(TokenError::WrongChain {
                token: claims.chain_id,
                node: chain_id,
            });
        }
        let signer =
            alloy_consensus::crypto::secp256k1::recover_signer(&signature, claims.digest())
                .map_err(|_| TokenError::BadSignature)?;
        if signer != claims.account {
            return Err(TokenError::Forged {
                claimed: claims.account,
                signer,
            });
        }
        Ok(claims)
    }

    /// Whether the token is still valid at `now`.
    pub fn check_expiry(&self, now: UnixTime) -> Result<(), TokenError> {
        if self.expires <= now {
            return Err(TokenError::Expired {
                expires: self.expires,
                now,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::crypto::secp256k1::sign_message;

    const SECRET: [u8; 32] = [0x42; 32];

    fn signed(claims: &TokenClaims, secret: [u8; 32]) -> String {
        let signature = sign_message(B256::from(secret), claims.digest()).expect("signs");
        claims.encode(&signature)
    }

    fn claims() -> TokenClaims {
        let signer = B256::from(SECRET);
        let account = alloy_consensus::crypto::secp256k1::recover_signer(
            &sign_message(signer, B256::ZERO).expect("signs"),
            B256::ZERO,
        )
        .expect("recovers");
        TokenClaims {
            chain_id: 4646,
            account,
            expires: UnixTime(2_000),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let claims = claims();
        let token = signed(&claims, SECRET);
        assert!(token.starts_with("trellis-api-v1.4646.0x"), "{token}");
        assert_eq!(
            TokenClaims::verify(&token, 4646, UnixTime(1_999)),
            Ok(claims)
        );
        assert_eq!(
            TokenClaims::verify(&token, 4646, UnixTime(2_000)),
            Err(TokenError::Expired {
                expires: UnixTime(2_000),
                now: UnixTime(2_000)
            })
        );
        assert_eq!(
            TokenClaims::verify(&token, 1, UnixTime(0)),
            Err(TokenError::WrongChain {
                token: 4646,
                node: 1
            })
        );
    }

    #[test]
    fn an_altered_or_foreign_token_is_refused() {
        let claims = claims();
        // Another key signs the same claims.
        let foreign = signed(&claims, [0x43; 32]);
        assert!(matches!(
            TokenClaims::verify(&foreign, 4646, UnixTime(0)),
            Err(TokenError::Forged { claimed, .. }) if claimed == claims.account
        ));
        // The expiry pushed out after signing.
        let token = signed(&claims, SECRET);
        let altered = token.replace(".2000.", ".9999.");
        assert!(matches!(
            TokenClaims::verify(&altered, 4646, UnixTime(0)),
            Err(TokenError::Forged { .. } | TokenError::BadSignature)
        ));
        for bad in [
            "",
            "Bearer x",
            "trellis-api-v1.1.2.3",
            "trellis-api-v1.x.0x00.1.0x00",
        ] {
            assert!(
                matches!(
                    TokenClaims::verify(bad, 4646, UnixTime(0)),
                    Err(TokenError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_signed_text_names_chain_account_and_expiry() {
        let message = claims().message();
        assert!(message.starts_with("Trellis API token\nchain: 4646\naccount: 0x"));
        assert!(message.ends_with("\nexpires: 2000"));
    }
}
