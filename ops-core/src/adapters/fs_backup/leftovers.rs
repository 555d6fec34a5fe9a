//! What killed writes leave behind: temp files, swept once no writer holds them.

use std::path::Path;

use super::{TEMP_PREFIX, TEMP_STALE_AFTER};

/// Removes `root`'s temp files older than [`TEMP_STALE_AFTER`] (by `now`) that no live writer
/// holds locked; returns how many it removed.
pub(super) fn sweep_temp_files(
    root: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        let modified = chrono::DateTime::<chrono::Utc>::from(meta.modified()?);
        let stale = (now - modified)
            .to_std()
            .is_ok_and(|age| age > TEMP_STALE_AFTER);
        if !stale {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        // A live writer holds the lock: leave its file alone, however old it looks.
        if file.try_lock().is_err() {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed += 1;
                tracing::warn!(path = %path.display(), bytes = meta.len(), "removed the temp file of an interrupted backup write");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
