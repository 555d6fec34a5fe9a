//! The deployer suite and `kubectl rollout` behaviour against the Kubernetes simulator, with its
//! faults: stalled rollouts (crash loop, OOM kill, image pull), conflicts, RBAC, throttling,
//! expired list tokens, cut bodies.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, ManualClock};
use ops_core::contracts::*;
use ops_core::engine::{Mode, Runner};
use ops_core::runbooks::Procedure;
use ops_core::sim::Simulator;
use ops_core::testkit;
use ops_kubernetes::recover::{Recovery, Remedy};
use ops_kubernetes::rollout::Rollout;
use ops_kubernetes::sim::{Fault, KubeSim, SIM_TOKEN};
use ops_kubernetes::{
    KubeDeployment, KubeHealth, KubeLogs, KubeMetrics, KubeSecrets, RecoverConfig,
    RecoverDeployment,
};

const IMAGE: &str = "registry.local/event-stream";

fn t0() -> DateTime<Utc> {
    "2026-12-01T09:00:00Z".parse().unwrap()
}

async fn sim() -> (KubeSim, Arc<ManualClock>, KubeDeployment) {
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let sim = KubeSim::builder()
        .clock(clock.clone())
        .pod_ready_after(Duration::from_secs(5))
        .start()
        .await;
    sim.add_deployment("event-stream", &format!("{IMAGE}:1.0.0"), 3);
    let d = sim
        .deployment("event-stream")
        .unwrap()
        .repository(IMAGE)
        .polling(Duration::from_secs(2));
    (sim, clock, d)
}

fn all(version: &str) -> DeployRequest {
    DeployRequest {
        traffic: InitialTraffic::All,
        deadline: Duration::from_secs(120),
        ..DeployRequest::new(version)
    }
}

