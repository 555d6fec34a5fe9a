//! Threshold alerts: the seeds' table, severities, silences that expire, TOML rules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::contracts::*;
use ops_core::engine::{Mode, Runner};
use ops_core::memory::MemoryMetricsSource;
use ops_core::runbooks::*;

fn now() -> DateTime<Utc> {
    "2026-12-01T05:00:00Z".parse().unwrap()
}

/// Error rate 2 % (warning), p95 150 ms (fine), CPU 95 % (critical), memory unknown, the pool
/// at 85 % (warning), queue depth 10 (fine).
fn metrics() -> Arc<MemoryMetricsSource> {
    let m = MemoryMetricsSource::new("m");
    let at = now() - chrono::Duration::minutes(1);
    for i in 0..100 {
        m.record_request(at, None, if i < 2 { 500 } else { 200 }, 150.0);
    }
    m.record_sample(at, None, Metric::CpuUtilisation, 0.95)
        .unwrap();
    m.record_sample(
        at,
        None,
        Metric::Named {
            name: "db_connections_ratio".into(),
        },
        0.85,
    )
    .unwrap();
    m.record_sample(
        at,
        None,
        Metric::Named {
            name: "queue_depth".into(),
        },
        10.0,
    )
    .unwrap();
    Arc::new(m)
}

fn severity(alerts: &[Alert], rule: &str) -> Option<Severity> {
    alerts.iter().find(|a| a.rule == rule).unwrap().severity
}

#[tokio::test]
async fn the_seeds_table_judges_each_metric() {
    let alerts = evaluate_alerts(metrics().as_ref(), &AlertsConfig::default(), now())
        .await
        .unwrap();
    assert_eq!(severity(&alerts, "error-rate"), Some(Severity::Warning));
    assert_eq!(severity(&alerts, "latency-p95"), None);
    assert_eq!(severity(&alerts, "cpu"), Some(Severity::Critical));
    assert_eq!(severity(&alerts, "db-connections"), Some(Severity::Warning));
    assert_eq!(severity(&alerts, "queue-depth"), None);
    let memory = alerts.iter().find(|a| a.rule == "memory").unwrap();
    assert_eq!(
        (memory.severity, memory.value),
        (None, None),
        "no data: no alert, and no made-up value"
    );
}

#[tokio::test]
async fn silences_hold_alerts_back_until_they_expire() {
    let config = AlertsConfig {
        silences: vec![Silence {
            rule: "cpu".into(),
            from: None,
            until: now() + chrono::Duration::hours(1),
            reason: "maintenance".into(),
        }],
        ..AlertsConfig::default()
    };
    let during = evaluate_alerts(metrics().as_ref(), &config, now())
        .await
        .unwrap();
    let cpu = during.iter().find(|a| a.rule == "cpu").unwrap();
    assert_eq!(
        (cpu.severity, cpu.silenced.as_deref()),
        (Some(Severity::Critical), Some("maintenance")),
        "still reported, not sent"
    );
    let after = evaluate_alerts(
        metrics().as_ref(),
        &config,
        now() + chrono::Duration::hours(2),
    )
    .await
    .unwrap();
    assert!(after.iter().all(|a| a.silenced.is_none()));
}

#[tokio::test(start_paused = true)]
async fn firing_alerts_are_notified_and_silenced_ones_are_not() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = sent.clone();
    let mut n = MockNotifier::new();
    n.expect_name().return_const("n".to_string());
    n.expect_send().returning(move |note| {
        s.lock().unwrap().push((note.severity, note.title.clone()));
        Ok(Receipt {
            notifier: "n".into(),
            id: None,
            dedup_key: note.dedup_key.clone(),
        })
    });
    let config = AlertsConfig {
        silences: vec![Silence {
            rule: "error-rate".into(),
            from: None,
            until: now() + chrono::Duration::hours(1),
            reason: "deploy".into(),
        }],
        ..AlertsConfig::default()
    };
    let runner = Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(now())));
    let Finished {
        report,
        summary: alerts,
    } = ThresholdAlerts::new("market", metrics(), config)
        .notifier(Arc::new(n))
        .run(&runner, Mode::Execute)
        .await
        .unwrap();
    assert!(report.is_success());
    assert_eq!(alerts.unwrap().len(), 6);
    let sent = sent.lock().unwrap();
    assert_eq!(
        *sent,
        vec![
            (Severity::Critical, "market: cpu is critical".to_string()),
            (
                Severity::Warning,
                "market: db-connections is warning".to_string()
            )
        ]
    );
}

