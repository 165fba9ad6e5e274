//! The faults a crash test asks a node for, through the environment: in a build with the
//! `fault-injection` feature only (scripts/test builds one; a release build has none).
//!
//! `TRELLIS_TEST_KILL_DURING_COMMIT=<height>`: SIGKILL the process in the middle of that block's
//! state commit (durable in one state table, not the other), as an operator's `kill -9` or the
//! kernel's OOM killer would.

use trellis_chain::Faults;

const KILL_DURING_COMMIT: &str = "TRELLIS_TEST_KILL_DURING_COMMIT";

/// The faults the environment asks for.
#[cfg(feature = "fault-injection")]
pub fn from_env() -> Faults {
    let Ok(value) = std::env::var(KILL_DURING_COMMIT) else {
        return Faults::default();
    };
    let height = value
        .parse()
        .unwrap_or_else(|_| panic!("{KILL_DURING_COMMIT}={value} is not a block height"));
    Faults {
        interrupt_commit: Some(trellis_chain::InterruptCommit {
            height: trellis_types::Height(height),
            stop: kill_this_process,
        }),
    }
}

/// None: this build cannot inject faults, and says so if asked to.
#[cfg(not(feature = "fault-injection"))]
pub fn from_env() -> Faults {
    if std::env::var_os(KILL_DURING_COMMIT).is_some() {
        tracing::warn!("{KILL_DURING_COMMIT} is ignored: this build has no fault injection");
    }
    Faults::default()
}

#[cfg(feature = "fault-injection")]
fn kill_this_process(height: trellis_types::Height) -> ! {
    tracing::warn!(%height, "crash test hook: killing this process in the middle of a state commit");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    // Only if `kill` could not run: still abrupt, with no cleanup.
    std::process::abort()
}
