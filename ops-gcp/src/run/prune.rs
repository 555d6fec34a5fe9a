//! Revision pruning (seed 000's monthly "review and prune old revisions"): keep the newest N,
//! every revision serving traffic or named by a traffic tag, the newest ready and newest created
//! ones, the previous healthy revision a rollback would go back to, and everything younger than
//! a bound; delete the rest, each delete guarded by the revision's etag.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::http::SendOptions;
use ops_core::runbooks::Procedure;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::CloudRun;
use super::model::{Revision, Service, short_name};
use crate::client::Operation;

/// What pruning keeps beyond what must stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneConfig {
    /// The newest revisions kept whatever they are (default 5).
    #[serde(default = "five")]
    pub keep_newest: usize,
    /// Revisions younger than this are kept (default 7 days).
    #[serde(default = "week", with = "human_duration")]
    pub keep_younger_than: Duration,
}

fn five() -> usize {
    5
}

fn week() -> Duration {
    Duration::from_secs(7 * 86_400)
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            keep_newest: five(),
            keep_younger_than: week(),
        }
    }
}

impl RunbookConfig for PruneConfig {
    fn validate(&self) -> Result<()> {
        if self.keep_newest == 0 {
            return Err(Error::invalid_input(
                "runbook-config",
                "load",
                "keep_newest",
                "keep at least the newest revision",
            ));
        }
        Ok(())
    }
}

/// A revision pruning leaves, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Its short name.
    pub revision: String,
    /// Every reason it stays (`serves 90 %`, `tag canary`, `previous healthy`, `newest 5`, …).
    pub reasons: Vec<String>,
}

/// A revision pruning deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doomed {
    /// Its short name.
    pub revision: String,
    /// Its full name.
    pub name: String,
    /// The etag it had when planned: a revision changed since is not deleted.
    pub etag: Option<String>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
}

/// What pruning would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunePlan {
    /// Revisions that stay, newest first.
    pub keep: Vec<Kept>,
    /// Revisions to delete, newest first.
    pub delete: Vec<Doomed>,
}

/// What the deletes did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneOutcome {
    /// Deleted.
    pub deleted: Vec<String>,
    /// Gone already (deleted by someone else since the plan).
    pub already_gone: Vec<String>,
    /// Left alone: changed since the plan (its etag moved) or now serving.
    pub skipped: Vec<(String, String)>,
}

fn is_ready(rev: &Revision) -> bool {
    rev.conditions
        .iter()
        .any(|c| c.kind == "Ready" && c.succeeded())
}

