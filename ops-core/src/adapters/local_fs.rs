//! What the filesystem adapters share: I/O errors that name the path, and opening a directory
//! that must be readable.

use std::path::Path;

use tokio::fs;

use crate::{Error, ErrorKind, Result};

/// An [`ErrorKind::Io`] naming `path`.
pub(super) fn io_err(
    provider: &'static str,
    op: &'static str,
    path: &Path,
    e: &std::io::Error,
) -> Error {
    Error::new(
        provider,
        op,
        ErrorKind::Io {
            kind: e.kind(),
            message: format!("{}: {e}", path.display()),
        },
    )
}

/// Checks `dir` is a directory that can be listed; `InvalidInput` when it is something else,
/// `Io` (naming the path) when it is missing or unreadable.
pub(super) async fn readable_dir(provider: &'static str, field: &str, dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir)
        .await
        .map_err(|e| io_err(provider, "open", dir, &e))?;
    if !meta.is_dir() {
        return Err(Error::invalid_input(
            provider,
            "open",
            field,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let _listing = fs::read_dir(dir)
        .await
        .map_err(|e| io_err(provider, "open", dir, &e))?;
    Ok(())
}
