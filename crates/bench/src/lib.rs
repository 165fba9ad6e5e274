//! Benchmarks of Trellis's storage on real disk, with figures printed: `trellis bench state`
//! (the state layer on QMDB: committed slot updates, proofs, histories, reopening; [`state`])
//! `trellis bench logs` (`eth_getLogs` through the block store's log index; [`logs`]) and
//! `trellis bench rekey` (the background re-encryption after a data-key rotation; [`rekey`]).
//! [`run`] runs each on a runtime of its own in a fresh directory and prints the report.
//!
//! They live in a crate of their own so that nothing of them is compiled into the crates a node
//! runs; they reach the state and the block store through their public APIs only.

pub mod hsm;
pub mod logs;
pub mod rekey;
pub mod run;
pub mod state;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: already exists: the benchmark needs a fresh directory it may delete")]
    DirExists { path: String },
    #[error(transparent)]
    State(#[from] state::StateBenchError),
    #[error(transparent)]
    Logs(#[from] logs::LogBenchError),
    #[error("the operating system's random generator failed")]
    Random(#[source] getrandom::Error),
}
