//! [`PgBackups`]: back up, restore and verify one database through any [`BackupStore`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ops_core::clock::{SharedClock, system_clock};
use ops_core::contracts::{BackupInfo, BackupStore, PutArtifact, RestoreOutcome};
use ops_core::runbooks::RestoreTest;
use ops_core::{Error, ErrorKind, Result};

use crate::connect::Postgres;
use crate::dump::{PgTools, dump_into, restore_from};
use crate::error::pg_error;

/// Logical backups of one database.
#[derive(Debug, Clone)]
pub struct PgBackups {
    db: Postgres,
    tools: PgTools,
    clock: SharedClock,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Exact row counts of every user table, by `schema.table`.
pub async fn row_counts(db: &Postgres) -> Result<BTreeMap<String, i64>> {
    let client = db.client().await?;
    let tables = client
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| pg_error("row_counts", &e))?;
    let mut out = BTreeMap::new();
    for t in tables {
        let (schema, name): (String, String) = (t.get(0), t.get(1));
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {}.{}", quote(&schema), quote(&name)),
                &[],
            )
            .await
            .map_err(|e| pg_error("row_counts", &e))?
            .get(0);
        out.insert(format!("{schema}.{name}"), n);
    }
    Ok(out)
}

impl PgBackups {
    /// Backups of `db` made with `tools`.
    pub fn new(db: Postgres, tools: PgTools) -> Self {
        Self {
            db,
            tools,
            clock: system_clock(),
        }
    }

    /// The same on `clock` (backup names).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
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
    pub async fn backup(
        &self,
        store: &dyn BackupStore,
        id: Option<String>,
        labels: BTreeMap<String, String>,
    ) -> Result<BackupInfo> {
        let id = id.unwrap_or_else(|| {
            format!(
                "{}-{}.dump",
                self.dbname(),
                self.clock.now().format("%Y%m%d-%H%M%S")
            )
        });
        let request = PutArtifact {
            id,
            source: Some(format!("postgres:{}", self.dbname())),
            labels,
        };
        dump_into(&self.tools, self.db.config(), store, &request).await
    }

    /// Restores backup `id` into the database `target` on the same server. A target with
    /// tables is refused unless `clean` (then the backup's objects replace its own).
    pub async fn restore(
        &self,
        store: &dyn BackupStore,
        id: &str,
        target: &str,
        clean: bool,
    ) -> Result<RestoreOutcome> {
        let config = self.db.config().with_dbname(target);
        let target_db = Postgres::new(config.clone())?;
        let existing = row_counts(&target_db).await?;
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

    /// Restores backup `id` into a scratch database, compares every table's row count with
    /// the source, and drops the scratch database (also on failure).
    pub async fn verify(&self, store: &dyn BackupStore, id: &str) -> Result<String> {
        let scratch = format!("ops_verify_{:08x}", fastrand::u32(..));
        let admin = self.db.client().await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote(&scratch)))
            .await
            .map_err(|e| pg_error("verify", &e))?;
        let result = self.compare(store, id, &scratch).await;
        let dropped = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote(&scratch)
            ))
            .await;
        if let Err(e) = dropped {
            tracing::warn!(error = %e, scratch, "could not drop the scratch database");
        }
        result
    }

    async fn compare(&self, store: &dyn BackupStore, id: &str, scratch: &str) -> Result<String> {
        self.restore(store, id, scratch, false).await?;
        let restored = row_counts(&Postgres::new(self.db.config().with_dbname(scratch))?).await?;
        let source = row_counts(&self.db).await?;
        let differences: Vec<String> = source
            .iter()
            .filter(|(t, n)| restored.get(*t) != Some(n))
            .map(|(t, n)| {
                format!(
                    "{t}: source {n}, backup {}",
                    restored.get(t).map_or("missing".into(), |r| r.to_string())
                )
            })
            .collect();
        if !differences.is_empty() {
            return Err(Error::new(
                "postgres",
                "verify",
                ErrorKind::VerificationFailed {
                    check: "row_counts".into(),
                    detail: differences.join("; "),
                },
            ));
        }
        let rows: i64 = source.values().sum();
        Ok(format!(
            "restored into a scratch database: {} tables, {rows} rows, counts match the source",
            source.len()
        ))
    }
}

/// [`PgBackups::verify`] as the backup runbook's restore test.
#[derive(Debug, Clone)]
pub struct PgRestoreTest(pub Arc<PgBackups>);

#[async_trait]
impl RestoreTest for PgRestoreTest {
    fn name(&self) -> &str {
        "postgres-restore-and-count"
    }

    async fn check(&self, store: &dyn BackupStore, backup: &BackupInfo) -> Result<String> {
        self.0.verify(store, &backup.id).await
    }
}

/// A [`BackupStore`] for databases on one server: `create` dumps a database into the inner
/// store, `restore` loads a backup into a database, and the artifacts themselves live in the
/// inner store (a directory, Cloud Storage, …). With it the backup and restore runbooks work
/// on PostgreSQL, including the restore runbook's pre-restore backup.
pub struct PgBackupStore {
    server: Postgres,
    tools: PgTools,
    inner: Arc<dyn BackupStore>,
    clock: SharedClock,
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
            name,
        }
    }

    /// The same store on `clock` (backup names).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn backups_of(&self, db: &str) -> Result<PgBackups> {
        ops_core::contracts::validate_name("postgres", "backup", "database", db)?;
        Ok(PgBackups::new(
            Postgres::new(self.server.config().with_dbname(db))?,
            self.tools.clone(),
        )
        .with_clock(self.clock.clone()))
    }
}

#[async_trait]
impl BackupStore for PgBackupStore {
    fn name(&self) -> &str {
        &self.name
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

    /// Dumps the database `request.source`.
    async fn create(&self, request: &ops_core::contracts::CreateBackup) -> Result<BackupInfo> {
        let db = request
            .source
            .strip_prefix("postgres:")
            .unwrap_or(&request.source);
        self.backups_of(db)?
            .backup(
                self.inner.as_ref(),
                request.name.clone(),
                request.labels.clone(),
            )
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
                let source = info
                    .source
                    .as_deref()
                    .and_then(|s| s.strip_prefix("postgres:"))
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "postgres",
                            "restore",
                            "target",
                            "the backup names no source database; give one",
                        )
                    })?;
                (source.to_string(), true)
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
