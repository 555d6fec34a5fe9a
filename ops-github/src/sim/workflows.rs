//! Workflows in the simulator: `deploy.yml`, `ci.yml` and `agents.yml` (seed 004's scheduled
//! writers), disabled and enabled; the jobs of each run with their steps; job logs behind a
//! redirect to a signed URL on a storage path that refuses credentials, as GitHub's log storage
//! is another host that must never see the token.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::replies::*;
use super::{SIM_REPO, SIM_WORKFLOW, SimRun, State};

/// Where job logs are served, outside the API's paths.
pub(super) const BLOB_PREFIX: &str = "/_blob/job-logs/";

/// A workflow as the simulator holds it.
#[derive(Debug, Clone)]
pub(super) struct SimWorkflow {
    pub(super) id: u64,
    pub(super) file: String,
    pub(super) name: String,
    pub(super) state: String,
    pub(super) created: DateTime<Utc>,
    pub(super) updated: DateTime<Utc>,
}

/// The seeded workflows: (file, id, name).
pub(super) const WORKFLOWS: [(&str, u64, &str); 3] = [
    (SIM_WORKFLOW, 161335, "Deploy"),
    ("ci.yml", 161336, "CI"),
    ("agents.yml", 161337, "Agents"),
];

pub(super) fn seeded(now: DateTime<Utc>) -> BTreeMap<String, SimWorkflow> {
    WORKFLOWS
        .iter()
        .map(|(file, id, name)| {
            let at = now - chrono::Duration::days(90);
            (
                file.to_string(),
                SimWorkflow {
                    id: *id,
                    file: file.to_string(),
                    name: name.to_string(),
                    state: "active".into(),
                    created: at,
                    updated: at,
                },
            )
        })
        .collect()
}

impl State {
    /// The workflow a path segment names: its file or its id.
    pub(super) fn workflow_named(&self, wf: &str) -> Option<String> {
        self.workflows
            .values()
            .find(|w| w.file == wf || w.id.to_string() == wf)
            .map(|w| w.file.clone())
    }

    pub(super) fn workflow_name(&self, file: &str) -> String {
        self.workflows
            .get(file)
            .map_or_else(|| "CI".to_string(), |w| w.name.clone())
    }

    pub(super) fn workflow_id(&self, file: &str) -> u64 {
        self.workflows.get(file).map_or(161336, |w| w.id)
    }

    pub(super) fn render_workflow(&self, w: &SimWorkflow) -> Value {
        json!({
            "id": w.id, "node_id": format!("W_sim{}", w.id), "name": w.name,
            "path": format!(".github/workflows/{}", w.file), "state": w.state,
            "created_at": iso(w.created), "updated_at": iso(w.updated),
            "url": format!("https://api.github.com/repos/{SIM_REPO}/actions/workflows/{}", w.id),
            "html_url": format!("https://github.com/{SIM_REPO}/blob/main/.github/workflows/{}", w.file),
            "badge_url": format!("https://github.com/{SIM_REPO}/workflows/{}/badge.svg", w.name),
        })
    }

    pub(super) fn workflows_route(
        &mut self,
        method: &str,
        rest: &[&str],
        q: &BTreeMap<String, String>,
        url: &url::Url,
        now: DateTime<Utc>,
    ) -> Out {
        match (method, rest) {
            ("GET", []) => {
                let items = self
                    .workflows
                    .values()
                    .map(|w| self.render_workflow(w))
                    .collect();
                wrapped_page("workflows", items, q, url)
            }
            (_, [wf, tail @ ..]) => {
                let Some(file) = self.workflow_named(wf) else {
                    return gh_error(404, "Not Found");
                };
                match (method, tail) {
                    ("GET", []) => ok(200, self.render_workflow(&self.workflows[&file])),
                    ("PUT", [verb @ ("disable" | "enable")]) => {
                        let state = if *verb == "disable" {
                            "disabled_manually"
                        } else {
                            "active"
                        };
                        if let Some(w) = self.workflows.get_mut(&file)
                            && w.state != state
                        {
                            w.state = state.into();
                            w.updated = now;
                            self.ledger.mutated();
                        }
                        no_content()
                    }
                    ("GET", ["runs"]) => {
                        let items = self.list_runs(q, Some(&file));
                        wrapped_page("workflow_runs", items, q, url)
                    }
                    _ => gh_error(404, "Not Found"),
                }
            }
            _ => gh_error(404, "Not Found"),
        }
    }

