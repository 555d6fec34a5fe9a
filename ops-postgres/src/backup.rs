//! [`PgBackupStore`]: back up, restore and verify the databases of one server, the dumps kept
//! in any [`BackupStore`]; [`PgSource`], how a backup names the database it came from.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::codec::Codec;
use ops_core::contracts::{BackupInfo, BackupStore, PutArtifact, RestoreOutcome};
use ops_core::contracts::{RestoreTest, backup_id};
use ops_core::{Error, ErrorKind, Result};

use crate::connect::Postgres;
use crate::counts::{compare, count_rows, counts_labels, row_counts};
use crate::dump::{PgTools, dump_into_labelled, restore_from};
use crate::error::pg_error;
use crate::scratch::Scratch;

/// The database a backup came from, as its [`BackupInfo::source`] says: `postgres:NAME`. The
/// one place that form is written and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSource {
    /// The database's name.
    pub database: String,
}

impl PgSource {
    const PREFIX: &'static str = "postgres:";

    /// The source `database`.
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
        }
    }

    /// The database a source names: `postgres:NAME`, or a bare `NAME` as a backup request
    /// may give it. `None` for another kind of source (or an empty name).
    ///
    /// ```
    /// use ops_postgres::PgSource;
    /// assert_eq!(PgSource::parse("postgres:shop"), Some(PgSource::new("shop")));
    /// assert_eq!(PgSource::parse("shop").unwrap().to_string(), "postgres:shop");
    /// assert_eq!(PgSource::parse("sqlite:/var/app.db"), None);
    /// ```
    pub fn parse(source: &str) -> Option<Self> {
        let name = match source.strip_prefix(Self::PREFIX) {
            Some(name) => name,
            None if source.contains(':') => return None,
            None => source,
        };
        (!name.is_empty()).then(|| Self::new(name))
    }
}

impl std::fmt::Display for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.database)
    }
}

/// Logical backups of one database (what [`PgBackupStore`] does for each).
#[derive(Debug, Clone)]
struct Database {
    db: Postgres,
    tools: PgTools,
    clock: SharedClock,
    codec: Codec,
}

impl Database {
    fn new(db: Postgres, tools: PgTools) -> Self {
        Self {
            db,
            tools,
            clock: system_clock(),
            codec: Codec::DEFAULT,
        }
    }

    fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    fn dbname(&self) -> String {
        self.db
            .config()
            .settings()
            .get_dbname()
            .unwrap_or("postgres")
            .to_string()
    }

