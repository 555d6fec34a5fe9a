//! Threshold alerts: the seeds' table, severities, silences that expire, TOML rules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::SimulatedClock;
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
