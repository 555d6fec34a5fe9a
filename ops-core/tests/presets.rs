//! Every seed preset loads and validates, and carries its seed's numbers (each checked value
//! is quoted from the seed runbook beside it); overrides change one field and keep the rest.

use ops_core::money::{Currency, Money};
use std::time::Duration;

use ops_core::contracts::{Metric, Priority, Severity};
use ops_core::presets::Preset;
use ops_core::runbooks::{Direction, Trigger};

fn h(hours: u64) -> Duration {
    Duration::from_secs(hours * 3600)
}
fn m(minutes: u64) -> Duration {
    Duration::from_secs(minutes * 60)
}

fn rule<'a>(p: &'a Preset, name: &str) -> &'a ops_core::runbooks::AlertRule {
    p.alerts
        .rules
        .iter()
        .find(|r| r.rule == name)
        .unwrap_or_else(|| panic!("{}: no rule {name}", p.name))
}

fn response(p: &Preset, priority: Priority) -> Duration {
    p.incident.priorities[&priority].response_time
}

#[test]
fn every_preset_loads_and_validates() {
    let names: Vec<&str> = Preset::names().collect();
    assert_eq!(
        names,
        [
            "code-developer",
            "agent-marketplace",
            "loopcloser",
            "godel",
            "monkeytown"
        ]
    );
    for name in names {
        let p = Preset::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.name, name);
        p.validate().unwrap();
    }
    let e = Preset::load("acme").unwrap_err();
    assert!(
        e.to_string()
            .contains("the presets are code-developer, agent-marketplace"),
        "{e}"
    );
}

#[test]
fn code_developer_carries_seed_000s_numbers() {
    let p = Preset::load("code-developer").unwrap();
    // "Condition: CPU >80% for >15 minutes" / "Memory >85% for >15 minutes".
    let cpu = rule(&p, "high-cpu");
    assert_eq!(
        (cpu.warning, cpu.critical, cpu.hold),
        (Some(0.80), None, Some(m(15)))
    );
    assert_eq!(rule(&p, "high-memory").warning, Some(0.85));
    // "Error rate >5% over 10 minutes".
    let errors = rule(&p, "high-error-rate");
    assert_eq!((errors.critical, errors.window), (Some(0.05), m(10)));
    // "P1 - High | … | 1 hour", "P2 - Medium | … | 4 hours".
    assert_eq!(response(&p, Priority::P1), h(1));
    assert_eq!(response(&p, Priority::P2), h(4));
    // "Cannot resolve in 1 hour → Team lead", "Extended outage (>4 hours) → CTO",
    // "Cost exceeds $500/day → Finance + CTO", P0 escalates to "CTO, CEO".
    let e = &p.incident.escalation;
    assert!(
        e.iter()
            .any(|r| r.level == "team-lead" && r.when == Trigger::Unresolved { after: h(1) })
    );
    assert!(
        e.iter()
            .any(|r| r.level == "cto" && r.when == Trigger::Unresolved { after: h(4) })
    );
    assert!(
        e.iter()
            .any(|r| matches!(&r.when, Trigger::Metric { above, .. } if *above == 500.0))
    );
    assert!(
        e.iter()
            .any(|r| r.priorities == [Priority::P0] && r.when == Trigger::Declared)
    );
    // "--limit 5000" logs of any severity.
    assert_eq!(p.shutdown.max_log_entries, 5000);
    // "--cpu 2", "--memory 4Gi", "Resource utilization <70%".
    assert_eq!(p.right_size.cpu_steps, ["1", "2"]);
    assert!(p.right_size.memory_steps.contains(&"4Gi".to_string()));
    assert_eq!(p.right_size.target, 0.70);
    // "Verify backup retention (keep 30 days)".
    assert_eq!(p.backup.retention.daily, 30);
    // "Rotate secrets (every 90 days)".
    assert_eq!(p.secret_ages.max_age, Duration::from_secs(90 * 86_400));
    // Alert 3: "Daily cost >$50 (2x normal)", P1; the mid-month review's expected shares.
    let usd = |s: &str| Money::parse(Currency::USD, s).unwrap();
    let spike = p.cost.spike.clone().unwrap();
    assert_eq!(
        (spike.above, spike.times_median),
        (Some(usd("50")), Some(2.0))
    );
    assert_eq!(spike.severity, ops_core::contracts::Severity::Error);
    let shares: Vec<(&str, f64, f64)> = p
        .cost
        .expected
        .iter()
        .map(|e| (e.service.as_str(), e.min_percent, e.max_percent))
        .collect();
    assert_eq!(
        shares,
        [
            ("Cloud Run", 15.0, 25.0),
            ("Cloud SQL", 20.0, 30.0),
            ("Cloud Storage", 5.0, 10.0)
        ]
    );
}

