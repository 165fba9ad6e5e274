//! The host's load as the risk rules measure it: CPU and memory of the whole machine, and how
//! full the data directory's filesystem is, in percent.

use std::path::PathBuf;
use trellis_risk::HostLoad;

pub(crate) struct Host {
    system: sysinfo::System,
    data_dir: PathBuf,
}

impl Host {
    pub fn new(data_dir: PathBuf) -> Self {
        let mut system = sysinfo::System::new();
        // CPU use is measured between two refreshes: this is the first.
        system.refresh_cpu_usage();
        Self { system, data_dir }
    }

    /// The load since the last sample (blocking file system reads: call it off the runtime's
    /// workers).
    pub fn sample(&mut self) -> HostLoad {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let cpu = percent(f64::from(self.system.global_cpu_usage()), 100.0);
        let total = self.system.total_memory();
        let memory = (total > 0).then(|| {
            let used = total.saturating_sub(self.system.available_memory());
            percent(used as f64, total as f64)
        });
        let disk = rustix::fs::statvfs(&self.data_dir)
            .ok()
            .filter(|fs| fs.f_blocks > 0)
            .map(|fs| {
                let used = fs.f_blocks.saturating_sub(fs.f_bavail);
                percent(used as f64, fs.f_blocks as f64)
            });
        HostLoad {
            cpu: Some(cpu),
            memory,
            disk,
        }
    }
}

fn percent(part: f64, whole: f64) -> u8 {
    (part * 100.0 / whole).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_reads_this_machine() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut host = Host::new(dir.path().to_path_buf());
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let load = host.sample();
        assert!(load.cpu.is_some_and(|cpu| cpu <= 100));
        let memory = load.memory.expect("Linux reports memory");
        assert!(
            (1..=100).contains(&memory),
            "some memory is in use: {memory}"
        );
        let disk = load.disk.expect("the temp dir's filesystem");
        assert!(disk <= 100);
    }
}
