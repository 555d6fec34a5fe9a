//! [`SqliteIntegrityCheck`]: the seed runbook's `PRAGMA integrity_check` on a backup.

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::contracts::RestoreTest;
use crate::contracts::{BackupInfo, BackupStore};
use crate::{Error, ErrorKind, Result};

/// Downloads a SQLite backup to a temporary file (verified against its checksum on the way)
/// and runs `PRAGMA integrity_check` on it, read-only. The file is removed afterwards.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::adapters::{FsBackupStore, SqliteIntegrityCheck};
/// use ops_core::contracts::{BackupStore, PutArtifact};
/// use ops_core::contracts::RestoreTest;
/// let dir = tempfile::tempdir().unwrap();
/// let db = dir.path().join("app.db");
/// rusqlite::Connection::open(&db).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
/// let store = FsBackupStore::open(dir.path().join("backups")).await?;
/// let put = PutArtifact { id: "app-1.db".into(), source: None, labels: Default::default() };
/// let info = store.put_artifact(&put, Box::pin(tokio::fs::File::open(&db).await.unwrap())).await?;
/// let found = SqliteIntegrityCheck::new().check(&store, &info).await?;
/// assert!(found.starts_with("integrity_check ok"), "{found}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SqliteIntegrityCheck {
    _private: (),
}

impl SqliteIntegrityCheck {
    /// The check.
    pub fn new() -> Self {
        Self::default()
    }
}

fn failed(detail: impl Into<String>) -> Error {
    Error::new(
        "sqlite",
        "integrity_check",
        ErrorKind::VerificationFailed {
            check: "sqlite_integrity".into(),
            detail: detail.into(),
        },
    )
}

#[async_trait]
impl RestoreTest for SqliteIntegrityCheck {
    fn name(&self) -> &str {
        "sqlite-integrity-check"
    }

    async fn check(&self, store: &dyn BackupStore, backup: &BackupInfo) -> Result<String> {
        let dir = tempfile::tempdir().map_err(|e| crate::error::from_io("sqlite", "tempdir", e))?;
        let path = dir.path().join("backup.db");
        let mut reader = crate::codec::open_plain(store, backup).await?;
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| crate::error::from_io("sqlite", "write_copy", e))?;
        // A checksum mismatch surfaces here, before SQLite ever opens the file.
        tokio::io::copy(&mut reader, &mut file)
            .await
            .map_err(|e| crate::error::from_io("sqlite", "download", e))?;
        file.flush()
            .await
            .map_err(|e| crate::error::from_io("sqlite", "write_copy", e))?;
        drop(file);
        let result = tokio::task::spawn_blocking(move || integrity_check(&path))
            .await
            .map_err(|e| failed(format!("the check did not finish: {e}")))?;
        drop(dir);
        result
    }
}

fn integrity_check(path: &std::path::Path) -> Result<String> {
    let mut header = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut header))
        .map_err(|e| crate::error::from_io("sqlite", "read_copy", e))?;
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(failed(
            "not a SQLite database (no \"SQLite format 3\" header)",
        ));
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags)
        .map_err(|e| failed(format!("cannot open: {e}")))?;
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(|e| failed(format!("integrity_check failed to run: {e}")))?;
    if rows != ["ok"] {
        let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
        return Err(failed(format!(
            "{} problem(s): {}",
            rows.len(),
            shown.join("; ")
        )));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| failed(format!("cannot read the schema: {e}")))?;
    Ok(format!("integrity_check ok; {tables} tables"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::FsBackupStore;
    use crate::contracts::PutArtifact;

    async fn stored(bytes: Vec<u8>) -> (tempfile::TempDir, FsBackupStore, BackupInfo) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBackupStore::open(dir.path().join("b")).await.unwrap();
        let put = PutArtifact {
            id: "x.db".into(),
            source: None,
            labels: Default::default(),
        };
        let info = store
            .put_artifact(&put, Box::pin(std::io::Cursor::new(bytes)))
            .await
            .unwrap();
        (dir, store, info)
    }

    fn database() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             CREATE INDEX t_v ON t(v);",
        )
        .unwrap();
        for i in 0..2000 {
            conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("value-{i:05}")])
                .unwrap();
        }
        drop(conn);
        std::fs::read(path).unwrap()
    }

    #[tokio::test]
    async fn a_sound_database_passes() {
        let (_d, store, info) = stored(database()).await;
        let found = SqliteIntegrityCheck::new()
            .check(&store, &info)
            .await
            .unwrap();
        assert_eq!(found, "integrity_check ok; 1 tables");
    }

    #[tokio::test]
    async fn a_damaged_database_fails_with_what_is_wrong() {
        let mut db = database();
        // Scribble over the middle pages (index and table b-trees) but keep the header.
        for b in &mut db[8 * 1024..20 * 1024] {
            *b = 0x5a;
        }
        let (_d, store, info) = stored(db).await;
        let err = SqliteIntegrityCheck::new()
            .check(&store, &info)
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_named_as_such() {
        let (_d, store, info) = stored(b"-- PostgreSQL database dump".to_vec()).await;
        let err = SqliteIntegrityCheck::new()
            .check(&store, &info)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a SQLite database"), "{err}");
    }
}
