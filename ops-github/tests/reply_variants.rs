//! Every reply the GitHub clients decode, in the shapes GitHub's OpenAPI description allows
//! (derived by `ops_conformance::replies`): only the required fields, every nullable field
//! `null`, empty objects, unknown fields, and every enum value including one added later. A
//! typed error about the content is allowed; a decode failure or a panic is not.

use std::sync::Arc;
use std::time::Duration;

use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::vendored;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_github::{GithubClient, GithubConfig, GithubIssues, RepoActivity, WorkflowDeployer};
use serde_json::json;

fn client(base: &str) -> GithubClient {
    let mut cfg = GithubConfig::token("ghp_16C7e42F292c6912E7710c838347Ae178B4a")
        .base_url(base)
        .unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    GithubClient::new(cfg).unwrap().with_clock(clock)
}

/// Serves each variant at `GET pattern`; later pages are empty, as GitHub's last page is.
fn replay(pattern: &str) -> Replay {
    Replay::new("GET", pattern).then(json!([]))
}

#[tokio::test]
async fn commits_in_every_described_shape() {
    let d = vendored("github-rest.json");
    replay(r"/commits$")
        .each(
            variants(&d, "repos/list-commits.response", &[]),
            |base| async move {
                let c = client(&base);
                let since = "2026-11-16T09:00:00Z".parse().unwrap();
                RepoActivity::new(c, "o/r")?
                    .commits_since(since, None, 10)
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn deployments_and_their_statuses_in_every_described_shape() {
    let d = vendored("github-rest.json");
    let status = json!([{"url": "https://api.github.com/x", "id": 1, "node_id": "x", "state": "success",
        "creator": null, "description": "", "environment": "production", "target_url": "",
        "created_at": "2026-11-23T09:02:00Z", "updated_at": "2026-11-23T09:02:00Z",
        "deployment_url": "https://api.github.com/x", "repository_url": "https://api.github.com/x"}]);
    replay(r"/deployments$")
        .also("GET", r"/statuses$", status)
        .each(
            variants(&d, "repos/list-deployments.response", &[]),
            |base| async move {
                let c = client(&base);
                WorkflowDeployer::new(c, "o/r", "deploy.yml", "production")?
                    .releases()
                    .await
                    .map(|_| ())
            },
        )
        .await;
    let deployment = json!([{"url": "https://api.github.com/x", "id": 1, "node_id": "x",
        "sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "ref": "v2.3.0", "task": "deploy",
        "payload": {}, "environment": "production", "description": null, "creator": null,
        "created_at": "2026-11-23T09:01:00Z", "updated_at": "2026-11-23T09:01:00Z",
        "statuses_url": "https://api.github.com/x", "repository_url": "https://api.github.com/x"}]);
    replay(r"/statuses$")
        .also("GET", r"/deployments$", deployment)
        .each(
            variants(&d, "repos/list-deployment-statuses.response", &[]),
            |base| async move {
                let c = client(&base);
                WorkflowDeployer::new(c, "o/r", "deploy.yml", "production")?
                    .current()
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn workflow_runs_in_every_described_shape() {
    let d = vendored("github-rest.json");
    replay(r"/actions/runs/\d+$")
        .each(
            variants(&d, "actions/get-workflow-run.response", &[]),
            |base| async move {
                let c = client(&base);
                WorkflowDeployer::new(c, "o/r", "deploy.yml", "production")?
                    .run(30433642)
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn incident_issues_in_every_described_shape() {
    let d = vendored("github-rest.json");
    replay(r"/issues$")
        .each(
            variants(&d, "issues/list-for-repo.response", &[]),
            |base| async move {
                let c = client(&base);
                // An update looks its incident up among the open issues; none carries the marker,
                // so NotFound is the expected answer, never a decode failure.
                let n = Notification::new(Severity::Error, "x")
                    .dedup_key("k")
                    .event(NotificationEvent::Update);
                GithubIssues::new(c, "o/r")?.send(&n).await.map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn workflows_in_every_described_shape() {
    use ops_github::Workflows;
    let d = vendored("github-rest.json");
    Replay::new("GET", r"/actions/workflows$")
        .then(json!({"total_count": 0, "workflows": []}))
        .each(
            variants(&d, "actions/list-repo-workflows.response", &[]),
            |base| async move {
                Workflows::new(client(&base), "o/r")?
                    .list()
                    .await
                    .map(|_| ())
            },
        )
        .await;
    Replay::new("GET", r"/actions/workflows/agents\.yml$")
        .each(
            variants(&d, "actions/get-workflow.response", &[]),
            |base| async move {
                Workflows::new(client(&base), "o/r")?
                    .get("agents.yml")
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn jobs_of_a_run_in_every_described_shape() {
    use ops_github::Workflows;
    let d = vendored("github-rest.json");
    Replay::new("GET", r"/actions/runs/\d+/jobs$")
        .then(json!({"total_count": 0, "jobs": []}))
        .each(
            variants(&d, "actions/list-jobs-for-workflow-run.response", &[]),
            |base| async move {
                Workflows::new(client(&base), "o/r")?
                    .jobs(30433642)
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn dependency_and_code_scanning_alerts_in_every_described_shape() {
    use ops_github::DependencyAlerts;
    let d = vendored("github-rest.json");
    replay(r"/dependabot/alerts$")
        .also("GET", r"/code-scanning/alerts$", json!([]))
        .each(
            variants(&d, "dependabot/list-alerts-for-repo.response", &[]),
            |base| async move {
                DependencyAlerts::new(client(&base), "o/r")?
                    .audit()
                    .await
                    .map(|_| ())
            },
        )
        .await;
    replay(r"/code-scanning/alerts$")
        .also("GET", r"/dependabot/alerts$", json!([]))
        .each(
            variants(&d, "code-scanning/list-alerts-for-repo.response", &[]),
            |base| async move {
                DependencyAlerts::new(client(&base), "o/r")?
                    .audit()
                    .await
                    .map(|_| ())
            },
        )
        .await;
}
