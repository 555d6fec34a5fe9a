//! The seed-004 procedures over [`Workflows`] as runbooks, so they plan in a dry run, journal,
//! and undo themselves: [`WorkflowFailureAlerts`] (a failed run of a workflow → one
//! notification with its failing jobs and the end of their logs) and [`SwitchWorkflows`]
//! ("stop writers": disable the workflows that write; "resume": enable them again).

use std::sync::Arc;
use std::time::Duration;

use ops_core::Result;
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::contracts::{Notification, Notifier, Severity};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::runbooks::Procedure;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::workflows::{FailedRun, MAX_TAIL_LINES, Workflows};

/// What [`WorkflowFailureAlerts`] looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureAlertsConfig {
    /// The workflow files to watch (empty: every workflow of the repository).
    #[serde(default)]
    pub workflows: Vec<String>,
    /// How far back to look (default 1 h; run the check as often, so each failure is told
    /// once).
    #[serde(default = "one_hour", with = "human_duration")]
    pub window: Duration,
    /// How many log lines of each failing job go into the alert (default 30, at most
    /// [`MAX_TAIL_LINES`]).
    #[serde(default = "thirty")]
    pub tail_lines: usize,
    /// The alert's severity (default `error`).
    #[serde(default = "error")]
    pub severity: Severity,
}

fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

fn thirty() -> usize {
    30
}

fn error() -> Severity {
    Severity::Error
}

impl Default for FailureAlertsConfig {
    fn default() -> Self {
        Self {
            workflows: Vec::new(),
            window: one_hour(),
            tail_lines: thirty(),
            severity: error(),
        }
    }
}

impl RunbookConfig for FailureAlertsConfig {
    fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: String| {
            ops_core::Error::invalid_input("runbook-config", "load", field, reason)
        };
        if self.window.is_zero() || self.window > ops_core::config::MAX_WAIT {
            return Err(invalid(
                "window",
                "must be positive and at most 366 days".into(),
            ));
        }
        if self.tail_lines > MAX_TAIL_LINES {
            return Err(invalid(
                "tail_lines",
                format!("{} is more than {MAX_TAIL_LINES}", self.tail_lines),
            ));
        }
        if let Some(w) = self.workflows.iter().find(|w| w.trim().is_empty()) {
            return Err(invalid("workflows", format!("{w:?} names no workflow")));
        }
        Ok(())
    }
}

/// Alerts on failed workflow runs: each failed run of the window is one notification naming
/// the workflow, the run, its failing jobs and steps, with the end of each job's log, deduped
/// by run and attempt.
pub struct WorkflowFailureAlerts {
    workflows: Workflows,
    config: FailureAlertsConfig,
    notifier: Arc<dyn Notifier>,
}

impl WorkflowFailureAlerts {
    /// Alerts on the failures `config` selects, through `notifier`.
    pub fn new(
        workflows: Workflows,
        config: FailureAlertsConfig,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        Self {
            workflows,
            config,
            notifier,
        }
    }

