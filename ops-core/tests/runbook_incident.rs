//! Incident response on a paused clock: escalation, cadence updates, acknowledgement,
//! resolution, a failing channel, and the postmortem.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_core::clock::{Clock, SimulatedClock, SystemClock};
use ops_core::contracts::*;
use ops_core::runbooks::*;
use ops_core::{Error, ErrorKind};

type Log = Arc<Mutex<Vec<(String, NotificationEvent, String)>>>;

fn level(name: &'static str, log: &Log, fail: bool) -> Arc<dyn Notifier> {
    let log = log.clone();
    let mut n = MockNotifier::new();
    n.expect_name().return_const(name.to_string());
    n.expect_send().returning(move |note| {
        log.lock()
            .unwrap()
            .push((name.to_string(), note.event, note.title.clone()));
        if fail {
            Err(Error::new(
                "slack",
                "chat.postMessage",
                ErrorKind::RateLimited { retry_after: None },
            ))
        } else {
            Ok(Receipt {
                notifier: name.into(),
                id: None,
                dedup_key: note.dedup_key.clone(),
            })
        }
    });
    Arc::new(n)
}

fn response(log: &Log) -> IncidentResponse {
    IncidentResponse::new(IncidentConfig::default())
        .level("on-call", level("on-call", log, false))
        .level("team-lead", level("team-lead", log, false))
        .level("head-of-eng", level("head-of-eng", log, false))
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-02-14T03:00:00Z".parse().unwrap(),
        )))
}

fn sent_to(log: &Log, who: &str) -> Vec<NotificationEvent> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(n, _, _)| n == who)
        .map(|(_, e, _)| *e)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_p0_escalates_every_five_minutes_and_updates_every_fifteen() {
    let log: Log = Arc::default();
    let r = response(&log);
    let inc = r
        .declare("Marketplace down", Priority::P0, "All checkouts fail")
        .await
        .unwrap();
    assert_eq!(inc.id, "INC-20260214-0300");
    let shared = Arc::new(tokio::sync::Mutex::new(inc));
    let watcher = tokio::spawn({
        let (r, shared) = (r.clone(), shared.clone());
        async move { r.watch(&shared).await }
    });
    SystemClock.sleep(Duration::from_secs(16 * 60)).await;
    {
        let mut inc = shared.lock().await;
        assert_eq!(
            inc.escalated_to, 2,
            "on-call → team lead at 5 min → head of eng at 10 min"
        );
        r.acknowledge(&mut inc, "erin");
    }
    SystemClock.sleep(Duration::from_secs(20 * 60)).await;
    {
        let mut inc = shared.lock().await;
        assert_eq!(inc.escalated_to, 2, "acknowledged: no further escalation");
        r.resolve(&mut inc, "Restarted the payment worker")
            .await
            .unwrap();
    }
    watcher.await.unwrap().unwrap();
    use NotificationEvent::*;
    assert_eq!(
        sent_to(&log, "on-call"),
        vec![Trigger, Update, Update, Resolve],
        "declared, updates at 15 and 30 min, resolved"
    );
    assert_eq!(
        sent_to(&log, "team-lead"),
        vec![Trigger, Update, Update, Resolve],
        "escalated at 5 min"
    );
    assert_eq!(
        sent_to(&log, "head-of-eng"),
        vec![Trigger, Update, Update, Resolve],
        "escalated at 10 min"
    );
    let inc = shared.lock().await;
    let md = inc.postmortem();
    assert!(md.contains("# Postmortem: Marketplace down (P0)"), "{md}");
    assert!(
        md.contains("| 2026-02-14 03:05 | Escalated to team-lead: not acknowledged within 5m |"),
        "{md}"
    );
    assert!(
        md.contains("Acknowledged:** 2026-02-14T03:16:00+00:00 by erin (16 min after declaration)"),
        "{md}"
    );
    assert!(
        md.contains("## Resolution\n\nRestarted the payment worker"),
        "{md}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_quick_acknowledgement_means_no_escalation() {
    let log: Log = Arc::default();
    let r = response(&log);
    let mut inc = r
        .declare("Slow search", Priority::P2, "Search p95 at 3 s")
        .await
        .unwrap();
    SystemClock.sleep(Duration::from_secs(60)).await;
    r.acknowledge(&mut inc, "sam");
    SystemClock.sleep(Duration::from_secs(5 * 3600)).await;
    assert_eq!(r.tick(&mut inc).await.unwrap(), vec!["cadence update"]);
    assert_eq!(inc.escalated_to, 0);
    assert!(sent_to(&log, "team-lead").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_channel_does_not_stop_the_others() {
    let log: Log = Arc::default();
    let r = IncidentResponse::new(IncidentConfig::default())
        .level("slack", level("slack", &log, true))
        .level("pager", level("pager", &log, false))
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-02-14T03:00:00Z".parse().unwrap(),
        )));
    let declared = r
        .declare("DB failover", Priority::P1, "Writes fail")
        .await
        .unwrap();
    assert!(
        declared.failed_deliveries[0].contains("rate limited"),
        "{:?}",
        declared.failed_deliveries
    );
    assert!(
        sent_to(&log, "pager").is_empty(),
        "declaration goes to the first level only"
    );
    let mut incident = Incident {
        id: "INC-1".into(),
        title: "DB failover".into(),
        priority: Priority::P1,
        impact: String::new(),
        declared_at: "2026-02-14T02:00:00Z".parse().unwrap(),
        acknowledged: None,
        resolved: None,
        escalated_to: 1,
        notified: Vec::new(),
        failed_deliveries: Vec::new(),
        last_update: "2026-02-14T02:00:00Z".parse().unwrap(),
        timeline: vec![],
        root_cause: Some("failover script raced the health check".into()),
        follow_ups: vec!["Add a lock to the failover script".into()],
        postmortem_due: None,
        retrospective_due: None,
    };
    assert!(r.resolve(&mut incident, "Manual failover").await.is_err());
    assert_eq!(
        sent_to(&log, "pager").last(),
        Some(&NotificationEvent::Resolve),
        "the pager still heard about it"
    );
    let md = incident.postmortem();
    assert!(
        md.contains("failover script raced") && md.contains("- [ ] Add a lock"),
        "{md}"
    );
}

