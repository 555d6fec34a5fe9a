//! The ops-core testkit suites and end-to-end behaviour against the GitHub simulator.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_core::contracts::*;
use ops_core::sim::Simulator;
use ops_core::testkit;
use ops_github::activity::NewRelease;
use ops_github::sim::{Fault, GithubSim, SIM_APP_ID, SIM_INSTALLATION, SIM_REPO};
use ops_github::{GithubApp, GithubClient, GithubConfig, GithubIssues, RepoActivity, RepoAudit};

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

async fn sim() -> (GithubSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = GithubSim::builder()
        .clock(clock.clone())
        .run_time(Duration::from_secs(60))
        .start()
        .await;
    (sim, clock)
}

#[tokio::test]
async fn the_workflow_deployer_passes_the_suite() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    testkit::deployer(
        &d,
        &testkit::DeployerFixture {
            version_a: "v2.0.0".into(),
            version_b: "v2.1.0".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_failed_run_is_an_error_and_a_rerun_of_failed_jobs_recovers() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    sim.fail_version("v3.0.0");
    let err = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("v3.0.0")
        })
        .await
        .unwrap_err();
    let ErrorKind::VerificationFailed { check, detail } = err.kind() else {
        panic!("{err}")
    };
    assert_eq!(check, "workflow_run");
    assert!(detail.contains("concluded failure"), "{detail}");
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some("v1.0.0"),
        "a failed deploy leaves the serving release alone"
    );
    let run_id: u64 = detail
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.parse().ok())
        .expect("the error names the run");
    sim.heal_version("v3.0.0");
    let rerun = d
        .rerun_failed_jobs(run_id, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(rerun.run_attempt, 2);
    assert!(rerun.succeeded());
    assert_eq!(d.current().await.unwrap().primary_release(), Some("v3.0.0"));
    let again = d.rerun_failed_jobs(run_id, Duration::from_secs(600)).await;
    assert!(
        matches!(
            again.as_ref().map_err(|e| e.kind()),
            Err(ErrorKind::Forbidden { .. })
        ),
        "a successful run is not eligible for a re-run: {again:?}"
    );
}

#[tokio::test]
async fn rollback_redeploys_the_previous_version() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    d.deploy(&DeployRequest {
        traffic: InitialTraffic::All,
        ..DeployRequest::new("v1.1.0")
    })
    .await
    .unwrap();
    assert_eq!(d.current().await.unwrap().primary_release(), Some("v1.1.0"));
    let back = d.rollback(Duration::from_secs(600)).await.unwrap();
    assert_eq!(back.version, "v1.0.0");
    let state = d.current().await.unwrap();
    assert_eq!(state.primary_release(), Some("v1.0.0"));
    assert_eq!(state.url.as_deref(), Some("https://app.acme.dev"));
    let dispatches: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.ends_with("/dispatches"))
        .collect();
    assert_eq!(
        dispatches.len(),
        2,
        "one deploy, one rollback: {dispatches:?}"
    );
}

#[tokio::test]
async fn without_run_details_the_dispatched_run_is_found_by_listing() {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = GithubSim::builder()
        .clock(clock.clone())
        .run_time(Duration::from_secs(60))
        .without_run_details()
        .start()
        .await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    let r = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new("v1.2.0")
        })
        .await
        .unwrap();
    assert_eq!(r.version, "v1.2.0");
    assert!(
        sim.requests().iter().any(|r| r.contains(
            "/actions/workflows/deploy.yml/runs?event=workflow_dispatch&branch=main&created=%3E%3D"
        )),
        "{:?}",
        sim.requests()
    );
}

#[tokio::test]
async fn a_deploy_without_traffic_needs_a_promote_input() {
    let (sim, _) = sim().await;
    let d = ops_github::WorkflowDeployer::new(
        sim.client().unwrap(),
        SIM_REPO,
        "deploy.yml",
        "production",
    )
    .unwrap();
    let err = d.deploy(&DeployRequest::new("v9")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
    let err = d
        .validate(&DeployAction::Deploy(DeployRequest::new("v9")))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unsupported { .. }), "{err}");
    assert_eq!(sim.mutations(), 0, "nothing was dispatched");
}