#[test]
fn agent_marketplace_carries_seed_001s_numbers() {
    let p = Preset::load("agent-marketplace").unwrap();
    // "Critical | … | 15 minutes", "High | … | 1 hour", "Low | … | 24 hours".
    assert_eq!(response(&p, Priority::P0), m(15));
    assert_eq!(response(&p, Priority::P1), h(1));
    assert_eq!(response(&p, Priority::P3), h(24));
    // "Update status page every 15 minutes"; "Post-Incident (24 hours)".
    let p0 = &p.incident.priorities[&Priority::P0];
    assert_eq!(
        (p0.update_every, p0.postmortem_within),
        (m(15), Some(h(24)))
    );
    assert_eq!(p0.severity, Severity::Critical);
    // "Window: Sunday 2:00 AM - 4:00 AM UTC".
    let w = &p.change.windows["database-maintenance"];
    assert_eq!((w.opens.as_str(), w.lasts), ("0 2 * * SUN", h(2)));
    // "query_start < now() - interval '1 hour'".
    assert_eq!(
        p.providers["postgres"]["maintenance"]["idle_since"].as_str(),
        Some("query_start")
    );
}

#[test]
fn loopcloser_carries_seed_002s_numbers() {
    let p = Preset::load("loopcloser").unwrap();
    // "SEV-2 | Major feature broken | Within 1 hour", "SEV-3 | … | Within 24 hours".
    assert_eq!(response(&p, Priority::P1), h(1));
    assert_eq!(response(&p, Priority::P2), h(24));
    // "Restart service to pick up restored database", after stopping traffic.
    assert!(p.restore.stop_traffic && p.restore.restart);
    // "Error rate > 5%".
    assert_eq!(rule(&p, "high-error-rate").critical, Some(0.05));
}

#[test]
fn godel_carries_seed_003s_numbers() {
    let p = Preset::load("godel").unwrap();
    // "npm run deploy:canary --stage=1 … --duration=15m", "Deploy 5% (requires approval)",
    // "Deploy 25% (requires approval)", "--stage=100".
    let stages: Vec<(u8, Duration, bool)> = p
        .rollout
        .stages()
        .iter()
        .map(|s| (s.percent, s.bake, s.approve))
        .collect();
    assert_eq!(
        stages,
        [
            (1, m(15), false),
            (5, m(30), true),
            (25, m(60), true),
            (100, m(0), false)
        ]
    );
    // "Avg Latency | > 500ms | > 2000ms": an average, by name.
    let latency = rule(&p, "avg-latency");
    assert_eq!(
        latency.metric,
        Metric::Named {
            name: "latency_avg_ms".into()
        }
    );
    assert_eq!(
        (latency.warning, latency.critical),
        (Some(500.0), Some(2000.0))
    );
    // "CPU Usage | > 70% | > 90%".
    assert_eq!(
        (rule(&p, "cpu").warning, rule(&p, "cpu").critical),
        (Some(0.70), Some(0.90))
    );
    // "P1 … Response Time: 15 minutes"; the matrix: L2 15 min, L3 30 min, L4 1 hour.
    assert_eq!(response(&p, Priority::P1), m(15));
    let afters: Vec<Duration> = p
        .incident
        .escalation
        .iter()
        .filter_map(|r| match r.when {
            Trigger::Unacknowledged { after } => Some(after),
            _ => None,
        })
        .collect();
    assert_eq!(afters, [m(15), m(30), h(1)]);
}

