//! Trellis's BFT ordering: commonware simplex (ed25519, attributable votes, rotating leaders)
//! with marshal (standard variant: blocks pushed by buffered broadcast, missing ones fetched from
//! peers, finalized blocks archived with their certificates and delivered in height order).
//!
//! The chain's own rules enter through the [`Ledger`] trait: consensus asks it to build and
//! check blocks and hands it finalized ones. Everything here is generic over the runtime and the
//! p2p network, so the same code runs in the node and in the deterministic simulator.

mod application;
mod block;
mod certificates;
pub mod engine;
mod epochs;
mod evidence;
mod faults;
mod follower;
mod ledger;
mod orchestrator;
mod progress;
mod scheme;
mod screen;
pub mod simulation;

pub use application::BlockTiming;
pub use block::{ConsensusBlock, ConsensusBlockError, ProposalContext, validator_id};
pub use certificates::{Certificates, FinalizationRecord};
pub use engine::{Channels, Config, ConfigError, Started, Timeouts, max_message_size, start};
pub use epochs::{PeerSets, Schemes};
pub use evidence::{Evidence, EvidenceError, FaultKind};
pub use faults::FaultSink;
pub use follower::{FollowerConfig, follow};
pub use ledger::{Built, Ledger, Member, Path, Proposal};
pub use scheme::Scheme;
pub use trellis_types::EpochLength;

/// Consensus key types, re-exported so callers need not depend on commonware directly.
pub use commonware_cryptography::ed25519::{PrivateKey, PublicKey};
pub use commonware_utils::ordered::Set;
