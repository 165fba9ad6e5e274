//! Who signs a transaction: an account key in memory, or one kept in a device (an HSM).

use crate::{AccountKey, DeviceFailure};
use alloy_consensus::{SignableTransaction, Signed, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature};

/// Signs 32-byte transaction hashes for one account.
pub trait TxSigner: Send + Sync {
    /// The account the signatures recover to.
    fn address(&self) -> Address;
    /// A low-s signature of `hash` with the parity that recovers [`Self::address`].
    fn sign_hash(&self, hash: B256) -> Result<Signature, DeviceFailure>;

    /// Signs `tx` and returns its EIP-2718 envelope, ready for `eth_sendRawTransaction`.
    fn sign_transaction<T>(&self, tx: T) -> Result<Bytes, DeviceFailure>
    where
        Self: Sized,
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        sign_transaction(self, tx)
    }
}

/// [`TxSigner::sign_transaction`] for a signer behind a `dyn`.
pub fn sign_transaction<T>(signer: &dyn TxSigner, tx: T) -> Result<Bytes, DeviceFailure>
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<Signed<T>>,
{
    let signature = signer.sign_hash(tx.signature_hash())?;
    Ok(TxEnvelope::from(tx.into_signed(signature))
        .encoded_2718()
        .into())
}

impl TxSigner for AccountKey {
    fn address(&self) -> Address {
        AccountKey::address(self)
    }

    fn sign_hash(&self, hash: B256) -> Result<Signature, DeviceFailure> {
        Ok(AccountKey::sign_hash(self, hash))
    }
}
