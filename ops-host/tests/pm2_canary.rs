//! `Pm2Canary` on a real pm2 and a real nginx: releases in pm2 slots behind nginx, the
//! testkit's deployer suite, the seed's canary stages counted at nginx, and a release that
//! does not start leaving the traffic alone.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::clock::{Clock, SystemClock};
use ops_core::contracts::{
    DeployRequest, Deployer, InitialTraffic, MetricsSource, TimeWindow, TrafficSplit,
};
use ops_core::testkit;
use ops_host::nginx::Nginx;
use ops_host::pm2::{Pm2Canary, Pm2CanaryConfig};
use support::nginx::{NginxUnderTest, free_port};
use support::pm2::Pm2UnderTest;

/// `releases/<version>/server.js`: answers its version; `broken` exits at once.
fn release(root: &Path, version: &str, broken: bool) {
    let dir = root.join("releases").join(version);
    std::fs::create_dir_all(&dir).unwrap();
    let code = if broken {
        "process.exit(1);\n".to_string()
    } else {
        format!(
            "require('http').createServer((q, s) => s.end('{version}'))\
             .listen(Number(process.env.PORT), '127.0.0.1');\n"
        )
    };
    std::fs::write(dir.join("server.js"), code).unwrap();
}

/// pm2, nginx (started, routing to a placeholder until the first deploy) and the deployer with
/// `slots` slots.
async fn stack(slots: usize) -> (Pm2UnderTest, NginxUnderTest, Pm2Canary) {
    let pm2 = Pm2UnderTest::new();
    let root = pm2.dir.path().join("app");
    release(&root, "v2.0.0", false);
    release(&root, "v2.1.0", false);
    release(&root, "v2.2.0", true);
    let mut n = NginxUnderTest::prepare();
    let nginx = Nginx::new(n.config("127.0.0.1:9", "127.0.0.1:10")).unwrap();
    // nginx needs an upstream to start: a placeholder, replaced by the first deploy.
    nginx
        .with_releases(BTreeMap::from([(
            "none".into(),
            vec!["127.0.0.1:9".into()],
        )]))
        .unwrap()
        .write_split(&TrafficSplit::all_to("none").unwrap())
        .await
        .unwrap();
    n.start().await;
    let ports: Vec<u16> = (0..slots).map(|_| free_port()).collect();
    let mut config = Pm2CanaryConfig::new(&root, "godel-api", "server.js", &ports);
    config.stable_for = Duration::from_millis(300);
    let d = Pm2Canary::new(pm2.pm2.clone(), nginx, config).unwrap();
    (pm2, n, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_in_pm2_slots_behind_nginx_pass_the_deployer_suite() {
    // Three slots: the suite deploys while a split holds two of them.
    let (_pm2, _nginx, d) = stack(3).await;
    testkit::deployer(&d, &support::seed_versions()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_canary_stages_are_in_force_at_nginx() {
    let (_pm2, n, d) = stack(2).await;
    let all = DeployRequest {
        traffic: InitialTraffic::All,
        ..DeployRequest::new("v2.0.0")
    };
    let stable = d.deploy(&all).await.unwrap();
    let canary = d.deploy(&DeployRequest::new("v2.1.0")).await.unwrap();
    assert_ne!(stable.id, canary.id);
    for pct in [1u8, 5, 25] {
        let split = TrafficSplit::new([(canary.id.as_str(), pct), (stable.id.as_str(), 100 - pct)])
            .unwrap();
        let state = d.set_traffic(&split).await.unwrap();
        assert_eq!(state.primary_release(), Some(stable.id.as_str()));
        let seen = n.traffic(100).await;
        assert_eq!(
            seen.get("v2.1.0").copied().unwrap_or(0),
            usize::from(pct),
            "{seen:?}"
        );
    }
    // nginx's access log, read per release: what the judge compares (1 + 5 + 25 canary
    // requests of the 300 above, the rest on stable).
    let metrics = d.metrics(n.path("access.log"));
    let window = TimeWindow::new(
        SystemClock.now() - chrono::Duration::minutes(5),
        SystemClock.now() + chrono::Duration::minutes(1),
    )
    .unwrap();
    let c = metrics.counts(&canary.id, &window).await.unwrap();
    assert_eq!((c.requests, c.errors), (31, 0));
    let s = metrics.counts(&stable.id, &window).await.unwrap();
    assert_eq!((s.requests, s.errors), (269, 0));

    // Two slots, both taking traffic: no room for a third release, and nothing changes.
    let err = d.deploy(&DeployRequest::new("v2.0.0")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    assert_eq!(n.traffic(100).await.get("v2.1.0").copied(), Some(25));

    d.set_traffic(&TrafficSplit::all_to(canary.id.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(n.traffic(20).await.get("v2.1.0").copied(), Some(20));

    // A release that does not start: the traffic stays where it was.
    let err = d
        .deploy(&DeployRequest {
            deadline: Duration::from_secs(20),
            ..DeployRequest::new("v2.2.0")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "{err}"
    );
    assert_eq!(n.traffic(10).await.get("v2.1.0").copied(), Some(10));
    let state = d.current().await.unwrap();
    assert_eq!(state.primary_release(), Some(canary.id.as_str()));
}
