//! Canary traffic on Kubernetes against the simulator, both ways: a replica ratio behind one
//! Service, and Gateway API `HTTPRoute` weights accepted by a gateway controller.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_core::contracts::*;
use ops_core::testkit;
use ops_kubernetes::canary::replicas_for;
use ops_kubernetes::sim::KubeSim;
use ops_kubernetes::{CanaryTraffic, KubeCanary};
use proptest::prelude::*;

const IMAGE: &str = "registry.local/web";

fn t0() -> DateTime<Utc> {
    "2026-12-01T09:00:00Z".parse().unwrap()
}

/// `web-blue` serving 1.0.0 on `replicas` pods, `web-green` idle, both `app: web`.
async fn slots(replicas: i32) -> (KubeSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = KubeSim::builder()
        .clock(clock.clone())
        .pod_ready_after(Duration::from_secs(5))
        .start()
        .await;
    let image = format!("{IMAGE}:1.0.0");
    sim.add_deployment_labelled(
        "web-blue",
        &image,
        replicas,
        &[("app", "web"), ("track", "blue")],
    );
    sim.add_deployment_labelled(
        "web-green",
        &image,
        0,
        &[("app", "web"), ("track", "green")],
    );
    (sim, clock)
}

async fn by_replicas(total: u32) -> (KubeSim, Arc<ManualClock>, KubeCanary) {
    let (sim, clock) = slots(total as i32).await;
    sim.add_service("web", &[("app", "web")]);
    let canary = KubeCanary::replica_ratio(
        sim.client().unwrap(),
        "web",
        &["web-blue", "web-green"],
        total,
    )
    .unwrap()
    .repository(IMAGE)
    .polling(Duration::from_secs(1));
    (sim, clock, canary)
}

async fn by_route() -> (KubeSim, Arc<ManualClock>, KubeCanary) {
    let (sim, clock) = slots(3).await;
    sim.add_service("web-blue", &[("app", "web"), ("track", "blue")]);
    sim.add_service("web-green", &[("app", "web"), ("track", "green")]);
    sim.add_http_route("web", &[("web-blue", 100)]);
    let canary = KubeCanary::http_route(
        sim.client().unwrap(),
        "web",
        &[("web-blue", "web-blue"), ("web-green", "web-green")],
    )
    .unwrap()
    .repository(IMAGE)
    .polling(Duration::from_secs(1))
    .route_deadline(Duration::from_secs(30));
    (sim, clock, canary)
}

fn dark(version: &str) -> DeployRequest {
    DeployRequest {
        deadline: Duration::from_secs(120),
        ..DeployRequest::new(version)
    }
}

fn pct(state: &ServiceState, release: &str) -> u8 {
    state
        .traffic
        .iter()
        .find(|t| t.release == release)
        .map_or(0, |t| t.percent)
}

fn replicas(sim: &KubeSim, name: &str) -> i32 {
    sim.get_deployment(name)
        .and_then(|d| d.spec?.replicas)
        .unwrap_or(-1)
}

/// The suite's cases follow one another on one deployer, and one leaves a 10/90 split: a
/// third slot is idle for the next deploy (with two, that deploy is a `Conflict`).
fn third_slot(sim: &KubeSim) {
    sim.add_deployment_labelled(
        "web-red",
        &format!("{IMAGE}:1.0.0"),
        0,
        &[("app", "web"), ("track", "red")],
    );
    sim.add_service("web-red", &[("app", "web"), ("track", "red")]);
}

