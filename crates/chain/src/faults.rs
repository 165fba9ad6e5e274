//! Faults a test injects into the chain to watch it recover; none in service. The hooks exist
//! only in a build with the `fault-injection` feature: without it, [`Faults`] is empty and the
//! commit path has no branch for them.

#[cfg(feature = "fault-injection")]
use trellis_types::Height;

/// The faults to inject (none by default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Interrupt the state commit of one finalized block.
    #[cfg(feature = "fault-injection")]
    pub interrupt_commit: Option<InterruptCommit>,
}

/// Interrupts the state commit of the block at `height` once it is applied and durable in the
/// storage table but not in the accounts table (what a crash between the two tables' syncs
/// leaves behind), then calls `stop`, which must not return: the node ends its process there.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug)]
pub struct InterruptCommit {
    pub height: Height,
    pub stop: fn(Height) -> !,
}
