//! The child's side of `trellis dev --processes`: a node started by a supervisor ends when the
//! supervisor does, however it ends (a `kill -9` of the supervisor included), so a dev network
//! never leaves orphaned validators holding its ports.

use crate::NodeError;
use rustix::process::{Signal, getppid, set_parent_process_death_signal};

/// The environment variable through which a supervisor gives its children its process id.
pub const SUPERVISOR_PID: &str = "TRELLIS_SUPERVISOR_PID";

/// If this process was started by a supervisor, asks the kernel to end it (SIGTERM) when the
/// supervisor's thread that started it ends; refuses to run if the supervisor is already gone.
pub fn follow_supervisor() -> Result<(), NodeError> {
    let Some(pid) = std::env::var(SUPERVISOR_PID)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return Ok(());
    };
    set_parent_process_death_signal(Some(Signal::TERM))
        .map_err(|e| NodeError::Supervision(e.into()))?;
    // The supervisor may have died before the request above took effect.
    let parent = getppid().map_or(0, |p| p.as_raw_nonzero().get());
    if parent != pid {
        return Err(NodeError::SupervisorGone(pid));
    }
    Ok(())
}