#[tokio::test]
async fn a_deployment_passes_the_deployer_suite() {
    let (sim, _, d) = sim().await;
    sim.add_hpa("event-stream", 2, 6);
    testkit::deployer(
        &d,
        &testkit::DeployerFixture {
            version_a: "1.1.0".into(),
            version_b: "1.2.0".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_deploy_rolls_out_and_undo_brings_the_previous_revision_back() {
    let (sim, _, d) = sim().await;
    let first = d
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string();
    let r = d.deploy(&all("1.1.0")).await.unwrap();
    assert_eq!(r.version, "1.1.0");
    assert_eq!(r.labels["revision"], "2");
    let state = d.current().await.unwrap();
    assert_eq!(
        state.traffic,
        vec![TrafficAllocation {
            release: r.id.clone(),
            percent: 100
        }]
    );
    assert_eq!(
        state.etag,
        sim.get_deployment("event-stream")
            .unwrap()
            .metadata
            .resource_version
    );
    assert_eq!(d.rollout_status().await.unwrap().rollout, Rollout::Complete);

    // `kubectl rollout undo`: the first ReplicaSet again, now revision 3.
    let back = d.undo(None, Duration::from_secs(120)).await.unwrap();
    assert_eq!(back.id, first);
    assert_eq!(back.labels["revision"], "3");
    assert_eq!(
        d.current().await.unwrap().primary_release(),
        Some(first.as_str())
    );
    let releases = d.releases().await.unwrap();
    assert_eq!(
        releases.len(),
        2,
        "undo makes no new ReplicaSet: {releases:?}"
    );
    // `--to-revision` of a revision that does not exist.
    let e = d.undo(Some(42), Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotFound { .. }), "{e}");

    // `kubectl rollout restart`: a new revision of the same version.
    let restarted = d.restart(Duration::from_secs(120)).await.unwrap();
    assert_ne!(restarted.id, first);
    assert_eq!(restarted.version, format!("{IMAGE}:1.0.0"));
    let image = |name: &str| {
        sim.get_deployment(name)
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(image("event-stream"), format!("{IMAGE}:1.0.0"));
}

/// Each stalled rollout fails naming the new pods' reason, and moving the traffic back to the
/// release before it (the automatic rollback) restores service.
#[tokio::test]
async fn stalled_rollouts_name_their_reason_and_roll_back() {
    for (tag, reason) in [
        ("1.1.0-crash-loop", "CrashLoopBackOff"),
        ("1.1.0-oom", "OOMKilled"),
        ("1.1.0-image-pull", "ImagePullBackOff"),
    ] {
        let (_sim, clock, d) = sim().await;
        let stable = d
            .current()
            .await
            .unwrap()
            .primary_release()
            .unwrap()
            .to_string();
        let started = clock.now();
        let e = d.deploy(&all(tag)).await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::VerificationFailed { .. }),
            "{tag}: {e}"
        );
        assert!(e.to_string().contains(reason), "{tag}: {e}");
        assert!(
            clock.now() - started < chrono::Duration::seconds(60),
            "{tag}: a back-off fails at once, not at the deadline"
        );
        // The old pods still serve while the new ones fail.
        let state = d.current().await.unwrap();
        assert_eq!(state.primary_release(), Some(stable.as_str()), "{tag}");
        let failed = d
            .releases()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.version == tag)
            .unwrap();
        assert_eq!(failed.state, ReleaseState::Failed, "{tag}");
        let back = d
            .set_traffic(&TrafficSplit::all_to(stable.as_str()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            back.traffic,
            vec![TrafficAllocation {
                release: stable.clone(),
                percent: 100
            }],
            "{tag}"
        );
        assert_eq!(
            d.rollout_status().await.unwrap().rollout,
            Rollout::Complete,
            "{tag}"
        );
    }
}

#[tokio::test]
async fn waiting_out_a_back_off_ends_at_the_progress_deadline() {
    let (_sim, _, d) = sim().await;
    let d = d.wait_out_back_off(true);
    let e = d
        .deploy(&DeployRequest {
            deadline: Duration::from_secs(900),
            ..all("1.1.0-crash-loop")
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("exceeded its progress deadline"),
        "{e}"
    );
    assert!(e.to_string().contains("CrashLoopBackOff"), "{e}");
}

#[tokio::test]
async fn conflicts_of_status_are_retried_and_someone_elses_edit_is_not_overwritten() {
    let (sim, _, d) = sim().await;
    // A 409 with nothing changed but status: written again.
    sim.inject(
        Some("PUT"),
        "/deployments/event-stream",
        1,
        Fault::Status {
            status: 409,
            retry_after: None,
        },
    );
    d.deploy(&all("1.1.0")).await.unwrap();
    // Another operator scales between our read and our write: a Conflict, and their edit stays.
    sim.edit_replicas_before_next_write("event-stream", 5);
    let e = d.deploy(&all("1.2.0")).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Conflict { .. }), "{e}");
    let now = sim.get_deployment("event-stream").unwrap();
    assert_eq!(now.spec.as_ref().unwrap().replicas, Some(5));
    assert!(
        now.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref()
            .unwrap()
            .ends_with("1.1.0")
    );
}

#[tokio::test]
async fn rbac_throttling_expired_lists_and_cut_bodies_are_typed() {
    let (sim, clock, d) = sim().await;
    sim.inject(
        Some("PUT"),
        "/deployments/",
        1,
        Fault::Status {
            status: 403,
            retry_after: None,
        },
    );
    let e = d.deploy(&all("1.1.0")).await.unwrap_err();
    match e.kind() {
        ErrorKind::Forbidden { detail } => {
            assert!(
                detail.contains("cannot update resource \"deployments\""),
                "{detail}"
            )
        }
        other => panic!("{other:?}"),
    }
    // API priority and fairness: 429 with Retry-After, waited on the clock and retried.
    sim.inject(
        Some("GET"),
        "/deployments/",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(3),
        },
    );
    let before = clock.now();
    d.current().await.unwrap();
    assert!(
        clock.now() - before >= chrono::Duration::seconds(3),
        "Retry-After is honoured"
    );
    // A body that is not the JSON it claims is a typed decode error, never a guess.
    sim.inject(Some("GET"), "/deployments/", 1, Fault::TruncatedJson);
    let e = d.current().await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{e}");
    // An expired continue token restarts the list: every ReplicaSet once.
    d.deploy(&all("1.1.0")).await.unwrap();
    d.deploy(&all("1.2.0")).await.unwrap();
    let paged = KubeDeployment::new(sim.client().unwrap().page_size(1), "event-stream").unwrap();
    sim.expire_continue_tokens(1);
    let releases = paged.releases().await.unwrap();
    assert_eq!(releases.len(), 3, "{releases:?}");
    sim.expire_continue_tokens(5);
    let e = paged.releases().await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Conflict { .. }), "{e}");
}

