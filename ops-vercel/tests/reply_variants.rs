//! Every reply the Vercel clients decode, in the shapes the reply types of Vercel's generated
//! SDK allow (derived by `ops_conformance::replies` from `vercel-rest.json`): only the required
//! fields, every nullable field `null`, empty objects, unknown fields, every enum value
//! including one added later, and every alternative of a reply that may take several shapes.
//! A typed error about the content is allowed; a decode failure or a panic is not.

use std::sync::Arc;
use std::time::Duration;

use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::{Description, vendored};
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_vercel::{VercelClient, VercelConfig, VercelDeployer, VercelEnv};
use serde_json::{Value, json};

fn client(base: &str) -> VercelClient {
    let mut cfg = VercelConfig::new("vc_test_token")
        .team("team_a1b2c3d4e5f6")
        .base_url(base)
        .unwrap();
    cfg.http.request_timeout = Duration::from_millis(300);
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    VercelClient::new(cfg).unwrap().with_clock(clock)
}

fn deployer(base: &str) -> VercelDeployer {
    VercelDeployer::new(client(base), "site", None).unwrap()
}

fn env(base: &str) -> VercelEnv {
    VercelEnv::new(client(base), "site", &["production"]).unwrap()
}

fn d() -> Description {
    vendored("vercel-rest.json")
}

fn project() -> Value {
    json!({"id": "prj_1", "name": "site", "accountId": "team_a1b2c3d4e5f6",
           "targets": {"production": {"id": "dpl_1", "url": "site-1.vercel.app",
                                      "readyState": "READY", "createdAt": 1763888400000i64}}})
}

fn listed_env() -> Value {
    json!({"envs": [{"id": "env_1", "key": "DATABASE_URL", "type": "encrypted",
                     "target": ["production"], "createdAt": 1763888400000i64}],
           "pagination": {"count": 1, "next": null, "prev": null}})
}

#[tokio::test]
async fn projects_in_every_described_shape() {
    Replay::new("GET", r"^/v9/projects/site$")
        .also("GET", r"^/v7/deployments$", json!({"deployments": []}))
        .each(
            variants(&d(), "GetProjectResponseBody", &[]),
            |base| async move { deployer(&base).current().await.map(|_| ()) },
        )
        .await;
}

#[tokio::test]
async fn deployments_in_every_described_shape() {
    Replay::new("GET", r"^/v13/deployments/dpl_1$")
        .each(
            variants(&d(), "GetDeploymentResponseBody", &[]),
            |base| async move { deployer(&base).deployment("dpl_1").await.map(|_| ()) },
        )
        .await;
    Replay::new("GET", r"^/v7/deployments$")
        .then(json!({"deployments": [], "pagination": {"count": 0, "next": null, "prev": null}}))
        .also("GET", r"^/v9/projects/site$", project())
        .each(
            variants(&d(), "GetDeploymentsResponseBody", &[]),
            |base| async move { deployer(&base).releases().await.map(|_| ()) },
        )
        .await;
}

#[tokio::test]
async fn build_events_in_every_described_shape() {
    Replay::new("GET", r"^/v3/deployments/dpl_1/events$")
        .then(json!([]))
        .each(
            variants(&d(), "GetDeploymentEventsResponse", &[]),
            |base| async move { deployer(&base).build_events("dpl_1", 40).await.map(|_| ()) },
        )
        .await;
}

#[tokio::test]
async fn environment_variables_in_every_described_shape() {
    Replay::new("GET", r"^/v10/projects/site/env$")
        .then(json!({"envs": []}))
        .each(
            variants(&d(), "FilterProjectEnvsResponseBody", &[]),
            |base| async move { env(&base).list_secrets().await.map(|_| ()) },
        )
        .await;
    Replay::new("GET", r"^/v1/projects/site/env/env_1$")
        .also("GET", r"^/v10/projects/site/env$", listed_env())
        .each(
            variants(&d(), "GetProjectEnvResponseBody", &[]),
            |base| async move {
                env(&base)
                    .read("DATABASE_URL", &VersionRef::Latest)
                    .await
                    .map(|_| ())
            },
        )
        .await;
    Replay::new("POST", r"^/v10/projects/site/env$")
        .status(201)
        .also("GET", r"^/v10/projects/site/env$", listed_env())
        .each(
            variants(&d(), "CreateProjectEnvResponseBody", &[]),
            |base| async move {
                env(&base)
                    .add_version("DATABASE_URL", &SecretValue::from("postgres://u:p@h/db"))
                    .await
                    .map(|_| ())
            },
        )
        .await;
}
