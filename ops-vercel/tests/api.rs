//! The Vercel REST API with exact request shapes (paths, versions, team scope, bearer token,
//! JSON bodies, cursor pagination) from Vercel's published SDK, and the fault matrix.

use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_vercel::{GitRepo, VercelClient, VercelConfig, VercelDeployer, VercelEnv};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEAM: &str = "team_a1b2c3d4e5f6";
const PRJ: &str = "prj_9Xy8wV7u6T5s4R3q";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ))
}

fn client(server: &MockServer) -> VercelClient {
    let mut cfg = VercelConfig::new("vc_test_token")
        .team(TEAM)
        .base_url(&server.uri())
        .unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    VercelClient::new(cfg).unwrap().with_clock(clock())
}

fn deployer(server: &MockServer) -> VercelDeployer {
    let git = GitRepo {
        org: "acme".into(),
        repo: "site".into(),
        branch: "main".into(),
    };
    VercelDeployer::new(client(server), "site", Some(git))
        .unwrap()
        .with_polling(Duration::from_secs(5), Duration::from_secs(60))
}

fn scoped(m: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(m))
        .and(path(p))
        .and(query_param("teamId", TEAM))
        .and(header("authorization", "Bearer vc_test_token"))
}

fn deployment(id: &str, state: &str, target: Option<&str>, created: i64) -> serde_json::Value {
    json!({
        "uid": id, "name": "site", "url": format!("site-{}-acme.vercel.app", &id[4..12].to_lowercase()),
        "created": created, "createdAt": created, "state": state, "readyState": state,
        "type": "LAMBDAS", "target": target, "projectId": PRJ, "source": "git",
        "creator": {"uid": "usr_1", "username": "ops"}, "inspectorUrl": null,
        "meta": {"githubCommitSha": "4f1c2e9a0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e", "githubCommitRef": "main"}
    })
}

fn project(prod: Option<serde_json::Value>, paused: bool) -> serde_json::Value {
    json!({"id": PRJ, "name": "site", "accountId": TEAM, "framework": "nextjs", "paused": paused,
           "targets": {"production": prod}})
}

#[tokio::test]
async fn releases_follow_the_until_cursor() {
    let server = MockServer::start().await;
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(None, false)))
        .mount(&server)
        .await;
    scoped("GET", "/v7/deployments")
        .and(query_param("projectId", PRJ))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("until"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "deployments": [deployment("dpl_3AAAAAAAAAAA", "READY", Some("production"), 1763888400000i64)],
            "pagination": {"count": 1, "next": 1763888400000i64, "prev": 1763888400000i64}})))
        .mount(&server)
        .await;
    scoped("GET", "/v7/deployments")
        .and(query_param("until", "1763888400000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "deployments": [deployment("dpl_2BBBBBBBBBBB", "ERROR", None, 1763802000000i64)],
            "pagination": {"count": 1, "next": null, "prev": 1763802000000i64}})))
        .mount(&server)
        .await;
    let releases = deployer(&server).releases().await.unwrap();
    let got: Vec<(&str, ReleaseState)> =
        releases.iter().map(|r| (r.id.as_str(), r.state)).collect();
    assert_eq!(
        got,
        vec![
            ("dpl_3AAAAAAAAAAA", ReleaseState::Ready),
            ("dpl_2BBBBBBBBBBB", ReleaseState::Failed)
        ]
    );
    assert_eq!(
        releases[0].version,
        "4f1c2e9a0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e"
    );
}

