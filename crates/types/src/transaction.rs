//! Ethereum transactions as Trellis accepts them: decoded from EIP-2718 bytes by alloy, sender
//! recovered once through libsecp256k1.

use alloy_consensus::{Transaction, TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::{Typed2718, eip2718::Decodable2718};
use alloy_primitives::{Address, Bytes, TxHash, keccak256};

/// Why bytes are not an acceptable transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("malformed transaction: {0}")]
    Malformed(String),
    #[error(
        "unsupported transaction type {0}: Trellis accepts legacy (0), EIP-2930 (1) and EIP-1559 (2)"
    )]
    UnsupportedType(u8),
    #[error("invalid signature: the sender cannot be recovered")]
    InvalidSignature,
}

/// A decoded transaction with its sender and hash, each computed exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredTx {
    envelope: TxEnvelope,
    sender: Address,
    hash: TxHash,
    raw: Bytes,
}

/// Decodes one EIP-2718 envelope (a legacy transaction is its plain RLP list) and recovers its
/// sender. The chain id is *not* checked here: that is a rule of the chain executing it.
pub fn decode(raw: Bytes) -> Result<RecoveredTx, TxError> {
    let hash = keccak256(&raw);
    decode_hashed(raw, hash)
}

/// [`decode`] for a caller that has hashed `raw` already (`hash` must be its keccak-256).
pub fn decode_hashed(raw: Bytes, hash: TxHash) -> Result<RecoveredTx, TxError> {
    debug_assert_eq!(hash, keccak256(&raw), "the hash is of these bytes");
    let envelope = decode_envelope(&raw)?;
    // `recover_signer` also enforces EIP-2 (low `s`), so malleated copies are refused.
    let sender = envelope
        .recover_signer()
        .map_err(|_| TxError::InvalidSignature)?;
    Ok(RecoveredTx {
        sender,
        hash,
        envelope,
        raw,
    })
}

/// Decodes `raw` and takes `sender` as its signer, without checking the signature.
///
/// Only for a transaction of a finalized block, whose execution is then checked against the
/// block's certified state root: a quorum of validators recovered the real sender before voting,
/// and any other sender would leave a different nonce (hence root) behind, so a wrong claim is
/// caught there and the caller recovers the block's senders itself.
pub fn decode_claimed(raw: Bytes, sender: Address) -> Result<RecoveredTx, TxError> {
    let hash = keccak256(&raw);
    let envelope = decode_envelope(&raw)?;
    Ok(RecoveredTx {
        sender,
        hash,
        envelope,
        raw,
    })
}

/// The envelope of a transaction type Trellis accepts.
fn decode_envelope(raw: &[u8]) -> Result<TxEnvelope, TxError> {
    let envelope =
        TxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
    if !matches!(
        envelope,
        TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_)
    ) {
        return Err(TxError::UnsupportedType(envelope.ty()));
    }
    Ok(envelope)
}

impl RecoveredTx {
    /// The decoded transaction.
    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }

    /// The address whose key signed it.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// keccak-256 of the envelope bytes: the hash wallets and explorers show.
    pub fn hash(&self) -> TxHash {
        self.hash
    }

    /// The envelope bytes as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The chain id it is signed for; `None` for a legacy transaction without EIP-155.
    pub fn chain_id(&self) -> Option<u64> {
        self.envelope.chain_id()
    }

    /// The EIP-2718 type byte (0 for legacy).
    pub fn tx_type(&self) -> u8 {
        self.envelope.ty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for raw in [
            &b""[..],
            b"\x02",
            b"\x02\xc0",
            b"\xff\x00",
            b"\xc3\x01\x02\x03",
        ] {
            assert!(
                matches!(
                    decode(Bytes::copy_from_slice(raw)),
                    Err(TxError::Malformed(_))
                ),
                "{raw:?}"
            );
        }
    }
}
