//! Weekly review: the week's errors grouped by fingerprint, deploy and rollback counts from
//! the journal, and an optional archive of the ERROR entries.
//!
//! Replaces the seeds' `gcloud logging read 'severity>=ERROR' --freshness=7d | … | sort | uniq
//! -c | sort -rn | head`, counting the week's deploys and rollbacks, and the weekly log archive
//! to Cloud Storage.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::RunbookConfig;
use super::config::{human_duration, invalid, positive};
use super::fingerprint::{ErrorGroup, ErrorGrouper};
use crate::contracts::{
    AuditFinding, BackupStore, CostSource, LogQuery, LogSeverity, LogSource, PutArtifact,
    SecurityAuditor, Severity, TimeWindow, log_entries,
};
use crate::engine::{
    Action, Category, Journal, JournalFilter, RunOutcome, RunReport, Runbook, Step, run_summaries,
};
use crate::{Error, ErrorKind, Result};

/// The category of a run journaled before runs carried one, from this library's runbook
/// names at that time. Runs journaled since are counted by the category they carry, so a
/// team's own deploy runbook counts when it says [`Category::Deploy`].
fn category_before_it_was_journaled(runbook: &str) -> Option<Category> {
    match runbook {
        "deploy-and-verify" | "progressive-rollout" | "hotfix-rollout" => Some(Category::Deploy),
        "rollback" | "auto-rollback" | "emergency-rollback" => Some(Category::Rollback),
        _ => None,
    }
}

/// Settings of the weekly review.
///
/// ```toml
/// window = "7d"
/// top = 10                  # error groups listed
/// max_entries = 1000000     # ERROR entries read at most
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeeklyReviewConfig {
    /// The period reviewed (default 7 days).
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// Error groups listed (default 10).
    pub top: usize,
    /// ERROR entries read at most (default 1,000,000).
    pub max_entries: usize,
}

impl Default for WeeklyReviewConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(7 * 86_400),
            top: 10,
            max_entries: 1_000_000,
        }
    }
}

impl RunbookConfig for WeeklyReviewConfig {
    fn validate(&self) -> Result<()> {
        positive("window", self.window)?;
        if self.top == 0 {
            return Err(invalid("top", "must be at least 1"));
        }
        if self.max_entries == 0 {
            return Err(invalid("max_entries", "must be at least 1"));
        }
        Ok(())
    }
}

/// The week's errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorSummary {
    /// ERROR entries read.
    pub total: u64,
    /// Distinct fingerprints.
    pub distinct: usize,
    /// The largest groups.
    pub top: Vec<ErrorGroup>,
    /// Whether `max_entries` cut the reading short.
    pub truncated: bool,
}

/// The week's changes, from the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// Deploy runs that succeeded.
    pub deploys: u32,
    /// Deploy runs that failed or were cancelled.
    pub deploys_failed: u32,
    /// Rollback runs (any outcome).
    pub rollbacks: u32,
}

/// The weekly review of one target.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemoryLogSource;
/// use ops_core::clock::{Clock, SystemClock};
/// use ops_core::contracts::{LogEntry, LogSeverity};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{WeeklyReview, WeeklyReviewConfig, Procedure};
/// let logs = Arc::new(MemoryLogSource::new("api"));
/// for order in [17, 42] {
///     logs.push(LogEntry { timestamp: SystemClock.now() - chrono::Duration::hours(1), severity: LogSeverity::Error,
///         message: format!("order {order} failed"), payload: None, release: None, labels: Default::default() });
/// }
/// let ops_core::runbooks::Finished { summary: review, .. } = WeeklyReview::new("api", logs, WeeklyReviewConfig::default()).run(&Runner::new(), Mode::Execute).await?;
/// assert!(review.unwrap().contains("| 2 | `order <n> failed` |"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WeeklyReview {
    config: WeeklyReviewConfig,
    target: String,
    logs: Arc<dyn LogSource>,
    journal: Option<Arc<dyn Journal>>,
    archive: Option<Arc<dyn BackupStore>>,
    auditors: Vec<Arc<dyn SecurityAuditor>>,
    costs: Option<Arc<dyn CostSource>>,
}

impl WeeklyReview {
    /// Reviews `target`'s week in `logs`.
    pub fn new(
        target: impl Into<String>,
        logs: Arc<dyn LogSource>,
        config: WeeklyReviewConfig,
    ) -> Self {
        Self {
            config,
            target: target.into(),
            logs,
            journal: None,
            archive: None,
            auditors: Vec::new(),
            costs: None,
        }
    }