#[tokio::test]
async fn deploy_sends_the_git_source_and_waits_for_ready() {
    let server = MockServer::start().await;
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(None, false)))
        .mount(&server)
        .await;
    let created = json!({"id": "dpl_NEWNEWNEWNEW", "url": "site-new-acme.vercel.app", "readyState": "QUEUED",
                         "target": "production", "createdAt": 1763888400000i64, "meta": {"opsVersion": "release-7"}});
    scoped("POST", "/v13/deployments")
        .and(body_json(json!({"name": "site", "project": PRJ, "target": "production",
                              "meta": {"opsVersion": "release-7"},
                              "gitSource": {"type": "github", "org": "acme", "repo": "site", "ref": "release-7"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(created.clone()))
        .expect(1)
        .mount(&server)
        .await;
    let mut building = created.clone();
    building["readyState"] = json!("BUILDING");
    scoped("GET", "/v13/deployments/dpl_NEWNEWNEWNEW")
        .respond_with(ResponseTemplate::new(200).set_body_json(building))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let mut ready = created;
    ready["readyState"] = json!("READY");
    scoped("GET", "/v13/deployments/dpl_NEWNEWNEWNEW")
        .respond_with(ResponseTemplate::new(200).set_body_json(ready))
        .mount(&server)
        .await;
    let release = deployer(&server)
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("release-7")
        })
        .await
        .unwrap();
    assert_eq!(
        (release.id.as_str(), release.version.as_str(), release.state),
        ("dpl_NEWNEWNEWNEW", "release-7", ReleaseState::Ready)
    );
}

#[tokio::test]
async fn a_commit_sha_deploys_that_commit_on_the_branch() {
    let server = MockServer::start().await;
    let sha = "4f1c2e9a0b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e";
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(None, false)))
        .mount(&server)
        .await;
    scoped("POST", "/v13/deployments")
        .and(body_json(json!({"name": "site", "project": PRJ, "meta": {"opsVersion": sha},
                              "gitSource": {"type": "github", "org": "acme", "repo": "site", "ref": "main", "sha": sha}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "dpl_SHASHASHASHA", "url": "u", "readyState": "READY", "createdAt": 1})))
        .expect(1)
        .mount(&server)
        .await;
    deployer(&server)
        .deploy(&DeployRequest::new(sha))
        .await
        .unwrap();
}

#[tokio::test]
async fn promote_and_rollback_use_their_endpoints() {
    let server = MockServer::start().await;
    let old = deployment(
        "dpl_OLDOLDOLDOLD",
        "READY",
        Some("production"),
        1763000000000i64,
    );
    let cur = deployment(
        "dpl_CURCURCURCUR",
        "READY",
        Some("production"),
        1763800000000i64,
    );
    let preview = deployment("dpl_PREPREPREPRE", "READY", None, 1763888000000i64);
    scoped("GET", "/v7/deployments").respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "deployments": [preview.clone(), cur.clone(), old.clone()], "pagination": {"count": 3, "next": null, "prev": null}}))).mount(&server).await;
    // Production is `cur` until a write moves it.
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(Some(cur.clone()), false)))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    scoped(
        "POST",
        &format!("/v1/projects/{PRJ}/rollback/dpl_OLDOLDOLDOLD"),
    )
    .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
    .expect(1)
    .mount(&server)
    .await;
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(Some(old.clone()), false)))
        .mount(&server)
        .await;
    let state = deployer(&server)
        .set_traffic(&TrafficSplit::all_to("dpl_OLDOLDOLDOLD").unwrap())
        .await
        .unwrap();
    assert_eq!(state.primary_release(), Some("dpl_OLDOLDOLDOLD"));

    let server = MockServer::start().await;
    scoped("GET", "/v7/deployments").respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "deployments": [preview.clone(), cur.clone()], "pagination": {"count": 2, "next": null, "prev": null}}))).mount(&server).await;
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(Some(cur), false)))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    scoped(
        "POST",
        &format!("/v10/projects/{PRJ}/promote/dpl_PREPREPREPRE"),
    )
    .respond_with(ResponseTemplate::new(202))
    .expect(1)
    .mount(&server)
    .await;
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(Some(preview), false)))
        .mount(&server)
        .await;
    let state = deployer(&server)
        .set_traffic(&TrafficSplit::all_to("dpl_PREPREPREPRE").unwrap())
        .await
        .unwrap();
    assert_eq!(state.primary_release(), Some("dpl_PREPREPREPRE"));
}

