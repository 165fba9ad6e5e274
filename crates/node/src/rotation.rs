//! A node key's rotation, as its node sees it (the chain's side is the registry's
//! `rotateValidator`): node.toml names the current key and the successor
//! (`next_validator_key`, or a full node's `next_full_node_key`); the node runs with whichever
//! key the running epoch's set (of validators, or of full nodes) lists.
//!
//! The p2p layer takes its identity once, when it starts, so the switch is a restart: when the
//! last block of an epoch whose successor lists the new key (and not the old) is final, the
//! node stops and starts again in place (same process id, same arguments), and from then on
//! runs with the new key. The other validators keep finalizing meanwhile: one seat of a set
//! that tolerates a fault is missing for the few seconds the restart takes.

use crate::{NodeError, encryption::NodeContext};
use commonware_runtime::telemetry::metrics::{EncodeLabelSet, GaugeFamily, MetricsExt as _};
use std::os::unix::process::CommandExt as _;
use tokio::sync::oneshot;
use tracing::{info, warn};
use trellis_chain::Chain;
use trellis_consensus::{Ledger as _, Member};
use trellis_crypto::ValidatorSigner;
use trellis_governance::{NodeRole, reporter};
use trellis_types::{Epoch, EpochLength, Height, ValidatorId};

/// The running epoch's set lists the successor key and not the one this node runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The first epoch of the successor key.
    pub epoch: Epoch,
    pub key: ValidatorId,
}

/// The node key a metric is about (hex).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Key {
    key: String,
}

/// Whether a node running `current` should switch to `next` for an epoch of `set`.
fn takes_over(set: &[Member], current: &ValidatorId, next: &ValidatorId) -> bool {
    let listed = |key: &ValidatorId| set.iter().any(|member| member.key == *key);
    listed(next) && !listed(current)
}

/// The node keys in `role` in `epoch`, once the epoch's sets are fixed (empty before).
async fn seats(chain: &Chain<NodeContext>, role: NodeRole, epoch: Epoch) -> Vec<Member> {
    let Some(validators) = chain.validators(epoch).await else {
        return Vec::new();
    };
    match role {
        NodeRole::Validator => validators,
        NodeRole::FullNode => chain.full_nodes(epoch).await,
    }
}

/// The key to run with after a restart: the successor once the chain has moved the seat (in
/// `role`) to it, else the current key. Returns it with the successor still to come, if any.
pub(crate) async fn choose(
    chain: &Chain<NodeContext>,
    role: NodeRole,
    current: &ValidatorSigner,
    next: Option<&ValidatorSigner>,
) -> (ValidatorSigner, Option<ValidatorSigner>) {
    let Some(next) = next else {
        return (current.clone(), None);
    };
    let (latest, _) = chain.latest();
    let epoch = chain.epoch_length().epoch_of(latest.height.next());
    let set = seats(chain, role, epoch).await;
    if takes_over(&set, &current.validator_id(), &next.validator_id()) {
        info!(%epoch, %role, key = %next.public_hex(), "the chain has rotated this node's key: running with its successor");
        (next.clone(), None)
    } else {
        (current.clone(), Some(next.clone()))
    }
}

/// Watches the finalized heads for the first epoch whose set (in `role`) moves this node's
/// seat from `current` to `next`; the receiver learns it once that epoch's set is final.
fn watch(
    context: &commonware_runtime::tokio::Context,
    chain: Chain<NodeContext>,
    role: NodeRole,
    (current, next): (ValidatorId, ValidatorId),
) -> oneshot::Receiver<Rotated> {
    use commonware_runtime::{Spawner as _, Supervisor as _};
    let (tell, told) = oneshot::channel();
    let length = chain.epoch_length();
    context.child("key_rotation").spawn(move |_| async move {
        let mut heads = chain.heads();
        let mut checked: Option<Epoch> = None;
        loop {
            let height = *heads.borrow_and_update();
            let epoch = entered(length, height);
            if checked != Some(epoch) {
                checked = Some(epoch);
                let set = seats(&chain, role, epoch).await;
                if takes_over(&set, &current, &next) {
                    let _ = tell.send(Rotated { epoch, key: next });
                    return;
                }
            }
            if heads.changed().await.is_err() {
                return;
            }
        }
    });
    told
}

/// Watches this node's key in `role`: the switch to `next`, if the node holds one (the
/// receiver learns it), and, on a governed chain, the end of its term (alarms).
pub(crate) fn watch_key(
    context: &commonware_runtime::tokio::Context,
    chain: &Chain<NodeContext>,
    role: NodeRole,
    (current, next): (ValidatorId, Option<ValidatorId>),
) -> Option<oneshot::Receiver<Rotated>> {
    if chain.genesis().epochs().is_some() {
        watch_term(context, chain.clone(), role, (current, next));
    }
    next.map(|next| watch(context, chain.clone(), role, (current, next)))
}