    /// The jobs of a run: a deploy run has one; the others build and test, and the test job
    /// is the one that fails.
    pub(super) fn run_jobs(&self, r: &SimRun) -> Vec<Value> {
        let (status, conclusion) = self.run_status(r);
        let names: &[&str] = if r.workflow == SIM_WORKFLOW {
            &["deploy"]
        } else {
            &["build", "test"]
        };
        let started = r.attempt_started;
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let failing = *name != "build" && r.fails;
                let conclusion = conclusion.map(|c| if c == "failure" && !failing { "success" } else { c });
                let step = |n: u64, step: &str, c: Option<&str>| json!({"name": step, "status": status, "conclusion": c, "number": n,
                    "started_at": iso(started), "completed_at": conclusion.map(|_| iso(started))});
                let run_step = if *name == "test" { "Run tests" } else if *name == "deploy" { "Deploy" } else { "Build" };
                json!({
                    "id": job_id(r.id, i), "run_id": r.id, "run_attempt": r.attempt, "node_id": "CR_sim",
                    "run_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}", r.id),
                    "head_sha": format!("{:040x}", r.id), "head_branch": r.git_ref,
                    "url": format!("https://api.github.com/repos/{SIM_REPO}/actions/jobs/{}", job_id(r.id, i)),
                    "html_url": format!("https://github.com/{SIM_REPO}/actions/runs/{}/job/{}", r.id, job_id(r.id, i)),
                    "status": status, "conclusion": conclusion, "name": name,
                    "workflow_name": self.workflow_name(&r.workflow),
                    "created_at": iso(started), "started_at": iso(started),
                    "completed_at": conclusion.map(|_| iso(started + chrono::Duration::from_std(self.run_time).unwrap_or_default())),
                    "check_run_url": format!("https://api.github.com/repos/{SIM_REPO}/check-runs/{}", job_id(r.id, i)),
                    "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
                    "runner_group_id": 1, "runner_group_name": "GitHub Actions",
                    "steps": [
                        step(1, "Set up job", conclusion.map(|_| "success")),
                        step(2, run_step, conclusion),
                    ],
                })
            })
            .collect()
    }

    /// `GET actions/jobs/{id}/logs`: a redirect to the log on the storage path, once the job
    /// has finished (before that, 404 as GitHub answers).
    pub(super) fn job_logs(&self, id: &str, url: &url::Url) -> Out {
        let Some((run, _)) = self.job(id) else {
            return gh_error(404, "Not Found");
        };
        if self.run_status(run).0 != "completed" {
            return gh_error(404, "Not Found");
        }
        let mut to = url.clone();
        to.set_path(&format!("{BLOB_PREFIX}{id}"));
        to.set_query(Some(
            "sv=2025-01-05&se=2026-12-31T00%3A00%3A00Z&sig=c2ltdWxhdGVk",
        ));
        Out {
            status: 302,
            body: None,
            headers: vec![("location", to.to_string())],
        }
    }

    fn job(&self, id: &str) -> Option<(&SimRun, usize)> {
        let id: u64 = id.parse().ok()?;
        let (run_id, index) = (id / 10, (id % 10) as usize);
        let run = self.runs.iter().find(|r| r.id == run_id)?;
        let jobs = if run.workflow == SIM_WORKFLOW { 1 } else { 2 };
        (index < jobs).then_some((run, index))
    }

    /// The log text of a job: set-up lines, output, and for a failed test job the failing
    /// tests and the runner's error line at the end.
    pub(super) fn job_log(&self, id: &str) -> Option<String> {
        let (run, index) = self.job(id)?;
        let failing = run.fails && !(run.workflow != SIM_WORKFLOW && index == 0);
        let t = iso(run.attempt_started).replace('Z', ".1234567Z");
        let mut out = String::new();
        out.push_str(&format!(
            "{t} ##[group]Runner Image\n{t} Image: ubuntu-24.04\n{t} ##[endgroup]\n"
        ));
        for i in 0..400 {
            out.push_str(&format!("{t} [{i:03}] output line of {}\n", run.workflow));
        }
        if failing {
            out.push_str(&format!(
                "{t} FAIL src/db.test.ts > writes survive a restart\n"
            ));
            out.push_str(&format!(
                "{t} Error: SQLITE_CORRUPT: database disk image is malformed\n"
            ));
            out.push_str(&format!(
                "{t} ##[error]Process completed with exit code 1.\n"
            ));
        } else {
            out.push_str(&format!("{t} all checks passed\n"));
        }
        Some(out)
    }

    /// A run started by a trigger (a schedule, a push) of `workflow`, unless the workflow is
    /// disabled: then nothing starts, which is what disabling is for.
    pub(super) fn trigger(
        &mut self,
        workflow: &str,
        event: &str,
        fails: bool,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let w = self.workflows.get(workflow)?;
        if w.state != "active" {
            return None;
        }
        let id = self.next_number();
        self.runs.push(SimRun {
            id,
            workflow: workflow.to_string(),
            git_ref: "main".into(),
            event: event.into(),
            inputs: Default::default(),
            created: now,
            attempt: 1,
            attempt_started: now,
            fails,
            settled: false,
        });
        self.ledger.mutated();
        Some(id)
    }
}

/// A job's id: its run's id and its index, so a job finds its run again.
fn job_id(run: u64, index: usize) -> u64 {
    run.saturating_mul(10).saturating_add(index as u64)
}
