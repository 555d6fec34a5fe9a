//! [`FileJournal`]: JSON lines appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Journal, JournalEvent, JournalFilter};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "file-journal";

/// When appended events reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// `fdatasync` after every event: a crash loses nothing that was appended.
    #[default]
    EveryEvent,
    /// Leave it to the OS: a machine crash may lose the last events (a process crash does not).
    Never,
}

/// A journal in one file, one JSON object a line, shared by every run that uses the file.
///
/// A process killed mid-write leaves at most a torn last line: reads skip it, and opening the
/// file for writing cuts it off, so the next event starts on a clean line. A complete last line
/// that is not an event (damaged by hand or by a disk) is cut off the same way. Cut bytes are
/// never thrown away: they are appended to a side file, `<journal>.damaged`, with a warning.
///
/// A damaged line in the middle (which an append can no longer cause) makes reads fail with a
/// [`ErrorKind::Decode`] error naming the line; [`FileJournal::repair`] moves such lines to the
/// side file.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::engine::{FileJournal, FsyncPolicy, Journal, JournalFilter};
/// let dir = tempfile::tempdir().unwrap();
/// let journal = FileJournal::open(dir.path().join("runs.jsonl"), FsyncPolicy::EveryEvent).await?;
/// assert!(journal.events(&JournalFilter::default()).await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileJournal {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    fsync: FsyncPolicy,
}

impl FileJournal {
    /// Opens (creating it and its directory if needed) the journal at `path`, cutting off a
    /// torn last line left by a crash.
    pub async fn open(path: impl AsRef<Path>, fsync: FsyncPolicy) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let file = tokio::task::spawn_blocking(move || open_repaired(&p))
            .await
            .map_err(|e| {
                Error::new(
                    PROVIDER,
                    "open",
                    ErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: e.to_string(),
                    },
                )
            })?
            .map_err(|e| io_err("open", &path, &e))?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
            fsync,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The side file that keeps what was cut from the journal at `path`: `<path>.damaged`.
    pub fn damaged_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".damaged");
        PathBuf::from(name)
    }

    /// Moves every line of the journal at `path` that is not an event (anywhere in the file)
    /// to [`FileJournal::damaged_path`], keeping the others in order, and returns how many
    /// lines it moved. The journal is rewritten through a temporary file and a rename, so a
    /// crash leaves either the old or the repaired file. Run it while no runner has the file
    /// open: for example `FileJournal::repair(path).await?` before `FileJournal::open`.
    pub async fn repair(path: impl AsRef<Path>) -> Result<usize> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        tokio::task::spawn_blocking(move || repair_file(&p))
            .await
            .map_err(|e| {
                Error::new(
                    PROVIDER,
                    "repair",
                    ErrorKind::Io {
                        kind: std::io::ErrorKind::Other,
                        message: e.to_string(),
                    },
                )
            })?
            .map_err(|e| io_err("repair", &path, &e))
    }
}

fn is_event(line: &[u8]) -> bool {
    serde_json::from_slice::<JournalEvent>(line).is_ok()
}

/// Appends `bytes` (with a final newline) to the side file and syncs it.
fn keep_damaged(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut side = OpenOptions::new()
        .append(true)
        .create(true)
        .open(FileJournal::damaged_path(path))?;
    side.write_all(bytes)?;
    if !bytes.ends_with(b"\n") {
        side.write_all(b"\n")?;
    }
    side.sync_all()
}

fn repair_file(path: &Path) -> std::io::Result<usize> {
    let bytes = std::fs::read(path)?;
    let (mut good, mut bad) = (Vec::with_capacity(bytes.len()), Vec::new());
    let mut moved = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.ends_with(b"\n") && is_event(body) {
            good.extend_from_slice(line);
        } else {
            bad.extend_from_slice(body);
            bad.push(b'\n');
            moved += 1;
        }
    }
    if moved == 0 {
        return Ok(0);
    }
    keep_damaged(path, &bad)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".repair-tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&good)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    tracing::warn!(path = %path.display(), lines = moved, "journal: moved damaged lines to the side file");
    Ok(moved)
}

