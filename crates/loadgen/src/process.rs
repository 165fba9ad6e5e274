//! What a process has used, read from `/proc`: CPU time (user + system, all threads) and peak
//! resident memory.

use std::time::Duration;

/// A process by id; `None` for this one.
#[derive(Clone, Copy, Debug)]
pub struct Process(pub Option<u32>);

impl Process {
    pub const SELF: Self = Self(None);

    fn path(&self, file: &str) -> String {
        match self.0 {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// CPU time used so far; `None` if the process is gone.
    pub fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(self.path("stat")).ok()?;
        // Fields after the command name (which may hold spaces, closed by the last ')').
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let per_second = rustix::param::clock_ticks_per_second();
        Some(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
    }

    /// Peak resident memory so far, in bytes (`VmHWM`); `None` if the process is gone.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(self.path("status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// The processes that make up the node under load: one, or a validator each.
#[derive(Clone, Debug)]
pub struct ProcessGroup(pub Vec<Process>);

impl ProcessGroup {
    /// CPU time the processes still running have used; `None` if all are gone.
    pub fn cpu(&self) -> Option<Duration> {
        let times: Vec<Duration> = self.0.iter().filter_map(Process::cpu).collect();
        (!times.is_empty()).then(|| times.into_iter().sum())
    }

    /// The sum of the running processes' peak resident memory, in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        let peaks: Vec<u64> = self.0.iter().filter_map(Process::peak_rss).collect();
        (!peaks.is_empty()).then(|| peaks.into_iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        let start = Process::SELF.cpu().expect("/proc/self/stat is readable");
        let mut x = 0u64;
        let began = std::time::Instant::now();
        while began.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let end = Process::SELF.cpu().unwrap();
        assert!(end > start, "60 ms of spinning shows as CPU time");
        assert!(Process::SELF.peak_rss().unwrap() > 1 << 20);
        assert!(Process(Some(u32::MAX)).cpu().is_none(), "no such process");
    }
}