#[tokio::test]
async fn a_dry_run_deploy_is_checked_by_the_server_and_changes_nothing() {
    let (sim, _, d) = sim().await;
    let before = sim.get_deployment("event-stream").unwrap();
    let mutations = sim.mutations();
    let v = d
        .validate(&DeployAction::Deploy(all("1.1.0")))
        .await
        .unwrap();
    assert_eq!(v, Validation::ValidatedByProvider);
    assert_eq!(sim.mutations(), mutations);
    assert_eq!(
        sim.get_deployment("event-stream")
            .unwrap()
            .metadata
            .resource_version,
        before.metadata.resource_version
    );
    assert!(sim.requests().iter().any(|r| r.contains("dryRun=All")));
}

#[tokio::test]
async fn scale_sets_replicas_resources_and_stop_restores() {
    let (sim, _, d) = sim().await;
    let state = d
        .scale(&ScaleSpec {
            min_instances: Some(5),
            max_instances: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(state.scale.as_ref().unwrap().max_instances, Some(5));
    assert_eq!(sim.pod_names("event-stream").len(), 5);
    // "If OOM: scale up": more memory is a new revision.
    let state = d
        .scale(&ScaleSpec {
            memory: Some("512Mi".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(state.scale.unwrap().memory.as_deref(), Some("512Mi"));
    // A range needs an autoscaler.
    let e = d
        .scale(&ScaleSpec {
            min_instances: Some(2),
            max_instances: Some(8),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
    let stopped = d.stop_serving().await.unwrap();
    assert!(!stopped.serving && sim.pod_names("event-stream").is_empty());
    let latest = d.releases().await.unwrap()[0].id.clone();
    let resumed = d
        .set_traffic(&TrafficSplit::all_to(latest.as_str()).unwrap())
        .await
        .unwrap();
    assert!(resumed.serving);
    assert_eq!(
        sim.pod_names("event-stream").len(),
        5,
        "replicas before the stop come back"
    );
    for bad in ["Event-Stream", "a/b", "../x", ""] {
        let e = KubeDeployment::new(sim.client().unwrap(), bad).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{bad}");
    }
}

#[tokio::test]
async fn health_reads_replicas_rollout_and_pod_reasons() {
    let (sim, _, d) = sim().await;
    let healthy = testkit::health_probe(&KubeHealth::new(d.clone()), HealthStatus::Healthy).await;
    assert!(
        healthy
            .checks
            .iter()
            .any(|c| c.detail == "3 of 3 replicas available"),
        "{healthy:?}"
    );
    // A failed rollout over serving pods: degraded, naming the new pods' reason.
    let _ = d.deploy(&all("1.1.0-crash-loop")).await.unwrap_err();
    let degraded = testkit::health_probe(&KubeHealth::new(d.clone()), HealthStatus::Degraded).await;
    assert!(
        degraded
            .checks
            .iter()
            .any(|c| c.detail.contains("CrashLoopBackOff")),
        "{degraded:?}"
    );
    // Nothing serving, every pod OOM-killed: unhealthy, and the report says OOMKilled.
    sim.add_deployment("worker", "registry.local/worker:2.0-oom", 2);
    let worker = sim.deployment("worker").unwrap();
    let down = testkit::health_probe(&KubeHealth::new(worker), HealthStatus::Unhealthy).await;
    assert!(
        down.checks.iter().any(|c| c.detail.contains("OOMKilled")),
        "{down:?}"
    );
}

#[tokio::test]
async fn pod_logs_pass_the_log_source_suite() {
    let (sim, clock, _) = sim().await;
    sim.add_deployment("api", "registry.local/api:3.1.0", 1);
    let t = |s: i64| t0() + chrono::Duration::seconds(s);
    for (s, line) in [
        (1, "ERROR redis: connect ECONNREFUSED 10.0.0.12:6379"),
        (2, r#"{"level":40,"msg":"retrying redis in 2s"}"#),
        (3, "INFO redis connected"),
    ] {
        clock.sleep(Duration::from_secs(1)).await;
        assert_eq!(clock.now(), t(s));
        sim.log_line("api", line);
    }
    let rs = KubeDeployment::new(sim.client().unwrap(), "api")
        .unwrap()
        .releases()
        .await
        .unwrap()[0]
        .id
        .clone();
    let entry = |at, severity, message: &str| LogEntry {
        timestamp: at,
        severity,
        message: message.into(),
        payload: None,
        release: Some(rs.clone()),
        labels: Default::default(),
    };
    let expected = vec![
        entry(
            t(-5) + chrono::Duration::milliseconds(1),
            LogSeverity::Info,
            "INFO starting registry.local/api:3.1.0",
        ),
        entry(t(0), LogSeverity::Info, "INFO listening on :8080"),
        entry(
            t(1),
            LogSeverity::Error,
            "ERROR redis: connect ECONNREFUSED 10.0.0.12:6379",
        ),
        entry(t(2), LogSeverity::Warning, "retrying redis in 2s"),
        entry(t(3), LogSeverity::Info, "INFO redis connected"),
    ];
    let window = TimeWindow::new(t(-3600), t(4)).unwrap();
    let logs = KubeLogs::new(sim.client().unwrap(), "app=api").unwrap();
    testkit::log_source(&logs, &testkit::LogFixture { window, expected }).await;
    let e = KubeLogs::new(sim.client().unwrap(), "app=api&x=y").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
}

/// The seed's `kubectl logs -l app=event-stream --tail=100 | grep ERROR`, on a crash loop: the
/// errors of the new pods, their previous instances included; a pod whose image cannot be
/// pulled has no log and is skipped.
#[tokio::test]
async fn error_lines_of_crashing_pods_are_found() {
    let (_sim, clock, d) = sim().await;
    let start = clock.now();
    let _ = d.deploy(&all("1.1.0-crash-loop")).await.unwrap_err();
    let logs = KubeLogs::new(d.client().clone(), "app=event-stream")
        .unwrap()
        .tail_lines(100);
    let window = TimeWindow::new(
        start - chrono::Duration::minutes(5),
        clock.now() + chrono::Duration::seconds(1),
    )
    .unwrap();
    let errors = logs
        .query_page(&LogQuery::new(window).min_severity(LogSeverity::Error))
        .await
        .unwrap();
    assert!(!errors.entries.is_empty());
    assert!(
        errors
            .entries
            .iter()
            .all(|e| e.severity >= LogSeverity::Error)
    );
    assert!(
        errors
            .entries
            .iter()
            .any(|e| e.message.contains("ECONNREFUSED")),
        "{errors:?}"
    );
    let bad = d.releases().await.unwrap()[0].id.clone();
    assert!(
        errors
            .entries
            .iter()
            .all(|e| e.release.as_deref() == Some(bad.as_str()))
    );
    assert!(
        errors
            .entries
            .iter()
            .any(|e| e.labels["pod"].starts_with(&bad))
    );
    // Pods that never started: no log, no error.
    let _ = d
        .set_traffic(&TrafficSplit::all_to(d.releases().await.unwrap()[1].id.as_str()).unwrap())
        .await
        .unwrap();
    let _ = d.deploy(&all("1.2.0-image-pull")).await.unwrap_err();
    logs.query_page(&LogQuery::new(window)).await.unwrap();
}

#[tokio::test]
async fn secrets_pass_the_secret_store_suite_and_never_leak() {
    let (sim, _, d) = sim().await;
    sim.put_secret(
        "redis",
        &[("password", "s3cr3t-redis-pass"), ("username", "default")],
    );
    sim.put_secret("api-key", &[("key", "k-1234567890")]);
    let store = KubeSecrets::new(sim.client().unwrap());
    testkit::secret_store(
        &store,
        &testkit::SecretFixture {
            existing: vec![
                (
                    "redis/password".into(),
                    SecretValue::from("s3cr3t-redis-pass"),
                ),
                ("api-key/key".into(), SecretValue::from("k-1234567890")),
            ],
            scratch: "scratch/value".into(),
            missing: "no-such-secret/x".into(),
        },
    )
    .await;
    // "Verify Redis credentials in secrets", then a rotation: the other key is kept, and the
    // pods are rolled to read the new value.
    let read = store
        .read("redis/password", &VersionRef::Latest)
        .await
        .unwrap();
    assert_eq!(read.value.expose_str().unwrap(), "s3cr3t-redis-pass");
    store
        .add_version("redis/password", &SecretValue::from("n3w-redis-pass"))
        .await
        .unwrap();
    assert_eq!(
        sim.secret_value("redis", "password").unwrap(),
        b"n3w-redis-pass"
    );
    assert_eq!(sim.secret_value("redis", "username").unwrap(), b"default");
    let before = d.releases().await.unwrap().len();
    d.restart(Duration::from_secs(120)).await.unwrap();
    assert_eq!(d.releases().await.unwrap().len(), before + 1);
    // A Secret with one key may be named alone; with several, the key is needed.
    let only = store.read("api-key", &VersionRef::Latest).await.unwrap();
    assert_eq!(only.value.expose_str().unwrap(), "k-1234567890");
    let e = store.read("redis", &VersionRef::Latest).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
    assert!(!e.to_string().contains("n3w"), "{e}");
    // A concurrent write between read and write is a conflict, not a lost update.
    sim.inject(
        Some("PUT"),
        "/secrets/redis",
        1,
        Fault::Status {
            status: 409,
            retry_after: None,
        },
    );
    let e = store
        .add_version("redis/password", &SecretValue::from("third-pass"))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Conflict { .. }), "{e}");
    assert!(!e.to_string().contains("third-pass"), "{e}");
    let shown = format!("{store:?}");
    assert!(
        !shown.contains("n3w-redis-pass") && !shown.contains(SIM_TOKEN),
        "{shown}"
    );
}

async fn recover(
    d: &KubeDeployment,
    clock: &Arc<ManualClock>,
    mode: Mode,
) -> ops_core::runbooks::Finished<Recovery> {
    let logs = KubeLogs::new(d.client().clone(), "app=event-stream").unwrap();
    RecoverDeployment::new(d.clone(), logs, RecoverConfig::default())
        .run(&Runner::new().with_clock(clock.clone()), mode)
        .await
        .unwrap()
}

fn remedy(r: &Recovery, step: &str) -> Remedy {
    r.remedies
        .iter()
        .find(|(s, _)| s == step)
        .map(|(_, r)| r.clone())
        .unwrap()
}

/// The seed's Event Stream Failure procedure on each failure it names.
#[tokio::test]
async fn the_event_stream_failure_procedure_takes_the_remedy_each_failure_needs() {
    // Healthy: nothing to do.
    let (_sim, clock, d) = sim().await;
    let done = recover(&d, &clock, Mode::Execute).await;
    assert!(done.is_success(), "{:?}", done.report);
    let r = done.summary.unwrap();
    assert!(
        r.remedies.iter().all(|(_, x)| *x == Remedy::NotNeeded),
        "{r:?}"
    );

    // OOM kills: more memory, the same release, no rollback.
    let (oom_sim, clock, d) = sim().await;
    let _ = d.deploy(&all("1.1.0-oom")).await.unwrap_err();
    let planned = recover(&d, &clock, Mode::DryRun).await;
    assert!(planned.is_success(), "{:?}", planned.report);
    assert_eq!(
        oom_sim
            .get_deployment("event-stream")
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()["memory"]
            .0,
        "256Mi",
        "a dry run changes nothing"
    );
    let done = recover(&d, &clock, Mode::Execute).await;
    assert!(done.is_success(), "{:?}", done.report);
    let r = done.summary.unwrap();
    assert!(r.diagnosis.oom_killed, "{r:?}");
    assert_eq!(
        remedy(&r, "more-memory"),
        Remedy::Done("memory limit raised to 512Mi".into())
    );
    assert_eq!(remedy(&r, "undo"), Remedy::NotNeeded);
    assert_eq!(
        d.current().await.unwrap().scale.unwrap().memory.as_deref(),
        Some("512Mi"),
        "request and limit are raised"
    );
    assert!(
        d.releases().await.unwrap()[0]
            .version
            .ends_with("1.1.0-oom")
    );

    // A crash loop or an image that cannot be pulled: a restart does not help, undo does.
    for tag in ["1.1.0-crash-loop", "1.1.0-image-pull"] {
        let (_sim, clock, d) = sim().await;
        let _ = d.deploy(&all(tag)).await.unwrap_err();
        let done = recover(&d, &clock, Mode::Execute).await;
        assert!(done.is_success(), "{tag}: {:?}", done.report);
        let r = done.summary.unwrap();
        assert!(!r.diagnosis.back_off.is_empty(), "{tag}: {r:?}");
        assert!(
            matches!(remedy(&r, "restart"), Remedy::Failed(_)),
            "{tag}: {r:?}"
        );
        assert!(
            matches!(remedy(&r, "undo"), Remedy::Done(ref m) if m.contains("1.0.0")),
            "{tag}: {r:?}"
        );
        assert_eq!(d.rollout_status().await.unwrap().rollout, Rollout::Complete);
    }
    let (_sim, clock, d) = sim().await;
    let _ = d.deploy(&all("1.1.0-crash-loop")).await.unwrap_err();
    let done = recover(&d, &clock, Mode::Execute).await;
    assert!(
        done.summary
            .unwrap()
            .diagnosis
            .first_errors
            .iter()
            .any(|e| e.contains("ECONNREFUSED"))
    );
}

#[tokio::test]
async fn a_service_down_with_nothing_to_roll_back_to_fails_the_run() {
    let (sim, clock, _) = sim().await;
    sim.add_deployment("worker", "registry.local/worker:1.0-crash-loop", 2);
    let d = sim
        .deployment("worker")
        .unwrap()
        .polling(Duration::from_secs(2));
    let logs = KubeLogs::new(d.client().clone(), "app=worker").unwrap();
    let done = RecoverDeployment::new(d, logs, RecoverConfig::default())
        .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
        .await
        .unwrap();
    assert!(!done.is_success());
    let r = done.summary.unwrap();
    assert!(r.diagnosis.down && r.diagnosis.error_lines > 0, "{r:?}");
}

/// `kubectl top pods` as utilisation, and the right-size runbook on it: memory near its limit
/// gets the next memory step, and utilisation after the change is under the target.
#[tokio::test]
async fn utilisation_from_metrics_server_drives_right_sizing() {
    let (sim, clock, d) = sim().await;
    sim.set_usage("event-stream", "200m", "128Mi");
    let metrics = KubeMetrics::new(d.clone());
    let window = TimeWindow::ending_at(clock.now(), Duration::from_secs(3600)).unwrap();
    let read = |metric| MetricQuery {
        metric,
        window,
        release: None,
        min_samples: 3,
    };
    let value = |r: MetricReading| match r {
        MetricReading::Value { value, samples: 3 } => value,
        other => panic!("{other:?}"),
    };
    let cpu = value(metrics.read(&read(Metric::CpuUtilisation)).await.unwrap());
    assert!((cpu - 0.8).abs() < 1e-9, "{cpu}");
    let memory = value(
        metrics
            .read(&read(Metric::MemoryUtilisation))
            .await
            .unwrap(),
    );
    assert!((memory - 0.5).abs() < 1e-9, "{memory}");
    let few = metrics
        .read(&MetricQuery {
            min_samples: 4,
            ..read(Metric::CpuUtilisation)
        })
        .await
        .unwrap();
    assert!(
        matches!(few, MetricReading::InsufficientData { samples: 3, .. }),
        "{few:?}"
    );
    let e = metrics.read(&read(Metric::ErrorRatio)).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unsupported { .. }), "{e}");

    // Memory at 94 % of its limit: the right-size runbook takes the next step, 512Mi.
    sim.set_usage("event-stream", "100m", "240Mi");
    let config = ops_core::runbooks::RightSizeConfig {
        memory_steps: vec!["256Mi".into(), "512Mi".into(), "1Gi".into()],
        ..Default::default()
    };
    let done =
        ops_core::runbooks::RightSize::new(Arc::new(d.clone()), Arc::new(metrics.clone()), config)
            .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
            .await
            .unwrap();
    assert!(done.is_success(), "{:?}", done.report);
    assert_eq!(
        d.current().await.unwrap().scale.unwrap().memory.as_deref(),
        Some("512Mi")
    );

    sim.without_metrics_server();
    let e = metrics
        .read(&read(Metric::CpuUtilisation))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unsupported { .. }), "{e}");
}

#[test]
fn the_monkeytown_preset_carries_seed_004s_recovery_numbers() {
    let c: RecoverConfig = ops_core::presets::Preset::section("monkeytown", "").unwrap();
    assert_eq!(c.log_lines, 100, "kubectl logs --tail=100");
    assert_eq!(
        c.rollout_deadline,
        Duration::from_secs(300),
        "RTO 5 minutes"
    );
    assert_eq!(c.required_secrets, ["redis/url"]);
    let bad = ops_core::presets::Preset::section::<RecoverConfig>(
        "monkeytown",
        "[providers.kubernetes.recover]\nmemory_factor = 1",
    )
    .unwrap_err();
    assert!(bad.to_string().contains("memory_factor"), "{bad}");
}

#[tokio::test]
async fn a_rotation_writes_the_secret_then_rolls_the_deployment_that_reads_it() {
    use ops_core::runbooks::{GenerateSecret, RotateConfig, RotateSecret};
    let (sim, clock, d) = sim().await;
    sim.put_secret(
        "redis",
        &[("password", "old-pass"), ("username", "default")],
    );
    let serving = d.current().await.unwrap();
    let serving = serving.primary_release().unwrap().to_string();
    let generate: GenerateSecret =
        Arc::new(|| Box::pin(async { Ok(SecretValue::from("rotated-pass")) }));
    let report = RotateSecret::new(
        Arc::new(KubeSecrets::new(sim.client().unwrap())),
        "redis/password",
        generate,
        RotateConfig::default(),
    )
    .consumer(Arc::new(d.clone()))
    .run(&Runner::new().with_clock(clock.clone()), Mode::Execute)
    .await
    .unwrap();
    assert!(report.is_success(), "{}", report.summary());
    assert_eq!(
        sim.secret_value("redis", "password").unwrap(),
        b"rotated-pass"
    );
    assert_eq!(sim.secret_value("redis", "username").unwrap(), b"default");
    // New pods read the new value: a new ReplicaSet of the same version serves.
    let now = d.current().await.unwrap();
    let now = now.primary_release().unwrap().to_string();
    assert_ne!(now, serving);
    let releases = d.releases().await.unwrap();
    let version = |id: &str| {
        releases
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.version.clone())
    };
    assert_eq!(version(&now), version(&serving));
    assert!(!format!("{report:?}").contains("rotated-pass"));
}
