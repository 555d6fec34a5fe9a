//! The GitHub REST API with exact request shapes (paths, `X-GitHub-Api-Version`, media type,
//! bearer token, query strings, JSON bodies, `Link` pagination), taken from GitHub's OpenAPI
//! description, and the fault matrix.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_github::{
    ActionsSecrets, GithubApp, GithubClient, GithubConfig, GithubIssues, RepoActivity,
    WorkflowDeployer,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ))
}

fn config(server: &MockServer) -> GithubConfig {
    let mut cfg = GithubConfig::token(TOKEN).base_url(&server.uri()).unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    cfg
}

fn client_on(server: &MockServer, clock: Arc<ManualClock>) -> GithubClient {
    GithubClient::new(config(server)).unwrap().with_clock(clock)
}

fn client(server: &MockServer) -> GithubClient {
    client_on(server, clock())
}

/// Every call carries the token, the media type and the API version.
fn api(m: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(m))
        .and(path(p))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
}

fn json_reply(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json; charset=utf-8")
        .set_body_json(body)
}

fn issue(number: u64, body: &str, pr: bool) -> Value {
    let mut v = json!({
        "id": number * 7, "node_id": "MDU6SXNzdWUx", "number": number, "state": "open",
        "title": "Found a bug", "body": body,
        "url": format!("https://api.github.com/repos/octocat/Hello-World/issues/{number}"),
        "html_url": format!("https://github.com/octocat/Hello-World/issues/{number}"),
        "labels": [{"id": 208045946, "name": "incident", "color": "f29513", "default": false}],
        "locked": false, "comments": 0, "created_at": "2026-11-20T20:09:31Z",
        "updated_at": "2026-11-22T20:09:31Z", "closed_at": null, "author_association": "MEMBER"
    });
    if pr {
        v["pull_request"] =
            json!({"url": "https://api.github.com/repos/octocat/Hello-World/pulls/1347"});
    }
    v
}

#[tokio::test]
async fn incident_issues_follow_links_skip_pull_requests_and_comment() {
    let server = MockServer::start().await;
    let marker = r#"<!-- ops:dedup-key "inc-7" -->"#;
    let page2 = format!(
        "{}/repos/octocat/Hello-World/issues?labels=incident&state=open&per_page=100&page=2",
        server.uri()
    );
    api("GET", "/repos/octocat/Hello-World/issues")
        .and(query_param("labels", "incident"))
        .and(query_param("state", "open"))
        .and(query_param("per_page", "100"))
        .and(wiremock::matchers::query_param_is_missing("page"))
        .respond_with(
            json_reply(
                200,
                json!([issue(1, "other", false), issue(2, marker, true)]),
            )
            .insert_header(
                "link",
                format!("<{page2}>; rel=\"next\", <{page2}>; rel=\"last\"").as_str(),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "/repos/octocat/Hello-World/issues")
        .and(query_param("page", "2"))
        .respond_with(json_reply(
            200,
            json!([issue(3, &format!("text\n{marker}\n"), false)]),
        ))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "/repos/octocat/Hello-World/issues/3/comments")
        .and(body_json(json!({"body": "**Resolved** (info): recovered"})))
        .respond_with(json_reply(201, json!({"id": 1, "node_id": "MDEyOklzc3VlQ29tbWVudDE=", "body": "…", "created_at": "2026-11-23T09:00:00Z"})))
        .expect(1)
        .mount(&server)
        .await;
    api("PATCH", "/repos/octocat/Hello-World/issues/3")
        .and(body_json(
            json!({"state": "closed", "state_reason": "completed"}),
        ))
        .respond_with(json_reply(200, issue(3, marker, false)))
        .expect(1)
        .mount(&server)
        .await;
    let issues = GithubIssues::new(client(&server), "octocat/Hello-World").unwrap();
    let r = issues
        .send(
            &Notification::new(Severity::Info, "recovered")
                .dedup_key("inc-7")
                .event(NotificationEvent::Resolve),
        )
        .await
        .unwrap();
    assert_eq!(
        r.id.as_deref(),
        Some("3"),
        "the pull request with the marker was skipped"
    );
}

