//! Statuspage against its simulator: the Notifier suite, an incident's life on the page (its
//! components following), the dedup key surviving a restart, scheduled maintenance, errors and
//! the API key kept out of everything shown.

mod support;

use chrono::{DateTime, Duration, Utc};
use ops_core::ErrorKind;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Severity};
use ops_core::sim::{Fault, Simulator};
use ops_core::testkit;
use ops_notify::sim::{StatuspageSim, statuspage_components, statuspage_key, statuspage_page};
use ops_notify::{Maintenance, Statuspage, StatuspageConfig};
use support::http;

fn page(sim: &StatuspageSim) -> Statuspage {
    Statuspage::new(
        StatuspageConfig::new(statuspage_key(), statuspage_page())
            .components(statuspage_components()),
    )
    .unwrap()
    .with_base(&sim.uri(), http())
    .unwrap()
}

fn incident(key: &str, event: NotificationEvent, severity: Severity, body: &str) -> Notification {
    Notification::new(severity, "Checkout errors")
        .body(body)
        .dedup_key(key)
        .event(event)
}

#[tokio::test]
async fn statuspage_passes_the_notifier_suite() {
    let sim = StatuspageSim::start().await;
    testkit::notifier(&page(&sim), "incident/suite").await;
}

#[tokio::test]
async fn an_incident_opens_is_updated_and_resolves_with_its_components() {
    let sim = StatuspageSim::start().await;
    let page = page(&sim);
    let [api, _web] = statuspage_components();
    let first = page
        .send(&incident(
            "inc-1",
            NotificationEvent::Trigger,
            Severity::Critical,
            "We are looking into failed checkouts.",
        ))
        .await
        .unwrap();
    assert_eq!(sim.component_status(api).as_deref(), Some("major_outage"));
    let update = incident(
        "inc-1",
        NotificationEvent::Update,
        Severity::Critical,
        "A fix is being deployed.",
    )
    .field("status", "monitoring");
    let second = page.send(&update).await.unwrap();
    assert_eq!(first.id, second.id, "one incident per key");
    // A trigger repeated after a restart (a new client) updates the open incident.
    let again = self::page(&sim)
        .send(&incident(
            "inc-1",
            NotificationEvent::Trigger,
            Severity::Critical,
            "Still on it.",
        ))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    page.send(&incident(
        "inc-1",
        NotificationEvent::Resolve,
        Severity::Info,
        "Checkouts work again.",
    ))
    .await
    .unwrap();
    let all = sim.incidents();
    assert_eq!(all.len(), 1);
    let i = &all[0];
    assert_eq!(i.status, "resolved");
    assert_eq!(i.impact, "critical");
    let statuses: Vec<&str> = i.updates.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["investigating", "monitoring", "monitoring", "resolved"],
        "a repeated trigger keeps the stage the incident reached"
    );
    assert_eq!(sim.component_status(api).as_deref(), Some("operational"));

    // Resolved: an update under the same key has nothing open to go to.
    let err = page
        .send(&incident(
            "inc-1",
            NotificationEvent::Update,
            Severity::Error,
            "late",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn maintenance_is_announced_as_a_scheduled_incident() {
    let sim = StatuspageSim::start().await;
    let starts: DateTime<Utc> = "2026-12-06T02:00:00Z".parse().unwrap();
    let m = Maintenance {
        name: "Database upgrade".into(),
        body: "Checkout may be slow for up to 30 minutes.".into(),
        starts,
        ends: starts + Duration::hours(2),
        remind: true,
    };
    let announced = page(&sim).announce_maintenance(&m).await.unwrap();
    assert_eq!(announced.status, "scheduled");
    let held = &sim.incidents()[0];
    assert_eq!(
        held.scheduled,
        Some(("2026-12-06T02:00:00Z".into(), "2026-12-06T04:00:00Z".into()))
    );
    let backwards = Maintenance {
        ends: starts - Duration::hours(1),
        ..m
    };
    let err = page(&sim)
        .announce_maintenance(&backwards)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn errors_are_typed_and_the_key_never_shows() {
    let sim = StatuspageSim::start().await;
    // A wrong key: unauthorized, and the key is nowhere in the error.
    let wrong = Statuspage::new(StatuspageConfig::new("wrong-key-77e1", statuspage_page()))
        .unwrap()
        .with_base(&sim.uri(), http())
        .unwrap();
    let err = wrong
        .send(&incident(
            "k",
            NotificationEvent::Trigger,
            Severity::Error,
            "x",
        ))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unauthorized), "{err}");
    let shown = format!("{err} {err:?} {wrong:?}");
    assert!(
        !shown.contains("wrong-key-77e1") && !shown.contains(statuspage_key()),
        "{shown}"
    );

    // A component the page does not have: the page's reason, as invalid input.
    let bad = Statuspage::new(
        StatuspageConfig::new(statuspage_key(), statuspage_page()).components(["nope"]),
    )
    .unwrap()
    .with_base(&sim.uri(), http())
    .unwrap();
    let err = bad
        .send(&incident(
            "k2",
            NotificationEvent::Trigger,
            Severity::Error,
            "x",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { reason, .. } if reason.contains("does not exist")),
        "{err}"
    );

    // 420 is Statuspage's rate limit: nothing was done, so the create is sent again once the
    // wait is over, and opens one incident; a limit that does not lift is a typed error.
    sim.inject(
        Some("POST"),
        "/incidents",
        1,
        Fault::Status {
            status: 420,
            retry_after: None,
        },
    );
    page(&sim)
        .send(&Notification::new(Severity::Warning, "once"))
        .await
        .unwrap();
    assert_eq!(
        sim.incidents().iter().filter(|i| i.name == "once").count(),
        1
    );
    sim.inject(
        Some("POST"),
        "/incidents",
        100,
        Fault::Status {
            status: 420,
            retry_after: None,
        },
    );
    let err = page(&sim)
        .send(&Notification::new(Severity::Warning, "never"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    assert!(sim.incidents().iter().all(|i| i.name != "never"));

    // A page id that could leave the path is refused before anything is sent.
    for bad in ["", "a/b", "../x", "page id"] {
        assert!(
            Statuspage::new(StatuspageConfig::new("k", bad)).is_err(),
            "{bad:?}"
        );
    }
}
