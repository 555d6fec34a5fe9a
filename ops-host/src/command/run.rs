//! Running one command of a deployer: argv without a shell, in its own process group (an
//! `npm run` starts children: a timeout kills them all), its output kept within bounds.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ops_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Standard output kept at most (a status or release list in JSON).
pub const MAX_STDOUT: usize = 4 << 20;
/// Standard error kept while it is read (its end goes into errors).
const STDERR_KEEP: usize = 8 << 10;

/// What a command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its standard output (at most [`MAX_STDOUT`]).
    pub stdout: Vec<u8>,
    /// The end of its standard error.
    pub stderr: String,
}

/// Runs `argv` in `dir` (inherited environment plus `env`) and waits at most `timeout`; exit 0
/// gives its output. A non-zero exit is `Provider` with the end of its standard error
/// (redacted); a timeout kills its whole process group and is `Timeout`; a missing program is
/// `NotFound`.
pub async fn run(
    op: &'static str,
    argv: &[String],
    dir: Option<&Path>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Output> {
    let program = argv
        .first()
        .ok_or_else(|| Error::invalid_input("host", op, "command", "names no program"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            "host",
            op,
            ErrorKind::NotFound {
                resource: format!("the program {program:?} (not on PATH, or not executable)"),
            },
        ),
        _ => ops_core::error::from_io("host", op, e),
    })?;
    let group = child.id();
    let stdout = tokio::spawn(read_bounded(child.stdout.take(), MAX_STDOUT));
    let stderr = tokio::spawn(read_bounded(child.stderr.take(), usize::MAX));
    let waited = ops_core::clock::peer_timeout(timeout, child.wait()).await;
    let status = match waited {
        Some(s) => s.map_err(|e| ops_core::error::from_io("host", op, e))?,
        None => {
            if let Some(pgid) = group
                .and_then(|g| i32::try_from(g).ok())
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.wait().await;
            return Err(Error::new(
                "host",
                op,
                ErrorKind::Timeout { after: timeout },
            ));
        }
    };
    let (stdout, stdout_cut) = stdout.await.unwrap_or_default();
    let (stderr, _) = stderr.await.unwrap_or_default();
    if !status.success() {
        return Err(crate::exit::failed(op, &argv.join(" "), status, &stderr));
    }
    if stdout_cut {
        return Err(Error::new(
            "host",
            op,
            ErrorKind::Decode {
                detail: format!("{} printed more than {MAX_STDOUT} bytes", argv.join(" ")),
            },
        ));
    }
    Ok(Output {
        stdout,
        stderr: crate::exit::stderr_tail(&stderr),
    })
}

/// Everything `from` gives, keeping at most `cap` bytes (the first for stdout; stderr keeps
/// all and is cut to its end by [`tail`]); whether more came.
async fn read_bounded(from: Option<impl AsyncRead + Unpin>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut from) = from else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut cut = false;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return (out, cut),
            Ok(n) => {
                if cap == usize::MAX {
                    out.extend_from_slice(&buf[..n]);
                    // Only the end is kept: drop the front as it grows.
                    if out.len() > 4 * STDERR_KEEP {
                        out.drain(..out.len() - STDERR_KEEP);
                    }
                } else if out.len() + n <= cap {
                    out.extend_from_slice(&buf[..n]);
                } else {
                    cut = true;
                }
            }
        }
    }
}