async fn secret_suite(sim: &GithubSim, store: &ops_github::ActionsSecrets, scope: &str) {
    store
        .add_version("DEPLOY_TOKEN", &SecretValue::from("tok-0123456789"))
        .await
        .unwrap();
    testkit::secret_store(
        store,
        &testkit::SecretFixture {
            existing: vec![("DEPLOY_TOKEN".into(), "tok-0123456789".into())],
            scratch: "SCRATCH_SECRET".into(),
            missing: "NO_SUCH_SECRET".into(),
        },
    )
    .await;
    // Only ciphertext is stored; the scope's private key opens it.
    let sealed = sim.sealed_secret(scope, "DEPLOY_TOKEN").expect("stored");
    assert_eq!(sealed.len(), "tok-0123456789".len() + 48);
    assert!(!String::from_utf8_lossy(&sealed).contains("tok-0123456789"));
    let key = sim.scope_private_key(scope).expect("a scope key");
    assert_eq!(key.unseal(&sealed).unwrap(), b"tok-0123456789");
    let scratch = sim.sealed_secret(scope, "SCRATCH_SECRET").unwrap();
    assert_eq!(
        key.unseal(&scratch).unwrap(),
        b"second-value",
        "the last write wins"
    );
}

#[tokio::test]
async fn actions_secrets_pass_the_suite_in_every_scope() {
    let (sim, clock) = sim().await;
    secret_suite(
        &sim,
        &sim.repo_secrets().unwrap(),
        "repos/acme/app/actions/secrets",
    )
    .await;
    secret_suite(
        &sim,
        &sim.environment_secrets().unwrap(),
        "repos/acme/app/environments/production/secrets",
    )
    .await;
    let org = sim.org_secrets().unwrap();
    secret_suite(&sim, &org, "orgs/acme/actions/secrets").await;
    let listed = org.list_secrets().await.unwrap();
    let s = listed.iter().find(|s| s.name == "DEPLOY_TOKEN").unwrap();
    assert_eq!(
        s.labels.get("visibility").map(String::as_str),
        Some("private")
    );
    let created = s.created_at.expect("created_at is listed");
    assert!(
        created >= t0() && created <= clock.now(),
        "stamped by the simulator's clock"
    );
    assert!(
        s.updated_at >= s.created_at,
        "updated_at is listed for the age audit"
    );
}

#[tokio::test]
async fn secrets_are_deleted_and_bad_names_refused_before_sending() {
    let (sim, _) = sim().await;
    let store = sim.repo_secrets().unwrap();
    store.add_version("OLD_KEY", &"v".into()).await.unwrap();
    store.delete("OLD_KEY").await.unwrap();
    let err = store.delete("OLD_KEY").await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    let before = sim.requests().len();
    for bad in ["GITHUB_TOKEN", "1ABC", "has-dash"] {
        let err = store.add_version(bad, &"v".into()).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{bad}: {err}"
        );
    }
    let big = SecretValue::from_bytes(vec![b'x'; 48 * 1024 + 1]);
    assert!(store.add_version("BIG", &big).await.is_err());
    assert_eq!(sim.requests().len(), before, "nothing was sent");
}

#[tokio::test]
async fn issues_pass_the_notifier_suite_and_survive_a_restart() {
    let (sim, _) = sim().await;
    sim.add_noise_issues("incident", 130);
    let issues = GithubIssues::new(sim.client().unwrap(), SIM_REPO).unwrap();
    testkit::notifier(&issues, "testkit/incident-1").await;

    let trigger = Notification::new(Severity::Critical, "api returns 503")
        .body("Since 09:02 UTC.")
        .field("service", "api")
        .link("logs", "https://console.example/logs")
        .dedup_key("inc-2026-11-23-api");
    let opened = issues.send(&trigger).await.unwrap();
    let number: u64 = opened.id.as_deref().unwrap().parse().unwrap();

    // A new notifier (a restarted process) finds the issue through its marker, past the
    // first page of open incident issues and skipping pull requests.
    let restarted = GithubIssues::new(sim.client().unwrap(), SIM_REPO).unwrap();
    let update = Notification::new(Severity::Critical, "rolled back to v1.0.0")
        .dedup_key("inc-2026-11-23-api")
        .event(NotificationEvent::Update);
    assert_eq!(restarted.send(&update).await.unwrap().id, opened.id);
    let again = restarted.send(&trigger).await.unwrap();
    assert_eq!(
        again.id, opened.id,
        "a repeated trigger comments instead of opening another issue"
    );
    let resolve = Notification::new(Severity::Info, "error rate back to normal")
        .dedup_key("inc-2026-11-23-api")
        .event(NotificationEvent::Resolve);
    restarted.send(&resolve).await.unwrap();

    let issue = sim.issue(number).unwrap();
    assert_eq!(issue.title, "api returns 503");
    assert_eq!(issue.labels, vec!["incident", "severity:critical"]);
    assert!(issue.body.contains("| service | api |"), "{}", issue.body);
    assert!(
        issue
            .body
            .contains("<!-- ops:dedup-key \"inc-2026-11-23-api\" -->")
    );
    assert_eq!(issue.state, "closed");
    assert_eq!(issue.state_reason.as_deref(), Some("completed"));
    assert_eq!(issue.comments.len(), 3);
    assert!(issue.comments[0].starts_with("**Update** (critical): rolled back to v1.0.0"));
    assert!(issue.comments[1].starts_with("**Triggered again**"));
    assert!(issue.comments[2].starts_with("**Resolved** (info): error rate back to normal"));

    // After resolution an update has nothing to attach to; a second resolution is harmless.
    let err = restarted.send(&update).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    let r = restarted.send(&resolve).await.unwrap();
    assert_eq!(r.id, None);
}

