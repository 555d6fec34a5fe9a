//! `Pm2Releases` on a real pm2: releases in `releases/<version>` (small Node apps the tests
//! write, answering their version on `/health`), the `current` symlink, `pm2 start` and
//! `reload`. The testkit's deployer suite, the automatic rollback of a release that
//! crash-loops, and refused versions.

mod support;

use std::path::Path;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::contracts::{DeployRequest, Deployer, InitialTraffic, TrafficSplit};
use ops_core::testkit;
use ops_host::pm2::{Pm2Releases, Pm2ReleasesConfig};
use support::nginx::free_port;
use support::pm2::Pm2UnderTest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `releases/<version>/server.js` answering `{"status":"healthy","version":…}`.
fn release(root: &Path, version: &str) {
    let dir = root.join("releases").join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.js"),
        format!(
            "require('http').createServer((q, s) => s.end(JSON.stringify({{status: 'healthy', \
             version: '{version}'}}))).listen(Number(process.env.PORT), '127.0.0.1');\n"
        ),
    )
    .unwrap();
}

/// A release whose process exits at once (a crash loop under pm2).
fn broken_release(root: &Path, version: &str) {
    let dir = root.join("releases").join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.js"),
        "console.error('Error: missing DATABASE_URL'); process.exit(1);\n",
    )
    .unwrap();
}

fn deployer(t: &Pm2UnderTest, port: u16) -> Pm2Releases {
    let root = t.dir.path().join("app");
    let mut config = Pm2ReleasesConfig::new(&root, "godel-api", "server.js");
    config.env.insert("PORT".into(), port.to_string());
    config.health_url = Some(format!("http://127.0.0.1:{port}/health"));
    config.stable_for = Duration::from_millis(500);
    Pm2Releases::new(t.pm2.clone(), config).unwrap()
}

async fn get(port: u16) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply)
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_served_by_pm2_pass_the_deployer_suite() {
    let t = Pm2UnderTest::new();
    let root = t.dir.path().join("app");
    release(&root, "v2.0.0");
    release(&root, "v2.1.0");
    let port = free_port();
    let d = deployer(&t, port);
    testkit::deployer(&d, &support::seed_versions()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_crash_loops_is_rolled_back_by_itself() {
    let t = Pm2UnderTest::new();
    let root = t.dir.path().join("app");
    release(&root, "v2.0.0");
    broken_release(&root, "v2.1.0");
    let port = free_port();
    let d = deployer(&t, port);
    let all = |v: &str| DeployRequest {
        traffic: InitialTraffic::All,
        deadline: Duration::from_secs(30),
        ..DeployRequest::new(v)
    };
    d.deploy(&all("v2.0.0")).await.unwrap();
    assert!(get(port).await.contains("v2.0.0"));

    let err = d.deploy(&all("v2.1.0")).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("back on v2.0.0"), "{err}");
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        Path::new("releases/v2.0.0")
    );
    let state = d.current().await.unwrap();
    assert_eq!(state.primary_release(), Some("v2.0.0"));
    // Serving again (the reload may still be settling: wait for the answer).
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply).await;
            body = String::from_utf8_lossy(&reply).to_string();
            if body.contains("v2.0.0") {
                break;
            }
        }
        ops_core::clock::Clock::sleep(&ops_core::clock::SystemClock, Duration::from_millis(50))
            .await;
    }
    assert!(body.contains("v2.0.0"), "{body}");
}

#[tokio::test]
async fn versions_that_name_no_release_directory_are_refused() {
    let t = Pm2UnderTest::new();
    let root = t.dir.path().join("app");
    release(&root, "v2.0.0");
    let d = deployer(&t, free_port());
    for bad in ["../etc", ".hidden", "a/b", "v 1"] {
        let err = d.deploy(&DeployRequest::new(bad)).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{bad}: {err}"
        );
    }
    let err = d.deploy(&DeployRequest::new("v9.9.9")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    let err = d
        .set_traffic(&TrafficSplit::all_to("v9.9.9").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restart_and_prune_keep_what_a_rollback_needs() {
    let t = Pm2UnderTest::new();
    let root = t.dir.path().join("app");
    for v in ["v1.9.0", "v2.0.0", "v2.1.0", "v2.2.0"] {
        release(&root, v);
    }
    let port = free_port();
    let d = deployer(&t, port);
    for v in ["v1.9.0", "v2.0.0", "v2.1.0"] {
        d.deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new(v)
        })
        .await
        .unwrap();
    }
    assert!(get(port).await.contains("v2.1.0"));

    // The seed's emergency restart, then its rollback to the release before.
    let state = d.restart(Duration::from_secs(30)).await.unwrap();
    assert_eq!(state.primary_release(), Some("v2.1.0"));
    let state = d.rollback(Duration::from_secs(30)).await.unwrap();
    assert_eq!(state.primary_release(), Some("v2.0.0"));
    assert!(get(port).await.contains("v2.0.0"));

    // Keep 2: v2.2.0 was never deployed but is newest on disk; the serving release and the one
    // before it stay whatever their age.
    let plan = d.prune_plan(2).await.unwrap();
    assert!(!plan.contains(&"v2.0.0".to_string()), "{plan:?}");
    assert!(!plan.contains(&"v2.1.0".to_string()), "{plan:?}");
    assert!(plan.contains(&"v1.9.0".to_string()), "{plan:?}");
    assert!(
        root.join("releases/v1.9.0").exists(),
        "a plan deletes nothing"
    );
    let gone = d.prune(2).await.unwrap();
    assert_eq!(gone, plan);
    assert!(!root.join("releases/v1.9.0").exists());
    assert!(root.join("releases/v2.0.0").exists() && root.join("releases/v2.1.0").exists());
}
