//! The router: severity routes, a fan-out where one failing channel never stops the others,
//! escalation on the paused clock, and the message templates.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::contracts::*;
use ops_core::runbooks::{Incident, Priority, RunbookConfig};
use ops_core::{Error, ErrorKind, Result};
use ops_notify::{NotifyRouter, RouterConfig, templates};

/// Records what it is sent; fails every send when `down`.
#[derive(Default)]
struct Recorder {
    name: String,
    down: bool,
    sent: Mutex<Vec<(String, NotificationEvent)>>,
}

#[async_trait]
impl Notifier for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    async fn send(&self, n: &Notification) -> Result<Receipt> {
        if self.down {
            return Err(Error::new(
                "test",
                "send",
                ErrorKind::Unavailable { retry_after: None },
            ));
        }
        self.sent.lock().unwrap().push((n.title.clone(), n.event));
        Ok(Receipt {
            notifier: self.name.clone(),
            id: None,
            dedup_key: n.dedup_key.clone(),
        })
    }
}

fn recorder(name: &str, down: bool) -> Arc<Recorder> {
    Arc::new(Recorder {
        name: name.into(),
        down,
        ..Default::default()
    })
}

const CONFIG: &str = r#"
escalate_from = "error"
[routes]
critical = ["pagerduty", "slack-incidents", "email-oncall"]
warning = ["slack-alerts"]
[[escalation]]
after = "15m"
channels = ["pagerduty-secondary"]
[[escalation]]
after = "30m"
channels = ["email-management"]
"#;

struct World {
    router: NotifyRouter,
    ch: BTreeMap<&'static str, Arc<Recorder>>,
}

fn world(down: &[&str]) -> World {
    let names = [
        "pagerduty",
        "slack-incidents",
        "email-oncall",
        "slack-alerts",
        "pagerduty-secondary",
        "email-management",
    ];
    let ch: BTreeMap<&'static str, Arc<Recorder>> = names
        .iter()
        .map(|n| (*n, recorder(n, down.contains(n))))
        .collect();
    let channels: BTreeMap<String, Arc<dyn Notifier>> = ch
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone() as Arc<dyn Notifier>))
        .collect();
    let clock = Arc::new(SimulatedClock::starting_at(
        "2026-11-23T09:00:00Z".parse().unwrap(),
    ));
    let router = NotifyRouter::new(RouterConfig::from_toml(CONFIG).unwrap(), channels)
        .unwrap()
        .with_clock(clock);
    World { router, ch }
}

fn sent(w: &World, ch: &str) -> usize {
    w.ch[ch].sent.lock().unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn one_channel_down_never_hides_the_others() {
    let w = world(&["pagerduty"]);
    let n = Notification::new(Severity::Critical, "checkout is down").dedup_key("incident/INC-1");
    let report = w.router.send_all(&n).await.unwrap();
    assert_eq!(report.delivered(), vec!["slack-incidents", "email-oncall"]);
    let failed = report.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "pagerduty");
    let receipt = w
        .router
        .send(&Notification::new(Severity::Critical, "again").dedup_key("incident/INC-2"))
        .await
        .unwrap();
    assert_eq!(
        receipt.id.as_deref(),
        Some("delivered to slack-incidents, email-oncall; failed: pagerduty: unavailable")
    );
    assert_eq!(
        sent(&w, "slack-alerts"),
        0,
        "a critical alert goes only where critical is routed"
    );
}

