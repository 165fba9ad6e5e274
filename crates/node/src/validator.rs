//! One validator: its chain, its p2p network and its consensus (simplex and marshal), on the
//! tokio runtime.

use crate::rotation::Rotated;
use crate::{
    NodeError,
    network::{self, NodeContext, NodeSetup},
};
use ::tokio::sync::oneshot;
use commonware_runtime::{Handle, Supervisor as _, tokio};
use std::{future::Future, pin::Pin, sync::Arc};
use trellis_chain::Chain;
use trellis_consensus::Config;
use trellis_governance::NodeRole;
use trellis_rpc::certificates::{CertificateSource, Certificates, Finalization};
use trellis_types::{BlockLimits, Height};

/// A started node (a validator or a full node).
pub struct Running {
    pub chain: Chain<NodeContext>,
    /// Ends only if consensus stops.
    pub consensus: Handle<()>,
    /// Told when the chain moves this validator's seat to its successor key: the node must
    /// restart with it (`rotation.rs`).
    pub rotated: Option<oneshot::Receiver<Rotated>>,
    /// The finalization certificates consensus archived, for the JSON-RPC server (a
    /// validator's; a full node's follower serves none).
    pub certificates: Option<Certificates>,
}

/// Opens the chain and starts p2p and consensus for one validator.
pub async fn start(context: &tokio::Context, setup: NodeSetup) -> Result<Running, NodeError> {
    let me = setup.key.validator_id();
    let listen = setup
        .listen_among(&setup.peers)
        .ok_or(NodeError::NotAValidator(me))?;
    let joined = network::join(context, &setup, (NodeRole::Validator, listen)).await?;
    let next = joined.next_key.as_ref().map(|next| next.validator_id());
    let rotated = crate::rotation::watch_key(
        context,
        &joined.chain,
        NodeRole::Validator,
        (joined.key.validator_id(), next),
    );
    let config = Config {
        signer: joined.key.clone(),
        epoch_length: joined.chain.epoch_length(),
        namespace: joined.namespace,
        partition_prefix: setup.partition_prefix.clone(),
        genesis: joined.genesis_block,
        limits: BlockLimits::default(),
        timeouts: setup.timeouts,
        timing: setup.timing,
        ledger: joined.chain.clone(),
        // The evidence log passes each fault on to risk control.
        fault_sink: match (&setup.evidence, &setup.risk) {
            (Some(log), _) => Some(Arc::new(log.clone()) as Arc<dyn trellis_consensus::FaultSink>),
            (None, Some(risk)) => Some(Arc::new(risk.clone()) as _),
            (None, None) => None,
        },
    };
    let started = trellis_consensus::start(
        setup.store(
            context
                .child("consensus")
                .with_attribute("node", &setup.partition_prefix),
        ),
        config,
        joined.oracle,
        joined.blocker,
        joined.channels,
        joined.peers,
    )
    .await?;
    let certificates = Certificates(Arc::new(Archived(started.certificates)));
    Ok(Running {
        chain: joined.chain,
        consensus: started.handle,
        rotated,
        certificates: Some(certificates),
    })
}

/// Consensus's archived certificates, as the JSON-RPC server reads them.
struct Archived(trellis_consensus::Certificates<Chain<NodeContext>>);

impl CertificateSource for Archived {
    fn finalization(
        &self,
        height: Height,
    ) -> Pin<Box<dyn Future<Output = Option<Finalization>> + Send + '_>> {
        Box::pin(async move {
            let record = self.0.finalization(height).await?;
            Some(Finalization {
                epoch: record.epoch.0,
                view: record.view.0,
                block: record.block.0,
                signers: record.signers,
                encoded: record.encoded.into(),
            })
        })
    }
}
