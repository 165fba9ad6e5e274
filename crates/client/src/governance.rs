//! The governance system contract, in its own terms: proposals made and voted on by a key,
//! and read back.

use crate::{ClientError, Node};
use alloy_primitives::{Address, TxHash};
use alloy_sol_types::{SolCall, SolEvent};
use std::time::Duration;
use trellis_crypto::TxSigner;
use trellis_governance::{
    IdentityId,
    contracts::{
        Action, GOVERNANCE_ADDRESS, Proposal, ProposalId, ProposalStatus, Tally,
        abi::ITrellisGovernance as Gov,
    },
};
use trellis_types::Height;

/// What a proposal or vote transaction did, from its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovernanceEvent {
    Proposed {
        id: ProposalId,
        expires: Height,
    },
    Voted {
        id: ProposalId,
        voter: Address,
        identity: IdentityId,
        approve: bool,
        weight: u64,
    },
    Executed(ProposalId),
    Rejected(ProposalId),
    Failed {
        id: ProposalId,
        reason: String,
    },
}

/// A governance transaction in a block, and what it did.
#[derive(Clone, Debug)]
pub struct Decided {
    pub tx: TxHash,
    pub block: u64,
    pub events: Vec<GovernanceEvent>,
}

/// Governance through one node.
pub struct GovernanceClient<'n> {
    node: &'n Node,
    /// How long to wait for a transaction to be in a block.
    pub wait: Duration,
}

impl<'n> GovernanceClient<'n> {
    pub fn new(node: &'n Node) -> Self {
        Self {
            node,
            wait: Duration::from_secs(30),
        }
    }

    pub async fn propose(
        &self,
        key: &dyn TxSigner,
        action: &Action,
        voting_blocks: u64,
    ) -> Result<Decided, ClientError> {
        let call = Gov::proposeCall {
            action: action.encode(),
            votingBlocks: voting_blocks,
        };
        self.send(key, call.abi_encode()).await
    }

    pub async fn vote(
        &self,
        key: &dyn TxSigner,
        id: ProposalId,
        approve: bool,
    ) -> Result<Decided, ClientError> {
        self.send(key, Gov::voteCall { id: id.0, approve }.abi_encode())
            .await
    }

    async fn send(&self, key: &dyn TxSigner, data: Vec<u8>) -> Result<Decided, ClientError> {
        let sent = self
            .node
            .send(key, GOVERNANCE_ADDRESS, data.into(), self.wait)
            .await?;
        let receipt = sent.receipt;
        let events = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == GOVERNANCE_ADDRESS)
            .filter_map(|log| event(log.data()))
            .collect();
        Ok(Decided {
            tx: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            events,
        })
    }

    pub async fn count(&self) -> Result<u64, ClientError> {
        let output = self
            .node
            .call(
                GOVERNANCE_ADDRESS,
                Gov::proposalCountCall {}.abi_encode().into(),
            )
            .await?;
        Gov::proposalCountCall::abi_decode_returns(&output).map_err(bad("proposalCount"))
    }

    /// Proposal `id` as of the latest block.
    pub async fn proposal(&self, id: ProposalId) -> Result<Proposal, ClientError> {
        let output = self
            .node
            .call(
                GOVERNANCE_ADDRESS,
                Gov::proposalCall { id: id.0 }.abi_encode().into(),
            )
            .await?;
        let p = Gov::proposalCall::abi_decode_returns(&output).map_err(bad("proposal"))?;
        Ok(Proposal {
            id,
            proposer: p.proposer,
            proposer_identity: IdentityId(p.proposerIdentity),
            created: Height(p.created),
            expires: Height(p.expires),
            status: ProposalStatus::from_code(p.status).ok_or(ClientError::BadAnswer {
                method: "proposal",
                detail: format!("status {} is unknown", p.status),
            })?,
            tally: Tally {
                approvals: p.approvals,
                rejections: p.rejections,
            },
            action: p.action,
        })
    }

    /// Every proposal, newest first.
    pub async fn list(&self) -> Result<Vec<Proposal>, ClientError> {
        let mut proposals = Vec::new();
        for id in (1..=self.count().await?).rev() {
            proposals.push(self.proposal(ProposalId(id)).await?);
        }
        Ok(proposals)
    }
}

fn bad(method: &'static str) -> impl Fn(alloy_sol_types::Error) -> ClientError {
    move |error| ClientError::BadAnswer {
        method,
        detail: error.to_string(),
    }
}

fn event(data: &alloy_primitives::LogData) -> Option<GovernanceEvent> {
    let topic = *data.topics().first()?;
    Some(match topic {
        Gov::Proposed::SIGNATURE_HASH => {
            let e = Gov::Proposed::decode_log_data(data).ok()?;
            GovernanceEvent::Proposed {
                id: ProposalId(e.id),
                expires: Height(e.expires),
            }
        }
        Gov::Voted::SIGNATURE_HASH => {
            let e = Gov::Voted::decode_log_data(data).ok()?;
            GovernanceEvent::Voted {
                id: ProposalId(e.id),
                voter: e.voter,
                identity: IdentityId(e.identity),
                approve: e.approve,
                weight: e.weight,
            }
        }
        Gov::Executed::SIGNATURE_HASH => {
            GovernanceEvent::Executed(ProposalId(Gov::Executed::decode_log_data(data).ok()?.id))
        }
        Gov::Rejected::SIGNATURE_HASH => {
            GovernanceEvent::Rejected(ProposalId(Gov::Rejected::decode_log_data(data).ok()?.id))
        }
        Gov::Failed::SIGNATURE_HASH => {
            let e = Gov::Failed::decode_log_data(data).ok()?;
            GovernanceEvent::Failed {
                id: ProposalId(e.id),
                reason: e.reason,
            }
        }
        _ => return None,
    })
}

/// How soon a key's registration ends, as `Node::registration_end` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationEnd {
    /// The first block its transactions are refused in.
    pub until: Height,
    /// Blocks from the latest block to then (0: refused already).
    pub blocks_left: u64,
}

impl Node {
    /// When `account`'s registration ends, if it does (a governed chain, a registered
    /// account with a validity window). A chain without a registry, or an account without an
    /// end, gives `None`.
    pub async fn registration_end(
        &self,
        account: Address,
    ) -> Result<Option<RegistrationEnd>, ClientError> {
        use trellis_governance::{REGISTRY_ADDRESS, contracts::abi::ITrellisRegistry};
        let input = ITrellisRegistry::accountOfCall { account }.abi_encode();
        let output = match self.call(REGISTRY_ADDRESS, input.into()).await {
            Ok(output) => output,
            // No registry on this chain: nothing expires.
            Err(ClientError::Refused(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let record = ITrellisRegistry::accountOfCall::abi_decode_returns(&output).map_err(|e| {
            ClientError::Refused(format!("the registry's answer does not decode: {e}"))
        })?;
        if !record.registered || record.validUntil == 0 {
            return Ok(None);
        }
        let tip = self.block_number().await?;
        Ok(Some(RegistrationEnd {
            until: Height(record.validUntil),
            blocks_left: record.validUntil.saturating_sub(tip),
        }))
    }
}