#[tokio::test]
async fn a_replica_ratio_canary_passes_the_deployer_suite() {
    // Ten replicas: the suite's 10 % canary is one pod.
    let (sim, _, _) = by_replicas(10).await;
    third_slot(&sim);
    let canary = KubeCanary::replica_ratio(
        sim.client().unwrap(),
        "web",
        &["web-blue", "web-green", "web-red"],
        10,
    )
    .unwrap()
    .repository(IMAGE)
    .polling(Duration::from_secs(1));
    testkit::deployer(
        &canary,
        &testkit::DeployerFixture {
            version_a: "1.1.0".into(),
            version_b: "1.2.0".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn an_http_route_canary_passes_the_deployer_suite() {
    let (sim, _, _) = by_route().await;
    third_slot(&sim);
    let canary = KubeCanary::http_route(
        sim.client().unwrap(),
        "web",
        &[
            ("web-blue", "web-blue"),
            ("web-green", "web-green"),
            ("web-red", "web-red"),
        ],
    )
    .unwrap()
    .repository(IMAGE)
    .polling(Duration::from_secs(1));
    testkit::deployer(
        &canary,
        &testkit::DeployerFixture {
            version_a: "1.1.0".into(),
            version_b: "1.2.0".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn with_two_slots_both_taking_traffic_a_deploy_is_a_conflict_that_changes_nothing() {
    let (sim, _, canary) = by_replicas(4).await;
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    let b = canary.deploy(&dark("1.1.0")).await.unwrap();
    let half = TrafficSplit::new([(b.id.as_str(), 50), (stable.as_str(), 50)]).unwrap();
    canary.set_traffic(&half).await.unwrap();
    let err = canary.deploy(&dark("1.2.0")).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    let versions: Vec<String> = canary
        .releases()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert!(!versions.contains(&"1.2.0".to_string()), "{versions:?}");
    assert_eq!(
        (replicas(&sim, "web-blue"), replicas(&sim, "web-green")),
        (2, 2)
    );
}

#[tokio::test]
async fn a_replica_ratio_gives_shares_in_whole_pods_and_refuses_the_rest() {
    let (sim, _, canary) = by_replicas(4).await;
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    assert_eq!(stable, format!("web-blue@{IMAGE}:1.0.0"));
    // Without traffic, the release runs no pods.
    let b = canary.deploy(&dark("1.1.0")).await.unwrap();
    assert_eq!(b.id, "web-green@1.1.0");
    assert_eq!(replicas(&sim, "web-green"), 0);
    assert!(!canary.can_give(1) && !canary.can_give(10) && canary.can_give(25));

    // 1 % of 4 replicas: refused with the steps it can take, and nothing moves.
    let one = TrafficSplit::new([(b.id.as_str(), 1), (stable.as_str(), 99)]).unwrap();
    let err = canary.set_traffic(&one).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    assert!(
        text.contains("steps of 25 %") && text.contains("multiple of 100 replicas"),
        "{text}"
    );
    assert!(matches!(
        canary
            .validate(&DeployAction::SetTraffic(one))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput { .. }
    ));
    assert_eq!(
        (replicas(&sim, "web-blue"), replicas(&sim, "web-green")),
        (4, 0)
    );

    // 25 %: one pod of four.
    let quarter = TrafficSplit::new([(b.id.as_str(), 25), (stable.as_str(), 75)]).unwrap();
    let state = canary.set_traffic(&quarter).await.unwrap();
    assert_eq!((pct(&state, &b.id), pct(&state, &stable)), (25, 75));
    assert_eq!(
        (replicas(&sim, "web-blue"), replicas(&sim, "web-green")),
        (3, 1)
    );
}

#[tokio::test]
async fn a_failing_canary_stops_the_move_and_keeps_the_stable_pods() {
    let (sim, _, canary) = by_replicas(4).await;
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    let b = canary.deploy(&dark("1.1.0-crash-loop")).await.unwrap();
    let quarter = TrafficSplit::new([(b.id.as_str(), 25), (stable.as_str(), 75)]).unwrap();
    let err = canary.set_traffic(&quarter).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. })
            && err.to_string().contains("CrashLoopBackOff"),
        "{err}"
    );
    // The gaining slot is scaled first: the stable pods were never scaled down.
    assert_eq!(replicas(&sim, "web-blue"), 4);
    let back = canary
        .set_traffic(&TrafficSplit::all_to(stable.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(pct(&back, &stable), 100);
    assert_eq!(replicas(&sim, "web-green"), 0);
}

#[tokio::test]
async fn slots_must_be_told_apart_and_reached_by_the_service() {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = KubeSim::builder().clock(clock.clone()).start().await;
    let image = format!("{IMAGE}:1.0.0");
    // Overlapping selectors: `app: web` picks the canary's pods too.
    sim.add_deployment_labelled("web", &image, 2, &[("app", "web")]);
    sim.add_deployment_labelled(
        "web-canary",
        &image,
        0,
        &[("app", "web"), ("track", "canary")],
    );
    sim.add_service("web", &[("app", "web")]);
    let overlapping =
        KubeCanary::replica_ratio(sim.client().unwrap(), "web", &["web", "web-canary"], 4).unwrap();
    let err = overlapping.current().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. })
            && err.to_string().contains("picks the pods of web-canary"),
        "{err}"
    );

    // A Service that reaches only one slot: a deploy is refused before anything runs.
    sim.add_deployment_labelled("api-blue", &image, 2, &[("app", "api"), ("track", "blue")]);
    sim.add_deployment_labelled(
        "api-green",
        &image,
        0,
        &[("app", "api"), ("track", "green")],
    );
    sim.add_service("api", &[("app", "api"), ("track", "blue")]);
    let api =
        KubeCanary::replica_ratio(sim.client().unwrap(), "api", &["api-blue", "api-green"], 4)
            .unwrap()
            .repository(IMAGE);
    let err = api.deploy(&dark("1.1.0")).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. })
            && err
                .to_string()
                .contains("does not select the pods of api-green"),
        "{err}"
    );
    assert!(
        sim.get_deployment("api-green")
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .image
            .as_deref()
            == Some(image.as_str())
    );

    // A missing slot names what to create.
    let missing =
        KubeCanary::replica_ratio(sim.client().unwrap(), "api", &["api-blue", "nope"], 4).unwrap();
    let err = missing.current().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotFound { .. }) && err.to_string().contains("nope"),
        "{err}"
    );

    // Bad configuration is refused at construction.
    for bad in [
        KubeCanary::replica_ratio(sim.client().unwrap(), "api", &["api-blue"], 4),
        KubeCanary::replica_ratio(sim.client().unwrap(), "api", &["a", "a"], 4),
        KubeCanary::replica_ratio(sim.client().unwrap(), "api", &["a", "b"], 0),
        KubeCanary::replica_ratio(sim.client().unwrap(), "Bad_Name", &["a", "b"], 4),
        KubeCanary::http_route(sim.client().unwrap(), "r", &[("a", "s"), ("b", "../x")]),
    ] {
        assert!(matches!(
            bad.unwrap_err().kind(),
            ErrorKind::InvalidInput { .. }
        ));
    }
}