#[tokio::test]
async fn bad_declarations_and_configs_are_rejected() {
    let log: Log = Arc::default();
    assert!(response(&log).declare(" ", Priority::P0, "").await.is_err());
    assert!(
        IncidentResponse::new(IncidentConfig::default())
            .declare("x", Priority::P0, "")
            .await
            .is_err(),
        "no levels"
    );
    let c = IncidentConfig::from_toml(
        "[priorities.P1]\nresponse_time = \"1h\"\nupdate_every = \"30m\"\nseverity = \"error\"",
    )
    .unwrap();
    assert_eq!(c.priorities[&Priority::P1].response_time.as_secs(), 3600);
    assert_eq!(
        c.priorities[&Priority::P0].response_time.as_secs(),
        300,
        "the others keep their defaults"
    );
    match IncidentConfig::from_toml(
        "[priorities.P0]\nresponse_time = \"0s\"\nupdate_every = \"0s\"\nseverity = \"critical\"",
    )
    .unwrap_err()
    .kind()
    {
        ErrorKind::InvalidInput { field, .. } => assert_eq!(field, "priorities.P0.response_time"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_incident_survives_a_restart_as_json() {
    let log: Log = Arc::default();
    let r = response(&log);
    let inc = r
        .declare("Queue backlog", Priority::P3, "Emails delayed")
        .await
        .unwrap();
    let saved = serde_json::to_string(&inc).unwrap();
    let back: Incident = serde_json::from_str(&saved).unwrap();
    assert_eq!(back, inc);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_records_what_it_would_send_and_sends_nothing() {
    let mut silent = MockNotifier::new();
    silent.expect_name().return_const("pager".to_string());
    silent.expect_send().never();
    let mut lead = MockNotifier::new();
    lead.expect_name().return_const("lead".to_string());
    lead.expect_send().never();
    let r = IncidentResponse::new(IncidentConfig::default())
        .level("on-call", Arc::new(silent))
        .level("team-lead", Arc::new(lead))
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-02-14T03:00:00Z".parse().unwrap(),
        )))
        .dry_run();
    let mut inc = r.declare("Drill", Priority::P0, "Game day").await.unwrap();
    SystemClock.sleep(Duration::from_secs(6 * 60)).await;
    assert_eq!(
        r.tick(&mut inc).await.unwrap(),
        vec!["escalated to team-lead"]
    );
    r.resolve(&mut inc, "Drill over").await.unwrap();
    let rehearsed: Vec<&str> = inc
        .timeline
        .iter()
        .map(|e| e.text.as_str())
        .filter(|t| t.starts_with("(dry run)"))
        .collect();
    assert_eq!(
        rehearsed,
        vec![
            "(dry run) would send Trigger \"[P0] Drill\" to on-call",
            "(dry run) would send Trigger \"[P0] Drill — ESCALATED: not acknowledged within 5m\" to team-lead",
            "(dry run) would send Resolve \"[P0] Drill: resolved\" to on-call, team-lead",
        ]
    );
}

fn at(minutes: u64) -> Duration {
    Duration::from_secs(minutes * 60)
}

/// Ticks every minute for `minutes`.
async fn run_for(r: &IncidentResponse, inc: &mut Incident, minutes: u64) {
    for _ in 0..minutes {
        SystemClock.sleep(at(1)).await;
        r.tick(inc).await.unwrap();
    }
}

fn told(inc: &Incident) -> Vec<&str> {
    inc.notified.iter().map(String::as_str).collect()
}

/// Seed 003: L1 on call, L2 after 15 minutes, L3 after 30, L4 after an hour, while nobody
/// acknowledges.
#[tokio::test(start_paused = true)]
async fn seed_003s_matrix_escalates_at_15_30_and_60_minutes() {
    let log: Log = Arc::default();
    let config = IncidentConfig::from_toml(
        r#"
[[escalation]]
level = "senior"
when = "unacknowledged"
after = "15m"
[[escalation]]
level = "lead"
when = "unacknowledged"
after = "30m"
[[escalation]]
level = "vp"
when = "unacknowledged"
after = "1h"
"#,
    )
    .unwrap();
    let r = IncidentResponse::new(config)
        .level("on-call", level("on-call", &log, false))
        .level("senior", level("senior", &log, false))
        .level("lead", level("lead", &log, false))
        .level("vp", level("vp", &log, false))
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-02-14T03:00:00Z".parse().unwrap(),
        )));
    let mut inc = r
        .declare("API down", Priority::P1, "5xx everywhere")
        .await
        .unwrap();
    run_for(&r, &mut inc, 14).await;
    assert_eq!(told(&inc), ["on-call"]);
    run_for(&r, &mut inc, 1).await;
    assert_eq!(told(&inc), ["on-call", "senior"]);
    run_for(&r, &mut inc, 15).await;
    assert_eq!(told(&inc), ["on-call", "senior", "lead"]);
    r.acknowledge(&mut inc, "sam");
    run_for(&r, &mut inc, 60).await;
    assert_eq!(
        told(&inc),
        ["on-call", "senior", "lead"],
        "acknowledged at 30 min"
    );
    assert_eq!(sent_to(&log, "vp"), Vec::<NotificationEvent>::new());
}

