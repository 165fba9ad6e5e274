//! What the nodes' consensus reported as faults (conflicting votes), and by whom: the
//! simulator's stand-in for a node's risk control, so a run can check that the byzantine
//! validator was caught and that no honest one was ever accused.

use crate::plan::NodeId;
use std::sync::{Arc, Mutex};
use trellis_consensus::FaultSink;
use trellis_types::Epoch;

/// One fault report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accusation {
    pub by: NodeId,
    pub epoch: Epoch,
    pub kind: &'static str,
    /// The accused validator's key, hex.
    pub validator: String,
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
    fn fault(&self, epoch: Epoch, kind: &'static str, validator: &str) {
        self.log
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Accusation {
                by: self.by,
                epoch,
                kind,
                validator: validator.to_owned(),
            });
    }
}
