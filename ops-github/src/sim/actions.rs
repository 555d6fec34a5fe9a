//! Actions in the simulator: workflow runs, their progress on the clock, dispatch.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{SIM_ENVIRONMENT, SIM_REPO, SIM_WORKFLOW, SimDeployment, SimRun, State};

use super::replies::*;

impl State {
    pub(super) fn run_status(&self, r: &SimRun) -> (&'static str, Option<&'static str>) {
        let age = (self.clock.now() - r.attempt_started)
            .to_std()
            .unwrap_or_default();
        if age < self.run_time / 10 {
            ("queued", None)
        } else if age < self.run_time {
            ("in_progress", None)
        } else if r.fails {
            ("completed", Some("failure"))
        } else {
            ("completed", Some("success"))
        }
    }

    /// A finished deploy run records its deployment: `success` (the earlier one goes
    /// `inactive`) when promoted, `inactive` when only staged, `failure` when the run failed.
    pub(super) fn settle(&mut self) {
        let now = self.clock.now();
        let done: Vec<usize> = (0..self.runs.len())
            .filter(|&i| !self.runs[i].settled && self.run_status(&self.runs[i]).0 == "completed")
            .collect();
        for i in done {
            self.runs[i].settled = true;
            let run = self.runs[i].clone();
            if run.workflow != SIM_WORKFLOW {
                continue;
            }
            let env = run
                .inputs
                .get("environment")
                .cloned()
                .unwrap_or_else(|| SIM_ENVIRONMENT.into());
            let version = run.inputs.get("version").cloned().unwrap_or_default();
            let promote = run.inputs.get("promote").map(String::as_str) != Some("false");
            let at =
                run.attempt_started + chrono::Duration::from_std(self.run_time).unwrap_or_default();
            let state = if run.fails {
                "failure"
            } else if promote {
                "success"
            } else {
                "inactive"
            };
            if state == "success" {
                for d in self.deployments.iter_mut().filter(|d| d.environment == env) {
                    if d.statuses.last().is_some_and(|s| s.0 == "success") {
                        d.statuses.push(("inactive".into(), s_url(), at.min(now)));
                    }
                }
            }
            let id = self.next_number();
            self.deployments.push(SimDeployment {
                id,
                environment: env,
                version,
                sha: format!("{:040x}", run.id),
                created: at.min(now),
                statuses: vec![
                    ("in_progress".into(), None, at.min(now)),
                    (state.into(), s_url(), at.min(now)),
                ],
            });
        }
    }

