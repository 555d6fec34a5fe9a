//! The [`Notifier`] suite.

use super::{expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{Notification, NotificationEvent, Notifier, Severity};

/// Sends an incident's trigger, update and resolution, and checks invalid notifications are
/// refused before anything is sent. `dedup_key` should be unique per run.
pub async fn notifier(notifier: &dyn Notifier, dedup_key: &str) {
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
        Some(dedup_key),
        "the receipt keeps the dedup key"
    );
    for event in [NotificationEvent::Update, NotificationEvent::Resolve] {
        let n = Notification::new(Severity::Info, "testkit: update")
            .dedup_key(dedup_key)
            .event(event);
        let r = expect_ok("send update/resolve", notifier.send(&n).await);
        assert_eq!(r.dedup_key.as_deref(), Some(dedup_key));
    }
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
