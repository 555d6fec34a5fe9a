//! The [`Notifier`] suite.

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{Notification, NotificationEvent, Notifier, Severity};

/// The notifier suite's cases; `dedup_key` (the fixture) should be unique per run.
pub fn notifier_cases() -> Vec<Case<dyn Notifier, String>> {
    cases![dyn Notifier, String;
        an_incident_triggers_updates_and_resolves_under_its_key unless always,
        invalid_notifications_are_refused_before_sending unless always,
    ]
}

/// Sends an incident's trigger, update and resolution, and checks invalid notifications are
/// refused before anything is sent. `dedup_key` should be unique per run.
pub async fn notifier(notifier: &(dyn Notifier + 'static), dedup_key: &str) {
    check_cases(
        "notifier",
        notifier,
        &dedup_key.to_string(),
        &notifier_cases(),
    )
    .await;
}

async fn an_incident_triggers_updates_and_resolves_under_its_key(
    notifier: &dyn Notifier,
    dedup_key: &String,
) {
    let trigger = Notification::new(Severity::Critical, "testkit: service down")
        .body("**api** answers 503.")
        .field("service", "api")
        .link("dashboard", "https://example.com/d")
        .dedup_key(dedup_key);
    let r = expect_ok("send trigger", notifier.send(&trigger).await);
    assert_eq!(
        r.notifier,
        notifier.name(),
        "the receipt names the notifier"
    );
    assert_eq!(
        r.dedup_key.as_deref(),
        Some(dedup_key.as_str()),
        "the receipt keeps the dedup key"
    );
    for event in [NotificationEvent::Update, NotificationEvent::Resolve] {
        let n = Notification::new(Severity::Info, "testkit: update")
            .dedup_key(dedup_key)
            .event(event);
        let r = expect_ok("send update/resolve", notifier.send(&n).await);
        assert_eq!(r.dedup_key.as_deref(), Some(dedup_key.as_str()));
    }
}

async fn invalid_notifications_are_refused_before_sending(notifier: &dyn Notifier, _: &String) {
    expect_kind(
        "an empty title",
        notifier.send(&Notification::new(Severity::Info, " ")).await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
    let orphan = Notification::new(Severity::Info, "resolved").event(NotificationEvent::Resolve);
    expect_kind(
        "a resolve without dedup key",
        notifier.send(&orphan).await,
        |k| matches!(k, ErrorKind::InvalidInput { .. }),
    );
}
