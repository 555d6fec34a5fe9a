//! Reading a log file and its rotations for one query: the newest file first, a plain file
//! from its end backwards (only the window's tail is read), a gzip file forwards. A file met
//! twice (renamed by a rotation while the query ran) is read once, by its inode.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ops_core::contracts::{LogEntry, LogQuery};
use ops_core::{Error, ErrorKind, Result};

use super::LogFilesConfig;
use super::line::{ParsedLine, parse_line};

/// The bytes read from a plain file at a time, backwards.
const CHUNK: usize = 256 * 1024;
/// A line longer than this is skipped (it is no log line a person wrote).
pub(crate) const MAX_LINE: usize = 1 << 20;
/// The continuation lines kept for one entry (a stack trace); the rest are cut.
const MAX_ENTRY: usize = 64 * 1024;

/// An entry with its place: (file rank, oldest file lowest; byte offset in the file).
pub(crate) type Placed = (LogEntry, (usize, u64));

/// The files of the log, newest first: the log itself, then `.1` or `.1.gz`, `.2` … up to
/// `max_rotated`.
pub(crate) fn rotation(path: &Path, max_rotated: u32) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 1..=max_rotated {
        for suffix in ["", ".gz"] {
            let p = path.with_file_name(format!("{name}.{n}{suffix}"));
            if p.exists() {
                files.push(p);
            }
        }
    }
    files
}

/// Every entry matching `query` (its page token aside), in no particular order, with its
/// place; at most `config.max_entries`, else `InvalidInput`. With `enough`, it stops once that
/// many are found.
pub(crate) fn collect(
    config: &LogFilesConfig,
    query: &LogQuery,
    enough: Option<usize>,
) -> Result<Vec<Placed>> {
    let files = rotation(&config.path, config.max_rotated);
    let ranks = files.len();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    let mut opened = 0usize;
    // Lines may be a little out of order (several processes write one file): reading stops
    // only at a line this much older than the window.
    let stop_before = query.window.start - config.disorder;
    for (index, path) in files.iter().enumerate() {
        if enough.is_some_and(|n| found.len() >= n) {
            break;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            // Rotated away between the listing and the open: its lines are in the next file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(path, e)),
        };
        let meta = file.metadata().map_err(|e| io_error(path, e))?;
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        opened += 1;
        let rank = ranks - index;
        let mut keep = |parsed: ParsedLine, offset: u64| -> Result<bool> {
            if parsed.timestamp < stop_before {
                return Ok(false);
            }
            let entry = to_entry(config, parsed, path);
            if query.matches(&entry) {
                if enough.is_some_and(|n| found.len() >= n) {
                    return Ok(false);
                }
                if found.len() >= config.max_entries {
                    return Err(too_many(config.max_entries));
                }
                found.push((entry, (rank, offset)));
            }
            Ok(true)
        };
        let gz = path.extension().is_some_and(|e| e == "gz");
        let reached_older = if gz {
            read_forwards(config, file, path, stop_before, &mut keep)?
        } else {
            read_backwards(config, file, meta.len(), &mut keep).map_err(|e| io_error(path, e))?
        };
        if reached_older {
            break;
        }
    }
    if opened == 0 {
        return Err(Error::new(
            "host",
            "log_files",
            ErrorKind::NotFound {
                resource: format!("log file {}", config.path.display()),
            },
        ));
    }
    Ok(found)
}

fn to_entry(config: &LogFilesConfig, parsed: ParsedLine, path: &Path) -> LogEntry {
    let mut labels = std::collections::BTreeMap::new();
    if let Some(name) = path.file_name() {
        labels.insert("file".to_string(), name.to_string_lossy().into_owned());
    }
    LogEntry {
        timestamp: parsed.timestamp,
        severity: parsed.severity.unwrap_or(config.default_severity),
        message: parsed.message,
        payload: parsed.payload,
        release: config.release.clone(),
        labels,
    }
}

/// Continuation lines gathered for the entry that starts before them.
#[derive(Default)]
struct Pending {
    lines: Vec<String>,
    bytes: usize,
    cut: bool,
}

impl Pending {
    fn push(&mut self, line: &str) {
        if self.bytes.saturating_add(line.len()) > MAX_ENTRY {
            self.cut = true;
            return;
        }
        self.bytes += line.len() + 1;
        self.lines.push(line.to_string());
    }

    /// Appends the gathered lines (given in file order) to `parsed`'s text.
    fn attach(&mut self, parsed: &mut ParsedLine, backwards: bool) {
        if backwards {
            self.lines.reverse();
        }
        for l in self.lines.drain(..) {
            parsed.message.push('\n');
            parsed.message.push_str(&l);
        }
        if std::mem::take(&mut self.cut) {
            parsed.message.push_str("\n…");
        }
        self.bytes = 0;
    }
}

