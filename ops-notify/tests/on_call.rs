//! Escalation to whoever is on call: `@on-call` and `@on-call-secondary` resolved through a
//! rotation and the contacts at the moment each level fires; a person without a contact is a
//! failed delivery in the report, never a silent skip.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::calendar::{Override, Rotation, RotationConfig};
use ops_core::clock::{Clock, SimulatedClock};
use ops_core::contracts::*;
use ops_core::memory::MemoryNotifier;
use ops_core::runbooks::RunbookConfig;
use ops_notify::{NotifyRouter, RouterConfig};

const CONFIG: &str = r#"
[routes]
critical = ["slack-incidents"]
[[escalation]]
after = "15m"
channels = ["@on-call"]
[[escalation]]
after = "30m"
channels = ["@on-call-secondary", "email-management"]
[contacts]
alice = "sms-alice"
bob = "sms-bob"
carol = "sms-carol"
"#;

/// Monday 30 November 2026, 22:00 UTC: the second week, bob's.
fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-30T22:00:00Z".parse().unwrap()
}

fn rotation(overrides: Vec<Override>) -> Rotation {
    Rotation::new(RotationConfig {
        people: vec!["alice".into(), "bob".into(), "carol".into()],
        hand_off: "0 9 * * MON".into(),
        time_zone: "Europe/Berlin".into(),
        starts: "2026-11-23T08:00:00Z".parse().unwrap(),
        overrides,
        ..RotationConfig::default()
    })
    .unwrap()
}

struct World {
    router: NotifyRouter,
    ch: BTreeMap<String, Arc<MemoryNotifier>>,
}

fn world(source: Option<Rotation>) -> World {
    let names = [
        "slack-incidents",
        "email-management",
        "sms-alice",
        "sms-bob",
        "sms-carol",
    ];
    let ch: BTreeMap<String, Arc<MemoryNotifier>> = names
        .iter()
        .map(|n| (n.to_string(), Arc::new(MemoryNotifier::new(n))))
        .collect();
    let channels = ch
        .iter()
        .map(|(k, v)| (k.clone(), v.clone() as Arc<dyn Notifier>))
        .collect();
    let mut router = NotifyRouter::new(RouterConfig::from_toml(CONFIG).unwrap(), channels)
        .unwrap()
        .with_clock(Arc::new(SimulatedClock::starting_at(now())));
    if let Some(r) = source {
        router = router.with_on_call(Arc::new(r));
    }
    World { router, ch }
}

impl World {
    fn sent(&self, ch: &str) -> Vec<Notification> {
        self.ch[ch].sent()
    }
}

async fn pass(d: Duration) {
    SimulatedClock::starting_at(now()).sleep(d).await;
}

fn page() -> Notification {
    Notification::new(Severity::Critical, "checkout is down").dedup_key("incident/INC-9")
}

#[tokio::test(start_paused = true)]
async fn escalation_pages_the_person_on_call_then_their_backup() {
    let w = world(Some(rotation(vec![])));
    w.router.send_all(&page()).await.unwrap();
    pass(Duration::from_secs(16 * 60)).await;
    let bob = w.sent("sms-bob");
    assert_eq!(bob.len(), 1, "bob is on call in the second week");
    assert!(bob[0].fields.contains(&("on_call".into(), "bob".into())));
    assert!(w.sent("sms-alice").is_empty() && w.sent("sms-carol").is_empty());
    pass(Duration::from_secs(15 * 60)).await;
    assert_eq!(w.sent("sms-carol").len(), 1, "carol backs bob up");
    assert_eq!(w.sent("email-management").len(), 1);
    // The resolution reaches everyone the incident reached.
    let resolve = page().event(NotificationEvent::Resolve);
    let report = w.router.send_all(&resolve).await.unwrap();
    let mut to = report.delivered();
    to.sort();
    assert_eq!(
        to,
        vec![
            "email-management",
            "slack-incidents",
            "sms-bob",
            "sms-carol"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_override_without_a_contact_is_a_failed_delivery_not_a_silent_skip() {
    let dave = Override {
        person: "dave".into(),
        from: "2026-11-30T00:00:00Z".parse().unwrap(),
        until: "2026-12-02T00:00:00Z".parse().unwrap(),
        reason: "bob is ill".into(),
    };
    let w = world(None);
    let config = RouterConfig {
        routes: [(Severity::Critical, vec!["@on-call".to_string()])].into(),
        ..RouterConfig::from_toml(CONFIG).unwrap()
    };
    let channels =
        w.ch.iter()
            .map(|(k, v)| (k.clone(), v.clone() as Arc<dyn Notifier>))
            .collect();
    let router = NotifyRouter::new(config, channels)
        .unwrap()
        .with_clock(Arc::new(SimulatedClock::starting_at(now())))
        .with_on_call(Arc::new(rotation(vec![dave])));
    let report = router.send_all(&page()).await.unwrap();
    let failed = report.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "@on-call");
    assert!(
        failed[0].1.to_string().contains("dave, who has no channel"),
        "{}",
        failed[0].1
    );
    let err = router.send(&page()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn routes_naming_on_call_without_a_source_say_so() {
    let w = world(None);
    w.router.send_all(&page()).await.unwrap();
    pass(Duration::from_secs(16 * 60)).await;
    // Nobody to page: the level fails loudly (logged, in the report); the incident channel
    // still had the trigger.
    assert_eq!(w.sent("slack-incidents").len(), 1);
    assert!(w.sent("sms-bob").is_empty());
}

#[test]
fn unknown_at_channels_and_missing_contact_channels_are_refused() {
    let bad = CONFIG.replace("@on-call-secondary", "@on-duty");
    let e = RouterConfig::from_toml(&bad).unwrap_err();
    assert!(e.to_string().contains("@on-call"), "{e}");
    let config = RouterConfig::from_toml(CONFIG).unwrap();
    let channels: BTreeMap<String, Arc<dyn Notifier>> = ["slack-incidents", "email-management"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Arc::new(MemoryNotifier::new(n)) as Arc<dyn Notifier>,
            )
        })
        .collect();
    let e = NotifyRouter::new(config, channels).unwrap_err();
    assert!(e.to_string().contains("sms-alice"), "{e}");
}
