//! `propose_freeze`: a rule's alarm about an account becomes a governance proposal to freeze
//! it, signed by the operator's governor account (`risk_operator_key` in node.toml) and sent
//! through this node's own JSON-RPC API, as `trellis gov propose freeze` would. The other
//! governors still decide: nothing is frozen until the proposal passes.
//!
//! Proposals are made one at a time by a task of their own (each waits for its block); at
//! most [`QUEUE`] wait, and an account is proposed once per run of the node.

use alloy_primitives::Address;
use commonware_runtime::{Spawner as _, telemetry::metrics::Counter, tokio};
use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
};
use trellis_client::{GovernanceClient, Node};
use trellis_crypto::TxSigner;
use trellis_governance::{AccountStatus, contracts::Action};

/// Proposals that may wait.
const QUEUE: usize = 16;
/// Blocks a freeze proposal stays open for votes.
pub const VOTING_BLOCKS: u64 = 1_000;
/// Accounts remembered as proposed, at most.
const REMEMBERED: usize = 10_000;

/// The owner's side: which accounts were proposed, and where proposals go.
pub(crate) struct Freezes {
    queue: Option<::tokio::sync::mpsc::Sender<Address>>,
    proposed: HashSet<Address>,
    dropped: Counter,
}

/// What the proposing task counts.
pub(crate) struct FreezeMetrics {
    pub proposed: Counter,
    pub failed: Counter,
    pub dropped: Counter,
}

impl Freezes {
    /// Starts the proposing task if the node has an operator key; `api` is where this node's
    /// JSON-RPC server answers, set once it listens.
    pub fn start(
        context: tokio::Context,
        operator: Option<Arc<dyn TxSigner>>,
        api: Arc<OnceLock<OwnApi>>,
        audit: crate::audit::Audit,
        metrics: FreezeMetrics,
    ) -> Self {
        let Some(operator) = operator else {
            return Self {
                queue: None,
                proposed: HashSet::new(),
                dropped: metrics.dropped,
            };
        };
        tracing::info!(operator = %operator.address(), "risk control proposes freezes as this account");
        let (queue, mut accounts) = ::tokio::sync::mpsc::channel::<Address>(QUEUE);
        let (proposed, failed) = (metrics.proposed, metrics.failed);
        context.spawn(move |_| async move {
            while let Some(account) = accounts.recv().await {
                match propose(api.get(), operator.as_ref(), account).await {
                    Ok(detail) => {
                        proposed.inc();
                        let record = serde_json::json!({ "account": account, "proposal": detail });
                        audit.record("freeze_proposed", record);
                        tracing::warn!(%account, "risk control proposed freezing {account}: {detail}");
                    }
                    Err(error) => {
                        failed.inc();
                        let record = serde_json::json!({ "account": account, "error": error });
                        audit.record("freeze_not_proposed", record);
                        tracing::error!(%account, "risk control could not propose freezing {account}: {error}");
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

    /// Proposes freezing `account`, once.
    pub fn propose(&mut self, account: Address) {
        let Some(queue) = &self.queue else {
            tracing::warn!(
                %account,
                "a rule asks to propose freezing {account}, but node.toml names no risk_operator_key: a governor proposes it (`trellis gov propose freeze {account}`)"
            );
            return;
        };
        if self.proposed.len() >= REMEMBERED {
            self.proposed.clear();
        }
        if !self.proposed.insert(account) {
            return;
        }
        if queue.try_send(account).is_err() {
            self.dropped.inc();
            self.proposed.remove(&account);
            tracing::error!(%account, "too many freeze proposals waiting: this one is dropped");
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

/// One proposal through the node's own API; what it did, or why not.
async fn propose(
    api: Option<&OwnApi>,
    operator: &dyn TxSigner,
    account: Address,
) -> Result<String, String> {
    let api = api.ok_or("the node's API is not listening yet")?;
    let (_, token) = trellis_client::api_token(operator, api.chain_id, TOKEN_LIFETIME)
        .map_err(|e| format!("signing the API token: {e}"))?;
    let node = Node::with_token(&api.url, Some(&token)).map_err(|e| e.to_string())?;
    let action = Action::SetAccountStatus {
        account,
        status: AccountStatus::Frozen,
    };
    let decided = GovernanceClient::new(&node)
        .propose(operator, &action, VOTING_BLOCKS)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "transaction {} in block {}: {:?}",
        decided.tx, decided.block, decided.events
    ))
}