    fn build(&self) -> Result<Runbook> {
        self.config.validate()?;
        let repo = self.workflows.repo().clone();
        let mut rb = Runbook::new(
            "workflow-failure-alerts",
            format!("{}/{}", repo.owner, repo.name),
        )
        .with_category(Category::Check);
        let (workflows, config) = (self.workflows.clone(), self.config.clone());
        let found: Output<Vec<FailedRun>> = rb.add_step(Step::read("find-failures", move |ctx| {
            let (workflows, config) = (workflows.clone(), config.clone());
            let since = ctx.clock().now()
                - chrono::Duration::from_std(config.window).unwrap_or(chrono::Duration::MAX);
            Ok(Action::new(
                "GET actions/runs, jobs and job logs",
                json!({"workflows": config.workflows, "since": since}),
                async move {
                    let mut all = Vec::new();
                    if config.workflows.is_empty() {
                        all = workflows.failures(None, since, config.tail_lines).await?;
                    }
                    for w in &config.workflows {
                        all.extend(
                            workflows
                                .failures(Some(w), since, config.tail_lines)
                                .await?,
                        );
                    }
                    Ok(all)
                },
            ))
        }));
        let (notifier, severity) = (self.notifier.clone(), self.config.severity);
        rb = rb.step(Step::mutate("notify", move |ctx| {
            let failed = ctx.get(&found)?;
            let notes: Vec<Notification> = failed
                .iter()
                .map(|f| failure_notification(&repo.owner, &repo.name, f, severity))
                .collect();
            let notifier = notifier.clone();
            let keys: Vec<Option<String>> = notes.iter().map(|n| n.dedup_key.clone()).collect();
            Ok(Action::new(
                "Notifier::send",
                json!({"alerts": keys}),
                async move {
                    for n in &notes {
                        notifier.send(n).await?;
                    }
                    Ok(notes.len())
                },
            ))
        }));
        Ok(rb)
    }
}

/// One failed run as a notification.
pub fn failure_notification(
    owner: &str,
    repo: &str,
    failed: &FailedRun,
    severity: Severity,
) -> Notification {
    let run = &failed.run;
    let workflow = run.name.as_deref().unwrap_or("workflow");
    let conclusion = run.conclusion.as_deref().unwrap_or("failure");
    let mut body = String::new();
    for job in &failed.jobs {
        body.push_str(&format!("**{}**", job.job.name));
        if !job.failed_steps.is_empty() {
            body.push_str(&format!(" failed at {}", job.failed_steps.join(", ")));
        }
        body.push('\n');
        if !job.log_tail.is_empty() {
            body.push_str("```\n");
            for line in &job.log_tail {
                // A fence inside the log would end the block early.
                body.push_str(&line.replace("```", "'''"));
                body.push('\n');
            }
            body.push_str("```\n");
        } else if let Some(e) = &job.log_error {
            body.push_str(&format!("(log not available: {e})\n"));
        }
    }
    if failed.jobs.is_empty() {
        body.push_str("No failed job reported (the run may have failed to start).\n");
    }
    let mut n = Notification::new(
        severity,
        format!(
            "{owner}/{repo}: {workflow} {conclusion} (run {}, {})",
            run.id, run.event
        ),
    )
    .body(body)
    .field("run", run.id.to_string())
    .field("attempt", run.run_attempt.to_string())
    .dedup_key(format!(
        "github-run/{owner}/{repo}/{}/{}",
        run.id, run.run_attempt
    ));
    if let Some(branch) = &run.head_branch {
        n = n.field("branch", branch.clone());
    }
    if !run.html_url.is_empty() {
        n = n.link("run", run.html_url.clone());
    }
    n
}

impl Procedure for WorkflowFailureAlerts {
    type Summary = Vec<FailedRun>;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<Vec<FailedRun>> {
        report.output("find-failures")
    }
}

/// Disable or enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    /// Stop the workflows from starting (stop writers).
    Disable,
    /// Let them start again (resume).
    Enable,
}

/// One workflow's state before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switched {
    /// The workflow file.
    pub workflow: String,
    /// Its state before (`active`, `disabled_manually`, …).
    pub before: String,
    /// Its state after.
    pub after: String,
}

/// Disables (or enables) workflows as one runbook: the states are read first, each switch is
/// a step of its own, and a disable that a later failure undoes enables again only what was
/// active before. A dry run lists the workflows it would switch.
pub struct SwitchWorkflows {
    workflows: Workflows,
    files: Vec<String>,
    switch: Switch,
}

impl SwitchWorkflows {
    /// Stops `files` from starting: seed 004's "stop writers" while the database is repaired.
    pub fn stop(workflows: Workflows, files: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new(workflows, files, Switch::Disable)
    }