#[tokio::test(start_paused = true)]
async fn all_channels_down_is_an_error_and_unrouted_severities_are_refused() {
    let w = world(&["slack-alerts"]);
    let err = w
        .router
        .send(&Notification::new(Severity::Warning, "disk"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unavailable { .. }));
    let err = w
        .router
        .send(&Notification::new(Severity::Info, "fyi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unacknowledged_incident_escalates_level_by_level() {
    let w = world(&[]);
    w.router
        .send(
            &Notification::new(Severity::Critical, "checkout is down").dedup_key("incident/INC-3"),
        )
        .await
        .unwrap();
    pass(Duration::from_secs(14 * 60)).await;
    assert_eq!(sent(&w, "pagerduty-secondary"), 0, "not before 15 minutes");
    pass(Duration::from_secs(2 * 60)).await;
    assert_eq!(
        sent(&w, "pagerduty-secondary"),
        1,
        "level 1 after 15 minutes"
    );
    assert!(
        w.ch["pagerduty-secondary"].sent.lock().unwrap()[0]
            .0
            .starts_with("[not acknowledged after 15m]")
    );
    assert_eq!(sent(&w, "email-management"), 0);
    // Someone acknowledges at 20 minutes: level 2 never fires.
    let ack = Notification::new(Severity::Critical, "ack")
        .dedup_key("incident/INC-3")
        .event(NotificationEvent::Acknowledge);
    w.router.send(&ack).await.unwrap();
    assert_eq!(
        sent(&w, "pagerduty-secondary"),
        2,
        "the acknowledgement reaches the escalated level too"
    );
    pass(Duration::from_secs(60 * 60)).await;
    assert_eq!(
        sent(&w, "email-management"),
        0,
        "acknowledged: no more escalation"
    );
}

#[tokio::test(start_paused = true)]
async fn warnings_do_not_escalate_and_resolve_stops_escalation() {
    let w = world(&[]);
    w.router
        .send(&Notification::new(Severity::Warning, "disk 85%").dedup_key("alert/disk"))
        .await
        .unwrap();
    w.router
        .send(&Notification::new(Severity::Critical, "db down").dedup_key("incident/INC-4"))
        .await
        .unwrap();
    w.router
        .send(
            &Notification::new(Severity::Critical, "db back")
                .dedup_key("incident/INC-4")
                .event(NotificationEvent::Resolve),
        )
        .await
        .unwrap();
    pass(Duration::from_secs(2 * 3600)).await;
    assert_eq!(
        (
            sent(&w, "pagerduty-secondary"),
            sent(&w, "email-management")
        ),
        (0, 0)
    );
    assert_eq!(
        w.ch["pagerduty"].sent.lock().unwrap()[1].1,
        NotificationEvent::Resolve,
        "the resolve went where the trigger went"
    );
}

#[test]
fn configs_naming_missing_channels_or_unordered_levels_are_refused() {
    let err =
        NotifyRouter::new(RouterConfig::from_toml(CONFIG).unwrap(), BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("which is not given"), "{err}");
    let bad = RouterConfig::from_toml(
        "[routes]\ncritical = [\"a\"]\n[[escalation]]\nafter = \"30m\"\nchannels = [\"b\"]\n[[escalation]]\nafter = \"15m\"\nchannels = [\"c\"]",
    );
    assert!(bad.unwrap_err().to_string().contains("escalation[1].after"));
}

#[test]
fn templates_carry_the_incident_key_and_event() {
    let declared_at = "2026-11-23T09:00:00Z".parse().unwrap();
    let i = Incident {
        id: "INC-20261123-0900".into(),
        title: "Checkout is down".into(),
        priority: Priority::P0,
        impact: "no orders can be placed".into(),
        declared_at,
        acknowledged: None,
        resolved: None,
        escalated_to: 0,
        notified: Vec::new(),
        failed_deliveries: Vec::new(),
        last_update: declared_at,
        timeline: Vec::new(),
        root_cause: None,
        follow_ups: Vec::new(),
        postmortem_due: None,
        retrospective_due: None,
    };
    let d = templates::incident_declared(&i, "alice", Some("https://status.acme.dev"));
    assert_eq!(
        (d.severity, d.event, d.dedup_key.as_deref()),
        (
            Severity::Critical,
            NotificationEvent::Trigger,
            Some("incident/INC-20261123-0900")
        )
    );
    assert!(d.body_markdown.contains("alice") && d.links[0].url == "https://status.acme.dev");
    let u = templates::incident_update(&i, "rolled back to api-00041", 30);
    assert_eq!(u.event, NotificationEvent::Update);
    assert!(u.validate().is_ok());
    let r = templates::incident_resolved(
        &i,
        "rolled back",
        declared_at + chrono::Duration::minutes(95),
    );
    assert!(
        r.body_markdown.contains("1 h 35 min"),
        "{}",
        r.body_markdown
    );
    let window = TimeWindow::new(declared_at, declared_at + chrono::Duration::hours(2)).unwrap();
    let m =
        templates::scheduled_maintenance("database upgrade", &window, "read-only for 10 minutes");
    assert_eq!(m.dedup_key.as_deref(), Some("maintenance/202611230900"));
}

/// Lets paused tokio time pass (through the injected clock, as the router waits).
async fn pass(d: Duration) {
    SimulatedClock::starting_at("2026-11-23T09:00:00Z".parse().unwrap())
        .sleep(d)
        .await;
}

/// Random TOML around a working config: a valid router config or `InvalidInput`, never a panic.
#[test]
fn the_router_config_loader_survives_random_toml() {
    let base = RouterConfig::from_toml(CONFIG).unwrap();
    ops_core::testkit::config_loader_from(&base, 300);
}

/// One escalation model: an incident escalates by the router's matrix (once, through the
/// router's channels), plus the incident config's own rules — here seed 000's "cannot resolve
/// in 1 hour → team lead".
#[tokio::test(start_paused = true)]
async fn an_incident_escalates_by_the_routers_matrix_once() {
    let config = RouterConfig::from_toml(
        r#"
[routes]
critical = ["slack"]
[[escalation]]
after = "15m"
channels = ["pagerduty"]
[[escalation]]
after = "30m"
channels = ["email-management"]
"#,
    )
    .unwrap();
    let (slack, pager, email, lead) = (
        recorder("slack", false),
        recorder("pagerduty", false),
        recorder("email-management", false),
        recorder("team-lead", false),
    );
    let channels: BTreeMap<String, Arc<dyn Notifier>> = [
        ("slack", slack.clone() as Arc<dyn Notifier>),
        ("pagerduty", pager.clone()),
        ("email-management", email.clone()),
        ("team-lead", lead.clone()),
    ]
    .map(|(n, c)| (n.to_string(), c))
    .into();
    let clock = Arc::new(SimulatedClock::starting_at(
        "2026-12-01T09:00:00Z".parse().unwrap(),
    ));
    let router = NotifyRouter::new(config, channels)
        .unwrap()
        .with_clock(clock.clone());
    let incident = ops_core::runbooks::IncidentConfig::from_toml(
        "[[escalation]]\nlevel = \"team-lead\"\nwhen = \"unresolved\"\nafter = \"1h\"",
    )
    .unwrap();
    let response = router.incident_response(incident).unwrap();
    let mut inc = response
        .declare("Checkout down", Priority::P0, "all payments fail")
        .await
        .unwrap();
    // Triggers only: every level told also hears the cadence updates.
    let count = |r: &Recorder| {
        r.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| *e == NotificationEvent::Trigger)
            .count()
    };
    assert_eq!((count(&slack), count(&pager)), (1, 0), "routes first");
    for _ in 0..20 {
        clock.sleep(Duration::from_secs(60)).await;
        response.tick(&mut inc).await.unwrap();
    }
    assert_eq!(
        count(&pager),
        1,
        "paged once at 15 min, by the response and not the router too"
    );
    response.acknowledge(&mut inc, "ana");
    for _ in 0..45 {
        clock.sleep(Duration::from_secs(60)).await;
        response.tick(&mut inc).await.unwrap();
    }
    assert_eq!(count(&email), 0, "acknowledged before 30 min");
    assert_eq!(
        count(&lead),
        1,
        "unresolved after an hour, acknowledged or not"
    );
    response.resolve(&mut inc, "fixed").await.unwrap();
    assert_eq!(
        pager.sent.lock().unwrap().last().map(|(_, e)| *e),
        Some(NotificationEvent::Resolve)
    );
    // A rule naming something that is not a channel is refused.
    let bad = ops_core::runbooks::IncidentConfig::from_toml(
        "[[escalation]]\nlevel = \"board\"\nwhen = \"declared\"",
    )
    .unwrap();
    let e = router.incident_response(bad).err().unwrap();
    assert!(e.to_string().contains("\"board\" is not a channel"), "{e}");
}