/// Reads `file` from its end; each entry goes to `keep` (newest first) until `keep` says it
/// is older than the window. True when it did (older files need not be read). The last line
/// is left out while it has no newline (it is being written).
fn read_backwards(
    config: &LogFilesConfig,
    mut file: File,
    len: u64,
    keep: &mut dyn FnMut(ParsedLine, u64) -> Result<bool>,
) -> std::result::Result<bool, ReadError> {
    let mut pos = len;
    // The start of a line whose end was read already (it came with the chunk after this one).
    let mut carry: Vec<u8> = Vec::new();
    // The bytes after the chunk's last newline are dropped: at first the unterminated last
    // line, later the rest of an overlong one.
    let mut drop_tail = true;
    let mut pending = Pending::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let take = usize::try_from(pos.min(CHUNK as u64)).unwrap_or(CHUNK);
        let start = pos - take as u64;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..take])?;
        let mut joined = Vec::with_capacity(take + carry.len());
        joined.extend_from_slice(&buf[..take]);
        joined.append(&mut carry);
        if drop_tail {
            match joined.iter().rposition(|&c| c == b'\n') {
                Some(i) => {
                    joined.truncate(i + 1);
                    drop_tail = false;
                }
                None => joined.clear(),
            }
        }
        // Whole lines are those after the first newline, unless this is the file's start.
        let cut = if start == 0 {
            0
        } else {
            joined
                .iter()
                .position(|&c| c == b'\n')
                .map_or(joined.len(), |i| i + 1)
        };
        let mut lines = Vec::new();
        let mut at = cut;
        for piece in joined[cut..].split_inclusive(|&c| c == b'\n') {
            lines.push((at, piece));
            at += piece.len();
        }
        for (at, piece) in lines.into_iter().rev() {
            let raw = piece.strip_suffix(b"\n").unwrap_or(piece);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = String::from_utf8_lossy(raw);
            match parse_line(&text, config.format, config.zone) {
                Some(mut parsed) => {
                    pending.attach(&mut parsed, true);
                    if !keep(parsed, start + at as u64).map_err(ReadError::Stop)? {
                        return Ok(true);
                    }
                }
                None => pending.push(&text),
            }
        }
        carry = joined[..cut].to_vec();
        if carry.len() > MAX_LINE {
            carry.clear();
            drop_tail = true;
        }
        if start == 0 {
            return Ok(false);
        }
        pos = start;
    }
}

/// Reads a gzip file from its start; every entry goes to `keep`. True when the file's newest
/// entry is older than the window. A damaged or cut gzip file gives the entries before the
/// damage, with a warning.
fn read_forwards(
    config: &LogFilesConfig,
    file: File,
    path: &Path,
    stop_before: DateTime<Utc>,
    keep: &mut dyn FnMut(ParsedLine, u64) -> Result<bool>,
) -> Result<bool> {
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    let mut buf = vec![0u8; CHUNK];
    let mut line: Vec<u8> = Vec::new();
    let mut skipping_long = false;
    let mut offset = 0u64;
    let mut line_offset = 0u64;
    let mut current: Option<(ParsedLine, u64)> = None;
    let mut pending = Pending::default();
    let mut newest: Option<DateTime<Utc>> = None;
    let mut emit = |parsed: Option<(ParsedLine, u64)>, pending: &mut Pending| -> Result<()> {
        if let Some((mut p, at)) = parsed {
            pending.attach(&mut p, false);
            newest = Some(newest.map_or(p.timestamp, |n| n.max(p.timestamp)));
            keep(p, at)?;
        }
        Ok(())
    };
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "a damaged gzip log: read up to the damage");
                break;
            }
        };
        for &c in &buf[..n] {
            offset += 1;
            if c != b'\n' {
                if line.len() < MAX_LINE {
                    line.push(c);
                } else {
                    skipping_long = true;
                }
                continue;
            }
            if !std::mem::take(&mut skipping_long) {
                let raw = line.strip_suffix(b"\r").unwrap_or(&line);
                let text = String::from_utf8_lossy(raw);
                match parse_line(&text, config.format, config.zone) {
                    Some(parsed) => {
                        let before = current.replace((parsed, line_offset));
                        emit(before, &mut pending)?;
                    }
                    None if current.is_some() => pending.push(&text),
                    None => {}
                }
            }
            line.clear();
            line_offset = offset;
        }
    }
    emit(current.take(), &mut pending)?;
    Ok(newest.is_some_and(|n| n < stop_before))
}

/// Why a backwards read ended early.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    Stop(Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn io_error(path: &Path, e: impl Into<ReadError>) -> Error {
    match e.into() {
        ReadError::Stop(e) => e,
        ReadError::Io(e) => {
            tracing::debug!(file = %path.display(), "log file read failed");
            ops_core::error::from_io("host", "log_files", e)
        }
    }
}

fn too_many(max: usize) -> Error {
    Error::invalid_input(
        "host",
        "log_files",
        "window",
        format!(
            "more than {max} entries match; narrow the window or the filters, or raise max_entries"
        ),
    )
}
