//! GitHub Actions as a control plane: workflows disabled and enabled (seed 004's "stop
//! writers"), runs listed, failed runs with their failing jobs and log tails, against the
//! simulator and against hostile log downloads.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_github::sim::GithubSim;
use ops_github::{GithubClient, GithubConfig, RunFilter, Workflows};
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

async fn sim() -> (GithubSim, Arc<ManualClock>, Workflows) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = GithubSim::builder()
        .clock(clock.clone())
        .run_time(Duration::from_secs(60))
        .start()
        .await;
    let workflows = Workflows::new(sim.client().unwrap(), "acme/app").unwrap();
    (sim, clock, workflows)
}

#[tokio::test]
async fn disabling_the_writers_stops_their_runs_and_enabling_resumes_them() {
    let (sim, _, workflows) = sim().await;
    let all = workflows.list().await.unwrap();
    let files: Vec<&str> = all.iter().map(|w| w.file()).collect();
    assert_eq!(files, ["agents.yml", "ci.yml", "deploy.yml"]);
    assert!(all.iter().all(|w| w.is_active()));

    workflows.disable("agents.yml").await.unwrap();
    workflows.disable("agents.yml").await.unwrap(); // twice: the same state
    assert_eq!(
        sim.workflow_state("agents.yml").as_deref(),
        Some("disabled_manually")
    );
    assert!(!workflows.get("agents.yml").await.unwrap().is_active());
    assert_eq!(
        sim.trigger_workflow("agents.yml", "schedule", false),
        None,
        "a disabled workflow starts nothing on its schedule"
    );
    // By id as well as by file.
    let id = all[0].id.to_string();
    workflows.enable(&id).await.unwrap();
    assert_eq!(sim.workflow_state("agents.yml").as_deref(), Some("active"));
    assert!(
        sim.trigger_workflow("agents.yml", "schedule", false)
            .is_some()
    );

    let err = workflows.disable("nope.yml").await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    let err = workflows.disable(" ").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_disabled_deploy_workflow_refuses_a_dispatch() {
    let (sim, _, workflows) = sim().await;
    workflows.disable("deploy.yml").await.unwrap();
    let deployer = sim.deployer(Duration::from_secs(5)).unwrap();
    let err = deployer.dispatch("v9.9.9", true).await.unwrap_err();
    assert!(
        err.to_string().contains("disabled workflow"),
        "the refusal says why: {err}"
    );
}

#[tokio::test]
async fn failed_runs_come_with_their_failing_jobs_and_log_tails() {
    let (sim, clock, workflows) = sim().await;
    let since = clock.now();
    let bad = sim
        .trigger_workflow("agents.yml", "schedule", true)
        .unwrap();
    let good = sim.trigger_workflow("ci.yml", "push", false).unwrap();
    // Still running: not a failure yet.
    assert!(
        workflows
            .failures(None, since, 20)
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(Duration::from_secs(61));

    let failed = workflows.failures(None, since, 20).await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let run = &failed[0];
    assert_eq!(run.run.id, bad);
    assert_eq!(run.jobs.len(), 1, "only the failing job: {:?}", run.jobs);
    let job = &run.jobs[0];
    assert_eq!(job.job.name, "test");
    assert_eq!(job.failed_steps, ["Run tests"]);
    assert_eq!(job.log_error, None, "the log was read without the token");
    assert_eq!(job.log_tail.len(), 20);
    let last = job.log_tail.last().unwrap();
    assert!(
        last.ends_with("##[error]Process completed with exit code 1."),
        "{last}"
    );
    assert!(job.log_tail.iter().any(|l| l.contains("SQLITE_CORRUPT")));

    // Listing: per workflow, by conclusion, limited.
    let ci = workflows
        .runs(
            Some("ci.yml"),
            &RunFilter {
                since: Some(since),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ci.iter().map(|r| r.id).collect::<Vec<_>>(), [good]);
    let failures = workflows
        .runs(
            None,
            &RunFilter {
                status: Some("failure".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(failures.iter().any(|r| r.id == bad));
    assert!(
        failures
            .iter()
            .all(|r| r.conclusion.as_deref() == Some("failure"))
    );
    let one = workflows
        .runs(
            None,
            &RunFilter {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

fn client(base: &str) -> GithubClient {
    let cfg = GithubConfig::token("ghp_16C7e42F292c6912E7710c838347Ae178B4a")
        .base_url(base)
        .unwrap();
    GithubClient::new(cfg).unwrap()
}

/// The API answering a job-log request with a redirect to `storage`.
async fn api_redirecting_to(storage: &str) -> MockServer {
    let api = MockServer::start().await;
    let jobs = serde_json::json!({"total_count": 1, "jobs": [{"id": 7, "run_id": 5, "name": "test",
        "status": "completed", "conclusion": "failure", "steps": null}]});
    let runs = serde_json::json!({"total_count": 1, "workflow_runs": [{"id": 5, "status": "completed",
        "conclusion": "failure", "event": "schedule", "head_sha": "a", "html_url": "", "run_attempt": 1,
        "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:01:00Z"}]});
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(runs))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/runs/5/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jobs))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/actions/jobs/7/logs"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{storage}/logs/7?sig=abc").as_str()),
        )
        .mount(&api)
        .await;
    api
}

#[tokio::test]
async fn the_log_storage_never_sees_the_token_and_a_long_log_yields_its_tail() {
    let storage = MockServer::start().await;
    Mock::given(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&storage)
        .await;
    // 4 MiB of log: only its end is kept.
    let mut log = String::new();
    let mut i = 0u64;
    while log.len() < 4 << 20 {
        log.push_str(&format!("2026-11-23T09:00:00.0000000Z line {i}\n"));
        i += 1;
    }
    let last = i - 1;
    Mock::given(method("GET"))
        .and(path("/logs/7"))
        .respond_with(ResponseTemplate::new(200).set_body_string(log))
        .mount(&storage)
        .await;
    let api = api_redirecting_to(&storage.uri()).await;
    let workflows = Workflows::new(client(&api.uri()), "o/r").unwrap();
    let tail = workflows.job_log_tail(7, 3).await.unwrap();
    assert_eq!(
        tail,
        (last - 2..=last)
            .map(|n| format!("2026-11-23T09:00:00.0000000Z line {n}"))
            .collect::<Vec<_>>()
    );
    let seen: Vec<Request> = storage.received_requests().await.unwrap();
    assert!(
        seen.iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
}

#[tokio::test]
async fn an_expired_log_is_a_note_on_its_job_not_a_failure() {
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("BlobNotFound"))
        .mount(&storage)
        .await;
    let api = api_redirecting_to(&storage.uri()).await;
    let workflows = Workflows::new(client(&api.uri()), "o/r").unwrap();
    let since = t0() - chrono::Duration::hours(1);
    let failed = workflows.failures(None, since, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    let job = &failed[0].jobs[0];
    assert!(job.log_tail.is_empty());
    assert!(job.log_error.is_some(), "{job:?}");
    assert!(job.failed_steps.is_empty(), "steps: null reads as none");

    // A log endpoint that answers without a redirect is an error naming it.
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&api)
        .await;
    let workflows = Workflows::new(client(&api.uri()), "o/r").unwrap();
    let err = workflows.job_log_tail(7, 3).await.unwrap_err();
    assert!(err.to_string().contains("expected a redirect"), "{err}");
}

mod runbooks {
    use super::*;
    use ops_core::clock::SharedClock;
    use ops_core::contracts::Severity;
    use ops_core::engine::{Mode, RunOutcome, Runner};
    use ops_core::memory::MemoryNotifier;
    use ops_core::runbooks::Procedure;
    use ops_github::{FailureAlertsConfig, SwitchWorkflows, WorkflowFailureAlerts};

    fn runner(clock: &Arc<ManualClock>) -> Runner {
        Runner::new().with_clock(clock.clone() as SharedClock)
    }

    #[tokio::test]
    async fn stop_writers_plans_in_a_dry_run_then_disables_and_resume_enables() {
        let (sim, clock, workflows) = sim().await;
        let stop = SwitchWorkflows::stop(workflows.clone(), ["agents.yml"]);
        let plan = stop.run(&runner(&clock), Mode::DryRun).await.unwrap();
        assert!(plan.report.to_markdown().contains("disable-agents.yml"));
        assert_eq!(sim.workflow_state("agents.yml").as_deref(), Some("active"));

        let done = stop.run(&runner(&clock), Mode::Execute).await.unwrap();
        assert_eq!(done.report.outcome, Some(RunOutcome::Succeeded));
        let switched = done.summary.unwrap();
        assert_eq!(switched[0].before, "active");
        assert_eq!(switched[0].after, "disabled_manually");
        assert_eq!(sim.trigger_workflow("agents.yml", "schedule", false), None);

        let resumed = SwitchWorkflows::resume(workflows, ["agents.yml"])
            .run(&runner(&clock), Mode::Execute)
            .await
            .unwrap();
        assert_eq!(resumed.summary.unwrap()[0].after, "active");
        assert!(
            sim.trigger_workflow("agents.yml", "schedule", false)
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_stop_that_fails_halfway_enables_only_what_was_active() {
        let (sim, clock, workflows) = sim().await;
        workflows.disable("ci.yml").await.unwrap();
        let stop = SwitchWorkflows::stop(workflows, ["agents.yml", "ci.yml", "missing.yml"]);
        let done = stop.run(&runner(&clock), Mode::Execute).await.unwrap();
        assert!(
            done.report
                .outcome
                .is_some_and(|o| o != RunOutcome::Succeeded),
            "{}",
            done.report.to_markdown()
        );
        let md = done.report.to_markdown();
        assert!(md.contains("missing.yml"), "{md}");
        assert_eq!(
            sim.workflow_state("agents.yml").as_deref(),
            Some("active"),
            "undone"
        );
        assert_eq!(
            sim.workflow_state("ci.yml").as_deref(),
            Some("disabled_manually"),
            "it was disabled before the run, and stays so"
        );
    }

    #[tokio::test]
    async fn a_failed_run_is_one_alert_with_its_failing_job_and_log_tail() {
        let (sim, clock, workflows) = sim().await;
        let bad = sim
            .trigger_workflow("agents.yml", "schedule", true)
            .unwrap();
        sim.trigger_workflow("ci.yml", "push", false).unwrap();
        clock.advance(Duration::from_secs(120));
        let notifier = Arc::new(MemoryNotifier::new("slack"));
        let alerts = WorkflowFailureAlerts::new(
            workflows.clone(),
            FailureAlertsConfig {
                tail_lines: 5,
                severity: Severity::Critical,
                ..Default::default()
            },
            notifier.clone(),
        );
        let plan = alerts.run(&runner(&clock), Mode::DryRun).await.unwrap();
        assert_eq!(
            plan.summary.map(|f| f.len()),
            Some(1),
            "a dry run still looks"
        );
        assert!(notifier.sent().is_empty(), "and tells no one");

        let done = alerts.run(&runner(&clock), Mode::Execute).await.unwrap();
        assert_eq!(done.report.outcome, Some(RunOutcome::Succeeded));
        let sent = notifier.sent();
        assert_eq!(sent.len(), 1);
        let n = &sent[0];
        assert_eq!(n.severity, Severity::Critical);
        assert_eq!(
            n.title,
            format!("acme/app: Agents failure (run {bad}, schedule)")
        );
        assert!(
            n.body_markdown
                .starts_with("**test** failed at Run tests\n```\n"),
            "{}",
            n.body_markdown
        );
        assert!(n.body_markdown.contains("SQLITE_CORRUPT"));
        assert_eq!(
            n.dedup_key.as_deref(),
            Some(format!("github-run/acme/app/{bad}/1").as_str())
        );

        // Watching only ci.yml: nothing to tell.
        let quiet = Arc::new(MemoryNotifier::new("slack"));
        WorkflowFailureAlerts::new(
            workflows,
            FailureAlertsConfig {
                workflows: vec!["ci.yml".into()],
                ..Default::default()
            },
            quiet.clone(),
        )
        .run(&runner(&clock), Mode::Execute)
        .await
        .unwrap();
        assert!(quiet.sent().is_empty());
    }

    #[tokio::test]
    async fn bad_settings_are_refused_before_anything_runs() {
        let (_sim, _clock, workflows) = sim().await;
        let too_many = WorkflowFailureAlerts::new(
            workflows.clone(),
            FailureAlertsConfig {
                tail_lines: 501,
                ..Default::default()
            },
            Arc::new(MemoryNotifier::new("n")),
        );
        let err = too_many.runbook().unwrap_err();
        assert!(err.to_string().contains("tail_lines"), "{err}");
        let none = SwitchWorkflows::stop(workflows, Vec::<String>::new());
        assert!(none.runbook().is_err());
    }
}