    /// Streams `pg_dump -Fc` into `store` as `id` (default `DB-YYYYMMDD-HHMMSS.dump`).
    ///
    /// The dump reads a snapshot exported by a repeatable-read transaction held open for it,
    /// and every table's rows are counted in that same snapshot and recorded in the backup's
    /// labels ([`crate::counts::ROW_COUNTS_LABEL`]): what a verification compares a restore
    /// with, however much the database was written meanwhile.
    async fn backup(
        &self,
        store: &dyn BackupStore,
        id: Option<String>,
        labels: BTreeMap<String, String>,
    ) -> Result<BackupInfo> {
        let id = id.unwrap_or_else(|| backup_id(&self.dbname(), Some("dump"), self.clock.now()));
        let snapshot_holder = self.db.dedicated().await?;
        // The counting runs beside pg_dump: one process, not a parallel scan, so it takes a
        // core from nobody on a small machine (pg_dump's compression is the bottleneck).
        snapshot_holder
            .batch_execute(
                "SET max_parallel_workers_per_gather = 0; \
                 BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            )
            .await
            .map_err(|e| pg_error("backup", &e))?;
        let snapshot: String = snapshot_holder
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(|e| pg_error("backup", &e))?
            .get(0);
        let request = PutArtifact {
            id,
            source: Some(PgSource::new(self.dbname()).to_string()),
            labels,
        };
        // Counted in the same snapshot while pg_dump reads it: the two overlap.
        let counted = async { Ok(counts_labels(&count_rows(&snapshot_holder).await?)) };
        let info = dump_into_labelled(
            &self.tools,
            self.db.config(),
            store,
            &request,
            Some(&snapshot),
            self.codec,
            counted,
        )
        .await;
        // The snapshot ends with the transaction (and with the session, whatever happens here).
        let _ = snapshot_holder.batch_execute("COMMIT").await;
        info
    }

    /// Restores backup `id` into the database `target` on the same server. A target with
    /// tables is refused unless `clean` (then the backup's objects replace its own).
    async fn restore(
        &self,
        store: &dyn BackupStore,
        id: &str,
        target: &str,
        clean: bool,
    ) -> Result<RestoreOutcome> {
        let config = self.db.config().with_dbname(target);
        let target_db = Postgres::new(config.clone())?;
        let existing = row_counts(&target_db).await?;
        drop(target_db);
        if !existing.is_empty() && !clean {
            return Err(Error::new(
                "postgres",
                "restore",
                ErrorKind::Conflict {
                    detail: format!(
                        "{target} has {} tables; restore with clean to replace them",
                        existing.len()
                    ),
                },
            ));
        }
        let bytes = restore_from(&self.tools, &config, store, id, clean).await?;
        tracing::info!(backup = id, target, bytes, "restored");
        Ok(RestoreOutcome {
            backup_id: id.to_string(),
            target: target.to_string(),
            bytes: Some(bytes),
        })
    }

    /// Restores backup `id` into a scratch database and compares every table's row count with
    /// the counts recorded when it was taken (never with the live database, which has moved
    /// on). The scratch database is dropped afterwards, also on failure; one left by a test
    /// that was killed is dropped at the start of the next.
    async fn verify(&self, store: &dyn BackupStore, id: &str) -> Result<String> {
        let info = store.describe(id).await?;
        let scratch = Scratch::create(&self.db, &self.dbname()).await?;
        let result = async {
            self.restore(store, id, &scratch.name, false).await?;
            let copy = Postgres::new(self.db.config().with_dbname(&scratch.name))?;
            let restored = row_counts(&copy).await?;
            compare(&info.labels, &restored)
        }
        .await;
        scratch.drop_now().await;
        result
    }
}

/// PostgreSQL backups: the databases of one server, their dumps in an inner [`BackupStore`] (a
/// directory, Cloud Storage, …).
///
/// - As a [`BackupStore`], `create` dumps the database its request names, `restore` loads a
///   backup into a database, and the artifacts themselves live in the inner store: with it the
///   backup and restore runbooks work on PostgreSQL, the restore runbook's pre-restore backup
///   included.
/// - As a [`RestoreTest`], it restores a backup into a scratch database and compares every
///   table's row count with the counts taken in the dump's own snapshot: the backup runbook's
///   verification.
/// - [`PgBackupStore::backup`], [`PgBackupStore::restore_into`] and [`PgBackupStore::verify`]
///   do the same directly.
pub struct PgBackupStore {
    server: Postgres,
    tools: PgTools,
    inner: Arc<dyn BackupStore>,
    clock: SharedClock,
    codec: Codec,
    name: String,
}

impl std::fmt::Debug for PgBackupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackupStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PgBackupStore {
    /// Databases on `server` (any database of its connection), artifacts in `inner`.
    pub fn new(server: Postgres, tools: PgTools, inner: Arc<dyn BackupStore>) -> Self {
        let name = format!("postgres via {}", inner.name());
        Self {
            server,
            tools,
            inner,
            clock: system_clock(),
            codec: Codec::DEFAULT,
            name,
        }
    }

    /// The same store on `clock` (backup names).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Dumps stored with `codec` (default zstd at level 3; `Codec::Raw`: `pg_dump -Fc`'s own
    /// zlib, as before zstd). Restores read either, and dumps taken before this existed.
    pub fn with_codec(mut self, codec: Codec) -> Result<Self> {
        codec.validate()?;
        self.codec = codec;
        Ok(self)
    }

    fn backups_of(&self, db: &str) -> Result<Database> {
        ops_core::contracts::validate_name("postgres", "backup", "database", db)?;
        Ok(Database::new(
            Postgres::new(self.server.config().with_dbname(db))?,
            self.tools.clone(),
        )
        .with_clock(self.clock.clone())
        .with_codec(self.codec))
    }

    /// The database backup `info` came from.
    fn source_of(info: &BackupInfo) -> Result<PgSource> {
        info.source
            .as_deref()
            .and_then(PgSource::parse)
            .ok_or_else(|| {
                Error::invalid_input(
                    "postgres",
                    "restore",
                    "source",
                    format!(
                        "backup {} names no PostgreSQL database it came from",
                        info.id
                    ),
                )
            })
    }

    /// Streams `pg_dump -Fc` of `database` into the inner store as `id` (default
    /// `DATABASE-YYYYMMDD-HHMMSS.dump`). The dump reads a snapshot exported by a
    /// repeatable-read transaction held open for it, and every table's rows are counted in that
    /// same snapshot and recorded in the backup's labels ([`crate::counts::ROW_COUNTS_LABEL`]):
    /// what [`PgBackupStore::verify`] compares a restore with, however much the database was
    /// written meanwhile.
    pub async fn backup(
        &self,
        database: &str,
        id: Option<String>,
        labels: BTreeMap<String, String>,
    ) -> Result<BackupInfo> {
        self.backups_of(database)?
            .backup(self.inner.as_ref(), id, labels)
            .await
    }

    /// Restores backup `id` into the database `target` on this server. A target with tables is
    /// refused unless `clean` (then the backup's objects replace its own).
    pub async fn restore_into(
        &self,
        id: &str,
        target: &str,
        clean: bool,
    ) -> Result<RestoreOutcome> {
        self.backups_of(target)?
            .restore(self.inner.as_ref(), id, target, clean)
            .await
    }