/// The plan for `revisions` of `svc` at `now` (pure: the rules, testable without a server).
pub fn plan(
    svc: &Service,
    revisions: &[Revision],
    config: &PruneConfig,
    now: DateTime<Utc>,
) -> PrunePlan {
    let mut revs: Vec<&Revision> = revisions.iter().collect();
    revs.sort_by(|a, b| {
        b.create_time
            .cmp(&a.create_time)
            .then_with(|| b.name.cmp(&a.name))
    });
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    fn keep(reasons: &mut BTreeMap<String, Vec<String>>, rev: &str, why: String) {
        reasons.entry(rev.to_string()).or_default().push(why);
    }
    // Traffic: desired and in force, by revision or (LATEST) the newest ready one.
    let latest_ready = svc.latest_ready_revision.as_deref().map(short_name);
    for t in svc.traffic.iter().chain(&svc.traffic_statuses) {
        let rev = match (
            t.revision.as_deref().filter(|r| !r.is_empty()),
            t.is_latest(),
        ) {
            (Some(r), _) => Some(short_name(r)),
            (None, true) => latest_ready,
            _ => None,
        };
        if let Some(rev) = rev {
            if t.percent > 0 {
                keep(&mut reasons, rev, format!("serves {} %", t.percent));
            }
            if let Some(tag) = &t.tag {
                keep(&mut reasons, rev, format!("tag {tag}"));
            }
        }
    }
    if let Some(r) = latest_ready {
        keep(&mut reasons, r, "newest ready".into());
    }
    if let Some(r) = svc.latest_created_revision.as_deref().map(short_name) {
        keep(&mut reasons, r, "newest created".into());
    }
    // The previous healthy revision: the newest ready one older than the newest serving one,
    // which is where a rollback goes.
    let serving_at = revs
        .iter()
        .filter(|r| {
            reasons
                .get(short_name(&r.name))
                .is_some_and(|why| why.iter().any(|w| w.starts_with("serves")))
        })
        .filter_map(|r| r.create_time)
        .max();
    if let Some(at) = serving_at
        && let Some(prev) = revs
            .iter()
            .find(|r| r.create_time.is_some_and(|t| t < at) && is_ready(r))
    {
        keep(
            &mut reasons,
            short_name(&prev.name),
            "previous healthy (rollback target)".into(),
        );
    }
    let young =
        chrono::Duration::from_std(config.keep_younger_than).unwrap_or(chrono::Duration::MAX);
    let mut out = PrunePlan::default();
    for (i, rev) in revs.iter().enumerate() {
        let short = short_name(&rev.name).to_string();
        let mut why = reasons.remove(&short).unwrap_or_default();
        if i < config.keep_newest {
            why.push(format!("newest {}", config.keep_newest));
        }
        // A revision of unknown age is kept: it cannot be shown to be old.
        match rev.create_time {
            Some(t) if now.signed_duration_since(t) >= young => {}
            Some(_) => why.push(format!(
                "younger than {}",
                human_duration::format(config.keep_younger_than)
            )),
            None => why.push("age unknown".into()),
        }
        if why.is_empty() {
            out.delete.push(Doomed {
                revision: short,
                name: rev.name.clone(),
                etag: rev.etag.clone(),
                created_at: rev.create_time,
            });
        } else {
            out.keep.push(Kept {
                revision: short,
                reasons: why,
            });
        }
    }
    out
}

/// How one delete ended.
enum Deleted {
    Done,
    Gone,
    Skipped(String),
}

impl CloudRun {
    /// What pruning this service would do now.
    pub async fn prune_plan(&self, config: &PruneConfig, now: DateTime<Utc>) -> Result<PrunePlan> {
        config.validate()?;
        let svc = self.service().await?;
        let revisions = self.all_revisions().await?;
        Ok(plan(&svc, &revisions, config, now))
    }

    /// Deletes one planned revision if its etag is still the planned one.
    async fn delete_revision(&self, doomed: &Doomed) -> Result<Deleted> {
        let mut url = self.client.url(&self.api_root()?, &doomed.name)?;
        if let Some(etag) = &doomed.etag {
            url.query_pairs_mut().append_pair("etag", etag);
        }
        let options = SendOptions {
            resource: Some(doomed.name.clone()),
            ..SendOptions::default()
        };
        let sent: Result<Operation> = self
            .client
            .call::<(), Operation>("delete_revision", Method::DELETE, url, None, &options)
            .await;
        let op = match sent {
            Ok(op) => op,
            Err(e) => {
                return match e.kind() {
                    ErrorKind::NotFound { .. } => Ok(Deleted::Gone),
                    ErrorKind::Conflict { .. } | ErrorKind::InvalidInput { .. } => {
                        Ok(Deleted::Skipped(e.to_string()))
                    }
                    _ => Err(e),
                };
            }
        };
        self.client
            .await_operation(
                &self.api_root()?,
                op,
                self.operation_deadline,
                self.polling,
                "delete_revision",
            )
            .await?;
        Ok(Deleted::Done)
    }
}

/// Revision pruning as a runbook: `plan` (kept with reasons, doomed with etags; a dry run stops
/// here), then `delete`. A revision deleted by someone else meanwhile counts as gone; one that
/// changed or started serving is skipped and reported, never forced.
pub struct PruneRevisions {
    run: CloudRun,
    config: PruneConfig,
}