    pub(super) fn render_run(&self, r: &SimRun) -> Value {
        let (status, conclusion) = self.run_status(r);
        let name = self.workflow_name(&r.workflow);
        let name = name.as_str();
        json!({
            "id": r.id, "name": name, "node_id": "WFR_sim", "head_branch": r.git_ref,
            "head_sha": format!("{:040x}", r.id), "path": format!(".github/workflows/{}@{}", r.workflow, r.git_ref),
            "run_number": r.id - 1000, "event": r.event,
            "display_title": r.inputs.get("version").map_or(name.to_string(), |v| format!("Deploy {v}")),
            "status": status, "conclusion": conclusion, "workflow_id": self.workflow_id(&r.workflow),
            "url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}", r.id),
            "html_url": format!("https://github.com/{SIM_REPO}/actions/runs/{}", r.id),
            "pull_requests": [], "created_at": iso(r.created), "updated_at": iso(self.clock.now().min(r.attempt_started + chrono::Duration::from_std(self.run_time).unwrap_or_default())),
            "actor": user("ops-bot"), "run_attempt": r.attempt, "run_started_at": iso(r.attempt_started),
            "triggering_actor": user("ops-bot"),
            "jobs_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/jobs", r.id),
            "logs_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/logs", r.id),
            "check_suite_url": format!("https://api.github.com/repos/{SIM_REPO}/check-suites/{}", r.id),
            "cancel_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/cancel", r.id),
            "rerun_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/rerun", r.id),
            "artifacts_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{}/artifacts", r.id),
            "workflow_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/workflows/{}", r.workflow),
            "head_commit": {"id": format!("{:040x}", r.id), "tree_id": format!("{:040x}", r.id + 1),
                            "message": format!("deploy {}", r.git_ref), "timestamp": iso(r.created),
                            "author": {"name": "ops-bot", "email": "ops-bot@users.noreply.github.com"},
                            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
            "repository": repository(), "head_repository": repository(),
        })
    }

    pub(super) fn list_runs(
        &self,
        q: &BTreeMap<String, String>,
        workflow: Option<&str>,
    ) -> Vec<Value> {
        let since = created_since(q);
        let mut runs: Vec<&SimRun> = self
            .runs
            .iter()
            .filter(|r| workflow.is_none_or(|w| r.workflow == w))
            .filter(|r| q.get("event").is_none_or(|e| *e == r.event))
            .filter(|r| q.get("branch").is_none_or(|b| *b == r.git_ref))
            .filter(|r| since.is_none_or(|s| r.created >= s))
            .filter(|r| {
                // `status` takes a status or a conclusion.
                q.get("status").is_none_or(|want| {
                    let (status, conclusion) = self.run_status(r);
                    status == want || conclusion == Some(want.as_str())
                })
            })
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse((r.created, r.id)));
        runs.into_iter().map(|r| self.render_run(r)).collect()
    }

    pub(super) fn dispatch(&mut self, wf: &str, body: &Value, now: DateTime<Utc>) -> Out {
        if wf != SIM_WORKFLOW && wf != "161335" {
            return gh_error(404, "Not Found");
        }
        if self
            .workflows
            .get(SIM_WORKFLOW)
            .is_some_and(|w| w.state != "active")
        {
            return gh_error(
                422,
                "Cannot trigger a 'workflow_dispatch' on a disabled workflow",
            );
        }
        let Some(git_ref) = body.get("ref").and_then(Value::as_str) else {
            return validation("ref", "missing_field", "ref is required");
        };
        if git_ref != "main" {
            return gh_error(422, &format!("No ref found for: {git_ref}"));
        }
        let inputs: BTreeMap<String, String> = match body.get("inputs") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => {
                if m.len() > 25 {
                    return gh_error(422, "inputs are too large (at most 25 properties)");
                }
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let Some(v) = v.as_str() else {
                        return gh_error(422, &format!("Invalid value for input '{k}'"));
                    };
                    if !["version", "environment", "promote"].contains(&k.as_str()) {
                        return gh_error(422, &format!("Unexpected inputs provided: [\"{k}\"]"));
                    }
                    out.insert(k.clone(), v.to_string());
                }
                out
            }
            Some(_) => return gh_error(422, "inputs must be an object"),
        };
        if !inputs.contains_key("version") {
            return gh_error(422, "Required input 'version' not provided");
        }
        if let Some(p) = inputs.get("promote")
            && p != "true"
            && p != "false"
        {
            return gh_error(422, "Provided value for input 'promote' is not a boolean");
        }
        let id = self.next_number();
        let fails = self.failing_versions.contains(&inputs["version"]);
        self.runs.push(SimRun {
            id,
            workflow: SIM_WORKFLOW.into(),
            git_ref: git_ref.into(),
            event: "workflow_dispatch".into(),
            inputs,
            created: now,
            attempt: 1,
            attempt_started: now,
            fails,
            settled: false,
        });
        self.ledger.mutated();
        if self.return_run_details
            && body.get("return_run_details").and_then(Value::as_bool) == Some(true)
        {
            ok(
                200,
                json!({
                    "workflow_run_id": id,
                    "run_url": format!("https://api.github.com/repos/{SIM_REPO}/actions/runs/{id}"),
                    "html_url": format!("https://github.com/{SIM_REPO}/actions/runs/{id}"),
                }),
            )
        } else {
            no_content()
        }
    }
}
