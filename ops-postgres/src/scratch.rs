//! Scratch databases for restore tests: created under a recognisable name and comment, held by
//! an advisory lock for as long as the test runs, and dropped afterwards. One left behind by a
//! test that was killed (its lock died with its session) is dropped at the start of the next.

use ops_core::Result;

use crate::connect::Postgres;
use crate::error::pg_error;
use crate::sql::{quote_ident, quote_literal};

/// Every scratch database's name starts with this.
pub const SCRATCH_PREFIX: &str = "ops_verify_";
/// Every scratch database's comment starts with this.
const COMMENT_PREFIX: &str = "ops scratch database for a restore test of ";

/// The advisory lock a live test holds on its scratch database (session-level, in the source
/// database, where every test of that source looks).
fn lock_key(name: &str) -> String {
    format!("ops-scratch:{name}")
}

/// A scratch database in use: its lock's session lives as long as this value.
pub struct Scratch {
    /// Its name.
    pub name: String,
    holder: tokio_postgres::Client,
}

impl Scratch {
    /// Drops stale scratch databases of `source`, then creates a new one and holds it.
    pub async fn create(source: &Postgres, source_name: &str) -> Result<Self> {
        reap(source, source_name).await?;
        let name = format!("{SCRATCH_PREFIX}{:08x}", fastrand::u32(..));
        let holder = source.dedicated().await?;
        holder
            .execute(
                "SELECT pg_advisory_lock(hashtextextended($1, 0))",
                &[&lock_key(&name)],
            )
            .await
            .map_err(|e| pg_error("verify", &e))?;
        // Two statements: CREATE DATABASE cannot run inside the implicit transaction of a batch.
        holder
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .map_err(|e| pg_error("verify", &e))?;
        holder
            .batch_execute(&format!(
                "COMMENT ON DATABASE {} IS {}",
                quote_ident(&name),
                quote_literal(&format!("{COMMENT_PREFIX}{source_name}")),
            ))
            .await
            .map_err(|e| pg_error("verify", &e))?;
        Ok(Self { name, holder })
    }

    /// Drops it (forcing out any session still in it) and lets its lock go.
    pub async fn drop_now(self) {
        let dropped = self
            .holder
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.name)
            ))
            .await;
        if let Err(e) = dropped {
            tracing::warn!(error = %e, scratch = %self.name, "could not drop the scratch database; the next restore test will");
        }
    }
}

/// Drops every scratch database made for `source_name` whose test is gone (no session holds
/// its lock). Returns the names dropped.
pub async fn reap(source: &Postgres, source_name: &str) -> Result<Vec<String>> {
    let probe = source.dedicated().await?;
    let rows = probe
        .query(
            "SELECT datname FROM pg_database
             WHERE starts_with(datname, $1) AND shobj_description(oid, 'pg_database') = $2",
            &[&SCRATCH_PREFIX, &format!("{COMMENT_PREFIX}{source_name}")],
        )
        .await
        .map_err(|e| pg_error("verify", &e))?;
    let mut dropped = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let key = lock_key(&name);
        let free: bool = probe
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .await
            .map_err(|e| pg_error("verify", &e))?
            .get(0);
        if !free {
            continue;
        }
        let result = probe
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .await;
        let _ = probe
            .execute(
                "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                &[&key],
            )
            .await;
        match result {
            Ok(()) => {
                tracing::warn!(scratch = %name, "dropped the scratch database of a restore test that did not finish");
                dropped.push(name);
            }
            Err(e) => {
                tracing::warn!(scratch = %name, error = %e, "could not drop a stale scratch database")
            }
        }
    }
    Ok(dropped)
}
