//! RedisProbe against a real redis-server: AUTH with a password from a secret store (rotated,
//! wrong, missing, an ACL user), PING, memory against maxmemory, the keyspace hit rate; and
//! against hostile listeners: one that never answers, one that answers garbage.

use std::sync::Arc;
use std::time::Duration;

use ops_core::adapters::RedisProbe;
use ops_core::adapters::redis_probe::RedisTestServer;
use ops_core::adapters::redis_probe::resp::Reply;
use ops_core::contracts::{HealthProbe, HealthReport, HealthStatus, SecretStore};
use ops_core::memory::MemorySecretStore;
use ops_core::{ErrorKind, testkit};

async fn start(password: &str, maxmemory: &str) -> RedisTestServer {
    RedisTestServer::start(password, maxmemory)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "redis-pw-7f3c91";

async fn secrets(value: &str) -> Arc<MemorySecretStore> {
    let store = Arc::new(MemorySecretStore::new("secrets"));
    store
        .add_version("redis-password", &value.into())
        .await
        .unwrap();
    store
}

fn detail<'a>(report: &'a HealthReport, check: &str) -> &'a str {
    report
        .checks
        .iter()
        .find(|c| c.name == format!("redis {check}"))
        .map(|c| c.detail.as_str())
        .unwrap_or_else(|| panic!("no {check} check in {report:?}"))
}

fn assert_no_password(probe: &RedisProbe, report: &HealthReport, password: &str) {
    let shown = format!(
        "{probe:?} {report:?} {}",
        serde_json::to_string(report).unwrap()
    );
    assert!(!shown.contains(password), "{shown}");
}