#[tokio::test]
async fn a_trigger_opens_an_issue_with_labels_and_assignees() {
    let server = MockServer::start().await;
    api("GET", "/repos/octocat/Hello-World/issues")
        .respond_with(json_reply(200, json!([])))
        .mount(&server)
        .await;
    api("POST", "/repos/octocat/Hello-World/issues")
        .and(body_json(json!({
            "title": "api down",
            "body": "**Severity:** critical\n\n| Field | Value |\n|---|---|\n| service | api |\n\n<!-- ops:dedup-key \"inc-9\" -->\n",
            "labels": ["sev", "severity:critical"],
            "assignees": ["octocat"],
        })))
        .respond_with(json_reply(201, issue(1347, "…", false)).insert_header("location", "https://api.github.com/repos/octocat/Hello-World/issues/1347"))
        .expect(1)
        .mount(&server)
        .await;
    let issues = GithubIssues::new(client(&server), "octocat/Hello-World")
        .unwrap()
        .label("sev")
        .unwrap()
        .assignees(&["octocat"]);
    let r = issues
        .send(
            &Notification::new(Severity::Critical, "api down")
                .field("service", "api")
                .dedup_key("inc-9"),
        )
        .await
        .unwrap();
    assert_eq!(r.id.as_deref(), Some("1347"));
}

/// Matches a secret PUT whose value opens with `key` to `expected`, sent with `key_id`.
struct SealedTo {
    key: crypto_box::SecretKey,
    key_id: &'static str,
    expected: &'static [u8],
    extra: Value,
}

impl Match for SealedTo {
    fn matches(&self, req: &Request) -> bool {
        let Ok(mut body) = serde_json::from_slice::<Value>(&req.body) else {
            return false;
        };
        let Some(obj) = body.as_object_mut() else {
            return false;
        };
        let Some(sealed) = obj
            .remove("encrypted_value")
            .and_then(|v| v.as_str().and_then(|s| STANDARD.decode(s).ok()))
        else {
            return false;
        };
        let mut rest = json!({"key_id": self.key_id});
        if let (Some(r), Some(extra)) = (rest.as_object_mut(), self.extra.as_object()) {
            r.extend(extra.clone());
        }
        body == rest && self.key.unseal(&sealed).is_ok_and(|v| v == self.expected)
    }
}

#[tokio::test]
async fn secrets_are_sealed_to_the_scope_key_and_sent_with_its_id() {
    let server = MockServer::start().await;
    let key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
    let public = STANDARD.encode(key.public_key().as_bytes());
    for base in [
        "/repos/octocat/Hello-World/actions/secrets",
        "/repos/octocat/Hello-World/environments/prod%20eu/secrets",
        "/orgs/octo-org/actions/secrets",
    ] {
        api("GET", &format!("{base}/public-key"))
            .respond_with(json_reply(
                200,
                json!({"key_id": "012345678912345678", "key": public}),
            ))
            .mount(&server)
            .await;
        // New before the write, stamped after it.
        api("GET", &format!("{base}/GH_TOKEN"))
            .respond_with(json_reply(404, json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/actions/secrets#get-a-repository-secret", "status": "404"})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        api("GET", &format!("{base}/GH_TOKEN"))
            .respond_with(json_reply(200, json!({"name": "GH_TOKEN", "created_at": "2019-08-10T14:59:22Z", "updated_at": "2026-11-23T09:00:00Z"})))
            .mount(&server)
            .await;
    }
    api("PUT", "/repos/octocat/Hello-World/actions/secrets/GH_TOKEN")
        .and(SealedTo {
            key: key.clone(),
            key_id: "012345678912345678",
            expected: b"s3cr3t-value",
            extra: json!({}),
        })
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    api(
        "PUT",
        "/repos/octocat/Hello-World/environments/prod%20eu/secrets/GH_TOKEN",
    )
    .and(SealedTo {
        key: key.clone(),
        key_id: "012345678912345678",
        expected: b"s3cr3t-value",
        extra: json!({}),
    })
    .respond_with(ResponseTemplate::new(201))
    .expect(1)
    .mount(&server)
    .await;
    api("PUT", "/orgs/octo-org/actions/secrets/GH_TOKEN")
        .and(SealedTo {
            key: key.clone(),
            key_id: "012345678912345678",
            expected: b"s3cr3t-value",
            extra: json!({"visibility": "selected", "selected_repository_ids": [1296269]}),
        })
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let repo = ops_github::Repo::parse("octocat/Hello-World").unwrap();
    let scopes = [
        ops_github::SecretScope::Repository(repo.clone()),
        ops_github::SecretScope::Environment {
            repo,
            environment: "prod eu".into(),
        },
        ops_github::SecretScope::Organization {
            org: "octo-org".into(),
            visibility: ops_github::secrets::OrgVisibility::Selected(vec![1296269]),
        },
    ];
    for scope in scopes {
        let store = ActionsSecrets::new(client(&server), scope).unwrap();
        let v = store
            .add_version("GH_TOKEN", &"s3cr3t-value".into())
            .await
            .unwrap();
        assert_eq!(v.id, "2026-11-23T09:00:00Z");
        let err = store
            .read("GH_TOKEN", &VersionRef::Latest)
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }));
    }
}