/// Seeds 000 and 001 send critical incidents straight to leadership; seed 000 also escalates
/// on time to resolve (1 h → team lead, 4 h → CTO, acknowledged or not) and on cost.
#[tokio::test(start_paused = true)]
async fn leadership_at_once_then_by_time_to_resolve_and_by_cost() {
    let log: Log = Arc::default();
    let config = IncidentConfig::from_toml(
        r#"
[[escalation]]
level = "leadership"
priorities = ["P0"]
when = "declared"
[[escalation]]
level = "team-lead"
when = "unresolved"
after = "1h"
[[escalation]]
level = "cto"
when = "unresolved"
after = "4h"
[[escalation]]
level = "finance"
when = "metric"
metric = "named"
name = "daily_cost_usd"
above = 500
window = "24h"
"#,
    )
    .unwrap();
    let clock = Arc::new(SimulatedClock::starting_at(
        "2026-02-14T03:00:00Z".parse().unwrap(),
    ));
    let cost = Arc::new(ops_core::memory::MemoryMetricsSource::new("billing"));
    let build = |config: IncidentConfig| {
        IncidentResponse::new(config)
            .level("on-call", level("on-call", &log, false))
            .level("leadership", level("leadership", &log, false))
            .level("team-lead", level("team-lead", &log, false))
            .level("cto", level("cto", &log, false))
            .level("finance", level("finance", &log, false))
            .metrics(cost.clone())
            .with_clock(clock.clone())
    };
    let r = build(config.clone());
    let p0 = r
        .declare("Daemon loops", Priority::P0, "spend")
        .await
        .unwrap();
    assert_eq!(
        told(&p0),
        ["on-call", "leadership"],
        "P0 goes to leadership at once"
    );
    let mut p1 = r.declare("Slow", Priority::P1, "latency").await.unwrap();
    assert_eq!(told(&p1), ["on-call"]);
    r.acknowledge(&mut p1, "ana");
    run_for(&r, &mut p1, 59).await;
    assert_eq!(told(&p1), ["on-call"]);
    run_for(&r, &mut p1, 1).await;
    assert_eq!(
        told(&p1),
        ["on-call", "team-lead"],
        "unresolved after 1 h, though acknowledged"
    );
    // Cost crosses $500 over the last day: finance is told, once.
    let metric = Metric::Named {
        name: "daily_cost_usd".into(),
    };
    cost.record_sample(
        clock.now() - chrono::Duration::hours(1),
        None,
        metric,
        640.0,
    )
    .unwrap();
    run_for(&r, &mut p1, 5).await;
    assert_eq!(told(&p1), ["on-call", "team-lead", "finance"]);
    assert_eq!(sent_to(&log, "finance"), vec![NotificationEvent::Trigger]);
    let line = p1
        .timeline
        .iter()
        .find(|e| e.text.starts_with("Escalated to finance"))
        .unwrap();
    assert!(
        line.text
            .contains("daily_cost_usd at 640 over 1d (above 500)"),
        "{}",
        line.text
    );
    run_for(&r, &mut p1, 180).await;
    assert_eq!(
        told(&p1),
        ["on-call", "team-lead", "finance", "cto"],
        "4 h unresolved"
    );
    r.resolve(&mut p1, "fixed").await.unwrap();
    assert_eq!(
        sent_to(&log, "cto").last(),
        Some(&NotificationEvent::Resolve),
        "every level told hears of the resolution"
    );

    // A rule naming no level, or a metric rule without a source, is refused up front.
    let mut bad = config.clone();
    bad.escalation[0].level = "board".into();
    let e = build(bad)
        .declare("x", Priority::P0, "y")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("escalation[0].level"), "{e}");
    assert!(e.to_string().contains("no level named \"board\""), "{e}");
    let e = IncidentResponse::new(config)
        .level("on-call", level("on-call", &log, false))
        .level("leadership", level("leadership", &log, false))
        .level("team-lead", level("team-lead", &log, false))
        .level("cto", level("cto", &log, false))
        .level("finance", level("finance", &log, false))
        .declare("x", Priority::P0, "y")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("needs IncidentResponse::metrics"),
        "{e}"
    );
    for (toml, field) in [
        (
            "[[escalation]]\nlevel = \"a\"\nwhen = \"unresolved\"\nafter = \"0s\"",
            "escalation[0].after",
        ),
        (
            "[[escalation]]\nlevel = \"a\"\nwhen = \"metric\"\nmetric = \"named\"\nname = \"\"\nabove = 1\nwindow = \"1h\"",
            "escalation[0].metric",
        ),
        (
            "[[escalation]]\nlevel = \" \"\nwhen = \"declared\"",
            "escalation[0].level",
        ),
    ] {
        let e = IncidentConfig::from_toml(toml).unwrap_err();
        assert!(e.to_string().contains(field), "{toml}: {e}");
    }
    assert!(IncidentConfig::from_toml("[[escalation]]\nlevel = \"a\"\nwhen = \"later\"").is_err());
}

