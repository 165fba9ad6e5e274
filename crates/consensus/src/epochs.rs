//! Epochs: spans of blocks each run by one validator set.
//!
//! The ledger decides who validates each epoch (chain state, changed by governance); the set of
//! epoch `e` is fixed once the last block of epoch `e - 1` (its *boundary*) is final. Consensus
//! learns it from [`Ledger::validators`](crate::Ledger::validators) when the finalizer reports
//! a boundary, and then:
//! - [`Schemes`] gains the epoch's signing (or, outside the set, verifying) scheme, which
//!   marshal and the epoch's simplex engine use;
//! - the p2p layer tracks the epoch's validators ([`PeerSets`]): new ones may connect, removed
//!   ones are dropped once their last epoch is behind;
//! - a validator starts the epoch's simplex engine (`orchestrator.rs`).

use crate::scheme::{Scheme, Signing};
use crate::{
    block::ConsensusBlock,
    ledger::{Ledger, Member},
};
use commonware_codec::DecodeExt as _;
use commonware_consensus::types::FixedEpocher;
use commonware_cryptography::{
    certificate::{Provider, Scheme as _, Scoped},
    ed25519::PublicKey,
};
use commonware_utils::ordered::Set;
use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};
use trellis_crypto::ValidatorSigner;
use trellis_types::{BlockHash, Epoch, EpochLength, Height, ValidatorId};

/// Where consensus tells the p2p layer which validators and full nodes an epoch has. Called
/// once per epoch, in increasing order, before the epoch's engine starts.
pub trait PeerSets: Clone + Send + Sync + 'static {
    fn track(&mut self, epoch: Epoch, validators: &[Member], full_nodes: &[Member]);
}

/// commonware's view of the chain's epochs.
pub(crate) fn epocher(length: EpochLength) -> FixedEpocher {
    FixedEpocher::new(length.0)
}

/// What the finalizer and the p2p channels tell the epoch's owner.
#[derive(Debug)]
pub(crate) enum Event {
    /// `block`, the last of the epoch before `next`, is final: `next`'s validators are known.
    Boundary { next: Epoch, block: BlockHash },
    /// `from` sent a consensus message of `epoch`, which this node has not entered.
    Ahead { epoch: Epoch, from: PublicKey },
}

/// The consensus scheme of every epoch this node knows: for marshal (checking finalizations of
/// any epoch) and each epoch's simplex engine. Written by the epoch's owner (the orchestrator,
/// or a full node's follower) when it enters an epoch; read by marshal. The lock is held for a
/// map lookup or insert only.
#[derive(Clone)]
pub struct Schemes {
    namespace: Arc<[u8]>,
    signer: Option<ValidatorSigner>,
    signing: Option<Signing>,
    epochs: Arc<RwLock<BTreeMap<Epoch, Arc<Scheme>>>>,
}

impl Schemes {
    /// `signer`: this validator's key (a full node has none).
    /// The chain's namespace every consensus signature is bound to.
    pub(crate) fn namespace(&self) -> &[u8] {
        &self.namespace
    }

    pub(crate) fn new(namespace: &[u8], signer: Option<ValidatorSigner>) -> Self {
        Self {
            namespace: namespace.into(),
            signer,
            signing: None,
            epochs: Arc::default(),
        }
    }

    /// These schemes, this validator's signatures measured in `signing`.
    pub(crate) fn measured(mut self, signing: Signing) -> Self {
        self.signing = Some(signing);
        self
    }

    /// Records `epoch`'s validators; returns the scheme and whether this node signs in it.
    /// Forgets epochs more than one before it (their certificates are stored already).
    pub(crate) fn enter(&self, epoch: Epoch, validators: &[Member]) -> (Arc<Scheme>, bool) {
        let set = participants(validators);
        let signing = self
            .signer
            .clone()
            .and_then(|key| Scheme::signer(&self.namespace, set.clone(), key))
            .map(|scheme| scheme.measured(self.signing.clone()));
        let signs = signing.is_some();
        let scheme = Arc::new(signing.unwrap_or_else(|| Scheme::verifier(&self.namespace, set)));
        let mut epochs = self.epochs.write().expect("schemes lock poisoned");
        epochs.insert(epoch, scheme.clone());
        epochs.retain(|known, _| known.0 + 1 >= epoch.0);
        (scheme, signs)
    }

