//! One full node: it follows the chain over the same authenticated p2p links as the
//! validators, checks every finalization certificate against the validator set, executes every
//! block, and forwards the transactions its clients submit to the validators by gossip. It
//! never votes.

use crate::{
    NodeError,
    network::{self, NodeSetup},
    validator::Running,
};
use commonware_runtime::{Supervisor as _, tokio};
use trellis_consensus::FollowerConfig;
use trellis_governance::NodeRole;
use trellis_types::BlockLimits;

/// Opens the chain and starts p2p and the follower for one full node.
pub async fn start(context: &tokio::Context, setup: NodeSetup) -> Result<Running, NodeError> {
    let me = setup.key.validator_id();
    let listen = setup
        .listen_among(&setup.full_nodes)
        .ok_or(NodeError::NotAFullNode(me))?;
    let joined = network::join(context, &setup, (NodeRole::FullNode, listen)).await?;
    let next = joined.next_key.as_ref().map(|next| next.validator_id());
    let rotated = crate::rotation::watch_key(
        context,
        &joined.chain,
        NodeRole::FullNode,
        (joined.key.validator_id(), next),
    );
    let config = FollowerConfig {
        public_key: commonware_cryptography::Signer::public_key(&joined.key),
        epoch_length: joined.chain.epoch_length(),
        namespace: joined.namespace,
        partition_prefix: setup.partition_prefix.clone(),
        genesis: joined.genesis_block,
        limits: BlockLimits::default(),
        ledger: joined.chain.clone(),
    };
    let consensus = trellis_consensus::follow(
        setup.store(
            context
                .child("follower")
                .with_attribute("node", &setup.partition_prefix),
        ),
        config,
        joined.oracle,
        joined.blocker,
        joined.channels,
        joined.peers,
    )
    .await;
    Ok(Running {
        chain: joined.chain,
        consensus,
        rotated,
        certificates: None,
    })
}
