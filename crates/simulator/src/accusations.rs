//! What the nodes' consensus reported as faults (conflicting votes), and by whom, and which
//! peers they blocked: the simulator's stand-in for a node's risk control, so a run can check
//! that the byzantine validator was caught and that no honest one was ever accused.

use crate::plan::NodeId;
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};
use trellis_consensus::{Evidence, FaultSink};

/// One fault report.
#[derive(Clone, Debug)]
pub struct Accusation {
    pub by: NodeId,
    /// The evidence's bytes, as a node hands them out.
    pub evidence: Vec<u8>,
}

/// Every report of the run, in the order made, and every block seen in force.
#[derive(Default)]
pub struct Accusations {
    reports: Mutex<Vec<Accusation>>,
    /// (blocker, blocked) pairs, each as first seen.
    blocks: Mutex<BTreeSet<(NodeId, NodeId)>>,
}

impl Accusations {
    pub fn all(&self) -> Vec<Accusation> {
        lock(&self.reports).clone()
    }

    /// Notes that `by` blocked `peer` (a node blocks a peer whose message it refuses).
    pub fn blocked(&self, by: NodeId, peer: NodeId) {
        lock(&self.blocks).insert((by, peer));
    }

    /// Every (blocker, blocked) pair seen in the run.
    pub fn blocks(&self) -> Vec<(NodeId, NodeId)> {
        lock(&self.blocks).iter().copied().collect()
    }

    /// The nodes that blocked `peer` at some time in the run.
    pub fn blockers_of(&self, peer: NodeId) -> Vec<NodeId> {
        self.blocks()
            .into_iter()
            .filter(|(_, blocked)| *blocked == peer)
            .map(|(by, _)| by)
            .collect()
    }

    /// The sink `by`'s consensus reports to.
    pub fn sink(self: &Arc<Self>, by: NodeId) -> Arc<dyn FaultSink> {
        Arc::new(Accuser {
            by,
            log: self.clone(),
        })
    }
}

struct Accuser {
    by: NodeId,
    log: Arc<Accusations>,
}

impl FaultSink for Accuser {
    fn fault(&self, evidence: &Evidence) {
        lock(&self.log.reports).push(Accusation {
            by: self.by,
            evidence: evidence.to_bytes(),
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
