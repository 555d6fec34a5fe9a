//! Storage usage and cleanup (seeds 000 and 002: "check GCS storage usage", "clean up old logs
//! and checkpoints if > 100 GB"): the objects and bytes under a prefix, and a runbook deleting
//! objects older than a bound under given prefixes — a dry run counts them first, each delete
//! is conditioned on the generation planned, and nothing outside the prefixes is touched.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::runbooks::Procedure;
use ops_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::CloudStorage;
use super::wire::Object;

/// What is stored under a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The prefix (`gs://bucket/prefix`).
    pub location: String,
    /// How many objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The oldest one's creation.
    pub oldest: Option<DateTime<Utc>>,
    /// The newest one's creation.
    pub newest: Option<DateTime<Utc>>,
    /// The listing stopped at its cap: the figures are a floor.
    pub truncated: bool,
}

impl CloudStorage {
    /// Every object whose name starts with `prefix` (in the bucket, not under this store's own
    /// prefix), up to the listing cap; whether the cap cut it short.
    pub async fn objects_under(&self, prefix: &str) -> Result<(Vec<Object>, bool)> {
        self.list_objects(prefix).await
    }

    /// Objects and bytes under `prefix` (`gsutil du -s gs://bucket/prefix`).
    pub async fn usage(&self, prefix: &str) -> Result<Usage> {
        let (objects, truncated) = self.objects_under(prefix).await?;
        let mut u = Usage {
            location: format!("gs://{}/{prefix}", self.bucket),
            truncated,
            ..Usage::default()
        };
        for o in &objects {
            u.objects = u.objects.saturating_add(1);
            u.bytes = u.bytes.saturating_add(o.size().unwrap_or(0));
            if let Some(t) = o.time_created {
                u.oldest = Some(u.oldest.map_or(t, |x| x.min(t)));
                u.newest = Some(u.newest.map_or(t, |x| x.max(t)));
            }
        }
        Ok(u)
    }
}

/// What [`CleanupObjects`] deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupConfig {
    /// The prefixes to clean (`logs/`, `checkpoints/`): at least one, none empty (a whole
    /// bucket is never cleaned by accident).
    pub prefixes: Vec<String>,
    /// Objects older than this go.
    #[serde(with = "human_duration")]
    pub older_than: Duration,
    /// Clean only when the prefixes hold more than this many bytes (the seeds' "if > 100 GB");
    /// none: always.
    #[serde(default)]
    pub only_above_bytes: Option<u64>,
}

impl RunbookConfig for CleanupConfig {
    fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: &str| {
            Error::invalid_input("runbook-config", "load", field, reason)
        };
        if self.prefixes.is_empty() {
            return Err(invalid("prefixes", "name at least one prefix to clean"));
        }
        if self
            .prefixes
            .iter()
            .any(|p| p.trim().is_empty() || p.contains("..") || p.starts_with('/'))
        {
            return Err(invalid(
                "prefixes",
                "a prefix is a non-empty relative name (a whole bucket is never cleaned)",
            ));
        }
        if self.older_than.is_zero() {
            return Err(invalid("older_than", "must be positive"));
        }
        Ok(())
    }
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            prefixes: Vec::new(),
            older_than: Duration::from_secs(30 * 86_400),
            only_above_bytes: None,
        }
    }
}

/// One object a cleanup deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expired {
    /// Its name.
    pub name: String,
    /// The generation planned: a newer upload under the same name is not deleted.
    pub generation: String,
    /// Its bytes.
    pub bytes: u64,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// What a cleanup found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPlan {
    /// Usage per prefix before the cleanup.
    pub usage: Vec<Usage>,
    /// The objects to delete (none when the usage is under the threshold).
    pub expired: Vec<Expired>,
    /// Their bytes.
    pub bytes: u64,
    /// Why nothing is deleted, when nothing is.
    pub note: Option<String>,
}

/// What the deletes did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupOutcome {
    /// Deleted, with their bytes.
    pub deleted: u64,
    /// Bytes freed.
    pub bytes: u64,
    /// Gone already.
    pub already_gone: Vec<String>,
    /// Replaced since the plan (a newer generation): left alone.
    pub replaced: Vec<String>,
}

/// The cleanup as a runbook: `plan` (usage per prefix, the expired objects and their bytes;
/// a dry run stops here), then `delete`, each object by its planned generation.
pub struct CleanupObjects {
    store: CloudStorage,
    config: CleanupConfig,
}

