//! A hostile peer: a process that holds a key the genesis admits (a full node's), connects to
//! the validators over the real encrypted p2p links, and sends them what no honest node would.

use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{
    Address, AddressableManager as _, AddressableTrackedPeers, Recipients, Sender as _,
    authenticated::lookup,
};
use commonware_runtime::{Clock as _, Quota, Runner as _, Supervisor as _, tokio};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::{future::Future, net::SocketAddr, path::Path, time::Duration};
use trellis_consensus::PublicKey;
use trellis_node::genesis_file::{GenesisFile, Peer};

/// What a hostile peer sends.
#[derive(Clone, Debug)]
pub struct Junk {
    pub channel: u64,
    pub message: Vec<u8>,
}

fn map(peers: &[Peer]) -> Map<PublicKey, Address> {
    use commonware_codec::DecodeExt as _;
    peers
        .iter()
        .map(|p| (PublicKey::decode(p.id.0.to_vec()).unwrap(), p.p2p.into()))
        .collect::<Vec<_>>()
        .try_into()
        .unwrap()
}

/// Connects as the full node whose key is in `key_file`, listening on `listen`, and sends
/// `junk` to every validator it is connected to every 100 ms for `duration`; blocks meanwhile.
pub fn send_junk(
    genesis: &Path,
    key_file: &Path,
    listen: SocketAddr,
    junk: Junk,
    duration: Duration,
) {
    join(
        genesis,
        key_file,
        listen,
        &[junk.channel],
        |context, mut channels| async move {
            let (mut sender, _receiver) = channels.remove(0);
            let until = context.current() + duration;
            while context.current() < until {
                let _ = sender.send(Recipients::All, junk.message.clone(), false);
                context.sleep(Duration::from_millis(100)).await;
            }
        },
    );
}

/// One registered channel: what is sent on it, what arrives.
pub type Channel = (
    lookup::Sender<PublicKey, tokio::Context>,
    lookup::Receiver<PublicKey>,
);

/// Joins the network of `genesis` as the holder of the key in `key_file` (one the genesis
/// admits), listening on `listen`, with `channels` registered; runs `act` on a runtime of its
/// own and returns what it returns (blocks meanwhile).
pub fn join<F, Fut, R>(
    genesis: &Path,
    key_file: &Path,
    listen: SocketAddr,
    channels: &[u64],
    act: F,
) -> R
where
    F: FnOnce(tokio::Context, Vec<Channel>) -> Fut,
    Fut: Future<Output = R>,
{
    let genesis = GenesisFile::load(genesis).unwrap();
    let validators = genesis.peers().unwrap();
    let full_nodes = genesis.full_node_peers().unwrap();
    let key = trellis_node::keyfile::load(key_file).unwrap();
    let limits = trellis_types::BlockLimits::default();
    // Room to send more than a node accepts.
    let max = trellis_consensus::engine::max_message_size(validators.len() as u32, &limits)
        .saturating_mul(2);
    let runner = tokio::Runner::new(tokio::Config::default().with_worker_threads(1));
    let channels = channels.to_vec();
    runner.start(|context| async move {
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: key.signer().clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let config = lookup::Config::local(
            handshake,
            trellis_node::network::P2P_NAMESPACE,
            listen,
            NZUsize!(validators.len() + full_nodes.len()),
            max,
            NZUsize!(64),
        );
        let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), config);
        let _ = oracle.track(
            0,
            AddressableTrackedPeers::new(map(&validators), map(&full_nodes)),
        );
        let registered: Vec<Channel> = channels
            .iter()
            .map(|channel| network.register(*channel, Quota::per_second(NZU32!(1_024))))
            .collect();
        network.start();
        act(context, registered).await
    })
}