impl PruneRevisions {
    /// Prunes `run`'s revisions by `config`.
    pub fn new(run: CloudRun, config: PruneConfig) -> Self {
        Self { run, config }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let mut rb =
            Runbook::new("prune-revisions", &self.run.service).with_category(Category::Maintenance);
        let (run, config) = (self.run.clone(), self.config.clone());
        let planned: Output<PrunePlan> = rb.add_step(Step::read("plan", move |ctx| {
            let (run, config, now) = (run.clone(), config.clone(), ctx.clock().now());
            Ok(Action::new(
                "GET services, revisions",
                json!({"config": config}),
                async move { run.prune_plan(&config, now).await },
            ))
        }));
        let run = self.run.clone();
        rb = rb.step(
            Step::mutate("delete", move |ctx| {
                let plan = ctx.get(&planned)?;
                let run = run.clone();
                let names: Vec<&str> = plan.delete.iter().map(|d| d.revision.as_str()).collect();
                Ok(Action::new(
                    "DELETE revisions/{revision}?etag=",
                    json!({"revisions": names}),
                    async move {
                        let mut out = PruneOutcome::default();
                        for d in &plan.delete {
                            match run.delete_revision(d).await? {
                                Deleted::Done => out.deleted.push(d.revision.clone()),
                                Deleted::Gone => out.already_gone.push(d.revision.clone()),
                                Deleted::Skipped(why) => {
                                    out.skipped.push((d.revision.clone(), why))
                                }
                            }
                        }
                        Ok(out)
                    },
                ))
            })
            // A deleted revision stays deleted: repeating the step deletes nothing more.
            .idempotent(),
        );
        Ok(rb)
    }
}

impl Procedure for PruneRevisions {
    type Summary = (PrunePlan, Option<PruneOutcome>);

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<Self::Summary> {
        Some((report.output("plan")?, report.output("delete")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::model::{Condition, TrafficTarget};

    fn rev(short: &str, days_ago: Option<i64>, ready: bool) -> Revision {
        let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        Revision {
            name: format!("projects/p/locations/l/services/api/revisions/{short}"),
            etag: Some(format!("\"{short}\"")),
            create_time: days_ago.map(|d| now - chrono::Duration::days(d)),
            conditions: vec![Condition {
                kind: "Ready".into(),
                state: if ready {
                    "CONDITION_SUCCEEDED"
                } else {
                    "CONDITION_FAILED"
                }
                .into(),
                ..Condition::default()
            }],
            ..Revision::default()
        }
    }

    #[test]
    fn tags_splits_latest_and_unknown_ages_are_kept() {
        let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let revisions = vec![
            rev("api-6", Some(20), true),
            rev("api-5", Some(30), false), // failed: never the rollback target
            rev("api-4", Some(40), true),  // the previous healthy one
            rev("api-3", Some(50), true),  // tagged
            rev("api-2", None, true),      // age unknown
            rev("api-1", Some(90), true),  // goes
        ];
        let svc = Service {
            latest_ready_revision: Some(
                "projects/p/locations/l/services/api/revisions/api-6".into(),
            ),
            latest_created_revision: Some(
                "projects/p/locations/l/services/api/revisions/api-6".into(),
            ),
            traffic: vec![
                TrafficTarget {
                    kind: Some(crate::run::model::LATEST.into()),
                    percent: 100,
                    ..TrafficTarget::default()
                },
                TrafficTarget {
                    revision: Some("api-3".into()),
                    tag: Some("audit".into()),
                    ..TrafficTarget::default()
                },
            ],
            ..Service::default()
        };
        let config = PruneConfig {
            keep_newest: 1,
            keep_younger_than: Duration::from_secs(86_400),
        };
        let p = plan(&svc, &revisions, &config, now);
        let doomed: Vec<&str> = p.delete.iter().map(|d| d.revision.as_str()).collect();
        assert_eq!(doomed, ["api-5", "api-1"]);
        let why = |r: &str| {
            p.keep
                .iter()
                .find(|k| k.revision == r)
                .unwrap()
                .reasons
                .clone()
        };
        assert!(why("api-6").contains(&"serves 100 %".to_string()));
        assert!(
            why("api-4")
                .iter()
                .any(|w| w.starts_with("previous healthy"))
        );
        assert_eq!(why("api-3"), ["tag audit"]);
        assert_eq!(why("api-2"), ["age unknown"]);
        assert!(
            PruneConfig {
                keep_newest: 0,
                ..config
            }
            .validate()
            .is_err()
        );
    }
}
