//! Report rendering against golden files. Regenerate with `UPDATE_GOLDEN=1 cargo test -p
//! ops-core --all-features --test engine_report` and review the diff.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::engine::*;
use ops_core::retry::RetryPolicy;
use ops_core::{Error, ErrorKind};
use serde_json::json;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 regenerates it)"
    );
}

fn rollout() -> Runbook {
    let wait = |secs| async move {
        SystemClock.sleep(Duration::from_secs(secs)).await;
    };
    Runbook::new("canary-rollout", "api")
        .step(Step::read("check-health", move |ctx| {
            ctx.evidence("health", json!({"status": "healthy", "error_rate": 0.002}));
            Ok(Action::new(
                "HealthProbe::check",
                json!({"probe": "api"}),
                async move {
                    wait(2).await;
                    Ok("healthy")
                },
            ))
        }))
        .step(
            Step::mutate("deploy", move |_| {
                Ok(Action::new(
                    "Deployer::deploy",
                    json!({"version": "api:1.4.2", "traffic": "none"}),
                    async move {
                        wait(45).await;
                        Ok("api-00042")
                    },
                ))
            })
            .compensate(|_| {
                Ok(Action::new(
                    "Deployer::set_traffic",
                    json!({"api-00041": 100}),
                    async { Ok(()) },
                ))
            }),
        )
        .gate("promote", "Send 5% of traffic to api-00042?")
        .step(
            Step::mutate("shift-traffic", move |_| {
                Ok(Action::new(
                    "Deployer::set_traffic",
                    json!({"api-00042": 5, "api-00041": 95}),
                    async move {
                        wait(3).await;
                        Err::<(), _>(Error::new(
                            "gcp-run",
                            "set_traffic",
                            ErrorKind::Conflict {
                                detail: "etag mismatch".into(),
                            },
                        ))
                    },
                ))
            })
            .idempotent()
            .retry(RetryPolicy {
                max_attempts: 2,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(1),
                ..RetryPolicy::default()
            }),
        )
        .step(Step::read("verify", |_| {
            Ok(Action::new("HealthProbe::check", json!({}), async {
                Ok(())
            }))
        }))
}

async fn run(mode: Mode, id: &str) -> RunReport {
    let clock: Arc<dyn Clock> = Arc::new(SimulatedClock::starting_at(
        "2026-04-02T14:00:00Z".parse().unwrap(),
    ));
    Runner::new()
        .with_clock(clock)
        .with_approver(Arc::new(AutoApprove {
            by: "alice@example.com".into(),
        }))
        .run_with(&rollout(), mode, &RunControl::new(), Some(id.into()))
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failed_rollout_renders_as_golden() {
    let report = run(Mode::Execute, "canary-rollout-1").await;
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    golden("failed_rollout.md", &report.to_markdown());
    golden("failed_rollout.json", &report.to_json());
    golden("failed_rollout.txt", &report.summary());
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_renders_its_plan_as_golden() {
    let report = run(Mode::DryRun, "canary-rollout-plan").await;
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    golden("dry_run.md", &report.to_markdown());
    golden("dry_run.txt", &report.summary());
}

#[tokio::test(start_paused = true)]
async fn the_json_report_round_trips() {
    let report = run(Mode::Execute, "canary-rollout-1").await;
    let back: RunReport = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(back, report);
}