impl CleanupObjects {
    /// Cleans `config.prefixes` of `store`'s bucket.
    pub fn new(store: CloudStorage, config: CleanupConfig) -> Self {
        Self { store, config }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let mut rb = Runbook::new("storage-cleanup", format!("gs://{}", self.store.bucket))
            .with_category(Category::Maintenance);
        let (store, config) = (self.store.clone(), self.config.clone());
        let planned: Output<CleanupPlan> = rb.add_step(Step::read("plan", move |ctx| {
            let (store, config, now) = (store.clone(), config.clone(), ctx.clock().now());
            Ok(Action::new(
                "GET b/{bucket}/o?prefix=",
                json!({"prefixes": config.prefixes, "older_than": human_duration::format(config.older_than)}),
                async move { plan(&store, &config, now).await },
            ))
        }));
        let (store, prefixes) = (self.store.clone(), self.config.prefixes.clone());
        rb = rb.step(
            Step::mutate("delete", move |ctx| {
                let plan = ctx.get(&planned)?;
                let (store, prefixes) = (store.clone(), prefixes.clone());
                Ok(Action::new(
                    "DELETE b/{bucket}/o/{object}?ifGenerationMatch=",
                    json!({"objects": plan.expired.len(), "bytes": plan.bytes}),
                    async move { delete(&store, &prefixes, &plan).await },
                ))
            })
            // A deleted object stays deleted, and every delete names its generation.
            .idempotent(),
        );
        Ok(rb)
    }
}

async fn plan(
    store: &CloudStorage,
    config: &CleanupConfig,
    now: DateTime<Utc>,
) -> Result<CleanupPlan> {
    let cutoff =
        now - chrono::Duration::from_std(config.older_than).unwrap_or(chrono::Duration::MAX);
    let mut out = CleanupPlan::default();
    let mut total: u64 = 0;
    for prefix in &config.prefixes {
        let (objects, truncated) = store.objects_under(prefix).await?;
        let mut usage = Usage {
            location: format!("gs://{}/{prefix}", store.bucket),
            truncated,
            ..Usage::default()
        };
        for o in objects {
            let bytes = o.size().unwrap_or(0);
            usage.objects = usage.objects.saturating_add(1);
            usage.bytes = usage.bytes.saturating_add(bytes);
            // An object of unknown age is never taken for old.
            if let Some(created) = o.time_created
                && created < cutoff
                && !o.generation.is_empty()
            {
                out.bytes = out.bytes.saturating_add(bytes);
                out.expired.push(Expired {
                    name: o.name.clone(),
                    generation: o.generation.clone(),
                    bytes,
                    created,
                });
            }
        }
        total = total.saturating_add(usage.bytes);
        out.usage.push(usage);
    }
    if let Some(limit) = config.only_above_bytes
        && total <= limit
    {
        out.note = Some(format!(
            "{total} bytes stored, not above {limit}: nothing to clean"
        ));
        out.expired.clear();
        out.bytes = 0;
    }
    Ok(out)
}

async fn delete(
    store: &CloudStorage,
    prefixes: &[String],
    plan: &CleanupPlan,
) -> Result<CleanupOutcome> {
    let mut out = CleanupOutcome::default();
    for e in &plan.expired {
        // Checked again here: a plan from a journal is never trusted to stay in bounds.
        if !prefixes.iter().any(|p| e.name.starts_with(p.as_str())) {
            return Err(Error::invalid_input(
                "gcp",
                "storage_cleanup",
                "object",
                format!("{} is outside the prefixes to clean", e.name),
            ));
        }
        match store.delete_object(&e.name, Some(&e.generation)).await {
            Ok(()) => {
                out.deleted += 1;
                out.bytes = out.bytes.saturating_add(e.bytes);
            }
            Err(err) => match err.kind() {
                ErrorKind::NotFound { .. } => out.already_gone.push(e.name.clone()),
                // 412: the name holds a newer generation now.
                ErrorKind::Conflict { .. } | ErrorKind::Provider { status: 412, .. } => {
                    out.replaced.push(e.name.clone())
                }
                _ => return Err(err),
            },
        }
    }
    Ok(out)
}

impl Procedure for CleanupObjects {
    type Summary = (CleanupPlan, Option<CleanupOutcome>);

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<Self::Summary> {
        Some((report.output("plan")?, report.output("delete")))
    }
}
