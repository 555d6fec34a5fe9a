//! The one error for a program that exited unsuccessfully: its exit code and the end of what it
//! said on standard error, secrets masked.

use std::process::ExitStatus;

use ops_core::{Error, ErrorKind};

/// The end of standard error kept in an error.
const STDERR_TAIL: usize = 8 << 10;

/// `what` (the command, for the reader) exited with `status` after saying `stderr`.
pub(crate) fn failed(op: &'static str, what: &str, status: ExitStatus, stderr: &[u8]) -> Error {
    Error::new(
        "host",
        op,
        ErrorKind::Provider {
            status: 0,
            code: Some(
                status
                    .code()
                    .map_or("killed by a signal".into(), |c| format!("exit {c}")),
            ),
            body_excerpt: format!("{what}: {}", stderr_tail(stderr)),
        },
    )
}

/// The end of `stderr` as text, secrets masked.
pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    ops_core::redact::redact_text(String::from_utf8_lossy(&stderr[start..]).trim())
}
