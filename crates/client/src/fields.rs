//! Confidential fields against a node: the envelopes a finalized transaction carries, and the
//! check that an opening's commitment is in one (how a field's value is proven to an auditor:
//! the holder hands over the opening and the transaction; the auditor asks the chain).

use crate::{ClientError, Node};
use alloy_primitives::{Bytes, TxHash};
use alloy_rpc_types_eth::TransactionReceipt;
use jsonrpsee_core::rpc_params;
use trellis_confidential::{Envelope, Found, Opening, envelopes, locate};

/// A transaction in a block: what it was sent with and what it did.
#[derive(Debug)]
pub struct Mined {
    pub input: Bytes,
    pub receipt: TransactionReceipt,
}

impl Mined {
    fn logs(&self) -> Vec<alloy_primitives::Log> {
        self.receipt
            .inner
            .logs()
            .iter()
            .map(|log| log.inner.clone())
            .collect()
    }
}

/// Where an opening's commitment was found on chain.
#[derive(Debug)]
pub struct Disclosed {
    pub tx: TxHash,
    pub block: u64,
    pub found: Found,
}

impl Node {
    /// Transaction `tx` and its receipt, once it is in a block.
    pub async fn mined(&self, tx: TxHash) -> Result<Mined, ClientError> {
        let receipt: Option<TransactionReceipt> = self
            .request("eth_getTransactionReceipt", rpc_params![tx])
            .await?;
        let transaction: Option<serde_json::Value> = self
            .request("eth_getTransactionByHash", rpc_params![tx])
            .await?;
        let (Some(receipt), Some(transaction)) = (receipt, transaction) else {
            return Err(ClientError::UnknownTransaction { tx });
        };
        let input = serde_json::from_value(transaction["input"].clone()).map_err(|e| {
            ClientError::BadAnswer {
                method: "eth_getTransactionByHash",
                detail: format!("its input: {e}"),
            }
        })?;
        Ok(Mined { input, receipt })
    }

    /// The envelopes transaction `tx` carries (in its arguments or its events' data).
    pub async fn envelopes(&self, tx: TxHash) -> Result<Vec<Envelope>, ClientError> {
        let mined = self.mined(tx).await?;
        Ok(envelopes(&mined.input, &mined.logs()))
    }

    /// Checks that `opening`'s commitment is in transaction `tx`, which succeeded: the value
    /// is then the one that transaction recorded.
    pub async fn check_disclosure(
        &self,
        opening: &Opening,
        tx: TxHash,
    ) -> Result<Disclosed, ClientError> {
        let mined = self.mined(tx).await?;
        let block = mined.receipt.block_number.unwrap_or_default();
        if !mined.receipt.status() {
            return Err(ClientError::Failed { tx, block });
        }
        let commitment = opening.commitment();
        let found = locate(&commitment, &mined.input, &mined.logs()).ok_or_else(|| {
            ClientError::NotDisclosed {
                commitment: commitment.to_string(),
                tx,
            }
        })?;
        Ok(Disclosed { tx, block, found })
    }
}
