//! How much disk a node's data directory uses, reported in the log at startup.

use std::path::Path;

/// Total size of the files under `dir` (0 if it does not exist).
pub fn usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries.flatten().map(|entry| entry_bytes(&entry)).sum()
}

/// Size of a file, or of everything under a directory.
fn entry_bytes(entry: &std::fs::DirEntry) -> u64 {
    match entry.metadata() {
        Ok(meta) if meta.is_dir() => usage(&entry.path()),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}

/// Bytes used by the state's partitions and by everything else (blocks, consensus), from the
/// storage directory's partition directories.
pub fn breakdown(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let mut state = 0;
    let mut other = 0;
    for entry in entries.flatten() {
        let bytes = entry_bytes(&entry);
        if entry.file_name().to_string_lossy().contains("-state-") {
            state += bytes;
        } else {
            other += bytes;
        }
    }
    (state, other)
}

/// Logs the data directory's disk use.
pub fn log_usage(dir: &Path) {
    let (state, other) = breakdown(dir);
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    tracing::info!(
        dir = %dir.display(),
        "data directory uses {:.1} MiB: state {:.1} MiB, blocks and consensus {:.1} MiB",
        mib(state + other),
        mib(state),
        mib(other)
    );
}
