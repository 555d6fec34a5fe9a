//! Restore: optionally stop traffic, back up the current state, restore, restart the service so
//! it loads what was restored, verify, resume.
//!
//! Replaces seed 002's restore of its SQLite file in Cloud Storage — stop traffic, `gsutil cp
//! gs://…/app.db gs://…/backup/pre-restore-….db`, `gsutil cp gs://…/backup/app-….db
//! gs://…/app.db`, "restart service to pick up restored database" (`gcloud run services update
//! --no-traffic`), resume traffic — and `pg_restore` after a safety dump. Without the restart,
//! instances that loaded the old file keep serving it, and may write it back over the restore.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::common::{announce_step, failed, notify_step, verify_step};
use super::config::invalid;
use super::name_stem;
use crate::Result;
use crate::contracts::{
    BackupInfo, BackupState, BackupStore, CreateBackup, Deployer, HealthProbe, Notification,
    NotificationEvent, Notifier, RestoreTarget, ServiceState, Severity, TrafficSplit,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step, StepContext};

/// Settings of a restore.
///
/// ```toml
/// stop_traffic = false          # stop serving while restoring (needs a deployer)
/// restart = false               # new releases of what served, loading the restored data
/// pre_restore_prefix = "pre-restore"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestoreConfig {
    /// Stop serving while restoring, before the safety copy so no write is lost between the
    /// copy and the restore (default false).
    pub stop_traffic: bool,
    /// After the restore, deploy every release that served traffic again (same version, new
    /// release) and move its traffic to the new one, so no running instance keeps the data it
    /// loaded before (default false; needs a deployer). A service that reads its data on
    /// startup (a SQLite file copied from a bucket) needs it.
    pub restart: bool,
    /// The stem of the safety backup's name (default `pre-restore`).
    pub pre_restore_prefix: String,
}

impl Default for RestoreConfig {
    fn default() -> Self {
        Self {
            stop_traffic: false,
            restart: false,
            pre_restore_prefix: "pre-restore".into(),
        }
    }
}

impl RunbookConfig for RestoreConfig {
    fn validate(&self) -> Result<()> {
        name_stem("pre_restore_prefix", &self.pre_restore_prefix)
    }
}

/// Restores backup `backup_id` from `store` into `target`, after backing up what is there now.
///
/// The backup is always named: to restore "the latest", pick it with
/// [`crate::contracts::latest_verified`], which never returns a backup that is unverified or
/// failed its check. A named backup is restored whatever its state, and the report records it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::adapters::FsBackupStore;
/// use ops_core::contracts::{BackupStore, CreateBackup, RestoreTarget};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{Restore, RestoreConfig, Procedure};
/// let dir = tempfile::tempdir().unwrap();
/// let db = dir.path().join("app.db");
/// std::fs::write(&db, b"good").unwrap();
/// let store = Arc::new(FsBackupStore::open(dir.path().join("backups")).await?);
/// let current = CreateBackup { source: db.display().to_string(), name: Some("app".into()), labels: Default::default() };
/// let good = store.create(&current).await?;
/// std::fs::write(&db, b"broken").unwrap();
/// let report = Restore::new(store, good.id, RestoreTarget::Original, current, RestoreConfig::default())
///     .run(&Runner::new(), Mode::Execute).await?;
/// assert!(report.is_success());
/// assert_eq!(std::fs::read(&db).unwrap(), b"good");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Restore {
    config: RestoreConfig,
    store: Arc<dyn BackupStore>,
    backup_id: String,
    target: RestoreTarget,
    current: CreateBackup,
    deployer: Option<Arc<dyn Deployer>>,
    probes: Vec<Arc<dyn HealthProbe>>,
    notifier: Option<Arc<dyn Notifier>>,
}

impl Restore {
    /// Restores `backup_id` into `target`; `current` says how to back up what is there now.
    pub fn new(
        store: Arc<dyn BackupStore>,
        backup_id: impl Into<String>,
        target: RestoreTarget,
        current: CreateBackup,
        config: RestoreConfig,
    ) -> Self {
        Self {
            config,
            store,
            backup_id: backup_id.into(),
            target,
            current,
            deployer: None,
            probes: Vec::new(),
            notifier: None,
        }
    }