/// Seed 004: the write-up within 24 h of a P1, the retrospective within 48 h.
#[tokio::test(start_paused = true)]
async fn the_postmortem_deadline_comes_from_the_priority() {
    let log: Log = Arc::default();
    let config = IncidentConfig::from_toml(
        "[priorities.P1]\nresponse_time = \"15m\"\nupdate_every = \"30m\"\nseverity = \"critical\"\npostmortem_within = \"24h\"\nretrospective_within = \"48h\"",
    )
    .unwrap();
    let r = IncidentResponse::new(config)
        .level("on-call", level("on-call", &log, false))
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-02-14T03:00:00Z".parse().unwrap(),
        )));
    let mut inc = r
        .declare("Stream down", Priority::P1, "no witnesses")
        .await
        .unwrap();
    r.resolve(&mut inc, "restarted event-stream").await.unwrap();
    assert_eq!(
        inc.postmortem_due,
        Some("2026-02-15T03:00:00Z".parse().unwrap())
    );
    assert_eq!(
        inc.retrospective_due,
        Some("2026-02-16T03:00:00Z".parse().unwrap())
    );
    let md = inc.postmortem();
    assert!(
        md.contains("**Postmortem due:** 2026-02-15T03:00:00+00:00"),
        "{md}"
    );
    assert!(
        inc.timeline
            .iter()
            .any(|e| e.text == "Retrospective due by 2026-02-16 03:00 UTC")
    );
    // A priority without a deadline promises none.
    let mut p2 = r.declare("Slow page", Priority::P2, "").await.unwrap();
    r.resolve(&mut p2, "cache warmed").await.unwrap();
    assert_eq!((p2.postmortem_due, p2.retrospective_due), (None, None));
}