#[tokio::test]
async fn env_upsert_sends_key_value_type_and_targets() {
    let server = MockServer::start().await;
    scoped("POST", "/v10/projects/site/env")
        .and(query_param("upsert", "true"))
        .and(body_json(json!({"key": "API_KEY", "value": "k-0002-new", "type": "encrypted", "target": ["production"]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"created": {"id": "env_1", "key": "API_KEY", "type": "encrypted",
            "target": ["production"], "createdAt": 1763000000000i64, "updatedAt": 1763888400000i64}, "failed": []})))
        .expect(1)
        .mount(&server)
        .await;
    scoped("GET", "/v10/projects/site/env").respond_with(ResponseTemplate::new(200).set_body_json(json!({"envs": [
        {"id": "env_1", "key": "API_KEY", "type": "encrypted", "target": ["production"], "value": "opaque",
         "createdAt": 1763000000000i64, "updatedAt": 1763888400000i64},
        {"id": "env_2", "key": "PREVIEW_ONLY", "type": "encrypted", "target": "preview", "value": "opaque"}
    ]}))).mount(&server).await;
    scoped("GET", "/v1/projects/site/env/env_1").respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "id": "env_1", "key": "API_KEY", "type": "encrypted", "target": ["production"], "value": "k-0002-new",
        "decrypted": true, "createdAt": 1763000000000i64, "updatedAt": 1763888400000i64}))).mount(&server).await;
    let env = VercelEnv::new(client(&server), "site", &["production"]).unwrap();
    let v = env
        .add_version("API_KEY", &"k-0002-new".into())
        .await
        .unwrap();
    assert_eq!(v.id, "1763888400000");
    let read = env.read("API_KEY", &VersionRef::Latest).await.unwrap();
    assert_eq!(read.value.expose_str().unwrap(), "k-0002-new");
    let names: Vec<String> = env
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        vec!["API_KEY"],
        "only variables of the store's targets"
    );
    assert!(!format!("{read:?}").contains("k-0002"));
}

async fn get_project_with(
    fault: ResponseTemplate,
    times: u64,
) -> (ops_core::Result<ServiceState>, usize) {
    let server = MockServer::start().await;
    scoped("GET", "/v9/projects/site")
        .respond_with(fault)
        .up_to_n_times(times)
        .mount(&server)
        .await;
    scoped("GET", "/v9/projects/site")
        .respond_with(ResponseTemplate::new(200).set_body_json(project(None, false)))
        .mount(&server)
        .await;
    scoped("GET", "/v7/deployments")
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"deployments": [], "pagination": {"count": 0, "next": null, "prev": null}}),
        ))
        .mount(&server)
        .await;
    let r = deployer(&server).current().await;
    let n = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v9/projects/site")
        .count();
    (r, n)
}

fn vercel_error(status: u16, code: &str, msg: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {"code": code, "message": msg}}))
}

#[tokio::test]
async fn the_fault_matrix() {
    let (r, n) = get_project_with(vercel_error(401, "unauthorized", "Not authorized"), 1).await;
    assert_eq!(
        (r.unwrap_err().kind().clone(), n),
        (ErrorKind::Unauthorized, 1)
    );
    let (r, _) = get_project_with(vercel_error(403, "forbidden", "Not authorized"), 1).await;
    assert!(matches!(r.unwrap_err().kind(), ErrorKind::Forbidden { .. }));
    let (r, _) = get_project_with(vercel_error(404, "not_found", "Project not found"), 1).await;
    assert!(matches!(r.unwrap_err().kind(), ErrorKind::NotFound { .. }));
    let (r, _) = get_project_with(
        vercel_error(409, "conflict", "A deployment is already being promoted"),
        1,
    )
    .await;
    assert!(
        matches!(r.unwrap_err().kind(), ErrorKind::Conflict { detail } if detail.starts_with("conflict:"))
    );
    let limited = vercel_error(429, "rate_limited", "Rate limit exceeded")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", "1795424410");
    let (r, n) = get_project_with(limited, 1).await;
    assert!(
        r.is_ok() && n == 2,
        "a 429 waits for the reset and tries again: {r:?} {n}"
    );
    let (r, n) = get_project_with(
        vercel_error(
            500,
            "internal_server_error",
            "An unexpected error occurred.",
        ),
        1,
    )
    .await;
    assert!(r.is_ok() && n == 2, "a read is retried after a 500");
    let slow = ResponseTemplate::new(200)
        .set_body_json(project(None, false))
        .set_delay(Duration::from_secs(2));
    let (r, n) = get_project_with(slow, 1).await;
    assert!(r.is_ok() && n == 2, "a timed-out read is retried");
    let cut =
        ResponseTemplate::new(200).set_body_raw(b"{\"id\": \"prj_".to_vec(), "application/json");
    let (r, _) = get_project_with(cut, 1).await;
    assert!(matches!(r.unwrap_err().kind(), ErrorKind::Decode { .. }));
}
