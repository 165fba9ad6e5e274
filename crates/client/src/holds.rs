//! Held transfers through one node: an approver's decisions, and the holds read back.

use crate::{ClientError, Node};
use alloy_primitives::{Address, TxHash, U256};
use alloy_sol_types::{SolCall, SolEvent};
use std::time::Duration;
use trellis_crypto::TxSigner;
use trellis_governance::contracts::{
    HOLDS_ADDRESS, abi::ITrellisHolds as Holds, holds::HoldStatus,
};
use trellis_types::Height;

/// A held transfer as the holds contract shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldTransfer {
    pub id: u64,
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub created: Height,
    pub expires: Height,
    pub status: HoldStatus,
}

/// What an approver's transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldEvent {
    Released { id: u64, approver: Address },
    Returned { id: u64, by: Address },
}

/// A decision in a block.
#[derive(Clone, Debug)]
pub struct Settled {
    pub tx: TxHash,
    pub block: u64,
    pub events: Vec<HoldEvent>,
}

/// Which way to settle a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    /// After expiry, back to its sender.
    Reclaim,
}

pub struct HoldsClient<'n> {
    node: &'n Node,
    pub wait: Duration,
}

impl<'n> HoldsClient<'n> {
    pub fn new(node: &'n Node) -> Self {
        Self {
            node,
            wait: Duration::from_secs(30),
        }
    }

    pub async fn decide(
        &self,
        key: &dyn TxSigner,
        id: u64,
        decision: Decision,
    ) -> Result<Settled, ClientError> {
        let data = match decision {
            Decision::Approve => Holds::approveCall { id }.abi_encode(),
            Decision::Reject => Holds::rejectCall { id }.abi_encode(),
            Decision::Reclaim => Holds::reclaimCall { id }.abi_encode(),
        };
        let receipt = self
            .node
            .send(key, HOLDS_ADDRESS, data.into(), self.wait)
            .await?
            .receipt;
        let events = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == HOLDS_ADDRESS)
            .filter_map(|log| {
                let data = log.data();
                if let Ok(e) = Holds::Released::decode_log_data(data) {
                    return Some(HoldEvent::Released {
                        id: e.id,
                        approver: e.approver,
                    });
                }
                let e = Holds::Returned::decode_log_data(data).ok()?;
                Some(HoldEvent::Returned { id: e.id, by: e.by })
            })
            .collect();
        Ok(Settled {
            tx: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            events,
        })
    }

    /// Hold `id` as of the latest block.
    pub async fn hold(&self, id: u64) -> Result<HeldTransfer, ClientError> {
        let output = self
            .node
            .call(HOLDS_ADDRESS, Holds::holdOfCall { id }.abi_encode().into())
            .await?;
        let h =
            Holds::holdOfCall::abi_decode_returns(&output).map_err(|e| ClientError::BadAnswer {
                method: "holdOf",
                detail: e.to_string(),
            })?;
        let status = HoldStatus::from_code(h.status).ok_or(ClientError::BadAnswer {
            method: "holdOf",
            detail: format!("status {} is unknown", h.status),
        })?;
        Ok(HeldTransfer {
            id,
            from: h.from,
            to: h.to,
            value: h.value,
            created: Height(h.created),
            expires: Height(h.expires),
            status,
        })
    }
}
