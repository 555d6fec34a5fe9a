//! Replies the official description allows that a convenient fake never sends: redirects of a
//! renamed or transferred repository, rate-limit headers on error replies, `errors` as a list
//! of strings, a commit author `null` or `{}`, an `environment_url` of `""`.

use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::{Deployer, Notification, Notifier, Severity};
use ops_github::{GithubClient, GithubConfig, GithubIssues, RepoActivity, WorkflowDeployer};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ))
}

fn client_on(server: &MockServer, clock: Arc<ManualClock>) -> GithubClient {
    let mut cfg = GithubConfig::token(TOKEN).base_url(&server.uri()).unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    GithubClient::new(cfg).unwrap().with_clock(clock)
}

fn client(server: &MockServer) -> GithubClient {
    client_on(server, clock())
}

fn json_reply(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json; charset=utf-8")
        .set_body_json(body)
}

/// GitHub's answer for a moved repository: `Location` on the same API host.
fn moved(status: u16, server: &MockServer, to: &str) -> ResponseTemplate {
    json_reply(
        status,
        json!({"message": "Moved Permanently", "url": format!("{}{to}", server.uri()),
               "documentation_url": "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"}),
    )
    .insert_header("location", format!("{}{to}", server.uri()).as_str())
}

#[tokio::test]
async fn a_renamed_repository_is_followed_for_reads_and_writes() {
    let server = MockServer::start().await;
    // Reads: 301 to the repository's id path.
    Mock::given(method("GET"))
        .and(path("/repos/acme/old-name/issues"))
        .respond_with(moved(
            301,
            &server,
            "/repositories/1296269/issues?labels=incident&state=open&per_page=100",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/1296269/issues"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(json_reply(200, json!([])))
        .expect(1)
        .mount(&server)
        .await;
    // Writes: 307, repeated with the same method and body.
    Mock::given(method("POST"))
        .and(path("/repos/acme/old-name/issues"))
        .respond_with(moved(307, &server, "/repositories/1296269/issues"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repositories/1296269/issues"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(|req: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            body["title"].as_str().is_some_and(|t| t.contains("database down"))
        })
        .respond_with(json_reply(201, json!({
            "id": 1, "number": 1347, "state": "open", "title": "database down",
            "html_url": "https://github.com/acme/new-name/issues/1347",
            "url": "https://api.github.com/repos/acme/new-name/issues/1347",
            "labels": [], "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:00:00Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let issues = GithubIssues::new(client(&server), "acme/old-name").unwrap();
    issues
        .send(&Notification::new(Severity::Critical, "database down").dedup_key("db-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn redirects_to_another_host_or_in_a_loop_are_refused_with_their_location() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/app/commits"))
        .respond_with(
            json_reply(301, json!({"message": "Moved Permanently"})).insert_header(
                "location",
                "https://evil.example.com/repositories/1/commits",
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let activity = RepoActivity::new(client(&server), "acme/app").unwrap();
    let since = "2026-11-16T09:00:00Z".parse().unwrap();
    let err = activity.commits_since(since, None, 10).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 301, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("evil.example.com"), "{err}");
    assert!(!err.to_string().contains(TOKEN));

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/loop/commits"))
        .respond_with(moved(302, &server, "/repos/acme/loop/commits"))
        .expect(6)
        .mount(&server)
        .await;
    let activity = RepoActivity::new(client(&server), "acme/loop").unwrap();
    let err = activity.commits_since(since, None, 10).await.unwrap_err();
    assert!(err.to_string().contains("more than 5 redirects"), "{err}");
}

/// A primary-limit 403 carries `x-ratelimit-remaining: 0`: the next call waits for the reset
/// (or, beyond the configured wait, fails without sending) instead of spending a request.
#[tokio::test]
async fn rate_limit_headers_on_an_error_reply_hold_back_the_next_call() {
    let server = MockServer::start().await;
    let reset = 1_795_424_400 + 3600;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/commits"))
        .respond_with(
            json_reply(
                403,
                json!({"message": "API rate limit exceeded for user ID 1."}),
            )
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let activity = RepoActivity::new(c.clone(), "o/r").unwrap();
    let since = "2026-11-16T09:00:00Z".parse().unwrap();
    let first = activity.commits_since(since, None, 10).await.unwrap_err();
    assert!(
        matches!(first.kind(), ErrorKind::RateLimited { .. }),
        "{first}"
    );
    assert_eq!(c.rate_limit().last().map(|(n, _)| n), Some(0));
    let second = activity.commits_since(since, None, 10).await.unwrap_err();
    assert!(
        matches!(second.kind(), ErrorKind::RateLimited { retry_after: Some(d) } if *d > Duration::from_secs(3000)),
        "{second:?}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "nothing is sent while the limit is known to be exhausted"
    );
}

#[tokio::test]
async fn a_validation_error_listing_strings_is_invalid_input() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/issues"))
        .respond_with(json_reply(
            422,
            json!({"message": "Validation Failed",
                   "errors": ["Could not resolve to a node with the global id of 'x'."],
                   "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues"))
        .respond_with(json_reply(200, json!([])))
        .mount(&server)
        .await;
    let issues = GithubIssues::new(client(&server), "o/r").unwrap();
    let err = issues
        .send(&Notification::new(Severity::Error, "x").dedup_key("k"))
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::InvalidInput { field, reason } => {
            assert_eq!(field, "request");
            assert!(reason.contains("Could not resolve"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

fn commit(sha: &str, author: Value) -> Value {
    json!({
        "sha": sha, "node_id": "MDY6Q29tbWl0",
        "html_url": format!("https://github.com/o/r/commit/{sha}"),
        "commit": {"author": {"name": "Git Name", "email": "git@example.com", "date": "2026-11-20T16:00:49Z"},
                   "committer": null, "message": "Fix", "comment_count": 0},
        "author": author, "committer": null, "parents": []
    })
}

#[tokio::test]
async fn commit_authors_may_be_null_or_empty_objects() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/commits"))
        .respond_with(json_reply(
            200,
            json!([
                commit("a1", json!({"login": "octocat", "id": 1})),
                commit("b2", Value::Null),
                commit("c3", json!({})),
            ]),
        ))
        .mount(&server)
        .await;
    let activity = RepoActivity::new(client(&server), "o/r").unwrap();
    let since = "2026-11-16T09:00:00Z".parse().unwrap();
    let commits = activity.commits_since(since, None, 10).await.unwrap().items;
    let authors: Vec<&str> = commits.iter().map(|c| c.author.as_str()).collect();
    assert_eq!(authors, ["octocat", "Git Name", "Git Name"]);
}

#[tokio::test]
async fn an_empty_environment_url_is_no_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(json_reply(200, json!([{
            "url": "https://api.github.com/repos/o/r/deployments/1", "id": 1, "node_id": "MDEw",
            "sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "ref": "v2.3.0", "task": "deploy",
            "payload": {}, "environment": "production", "description": null, "creator": null,
            "created_at": "2026-11-23T09:01:00Z", "updated_at": "2026-11-23T09:01:00Z",
            "statuses_url": "https://api.github.com/repos/o/r/deployments/1/statuses",
            "repository_url": "https://api.github.com/repos/o/r"
        }])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/deployments/1/statuses"))
        .respond_with(json_reply(
            200,
            json!([{
                "url": "https://api.github.com/repos/o/r/deployments/1/statuses/1", "id": 1,
                "node_id": "MDE2", "state": "success", "creator": null, "description": "",
                "environment": "production", "target_url": "", "log_url": "", "environment_url": "",
                "created_at": "2026-11-23T09:02:00Z", "updated_at": "2026-11-23T09:02:00Z",
                "deployment_url": "https://api.github.com/repos/o/r/deployments/1",
                "repository_url": "https://api.github.com/repos/o/r"
            }]),
        ))
        .mount(&server)
        .await;
    let d = WorkflowDeployer::new(client(&server), "o/r", "deploy.yml", "production").unwrap();
    let state = d.current().await.unwrap();
    assert_eq!(state.url, None);
    let releases = d.releases().await.unwrap();
    assert_eq!(releases[0].url, None);
}