#[tokio::test]
async fn listing_secrets_pages_through_the_wrapper() {
    let server = MockServer::start().await;
    let next = format!(
        "{}/repos/octocat/Hello-World/actions/secrets?per_page=100&page=2",
        server.uri()
    );
    api("GET", "/repos/octocat/Hello-World/actions/secrets")
        .and(query_param("per_page", "100"))
        .and(wiremock::matchers::query_param_is_missing("page"))
        .respond_with(json_reply(200, json!({"total_count": 2, "secrets": [{"name": "GH_TOKEN", "created_at": "2019-08-10T14:59:22Z", "updated_at": "2020-01-10T14:59:22Z"}]}))
            .insert_header("link", format!("<{next}>; rel=\"next\"").as_str()))
        .mount(&server)
        .await;
    api("GET", "/repos/octocat/Hello-World/actions/secrets")
        .and(query_param("page", "2"))
        .respond_with(json_reply(200, json!({"total_count": 2, "secrets": [{"name": "GIST_ID", "created_at": "2020-01-10T10:59:22Z", "updated_at": "2020-01-11T11:59:22Z"}]})))
        .mount(&server)
        .await;
    let store = ActionsSecrets::repository(client(&server), "octocat/Hello-World").unwrap();
    let names: Vec<String> = store
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["GH_TOKEN", "GIST_ID"]);
}

fn run(id: u64, status: &str, conclusion: Option<&str>) -> Value {
    json!({
        "id": id, "name": "Deploy", "node_id": "MDEyOldvcmtmbG93IFJ1bjI2OTI4OQ==", "head_branch": "main",
        "head_sha": "acb5820ced9479c074f688cc328bf03f341a511d", "path": ".github/workflows/deploy.yml@main",
        "run_number": 562, "event": "workflow_dispatch", "display_title": "Deploy", "status": status,
        "conclusion": conclusion, "workflow_id": 159038,
        "url": format!("https://api.github.com/repos/octo-org/octo-repo/actions/runs/{id}"),
        "html_url": format!("https://github.com/octo-org/octo-repo/actions/runs/{id}"),
        "pull_requests": [], "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:00:00Z",
        "run_attempt": 1, "run_started_at": "2026-11-23T09:00:00Z"
    })
}

