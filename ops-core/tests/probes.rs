//! HttpProbe and TcpProbe against real sockets, and check_all's concurrency bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::adapters::{HttpProbe, TcpProbe};
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus, check_all};
use ops_core::testkit;
use ops_core::{ErrorKind, Result};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn health_server(status: u16, body: serde_json::Value, delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .and(header(
            "user-agent",
            concat!("ops-probe/", env!("CARGO_PKG_VERSION")),
        ))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_json(body)
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

fn seed_probe(server: &MockServer) -> HttpProbe {
    HttpProbe::new(&format!("{}/health", server.uri()))
        .unwrap()
        .expect_field("status", "healthy")
        .expect_field("database", "connected")
}

#[tokio::test]
async fn the_seeds_health_payload_is_healthy() {
    let server = health_server(
        200,
        serde_json::json!({"status": "healthy", "database": "connected"}),
        Duration::ZERO,
    )
    .await;
    let report = testkit::health_probe(&seed_probe(&server), HealthStatus::Healthy).await;
    assert_eq!(report.checks.len(), 3, "the GET and one check per field");
}

#[tokio::test]
async fn a_wrong_field_is_unhealthy_and_says_what_it_saw() {
    let server = health_server(
        200,
        serde_json::json!({"status": "healthy", "database": "disconnected"}),
        Duration::ZERO,
    )
    .await;
    let report = testkit::health_probe(&seed_probe(&server), HealthStatus::Unhealthy).await;
    let db = report
        .checks
        .iter()
        .find(|c| c.name == "field database")
        .unwrap();
    assert_eq!(db.detail, r#"is "disconnected", expected "connected""#);
}

#[tokio::test]
async fn nested_fields_missing_fields_and_non_json_bodies() {
    let server = health_server(
        200,
        serde_json::json!({"checks": {"db": {"ok": true}}}),
        Duration::ZERO,
    )
    .await;
    let probe = HttpProbe::new(&format!("{}/health", server.uri()))
        .unwrap()
        .expect_field("checks.db.ok", true);
    testkit::health_probe(&probe, HealthStatus::Healthy).await;
    let probe = probe.expect_field("checks.cache.ok", true);
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(report.checks[2].detail.starts_with("missing"));

    let text = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("OK"))
        .mount(&text)
        .await;
    let probe = HttpProbe::new(&text.uri())
        .unwrap()
        .expect_field("status", "healthy");
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert_eq!(report.checks[1].detail, "the body is not JSON");
}

#[tokio::test]
async fn a_wrong_status_is_unhealthy() {
    let server = health_server(
        503,
        serde_json::json!({"status": "unhealthy"}),
        Duration::ZERO,
    )
    .await;
    let report = testkit::health_probe(&seed_probe(&server), HealthStatus::Unhealthy).await;
    assert_eq!(report.checks[0].detail, "status 503, expected 200");
}

#[tokio::test]
async fn slow_is_degraded_and_too_slow_is_unhealthy() {
    let server = health_server(
        200,
        serde_json::json!({"status": "healthy", "database": "connected"}),
        Duration::from_millis(300),
    )
    .await;
    let probe = seed_probe(&server).degraded_above(Duration::from_millis(50));
    testkit::health_probe(&probe, HealthStatus::Degraded).await;
    let probe = seed_probe(&server).timeout(Duration::from_millis(100));
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(
        report.checks[0].detail.starts_with("no answer within"),
        "{:?}",
        report.checks[0]
    );
    assert_eq!(report.checks[1].detail, "no response");
}

#[tokio::test]
async fn a_refused_connection_is_unhealthy_not_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    drop(listener);
    let report =
        testkit::health_probe(&HttpProbe::new(&url).unwrap(), HealthStatus::Unhealthy).await;
    assert!(report.checks[0].detail.contains("connection failed"));
}

#[tokio::test]
async fn credentials_in_the_url_never_reach_the_report() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .and(query_param("token", "s3cr3t-value"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/health?token=s3cr3t-value", server.uri())
        .replace("http://", "http://user:pw-secret@");
    let report = testkit::health_probe(&HttpProbe::new(&url).unwrap(), HealthStatus::Healthy).await;
    let shown = serde_json::to_string(&report).unwrap();
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("pw-secret"),
        "{shown}"
    );
}