#[tokio::test]
async fn route_weights_are_exact_and_the_rest_of_the_route_is_kept() {
    let (sim, _, canary) = by_route().await;
    assert!(canary.can_give(1));
    let before = sim.get_http_route("web").unwrap();
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    let b = canary.deploy(&dark("1.1.0")).await.unwrap();
    // A deployed release runs as many pods as the serving slot, with weight 0.
    assert_eq!(replicas(&sim, "web-green"), 3);
    assert_eq!(pct(&canary.current().await.unwrap(), &b.id), 0);

    let one = TrafficSplit::new([(b.id.as_str(), 1), (stable.as_str(), 99)]).unwrap();
    // Checked by the API server first, changing nothing.
    let checked = canary
        .validate(&DeployAction::SetTraffic(one.clone()))
        .await
        .unwrap();
    assert_eq!(checked, Validation::ValidatedByProvider);
    assert_eq!(sim.get_http_route("web").unwrap()["spec"], before["spec"]);
    let state = canary.set_traffic(&one).await.unwrap();
    assert_eq!((pct(&state, &b.id), pct(&state, &stable)), (1, 99));
    let after = sim.get_http_route("web").unwrap();
    let refs = after["spec"]["rules"][0]["backendRefs"].as_array().unwrap();
    let weight = |name: &str| {
        refs.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["weight"].clone())
    };
    assert_eq!(weight("web-blue"), Some(99.into()));
    assert_eq!(weight("web-green"), Some(1.into()));
    // The new backend reference took the port of the others.
    assert_eq!(refs[1]["port"], 80);
    for kept in [
        "/spec/hostnames",
        "/spec/parentRefs",
        "/spec/rules/0/matches",
    ] {
        assert_eq!(after.pointer(kept), before.pointer(kept), "{kept} kept");
    }
    assert_eq!(after["metadata"]["generation"], 2);
}

#[tokio::test]
async fn a_route_write_keeps_others_edits_and_retries_over_the_controllers() {
    let (sim, _, canary) = by_route().await;
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    let b = canary.deploy(&dark("1.1.0")).await.unwrap();
    let split = TrafficSplit::new([(b.id.as_str(), 10), (stable.as_str(), 90)]).unwrap();

    // Another operator edits the route between our read and our write: a Conflict, and
    // their edit stands with the old weights.
    sim.edit_route_before_next_write("web", true);
    let err = canary.set_traffic(&split).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Conflict { .. })
            && err.to_string().contains("changed by someone else"),
        "{err}"
    );
    let route = sim.get_http_route("web").unwrap();
    assert_eq!(route["spec"]["hostnames"].as_array().unwrap().len(), 2);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["weight"], 100);

    // The controller rewrites only the status meanwhile: written again, and in force.
    sim.edit_route_before_next_write("web", false);
    let state = canary.set_traffic(&split).await.unwrap();
    assert_eq!((pct(&state, &b.id), pct(&state, &stable)), (10, 90));
    let route = sim.get_http_route("web").unwrap();
    assert_eq!(
        route["spec"]["hostnames"].as_array().unwrap().len(),
        2,
        "their edit kept"
    );
}

