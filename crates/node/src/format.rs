//! The storage format a data directory was written in, kept in a marker file beside the
//! partitions, so that a build that reads another format refuses the directory at start
//! (naming both formats) instead of failing on the first record it cannot decode.

use crate::{FileProblem, NodeError};
use std::path::Path;

/// Format 2: consensus stores each block with its proposer's claim of the transactions'
/// senders. Format 1 (no marker file) stored blocks alone.
pub const STORAGE_FORMAT: u32 = 2;

const MARKER: &str = "trellis-storage-format";

/// Checks that `dir` was written in [`STORAGE_FORMAT`], or marks it so if it is empty.
pub fn check_or_mark(dir: &Path) -> Result<(), NodeError> {
    let error = |problem: FileProblem| NodeError::DataDir {
        path: dir.display().to_string(),
        problem,
    };
    let marker = dir.join(MARKER);
    let found = match std::fs::read_to_string(&marker) {
        Ok(text) => Some(text.trim().parse::<u32>().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(error(e.into())),
    };
    match found {
        Some(Some(STORAGE_FORMAT)) => Ok(()),
        Some(held) => Err(error(FileProblem::OtherStorageFormat {
            held: held.map_or_else(|| "unreadable".into(), |v| v.to_string()),
        })),
        None if is_empty(dir).map_err(|e| error(e.into()))? => {
            std::fs::write(&marker, format!("{STORAGE_FORMAT}\n")).map_err(|e| error(e.into()))
        }
        None => Err(error(FileProblem::OtherStorageFormat { held: "1".into() })),
    }
}

/// Whether `dir` holds no data yet: absent, empty, or holding only what a start that stopped
/// before writing any data leaves (the format marker, a keystore being staged).
pub(crate) fn is_fresh(dir: &Path) -> std::io::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let staged = format!("{}.new", trellis_vault::KEYSTORE_FILE);
    for entry in entries {
        let name = entry?.file_name();
        // `.hold`: the runtime's lock file, made before anything is stored.
        if name != MARKER && name != staged.as_str() && name != ".hold" {
            return Ok(false);
        }
    }
    Ok(true)
}

fn is_empty(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_an_empty_directory_and_refuses_an_older_one() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("fresh");
        check_or_mark(&fresh).unwrap();
        check_or_mark(&fresh).unwrap();
        assert_eq!(
            std::fs::read_to_string(fresh.join(MARKER)).unwrap(),
            format!("{STORAGE_FORMAT}\n")
        );

        let old = root.path().join("old");
        std::fs::create_dir_all(old.join("validator-blocks")).unwrap();
        let message = check_or_mark(&old).unwrap_err().to_string();
        assert!(message.contains("storage format 1"), "{message}");
        assert!(!old.join(MARKER).exists(), "nothing written");

        std::fs::write(fresh.join(MARKER), "7\n").unwrap();
        let message = check_or_mark(&fresh).unwrap_err().to_string();
        assert!(message.contains("storage format 7"), "{message}");
    }
}
