//! `trellis_getEvidence`: the conflicting votes this node's consensus caught validators
//! signing, each as evidence anyone can check offline (`trellis verify-evidence`). The node
//! plugs its evidence log in; a node without one (none is kept) says so.

use crate::error::{Answer, rejected};
use alloy_primitives::Bytes;
use serde::{Deserialize, Serialize};
use std::{future::Future, pin::Pin, sync::Arc};

/// One piece of evidence, as the API serves it. `evidence` alone proves the rest: the other
/// fields say what it is for readers, and a verifier checks them against it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRecord {
    /// `conflicting_notarize`, `conflicting_finalize` or `nullify_finalize`.
    pub kind: String,
    pub epoch: u64,
    pub view: u64,
    /// The accused validator's ed25519 key.
    pub validator: Bytes,
    /// When this node saw it: milliseconds since the Unix epoch, by its clock.
    pub seen_at_ms: u64,
    /// The two signed messages with the namespace and the epoch's validators, encoded.
    pub evidence: Bytes,
}

/// A reader of the evidence a node kept.
pub trait EvidenceSource: Send + Sync + 'static {
    /// Every piece, oldest first; `None` if the log has stopped.
    fn evidence(&self) -> Pin<Box<dyn Future<Output = Option<Vec<EvidenceRecord>>> + Send + '_>>;
}

/// The node's evidence, as the server holds it.
#[derive(Clone)]
pub struct EvidenceBook(pub Arc<dyn EvidenceSource>);

impl std::fmt::Debug for EvidenceBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvidenceBook")
    }
}

/// The answer to `trellis_getEvidence`.
pub async fn evidence(source: Option<&EvidenceBook>) -> Answer<Vec<EvidenceRecord>> {
    let Some(EvidenceBook(source)) = source else {
        return Err(rejected(
            "this node keeps no evidence: a full node does not see votes; ask a validator",
        ));
    };
    source
        .evidence()
        .await
        .ok_or_else(|| crate::error::internal("the evidence log has stopped"))
}
