//! What the nodes' consensus reported as faults (conflicting votes), and by whom: the
//! simulator's stand-in for a node's risk control, so a run can check that the byzantine
//! validator was caught and that no honest one was ever accused.

use crate::plan::NodeId;
use std::sync::{Arc, Mutex};
use trellis_consensus::{Evidence, FaultSink};

/// One fault report.
#[derive(Clone, Debug)]
pub struct Accusation {
    pub by: NodeId,
    /// The evidence's bytes, as a node hands them out.
    pub evidence: Vec<u8>,
}

/// Every report of the run, in the order made.
#[derive(Default)]
pub struct Accusations(Mutex<Vec<Accusation>>);

impl Accusations {
    pub fn all(&self) -> Vec<Accusation> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
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
        self.log
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Accusation {
                by: self.by,
                evidence: evidence.to_bytes(),
            });
    }
}
