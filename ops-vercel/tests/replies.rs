//! Replies Vercel's published SDK schemas allow that a convenient fake never sends: build
//! events whose line is in `payload.text`, `null` items in the events array, an env listing as
//! `{envs, pagination}` over several pages or as one bare variable.

use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_vercel::{VercelClient, VercelConfig, VercelDeployer, VercelEnv};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEAM: &str = "team_a1b2c3d4e5f6";

fn client(server: &MockServer) -> VercelClient {
    let mut cfg = VercelConfig::new("vc_test_token")
        .team(TEAM)
        .base_url(&server.uri())
        .unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    VercelClient::new(cfg).unwrap().with_clock(clock)
}

fn scoped(m: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(m))
        .and(path(p))
        .and(query_param("teamId", TEAM))
        .and(header("authorization", "Bearer vc_test_token"))
}

#[tokio::test]
async fn build_events_read_both_line_shapes_and_skip_nulls() {
    let server = MockServer::start().await;
    scoped("GET", "/v3/deployments/dpl_1/events")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"type": "stdout", "created": 1763888400002i64, "text": "> next build",
             "deploymentId": "dpl_1", "id": "e2", "serial": "2", "date": 1763888400002i64,
             "info": {"name": "bld_1", "type": "build"}},
            null,
            {"type": "stderr", "created": 1763888400003i64,
             "payload": {"text": "Error: Command \"npm run build\" exited with 1",
                         "deploymentId": "dpl_1", "id": "e3", "serial": "3", "date": 1763888400003i64}},
            {"type": "command", "created": 1763888400001i64, "text": "Running \"npm run build\"",
             "deploymentId": "dpl_1", "id": "e1", "serial": "1", "date": 1763888400001i64,
             "info": {"name": "bld_1", "type": "build"}, "someFieldAddedLater": true},
            {"type": "some-type-added-later", "created": 1763888400004i64,
             "payload": {"deploymentId": "dpl_1", "id": "e4", "serial": "4", "date": 1763888400004i64}}
        ])))
        .mount(&server)
        .await;
    let d = VercelDeployer::new(client(&server), "site", None).unwrap();
    let events = d.build_events("dpl_1", 40).await.unwrap();
    let lines: Vec<Option<&str>> = events.iter().map(|e| e.line()).collect();
    assert_eq!(
        lines,
        [
            Some("Running \"npm run build\""),
            Some("> next build"),
            Some("Error: Command \"npm run build\" exited with 1"),
            None
        ]
    );
}

#[tokio::test]
async fn an_unreadable_events_reply_is_an_error_not_an_empty_list() {
    let server = MockServer::start().await;
    scoped("GET", "/v3/deployments/dpl_1/events")
        .respond_with(ResponseTemplate::new(200).set_body_string("[{\"type\": \"stdout\", \"cre"))
        .mount(&server)
        .await;
    let d = VercelDeployer::new(client(&server), "site", None).unwrap();
    let err = d.build_events("dpl_1", 40).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Decode { .. }), "{err}");
}

fn env(id: &str, key: &str, created: i64) -> serde_json::Value {
    json!({"id": id, "key": key, "type": "encrypted", "target": ["production"], "value": "opaque",
           "createdAt": created, "updatedAt": created, "configurationId": null,
           "createdBy": null, "decrypted": false, "securityIssues": []})
}

#[tokio::test]
async fn the_env_listing_follows_pagination() {
    let server = MockServer::start().await;
    scoped("GET", "/v10/projects/site/env")
        .and(query_param_is_missing("until"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "envs": [env("env_3", "C", 1763000000300i64), env("env_2", "B", 1763000000200i64)],
            "pagination": {"count": 2, "next": 1763000000200i64, "prev": 1763000000300i64}})))
        .expect(1)
        .mount(&server)
        .await;
    scoped("GET", "/v10/projects/site/env")
        .and(query_param("until", "1763000000200"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "envs": [env("env_1", "A", 1763000000100i64)],
            "pagination": {"count": 1, "next": null, "prev": 1763000000100i64}})))
        .expect(1)
        .mount(&server)
        .await;
    let store = VercelEnv::new(client(&server), "site", &["production"]).unwrap();
    let mut names: Vec<String> = store
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    assert_eq!(names, ["A", "B", "C"]);
}

#[tokio::test]
async fn the_env_listing_may_be_one_bare_variable() {
    let server = MockServer::start().await;
    scoped("GET", "/v10/projects/site/env")
        .respond_with(ResponseTemplate::new(200).set_body_json(env(
            "env_1",
            "ONLY",
            1763000000100i64,
        )))
        .mount(&server)
        .await;
    let store = VercelEnv::new(client(&server), "site", &["production"]).unwrap();
    let names: Vec<String> = store
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["ONLY"]);
}
