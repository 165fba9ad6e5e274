//! One validator: its chain, its p2p network and its consensus (simplex and marshal), on the
//! tokio runtime.

use crate::{
    NodeError,
    network::{self, NodeSetup},
};
use commonware_runtime::{Handle, Supervisor as _, tokio};
use trellis_chain::Chain;
use trellis_consensus::Config;
use trellis_types::BlockLimits;

/// A started node (a validator or a full node).
pub struct Running {
    pub chain: Chain<tokio::Context>,
    /// Ends only if consensus stops.
    pub consensus: Handle<()>,
}

/// Opens the chain and starts p2p and consensus for one validator.
pub async fn start(context: &tokio::Context, setup: NodeSetup) -> Result<Running, NodeError> {
    let me = setup.key.validator_id();
    // A validator added by governance is not in the genesis file: its node.toml names where it
    // listens.
    let listed = setup.peers.iter().find(|p| p.id == me).map(|p| p.p2p);
    let listen = listed
        .or(setup.listen)
        .ok_or(NodeError::NotAValidator(me))?;
    let joined = network::join(context, &setup, listen).await?;
    let config = Config {
        signer: setup.key.clone(),
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
    })
}