#[test]
fn malformed_urls_are_invalid_input() {
    for bad in ["", "not a url", "ftp://example.com/x", "http://"] {
        let err = HttpProbe::new(bad).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{bad}: {err}"
        );
    }
    for bad in ["nohost", ":5432", "db:0", "db:99999", "db:x"] {
        assert!(TcpProbe::new(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn tcp_probe_sees_open_and_closed_ports() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    testkit::health_probe(&TcpProbe::new(&addr).unwrap(), HealthStatus::Healthy).await;
    drop(listener);
    let report =
        testkit::health_probe(&TcpProbe::new(&addr).unwrap(), HealthStatus::Unhealthy).await;
    assert!(
        report.checks[0].detail.starts_with("cannot connect"),
        "{:?}",
        report.checks[0]
    );
}

/// A probe that counts how many probes run at once.
struct Counting {
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

#[async_trait]
impl HealthProbe for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    async fn check(&self) -> Result<HealthReport> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        SystemClock.sleep(Duration::from_millis(10)).await;
        self.active.fetch_sub(1, Ordering::SeqCst);
        let t = SystemClock.now();
        let c = CheckResult {
            name: "c".into(),
            status: HealthStatus::Healthy,
            detail: "ok".into(),
            latency: Duration::ZERO,
            observed_at: t,
        };
        Ok(HealthReport::from_checks("counting", t, vec![c]))
    }
}

#[tokio::test(start_paused = true)]
async fn check_all_respects_the_concurrency_bound() {
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let probes: Vec<Arc<dyn HealthProbe>> = (0..20)
        .map(|_| {
            Arc::new(Counting {
                active: active.clone(),
                peak: peak.clone(),
            }) as Arc<dyn HealthProbe>
        })
        .collect();
    let reports = check_all(&probes, 4).await;
    assert_eq!(reports.len(), 20);
    assert!(
        reports
            .iter()
            .all(|r| r.as_ref().unwrap().status == HealthStatus::Healthy)
    );
    assert_eq!(peak.load(Ordering::SeqCst), 4);
}

/// A status endpoint that answers 200 only with `Authorization: Bearer <token>` (seed 000's
/// `/api/daemon/status`), 401 otherwise.
async fn bearer_server(token: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/daemon/status"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "healthy"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_bearer_token_from_a_secret_store_is_sent_and_never_shown() {
    use ops_core::contracts::SecretStore;
    use ops_core::memory::MemorySecretStore;
    let server = bearer_server("tok-first-5f2a").await;
    let secrets = Arc::new(MemorySecretStore::new("secrets"));
    secrets
        .add_version("daemon-token", &"tok-first-5f2a".into())
        .await
        .unwrap();
    let probe = HttpProbe::new(&format!("{}/api/daemon/status", server.uri()))
        .unwrap()
        .expect_field("status", "healthy")
        .bearer_from_secret(secrets.clone(), "daemon-token")
        .unwrap();
    let report = testkit::health_probe(&probe, HealthStatus::Healthy).await;
    let shown = format!(
        "{probe:?} {report:?} {}",
        serde_json::to_string(&report).unwrap()
    );
    assert!(!shown.contains("tok-first"), "{shown}");
    assert!(
        shown.contains("daemon-token"),
        "the Debug form names the secret: {shown}"
    );

    // Rotated: the next check sends the new value, and the old one is refused by the server.
    secrets
        .add_version("daemon-token", &"tok-second-9c1d".into())
        .await
        .unwrap();
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert_eq!(report.checks[0].detail, "status 401, expected 200");
    let server = bearer_server("tok-second-9c1d").await;
    let probe = HttpProbe::new(&format!("{}/api/daemon/status", server.uri()))
        .unwrap()
        .bearer_from_secret(secrets.clone(), "daemon-token")
        .unwrap();
    testkit::health_probe(&probe, HealthStatus::Healthy).await;
}

#[tokio::test]
async fn a_missing_secret_fails_the_check_and_bad_headers_are_invalid_input() {
    use ops_core::memory::MemorySecretStore;
    let server = bearer_server("t").await;
    let secrets = Arc::new(MemorySecretStore::new("secrets"));
    let probe = HttpProbe::new(&server.uri())
        .unwrap()
        .bearer_from_secret(secrets, "absent")
        .unwrap();
    let err = probe.check().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");

    let url = server.uri();
    let err = HttpProbe::new(&url)
        .unwrap()
        .header("bad name", &"v".into())
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    let err = HttpProbe::new(&url)
        .unwrap()
        .header("x-api-key", &"line\r\nInjected: 1".into())
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("Injected"), "{err}");

    // A fixed header value is sent as given and hidden the same way.
    let probe = HttpProbe::new(&format!("{url}/api/daemon/status"))
        .unwrap()
        .header("authorization", &"Bearer t".into())
        .unwrap();
    testkit::health_probe(&probe, HealthStatus::Healthy).await;
    assert!(!format!("{probe:?}").contains("Bearer t"));
}

#[tokio::test]
async fn a_secret_value_with_a_line_break_is_refused_without_showing_it() {
    use ops_core::contracts::SecretStore;
    use ops_core::memory::MemorySecretStore;
    let server = bearer_server("t").await;
    let secrets = Arc::new(MemorySecretStore::new("secrets"));
    secrets
        .add_version("token", &"abc\nX-Evil: leaked-part".into())
        .await
        .unwrap();
    let probe = HttpProbe::new(&server.uri())
        .unwrap()
        .bearer_from_secret(secrets, "token")
        .unwrap();
    let err = probe.check().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("leaked-part"), "{err:?}");
}
