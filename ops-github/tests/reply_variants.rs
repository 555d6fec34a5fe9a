//! Every reply the GitHub clients decode, in the shapes GitHub's OpenAPI description allows
//! (derived by `ops_conformance::replies`): only the required fields, every nullable field
//! `null`, empty objects, unknown fields, and every enum value including one added later. A
//! typed error about the content is allowed; a decode failure or a panic is not.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ops_conformance::replies::{Variant, variants};
use ops_conformance::vendored;
use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_github::{GithubClient, GithubConfig, GithubIssues, RepoActivity, WorkflowDeployer};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> GithubClient {
    let mut cfg = GithubConfig::token("ghp_16C7e42F292c6912E7710c838347Ae178B4a")
        .base_url(&server.uri())
        .unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    GithubClient::new(cfg).unwrap().with_clock(clock)
}

/// Serves each variant (once) at `pattern`, `extra` replies elsewhere, runs `call`, and fails
/// with every decode failure.
async fn each<F, Fut>(replies: Vec<Variant>, pattern: &str, extra: Vec<(&str, Value)>, call: F)
where
    F: Fn(GithubClient) -> Fut,
    Fut: Future<Output = ops_core::Result<()>>,
{
    assert!(!replies.is_empty(), "no variants: the schema name is wrong");
    let server = MockServer::start().await;
    let mut failures = Vec::new();
    for v in replies {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path_regex(pattern))
            .respond_with(ResponseTemplate::new(200).set_body_json(&v.value))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(pattern))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        for (p, body) in &extra {
            Mock::given(method("GET"))
                .and(path_regex(*p))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(&server)
                .await;
        }
        if let Err(e) = call(client(&server)).await
            && matches!(e.kind(), ErrorKind::Decode { .. })
        {
            failures.push(format!("{}: {e}\n    reply: {}", v.name, v.value));
        }
    }
    assert!(
        failures.is_empty(),
        "valid replies refused:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn commits_in_every_described_shape() {
    let d = vendored("github-rest.json");
    each(
        variants(&d, "repos/list-commits.response", &[]),
        r"/commits$",
        vec![],
        |c| async move {
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
    each(
        variants(&d, "repos/list-deployments.response", &[]),
        r"/deployments$",
        vec![(r"/statuses$", status)],
        |c| async move {
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
    each(
        variants(&d, "repos/list-deployment-statuses.response", &[]),
        r"/statuses$",
        vec![(r"/deployments$", deployment)],
        |c| async move {
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
    each(
        variants(&d, "actions/get-workflow-run.response", &[]),
        r"/actions/runs/\d+$",
        vec![],
        |c| async move {
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
    each(
        variants(&d, "issues/list-for-repo.response", &[]),
        r"/issues$",
        vec![],
        |c| async move {
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
