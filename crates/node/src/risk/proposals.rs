//! The governance proposals risk rules ask for: `propose_freeze` (an account's alarm becomes a
//! proposal to freeze it) and `propose_removal` (a validator caught signing conflicting votes
//! becomes a proposal to remove it from the validator set). They are signed by the operator's
//! governor account (`risk_operator_key` in node.toml) and sent through this node's own
//! JSON-RPC API, as `trellis gov propose` would. The other governors still decide: nothing is
//! frozen or removed until the proposal passes.
//!
//! Proposals are made one at a time by a task of their own (each waits for its block); at
//! most [`QUEUE`] wait, and each motion is proposed once per run of the node.

use alloy_primitives::Address;
use commonware_runtime::{Spawner as _, telemetry::metrics::Counter, tokio};
use std::{
    collections::HashSet,
    fmt,
    sync::{Arc, OnceLock},
};
use trellis_client::{GovernanceClient, Node};
use trellis_crypto::TxSigner;
use trellis_governance::{AccountStatus, contracts::Action};
use trellis_types::ValidatorId;

/// Proposals that may wait.
const QUEUE: usize = 16;
/// Blocks a proposal stays open for votes.
pub const VOTING_BLOCKS: u64 = 1_000;
/// Motions remembered as proposed, at most.
const REMEMBERED: usize = 10_000;

/// What a rule asks governance for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Motion {
    Freeze(Address),
    RemoveValidator(ValidatorId),
}

impl Motion {
    fn action(self) -> Action {
        match self {
            Self::Freeze(account) => Action::SetAccountStatus {
                account,
                status: AccountStatus::Frozen,
            },
            Self::RemoveValidator(key) => Action::RemoveValidator { key },
        }
    }

    /// The audit log's names for this motion proposed, and not.
    fn audit_kinds(self) -> (&'static str, &'static str) {
        match self {
            Self::Freeze(_) => ("freeze_proposed", "freeze_not_proposed"),
            Self::RemoveValidator(_) => ("removal_proposed", "removal_not_proposed"),
        }
    }

    fn audit_record(self) -> serde_json::Value {
        match self {
            Self::Freeze(account) => serde_json::json!({ "account": account }),
            Self::RemoveValidator(key) => serde_json::json!({ "validator": key.to_string() }),
        }
    }

    /// What a governor would type to propose it by hand.
    fn by_hand(self) -> String {
        match self {
            Self::Freeze(account) => format!("trellis gov propose freeze {account}"),
            Self::RemoveValidator(key) => format!("trellis gov propose remove-validator {key}"),
        }
    }
}

impl fmt::Display for Motion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Freeze(account) => write!(f, "freezing account {account}"),
            Self::RemoveValidator(key) => write!(f, "removing validator {key}"),
        }
    }
}

/// The owner's side: which motions were proposed, and where proposals go.
pub(crate) struct Proposals {
    queue: Option<::tokio::sync::mpsc::Sender<Motion>>,
    proposed: HashSet<Motion>,
    dropped: Counter,
}

/// What the proposing task counts.
pub(crate) struct ProposalMetrics {
    pub proposed: Counter,
    pub failed: Counter,
    pub dropped: Counter,
}

impl Proposals {
    /// Starts the proposing task if the node has an operator key; `api` is where this node's
    /// JSON-RPC server answers, set once it listens.
    pub fn start(
        context: tokio::Context,
        operator: Option<Arc<dyn TxSigner>>,
        api: Arc<OnceLock<OwnApi>>,
        audit: crate::audit::Audit,
        metrics: ProposalMetrics,
    ) -> Self {
        let Some(operator) = operator else {
            return Self {
                queue: None,
                proposed: HashSet::new(),
                dropped: metrics.dropped,
            };
        };
        tracing::info!(operator = %operator.address(), "risk control makes the proposals its rules ask for as this account");
        let (queue, mut motions) = ::tokio::sync::mpsc::channel::<Motion>(QUEUE);
        let (proposed, failed) = (metrics.proposed, metrics.failed);
        context.spawn(move |_| async move {
            while let Some(motion) = motions.recv().await {
                let (made, not_made) = motion.audit_kinds();
                let mut record = motion.audit_record();
                match propose(api.get(), operator.as_ref(), motion).await {
                    Ok(detail) => {
                        proposed.inc();
                        tracing::warn!("risk control proposed {motion}: {detail}");
                        record["proposal"] = detail.into();
                        audit.record(made, record);
                    }
                    Err(error) => {
                        failed.inc();
                        tracing::error!("risk control could not propose {motion}: {error}");
                        record["error"] = error.to_string().into();
                        audit.record(not_made, record);
                    }
                }
            }
        });
        Self {
            queue: Some(queue),
            proposed: HashSet::new(),
            dropped: metrics.dropped,
        }
    }

    /// Proposes `motion`, once.
    pub fn propose(&mut self, motion: Motion) {
        let Some(queue) = &self.queue else {
            tracing::warn!(
                "a rule asks to propose {motion}, but node.toml names no risk_operator_key: a governor proposes it (`{}`)",
                motion.by_hand()
            );
            return;
        };
        if self.proposed.len() >= REMEMBERED {
            self.proposed.clear();
        }
        if !self.proposed.insert(motion) {
            return;
        }
        if queue.try_send(motion).is_err() {
            self.dropped.inc();
            self.proposed.remove(&motion);
            tracing::error!("too many proposals waiting: {motion} is dropped");
        }
    }
}

/// Where this node's own API answers, and its chain: the operator's proposals go there with
/// an API token the operator's key signs (a node may ask every caller for one).
#[derive(Clone, Debug)]
pub(crate) struct OwnApi {
    pub url: String,
    pub chain_id: u64,
}

/// How long the token of one proposal stays valid: the proposal's round trips.
const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(600);

/// Why a proposal was not made.
#[derive(Debug, thiserror::Error)]
enum ProposalError {
    #[error("the node's API is not listening yet")]
    NotListening,
    #[error("signing the API token: {0}")]
    Token(#[from] trellis_crypto::DeviceFailure),
    #[error(transparent)]
    Client(#[from] trellis_client::ClientError),
}

/// One proposal through the node's own API; what it did, or why not.
async fn propose(
    api: Option<&OwnApi>,
    operator: &dyn TxSigner,
    motion: Motion,
) -> Result<String, ProposalError> {
    let api = api.ok_or(ProposalError::NotListening)?;
    let (_, token) = trellis_client::api_token(operator, api.chain_id, TOKEN_LIFETIME)?;
    let node = Node::with_token(&api.url, Some(&token))?;
    let decided = GovernanceClient::new(&node)
        .propose(operator, &motion.action(), VOTING_BLOCKS)
        .await?;
    Ok(format!(
        "transaction {} in block {}: {:?}",
        decided.tx, decided.block, decided.events
    ))
}
