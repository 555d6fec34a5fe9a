//! Logical backups with the PostgreSQL tools, streamed: `pg_dump -Fc` straight into any
//! [`BackupStore`] (memory constant in the database's size; the store checksums on the way),
//! `pg_restore` straight from it, in one transaction. A dump whose process fails is never a backup: its exit status
//! is checked before the stream ends, so the store's write fails and nothing is kept.
//!
//! Connection details go to the tools as arguments and the password as `PGPASSWORD`, never on
//! a command line another user could read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use ops_core::codec::Codec;
use ops_core::contracts::{ArtifactReader, BackupInfo, BackupStore, PutArtifact};
use ops_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{Child, ChildStdout, Command};
use tokio_postgres::config::{Host, SslMode};

use crate::connect::PgConfig;

/// The most stderr kept from a tool (for the error).
const STDERR_KEEP: usize = 4096;

/// Where the client tools are and how to reach a server with them.
#[derive(Debug, Clone)]
pub struct PgTools {
    bin: PathBuf,
}

impl PgTools {
    /// Tools in `bin` (which holds `pg_dump` and `pg_restore`).
    pub fn new(bin: impl Into<PathBuf>) -> Result<Self> {
        let bin = bin.into();
        if !bin.join("pg_dump").is_file() || !bin.join("pg_restore").is_file() {
            return Err(Error::invalid_input(
                "postgres",
                "tools",
                "bin",
                format!("{} has no pg_dump / pg_restore", bin.display()),
            ));
        }
        Ok(Self { bin })
    }

    /// The tools found on PATH or in /usr/lib/postgresql/*/bin.
    pub fn find() -> Result<Self> {
        find_bin_dir(path_dirs(), &["pg_dump", "pg_restore"])
            .map(|bin| Self { bin })
            .ok_or_else(|| {
                Error::unsupported(
                    "postgres",
                    "tools",
                    "pg_dump and pg_restore (install postgresql-client)",
                )
            })
    }

    fn command(&self, tool: &str, db: &PgConfig) -> Command {
        let s = db.settings();
        let mut cmd = Command::new(self.bin.join(tool));
        if let Some(h) = s.get_hosts().first() {
            match h {
                Host::Tcp(name) => cmd.arg("--host").arg(name),
                Host::Unix(path) => cmd.arg("--host").arg(path),
            };
        }
        if let Some(p) = s.get_ports().first() {
            cmd.arg("--port").arg(p.to_string());
        }
        if let Some(u) = s.get_user() {
            cmd.arg("--username").arg(u);
        }
        cmd.arg("--no-password");
        if let Some(pw) = s.get_password() {
            cmd.env("PGPASSWORD", String::from_utf8_lossy(pw).to_string());
        }
        let tls = db.tls();
        cmd.env(
            "PGSSLMODE",
            match (tls.libpq_mode, s.get_ssl_mode()) {
                (Some(mode), _) => mode,
                (None, SslMode::Disable) => "disable",
                (None, SslMode::Require) => "require",
                (None, _) => "prefer",
            },
        );
        if let Some(root) = &tls.root_cert {
            cmd.env("PGSSLROOTCERT", root);
        }
        cmd.env("PGCONNECT_TIMEOUT", "10");
        cmd.kill_on_drop(true);
        cmd
    }
}

/// A database name as the tools' `--dbname` must get it: a conninfo string holding only a
/// quoted `dbname`, because libpq reads a bare name containing `=` (or starting with
/// `postgres://`) as a whole connection string, which could point the tool at another server.
fn dbname_conninfo(dbname: &str) -> String {
    let escaped = dbname.replace('\\', "\\\\").replace('\'', "\\'");
    format!("dbname='{escaped}'")
}

fn tool_error(tool: &str, what: String) -> Error {
    Error::new(
        "postgres",
        "tool",
        ErrorKind::VerificationFailed {
            check: tool.to_string(),
            detail: ops_core::redact::redact_text(&what),
        },
    )
}

