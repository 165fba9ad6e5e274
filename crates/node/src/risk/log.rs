//! The alarm log: every alarm this node raised, one JSON object per line, appended and synced
//! before the alarm is served, so an alarm a client saw survives a crash. The last [`RECENT`]
//! are kept in memory for `trellis_alarms`.

use std::{
    collections::VecDeque,
    fs::File,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
};
use trellis_risk::Alarm;

/// Alarms kept in memory.
pub const RECENT: usize = 1_024;

/// The log's file name, in the node's data directory.
pub const FILE: &str = "risk-alarms.jsonl";

pub(crate) struct AlarmLog {
    path: PathBuf,
    file: File,
    recent: VecDeque<Alarm>,
    next_id: u64,
}

impl AlarmLog {
    /// Opens (or creates) the log in `dir`, reading back its last alarms. A line that does not
    /// read (a write torn by a crash) is skipped with a warning; the ids go on after the
    /// highest read.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        let mut recent = VecDeque::with_capacity(RECENT);
        let mut next_id = 1;
        if let Ok(file) = File::open(&path) {
            for (number, line) in BufReader::new(file).lines().enumerate() {
                let line = line?;
                match serde_json::from_str::<Alarm>(&line) {
                    Ok(alarm) => {
                        next_id = next_id.max(alarm.id + 1);
                        if recent.len() == RECENT {
                            recent.pop_front();
                        }
                        recent.push_back(alarm);
                    }
                    Err(error) => tracing::warn!(
                        path = %path.display(),
                        line = number + 1,
                        %error,
                        "alarm log: a line that does not read is skipped"
                    ),
                }
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        if !ends_a_line(&path)? {
            // Closes a torn line, so the next alarm starts a line of its own.
            file.write_all(b"\n")?;
        }
        Ok(Self {
            path,
            file,
            recent,
            next_id,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id the next alarm takes.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Appends `alarms` and syncs them to disk.
    pub fn append(&mut self, alarms: &[Alarm]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for alarm in alarms {
            serde_json::to_writer(&mut text, alarm).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        self.file.write_all(&text)?;
        self.file.sync_data()?;
        for alarm in alarms {
            self.next_id = self.next_id.max(alarm.id + 1);
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(alarm.clone());
        }
        Ok(())
    }

    /// Up to `limit` alarms with ids above `after`, oldest first (of the last [`RECENT`]).
    pub fn after(&self, after: u64, limit: usize) -> Vec<Alarm> {
        self.recent
            .iter()
            .filter(|alarm| alarm.id > after)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Whether the file at `path` is empty or ends with a newline.
fn ends_a_line(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use trellis_risk::{Amount, Evidence, Party};

    /// A sample alarm numbered `id`.
    pub(in crate::risk) fn alarm(id: u64) -> Alarm {
        Alarm {
            id,
            raised_at_ms: 1_000 * id,
            rule: "burst".into(),
            measure: "sender_transactions".into(),
            party: Party::Host,
            observed: Amount(5),
            above: Amount(4),
            window_seconds: 60,
            actions: Vec::new(),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn alarms_survive_a_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = AlarmLog::open(dir.path()).expect("opens");
        assert_eq!(log.next_id(), 1);
        log.append(&[alarm(1), alarm(2)]).expect("appends");
        drop(log);
        // A crash in the middle of a write leaves half a line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .expect("opens");
        file.write_all(br#"{"id":3,"rai"#).expect("writes");
        drop(file);
        let mut log = AlarmLog::open(dir.path()).expect("reopens");
        assert_eq!(log.next_id(), 3);
        assert_eq!(log.after(0, 10), vec![alarm(1), alarm(2)]);
        assert_eq!(log.after(1, 10), vec![alarm(2)]);
        assert_eq!(log.after(0, 1), vec![alarm(1)]);
        log.append(&[alarm(3)])
            .expect("appends after the torn line");
        let log = AlarmLog::open(dir.path()).expect("reopens");
        assert_eq!(log.after(2, 10), vec![alarm(3)]);
    }
}
