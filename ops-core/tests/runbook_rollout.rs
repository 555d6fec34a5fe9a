//! Progressive rollouts against an in-memory service whose metrics follow its traffic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::memory::{MemoryDeployer, MemoryMetricsSource};
use ops_core::runbooks::*;

fn start() -> DateTime<Utc> {
    "2026-08-01T10:00:00Z".parse().unwrap()
}

struct World {
    deployer: Arc<MemoryDeployer>,
    metrics: Arc<MemoryMetricsSource>,
    clock: Arc<SimulatedClock>,
}

/// A service with a stable release and simulated traffic: every minute 1,000 requests split by
/// the live traffic; the canary (api-00002) fails `canary_errors` of its requests once its
/// share reaches `bad_from` %, and answers in `canary_latency_ms`.
async fn world(canary_errors: f64, bad_from: u8, canary_latency_ms: f64, traffic: bool) -> World {
    let clock = Arc::new(SimulatedClock::starting_at(start()));
    let deployer = Arc::new(MemoryDeployer::new("api").with_clock(clock.clone()));
    deployer
        .deploy(&DeployRequest::new("api:1.0"))
        .await
        .unwrap();
    let metrics = Arc::new(MemoryMetricsSource::new("api"));
    if traffic {
        let (d, m, c) = (deployer.clone(), metrics.clone(), clock.clone());
        tokio::spawn(async move {
            for _ in 0..24 * 60 {
                SystemClock.sleep(Duration::from_secs(60)).await;
                let state = d.current().await.unwrap();
                for t in &state.traffic {
                    let n = 1000 * t.percent as usize / 100;
                    let canary = t.release == "api-00002";
                    let bad = canary && t.percent >= bad_from;
                    for i in 0..n {
                        let fail = bad && (i as f64) < canary_errors * n as f64;
                        let latency = if canary { canary_latency_ms } else { 80.0 };
                        m.record_request(
                            c.now(),
                            Some(&t.release),
                            if fail { 503 } else { 200 },
                            latency,
                        );
                    }
                }
            }
        });
    }
    World {
        deployer,
        metrics,
        clock,
    }
}

fn runner(w: &World) -> Runner {
    Runner::new().with_clock(w.clock.clone())
}

fn rollout(w: &World, config: RolloutConfig) -> Rollout {
    Rollout::new("api:1.1", w.deployer.clone(), w.metrics.clone(), config)
}

async fn primary(w: &World) -> String {
    w.deployer
        .current()
        .await
        .unwrap()
        .primary_release()
        .unwrap()
        .to_string()
}

fn status(report: &RunReport, step: &str) -> StepStatus {
    report
        .steps
        .iter()
        .find(|s| s.name == step)
        .unwrap_or_else(|| panic!("no step {step}"))
        .status
}