#[tokio::test]
async fn credentials_from_the_secret_store_authenticate_and_the_server_is_read() {
    let server = start(PASSWORD, "64mb").await;
    let store = secrets(PASSWORD).await;
    let probe = RedisProbe::new(server.address())
        .unwrap()
        .password_from_secret(store.clone(), "redis-password");
    let report = testkit::health_probe(&probe, HealthStatus::Healthy).await;
    let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["redis auth", "redis ping", "redis memory", "redis hit rate"]
    );
    assert_eq!(detail(&report, "auth"), "credentials accepted");
    assert!(
        detail(&report, "memory").contains("of 64.0 MiB used"),
        "{report:?}"
    );
    assert_no_password(&probe, &report, PASSWORD);
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_unhealthy_and_never_shown() {
    let mut server = start(PASSWORD, "64mb").await;
    let wrong = "not-the-pw-2b8e";
    let probe = RedisProbe::new(server.address())
        .unwrap()
        .password_from_secret(secrets(wrong).await, "redis-password");
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(
        detail(&report, "auth").starts_with("credentials refused: WRONGPASS"),
        "{report:?}"
    );
    assert_eq!(report.checks.len(), 1, "nothing after a refused AUTH");
    assert_no_password(&probe, &report, wrong);

    let bare = RedisProbe::new(server.address()).unwrap();
    let report = testkit::health_probe(&bare, HealthStatus::Unhealthy).await;
    assert!(detail(&report, "ping").contains("NOAUTH"), "{report:?}");

    // The password is rotated on the server and in the store: the next check uses the new one.
    let store = secrets(PASSWORD).await;
    let probe = RedisProbe::new(server.address())
        .unwrap()
        .password_from_secret(store.clone(), "redis-password");
    testkit::health_probe(&probe, HealthStatus::Healthy).await;
    server.set_password("rotated-pw-44d1").await.unwrap();
    testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    store
        .add_version("redis-password", &"rotated-pw-44d1".into())
        .await
        .unwrap();
    testkit::health_probe(&probe, HealthStatus::Healthy).await;

    // A secret that is not there: the probe could not look.
    let probe = RedisProbe::new(server.address())
        .unwrap()
        .password_from_secret(store, "absent");
    let err = probe.check().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn an_acl_user_authenticates_with_its_name() {
    let server = start(PASSWORD, "64mb").await;
    let created = server
        .admin(&[
            "ACL",
            "SETUSER",
            "probe",
            "on",
            ">probe-pw-5a",
            "+ping",
            "+info",
        ])
        .await
        .unwrap();
    assert_eq!(created, Reply::Simple("OK".into()));
    let probe = RedisProbe::new(server.address())
        .unwrap()
        .password_from_secret(secrets("probe-pw-5a").await, "redis-password")
        .username("probe");
    testkit::health_probe(&probe, HealthStatus::Healthy).await;
    // The same in the other order: the user named before the password.
    let first = RedisProbe::new(server.address())
        .unwrap()
        .username("probe")
        .password_from_secret(secrets("probe-pw-5a").await, "redis-password");
    testkit::health_probe(&first, HealthStatus::Healthy).await;
    let probe = probe.username("nobody");
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(detail(&report, "auth").contains("WRONGPASS"), "{report:?}");
}

#[tokio::test]
async fn memory_near_maxmemory_and_a_low_hit_rate_degrade() {
    let server = start(PASSWORD, "8mb").await;
    // Fill towards the limit, then look keys up mostly in vain.
    let blob = "x".repeat(1024);
    for i in 0..3000 {
        let r = server
            .admin(&["SET", &format!("k{i}"), &blob])
            .await
            .unwrap();
        if matches!(r, Reply::Error(_)) {
            break; // OOM under noeviction: as full as it gets
        }
    }
    for i in 0..40 {
        server
            .admin(&["GET", &format!("missing-{i}")])
            .await
            .unwrap();
    }
    for i in 0..10 {
        server.admin(&["GET", &format!("k{i}")]).await.unwrap();
    }
    let probe = RedisProbe::new(server.address())
        .unwrap()
        .password_from_secret(secrets(PASSWORD).await, "redis-password")
        .memory_degraded_above(0.5)
        .min_hit_rate(0.8)
        .min_lookups(20);
    let report = testkit::health_probe(&probe, HealthStatus::Degraded).await;
    let status = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
    };
    assert_eq!(
        status("redis memory"),
        Some(HealthStatus::Degraded),
        "{report:?}"
    );
    assert_eq!(
        status("redis hit rate"),
        Some(HealthStatus::Degraded),
        "{report:?}"
    );
    assert!(
        detail(&report, "hit rate").starts_with("20.0 % of 50 lookups hit"),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_dead_server_a_silent_one_and_a_garbling_one_are_unhealthy() {
    let mut server = start(PASSWORD, "64mb").await;
    let address = server.address().to_string();
    server.kill();
    let probe = RedisProbe::new(&address).unwrap();
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(
        detail(&report, "connect").starts_with("cannot connect"),
        "{report:?}"
    );

    // Accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let (socket, _) = silent.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(socket);
    });
    let probe = RedisProbe::new(&address)
        .unwrap()
        .timeout(Duration::from_millis(200));
    let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
    assert!(
        detail(&report, "connect").starts_with("no complete answer"),
        "{report:?}"
    );
    hold.abort();

    // Answers with bytes that are not RESP, then with a reply far beyond the limits.
    for garbage in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        b"$999999999999\r\n",
    ] {
        let bad = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = bad.local_addr().unwrap().to_string();
        let serve = tokio::spawn(async move {
            let (mut socket, _) = bad.accept().await.unwrap();
            socket.write_all(garbage).await.unwrap();
            std::future::pending::<()>().await;
        });
        let probe = RedisProbe::new(&address).unwrap();
        let report = testkit::health_probe(&probe, HealthStatus::Unhealthy).await;
        assert!(
            detail(&report, "ping").starts_with("a malformed reply"),
            "{report:?}"
        );
        serve.abort();
    }
}

#[test]
fn addresses_must_be_host_and_port() {
    for bad in ["", "redis", ":6379", "redis:0", "redis:70000", "redis:x"] {
        let err = RedisProbe::new(bad).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{bad}"
        );
    }
}