#[test]
fn rules_load_from_toml_and_nonsense_is_named() {
    let c = AlertsConfig::from_toml(
        "[[rules]]\nrule = \"queue\"\nmetric = \"named\"\nname = \"queue_depth\"\nwarning = 1000\ncritical = 5000\nwindow = \"10m\"\n",
    )
    .unwrap();
    assert_eq!(
        c.rules[0].metric,
        Metric::Named {
            name: "queue_depth".into()
        }
    );
    assert_eq!(c.rules[0].window, Duration::from_secs(600));
    assert_eq!(AlertsConfig::from_toml("").unwrap().rules.len(), 6);
    for (toml, field) in [
        (
            "[[rules]]\nrule = \"cpu\"\nmetric = \"cpu_utilisation\"\nwarning = 90\ncritical = 95",
            "rules[0].critical",
        ),
        (
            "[[rules]]\nrule = \"cpu\"\nmetric = \"cpu_utilisation\"\nwarning = 0.9\ncritical = 0.7",
            "rules[0].warning",
        ),
        (
            "[[rules]]\nrule = \"p\"\nmetric = \"latency_percentile\"\npercentile = 120.0\nwarning = 1\ncritical = 2",
            "rules[0].metric",
        ),
        (
            "[[silences]]\nrule = \"nope\"\nuntil = \"2026-01-01T00:00:00Z\"\nreason = \"x\"",
            "silences[0].rule",
        ),
        ("rules = []", "rules"),
    ] {
        match AlertsConfig::from_toml(toml).unwrap_err().kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{toml}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn alerts_are_silenced_while_a_maintenance_window_is_open() {
    let runner = Runner::new().with_clock(Arc::new(SimulatedClock::starting_at(now())));
    let window = |opens: &str| {
        ops_core::schedule::Window::new("db-maintenance", opens, "UTC", Duration::from_secs(7200))
            .unwrap()
    };
    let evaluate = |opens: &'static str| {
        let runner = runner.clone();
        async move {
            ThresholdAlerts::new("market", metrics(), AlertsConfig::default())
                .silence_during([window(opens)])
                .run(&runner, Mode::Execute)
                .await
                .unwrap()
                .summary
                .unwrap()
        }
    };
    // Tuesday 05:00, inside Tuesday 04:00–06:00: every firing alert is held, with the window.
    let inside = evaluate("0 4 * * TUE").await;
    let firing: Vec<_> = inside.iter().filter(|a| a.severity.is_some()).collect();
    assert_eq!(firing.len(), 3, "{inside:?}");
    for a in firing {
        let why = a.silenced.as_deref().unwrap();
        assert!(
            why.starts_with("maintenance window db-maintenance"),
            "{why}"
        );
        assert!(why.contains("until 2026-12-01 06:00 UTC"), "{why}");
    }
    assert!(
        inside
            .iter()
            .filter(|a| a.severity.is_none())
            .all(|a| a.silenced.is_none())
    );
    // Outside the window (Wednesdays) nothing is held.
    let outside = evaluate("0 4 * * WED").await;
    assert!(outside.iter().all(|a| a.silenced.is_none()));
    assert_eq!(outside.iter().filter(|a| a.severity.is_some()).count(), 3);
}

/// A gauge sampled every minute for `minutes` up to now, at `value`.
fn gauge(m: &MemoryMetricsSource, metric: Metric, minutes: i64, value: impl Fn(i64) -> f64) {
    for i in 0..minutes {
        m.record_sample(
            now() - chrono::Duration::seconds(30) - chrono::Duration::minutes(i),
            None,
            metric.clone(),
            value(i),
        )
        .unwrap();
    }
}

fn one_rule(rule: AlertRule) -> AlertsConfig {
    AlertsConfig {
        rules: vec![rule],
        silences: Vec::new(),
    }
}

#[tokio::test]
async fn a_rule_with_for_fires_only_when_every_window_it_spans_breaches() {
    // Seed 000, alert 5: "CPU > 80 % for > 15 minutes", read over 5-minute windows.
    let rule = AlertRule::new("cpu", Metric::CpuUtilisation, 0.80, 0.95)
        .holding_for(Duration::from_secs(15 * 60));
    let config = one_rule(rule.clone());
    // Hot for the last 10 minutes only: the window 10–15 minutes ago was fine.
    let m = MemoryMetricsSource::new("m");
    gauge(&m, Metric::CpuUtilisation, 60, |i| {
        if i < 10 { 0.9 } else { 0.2 }
    });
    let brief = evaluate_alerts(&m, &config, now()).await.unwrap();
    assert_eq!(brief[0].severity, None, "{brief:?}");
    assert_eq!(brief[0].value, Some(0.9), "the newest window is hot");
    // Without `for`, the same data fires at once.
    let plain = AlertRule::new("cpu", Metric::CpuUtilisation, 0.80, 0.95);
    let now_only = evaluate_alerts(&m, &one_rule(plain), now()).await.unwrap();
    assert_eq!(now_only[0].severity, Some(Severity::Warning));
    // Hot for 16 minutes, critical in the newest window only: fires at the mildest, warning.
    let m = MemoryMetricsSource::new("m");
    gauge(&m, Metric::CpuUtilisation, 16, |i| {
        if i < 5 { 0.99 } else { 0.9 }
    });
    let held = evaluate_alerts(&m, &config, now()).await.unwrap();
    assert_eq!(held[0].severity, Some(Severity::Warning), "{held:?}");
    // A window without data is no evidence that it held.
    let m = MemoryMetricsSource::new("m");
    gauge(&m, Metric::CpuUtilisation, 6, |_| 0.99);
    let gap = evaluate_alerts(&m, &config, now()).await.unwrap();
    assert_eq!(gap[0].severity, None);
}

#[tokio::test]
async fn a_rule_below_its_levels_fires_when_the_metric_falls() {
    // Seed 004: active witnesses below 5 for 1 h (warning), below 1 for 1 h (critical).
    let users = Metric::Named {
        name: "active_witnesses".into(),
    };
    let rule = AlertRule::new("witnesses", users.clone(), 5.0, 1.0)
        .below()
        .over(Duration::from_secs(600))
        .holding_for(Duration::from_secs(3600));
    let config = one_rule(rule);
    let judged = |values: fn(i64) -> f64| {
        let m = MemoryMetricsSource::new("m");
        gauge(&m, users.clone(), 70, values);
        let config = config.clone();
        async move { evaluate_alerts(&m, &config, now()).await.unwrap()[0].severity }
    };
    assert_eq!(judged(|_| 12.0).await, None);
    assert_eq!(judged(|_| 3.0).await, Some(Severity::Warning));
    assert_eq!(judged(|_| 0.0).await, Some(Severity::Critical));
    // Low for only the last half hour: not yet an hour.
    assert_eq!(judged(|i| if i < 30 { 0.0 } else { 9.0 }).await, None);
}

#[tokio::test]
async fn a_silence_written_ahead_mutes_nothing_before_it_starts() {
    // Seed 001's Sunday 02:00–04:00 UTC window, configured days ahead.
    let sunday = |h: u32| -> DateTime<Utc> { format!("2026-12-06T{h:02}:00:00Z").parse().unwrap() };
    let config = AlertsConfig {
        silences: vec![Silence {
            rule: "*".into(),
            from: Some(sunday(2)),
            until: sunday(4),
            reason: "weekly maintenance".into(),
        }],
        ..AlertsConfig::default()
    };
    config.validate().unwrap();
    let before = evaluate_alerts(metrics().as_ref(), &config, now())
        .await
        .unwrap();
    assert!(before.iter().all(|a| a.silenced.is_none()), "{before:?}");
    assert_eq!(before.iter().filter(|a| a.severity.is_some()).count(), 3);
    // At 03:00 on Sunday the same readings are held back.
    let m = metrics();
    let shifted = sunday(3) - now();
    let cpu = Metric::CpuUtilisation;
    m.record_sample(
        now() + shifted - chrono::Duration::minutes(1),
        None,
        cpu,
        0.95,
    )
    .unwrap();
    let during = evaluate_alerts(m.as_ref(), &config, sunday(3))
        .await
        .unwrap();
    let cpu = during.iter().find(|a| a.rule == "cpu").unwrap();
    assert_eq!(cpu.silenced.as_deref(), Some("weekly maintenance"));
    assert!(
        evaluate_alerts(m.as_ref(), &config, sunday(4))
            .await
            .unwrap()
            .iter()
            .all(|a| a.silenced.is_none())
    );
}

#[test]
fn directions_for_and_silence_starts_are_validated() {
    for (toml, field, says) in [
        (
            "[[rules]]\nrule = \"u\"\nmetric = \"named\"\nname = \"users\"\ndirection = \"below\"\nwarning = 1\ncritical = 5",
            "rules[0].warning",
            "warning 1 above critical 5",
        ),
        (
            "[[rules]]\nrule = \"c\"\nmetric = \"cpu_utilisation\"\nwarning = 0.7\ncritical = 0.9\nwindow = \"1m\"\nfor = \"3h\"",
            "rules[0].for",
            "more than 96 windows",
        ),
        (
            "[[rules]]\nrule = \"c\"\nmetric = \"cpu_utilisation\"\nwarning = 0.7\ncritical = 0.9\nfor = \"0s\"",
            "rules[0].for",
            "",
        ),
        (
            "[[silences]]\nrule = \"*\"\nfrom = \"2026-12-06T04:00:00Z\"\nuntil = \"2026-12-06T02:00:00Z\"\nreason = \"x\"",
            "silences[0].from",
            "before",
        ),
    ] {
        let e = AlertsConfig::from_toml(toml).unwrap_err();
        match e.kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field, "{toml}"),
            other => panic!("{toml}: {other:?}"),
        }
        assert!(e.to_string().contains(says), "{e}");
    }
    let ok = AlertsConfig::from_toml(
        "[[rules]]\nrule = \"u\"\nmetric = \"named\"\nname = \"users\"\ndirection = \"below\"\nwarning = 5\ncritical = 1\nfor = \"1h\"\nwindow = \"10m\"",
    )
    .unwrap();
    assert_eq!(ok.rules[0].hold, Some(Duration::from_secs(3600)));
    assert_eq!(ok.rules[0].direction, Direction::Below);
}

