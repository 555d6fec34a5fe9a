//! Block Kit rendering of a notification: a header with the severity, the Markdown body, the
//! fields side by side, links as buttons, and a context line.

use ops_core::contracts::{Notification, NotificationEvent, Severity};
use serde_json::{Value, json};

/// Slack's limits: header 150, section text 3000, 10 fields, 25 buttons.
const HEADER_MAX: usize = 150;
const TEXT_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max - 1) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", &s[..i]),
        _ => s.to_string(),
    }
}

/// The emoji and word for a severity.
pub fn badge(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Critical => (":red_circle:", "CRITICAL"),
        Severity::Error => (":large_orange_circle:", "ERROR"),
        Severity::Warning => (":large_yellow_circle:", "WARNING"),
        Severity::Info => (":large_blue_circle:", "INFO"),
    }
}

fn event_word(e: NotificationEvent) -> &'static str {
    match e {
        NotificationEvent::Trigger => "triggered",
        NotificationEvent::Update => "update",
        NotificationEvent::Acknowledge => "acknowledged",
        NotificationEvent::Resolve => "resolved",
    }
}

/// The fallback text (notifications, screen readers).
pub fn text(n: &Notification) -> String {
    let (_, word) = badge(n.severity);
    match n.event {
        NotificationEvent::Resolve => format!("RESOLVED: {}", n.title),
        NotificationEvent::Trigger => format!("{word}: {}", n.title),
        e => format!("{} ({}): {}", word, event_word(e), n.title),
    }
}

/// The blocks.
pub fn blocks(n: &Notification) -> Vec<Value> {
    let (emoji, word) = badge(n.severity);
    let head = match n.event {
        NotificationEvent::Resolve => format!(":white_check_mark: RESOLVED: {}", n.title),
        _ => format!("{emoji} {word}: {}", n.title),
    };
    let mut out = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&head, HEADER_MAX), "emoji": true}}),
    ];
    if !n.body_markdown.trim().is_empty() {
        out.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&n.body_markdown, TEXT_MAX)}}));
    }
    for chunk in n.fields.chunks(10) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": cut(&format!("*{k}*\n{v}"), FIELD_MAX)}))
            .collect();
        out.push(json!({"type": "section", "fields": fields}));
    }
    if !n.links.is_empty() {
        let buttons: Vec<Value> = n
            .links
            .iter()
            .take(25)
            .map(|l| json!({"type": "button", "text": {"type": "plain_text", "text": cut(&l.label, 75)}, "url": l.url}))
            .collect();
        out.push(json!({"type": "actions", "elements": buttons}));
    }
    let mut context = format!("severity: {} · {}", n.severity, event_word(n.event));
    if let Some(k) = &n.dedup_key {
        context.push_str(&format!(" · `{k}`"));
    }
    out.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_becomes_header_body_fields_buttons_and_context() {
        let n = Notification::new(Severity::Critical, "api down")
            .body("*api* answers 503")
            .field("service", "api")
            .field("region", "europe-west1")
            .link("dashboard", "https://grafana.example/d/api")
            .dedup_key("incident/INC-1");
        let b = blocks(&n);
        assert_eq!(b[0]["text"]["text"], ":red_circle: CRITICAL: api down");
        assert_eq!(b[1]["text"]["text"], "*api* answers 503");
        assert_eq!(b[2]["fields"][1]["text"], "*region*\neurope-west1");
        assert_eq!(b[3]["elements"][0]["url"], "https://grafana.example/d/api");
        assert_eq!(
            b[4]["elements"][0]["text"],
            "severity: critical · triggered · `incident/INC-1`"
        );
        let long = Notification::new(Severity::Info, "x".repeat(400));
        assert_eq!(
            blocks(&long)[0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            HEADER_MAX
        );
    }
}