    /// Adds the last 7 days' cost by service from `source` ("cost analysis (last 7 days)"),
    /// through yesterday (billing data lags a day).
    pub fn costs(mut self, source: Arc<dyn CostSource>) -> Self {
        self.costs = Some(source);
        self
    }

    /// Adds `auditor`'s findings to the review ("check dependency vulnerabilities": the
    /// repository's Dependabot and code-scanning alerts, say), worst first.
    pub fn auditor(mut self, auditor: Arc<dyn SecurityAuditor>) -> Self {
        self.auditors.push(auditor);
        self
    }

    /// Counts deploys and rollbacks in `journal`.
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Archives the week's ERROR entries as JSON lines into `store`.
    pub fn archive(mut self, store: Arc<dyn BackupStore>) -> Self {
        self.archive = Some(store);
        self
    }

    fn query(ctx: &crate::engine::StepContext, window: Duration) -> Result<LogQuery> {
        Ok(
            LogQuery::new(TimeWindow::ending_at(ctx.clock().now(), window)?)
                .min_severity(LogSeverity::Error),
        )
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let (logs, c) = (self.logs.clone(), self.config.clone());
        let mut rb = Runbook::new("weekly-review", &self.target)
            .with_category(crate::engine::Category::Check)
            .step(Step::read("errors", move |ctx| {
                let (logs, c) = (logs.clone(), c.clone());
                let q = Self::query(ctx, c.window)?;
                Ok(Action::new(
                    "LogSource::query_page",
                    json!({ "window": q.window, "min_severity": "ERROR" }),
                    async move {
                        let mut grouper = ErrorGrouper::new();
                        let mut entries = Box::pin(log_entries(logs.as_ref(), q, c.max_entries));
                        while let Some(e) = entries.next().await {
                            let e = e?;
                            grouper.add(&e.message, Some(e.timestamp));
                        }
                        Ok(ErrorSummary {
                            total: grouper.total(),
                            distinct: grouper.distinct(),
                            top: grouper.top(c.top),
                            truncated: grouper.total() >= c.max_entries as u64,
                        })
                    },
                ))
            }));
        if let Some(journal) = self.journal.clone() {
            let (target, window) = (self.target.clone(), self.config.window);
            rb = rb.step(Step::read("changes", move |ctx| {
                let (journal, target) = (journal.clone(), target.clone());
                let since =
                    ctx.clock().now() - chrono::Duration::from_std(window).unwrap_or_default();
                Ok(Action::new(
                    "Journal::events",
                    json!({ "target": target, "since": since }),
                    async move { count_changes(journal.as_ref(), &target, since).await },
                ))
            }));
        }
        if !self.auditors.is_empty() {
            let auditors = self.auditors.clone();
            let names: Vec<String> = auditors.iter().map(|a| a.name().to_string()).collect();
            rb = rb.step(Step::read("security", move |_| {
                let auditors = auditors.clone();
                Ok(Action::new(
                    "SecurityAuditor::audit",
                    json!({ "auditors": names }),
                    async move {
                        let mut all = Vec::new();
                        for a in &auditors {
                            all.extend(a.audit().await?);
                        }
                        all.sort_by_key(|f: &AuditFinding| std::cmp::Reverse(f.severity));
                        Ok(all)
                    },
                ))
            }));
        }
        if let Some(source) = self.costs.clone() {
            rb = rb.step(Step::read("costs", move |ctx| {
                let source = source.clone();
                let today = ctx.clock().now().date_naive();
                let last = today.pred_opt().unwrap_or(today);
                let days = crate::contracts::DayRange::ending(last, 7)?;
                Ok(Action::new(
                    "CostSource::costs",
                    json!({ "source": source.name(), "first": days.first(), "last": days.last() }),
                    async move {
                        let config = super::CostReviewConfig {
                            view: super::CostView::Weekly,
                            ..Default::default()
                        };
                        super::summarise(&source.costs(&days).await?, &config)
                    },
                ))
            }));
        }
        if let Some(store) = self.archive.clone() {
            let (logs, c, target) = (self.logs.clone(), self.config.clone(), self.target.clone());
            rb = rb.step(Step::mutate("archive", move |ctx| {
                let (logs, store, c) = (logs.clone(), store.clone(), c.clone());
                let q = Self::query(ctx, c.window)?;
                let id = format!(
                    "errors-{target}-{}.jsonl",
                    ctx.clock().now().format("%Y%m%d")
                );
                let req = PutArtifact {
                    id,
                    source: Some(format!("logs of {target}")),
                    labels: Default::default(),
                };
                Ok(Action::new(
                    "BackupStore::put_artifact",
                    json!(req),
                    async move { archive(logs, store, q, c.max_entries, req).await },
                ))
            }));
        }
        Ok(rb)
    }
}