#[tokio::test(start_paused = true)]
async fn an_alert_that_stops_firing_is_resolved_once() {
    let notifier = Arc::new(ops_core::memory::MemoryNotifier::new("n"));
    let m = Arc::new(MemoryMetricsSource::new("m"));
    let clock = Arc::new(ops_core::clock::ManualClock::starting_at(now()));
    let runner = Runner::new().with_clock(clock.clone());
    let alerts = ThresholdAlerts::new(
        "api",
        m.clone(),
        one_rule(AlertRule::new("cpu", Metric::CpuUtilisation, 0.7, 0.9)),
    )
    .notifier(notifier.clone());
    let at = |minutes: i64| now() + chrono::Duration::minutes(minutes);
    let evaluate_at = |minutes: i64| {
        let (alerts, runner, clock) = (alerts.clone(), runner.clone(), clock.clone());
        async move {
            let behind = at(minutes) - clock.now();
            clock.advance(behind.to_std().unwrap());
            let done = alerts.run(&runner, Mode::Execute).await.unwrap();
            assert!(done.report.is_success());
            done.summary.unwrap().remove(0)
        }
    };
    m.record_sample(
        at(0) - chrono::Duration::minutes(1),
        None,
        Metric::CpuUtilisation,
        0.95,
    )
    .unwrap();
    assert_eq!(evaluate_at(0).await.severity, Some(Severity::Critical));
    // Ten minutes later the window holds no data: not judged, so not resolved.
    let quiet = evaluate_at(10).await;
    assert_eq!((quiet.value, quiet.resolved), (None, false));
    m.record_sample(
        at(20) - chrono::Duration::minutes(1),
        None,
        Metric::CpuUtilisation,
        0.30,
    )
    .unwrap();
    assert!(evaluate_at(20).await.resolved);
    // Resolved once: the next evaluation has nothing to say.
    m.record_sample(
        at(30) - chrono::Duration::minutes(1),
        None,
        Metric::CpuUtilisation,
        0.30,
    )
    .unwrap();
    assert!(!evaluate_at(30).await.resolved);
    let sent = notifier.sent();
    let events: Vec<_> = sent
        .iter()
        .map(|n| (n.event, n.severity, n.title.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            (
                NotificationEvent::Trigger,
                Severity::Critical,
                "api: cpu is critical"
            ),
            (
                NotificationEvent::Resolve,
                Severity::Critical,
                "api: cpu is resolved"
            ),
        ]
    );
    assert!(
        sent.iter()
            .all(|n| n.dedup_key.as_deref() == Some("alert/api/cpu"))
    );
}

#[tokio::test]
async fn a_rule_may_have_one_level_only() {
    // Seed 000: "error rate > 5 % over 10 minutes" is critical; "CPU > 80 %" is a warning.
    let config = AlertsConfig::from_toml(
        "[[rules]]\nrule = \"errors\"\nmetric = \"error_ratio\"\ncritical = 0.05\nwindow = \"10m\"\n[[rules]]\nrule = \"cpu\"\nmetric = \"cpu_utilisation\"\nwarning = 0.8",
    )
    .unwrap();
    let alerts = evaluate_alerts(metrics().as_ref(), &config, now())
        .await
        .unwrap();
    assert_eq!(
        severity(&alerts, "errors"),
        None,
        "2 % is below the only level, 5 %"
    );
    assert_eq!(
        severity(&alerts, "cpu"),
        Some(Severity::Warning),
        "95 % is only ever a warning"
    );
    let e =
        AlertsConfig::from_toml("[[rules]]\nrule = \"x\"\nmetric = \"error_ratio\"").unwrap_err();
    assert!(
        e.to_string()
            .contains("give a warning level, a critical level, or both"),
        "{e}"
    );
}
