//! Reading a log file and its rotations for one query: the newest file first, a plain file
//! from its end backwards (only the window's tail is read), a gzip file forwards. A file met
//! twice (renamed by a rotation while the query ran) is read once, by its inode.

use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Utc};
use ops_core::contracts::{LogEntry, LogQuery};
use ops_core::{Error, ErrorKind, Result};

use super::LogFilesConfig;
use crate::lines;
use ops_core::log_line::{ParsedLine, parse_line};

/// The continuation lines kept for one entry (a stack trace); the rest are cut.
const MAX_ENTRY: usize = 64 * 1024;

/// An entry with its place: (file rank, oldest file lowest; byte offset in the file).
pub(crate) type Placed = (LogEntry, (usize, u64));

/// Every entry matching `query` (its page token aside), in no particular order, with its
/// place; at most `config.max_entries`, else `InvalidInput`. With `enough`, it stops once that
/// many are found.
pub(crate) fn collect(
    config: &LogFilesConfig,
    query: &LogQuery,
    enough: Option<usize>,
) -> Result<Vec<Placed>> {
    let files = lines::open_rotations(&config.path, config.max_rotated).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::new(
                "host",
                "log_files",
                ErrorKind::NotFound {
                    resource: format!("log file {}", config.path.display()),
                },
            )
        } else {
            io_error(&config.path, e)
        }
    })?;
    let ranks = files.len();
    let mut found = Vec::new();
    // Lines may be a little out of order (several processes write one file): reading stops
    // only at a line this much older than the window.
    let stop_before = query.window.start - config.disorder;
    for (index, log) in files.into_iter().enumerate() {
        if enough.is_some_and(|n| found.len() >= n) {
            break;
        }
        let rank = ranks - index;
        let path = log.path.as_path();
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
        let reached_older = if log.gzip {
            read_forwards(config, log.file, path, stop_before, &mut keep)?
        } else {
            read_backwards(config, log.file, log.len, &mut keep).map_err(|e| io_error(path, e))?
        };
        if reached_older {
            break;
        }
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
/// is older than the window. True when it did (older files need not be read).
fn read_backwards(
    config: &LogFilesConfig,
    mut file: File,
    len: u64,
    keep: &mut dyn FnMut(ParsedLine, u64) -> Result<bool>,
) -> std::result::Result<bool, ReadError> {
    let mut pending = Pending::default();
    let mut failure = None;
    let stopped = lines::backwards(&mut file, len, &mut |raw, offset| {
        let text = String::from_utf8_lossy(raw);
        match parse_line(&text, config.format, config.zone) {
            Some(mut parsed) => {
                pending.attach(&mut parsed, true);
                keep(parsed, offset).unwrap_or_else(|e| {
                    failure = Some(e);
                    false
                })
            }
            None => {
                pending.push(&text);
                true
            }
        }
    })?;
    match failure {
        Some(e) => Err(ReadError::Stop(e)),
        None => Ok(stopped),
    }
}

/// Reads a gzip file from its start; every entry goes to `keep`. True when the file's newest
/// entry is older than `stop_before`. A damaged or cut gzip file gives the entries before the
/// damage, with a warning.
fn read_forwards(
    config: &LogFilesConfig,
    file: File,
    path: &Path,
    stop_before: DateTime<Utc>,
    keep: &mut dyn FnMut(ParsedLine, u64) -> Result<bool>,
) -> Result<bool> {
    let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    let mut current: Option<(ParsedLine, u64)> = None;
    let mut pending = Pending::default();
    let mut newest: Option<DateTime<Utc>> = None;
    let mut failure = None;
    let mut emit = |entry: Option<(ParsedLine, u64)>, pending: &mut Pending| -> Result<()> {
        if let Some((mut p, at)) = entry {
            pending.attach(&mut p, false);
            newest = Some(newest.map_or(p.timestamp, |n| n.max(p.timestamp)));
            keep(p, at)?;
        }
        Ok(())
    };
    let read = lines::forwards(decoder, &mut |raw, offset| {
        let text = String::from_utf8_lossy(raw);
        match parse_line(&text, config.format, config.zone) {
            Some(parsed) => {
                let before = current.replace((parsed, offset));
                if let Err(e) = emit(before, &mut pending) {
                    failure = Some(e);
                    return false;
                }
            }
            None if current.is_some() => pending.push(&text),
            None => {}
        }
        true
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if let Err(e) = read {
        tracing::warn!(file = %path.display(), error = %e, "a damaged gzip log: read up to the damage");
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