/// Reads a tool's stderr to the end in the background, keeping its head.
fn drain_stderr(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let err = child.stderr.take();
    tokio::spawn(async move {
        let mut kept = String::new();
        let Some(mut err) = err else { return kept };
        let mut buf = vec![0u8; 1024];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if kept.len() < STDERR_KEEP {
                kept.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        kept
    })
}

/// The process's exit status and all it said on stderr.
type Exit = Pin<
    Box<
        dyn std::future::Future<Output = (std::io::Result<std::process::ExitStatus>, String)>
            + Send,
    >,
>;

/// `pg_dump`'s stdout, whose end is reported only once the process exited successfully.
struct DumpStream {
    out: ChildStdout,
    exit: Exit,
    started: bool,
    /// How the process ended, once known: later reads at the end say it again.
    exited: Option<std::result::Result<(), String>>,
}

impl AsyncRead for DumpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.out).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                match &self.exited {
                    Some(Ok(())) => return Poll::Ready(Ok(())),
                    Some(Err(why)) => {
                        return Poll::Ready(Err(tool_error("pg_dump", why.clone()).into()));
                    }
                    None => {}
                }
                // End of output: only a clean exit makes it the end of a backup.
                match self.exit.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready((Ok(s), _)) if s.success() && self.started => {
                        self.exited = Some(Ok(()));
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready((Ok(s), stderr)) => {
                        let why = format!("pg_dump {s}: {}", stderr.trim());
                        self.exited = Some(Err(why.clone()));
                        Poll::Ready(Err(tool_error("pg_dump", why).into()))
                    }
                    Poll::Ready((Err(e), _)) => {
                        self.exited = Some(Err(e.to_string()));
                        Poll::Ready(Err(e))
                    }
                }
            }
            Poll::Ready(Ok(())) => {
                if !self.started {
                    let head = &buf.filled()[before..];
                    if !head.starts_with(b"PGDMP") && head.len() >= 5 {
                        return Poll::Ready(Err(tool_error(
                            "pg_dump",
                            "the output is not a custom-format dump".into(),
                        )
                        .into()));
                    }
                    self.started = true;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// The directories on `PATH`.
pub(crate) fn path_dirs() -> Vec<PathBuf> {
    std::env::var("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// The first directory holding every one of `tools`: `candidates` in order, then the installed
/// versions' `/usr/lib/postgresql/*/bin`, newest first.
pub(crate) fn find_bin_dir(mut candidates: Vec<PathBuf>, tools: &[&str]) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    candidates.extend(versions.into_iter().rev());
    candidates
        .into_iter()
        .find(|d| tools.iter().all(|t| d.join(t).is_file()))
}

/// Streams `pg_dump -Fc` of `db` into `store` as `request`; with `snapshot`, the dump reads
/// that exported snapshot (`pg_export_snapshot()` of a transaction the caller holds open until
/// this returns).
pub async fn dump_into(
    tools: &PgTools,
    db: &PgConfig,
    store: &dyn BackupStore,
    request: &PutArtifact,
    snapshot: Option<&str>,
) -> Result<BackupInfo> {
    let no_labels = async { Ok(BTreeMap::new()) };
    dump_into_labelled(
        tools,
        db,
        store,
        request,
        snapshot,
        Codec::DEFAULT,
        no_labels,
    )
    .await
}

/// The most of the dump held in memory while `late_labels` are still being worked out.
const PREFIX_CAP: usize = 8 * 1024 * 1024;

/// [`dump_into`], with labels that take time to work out (row counts in the dump's snapshot)
/// worked out while the dump runs: up to 8 MiB of its output wait in memory meanwhile (then
/// `pg_dump` waits), and the write into the store starts once the labels are known.
///
/// With `codec` zstd, `pg_dump` writes its archive uncompressed (`-Z0`) and the stream is
/// compressed with zstd on its way into the store ([`ops_core::codec`]): about a third of the
/// size of `-Fc`'s zlib in the same time. With `Codec::Raw`, `pg_dump` compresses as it always
/// did (zlib 6) and the store gets its output as it is.
pub async fn dump_into_labelled<F>(
    tools: &PgTools,
    db: &PgConfig,
    store: &dyn BackupStore,
    request: &PutArtifact,
    snapshot: Option<&str>,
    codec: Codec,
    late_labels: F,
) -> Result<BackupInfo>
where
    F: std::future::Future<Output = Result<BTreeMap<String, String>>>,
{
    codec.validate()?;
    let dbname = db.settings().get_dbname().unwrap_or("postgres").to_string();
    let mut cmd = tools.command("pg_dump", db);
    let own_compression = match codec {
        Codec::Raw => "--compress=6",
        Codec::Zstd { .. } => "--compress=0",
    };
    cmd.args(["--format=custom", own_compression, "--dbname"])
        .arg(dbname_conninfo(&dbname));
    if let Some(s) = snapshot {
        cmd.arg(format!("--snapshot={s}"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ops_core::error::from_io("postgres", "pg_dump", e))?;
    let stderr = drain_stderr(&mut child);
    let out = child
        .stdout
        .take()
        .ok_or_else(|| tool_error("pg_dump", "no stdout".into()))?;
    // The exit status with everything said on stderr, so a failure carries the whole reason.
    let exit: Exit = Box::pin(async move {
        let status = child.wait().await;
        (status, stderr.await.unwrap_or_default())
    });
    let mut dump = DumpStream {
        out,
        exit,
        started: false,
        exited: None,
    };
    let mut prefix = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut at_end = false;
    tokio::pin!(late_labels);
    let labels = loop {
        tokio::select! {
            biased;
            labels = &mut late_labels => break labels?,
            read = dump.read(&mut buf), if prefix.len() < PREFIX_CAP && !at_end => match read {
                Ok(0) => at_end = true,
                Ok(n) => prefix.extend_from_slice(&buf[..n]),
                // pg_dump failed before anything was stored: nothing to clean up.
                Err(e) => return Err(ops_core::error::from_io("postgres", "pg_dump", e)),
            },
        }
    };
    let mut request = request.clone();
    request.labels.extend(labels);
    let reader: ArtifactReader = Box::pin(std::io::Cursor::new(prefix).chain(dump));
    let encoded =
        ops_core::codec::encode(reader, codec, ops_core::codec::default_threads()).await?;
    request.labels.extend(encoded.codec.labels());
    let info = store.put_artifact(&request, encoded.reader).await?;
    tracing::info!(
        db = %dbname, backup = %info.id, codec = %encoded.codec.describe(),
        dumped = encoded.counts.plain(), stored = ?info.size_bytes,
        "pg_dump streamed into the store"
    );
    Ok(info)
}

/// Streams the backup `id` from `store` into `pg_restore` for `target`.
pub async fn restore_from(
    tools: &PgTools,
    target: &PgConfig,
    store: &dyn BackupStore,
    id: &str,
    clean: bool,
) -> Result<u64> {
    let dbname = target
        .settings()
        .get_dbname()
        .unwrap_or("postgres")
        .to_string();
    // Decompressed on the way in (a dump written before compression as it is); a damaged
    // frame ends the copy as a corrupt backup before pg_restore commits.
    let info = store.describe(id).await?;
    let mut reader = ops_core::codec::open_plain(store, &info).await?;
    let mut cmd = tools.command("pg_restore", target);
    // One transaction: if the backup fails its checksum at the end of the stream, pg_restore
    // is killed before it commits, and the target is as it was.
    cmd.args([
        "--no-owner",
        "--exit-on-error",
        "--single-transaction",
        "--dbname",
    ])
    .arg(dbname_conninfo(&dbname));
    if clean {
        cmd.args(["--clean", "--if-exists"]);
    }
    // pg_restore reads its stdin 4 KiB at a time. Through a pipe kept full, every such read
    // wakes the writer for one page: about 180,000 wake-ups for a 700 MB archive, measured
    // as over a second of CPU beside the restore. A Unix socket wakes its writer only once
    // the reader has drained three quarters of the buffer (a hundred-odd wake-ups instead).
    let (mut feed, stdin) = stdin_socket()?;
    cmd.stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let spawned = cmd.spawn();
    // Our copy of pg_restore's end is closed now, so a pg_restore that exits is a broken pipe
    // here rather than a write that waits for ever.
    drop(cmd);
    let mut child = spawned.map_err(|e| ops_core::error::from_io("postgres", "pg_restore", e))?;
    let stderr = drain_stderr(&mut child);
    // A checksum failure surfaces here, and pg_restore is stopped before it commits more.
    let copied = copy_large(&mut reader, &mut feed).await;
    drop(feed);
    let copied = match copied {
        Ok(n) => n,
        // pg_restore stopped reading: it exited first, and its own reason is the one to give
        // (`could not uncompress data`, `input file does not appear to be a valid archive`).
        Err(e) if is_hang_up(&e) => {
            let status = child.wait().await.ok();
            let why = stderr.await.unwrap_or_default();
            let status = status.map_or("stopped".to_string(), |s| s.to_string());
            // Garbage from a damaged artifact can stop pg_restore before the damage is
            // detected (zstd checks a frame at its end, the store its checksum at the end):
            // read the rest, and a damaged backup is named as such.
            if let Err(damage) = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await {
                let damage = ops_core::error::from_io("postgres", "restore_read", damage);
                if matches!(
                    damage.kind(),
                    ErrorKind::VerificationFailed { .. } | ErrorKind::ChecksumMismatch { .. }
                ) {
                    return Err(damage);
                }
            }
            return Err(restore_failed(id, &status, &why));
        }
        Err(e) => {
            let _ = child.kill().await;
            return Err(ops_core::error::from_io("postgres", "restore_read", e));
        }
    };
    let status = child
        .wait()
        .await
        .map_err(|e| ops_core::error::from_io("postgres", "pg_restore", e))?;
    if !status.success() {
        let why = stderr.await.unwrap_or_default();
        return Err(restore_failed(id, &status.to_string(), &why));
    }
    Ok(copied)
}

/// The size of the writes into pg_restore.
const FEED_BYTES: usize = 1 << 20;

/// A connected pair of Unix sockets: ours to write (non-blocking, for tokio) and pg_restore's
/// stdin (blocking, as a program's stdin is).
fn stdin_socket() -> Result<(tokio::net::UnixStream, Stdio)> {
    let io = |e| ops_core::error::from_io("postgres", "pg_restore_stdin", e);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(io)?;
    ours.set_nonblocking(true).map_err(io)?;
    let ours = tokio::net::UnixStream::from_std(ours).map_err(io)?;
    Ok((ours, Stdio::from(std::os::fd::OwnedFd::from(theirs))))
}

/// The reader went away: pg_restore exited (a pipe says broken pipe, a socket may say reset).
fn is_hang_up(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}

/// Copies `reader` into `writer` in writes of up to [`FEED_BYTES`]; the bytes copied. The
/// write side is shut down at the end, which is pg_restore's end of file.
async fn copy_large(
    reader: &mut ArtifactReader,
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let mut buf = vec![0u8; FEED_BYTES];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            writer.shutdown().await?;
            return Ok(total);
        }
        writer.write_all(&buf[..n]).await?;
        total = total.saturating_add(n as u64);
    }
}

/// What pg_restore says when the archive itself is damaged (not the target or the server).
const CORRUPTION_SIGNS: &[&str] = &[
    "could not uncompress data",
    "did not find magic string",
    "does not appear to be a valid archive",
    "unexpected end of file",
    "corrupt",
    "could not read input file",
    "bad block",
];

/// pg_restore's failure, in its own words; a damaged archive is called a corrupt backup.
fn restore_failed(id: &str, status: &str, stderr: &str) -> Error {
    let why = stderr.trim();
    if CORRUPTION_SIGNS.iter().any(|s| why.contains(s)) {
        return Error::new(
            "postgres",
            "restore",
            ErrorKind::VerificationFailed {
                check: "backup".into(),
                detail: ops_core::redact::redact_text(&format!(
                    "corrupt backup {id}: pg_restore {status}: {why}"
                )),
            },
        );
    }
    tool_error("pg_restore", format!("pg_restore {status}: {why}"))
}
