//! Cost review: the daily spike alert to every notifier, the weekly and monthly views, the
//! budget kept current (and only planned in a dry run), a missing budget, a concurrent change.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use ops_core::ErrorKind;
use ops_core::clock::SimulatedClock;
use ops_core::contracts::*;
use ops_core::engine::*;
use ops_core::memory::{MemoryCosts, MemoryNotifier};
use ops_core::money::{Currency, Money};
use ops_core::runbooks::*;

fn now() -> DateTime<Utc> {
    "2026-11-21T08:00:00Z".parse().unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn usd(s: &str) -> Money {
    Money::parse(Currency::USD, s).unwrap()
}

fn runner() -> Runner {
    Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(now())))
}

/// November 1–20 at 25 USD a day (Cloud Run 5, Cloud SQL 6.25, Cloud Storage 2, the rest
/// "Vertex AI"), with a 0.25 USD credit a day; `last` replaces the 20th's Cloud Run cost.
fn bill(last_run_cost: &str) -> Arc<MemoryCosts> {
    let costs = MemoryCosts::new(Currency::USD);
    for d in 1..=20 {
        let run = if d == 20 { last_run_cost } else { "5.25" };
        costs.add_line(CostLine {
            day: day(d),
            service: "Cloud Run".into(),
            cost: usd(run),
            credits: usd("-0.25"),
        });
        costs.add(day(d), "Cloud SQL", usd("6.25"));
        costs.add(day(d), "Cloud Storage", usd("2"));
        costs.add(day(d), "Vertex AI", usd("11.75"));
    }
    costs.add_budget(Budget {
        id: "billingAccounts/0/budgets/b1".into(),
        display_name: "code-developer monthly".into(),
        amount: Some(usd("700")),
        thresholds_percent: vec![50.0, 90.0, 100.0],
        etag: None,
    });
    Arc::new(costs)
}

fn seed_spike() -> CostSpikeRule {
    CostSpikeRule {
        above: Some(usd("50")),
        times_median: Some(2.0),
        trailing_days: 14,
        severity: Severity::Error,
    }
}