#[tokio::test]
async fn a_workflow_deploy_dispatches_awaits_the_run_and_reads_the_deployment() {
    let server = MockServer::start().await;
    api("POST", "/repos/octo-org/octo-repo/actions/workflows/deploy.yml/dispatches")
        .and(body_json(json!({
            "ref": "release", "return_run_details": true,
            "inputs": {"version": "v2.3.0", "environment": "production", "promote": "true"},
        })))
        .respond_with(json_reply(200, json!({"workflow_run_id": 30433642, "run_url": "https://api.github.com/repos/octo-org/octo-repo/actions/runs/30433642", "html_url": "https://github.com/octo-org/octo-repo/actions/runs/30433642"})))
        .expect(1)
        .mount(&server)
        .await;
    // queued, then in progress, then done: the ETag-less answers are polled on the clock.
    api("GET", "/repos/octo-org/octo-repo/actions/runs/30433642")
        .respond_with(json_reply(200, run(30433642, "queued", None)))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    api("GET", "/repos/octo-org/octo-repo/actions/runs/30433642")
        .respond_with(json_reply(200, run(30433642, "completed", Some("success"))))
        .mount(&server)
        .await;
    api("GET", "/repos/octo-org/octo-repo/deployments")
        .and(query_param("environment", "production"))
        .and(query_param("per_page", "20"))
        .respond_with(json_reply(200, json!([{
            "url": "https://api.github.com/repos/octo-org/octo-repo/deployments/1", "id": 1, "node_id": "MDEwOkRlcGxveW1lbnQx",
            "sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "ref": "v2.3.0", "task": "deploy", "payload": {},
            "original_environment": "production", "environment": "production", "description": "Deploy request from hubot",
            "created_at": "2026-11-23T09:01:00Z", "updated_at": "2026-11-23T09:01:00Z",
            "statuses_url": "https://api.github.com/repos/octo-org/octo-repo/deployments/1/statuses",
            "repository_url": "https://api.github.com/repos/octo-org/octo-repo", "transient_environment": false, "production_environment": true
        }])))
        .mount(&server)
        .await;
    api("GET", "/repos/octo-org/octo-repo/deployments/1/statuses")
        .and(query_param("per_page", "1"))
        .respond_with(json_reply(200, json!([{
            "url": "https://api.github.com/repos/octocat/example/deployments/42/statuses/1", "id": 1, "node_id": "MDE2OkRlcGxveW1lbnRTdGF0dXMx",
            "state": "success", "description": "Deployment finished successfully.", "environment": "production",
            "target_url": "https://example.com/deployment/42/output", "created_at": "2026-11-23T09:02:00Z", "updated_at": "2026-11-23T09:02:00Z",
            "deployment_url": "https://api.github.com/repos/octocat/example/deployments/42", "repository_url": "https://api.github.com/repos/octocat/example",
            "environment_url": "https://app.example.com", "log_url": "https://example.com/deployment/42/output"
        }])))
        .mount(&server)
        .await;
    let clock = clock();
    let d = WorkflowDeployer::new(
        client_on(&server, clock.clone()),
        "octo-org/octo-repo",
        "deploy.yml",
        "production",
    )
    .unwrap()
    .git_ref("release")
    .inputs(ops_github::WorkflowInputs {
        promote: Some("promote".into()),
        ..Default::default()
    })
    .with_polling(Duration::from_secs(15));
    let r = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("v2.3.0")
        })
        .await
        .unwrap();
    assert_eq!((r.id.as_str(), r.state), ("v2.3.0", ReleaseState::Ready));
    assert_eq!(r.labels.get("run_id").map(String::as_str), Some("30433642"));
    assert_eq!(r.url.as_deref(), Some("https://app.example.com"));
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(15); 2],
        "polled on the clock"
    );
}