#[tokio::test]
async fn activity_lists_the_window_and_creates_releases() {
    let (sim, _) = sim().await;
    let a = RepoActivity::new(sim.client().unwrap(), SIM_REPO).unwrap();
    let week_ago = t0() - chrono::Duration::days(7);
    let commits = a.commits_since(week_ago, None, 100).await.unwrap();
    assert_eq!(commits.items.len(), 4);
    assert!(!commits.truncated);
    assert_eq!(commits.items[0].title, "Fix retry of payment webhooks");
    assert_eq!(
        commits.items[1].author, "dependabot[bot]",
        "git name when no account"
    );
    let capped = a.commits_since(week_ago, None, 2).await.unwrap();
    assert_eq!((capped.items.len(), capped.truncated), (2, true));

    let merged = a.merged_pulls(week_ago, t0(), 100).await.unwrap();
    let numbers: Vec<u64> = merged.items.iter().map(|p| p.number).collect();
    assert_eq!(
        numbers,
        vec![41, 40, 38],
        "closed-unmerged and older merges are left out"
    );

    let runs = a
        .workflow_runs(t0() - chrono::Duration::days(2), 100)
        .await
        .unwrap();
    let conclusions: Vec<Option<&str>> =
        runs.items.iter().map(|r| r.conclusion.as_deref()).collect();
    assert_eq!(conclusions, vec![Some("success"), Some("failure")]);

    let rel = a.create_release(&NewRelease::tag("v1.1.0")).await.unwrap();
    assert_eq!(rel.tag_name, "v1.1.0");
    assert!(
        rel.body
            .as_deref()
            .unwrap()
            .contains("Fix retry of payment webhooks by @mona")
    );
    let err = a
        .create_release(&NewRelease::tag("v1.1.0"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::AlreadyExists { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_audit_reports_hooks_collaborators_and_keys_worst_first() {
    let (sim, _) = sim().await;
    let audit = RepoAudit::new(sim.client().unwrap(), SIM_REPO).unwrap();
    let findings = audit.audit().await.unwrap();
    let has = |resource: &str, issue: &str| {
        findings
            .iter()
            .any(|f| f.resource.ends_with(resource) && f.issue.contains(issue))
    };
    assert!(has("webhook 2", "TLS certificate verification is off"));
    assert!(has("webhook 2", "plain HTTP"));
    assert!(has("webhook 2", "no secret"));
    assert!(
        !findings.iter().any(|f| f.resource.ends_with("webhook 1")),
        "{findings:#?}"
    );
    assert!(has("outside collaborator contractor-admin", "admin access"));
    assert!(!findings.iter().any(|f| f.resource.contains("auditor")));
    assert!(has("deploy key 2 (old-ci)", "write access"));
    assert!(has("deploy key 2 (old-ci)", "older than 365 days"));
    assert!(!findings.iter().any(|f| f.resource.contains("deploy key 1")));
    assert!(
        findings.windows(2).all(|w| w[0].severity >= w[1].severity),
        "worst first"
    );
}

/// The repository audit passes the SecurityAuditor suite: worst first, complete findings, the
/// simulator's known problems found, no token shown, and read-only.
#[tokio::test]
async fn the_audit_passes_the_security_auditor_suite() {
    let (sim, _) = sim().await;
    let audit = RepoAudit::new(sim.client().unwrap(), SIM_REPO).unwrap();
    let before = sim.mutations();
    let fixture = ops_core::testkit::AuditFixture::new()
        .expect(Severity::Error, "contractor-admin")
        .expect(Severity::Error, "webhook 2")
        .expect(Severity::Warning, "old-ci")
        .expect(Severity::Warning, "webhook 2")
        .secret(ops_github::sim::SIM_TOKEN);
    ops_core::testkit::security_auditor(&audit, &fixture).await;
    assert_eq!(sim.mutations(), before, "an audit changes nothing");
}

#[tokio::test]
async fn an_exhausted_rate_limit_is_waited_out_before_sending() {
    let (sim, clock) = sim().await;
    let client = sim.client().unwrap();
    let issues = GithubIssues::new(client.clone(), SIM_REPO).unwrap();
    sim.set_rate_limit(1, Duration::from_secs(30));
    issues.find("k").await.unwrap();
    assert_eq!(client.rate_limit().last().map(|l| l.0), Some(0));
    let sent = sim.requests().len();
    issues.find("k").await.unwrap();
    assert!(
        clock.sleeps().iter().any(|s| *s >= Duration::from_secs(29)),
        "waited for the reset: {:?}",
        clock.sleeps()
    );
    assert_eq!(
        sim.requests().len(),
        sent + 1,
        "no request was spent on a certain 403"
    );
}

#[tokio::test]
async fn polling_revalidates_with_etags() {
    let (sim, _) = sim().await;
    let d = sim.deployer(Duration::from_secs(5)).unwrap();
    d.current().await.unwrap();
    let before = sim.not_modified();
    d.current().await.unwrap();
    assert!(
        sim.not_modified() >= before + 3,
        "the list and statuses came back 304"
    );
}

#[tokio::test]
async fn throttling_is_retried_and_a_failed_post_is_not_repeated() {
    let (sim, clock) = sim().await;
    let issues = GithubIssues::new(sim.client().unwrap(), SIM_REPO).unwrap();
    sim.inject(
        Some("GET"),
        "/issues",
        1,
        Fault::Status {
            status: 403,
            retry_after: Some(7),
        },
    );
    issues.find("x").await.unwrap();
    assert!(
        clock.sleeps().contains(&Duration::from_secs(7)),
        "{:?}",
        clock.sleeps()
    );

    sim.inject(
        Some("POST"),
        "/issues",
        1,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let n = Notification::new(Severity::Error, "db slow").dedup_key("inc-db");
    let err = issues.send(&n).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 500, .. }),
        "{err}"
    );
    let posts = sim
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(posts, 1, "the issue creation was sent once");
    assert_eq!(sim.mutations(), 0);

    sim.inject(Some("GET"), "/actions/runs", 1, Fault::TruncatedJson);
    let a = RepoActivity::new(sim.client().unwrap(), SIM_REPO).unwrap();
    let since = t0() - chrono::Duration::days(7);
    let err = a.workflow_runs(since, 10).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Decode { .. }),
        "malformed JSON is a typed error: {err}"
    );
    assert!(!a.workflow_runs(since, 10).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn a_github_app_mints_one_installation_token_and_reuses_it() {
    let (sim, clock) = sim().await;
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .unwrap();
    let app = GithubApp::from_pem(SIM_APP_ID, SIM_INSTALLATION, &pem).unwrap();
    assert!(!format!("{app:?}").contains("PRIVATE"));
    let client = GithubClient::new(GithubConfig::app(app).base_url(&sim.uri()).unwrap())
        .unwrap()
        .with_clock(clock.clone());
    let issues = GithubIssues::new(client, SIM_REPO).unwrap();
    issues.find("a").await.unwrap();
    issues.find("b").await.unwrap();
    let mints = |sim: &GithubSim| {
        sim.requests()
            .iter()
            .filter(|r| r.ends_with("/access_tokens"))
            .count()
    };
    assert_eq!(mints(&sim), 1, "the token is cached");
    clock.advance(Duration::from_secs(58 * 60));
    issues.find("c").await.unwrap();
    assert_eq!(mints(&sim), 2, "refreshed before its hour is up");
}

#[test]
fn app_keys_are_checked_without_echoing_them() {
    let err = GithubApp::from_pem(
        "1",
        1,
        "-----BEGIN RSA PRIVATE KEY-----\nnot-a-key\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { .. }));
    assert!(!err.to_string().contains("not-a-key"));
}
