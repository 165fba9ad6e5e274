//! How much disk a node's data directory uses: in the log at startup, and as metrics
//! (`trellis_disk_…`) sampled every [`SAMPLE_EVERY`] while it runs, with the free space of
//! the filesystem it is on, so that an alert can see a disk filling before it is full.

use commonware_runtime::{
    Clock as _, Spawner as _, Supervisor as _,
    telemetry::metrics::{Gauge, MetricsExt as _},
    tokio,
};
use std::{path::Path, time::Duration};

/// How often the data directory is measured; walking it costs a few hundred file metadata
/// reads on a large state.
const SAMPLE_EVERY: Duration = Duration::from_secs(15);

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

/// The data directory's figures as gauges.
struct DiskMetrics {
    state: Gauge,
    other: Gauge,
    free: Gauge,
    size: Gauge,
}

impl DiskMetrics {
    fn register(context: &tokio::Context) -> Self {
        Self {
            state: context.gauge("state_bytes", "Bytes the state's partitions use on disk"),
            other: context.gauge(
                "other_bytes",
                "Bytes the blocks, indexes and consensus journals use on disk",
            ),
            free: context.gauge(
                "free_bytes",
                "Bytes free (to this node's user) on the data directory's filesystem",
            ),
            size: context.gauge(
                "size_bytes",
                "Size of the data directory's filesystem in bytes",
            ),
        }
    }

    fn set(gauge: &Gauge, bytes: u64) {
        gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Measures `dir` once (blocking file system calls).
    fn sample(&self, dir: &Path) {
        let (state, other) = breakdown(dir);
        Self::set(&self.state, state);
        Self::set(&self.other, other);
        match rustix::fs::statvfs(dir) {
            Ok(fs) => {
                Self::set(&self.free, fs.f_bavail.saturating_mul(fs.f_frsize));
                Self::set(&self.size, fs.f_blocks.saturating_mul(fs.f_frsize));
            }
            Err(error) => tracing::debug!(%error, "cannot read the data directory's filesystem"),
        }
    }
}

/// Measures `dir` now and every [`SAMPLE_EVERY`], on the blocking pool, under `context`
/// (`…_disk_…`).
pub(crate) fn watch(context: &tokio::Context, dir: &Path) {
    let disk = context.child("disk");
    let metrics = std::sync::Arc::new(DiskMetrics::register(&disk));
    let dir = dir.to_path_buf();
    disk.spawn(move |context| async move {
        loop {
            let (metrics, dir) = (metrics.clone(), dir.clone());
            let measured = context
                .child("sample")
                .shared(true)
                .spawn(move |_| async move { metrics.sample(&dir) });
            if measured.await.is_err() {
                return;
            }
            context.sleep(SAMPLE_EVERY).await;
        }
    });
}
