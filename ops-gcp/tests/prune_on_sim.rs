//! Revision pruning on the Cloud Run simulator: what stays and why, a dry run that deletes
//! nothing, etag-guarded deletes, and revisions deleted or changed by someone else meanwhile.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::ManualClock;
use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic};
use ops_core::engine::{Mode, RunOutcome, Runner};
use ops_core::runbooks::Procedure;
use ops_core::sim::{Fault, Simulator};
use ops_gcp::CloudRun;
use ops_gcp::run::prune::{PruneConfig, PruneRevisions};
use ops_gcp::sim::{Behaviour, GcpSim};

const DAY: Duration = Duration::from_secs(86_400);

/// A service with nine revisions, one deployed every other day; the newest serves.
async fn history() -> (GcpSim, Arc<ManualClock>, CloudRun, Vec<String>) {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-01T09:00:00Z".parse().unwrap(),
    ));
    let sim = GcpSim::builder().clock(clock.clone()).start().await;
    sim.create_service("api", "registry.example/api:1.0");
    let run = CloudRun::new(sim.client().unwrap(), "api").unwrap();
    for minor in 1..=8 {
        clock.advance(2 * DAY);
        let image = format!("registry.example/api:1.{minor}");
        sim.set_behaviour(&image, Behaviour::failing(0.0));
        run.deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new(&image)
        })
        .await
        .unwrap();
    }
    clock.advance(Duration::from_secs(3600));
    let ids: Vec<String> = run
        .releases()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), 9);
    (sim, clock, run, ids)
}

fn config() -> PruneConfig {
    PruneConfig {
        keep_newest: 3,
        keep_younger_than: 3 * DAY,
    }
}

#[tokio::test]
async fn old_revisions_go_and_what_stays_says_why() {
    let (sim, clock, run, ids) = history().await;
    let runner = Runner::new().with_clock(clock.clone());
    let prune = PruneRevisions::new(run.clone(), config());

    let before = sim.mutations();
    let planned = prune.run(&runner, Mode::DryRun).await.unwrap();
    let (plan, outcome) = planned.summary.unwrap();
    assert!(outcome.is_none(), "a dry run deletes nothing");
    assert_eq!(sim.mutations(), before);
    let doomed: Vec<&str> = plan.delete.iter().map(|d| d.revision.as_str()).collect();
    assert_eq!(
        doomed,
        ids[3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        plan.delete.iter().all(|d| d.etag.is_some()),
        "each delete names its etag"
    );
    let newest = &plan.keep[0];
    assert_eq!(newest.revision, ids[0]);
    assert!(
        newest.reasons.iter().any(|r| r == "serves 100 %"),
        "{newest:?}"
    );
    let previous = &plan.keep[1];
    assert!(
        previous
            .reasons
            .iter()
            .any(|r| r.starts_with("previous healthy")),
        "the rollback target stays: {previous:?}"
    );

    let done = prune.run(&runner, Mode::Execute).await.unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let (_, outcome) = done.summary.unwrap();
    assert_eq!(outcome.unwrap().deleted.len(), 6);
    let left: Vec<String> = run
        .releases()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ids[..3]);
    assert!(run.current().await.unwrap().serving);
}

#[tokio::test]
async fn revisions_deleted_or_changed_by_someone_else_are_gone_or_skipped() {
    let (sim, clock, run, ids) = history().await;
    // Between the plan and the deletes: one is deleted elsewhere, one changes.
    sim.inject(
        Some("DELETE"),
        &format!("/revisions/{}", ids[4]),
        1,
        Fault::Status {
            status: 404,
            retry_after: None,
        },
    );
    sim.inject(
        Some("DELETE"),
        &format!("/revisions/{}", ids[5]),
        1,
        Fault::Status {
            status: 409,
            retry_after: None,
        },
    );
    let done = PruneRevisions::new(run.clone(), config())
        .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        done.report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        done.report.to_markdown()
    );
    let outcome = done.summary.unwrap().1.unwrap();
    assert_eq!(outcome.already_gone, [ids[4].clone()]);
    assert_eq!(outcome.skipped.len(), 1);
    assert_eq!(outcome.skipped[0].0, ids[5]);
    assert_eq!(outcome.deleted.len(), 4);
}

#[tokio::test]
async fn the_simulator_refuses_to_delete_a_serving_revision_or_a_stale_etag() {
    let (sim, _clock, run, ids) = history().await;
    let svc = run.service().await.unwrap();
    let base = format!("{}/v2/{}/revisions", sim.uri(), svc.name);
    let http = reqwest::Client::new();
    let token = "sim-token";
    let serving = http
        .delete(format!("{base}/{}", ids[0]))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(serving.status(), 400);
    let stale = http
        .delete(format!("{base}/{}?etag=%22old%22", ids[8]))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
}