    pub(crate) fn get(&self, epoch: Epoch) -> Option<Arc<Scheme>> {
        let epochs = self.epochs.read().expect("schemes lock poisoned");
        epochs.get(&epoch).cloned()
    }
}

impl Provider for Schemes {
    type Scope = commonware_consensus::types::Epoch;
    type Scheme = Scheme;

    fn scoped(&self, scope: Self::Scope) -> Option<Scoped<Scheme>> {
        let epoch = Epoch(scope.get());
        let scheme = self.get(epoch)?;
        let signs = scheme.me().is_some();
        Some(if signs {
            Scoped::scheme(scheme)
        } else {
            Scoped::verifier(scheme)
        })
    }
}

/// The consensus participants of `validators`, ordered by key as simplex requires.
pub(crate) fn participants(validators: &[Member]) -> Set<PublicKey> {
    Set::from_iter_dedup(validators.iter().map(|member| public_key(&member.key)))
}

fn public_key(key: &ValidatorId) -> PublicKey {
    PublicKey::decode(key.0.to_vec()).expect("the ledger records only valid validator keys")
}

/// The epoch a node runs after a restart: the one after the last block it applied.
pub(crate) fn resumed(length: EpochLength, applied: Height) -> Epoch {
    length.epoch_of(applied.next())
}

/// Learns `epoch`'s validators from the ledger, records their scheme and has the p2p layer
/// track them with the epoch's full nodes; returns them with whether this node signs in the epoch.
pub(crate) async fn learn<L: Ledger, D: PeerSets>(
    ledger: &L,
    schemes: &Schemes,
    peers: &mut D,
    epoch: Epoch,
) -> (Vec<Member>, Arc<Scheme>, bool) {
    let validators = ledger
        .validators(epoch)
        .await
        .unwrap_or_else(|| panic!("epoch {epoch} is entered before its validators are final"));
    let (scheme, signs) = schemes.enter(epoch, &validators);
    let full_nodes = ledger.full_nodes(epoch).await;
    peers.track(epoch, &validators, &full_nodes);
    (validators, scheme, signs)
}

/// The boundary event for a finalized `block`, if it is the last of its epoch.
pub(crate) fn boundary(length: EpochLength, block: &ConsensusBlock) -> Option<Event> {
    let height = block.height();
    length.is_last(height).then(|| Event::Boundary {
        next: length.next_epoch(height),
        block: block.hash(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer as _, ed25519::PrivateKey};

    fn member(seed: u64) -> Member {
        let key = PrivateKey::from_seed(seed).public_key();
        Member {
            key: crate::block::validator_id(&key),
            p2p: None,
        }
    }

    #[test]
    fn a_node_signs_only_in_epochs_that_list_it() {
        let schemes = Schemes::new(
            b"test",
            Some(ValidatorSigner::memory(PrivateKey::from_seed(0))),
        );
        let four: Vec<Member> = (0..4).map(member).collect();
        let others: Vec<Member> = (1..5).map(member).collect();
        let (_, signs) = schemes.enter(Epoch(0), &four);
        assert!(signs);
        let (_, signs) = schemes.enter(Epoch(1), &others);
        assert!(!signs);
        let scope = commonware_consensus::types::Epoch::new(0);
        assert!(schemes.scoped(scope).unwrap().into_scheme().is_some());
        let scope = commonware_consensus::types::Epoch::new(1);
        assert!(schemes.scoped(scope).unwrap().into_scheme().is_none());
        schemes.enter(Epoch(2), &four);
        assert!(
            schemes.get(Epoch(0)).is_none(),
            "two epochs back is forgotten"
        );
        assert!(schemes.get(Epoch(1)).is_some());
    }
}
