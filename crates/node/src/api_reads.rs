//! Reads of protected data, written to the audit log: each call let through that needs more
//! than `read:chain` or `send:transactions` is counted by caller and method, and every
//! [`WINDOW`] the counts go into one `api_reads` record (who read what, how often) and start
//! over. One record per window, not one per call: each record is signed and synced, and a busy
//! API answers thousands of calls a second.
//!
//! The tally is shared by the API's tasks (a `std::sync::Mutex` held for one map update, never
//! across an await) and emptied by one flusher task.

use crate::audit::Audit;
use commonware_runtime::{Clock as _, Spawner as _, Supervisor as _, tokio};
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use trellis_access::Permission;

/// How long reads are counted before they are written.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Most (caller, method) pairs counted in one window; the reads of pairs beyond are counted
/// together, so memory stays bounded whatever the callers do.
const MAX_PAIRS: usize = 4_096;

/// The reads of one window.
#[derive(Debug, Default)]
pub struct ReadTally {
    /// Caller → method → (permission, calls): nested, so a repeated read is counted without
    /// allocating (this runs on every call the API lets through).
    counts: BTreeMap<String, BTreeMap<String, (Permission, u64)>>,
    pairs: usize,
    /// Reads of pairs beyond [`MAX_PAIRS`].
    uncounted: u64,
}

impl ReadTally {
    /// Counts a call of `method` by `caller` that needed `permission`, if that reads protected
    /// data.
    pub fn add(&mut self, caller: &str, method: &str, permission: Permission) {
        if !permission.reads_protected_data() {
            return;
        }
        if let Some((_, calls)) = self
            .counts
            .get_mut(caller)
            .and_then(|methods| methods.get_mut(method))
        {
            *calls += 1;
        } else if self.pairs < MAX_PAIRS {
            self.pairs += 1;
            self.counts
                .entry(caller.to_owned())
                .or_default()
                .insert(method.to_owned(), (permission, 1));
        } else {
            self.uncounted += 1;
        }
    }

    /// The window's `api_reads` record, if anything was read; the tally starts over.
    pub fn take(&mut self) -> Option<Value> {
        if self.counts.is_empty() && self.uncounted == 0 {
            return None;
        }
        self.pairs = 0;
        let reads: Vec<Value> = std::mem::take(&mut self.counts)
            .into_iter()
            .flat_map(|(caller, methods)| {
                methods
                    .into_iter()
                    .map(move |(method, (permission, calls))| {
                        json!({
                            "caller": caller,
                            "method": method,
                            "permission": permission.name(),
                            "calls": calls,
                        })
                    })
            })
            .collect();
        let mut detail = json!({ "windowSecs": WINDOW.as_secs(), "reads": reads });
        if self.uncounted > 0 {
            detail["uncounted"] = json!(std::mem::take(&mut self.uncounted));
        }
        Some(detail)
    }
}

/// The tally the API's access control adds to.
#[derive(Clone)]
pub struct Reads(Arc<Mutex<ReadTally>>);

impl Reads {
    /// Starts the flusher writing each window's reads to `audit`.
    pub fn start(context: &tokio::Context, audit: Audit) -> Self {
        let tally = Arc::new(Mutex::new(ReadTally::default()));
        let flushed = tally.clone();
        context.child("api_reads").spawn(move |context| async move {
            loop {
                context.sleep(WINDOW).await;
                let detail = flushed.lock().expect("read tally lock poisoned").take();
                if let Some(detail) = detail {
                    audit.record("api_reads", detail);
                }
            }
        });
        Self(tally)
    }

    pub fn add(&self, caller: &str, method: &str, permission: Permission) {
        self.0
            .lock()
            .expect("read tally lock poisoned")
            .add(caller, method, permission);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_reads_are_counted_by_caller_and_method_in_bounded_memory() {
        let mut tally = ReadTally::default();
        assert_eq!(tally.take(), None);
        tally.add("0xaa", "eth_blockNumber", Permission::Chain);
        tally.add("0xaa", "eth_sendRawTransaction", Permission::Send);
        assert_eq!(
            tally.take(),
            None,
            "chain facts and sends are not protected reads"
        );
        tally.add("0xaa", "eth_getBalance", Permission::State);
        tally.add("0xaa", "eth_getBalance", Permission::State);
        tally.add("0xbb", "trellis_alarms", Permission::Audit);
        let detail = tally.take().unwrap();
        assert_eq!(
            detail["reads"],
            json!([
                {"caller": "0xaa", "method": "eth_getBalance", "permission": "read:state", "calls": 2},
                {"caller": "0xbb", "method": "trellis_alarms", "permission": "read:audit", "calls": 1},
            ])
        );
        assert_eq!(tally.take(), None, "started over");
        for i in 0..MAX_PAIRS + 3 {
            tally.add(&format!("0x{i}"), "eth_call", Permission::State);
        }
        let detail = tally.take().unwrap();
        assert_eq!(detail["reads"].as_array().unwrap().len(), MAX_PAIRS);
        assert_eq!(detail["uncounted"], 3);
    }
}