    /// Restores backup `id` into a scratch database beside the one it came from and compares
    /// every table's row count with the counts recorded when it was taken (never with the live
    /// database, which has moved on). The scratch database is dropped afterwards, also on
    /// failure; one left by a process that was killed is dropped at the start of the next.
    pub async fn verify(&self, id: &str) -> Result<String> {
        self.verify_in(self.inner.as_ref(), id).await
    }

    async fn verify_in(&self, store: &dyn BackupStore, id: &str) -> Result<String> {
        let source = Self::source_of(&store.describe(id).await?)?;
        self.backups_of(&source.database)?.verify(store, id).await
    }
}

#[async_trait]
impl RestoreTest for PgBackupStore {
    fn name(&self) -> &str {
        "postgres-restore-and-count"
    }

    async fn check(&self, store: &dyn BackupStore, backup: &BackupInfo) -> Result<String> {
        self.verify_in(store, &backup.id).await
    }
}

#[async_trait]
impl BackupStore for PgBackupStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn created_as(&self) -> Option<String> {
        Some(match self.codec {
            Codec::Raw => "pg_dump -Fc (its own zlib)".into(),
            c => format!("{} (pg_dump -Fc -Z0, then zstd)", c.describe()),
        })
    }

    fn capabilities(&self) -> ops_core::contracts::BackupCapabilities {
        ops_core::contracts::BackupCapabilities {
            create: true,
            artifacts: true,
            restore: true,
            delete: self.inner.capabilities().delete,
            verification: self.inner.capabilities().verification,
        }
    }

    /// Dumps the database `request.source` ([`PgSource`]: `NAME` or `postgres:NAME`) as
    /// `STEM-YYYYMMDD-HHMMSS.dump`, the stem being `request.name` or the database's name; a
    /// second backup within the same second gets `-2`, `-3`, … so names never collide (a
    /// restore's safety copy included).
    async fn create(&self, request: &ops_core::contracts::CreateBackup) -> Result<BackupInfo> {
        let db = PgSource::parse(&request.source)
            .ok_or_else(|| {
                Error::invalid_input(
                    "postgres",
                    "backup",
                    "source",
                    format!("{:?} is not a PostgreSQL database", request.source),
                )
            })?
            .database;
        let db = db.as_str();
        let backups = self.backups_of(db)?;
        let stem = request.name.clone().unwrap_or_else(|| db.to_string());
        let now = self.clock.now();
        let mut id = backup_id(&stem, Some("dump"), now);
        for n in 2..=100 {
            match self.inner.describe(&id).await {
                Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => break,
                Err(e) => return Err(e),
                // Taken within the same second: the next free `-N`.
                Ok(_) => id = format!("{}-{n}.dump", backup_id(&stem, None, now)),
            }
        }
        backups
            .backup(self.inner.as_ref(), Some(id), request.labels.clone())
            .await
    }

    async fn put_artifact(
        &self,
        request: &PutArtifact,
        data: ops_core::contracts::ArtifactReader,
    ) -> Result<BackupInfo> {
        self.inner.put_artifact(request, data).await
    }

    async fn get_artifact(&self, id: &str) -> Result<ops_core::contracts::ArtifactReader> {
        self.inner.get_artifact(id).await
    }

    async fn list(&self, filter: &ops_core::contracts::BackupFilter) -> Result<Vec<BackupInfo>> {
        self.inner.list(filter).await
    }

    async fn describe(&self, id: &str) -> Result<BackupInfo> {
        self.inner.describe(id).await
    }

    /// `Original` replaces the database the backup came from (its objects are dropped and
    /// recreated, in one transaction); `Other(db)` loads into an empty database.
    async fn restore(
        &self,
        id: &str,
        target: &ops_core::contracts::RestoreTarget,
    ) -> Result<RestoreOutcome> {
        let info = self.inner.describe(id).await?;
        let (db, clean) = match target {
            ops_core::contracts::RestoreTarget::Original => {
                (Self::source_of(&info)?.database, true)
            }
            ops_core::contracts::RestoreTarget::Other(db) => (db.clone(), false),
        };
        self.backups_of(&db)?
            .restore(self.inner.as_ref(), id, &db, clean)
            .await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.inner.delete(id).await
    }

    /// Kept where the dumps are: in the inner store.
    async fn record_verification(
        &self,
        id: &str,
        verification: &ops_core::contracts::Verification,
    ) -> Result<()> {
        self.inner.record_verification(id, verification).await
    }
}

#[cfg(test)]
mod tests {
    use super::PgSource;
    use proptest::prelude::*;

    proptest! {
        /// Any source text parses or is refused without a panic, and what parses writes back
        /// as the one `postgres:NAME` form and reads back the same.
        #[test]
        fn any_source_parses_or_is_refused_and_round_trips(text in "\\PC{0,40}") {
            if let Some(source) = PgSource::parse(&text) {
                prop_assert!(!source.database.is_empty());
                prop_assert_eq!(PgSource::parse(&source.to_string()), Some(source));
            }
        }
    }
}