#[tokio::test(start_paused = true)]
async fn a_healthy_canary_goes_through_every_stage() {
    let w = world(0.0, 0, 120.0, true).await;
    let t0 = SystemClock.instant();
    let report = rollout(&w, RolloutConfig::default())
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.summary()
    );
    assert_eq!(primary(&w).await, "api-00002");
    assert_eq!(
        SystemClock.instant() - t0,
        Duration::from_secs((15 + 30 + 60) * 60),
        "bakes 15/30/60 min"
    );
    for p in [1, 5, 25] {
        let a: Analysis = report.output(&format!("analyze-{p}")).unwrap();
        assert_eq!(a.verdict, Verdict::Pass, "{p}: {a:?}");
        assert_eq!(
            status(&report, &format!("confirm-{p}")),
            StepStatus::Skipped,
            "no human needed"
        );
    }
    let names = report
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>();
    assert!(
        names.starts_with(&[
            "stable",
            "deploy",
            "traffic-1",
            "bake-1",
            "analyze-1",
            "confirm-1",
            "traffic-5"
        ]),
        "{names:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_canary_is_aborted_at_the_first_stage() {
    let w = world(0.2, 0, 120.0, true).await;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    let mut n = MockNotifier::new();
    n.expect_name().return_const("n".to_string());
    n.expect_send().returning(move |note| {
        s.lock().unwrap().push(note.title.clone());
        Ok(Receipt {
            notifier: "n".into(),
            id: None,
            dedup_key: None,
        })
    });
    let t0 = SystemClock.instant();
    let report = rollout(&w, RolloutConfig::default())
        .notifier(Arc::new(n))
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    // The watched bake aborts at the look that finds it, not after the 15-minute bake.
    assert_eq!(status(&report, "bake-1"), StepStatus::Failed);
    assert!(
        SystemClock.instant() - t0 <= Duration::from_secs(3 * 60),
        "aborted within three looks: {:?}",
        SystemClock.instant() - t0
    );
    assert_eq!(status(&report, "deploy"), StepStatus::Compensated);
    assert_eq!(
        primary(&w).await,
        "api-00001",
        "all traffic back on the stable release"
    );
    assert_eq!(w.deployer.current().await.unwrap().traffic.len(), 1);
    let msg = &report.error.as_ref().unwrap().message;
    assert!(
        msg.contains("analysis at 1 %") && msg.contains("errors: canary") && msg.contains("abort"),
        "{msg}"
    );
    assert!(
        sent.lock()
            .unwrap()
            .last()
            .unwrap()
            .contains("aborted; all traffic is back on api-00001")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_look_can_pause_for_a_human_who_stops_it() {
    let w = world(0.2, 0, 120.0, true).await;
    let config = RolloutConfig {
        on_failure: OnFailure::Pause,
        ..RolloutConfig::default()
    };
    let t0 = SystemClock.instant();
    let report = rollout(&w, config)
        .run(
            &runner(&w).with_approver(Arc::new(DenyAll::default())),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    // The watch ended at the failing look and the human was asked at once.
    assert_eq!(status(&report, "bake-1"), StepStatus::Succeeded);
    let a: Analysis = report.output("analyze-1").unwrap();
    assert_eq!((a.verdict, a.needs_human), (Verdict::Fail, true));
    assert_eq!(status(&report, "confirm-1"), StepStatus::Failed);
    assert!(SystemClock.instant() - t0 <= Duration::from_secs(3 * 60));
    assert_eq!(primary(&w).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn an_error_rate_that_rises_at_25_percent_rolls_back_by_itself() {
    let w = world(0.1, 25, 120.0, true).await;
    let t0 = SystemClock.instant();
    let report = rollout(&w, RolloutConfig::default())
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    let at_5 = report.output::<Analysis>("analyze-5").unwrap();
    assert_eq!(at_5.verdict, Verdict::Pass);
    // The judge carries its evidence from stage to stage.
    let carried = at_5.sequential.expect("a watched stage");
    assert!(carried.last.number >= 45, "{:?}", carried.last);
    assert_eq!(status(&report, "bake-25"), StepStatus::Failed);
    let into_25 = SystemClock.instant() - t0 - Duration::from_secs(45 * 60);
    assert!(
        into_25 <= Duration::from_secs(3 * 60),
        "aborted within 3 minutes of the 25 % stage, not after its hour: {into_25:?}"
    );
    // Every look is in the evidence, with the counts and the bound.
    let look = report
        .evidence
        .iter()
        .find(|e| e.step == "bake-25" && e.value["decision"] == "fail")
        .expect("the failing look is in the evidence");
    assert!(look.value["tests"][0]["log10_bound"].as_f64().unwrap() > 2.0);
    assert_eq!(primary(&w).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn no_traffic_is_inconclusive_never_a_pass() {
    let w = world(0.0, 0, 120.0, false).await;
    let t0 = SystemClock.instant();
    let report = rollout(&w, RolloutConfig::default())
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert!(
        report
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("too little traffic to judge after 3 extra waits")
    );
    assert_eq!(
        SystemClock.instant() - t0,
        Duration::from_secs(15 * 60 + 3 * 5 * 60),
        "bake, then three 5-minute waits"
    );
    assert_eq!(primary(&w).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn an_inconclusive_stage_can_pause_for_a_human() {
    let config = RolloutConfig {
        on_inconclusive: OnInconclusive::Pause,
        ..RolloutConfig::default()
    };
    // Approved at every stage: the rollout completes on the human's word.
    let w = world(0.0, 0, 120.0, false).await;
    let mut yes = MockApprover::new();
    yes.expect_decide()
        .withf(|r| r.gate.starts_with("confirm-"))
        .times(3)
        .returning(|_| {
            Ok(ApprovalDecision::Approved {
                by: "dana".into(),
                comment: None,
            })
        });
    let report = rollout(&w, config.clone())
        .run(&runner(&w).with_approver(Arc::new(yes)), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(report.approvals.len(), 3);
    // Denied at the first: aborted.
    let w = world(0.0, 0, 120.0, false).await;
    let report = rollout(&w, config)
        .run(
            &runner(&w).with_approver(Arc::new(DenyAll::default())),
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(status(&report, "confirm-1"), StepStatus::Failed);
    assert_eq!(primary(&w).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_metric_is_reported_but_never_acted_on() {
    // The canary is slow (3 s p95, above the 2 s abort) but latency is on trial.
    let w = world(0.0, 0, 3000.0, true).await;
    let config = RolloutConfig {
        dry_run_metrics: vec![RolloutMetric::LatencyP95],
        ..RolloutConfig::default()
    };
    let report = rollout(&w, config)
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    let a: Analysis = report.output("analyze-1").unwrap();
    let latency = a
        .metrics
        .iter()
        .find(|m| m.metric == RolloutMetric::LatencyP95)
        .unwrap();
    assert_eq!(
        (latency.verdict, latency.dry_run, latency.value),
        (Verdict::Fail, true, Some(3000.0))
    );
    assert_eq!(a.verdict, Verdict::Pass);
    assert!(report.evidence.iter().any(|e| e.key == "LatencyP95 at 1 %"));
}

#[tokio::test(start_paused = true)]
async fn a_hotfix_skips_the_canary_stages() {
    let w = world(0.0, 0, 120.0, true).await;
    let t0 = SystemClock.instant();
    let report = rollout(&w, RolloutConfig::default())
        .hotfix()
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Succeeded));
    assert_eq!(report.runbook, "hotfix-rollout");
    assert_eq!(
        report
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec![
            "stable",
            "deploy",
            "traffic-100",
            "bake-100",
            "analyze-100",
            "confirm-100"
        ]
    );
    assert_eq!(SystemClock.instant() - t0, Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn blue_green_goes_0_10_100_with_approval_between_stages() {
    let w = world(0.0, 0, 120.0, true).await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let a = asked.clone();
    let mut approver = MockApprover::new();
    approver.expect_decide().returning(move |r| {
        a.lock().unwrap().push(r.gate.clone());
        Ok(ApprovalDecision::Approved {
            by: "erin".into(),
            comment: None,
        })
    });
    let config = RolloutConfig {
        strategy: Strategy::BlueGreen,
        approve_between_stages: true,
        ..RolloutConfig::default()
    };
    let report = rollout(&w, config)
        .run(&runner(&w).with_approver(Arc::new(approver)), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.summary()
    );
    assert_eq!(*asked.lock().unwrap(), vec!["approve-10", "approve-100"]);
    assert_eq!(
        report.output::<Analysis>("analyze-10").unwrap().verdict,
        Verdict::Pass
    );
    assert_eq!(primary(&w).await, "api-00002");
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_changes_nothing() {
    let w = world(0.0, 0, 120.0, true).await;
    let report = rollout(&w, RolloutConfig::default())
        .run(&runner(&w), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Planned));
    assert_eq!(report.planned[0].call, "Deployer::deploy");
    assert_eq!(
        w.deployer.releases().await.unwrap().len(),
        1,
        "nothing deployed"
    );
    assert_eq!(primary(&w).await, "api-00001");
}

#[tokio::test(start_paused = true)]
async fn a_service_with_no_serving_release_is_refused() {
    let w = world(0.0, 0, 120.0, false).await;
    w.deployer.stop_serving().await.unwrap();
    let report = rollout(&w, RolloutConfig::default())
        .run(&runner(&w), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(report.outcome, Some(RunOutcome::Failed));
    assert_eq!(report.error.as_ref().unwrap().kind, "invalid_input");
    assert_eq!(
        w.deployer.releases().await.unwrap().len(),
        1,
        "nothing deployed"
    );
}

#[test]
fn bad_stage_plans_and_thresholds_are_rejected_by_field() {
    for (toml, field) in [
        (
            "stages = [{ percent = 5, bake = \"1m\" }, { percent = 5, bake = \"1m\" }, { percent = 100, bake = \"0s\" }]",
            "stages[1].percent",
        ),
        (
            "stages = [{ percent = 50, bake = \"1m\" }, { percent = 120, bake = \"0s\" }]",
            "stages[1].percent",
        ),
        ("stages = [{ percent = 50, bake = \"1m\" }]", "stages"),
        ("stages = []", "stages"),
        (
            "stages = [{ percent = 100, bake = \"-1m\" }]",
            "stages[0].bake",
        ),
        (
            "error_rate = { warn = 0.5, abort = 1.5 }",
            "error_rate.abort",
        ),
        (
            "error_rate = { warn = 0.1, abort = 0.05 }",
            "error_rate.warn",
        ),
        (
            "latency_p95_ms = { warn = -1, abort = 10 }",
            "latency_p95_ms",
        ),
        ("min_requests = 0", "min_requests"),
        ("strategy = \"yolo\"", "strategy"),
        ("on_inconclusive = \"shrug\"", "on_inconclusive"),
    ] {
        match RolloutConfig::from_toml(toml).unwrap_err().kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{toml}: {other:?}"),
        }
    }
    let c = RolloutConfig::from_toml("").unwrap();
    assert_eq!(
        c.stages()
            .iter()
            .map(|s| (s.percent, s.bake.as_secs() / 60))
            .collect::<Vec<_>>(),
        vec![(1, 15), (5, 30), (25, 60), (100, 0)]
    );
    assert_eq!(
        (
            c.error_rate.warn,
            c.error_rate.abort,
            c.latency_p95_ms.warn,
            c.latency_p95_ms.abort
        ),
        (0.01, 0.05, 500.0, 2000.0)
    );
}

/// A metrics source that reads ratios but cannot count per release (the contract's default).
struct RatiosOnly(Arc<MemoryMetricsSource>);

#[async_trait::async_trait]
impl MetricsSource for RatiosOnly {
    fn name(&self) -> &str {
        "ratios-only"
    }
    async fn read(&self, query: &MetricQuery) -> ops_core::Result<MetricReading> {
        self.0.read(query).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_that_cannot_count_falls_back_to_thresholds_and_says_so() {
    let w = world(0.0, 0, 120.0, true).await;
    let t0 = SystemClock.instant();
    let report = Rollout::new(
        "api:1.1",
        w.deployer.clone(),
        Arc::new(RatiosOnly(w.metrics.clone())),
        RolloutConfig::default(),
    )
    .run(&runner(&w), Mode::Execute)
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Succeeded),
        "{}",
        report.summary()
    );
    // No looks: each bake is a plain wait, judged at its end.
    assert_eq!(
        SystemClock.instant() - t0,
        Duration::from_secs((15 + 30 + 60) * 60)
    );
    assert!(!report.evidence.iter().any(|e| e.key.starts_with("look ")));
    let said = report
        .evidence
        .iter()
        .filter(|e| e.key.starts_with("judged by thresholds"))
        .count();
    assert_eq!(said, 3, "one note per stage");
    let summary = RolloutSummary::from_report(&report);
    assert_eq!(summary.stages.len(), 3);
    for s in &summary.stages {
        assert!(
            matches!(&s.judged_by, JudgedBy::Thresholds { reason } if reason.contains("ratios-only")),
            "{s:?}"
        );
        assert_eq!(s.verdict, Some(Verdict::Pass));
        assert!(
            s.why.as_deref().unwrap().contains("ErrorRate 0.0000"),
            "{s:?}"
        );
    }
    assert!(summary.to_markdown().contains("| 1 % | thresholds ("));
}

#[tokio::test(start_paused = true)]
async fn the_summary_leads_with_why_and_lists_every_look() {
    let w = world(0.1, 25, 120.0, true).await;
    let rollout = rollout(&w, RolloutConfig::default());
    let finished = rollout.run(&runner(&w), Mode::Execute).await.unwrap();
    let summary = finished
        .summary
        .clone()
        .expect("a rollout always summarises");
    let stopped = summary.stopped.as_deref().expect("it stopped");
    assert!(
        stopped.starts_with("analysis at 25 %: errors: canary"),
        "{stopped}"
    );
    let percents: Vec<u8> = summary.stages.iter().map(|s| s.percent).collect();
    assert_eq!(percents, [1, 5, 25], "stages as far as the run got");
    let [one, five, twenty_five] = &summary.stages[..] else {
        unreachable!()
    };
    // 15 and 30 one-minute looks; the 25 % stage stopped at a failing one.
    assert_eq!((one.looks.len(), five.looks.len()), (15, 30));
    assert_eq!(one.judged_by, JudgedBy::Sequential);
    assert_eq!(five.verdict, Some(Verdict::Pass));
    assert!(five.why.as_deref().unwrap().ends_with("— pass"), "{five:?}");
    let last = twenty_five.looks.last().unwrap();
    assert_eq!(last.decision, ops_core::judge::Decision::Fail);
    assert_eq!(twenty_five.verdict, None, "its analysis never ran");
    assert!(twenty_five.why.as_deref().unwrap().contains(&last.why));
    // Look numbers run on across stages: one evidence for the whole rollout.
    assert_eq!(twenty_five.looks[0].number, 46);
    let md = summary.to_markdown();
    assert!(
        md.starts_with("## Canary analysis\n\n**Stopped:** analysis at 25 %"),
        "{md}"
    );
    assert!(md.contains("### Looks at 25 %"));
    assert!(md.contains("**rejected**"));
    let look_rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("errors "))
        .count();
    let looks: usize = summary.stages.iter().map(|s| s.looks.len()).sum();
    assert_eq!(look_rows, looks, "one row per look");
    assert_eq!(summary.lines().len(), 3);
}

/// A source that counts requests and errors but has no latency (Prometheus without a latency
/// query, Vercel's request log), or, with `ratios: false`, can read nothing at all.
struct NoLatency {
    inner: Arc<MemoryMetricsSource>,
    ratios: bool,
    counts: bool,
}

#[async_trait::async_trait]
impl MetricsSource for NoLatency {
    fn name(&self) -> &str {
        "no-latency"
    }
    async fn read(&self, query: &MetricQuery) -> ops_core::Result<MetricReading> {
        match query.metric {
            Metric::ErrorRatio if self.ratios => self.inner.read(query).await,
            _ => Err(ops_core::Error::unsupported(
                "no-latency",
                "read",
                "latency: no durations in this source",
            )),
        }
    }
    async fn counts(&self, release: &str, window: &TimeWindow) -> ops_core::Result<RequestCounts> {
        if !self.counts {
            return Err(ops_core::Error::unsupported(
                "no-latency",
                "counts",
                "counts",
            ));
        }
        let mut c = self.inner.counts(release, window).await?;
        c.latency = None;
        Ok(c)
    }
}

/// The default rollout of api:1.1, judged by `source`.
async fn roll_out_judged_by(w: &World, source: NoLatency) -> Finished<RolloutSummary> {
    Rollout::new(
        "api:1.1",
        w.deployer.clone(),
        Arc::new(source),
        RolloutConfig::default(),
    )
    .run(&runner(w), Mode::Execute)
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_source_without_latency_is_judged_on_errors_and_says_what_it_could_not_measure() {
    for counts in [true, false] {
        let w = world(0.0, 0, 120.0, true).await;
        let source = NoLatency {
            inner: w.metrics.clone(),
            ratios: true,
            counts,
        };
        let report = roll_out_judged_by(&w, source).await;
        assert_eq!(
            report.outcome,
            Some(RunOutcome::Succeeded),
            "counts {counts}: {}",
            report.summary()
        );
        let analysis = report.output::<Analysis>("analyze-25").unwrap();
        let latency = analysis
            .metrics
            .iter()
            .find(|m| m.metric == RolloutMetric::LatencyP95)
            .unwrap();
        assert!(
            latency.value.is_none()
                && latency
                    .unsupported
                    .as_deref()
                    .is_some_and(|u| u.contains("no durations")),
            "{latency:?}"
        );
        let errors = analysis
            .metrics
            .iter()
            .find(|m| m.metric == RolloutMetric::ErrorRate)
            .unwrap();
        assert!(
            errors.unsupported.is_none() && errors.value == Some(0.0),
            "{errors:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_that_can_measure_nothing_fails_the_stage_never_passes_it() {
    let w = world(0.0, 0, 120.0, true).await;
    let source = NoLatency {
        inner: w.metrics.clone(),
        ratios: false,
        counts: false,
    };
    let report = roll_out_judged_by(&w, source).await;
    assert_eq!(
        report.outcome,
        Some(RunOutcome::Failed),
        "{}",
        report.summary()
    );
    assert_eq!(status(&report, "analyze-1"), StepStatus::Failed);
    assert_eq!(
        primary(&w).await,
        "api-00001",
        "traffic back on the stable release"
    );
}
