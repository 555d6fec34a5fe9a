//! The seeds' messages as notifications: incident declared, update, resolved, scheduled
//! maintenance. All carry the incident id as dedup key, so every channel threads them.

use ops_core::contracts::{Incident, Priority};
use ops_core::contracts::{Notification, NotificationEvent, Severity, TimeWindow};

fn severity(p: Priority) -> Severity {
    match p {
        Priority::P0 => Severity::Critical,
        Priority::P1 => Severity::Error,
        Priority::P2 => Severity::Warning,
        Priority::P3 => Severity::Info,
    }
}

fn key(i: &Incident) -> String {
    format!("incident/{}", i.id)
}

/// "🔴 \[P0\] Checkout is down": what is affected, who leads, where to follow.
pub fn incident_declared(i: &Incident, commander: &str, status_page: Option<&str>) -> Notification {
    let mut n = Notification::new(
        severity(i.priority),
        format!("[{:?}] {}", i.priority, i.title),
    )
    .body(format!(
        "*Impact:* {}\n*Incident commander:* {commander}\nUpdates follow in this thread.",
        i.impact
    ))
    .field("incident", &i.id)
    .field("priority", format!("{:?}", i.priority))
    .field(
        "declared",
        i.declared_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
    .dedup_key(key(i));
    if let Some(url) = status_page {
        n = n.link("status page", url);
    }
    n
}

/// A status update: what is known, what is being done, when the next update comes.
pub fn incident_update(i: &Incident, status: &str, next_update_minutes: u32) -> Notification {
    Notification::new(
        severity(i.priority),
        format!("[{:?}] {}: update", i.priority, i.title),
    )
    .body(format!(
        "{status}\n_Next update in {next_update_minutes} minutes._"
    ))
    .field("incident", &i.id)
    .dedup_key(key(i))
    .event(NotificationEvent::Update)
}

/// Resolved: how, how long it lasted, and when the postmortem is due (the incident's
/// `postmortem_due`, set from its priority's policy; nothing promised when there is none).
pub fn incident_resolved(
    i: &Incident,
    resolution: &str,
    resolved_at: chrono::DateTime<chrono::Utc>,
) -> Notification {
    let minutes = (resolved_at - i.declared_at).num_minutes().max(0);
    let mut body = format!(
        "*Resolution:* {resolution}\n*Duration:* {} h {} min",
        minutes / 60,
        minutes % 60
    );
    if let Some(due) = i.postmortem_due {
        body.push_str(&format!(
            "\nThe postmortem is due by {} UTC.",
            due.format("%Y-%m-%d %H:%M")
        ));
    }
    if let Some(due) = i.retrospective_due {
        body.push_str(&format!(
            "\nThe retrospective is due by {} UTC.",
            due.format("%Y-%m-%d %H:%M")
        ));
    }
    Notification::new(
        severity(i.priority),
        format!("[{:?}] {}: resolved", i.priority, i.title),
    )
    .body(body)
    .field("incident", &i.id)
    .dedup_key(key(i))
    .event(NotificationEvent::Resolve)
}

/// Scheduled maintenance: when, what is affected, what users should expect.
pub fn scheduled_maintenance(title: &str, window: &TimeWindow, impact: &str) -> Notification {
    Notification::new(Severity::Info, format!("Scheduled maintenance: {title}"))
        .body(format!(
            "*When:* {} to {} UTC\n*Impact:* {impact}",
            window.start.format("%Y-%m-%d %H:%M"),
            window.end.format("%Y-%m-%d %H:%M")
        ))
        .field("starts", window.start.to_rfc3339())
        .field("ends", window.end.to_rfc3339())
        .dedup_key(format!("maintenance/{}", window.start.format("%Y%m%d%H%M")))
}