    /// Lets `files` start again: "resume the agents".
    pub fn resume(
        workflows: Workflows,
        files: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self::new(workflows, files, Switch::Enable)
    }

    fn new(
        workflows: Workflows,
        files: impl IntoIterator<Item = impl Into<String>>,
        switch: Switch,
    ) -> Self {
        Self {
            workflows,
            files: files.into_iter().map(Into::into).collect(),
            switch,
        }
    }

    fn build(&self) -> Result<Runbook> {
        if self.files.is_empty() || self.files.iter().any(|f| f.trim().is_empty()) {
            return Err(ops_core::Error::invalid_input(
                "github",
                "switch_workflows",
                "workflows",
                "name at least one workflow file, none empty",
            ));
        }
        let repo = self.workflows.repo().clone();
        let name = match self.switch {
            Switch::Disable => "stop-workflows",
            Switch::Enable => "resume-workflows",
        };
        let mut rb = Runbook::new(name, format!("{}/{}", repo.owner, repo.name))
            .with_category(Category::Incident);
        let (workflows, files) = (self.workflows.clone(), self.files.clone());
        let before: Output<Vec<(String, String)>> =
            rb.add_step(Step::read("read-states", move |_| {
                let (workflows, files) = (workflows.clone(), files.clone());
                Ok(Action::new(
                    "GET actions/workflows/{workflow}",
                    json!({"workflows": files}),
                    async move {
                        let mut states = Vec::new();
                        for f in &files {
                            states.push((f.clone(), workflows.get(f).await?.state));
                        }
                        Ok(states)
                    },
                ))
            }));
        for file in self.files.clone() {
            let (w, f, switch) = (self.workflows.clone(), file.clone(), self.switch);
            let (w2, f2, before2) = (self.workflows.clone(), file.clone(), before.clone());
            let verb = if switch == Switch::Disable {
                "disable"
            } else {
                "enable"
            };
            rb = rb.step(
                Step::mutate(format!("{verb}-{file}"), move |_| {
                    let (w, f) = (w.clone(), f.clone());
                    Ok(Action::new(
                        format!("PUT actions/workflows/{{workflow}}/{verb}"),
                        json!({"workflow": f}),
                        async move {
                            match switch {
                                Switch::Disable => w.disable(&f).await?,
                                Switch::Enable => w.enable(&f).await?,
                            }
                            Ok(f)
                        },
                    ))
                })
                // A PUT of a state: repeating it changes nothing more.
                .idempotent()
                .compensate(move |ctx| {
                    let (w, f) = (w2.clone(), f2.clone());
                    let was = ctx
                        .get(&before2)?
                        .into_iter()
                        .find(|(name, _)| *name == f)
                        .map(|(_, s)| s)
                        .unwrap_or_default();
                    Ok(Action::new(
                        "restore the workflow's state",
                        json!({"workflow": f, "state": was}),
                        async move {
                            match (switch, was == "active") {
                                (Switch::Disable, true) => w.enable(&f).await?,
                                (Switch::Enable, false) => w.disable(&f).await?,
                                _ => {}
                            }
                            Ok(())
                        },
                    ))
                }),
            );
        }
        let (workflows, files) = (self.workflows.clone(), self.files.clone());
        rb = rb.step(Step::read("confirm", move |ctx| {
            let (workflows, files) = (workflows.clone(), files.clone());
            let before = ctx.get(&before)?;
            Ok(Action::new(
                "GET actions/workflows/{workflow}",
                json!({"workflows": files}),
                async move {
                    let mut out = Vec::new();
                    for (f, was) in before {
                        let now = workflows.get(&f).await?.state;
                        out.push(Switched {
                            workflow: f,
                            before: was,
                            after: now,
                        });
                    }
                    Ok(out)
                },
            ))
        }));
        Ok(rb)
    }
}

impl Procedure for SwitchWorkflows {
    type Summary = Vec<Switched>;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<Vec<Switched>> {
        report.output("confirm")
    }
}