    /// The service whose traffic to stop while restoring (with `stop_traffic`).
    pub fn deployer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.deployer = Some(deployer);
        self
    }

    /// A probe that must be healthy after the restore.
    pub fn probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probes.push(probe);
        self
    }

    /// Where to announce it.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let stop = match (self.config.stop_traffic, &self.deployer) {
            (true, Some(d)) => Some(d.clone()),
            (true, None) => return Err(invalid("stop_traffic", "needs a deployer")),
            (false, _) => None,
        };
        let restart = match (self.config.restart, &self.deployer) {
            (true, Some(d)) => Some(d.clone()),
            (true, None) => return Err(invalid("restart", "needs a deployer")),
            (false, _) => None,
        };
        let what = self.current.source.clone();
        let stem = self
            .current
            .name
            .clone()
            .unwrap_or_else(|| what.rsplit(['/', '\\']).next().unwrap_or(&what).to_string());
        let (store, id) = (self.store.clone(), self.backup_id.clone());
        // The target (lock key, journal) is the data's short name, not its path.
        let mut rb = Runbook::new("restore", &stem).with_category(crate::engine::Category::Restore);
        let described: Output<BackupInfo> = rb.add_step(Step::read("describe", move |ctx| {
            let (store, id, ctx) = (store.clone(), id.clone(), ctx.clone());
            Ok(Action::new(
                "BackupStore::describe",
                json!({ "id": id }),
                async move {
                    let info = store.describe(&id).await?;
                    if info.state != BackupState::Complete {
                        return Err(failed(
                            "backup",
                            format!("{id} is {:?}, not complete", info.state),
                        ));
                    }
                    // Named explicitly, so restored whatever its last check found; but the
                    // report says what that was.
                    ctx.evidence("verification", json!(info.verification));
                    if !info.verification.is_verified() {
                        tracing::warn!(backup = %id, verification = ?info.verification, "restoring a backup that is not verified, as named");
                    }
                    Ok(info)
                },
            ))
        }));
        // The whole backup is read back through its checksum before anything is touched: a
        // corrupt backup stops the restore here, not after the safety copy and the stop.
        let store = self.store.clone();
        rb = rb.step(Step::read("check-backup", move |ctx| {
            let info = ctx.get(&described)?;
            let (store, clock) = (store.clone(), ctx.clock().clone());
            Ok(Action::new(
                "BackupStore::get_artifact",
                json!({ "id": info.id }),
                async move {
                    let checked = super::backup::verify(store.as_ref(), &info).await;
                    super::backup::mark_if_failed(store.as_ref(), &info, clock.now(), checked).await
                },
            ))
        }));
        let key = format!("restore/{what}/{}", self.backup_id);
        // Named before the step exists: the announcement's failure message reports it.
        let safety_copy: Output<BackupInfo> = Output::of(PRE_RESTORE);
        if let Some(n) = self.notifier.clone() {
            let (w, b, k) = (what.clone(), self.backup_id.clone(), key.clone());
            let (w2, b2, copy) = (what.clone(), self.backup_id.clone(), safety_copy.clone());
            rb = rb.step(announce_step(
                n,
                key.clone(),
                move |_| {
                    Ok(
                        Notification::new(Severity::Warning, format!("Restoring {w} from {b}"))
                            .dedup_key(&k),
                    )
                },
                move |ctx| {
                    format!(
                        "Restore of {w2} from {b2} failed; {}",
                        where_is_safety(ctx, &copy)
                    )
                },
            ));
        }
        let mut saved_traffic: Option<Output<ServiceState>> = None;
        if let Some(d) = stop.clone() {
            let d2 = d.clone();
            let saved: Output<ServiceState> = rb.add_step(Step::read("save-traffic", move |_| {
                let d = d.clone();
                Ok(Action::new("Deployer::current", json!({}), async move {
                    d.current().await
                }))
            }));
            saved_traffic = Some(saved.clone());
            let d3 = d2.clone();
            rb = rb.step(
                Step::mutate("stop-traffic", move |_| {
                    let d = d2.clone();
                    Ok(Action::new(
                        "Deployer::stop_serving",
                        json!({}),
                        async move { d.stop_serving().await },
                    ))
                })
                .compensate(move |ctx| resume(ctx, &saved, None, d3.clone())),
            );
        }
        let (store, mut safety) = (self.store.clone(), self.current.clone());
        safety.name = Some(format!("{}-{stem}", self.config.pre_restore_prefix));
        rb = rb.step(Step::mutate(PRE_RESTORE, move |ctx| {
            let (store, safety, ctx) = (store.clone(), safety.clone(), ctx.clone());
            Ok(Action::new(
                "BackupStore::create",
                json!(safety),
                async move {
                    let info = store.create(&safety).await?;
                    ctx.evidence(
                        "pre-restore backup",
                        json!({ "id": info.id, "location": info.location }),
                    );
                    Ok(info)
                },
            ))
        }));
        let (store, id, target) = (
            self.store.clone(),
            self.backup_id.clone(),
            self.target.clone(),
        );
        rb = rb.step(Step::mutate("restore", move |_| {
            let (store, id, target) = (store.clone(), id.clone(), target.clone());
            Ok(Action::new(
                "BackupStore::restore",
                json!({ "id": id, "target": target }),
                async move { store.restore(&id, &target).await },
            ))
        }));
        let mut restarted: Option<Output<Restarted>> = None;
        if let Some(d) = restart {
            let before_stop = saved_traffic.clone();
            let r: Output<Restarted> = rb.add_step(Step::mutate("restart", move |ctx| {
                let d = d.clone();
                // Stopped, the service serves nothing: the split saved before the stop counts.
                let saved = before_stop.as_ref().map(|s| ctx.get(s)).transpose()?;
                Ok(Action::new(
                    "Deployer::deploy",
                    json!({ "releases": "every release serving traffic, again" }),
                    async move {
                        let serving = match saved {
                            Some(s) => s.traffic,
                            None => d.current().await?.traffic,
                        };
                        restart_serving(d.as_ref(), serving).await
                    },
                ))
            }));
            restarted = Some(r.clone());
            if stop.is_none()
                && let Some(d) = self.deployer.clone()
            {
                // Serving all along: the traffic moves to the new releases now.
                rb = rb.step(
                    Step::mutate("move-traffic", move |ctx| {
                        let restarted = ctx.get(&r)?;
                        let d = d.clone();
                        let split = TrafficSplit::from_allocations(restarted.traffic)?;
                        Ok(Action::new(
                            "Deployer::set_traffic",
                            json!(split),
                            async move { d.set_traffic(&split).await },
                        ))
                    })
                    .idempotent(),
                );
            }
        }
        if !self.probes.is_empty() {
            rb = rb.step(verify_step("verify", self.probes.clone()));
        }
        if let (Some(d), Some(saved)) = (stop, saved_traffic) {
            rb = rb.step(
                Step::mutate("resume-traffic", move |ctx| {
                    resume(ctx, &saved, restarted.as_ref(), d.clone())
                })
                .idempotent(),
            );
        }
        if let Some(n) = self.notifier.clone() {
            let (b, w) = (self.backup_id.clone(), what.clone());
            rb = rb.step(notify_step("announce-result", n, move |ctx| {
                Ok(Notification::new(
                    Severity::Info,
                    format!(
                        "Restored {w} from {b}; {}",
                        where_is_safety(ctx, &safety_copy)
                    ),
                )
                .event(NotificationEvent::Resolve)
                .dedup_key(&key))
            }));
        }
        Ok(rb)
    }
}

