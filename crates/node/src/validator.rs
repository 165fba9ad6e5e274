//! One validator: its chain, its p2p network and its consensus (simplex and marshal), on the
//! tokio runtime.

use crate::rotation::Rotated;
use crate::{
    NodeError,
    network::{self, NodeSetup},
};
use ::tokio::sync::oneshot;
use commonware_runtime::{Handle, Supervisor as _, tokio};
use trellis_chain::Chain;
use trellis_consensus::Config;
use trellis_types::BlockLimits;

/// A started node (a validator or a full node).
pub struct Running {
    pub chain: Chain<tokio::Context>,
    /// Ends only if consensus stops.
    pub consensus: Handle<()>,
    /// Told when the chain moves this validator's seat to its successor key: the node must
    /// restart with it (`rotation.rs`).
    pub rotated: Option<oneshot::Receiver<Rotated>>,
}

/// Opens the chain and starts p2p and consensus for one validator.
pub async fn start(context: &tokio::Context, setup: NodeSetup) -> Result<Running, NodeError> {
    let me = setup.key.validator_id();
    // A validator added by governance is not in the genesis file: its node.toml names where it
    // listens. A genesis validator's successor key listens where it did.
    let keys = std::iter::once(&setup.key).chain(&setup.next_key);
    let ids: Vec<_> = keys.map(|key| key.validator_id()).collect();
    let listed = setup
        .peers
        .iter()
        .find(|p| ids.contains(&p.id))
        .map(|p| p.p2p);
    let listen = listed
        .or(setup.listen)
        .ok_or(NodeError::NotAValidator(me))?;
    let joined = network::join(context, &setup, listen).await?;
    let rotated = joined.next_key.as_ref().map(|next| {
        crate::rotation::watch(
            context,
            joined.chain.clone(),
            joined.key.validator_id(),
            next.validator_id(),
        )
    });
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
    };
    let consensus = trellis_consensus::start(
        context
            .child("consensus")
            .with_attribute("node", &setup.partition_prefix),
        config,
        joined.oracle,
        joined.blocker,
        joined.channels,
        joined.peers,
    )
    .await?;
    Ok(Running {
        chain: joined.chain,
        consensus,
        rotated,
    })
}