impl super::Procedure for WeeklyReview {
    type Summary = String;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<String> {
        report.output::<ErrorSummary>("errors").map(|e| {
            render(
                &self.target,
                &e,
                report.output("changes"),
                report.output("security"),
                self.config.top,
            ) + &report
                .output::<super::CostSummary>("costs")
                .map(|c| {
                    let (first, last) = (c.range.first(), c.range.last());
                    format!("\n## Cost, {first} to {last}\n\n{}", c.body_markdown())
                })
                .unwrap_or_default()
        })
    }
}

async fn count_changes(
    journal: &dyn Journal,
    target: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<ChangeCounts> {
    let events = journal
        .events(&JournalFilter {
            target: Some(target.to_string()),
            since: Some(since),
            ..Default::default()
        })
        .await?;
    let mut c = ChangeCounts::default();
    for run in run_summaries(&events) {
        let category = run
            .category
            .or_else(|| category_before_it_was_journaled(&run.runbook));
        match (category, run.outcome) {
            (Some(Category::Deploy), Some(RunOutcome::Succeeded)) => c.deploys += 1,
            (Some(Category::Deploy), Some(RunOutcome::Failed | RunOutcome::Cancelled)) => {
                c.deploys_failed += 1
            }
            (Some(Category::Rollback), Some(o)) if o != RunOutcome::Planned => c.rollbacks += 1,
            _ => {}
        }
    }
    Ok(c)
}

/// Streams the entries as JSON lines into the store through a pipe (never the whole week in
/// memory). If reading the logs fails part-way, the partial archive is deleted.
async fn archive(
    logs: Arc<dyn LogSource>,
    store: Arc<dyn BackupStore>,
    q: LogQuery,
    cap: usize,
    req: PutArtifact,
) -> Result<u64> {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let produce = async move {
        let mut entries = Box::pin(log_entries(logs.as_ref(), q, cap));
        let mut n = 0u64;
        while let Some(e) = entries.next().await {
            let mut line = serde_json::to_vec(&e?).map_err(|e| {
                Error::new(
                    "runbook",
                    "archive",
                    ErrorKind::Decode {
                        detail: e.to_string(),
                    },
                )
            })?;
            line.push(b'\n');
            writer
                .write_all(&line)
                .await
                .map_err(|e| Error::io("runbook", "archive", &e))?;
            n += 1;
        }
        writer
            .shutdown()
            .await
            .map_err(|e| Error::io("runbook", "archive", &e))?;
        Ok::<u64, Error>(n)
    };
    let (produced, stored) = tokio::join!(produce, store.put_artifact(&req, Box::pin(reader)));
    match (produced, stored) {
        (Ok(n), Ok(_)) => Ok(n),
        (Err(e), Ok(info)) => {
            let _ = store.delete(&info.id).await;
            Err(e)
        }
        (_, Err(e)) => Err(e),
    }
}

fn render(
    target: &str,
    e: &ErrorSummary,
    changes: Option<ChangeCounts>,
    security: Option<Vec<AuditFinding>>,
    top: usize,
) -> String {
    let mut md = format!(
        "# Weekly review: `{target}`\n\n- ERROR entries: {} ({} distinct)\n",
        e.total, e.distinct
    );
    if e.truncated {
        md.push_str("- (reading stopped at the configured maximum)\n");
    }
    if let Some(c) = changes {
        md.push_str(&format!(
            "- Deploys: {} succeeded, {} failed\n- Rollbacks: {}\n",
            c.deploys, c.deploys_failed, c.rollbacks
        ));
    }
    md.push_str("\n## Top errors\n\n| Count | Error | Example |\n|---|---|---|\n");
    for g in &e.top {
        let cell = |s: &str| s.replace('|', "\\|");
        md.push_str(&format!(
            "| {} | `{}` | {} |\n",
            g.count,
            cell(&g.fingerprint),
            cell(&g.example)
        ));
    }
    if let Some(findings) = security {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        md.push_str(&format!(
            "\n## Security findings\n\n{} critical, {} error, {} warning, {} info\n\n| Severity | Resource | Issue | Advice |\n|---|---|---|---|\n",
            count(Severity::Critical),
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info)
        ));
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        for f in findings.iter().take(top) {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                f.severity,
                cell(&f.resource),
                cell(&f.issue),
                cell(&f.advice)
            ));
        }
        if findings.len() > top {
            md.push_str(&format!("\n({} more)\n", findings.len() - top));
        }
    }
    md
}