/// Warns if this node key's term (a validator's or a full node's: `role`) is to end: an ALARM
/// naming the epoch and block it stops at, what the chain seats instead, and whether this node
/// holds that successor; said when the chain sets the end, and again at each epoch the node
/// enters before it. A key without an end says nothing.
fn watch_term(
    context: &commonware_runtime::tokio::Context,
    chain: Chain<NodeContext>,
    role: NodeRole,
    (current, next): (ValidatorId, Option<ValidatorId>),
) {
    use commonware_runtime::{Spawner as _, Supervisor as _};
    let length = chain.epoch_length();
    let term = context.child("key_term");
    let blocks_left: GaugeFamily<Key> = term.family(
        "blocks_left",
        "Blocks until this node's key leaves the set (its term ends, or it was reported); no sample while the term has no end",
    );
    let label = Key {
        key: hex::encode(current.0),
    };
    term.spawn(move |_| async move {
        let mut heads = chain.heads();
        let mut said: Option<(Epoch, Epoch, Option<ValidatorId>)> = None;
        let mut said_compromise = false;
        loop {
            let height = *heads.borrow_and_update();
            let epoch = entered(length, height);
            let lifecycle = match chain.validator_lifecycle(&current).await {
                Ok(lifecycle) => lifecycle,
                Err(error) => {
                    warn!(%error, "cannot read this node key's term from the registry");
                    None
                }
            };
            tracing::debug!(?lifecycle, %epoch, "this validator key's record");
            if let Some(lifecycle) = lifecycle {
                let (record, successor) = (lifecycle.record, lifecycle.successor);
                if let Some(compromise) = lifecycle.compromise.filter(|_| !said_compromise) {
                    said_compromise = true;
                    warn!(
                        key = ?current, %role, suspected_from = %compromise.since,
                        reported_in = %compromise.reported, by = %reporter(compromise.by),
                        "ALARM: the chain records this node's key as compromised: it leaves the set at the next epoch boundary; check what it signed from that block on (`trellis keys activity`)"
                    );
                }
                // `>=`: a vote passed in an epoch's last block ends the term at the epoch this
                // node has just entered; it must still hear that once.
                let ends = record.term.until.filter(|until| *until >= epoch);
                match ends.and_then(|until| length.last_before(until)) {
                    Some(last) => {
                        let left = last.get().saturating_sub(height.get());
                        let left = i64::try_from(left).unwrap_or(i64::MAX);
                        blocks_left.get_or_create(&label).set(left);
                    }
                    None => {
                        blocks_left.remove(&label);
                    }
                }
                let now = ends.map(|until| (epoch, until, successor));
                if let Some(until) = ends.filter(|_| now != said) {
                    let stops = length.last_before(until).map_or(height, Height::next);
                    term_ends(&current, until, stops, height, successor, next);
                }
                said = now;
            }
            if heads.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The alarm of a validator key whose term ends before epoch `until` (block `stops`).
fn term_ends(
    key: &ValidatorId,
    until: Epoch,
    stops: Height,
    now: Height,
    successor: Option<ValidatorId>,
    next: Option<ValidatorId>,
) {
    let left = stops.get().saturating_sub(now.get());
    match successor {
        Some(successor) if Some(successor) == next => info!(
            %until, block = %stops, blocks_left = left,
            "this node's key rotates to its successor (its next key in node.toml) at the epoch boundary"
        ),
        Some(successor) => warn!(
            key = ?key, %until, block = %stops, blocks_left = left, successor = ?successor,
            "ALARM: the chain seats a successor key this node does not hold: name it as next_validator_key (a full node: next_full_node_key) in node.toml and restart before that block, or this node stops there"
        ),
        None => warn!(
            key = ?key, %until, block = %stops, blocks_left = left,
            "ALARM: this node's key leaves the set at that epoch (removed or expiring): rotate it (`trellis keys rotate-validator`) before then to keep the seat"
        ),
    }
}

/// The epoch a node is in once `height` is final.
fn entered(length: EpochLength, height: Height) -> Epoch {
    length.epoch_of(height.next())
}

/// Starts this program again in this process (same id, arguments and environment), after a
/// rotation: the node comes back with the successor key. Returns only if it could not.
pub fn restart_in_place(rotated: Rotated) -> NodeError {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(source) => {
            return NodeError::Spawn {
                exe: "the running trellis".into(),
                source,
            };
        }
    };
    warn!(epoch = %rotated.epoch, key = ?rotated.key, "restarting with the node's successor key");
    let source = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    NodeError::Spawn {
        exe: exe.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(byte: u8) -> Member {
        Member {
            key: ValidatorId([byte; 32]),
            p2p: None,
        }
    }

    #[test]
    fn the_successor_takes_over_only_once_the_set_moves_the_seat() {
        let (old, new) = (ValidatorId([1; 32]), ValidatorId([9; 32]));
        let before = [member(0), member(1), member(2)];
        let after = [member(0), member(2), member(9)];
        assert!(!takes_over(&before, &old, &new));
        assert!(takes_over(&after, &old, &new));
        // Removed without a successor: the node follows as an observer, it does not restart.
        assert!(!takes_over(&[member(0), member(2)], &old, &new));
        let length = EpochLength(std::num::NonZeroU64::new(10).unwrap());
        assert_eq!(entered(length, Height(8)), Epoch(0));
        assert_eq!(entered(length, Height(9)), Epoch(1), "block 9 ends epoch 0");
    }
}
