//! DependencyAlerts against the simulator (the SecurityAuditor suite: worst first, the arranged
//! alerts found, no token shown, read-only) and against switched-off features and failures.

use std::sync::Arc;
use std::time::Duration;

use ops_core::clock::ManualClock;
use ops_core::contracts::{SecurityAuditor, Severity};
use ops_core::sim::Simulator;
use ops_github::sim::{GithubSim, SIM_REPO, SIM_TOKEN};
use ops_github::{DependencyAlerts, GithubClient, GithubConfig};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn sim() -> GithubSim {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    GithubSim::builder()
        .clock(clock)
        .run_time(Duration::from_secs(60))
        .start()
        .await
}

#[tokio::test]
async fn open_alerts_pass_the_security_auditor_suite() {
    let sim = sim().await;
    let audit = DependencyAlerts::new(sim.client().unwrap(), SIM_REPO).unwrap();
    let before = sim.mutations();
    let fixture = ops_core::testkit::AuditFixture::new()
        .expect(Severity::Critical, "lodash")
        .expect(Severity::Error, "js/sql-injection")
        .expect(Severity::Warning, "tar")
        .expect(Severity::Info, "js/unused-local-variable")
        .secret(SIM_TOKEN);
    ops_core::testkit::security_auditor(&audit, &fixture).await;
    assert_eq!(sim.mutations(), before, "an audit changes nothing");
}

#[tokio::test]
async fn each_finding_says_its_age_and_whether_a_fix_exists() {
    let sim = sim().await;
    let findings = DependencyAlerts::new(sim.client().unwrap(), SIM_REPO)
        .unwrap()
        .audit()
        .await
        .unwrap();
    assert_eq!(
        findings.len(),
        4,
        "dismissed and fixed alerts are not findings: {findings:#?}"
    );
    let lodash = &findings[0];
    assert_eq!(lodash.severity, Severity::Critical);
    assert_eq!(
        lodash.resource,
        "repo:acme/app dependabot alert 1 lodash (npm)"
    );
    assert!(
        lodash.issue.starts_with("CVE-2026-10001 critical severity: Prototype pollution in lodash (lodash (npm) < 4.17.21, runtime); open 40 days, fix available"),
        "{}",
        lodash.issue
    );
    assert_eq!(
        lodash.advice,
        "upgrade lodash (npm) to 4.17.21 or later in package-lock.json"
    );
    let tar = findings
        .iter()
        .find(|f| f.resource.contains("tar"))
        .unwrap();
    assert!(
        tar.issue.ends_with("open 3 days, no fix yet"),
        "{}",
        tar.issue
    );
    let sql = findings
        .iter()
        .find(|f| f.resource.contains("sql-injection"))
        .unwrap();
    assert!(sql.issue.contains("at src/db.ts:42"), "{}", sql.issue);
}

#[tokio::test]
async fn dependabot_switched_off_is_a_finding_and_the_rest_is_still_read() {
    let sim = sim().await;
    sim.disable_dependabot_alerts();
    let findings = DependencyAlerts::new(sim.client().unwrap(), SIM_REPO)
        .unwrap()
        .audit()
        .await
        .unwrap();
    let off = findings
        .iter()
        .find(|f| f.resource.ends_with("dependabot alerts"))
        .expect("a finding about Dependabot being off");
    assert_eq!(off.severity, Severity::Warning);
    assert!(
        off.advice.contains("enable Dependabot alerts"),
        "{}",
        off.advice
    );
    assert!(
        findings
            .iter()
            .any(|f| f.resource.contains("js/sql-injection"))
    );
}

fn client(base: &str) -> GithubClient {
    let mut cfg = GithubConfig::token("ghp_16C7e42F292c6912E7710c838347Ae178B4a")
        .base_url(base)
        .unwrap();
    cfg.http.retry.max_attempts = 1;
    GithubClient::new(cfg).unwrap()
}

#[tokio::test]
async fn no_code_scanning_analysis_is_a_finding_but_a_server_error_fails_the_audit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/dependabot/alerts"))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/o/r/code-scanning/alerts"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "message": "no analysis found", "documentation_url": "https://docs.github.com/rest"})))
        .mount(&server)
        .await;
    let findings = DependencyAlerts::new(client(&server.uri()), "o/r")
        .unwrap()
        .audit()
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].resource.ends_with("code scanning"));
    let only_dependabot = DependencyAlerts::new(client(&server.uri()), "o/r")
        .unwrap()
        .without_code_scanning()
        .audit()
        .await
        .unwrap();
    assert!(only_dependabot.is_empty());

    let broken = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .mount(&broken)
        .await;
    let err = DependencyAlerts::new(client(&broken.uri()), "o/r")
        .unwrap()
        .audit()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
}