impl super::Procedure for Restore {
    type Summary = ();

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, _: &RunReport) -> Option<()> {
        Some(())
    }
}

/// The step taking the safety copy before the restore.
const PRE_RESTORE: &str = "pre-restore-backup";

fn where_is_safety(ctx: &StepContext, copy: &Output<BackupInfo>) -> String {
    match ctx.get(copy) {
        Ok(info) => format!("the pre-restore backup is {} at {}", info.id, info.location),
        Err(_) => "no pre-restore backup was taken (nothing was changed)".into(),
    }
}

/// What the restart deployed: each serving release's replacement, and the split moved onto them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restarted {
    /// `(old release, new release)`.
    pub replaced: Vec<(String, String)>,
    /// The traffic split in force, on the new releases.
    pub traffic: Vec<crate::contracts::TrafficAllocation>,
}

/// Deploys every release of `traffic` again (same version, no traffic yet); with no traffic
/// at all, the newest ready release.
async fn restart_serving(
    d: &dyn Deployer,
    mut traffic: Vec<crate::contracts::TrafficAllocation>,
) -> Result<Restarted> {
    let releases = d.releases().await?;
    if traffic.is_empty() {
        let latest = d
            .current()
            .await?
            .latest_ready
            .or_else(|| releases.first().map(|r| r.id.clone()));
        let Some(latest) = latest else {
            return Err(failed("restart", "the service has no release to restart"));
        };
        traffic = vec![crate::contracts::TrafficAllocation {
            release: latest,
            percent: 100,
        }];
    }
    let mut replaced = Vec::new();
    for a in &mut traffic {
        let Some(old) = releases.iter().find(|r| r.id == a.release) else {
            return Err(failed(
                "restart",
                format!("release {} serves traffic but is not listed", a.release),
            ));
        };
        let new = d
            .deploy(&crate::contracts::DeployRequest::new(old.version.clone()))
            .await?;
        replaced.push((old.id.clone(), new.id.clone()));
        a.release = new.id;
    }
    Ok(Restarted { replaced, traffic })
}

/// Puts back the traffic split saved before stopping, on the restarted releases if any.
fn resume(
    ctx: &StepContext,
    saved: &Output<ServiceState>,
    restarted: Option<&Output<Restarted>>,
    d: Arc<dyn Deployer>,
) -> Result<Action> {
    let saved = ctx.get(saved)?;
    let mut allocations = saved.traffic.clone();
    if let Some(r) = restarted.and_then(|r| ctx.get(r).ok()) {
        for a in &mut allocations {
            if let Some((_, new)) = r.replaced.iter().find(|(old, _)| *old == a.release) {
                a.release = new.clone();
            }
        }
    }
    let split = TrafficSplit::from_allocations(allocations)?;
    Ok(Action::new(
        "Deployer::set_traffic",
        json!(split),
        async move { d.set_traffic(&split).await },
    ))
}
