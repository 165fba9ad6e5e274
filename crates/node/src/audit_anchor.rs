//! The audit log's head anchored on chain (node.toml's `[audit_anchor]`): every `every_secs`,
//! when the log grew, the node sends `AuditAnchors.anchor(log, seq, hash)` through its own API,
//! signed by the anchoring account, and records the anchor in the log itself. Once finalized,
//! an anchor cannot be rewritten: `trellis audit verify --anchors` then catches a log rewritten
//! even with the node's own key, or cut short.
//!
//! ```toml
//! [audit_anchor]
//! contract = "0x…"          # an AuditAnchors contract (contracts/src/AuditAnchors.sol)
//! key = "anchor.json"       # the account that sends the anchors (a key file or a pkcs11: URI)
//! # from = "0x…"            # which account of that file; passphrase_file opens it if sealed
//! # every_secs = 600        # how often the head is anchored, when the log grew
//! ```
//!
//! One task owns the anchoring; it reads the head the audit owner publishes and never blocks
//! the log. A failed anchor is recorded (`audit_anchor_failed`) and tried again next time.

use crate::{FileProblem, audit::Audit};
use alloy_primitives::Address;
use commonware_runtime::{
    Clock as _, Spawner as _, Supervisor as _, telemetry::metrics::MetricsExt as _, tokio,
};
use serde::Deserialize;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use trellis_audit::Head;
use trellis_client::{ClientError, Node};
use trellis_crypto::TxSigner;

/// How often the head is anchored by default.
const DEFAULT_EVERY_SECS: u64 = 600;
/// How long an anchor's transaction may take to be in a block.
const WAIT: Duration = Duration::from_secs(30);
/// How long the API token of one anchor stays valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(120);

/// `[audit_anchor]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorFile {
    contract: Address,
    key: String,
    #[serde(default)]
    from: Option<Address>,
    #[serde(default)]
    passphrase_file: Option<PathBuf>,
    #[serde(default)]
    every_secs: Option<u64>,
}

/// Anchoring, checked and with its key open.
pub struct AnchorSetup {
    pub contract: Address,
    pub key: Arc<dyn TxSigner>,
    pub every: Duration,
}

impl AnchorFile {
    /// Checks the settings and opens the key; paths are relative to `base`.
    pub fn open(&self, base: &Path) -> Result<AnchorSetup, FileProblem> {
        let every = self.every_secs.unwrap_or(DEFAULT_EVERY_SECS);
        if every == 0 {
            return Err(FileProblem::AnchorEveryZero);
        }
        let key = crate::signer::account_signer(
            base,
            &self.key,
            self.from,
            self.passphrase_file.as_deref(),
            FileProblem::AnchorKey,
        )?;
        Ok(AnchorSetup {
            contract: self.contract,
            key,
            every: Duration::from_secs(every),
        })
    }
}

/// Starts anchoring the head of `audit` through the node's API at `url` (chain `chain_id`).
pub fn start(
    context: &tokio::Context,
    setup: AnchorSetup,
    audit: Audit,
    url: String,
    chain_id: u64,
) {
    let context = context.child("audit_anchor");
    let sent = context.counter("sent", "Audit log heads anchored on chain");
    let failures = context.counter("failures", "Audit log heads that could not be anchored");
    tracing::info!(
        contract = %setup.contract,
        account = %setup.key.address(),
        every_secs = setup.every.as_secs(),
        "anchoring the audit log's head on chain"
    );
    context.spawn(move |context| async move {
        let heads = audit.head();
        // The head last anchored: the record of that anchor follows it, so the log "grew" only
        // when more than that record came after.
        let mut anchored: Option<u64> = None;
        loop {
            context.sleep(setup.every).await;
            let Some(head) = *heads.borrow() else {
                continue;
            };
            if anchored.is_some_and(|seq| head.seq <= seq + 1) {
                continue;
            }
            match anchor(&setup, &url, chain_id, head).await {
                Ok((tx, block)) => {
                    sent.inc();
                    anchored = Some(head.seq);
                    let detail = serde_json::json!({
                        "contract": setup.contract,
                        "seq": head.seq,
                        "hash": head.hash,
                        "tx": tx,
                        "block": block,
                    });
                    audit.record("audit_anchored", detail);
                    tracing::info!(seq = head.seq, %tx, block, "audit log head anchored");
                }
                Err(error) => {
                    failures.inc();
                    let error = error.to_string();
                    tracing::warn!(seq = head.seq, %error, "the audit log head was not anchored");
                    let detail = serde_json::json!({ "seq": head.seq, "error": error });
                    audit.record("audit_anchor_failed", detail);
                }
            }
        }
    });
}

/// Why an anchor was not sent.
#[derive(Debug, thiserror::Error)]
enum AnchorError {
    #[error(
        "no contract at {0}: deploy AuditAnchors (contracts/src/AuditAnchors.sol) there, or name its address in [audit_anchor]"
    )]
    NoContract(Address),
    #[error("the anchoring key did not sign the API token: {0}")]
    Signing(#[from] trellis_crypto::DeviceFailure),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Sends one anchor; its transaction and block.
async fn anchor(
    setup: &AnchorSetup,
    url: &str,
    chain_id: u64,
    head: Head,
) -> Result<(alloy_primitives::TxHash, u64), AnchorError> {
    let (_, token) = trellis_client::api_token(setup.key.as_ref(), chain_id, TOKEN_LIFETIME)?;
    let node = Node::with_token(url, Some(&token))?;
    if node.code(setup.contract).await?.is_empty() {
        return Err(AnchorError::NoContract(setup.contract));
    }
    let sent = node
        .anchor_audit_head(setup.key.as_ref(), setup.contract, head, WAIT)
        .await?;
    let block = sent.receipt.block_number.unwrap_or_default();
    Ok((sent.receipt.transaction_hash, block))
}