#[tokio::test]
async fn rerun_failed_jobs_posts_once_and_awaits_the_next_attempt() {
    let server = MockServer::start().await;
    let mut failed = run(5, "completed", Some("failure"));
    api("GET", "/repos/o/r/actions/runs/5")
        .respond_with(json_reply(200, failed.clone()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("POST", "/repos/o/r/actions/runs/5/rerun-failed-jobs")
        .respond_with(json_reply(201, json!({})))
        .expect(1)
        .mount(&server)
        .await;
    failed["run_attempt"] = json!(2);
    failed["conclusion"] = json!("success");
    api("GET", "/repos/o/r/actions/runs/5")
        .respond_with(json_reply(200, failed))
        .mount(&server)
        .await;
    let d = WorkflowDeployer::new(client(&server), "o/r", "deploy.yml", "production").unwrap();
    let run = d
        .rerun_failed_jobs(5, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((run.run_attempt, run.succeeded()), (2, true));
}

#[tokio::test]
async fn activity_queries_use_the_documented_parameters() {
    let server = MockServer::start().await;
    api("GET", "/repos/o/r/commits")
        .and(query_param("since", "2026-11-16T09:00:00Z"))
        .and(query_param("sha", "main"))
        .and(query_param("per_page", "100"))
        .respond_with(json_reply(200, json!([{
            "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "node_id": "MDY6Q29tbWl0NmRjYjA5YjViNTc4NzVmMzM0ZjYxYWViZWQ2OTVlMmU0MTkzZGI1ZQ==",
            "html_url": "https://github.com/octocat/Hello-World/commit/6dcb09b5b57875f334f61aebed695e2e4193db5e",
            "commit": {"author": {"name": "Monalisa Octocat", "email": "support@github.com", "date": "2026-11-20T16:00:49Z"},
                "committer": {"name": "Monalisa Octocat", "email": "support@github.com", "date": "2026-11-20T16:00:49Z"},
                "message": "Fix all the bugs\n\nLonger text", "comment_count": 0},
            "author": {"login": "octocat", "id": 1}, "parents": []
        }])))
        .expect(1)
        .mount(&server)
        .await;
    api("POST", "/repos/o/r/releases")
        .and(body_json(json!({"tag_name": "v1.0.0", "target_commitish": "main", "draft": false, "prerelease": false, "generate_release_notes": true})))
        .respond_with(json_reply(201, json!({"id": 1, "tag_name": "v1.0.0", "name": "v1.0.0", "body": "## What's Changed", "draft": false, "prerelease": false,
            "html_url": "https://github.com/octocat/Hello-World/releases/v1.0.0", "created_at": "2026-11-23T09:00:00Z"})))
        .expect(1)
        .mount(&server)
        .await;
    let a = RepoActivity::new(client(&server), "o/r").unwrap();
    let commits = a
        .commits_since("2026-11-16T09:00:00Z".parse().unwrap(), Some("main"), 50)
        .await
        .unwrap();
    assert_eq!(commits.items[0].title, "Fix all the bugs");
    assert_eq!(commits.items[0].author, "octocat");
    let mut new = ops_github::activity::NewRelease::tag("v1.0.0");
    new.target_commitish = Some("main".into());
    assert_eq!(a.create_release(&new).await.unwrap().tag_name, "v1.0.0");
}

/// Checks the App JWT: RS256 over header.claims with the App's key, issuer and lifetime.
struct AppJwt {
    public_der: Vec<u8>,
}

impl Match for AppJwt {
    fn matches(&self, req: &Request) -> bool {
        let Some(jwt) = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        let [h, c, s] = parts.as_slice() else {
            return false;
        };
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.public_der,
        );
        let Ok(sig) = URL_SAFE_NO_PAD.decode(s) else {
            return false;
        };
        let signed = key.verify(format!("{h}.{c}").as_bytes(), &sig).is_ok();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap_or_default())
            .unwrap_or_default();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap_or_default())
            .unwrap_or_default();
        let now = 1_795_424_400; // 2026-11-23T09:00:00Z
        signed
            && header == json!({"alg": "RS256", "typ": "JWT"})
            && claims == json!({"iss": "Iv1.8a61f9b3a7aba766", "iat": now - 60, "exp": now + 540})
    }
}

