//! Deterministic simulation of a whole Trellis consortium under faults.
//!
//! Four validators and a full node, each the real chain (EVM execution, QMDB state, mempool,
//! block store), transaction gossip and consensus, run on commonware's deterministic runtime
//! and simulated network. A [`Seed`] fixes everything: the [`Plan`] of faults (crashes and
//! restarts, partitions, slow, reordering and lossy links) drawn from it, and the runtime's
//! scheduling, latencies and losses. Transfers are sent throughout; [`run`] checks the
//! [`invariants`] and returns a [`Report`] or the first [`Violation`], the same every time the
//! seed is replayed.

pub mod accusations;
pub mod byzantine;
pub mod cluster;
pub mod invariants;
pub mod plan;
mod run;
pub mod workload;

pub use invariants::Violation;
pub use plan::{Plan, Seed};
pub use run::{Report, run};