#[test]
fn monkeytown_carries_seed_004s_numbers() {
    let p = Preset::load("monkeytown").unwrap();
    // "Active Witnesses | … | < 5 for 1h | < 1 for 1h".
    let w = rule(&p, "active-witnesses");
    assert_eq!(
        (w.direction, w.warning, w.critical, w.hold),
        (Direction::Below, Some(5.0), Some(1.0), Some(h(1)))
    );
    // "Agent Run Success | GitHub Actions | < 90% | < 80%".
    let s = rule(&p, "agent-run-success");
    assert_eq!(
        (s.direction, s.warning, s.critical),
        (Direction::Below, Some(0.90), Some(0.80))
    );
    // "Response Time p99 | … | > 500ms | > 1000ms".
    let p99 = rule(&p, "response-time-p99");
    assert_eq!(p99.metric, Metric::LatencyPercentile { percentile: 99.0 });
    // "Updates will be posted every 30 minutes"; "documented within 24 hours";
    // "P1 - Critical | Within 48 hours".
    let p0 = &p.incident.priorities[&Priority::P0];
    assert_eq!(
        (
            p0.update_every,
            p0.postmortem_within,
            p0.retrospective_within
        ),
        (m(30), Some(h(24)), Some(h(48)))
    );
    // "P2 - High | … | 1 hour".
    assert_eq!(response(&p, Priority::P1), h(1));
    // "VERCEL_TOKEN | … | Semi-annually", "DATABASE_URL | … | Annually".
    assert_eq!(
        p.secret_ages.max_age_of("VERCEL_TOKEN"),
        Duration::from_secs(182 * 86_400)
    );
    assert_eq!(
        p.secret_ages.max_age_of("DATABASE_URL"),
        Duration::from_secs(365 * 86_400)
    );
    assert_eq!(
        p.secret_ages.max_age_of("ANYTHING_ELSE"),
        Duration::from_secs(90 * 86_400)
    );
}

#[test]
fn overrides_change_one_field_and_keep_the_rest() {
    let p = Preset::load_with(
        "code-developer",
        "[shutdown]\nmax_log_entries = 1000\n[right_size]\ntarget = 0.6",
    )
    .unwrap();
    assert_eq!(p.shutdown.max_log_entries, 1000);
    assert_eq!(
        p.shutdown.evidence_min_severity,
        ops_core::contracts::LogSeverity::Default,
        "kept"
    );
    assert_eq!(p.right_size.target, 0.6);
    assert_eq!(p.right_size.cpu_steps, ["1", "2"], "kept");
    // A bad override is named, section and field.
    let e = Preset::load_with("godel", "[right_size]\nlow = 0.95").unwrap_err();
    assert!(e.to_string().contains("godel.right_size"), "{e}");
    let e = Preset::load_with("godel", "[shutdown]\nmax_log_entries = \"lots\"").unwrap_err();
    assert!(e.to_string().contains("shutdown.max_log_entries"), "{e}");
    let e = Preset::load_with("godel", "unknown_section = 1").unwrap_err();
    assert!(
        matches!(e.kind(), ops_core::ErrorKind::InvalidInput { .. }),
        "{e}"
    );
    let e = Preset::load_with("godel", "[[[").unwrap_err();
    assert!(
        matches!(e.kind(), ops_core::ErrorKind::InvalidInput { .. }),
        "{e}"
    );
}

/// Random TOML laid over a preset: a preset or `InvalidInput`, never a panic.
#[test]
fn overrides_of_any_shape_never_panic() {
    use proptest::prelude::*;
    let keys = [
        "alerts",
        "incident",
        "rollout",
        "right_size",
        "shutdown",
        "x",
        "name",
    ];
    proptest!(ProptestConfig::with_cases(200), |(k in 0..keys.len(), v in "[a-z0-9 =\\[\\]\"._-]{0,40}")| {
        let text = format!("[{}]\n{v}", keys[k]);
        let _ = Preset::load_with("monkeytown", &text);
    });
}