#[tokio::test]
async fn a_github_app_signs_a_jwt_and_uses_the_installation_token() {
    let server = MockServer::start().await;
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .unwrap();
    let app = GithubApp::from_pem("Iv1.8a61f9b3a7aba766", 1296269, &pem).unwrap();
    Mock::given(method("POST"))
        .and(path("/app/installations/1296269/access_tokens"))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(AppJwt { public_der: app.public_key_der() })
        .respond_with(json_reply(201, json!({"token": "ghs_16C7e42F292c6912E7710c838347Ae178B4a", "expires_at": "2026-11-23T10:00:00Z",
            "permissions": {"issues": "write", "contents": "read"}, "repository_selection": "selected"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/issues"))
        .and(header(
            "authorization",
            "Bearer ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        ))
        .respond_with(json_reply(200, json!([])))
        .expect(2)
        .mount(&server)
        .await;
    let cfg = GithubConfig::app(app).base_url(&server.uri()).unwrap();
    let issues =
        GithubIssues::new(GithubClient::new(cfg).unwrap().with_clock(clock()), "o/r").unwrap();
    assert!(issues.find("a").await.unwrap().is_none());
    assert!(issues.find("b").await.unwrap().is_none());
}

#[tokio::test]
async fn a_revalidated_get_costs_a_304() {
    let server = MockServer::start().await;
    api("GET", "/repos/o/r/actions/secrets/public-key")
        .and(header("if-none-match", "W/\"abc\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "W/\"abc\""))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "/repos/o/r/actions/secrets/public-key")
        .respond_with(
            json_reply(
                200,
                json!({"key_id": "1", "key": "2Sg8iYjAxxmI2LvUXpJjkYrMxURPc8r+dB7TJyvv1234"}),
            )
            .insert_header("etag", "W/\"abc\""),
        )
        .expect(1)
        .mount(&server)
        .await;
    let store = ActionsSecrets::repository(client(&server), "o/r").unwrap();
    let first = store.public_key().await.unwrap();
    let second = store.public_key().await.unwrap();
    assert_eq!(
        (first.key_id, second.key_id),
        ("1".to_string(), "1".to_string())
    );
}

#[tokio::test]
async fn the_primary_rate_limit_is_waited_out() {
    let server = MockServer::start().await;
    let reset = 1_795_424_400 + 25;
    api("GET", "/repos/o/r/hooks")
        .respond_with(
            json_reply(200, json!([]))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .expect(2)
        .mount(&server)
        .await;
    let clock = clock();
    let c = client_on(&server, clock.clone());
    let url = c.url("repos/o/r/hooks", &[]).unwrap();
    let _: Value = c.get("list_webhooks", url.clone(), "hooks").await.unwrap();
    let _: Value = c.get("list_webhooks", url, "hooks").await.unwrap();
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(25)]);

    // Beyond the configured wait, the call fails at once without sending.
    let server = MockServer::start().await;
    api("GET", "/repos/o/r/hooks")
        .respond_with(
            json_reply(200, json!([]))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header(
                    "x-ratelimit-reset",
                    (1_795_424_400 + 3600).to_string().as_str(),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let url = c.url("repos/o/r/hooks", &[]).unwrap();
    let _: Value = c.get("list_webhooks", url.clone(), "hooks").await.unwrap();
    let err = c
        .get::<Value>("list_webhooks", url, "hooks")
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
}

/// Status, response headers, GitHub's error body, and the kind it must become.
type FaultCase = (
    u16,
    Vec<(&'static str, &'static str)>,
    Value,
    fn(&ErrorKind) -> bool,
);

#[tokio::test]
async fn the_fault_matrix_gives_typed_errors_and_retries_only_what_is_safe() {
    let cases: Vec<FaultCase> = vec![
        (
            429,
            vec![("retry-after", "20")],
            json!({"message": "API rate limit exceeded"}),
            |k| matches!(k, ErrorKind::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(20)),
        ),
        (
            401,
            vec![],
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            |k| matches!(k, ErrorKind::Unauthorized),
        ),
        (
            403,
            vec![],
            json!({"message": "Resource not accessible by personal access token"}),
            |k| matches!(k, ErrorKind::Forbidden { .. }),
        ),
        (404, vec![], json!({"message": "Not Found"}), |k| {
            matches!(k, ErrorKind::NotFound { .. })
        }),
        (
            409,
            vec![],
            json!({"message": "Git Repository is empty."}),
            |k| matches!(k, ErrorKind::Conflict { .. }),
        ),
        (
            422,
            vec![],
            json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]}),
            |k| matches!(k, ErrorKind::InvalidInput { field, .. } if field == "title"),
        ),
        (
            403,
            vec![],
            json!({"message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation."}),
            |k| matches!(k, ErrorKind::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(60)),
        ),
    ];
    for (status, headers, body, expected) in cases {
        let server = MockServer::start().await;
        let mut reply = json_reply(status, body.clone());
        for (k, v) in headers {
            reply = reply.insert_header(k, v);
        }
        // A throttled request was not processed, so even a POST may go again; nothing else
        // is repeated.
        let throttled = status == 429
            || body["message"]
                .as_str()
                .is_some_and(|m| m.contains("rate limit"));
        api("POST", "/repos/o/r/issues")
            .respond_with(reply)
            .expect(if throttled { 2..=5 } else { 1..=1 })
            .mount(&server)
            .await;
        api("GET", "/repos/o/r/issues")
            .respond_with(json_reply(200, json!([])))
            .mount(&server)
            .await;
        let issues = GithubIssues::new(client(&server), "o/r").unwrap();
        let err = issues
            .send(&Notification::new(Severity::Error, "x").dedup_key("k"))
            .await
            .unwrap_err();
        assert!(expected(err.kind()), "{status} {body}: {err:?}");
        assert!(!err.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn idempotent_reads_are_retried_through_throttling_outages_and_timeouts() {
    let server = MockServer::start().await;
    api("GET", "/repos/o/r/keys")
        .respond_with(
            json_reply(429, json!({"message": "API rate limit exceeded"}))
                .insert_header("retry-after", "3"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("GET", "/repos/o/r/keys")
        .respond_with(json_reply(503, json!({"message": "Service Unavailable"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("GET", "/repos/o/r/keys")
        .respond_with(json_reply(200, json!([])).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("GET", "/repos/o/r/keys")
        .respond_with(
            json_reply(
                403,
                json!({"message": "You have exceeded a secondary rate limit"}),
            )
            .insert_header("retry-after", "4"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    api("GET", "/repos/o/r/keys")
        .respond_with(json_reply(200, json!([{"id": 1, "key": "ssh-rsa AAA...", "title": "octocat@octomac", "verified": true, "created_at": "2026-01-10T15:53:42Z", "read_only": true, "added_by": "octocat", "last_used": "2026-11-10T15:53:42Z", "enabled": true}])))
        .mount(&server)
        .await;
    let clock = clock();
    let c = client_on(&server, clock.clone());
    let keys: Value = c
        .get(
            "list_deploy_keys",
            c.url("repos/o/r/keys", &[]).unwrap(),
            "keys",
        )
        .await
        .unwrap();
    assert_eq!(keys[0]["title"], "octocat@octomac");
    let sleeps = clock.sleeps();
    assert!(
        sleeps.contains(&Duration::from_secs(3)) && sleeps.contains(&Duration::from_secs(4)),
        "retry-after honoured: {sleeps:?}"
    );
    assert_eq!(sleeps.len(), 4, "four failures, four waits: {sleeps:?}");
}

#[tokio::test]
async fn a_dispatch_that_times_out_is_not_sent_again() {
    let server = MockServer::start().await;
    api("POST", "/repos/o/r/actions/workflows/deploy.yml/dispatches")
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let d = WorkflowDeployer::new(client(&server), "o/r", "deploy.yml", "production").unwrap();
    let err = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("v1")
        })
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let server = MockServer::start().await;
    api("GET", "/repos/o/r/actions/runs/9")
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string("{\"id\": 9, \"status\": "),
        )
        .mount(&server)
        .await;
    let d = WorkflowDeployer::new(client(&server), "o/r", "deploy.yml", "production").unwrap();
    let err = d.run(9).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");
}