fn open_repaired(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut keep = end_of_last_line(&mut file, len)?;
    // A complete last line that is not an event goes too (only the tail: a damaged line in the
    // middle is for `repair`, never cut silently). Bounded: at most a few such lines.
    for _ in 0..8 {
        if keep == 0 {
            break;
        }
        let start = end_of_last_line(&mut file, keep - 1)?;
        let mut line = vec![0u8; usize::try_from(keep - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut line)?;
        let body = &line[..line.len().saturating_sub(1)];
        if !body.iter().all(u8::is_ascii_whitespace) && is_event(body) {
            break;
        }
        keep = start;
    }
    if keep < len {
        let mut cut = vec![0u8; usize::try_from(len - keep).unwrap_or(0)];
        file.seek(SeekFrom::Start(keep))?;
        file.read_exact(&mut cut)?;
        if !cut.iter().all(u8::is_ascii_whitespace) {
            keep_damaged(path, &cut)?;
        }
        tracing::warn!(
            path = %path.display(),
            cut_bytes = len - keep,
            kept_in = %FileJournal::damaged_path(path).display(),
            "journal: cutting off a torn or damaged last line"
        );
        file.set_len(keep)?;
        file.sync_all()?;
    }
    Ok(file)
}

/// The length of the file up to and including its last newline (0 when it has none).
fn end_of_last_line(file: &mut File, len: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn io_err(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        PROVIDER,
        op,
        ErrorKind::Io {
            kind: e.kind(),
            message: format!("{}: {e}", path.display()),
        },
    )
}

fn write_line(file: &Mutex<File>, line: &[u8], fsync: bool) -> std::io::Result<()> {
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    // One write call per line: O_APPEND keeps concurrent writers' lines whole.
    f.write_all(line)?;
    if fsync {
        f.sync_data()?;
    }
    Ok(())
}

#[async_trait]
impl Journal for FileJournal {
    async fn append(&self, event: &JournalEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event).map_err(|e| {
            Error::new(
                PROVIDER,
                "append",
                ErrorKind::Decode {
                    detail: e.to_string(),
                },
            )
        })?;
        line.push(b'\n');
        match self.fsync {
            // A page-cache write is quick enough to do in place.
            FsyncPolicy::Never => {
                write_line(&self.file, &line, false).map_err(|e| io_err("append", &self.path, &e))
            }
            FsyncPolicy::EveryEvent => {
                let file = self.file.clone();
                tokio::task::spawn_blocking(move || write_line(&file, &line, true))
                    .await
                    .map_err(|e| {
                        Error::new(
                            PROVIDER,
                            "append",
                            ErrorKind::Io {
                                kind: std::io::ErrorKind::Other,
                                message: e.to_string(),
                            },
                        )
                    })?
                    .map_err(|e| io_err("append", &self.path, &e))
            }
        }
    }

    async fn events(&self, filter: &JournalFilter) -> Result<Vec<JournalEvent>> {
        let path = self.path.clone();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| io_err("events", &path, &e))?;
        parse_lines(&bytes, filter)
    }
}

/// Parses journal lines; a torn last line (no newline, or not JSON) is skipped, a damaged line
/// before it is an error naming its line number.
pub(crate) fn parse_lines(bytes: &[u8], filter: &JournalFilter) -> Result<Vec<JournalEvent>> {
    let mut out = Vec::new();
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Numbered as in the file (1-based), blank lines counted but skipped.
    let lines: Vec<(usize, &[u8])> = bytes[..complete]
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let last = lines.last().map_or(0, |(i, _)| *i);
    for (i, line) in lines {
        match serde_json::from_slice::<JournalEvent>(line) {
            Ok(e) if filter.matches(&e) => out.push(e),
            Ok(_) => {}
            // A crash can tear only the last line; one that ends with a newline but is not
            // JSON is skipped as well.
            Err(_) if i == last => tracing::warn!("journal: skipping a damaged last line"),
            Err(e) => {
                return Err(Error::new(
                    PROVIDER,
                    "events",
                    ErrorKind::Decode {
                        detail: format!(
                            "line {} is not a journal event ({e}); FileJournal::repair moves \
                             damaged lines to the .damaged side file",
                            i + 1
                        ),
                    },
                ));
            }
        }
    }
    if complete < bytes.len() {
        tracing::warn!(
            bytes = bytes.len() - complete,
            "journal: skipping a torn last line"
        );
    }
    Ok(out)
}