#[tokio::test(start_paused = true)]
async fn a_level_that_cannot_be_told_does_not_undeclare_the_incident() {
    let log: Log = Arc::default();
    let response = IncidentResponse::new(IncidentConfig::default())
        .level("on-call", level("on-call", &log, true))
        .level("team-lead", level("team-lead", &log, false))
        .with_clock(Arc::new(SimulatedClock::starting_at(
            "2026-02-14T03:00:00Z".parse().unwrap(),
        )));
    let inc = response
        .declare("Checkout down", Priority::P0, "no orders")
        .await
        .expect("declared although its first level could not be told");
    assert_eq!(
        inc.failed_deliveries.len(),
        1,
        "{:?}",
        inc.failed_deliveries
    );
    assert!(
        inc.failed_deliveries[0].starts_with("on-call: "),
        "{:?}",
        inc.failed_deliveries
    );
    assert!(
        inc.timeline
            .iter()
            .any(|e| e.text.starts_with("Could not notify on-call")),
        "{:?}",
        inc.timeline
    );
    assert_eq!(
        sent_to(&log, "on-call"),
        [NotificationEvent::Trigger],
        "it was tried"
    );
    // A record written before the field existed still reads.
    let mut json = serde_json::to_value(&inc).unwrap();
    json.as_object_mut().unwrap().remove("failed_deliveries");
    let back: Incident = serde_json::from_value(json).unwrap();
    assert!(back.failed_deliveries.is_empty());
}
