//! A log's files and their lines. The files: the log and its rotations, opened at once. The
//! lines, bounded: backwards from a file's end (a query reads only the tail it needs) or
//! forwards (a gzip stream cannot be read backwards). The last line is left out while
//! it has no newline (it is being written); a line longer than [`MAX_LINE`] is skipped whole;
//! a trailing carriage return is dropped.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The longest line read; a longer one is no log line a program meant to write.
pub const MAX_LINE: usize = 1 << 20;
/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;

/// One file of a log, open.
#[derive(Debug)]
pub struct LogFile {
    /// Its path when it was opened.
    pub path: PathBuf,
    /// The open file.
    pub file: File,
    /// Its length when it was opened (lines appended later are read by the next query).
    pub len: u64,
    /// A gzip file (`.gz`), read forwards.
    pub gzip: bool,
}

/// Opens the log at `path` and its rotations (`.1` or `.1.gz`, `.2` … up to `.max_rotated`),
/// newest first. All are opened at once, so a rotation afterwards changes nothing of what is
/// read; a file met under two names (renamed while this ran) is kept once, by its inode.
/// `NotFound` when there is none.
pub fn open_rotations(path: &Path, max_rotated: u32) -> std::io::Result<Vec<LogFile>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut candidates = vec![path.to_path_buf()];
    for n in 1..=max_rotated {
        for suffix in ["", ".gz"] {
            candidates.push(path.with_file_name(format!("{name}.{n}{suffix}")));
        }
    }
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for path in candidates {
        let file = match File::open(&path) {
            Ok(f) => f,
            // Not there, or rotated away since: its lines are in another name.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let gzip = path.extension().is_some_and(|e| e == "gz");
        files.push(LogFile {
            path,
            file,
            len: meta.len(),
            gzip,
        });
    }
    if files.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no log file {} (nor a rotation of it)", path.display()),
        ));
    }
    Ok(files)
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Gives `each` the lines of the first `len` bytes of `file`, last first, with the offset of
/// each line's start, until `each` returns false. True when `each` stopped it.
pub fn backwards(
    file: &mut File,
    len: u64,
    each: &mut dyn FnMut(&[u8], u64) -> bool,
) -> std::io::Result<bool> {
    let mut pos = len;
    // The start of a line whose end came with the chunk after this one.
    let mut carry: Vec<u8> = Vec::new();
    // The bytes after the chunk's last newline are dropped: at first the unterminated last
    // line, later the rest of an overlong one.
    let mut drop_tail = true;
    // Buffers reused from chunk to chunk: a fresh quarter megabyte each time costs page faults.
    let mut joined: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut starts = Vec::new();
    loop {
        let take = usize::try_from(pos.min(CHUNK as u64)).unwrap_or(CHUNK);
        let start = pos - take as u64;
        file.seek(SeekFrom::Start(start))?;
        joined.clear();
        joined.resize(take, 0);
        file.read_exact(&mut joined)?;
        joined.extend_from_slice(&carry);
        if drop_tail {
            match memchr::memrchr(b'\n', &joined) {
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
            memchr::memchr(b'\n', &joined).map_or(joined.len(), |i| i + 1)
        };
        starts.clear();
        let mut s = cut;
        for nl in memchr::memchr_iter(b'\n', &joined[cut..]) {
            let e = cut + nl + 1;
            starts.push((s, e));
            s = e;
        }
        for &(s, e) in starts.iter().rev() {
            if e - s > MAX_LINE {
                continue;
            }
            if !each(trim(&joined[s..e]), start + s as u64) {
                return Ok(true);
            }
        }
        carry.clear();
        if cut > MAX_LINE {
            drop_tail = true;
        } else {
            carry.extend_from_slice(&joined[..cut]);
        }
        if start == 0 {
            return Ok(false);
        }
        pos = start;
    }
}

/// Gives `each` the lines of `reader`, first first, with the offset of each line's start,
/// until `each` returns false. True when `each` stopped it. A last line without a newline is
/// given too (a finished stream, a gzip file, is not being written).
pub fn forwards(
    mut reader: impl Read,
    each: &mut dyn FnMut(&[u8], u64) -> bool,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    let mut line: Vec<u8> = Vec::new();
    let mut overlong = false;
    let mut offset = 0u64;
    let mut line_start = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let (piece, ends) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            rest = &rest[piece.len()..];
            offset += piece.len() as u64;
            if line.len().saturating_add(piece.len()) > MAX_LINE {
                overlong = true;
                line.clear();
            } else if !overlong {
                line.extend_from_slice(piece);
            }
            if ends {
                if !std::mem::take(&mut overlong) && !each(trim(&line), line_start) {
                    return Ok(true);
                }
                line.clear();
                line_start = offset;
            }
        }
    }
    if !line.is_empty() && !overlong {
        return Ok(!each(trim(&line), line_start));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn lines_back(bytes: &[u8]) -> Vec<(Vec<u8>, u64)> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let mut out = Vec::new();
        backwards(&mut f, bytes.len() as u64, &mut |l, at| {
            out.push((l.to_vec(), at));
            true
        })
        .unwrap();
        out.reverse();
        out
    }

    fn lines_fwd(bytes: &[u8]) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        forwards(bytes, &mut |l, at| {
            out.push((l.to_vec(), at));
            true
        })
        .unwrap();
        out
    }

    /// What the readers should give: complete lines of at most MAX_LINE bytes.
    fn model(bytes: &[u8], last_too: bool) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut at = 0u64;
        for piece in bytes.split_inclusive(|&c| c == b'\n') {
            let complete = piece.ends_with(b"\n");
            if (complete || last_too) && piece.len() <= MAX_LINE {
                out.push((trim(piece).to_vec(), at));
            }
            at += piece.len() as u64;
        }
        out
    }

    #[test]
    fn chunk_boundaries_and_overlong_lines() {
        let mut bytes = Vec::new();
        for i in 0..20_000u32 {
            bytes.extend_from_slice(
                format!("line {i} {}\r\n", "z".repeat(i as usize % 97)).as_bytes(),
            );
            if i == 7000 {
                bytes.extend(std::iter::repeat_n(b'y', MAX_LINE + 10));
                bytes.push(b'\n');
            }
        }
        bytes.extend_from_slice(b"being written");
        assert_eq!(lines_back(&bytes), model(&bytes, false));
        assert_eq!(lines_fwd(&bytes), model(&bytes, true));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn both_directions_give_the_complete_lines(
            bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..3000),
        ) {
            prop_assert_eq!(lines_back(&bytes), model(&bytes, false));
            prop_assert_eq!(lines_fwd(&bytes), model(&bytes, true));
        }
    }
}