fn daily() -> CostReviewConfig {
    CostReviewConfig {
        spike: Some(seed_spike()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_normal_day_pages_nobody() {
    let (on_call, finance) = (
        Arc::new(MemoryNotifier::new("on-call")),
        Arc::new(MemoryNotifier::new("finance")),
    );
    let done = CostReview::new("code-developer-prod", bill("5.25"), daily())
        .notifier(on_call.clone())
        .notifier(finance.clone())
        .run(&runner(), Mode::Execute)
        .await
        .unwrap();
    assert!(done.report.is_success());
    let s = done.summary.unwrap();
    assert_eq!((s.range.first(), s.range.last()), (day(20), day(20)));
    assert_eq!(s.total, usd("25"));
    assert_eq!(s.spike, None);
    assert!(on_call.sent().is_empty() && finance.sent().is_empty());
}

#[tokio::test]
async fn a_doubled_day_pages_on_call_and_finance_once_per_day() {
    let (on_call, finance) = (
        Arc::new(MemoryNotifier::new("on-call")),
        Arc::new(MemoryNotifier::new("finance")),
    );
    // 25 → 50.25: above 2× the median (50) and above 50.
    let review = CostReview::new("code-developer-prod", bill("30.5"), daily())
        .notifier(on_call.clone())
        .notifier(finance.clone());
    let s = review
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    let spike = s.spike.unwrap();
    assert_eq!(
        (spike.day, spike.cost, spike.limit),
        (day(20), usd("50.25"), usd("50"))
    );
    for n in [&on_call, &finance] {
        let sent = n.sent();
        assert_eq!(sent.len(), 1, "{}", n.name());
        assert_eq!(sent[0].severity, Severity::Error);
        assert_eq!(
            sent[0].dedup_key.as_deref(),
            Some("cost-spike/code-developer-prod/2026-11-20")
        );
        assert!(sent[0].title.contains("50.25 USD"), "{}", sent[0].title);
    }
    // A dry run plans the page and sends nothing.
    let quiet = Arc::new(MemoryNotifier::new("quiet"));
    let planned = CostReview::new("p", bill("30.5"), daily())
        .notifier(quiet.clone())
        .run(&runner(), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(planned.report.outcome, Some(RunOutcome::Planned));
    assert!(
        planned.summary.unwrap().spike.is_some(),
        "the reads run in a dry run"
    );
    assert!(quiet.sent().is_empty());
}

#[tokio::test]
async fn the_monthly_view_projects_the_month_and_flags_shares() {
    let config = CostReviewConfig {
        view: CostView::Monthly,
        expected: vec![
            ExpectedShare {
                service: "Cloud Run".into(),
                min_percent: 15.0,
                max_percent: 25.0,
            },
            ExpectedShare {
                service: "Cloud SQL".into(),
                min_percent: 20.0,
                max_percent: 30.0,
            },
            ExpectedShare {
                service: "Cloud Storage".into(),
                min_percent: 5.0,
                max_percent: 10.0,
            },
        ],
        ..Default::default()
    };
    let s = CostReview::new("p", bill("5.25"), config)
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    let oct22 = NaiveDate::from_ymd_opt(2026, 10, 22).unwrap();
    assert_eq!(
        (s.range.first(), s.range.last()),
        (oct22, day(20)),
        "the last 30 days"
    );
    assert_eq!(s.daily.len(), 30);
    assert_eq!(s.total, usd("500"));
    let p = s.projection.clone().unwrap();
    assert_eq!(
        (p.month_to_date, p.days_counted, p.days_in_month),
        (usd("500"), 20, 30)
    );
    assert_eq!(p.projected, usd("750"));
    let shares: Vec<(String, Option<f64>, bool)> = s
        .services
        .iter()
        .map(|c| (c.service.clone(), c.percent, c.unexpected))
        .collect();
    assert_eq!(
        shares,
        vec![
            ("Vertex AI".into(), Some(47.0), false),
            ("Cloud SQL".into(), Some(25.0), false),
            ("Cloud Run".into(), Some(20.0), false),
            ("Cloud Storage".into(), Some(8.0), false),
        ]
    );
}

fn monthly_with_budget(update: bool) -> CostReviewConfig {
    CostReviewConfig {
        view: CostView::Monthly,
        budget: Some(BudgetPolicy {
            name: "code-developer monthly".into(),
            headroom_percent: 10.0,
            update,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_budget_below_the_projection_is_raised_with_headroom() {
    let costs = bill("5.25");
    let s = CostReview::new("p", costs.clone(), monthly_with_budget(true))
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    let b = s.budget.unwrap();
    assert!(b.exceeded_by_projection, "750 projected over 700 budgeted");
    assert_eq!(b.proposed, Some(usd("825")));
    assert_eq!(
        b.budget.amount,
        Some(usd("825")),
        "the summary shows the budget as stored"
    );
    assert_eq!(costs.budgets().await.unwrap()[0].amount, Some(usd("825")));

    // Report-only policy, and a dry run: nothing changes.
    let untouched = bill("5.25");
    CostReview::new("p", untouched.clone(), monthly_with_budget(false))
        .run(&runner(), Mode::Execute)
        .await
        .unwrap();
    let planned = CostReview::new("p", untouched.clone(), monthly_with_budget(true))
        .run(&runner(), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(planned.report.outcome, Some(RunOutcome::Planned));
    assert_eq!(
        untouched.budgets().await.unwrap()[0].amount,
        Some(usd("700"))
    );
}

#[tokio::test]
async fn a_missing_budget_is_named_with_the_ones_there_are() {
    let mut config = monthly_with_budget(true);
    config.budget.as_mut().unwrap().name = "nope".into();
    let done = CostReview::new("p", bill("5.25"), config)
        .run(&runner(), Mode::Execute)
        .await
        .unwrap();
    assert!(!done.report.is_success());
    let err = done.report.error.clone().unwrap();
    assert_eq!(err.kind, "not_found", "{err:?}");
    assert!(err.message.contains("code-developer monthly"), "{err:?}");
}

#[tokio::test]
async fn a_budget_changed_since_it_was_read_is_a_conflict() {
    let costs = bill("5.25");
    let read = costs.budgets().await.unwrap().remove(0);
    costs.set_budget_amount(&read, &usd("900")).await.unwrap();
    let err = costs
        .set_budget_amount(&read, &usd("1000"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
}

#[test]
fn configs_that_make_no_sense_are_refused() {
    let bad = [
        "lag_days = 8",
        "[[expected]]\nservice = \"Cloud Run\"\nmin_percent = 30\nmax_percent = 20",
        "[spike]\ntrailing_days = 14",
        "[spike]\ntimes_median = 0.5",
        "[spike]\nabove = { currency = \"USD\", amount = -1 }",
        "[budget]\nname = \"b\"\nheadroom_percent = 500",
        "view = \"hourly\"",
    ];
    for text in bad {
        assert!(CostReviewConfig::from_toml(text).is_err(), "{text}");
    }
    let ok = CostReviewConfig::from_toml(
        "view = \"monthly\"\n[spike]\nabove = { currency = \"USD\", amount = 50 }\ntimes_median = 2",
    )
    .unwrap();
    assert_eq!(ok.spike.unwrap().above, Some(usd("50")));
}

#[tokio::test]
async fn only_the_daily_check_pages_the_longer_reviews_report() {
    let on_call = Arc::new(MemoryNotifier::new("on-call"));
    let weekly = CostReviewConfig {
        view: CostView::Weekly,
        ..daily()
    };
    let s = CostReview::new("p", bill("30.5"), weekly)
        .notifier(on_call.clone())
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert!(s.spike.is_some(), "reported");
    assert!(on_call.sent().is_empty(), "not paged again");
}

#[test]
fn a_cost_probe_refuses_an_invalid_spike_rule_when_it_is_made() {
    let rule = CostSpikeRule {
        times_median: Some(0.5),
        ..seed_spike()
    };
    let err = CostProbe::new(bill("5.25"), Some(rule))
        .err()
        .expect("refused");
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("times_median"), "{err}");
}

#[tokio::test]
async fn the_daily_health_check_reads_yesterdays_cost_as_a_probe() {
    let clock = Arc::new(SimulatedClock::starting_at(now()));
    let normal = CostProbe::new(bill("5.25"), Some(seed_spike()))
        .unwrap()
        .with_clock(clock.clone());
    let report = normal.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Healthy);
    assert!(
        report.checks[0]
            .detail
            .starts_with("25.00 USD on 2026-11-20 (Vertex AI 11.75 USD"),
        "{}",
        report.checks[0].detail
    );
    let spiked = CostProbe::new(bill("30.5"), Some(seed_spike()))
        .unwrap()
        .with_clock(clock.clone());
    let report = spiked.check().await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded);
    assert!(
        report.checks[0].detail.contains("above 50.00 USD"),
        "{}",
        report.checks[0].detail
    );

    // A source that cannot answer degrades the check, it does not fail the health check.
    let mut broken = MockCostSource::new();
    broken.expect_name().return_const("broken".to_string());
    broken.expect_costs().returning(|_| {
        Err(ops_core::Error::new(
            "x",
            "costs",
            ErrorKind::Forbidden {
                detail: String::new(),
            },
        ))
    });
    let report = CostProbe::new(Arc::new(broken), None)
        .unwrap()
        .with_clock(clock)
        .check()
        .await
        .unwrap();
    assert_eq!(report.status, HealthStatus::Degraded);
    assert!(report.checks[0].detail.starts_with("cannot read costs"));

    let check = HealthCheck::new("api", HealthCheckConfig::default()).probe(Arc::new(
        CostProbe::new(bill("30.5"), Some(seed_spike()))
            .unwrap()
            .with_clock(Arc::new(SimulatedClock::starting_at(now()))),
    ));
    let s = check
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert!(
        s.findings
            .iter()
            .any(|f| format!("{f:?}").contains("above 50.00 USD")),
        "{s:?}"
    );
}

#[tokio::test]
async fn the_weekly_review_lists_the_weeks_cost_by_service() {
    let logs = Arc::new(ops_core::memory::MemoryLogSource::new("api"));
    let md = WeeklyReview::new("api", logs, WeeklyReviewConfig::default())
        .costs(bill("5.25"))
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert!(md.contains("## Cost, 2026-11-14 to 2026-11-20"), "{md}");
    assert!(md.contains("Total: **175.00 USD**"), "{md}");
    assert!(md.contains("| Cloud SQL | 43.75 USD | 25.0 % |"), "{md}");
}

#[tokio::test]
async fn the_daily_cost_is_a_metric_for_alerts_and_escalation() {
    let metrics = CostMetrics::new(bill("30.5"));
    let query = |name: &str, end: &str| MetricQuery {
        metric: Metric::Named { name: name.into() },
        window: TimeWindow::ending_at(end.parse().unwrap(), std::time::Duration::from_secs(3600))
            .unwrap(),
        release: None,
        min_samples: 1,
    };
    // The window ends on the 21st: the last whole day is the 20th.
    let r = metrics
        .read(&query("daily_cost_usd", "2026-11-21T08:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        r,
        MetricReading::Value {
            value: 50.25,
            samples: 4
        }
    );
    assert_eq!(
        metrics
            .read(&query(DAILY_COST, "2026-11-21T08:00:00Z"))
            .await
            .unwrap()
            .value(),
        Some(50.25)
    );
    let quiet = metrics
        .read(&query(DAILY_COST, "2026-12-21T08:00:00Z"))
        .await
        .unwrap();
    assert!(
        matches!(quiet, MetricReading::InsufficientData { samples: 0, .. }),
        "{quiet:?}"
    );
    let eur = metrics
        .read(&query("daily_cost_eur", "2026-11-21T08:00:00Z"))
        .await
        .unwrap_err();
    assert!(eur.to_string().contains("not EUR"), "{eur}");
    let other = metrics
        .read(&query("queue_depth", "2026-11-21T08:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(other.kind(), ErrorKind::Unsupported { .. }),
        "{other}"
    );

    // Seed 000's alert table can hold "daily cost > $50" as a rule on this metric.
    let alerts = AlertsConfig::from_toml(
        "[[rules]]\nrule = \"cost-spike\"\nmetric = \"named\"\nname = \"daily_cost_usd\"\ncritical = 50\nwindow = \"1h\"",
    )
    .unwrap();
    let fired = ThresholdAlerts::new("p", Arc::new(metrics), alerts)
        .run(&runner(), Mode::Execute)
        .await
        .unwrap()
        .summary
        .unwrap();
    assert!(
        fired
            .iter()
            .any(|a| a.rule == "cost-spike" && a.severity == Some(Severity::Critical)),
        "{fired:?}"
    );
}