#[tokio::test]
async fn a_route_the_gateway_cannot_program_is_an_error_naming_why() {
    let (sim, _, canary) = by_route().await;
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    // The Service in front of the canary slot is missing: the backend cannot be resolved.
    let broken = KubeCanary::http_route(
        sim.client().unwrap(),
        "web",
        &[("web-blue", "web-blue"), ("web-green", "web-green-svc")],
    )
    .unwrap()
    .repository(IMAGE)
    .polling(Duration::from_secs(1));
    let b = broken.deploy(&dark("1.1.0")).await.unwrap();
    let split = TrafficSplit::new([(b.id.as_str(), 10), (stable.as_str(), 90)]).unwrap();
    let err = broken.set_traffic(&split).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. })
            && err.to_string().contains("BackendNotFound")
            && err.to_string().contains("web-green-svc"),
        "{err}"
    );

    // No gateway controller: the new generation is never accepted.
    let (sim, clock, canary) = by_route().await;
    sim.without_gateway_controller();
    let b = canary.deploy(&dark("1.1.0")).await.unwrap();
    let split = TrafficSplit::new([(b.id.as_str(), 10), (stable.as_str(), 90)]).unwrap();
    let start = clock.now();
    let err = canary.set_traffic(&split).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. })
            && err.to_string().contains("gateway controller"),
        "{err}"
    );
    assert!(clock.now() - start >= chrono::Duration::seconds(30));
}

#[tokio::test]
async fn requests_follow_the_split_to_each_slot() {
    let (sim, clock, canary) = by_route().await;
    sim.send_traffic("web", 100.0);
    sim.failing_from_share("1.1.0", 25, 0.5);
    let stable = canary.current().await.unwrap();
    let stable = stable.primary_release().unwrap().to_string();
    let b = canary.deploy(&dark("1.1.0")).await.unwrap();
    let split = TrafficSplit::new([(b.id.as_str(), 10), (stable.as_str(), 90)]).unwrap();
    canary.set_traffic(&split).await.unwrap();
    let from = clock.now();
    clock.advance(Duration::from_secs(60));
    let to = clock.now();
    assert_eq!(sim.requests_served("web-green", from, to), (600, 0));
    assert_eq!(sim.requests_served("web-blue", from, to), (5400, 0));
    // At 25 % the bug shows.
    let split = TrafficSplit::new([(b.id.as_str(), 25), (stable.as_str(), 75)]).unwrap();
    canary.set_traffic(&split).await.unwrap();
    let from = clock.now();
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        sim.requests_served("web-green", from, clock.now()),
        (1500, 750)
    );
    assert!(matches!(
        canary.traffic(),
        CanaryTraffic::HttpRoute { rule: 0, .. }
    ));
}

proptest! {
    /// Any shares and any total: no panic; an exact answer adds up to the total when the
    /// shares add up to 100, and every refusal says why.
    #[test]
    fn replicas_for_any_split(a in 0u8..=100, total in 0u32..=u32::MAX) {
        let b = 100 - a;
        match replicas_for(&[a, b], total) {
            Ok(n) => {
                prop_assert_eq!(u64::from(n[0]) + u64::from(n[1]), u64::from(total));
                prop_assert_eq!(u64::from(n[0]) * 100, u64::from(a) * u64::from(total));
            }
            Err(e) => prop_assert!(e.to_string().contains("steps of")),
        }
    }

    /// Any counts (ready pods, route weights up to u64::MAX): whole percentages that sum to
    /// 100 over the non-zero ones, and none for a zero count.
    #[test]
    fn shares_of_any_counts(counts in proptest::collection::vec(any::<u64>(), 0..6)) {
        let named: Vec<(String, u64)> =
            counts.iter().enumerate().map(|(i, n)| (format!("r{i}"), *n)).collect();
        let out = ops_kubernetes::deployment::shares(&named);
        if counts.iter().all(|n| *n == 0) {
            prop_assert!(out.is_empty());
        } else {
            prop_assert_eq!(out.iter().map(|a| u32::from(a.percent)).sum::<u32>(), 100);
            for a in &out {
                let i: usize = a.release[1..].parse().unwrap();
                prop_assert!(counts[i] > 0);
            }
        }
    }

    /// Any JSON as an HTTPRoute reply: decoded or refused, and a decoded one reads its
    /// weights and readiness without panicking.
    #[test]
    fn any_route_reply_reads_without_panic(
        weights in proptest::collection::vec(proptest::option::of(any::<i64>()), 0..5),
        generation in proptest::option::of(any::<i64>()),
        observed in proptest::option::of(any::<i64>()),
        status in "(True|False|Unknown|)",
    ) {
        let refs: Vec<serde_json::Value> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| serde_json::json!({"name": format!("s{}", i % 2), "weight": w}))
            .collect();
        let reply = serde_json::json!({
            "metadata": {"generation": generation},
            "spec": {"rules": [{"backendRefs": refs}]},
            "status": {"parents": [{"conditions": [
                {"type": "Accepted", "status": status, "observedGeneration": observed},
                {"type": "ResolvedRefs", "status": status}]}]}
        });
        if let Ok(route) = serde_json::from_value::<ops_kubernetes::HttpRoute>(reply) {
            let w = route.weights(0, "default");
            prop_assert!(w.len() <= 2);
            let _ = route.readiness();
            let _ = route.weights(7, "default");
        }
    }
}
