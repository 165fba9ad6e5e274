//! The AuditAnchors contract (contracts/src/AuditAnchors.sol): a node anchors its audit log's
//! head there; an auditor reads every anchor of a log back to check the log against them.

use crate::{ClientError, Node, Sent};
use alloy_primitives::{Address, B256, Bytes, U64};
use alloy_sol_types::{SolCall, SolEvent, sol};
use jsonrpsee_core::rpc_params;
use serde_json::json;
use std::time::Duration;
use trellis_audit::{Anchor, Digest, Head};
use trellis_crypto::TxSigner;

sol! {
    event Anchored(bytes32 indexed log, address indexed by, uint64 seq, bytes32 hash);
    function anchor(bytes32 log, uint64 seq, bytes32 hash) external;
}

/// Blocks asked per `eth_getLogs` (nodes answer at most 100,000 by default).
const WINDOW: u64 = 50_000;

impl Node {
    /// The code at `address` (empty: no contract there).
    pub async fn code(&self, address: Address) -> Result<Bytes, ClientError> {
        self.request("eth_getCode", rpc_params![address, "latest"])
            .await
    }

    /// Anchors `head` at contract `contract`, signed by `key`, waiting up to `wait`.
    pub async fn anchor_audit_head(
        &self,
        key: &dyn TxSigner,
        contract: Address,
        head: Head,
        wait: Duration,
    ) -> Result<Sent, ClientError> {
        let call = anchorCall {
            log: B256::from(head.log.0),
            seq: head.seq,
            hash: B256::from(head.hash.0),
        };
        self.send(key, contract, call.abi_encode().into(), wait)
            .await
    }

    /// Every anchor of log `log` (its first record's hash) at contract `contract`, oldest first.
    pub async fn audit_anchors(
        &self,
        contract: Address,
        log: Digest,
    ) -> Result<Vec<Anchor>, ClientError> {
        let latest = self.block_number().await?;
        let mut anchors = Vec::new();
        let mut from = 0;
        while from <= latest {
            let to = from.saturating_add(WINDOW - 1).min(latest);
            let filter = json!({
                "address": contract,
                "fromBlock": U64::from(from),
                "toBlock": U64::from(to),
                "topics": [Anchored::SIGNATURE_HASH, B256::from(log.0)],
            });
            let logs: Vec<alloy_rpc_types_eth::Log> =
                self.request("eth_getLogs", rpc_params![filter]).await?;
            for log in logs {
                anchors.push(decode(&log)?);
            }
            from = to + 1;
        }
        Ok(anchors)
    }
}

fn decode(log: &alloy_rpc_types_eth::Log) -> Result<Anchor, ClientError> {
    let bad = |detail: String| ClientError::BadAnswer {
        method: "eth_getLogs",
        detail,
    };
    let event = Anchored::decode_log_data(log.data())
        .map_err(|e| bad(format!("an Anchored event does not decode: {e}")))?;
    Ok(Anchor {
        seq: event.seq,
        hash: Digest(event.hash.0),
        block: log
            .block_number
            .ok_or_else(|| bad("an anchor without its block".into()))?,
    })
}
