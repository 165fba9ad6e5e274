//! An equivocating validator: a process holding a validator's key (that validator's own node
//! stopped) joins the network in its place and, each time it hears the others notarize a new
//! view, signs two notarizes for two different blocks of the view after it and sends both to
//! every validator. They arrive before that view has its certificate, so an honest validator
//! holds both signed votes: evidence.

use super::hostile::join;
use alloy_primitives::B256;
use commonware_codec::{DecodeExt as _, Encode as _, ReadExt as _, varint::UInt};
use commonware_consensus::{
    simplex::types::{Notarize, Proposal, Vote},
    types::{Round, View},
};
use commonware_p2p::{Receiver as _, Recipients, Sender as _};
use commonware_utils::ordered::Set;
use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use trellis_consensus::{PublicKey, Scheme, engine::channel};
use trellis_crypto::ValidatorSigner;
use trellis_node::genesis_file::GenesisFile;
use trellis_types::BlockHash;

/// Equivocates as the validator whose key is in `key_file`, listening at its address `listen`,
/// with signatures bound to the chain's `namespace`, until `stop`; returns how many pairs of
/// conflicting votes it sent.
pub fn equivocate(
    genesis: &Path,
    key_file: &Path,
    listen: SocketAddr,
    namespace: &[u8],
    stop: Arc<AtomicBool>,
) -> u64 {
    let validators = GenesisFile::load(genesis).unwrap().peers().unwrap();
    let set = Set::from_iter_dedup(
        validators
            .iter()
            .map(|p| PublicKey::decode(p.id.0.to_vec()).unwrap()),
    );
    let key = trellis_node::keyfile::load(key_file).unwrap();
    let signer = ValidatorSigner::memory(key.signer().clone());
    let scheme = Scheme::signer(namespace, set, signer).expect("the key is a validator's");
    join(
        genesis,
        key_file,
        listen,
        &[channel::VOTES],
        |_, mut channels| async move {
            let (mut sender, mut receiver) = channels.remove(0);
            let (mut pairs, mut last) = (0u64, View::zero());
            while !stop.load(Ordering::SeqCst) {
                let heard =
                    ::tokio::time::timeout(Duration::from_millis(200), receiver.recv()).await;
                let Ok(Ok((_, message))) = heard else {
                    continue;
                };
                let mut buf = message;
                let Ok(epoch) = UInt::<u64>::read(&mut buf) else {
                    continue;
                };
                let Ok(Vote::Notarize(notarize)) = Vote::<Scheme, BlockHash>::decode(buf) else {
                    continue;
                };
                let round = notarize.proposal.round;
                if round.view() <= last {
                    continue;
                }
                last = round.view();
                let next = Round::new(round.epoch(), round.view().next());
                for payload in [0xe1, 0xe2] {
                    let proposal =
                        Proposal::new(next, round.view(), BlockHash(B256::repeat_byte(payload)));
                    let vote = Notarize::sign(&scheme, proposal).expect("the scheme signs");
                    let mut frame = epoch.encode().to_vec();
                    frame.extend_from_slice(&Vote::Notarize(vote).encode());
                    let _ = sender.send(Recipients::All, frame, false);
                }
                pairs += 1;
            }
            pairs
        },
    )
}
