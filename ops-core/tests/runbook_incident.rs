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
        md.contains("| 2026-02-14 03:05 | Not acknowledged within 5m: escalated to team-lead |"),
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
    let err = r
        .declare("DB failover", Priority::P1, "Writes fail")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rate limited"), "{err}");
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
        last_update: "2026-02-14T02:00:00Z".parse().unwrap(),
        timeline: vec![],
        root_cause: Some("failover script raced the health check".into()),
        follow_ups: vec!["Add a lock to the failover script".into()],
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
            "(dry run) would send Trigger \"[P0] Drill — ESCALATED, unacknowledged\" to team-lead",
            "(dry run) would send Resolve \"[P0] Drill: resolved\" to on-call, team-lead",
        ]
    );
}
