//! Every reply the Slack and PagerDuty clients decode, in the shapes the official descriptions
//! allow (derived by `ops_conformance::replies`): Slack's from the reply types of its SDK
//! (`@slack/web-api`), PagerDuty's from its Events API v2 description. Only the fields always
//! sent, unknown fields, empty objects, and every described value. A typed error about the
//! content is allowed; a decode failure or a panic is not.

mod support;

use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_conformance::{Description, vendored};
use ops_core::contracts::*;
use ops_notify::{PagerDuty, PagerDutyConfig};
use serde_json::json;
use support::{http, slack_at};

fn slack_d() -> Description {
    vendored("slack-web-api.json")
}

fn incident(event: NotificationEvent) -> Notification {
    Notification::new(Severity::Critical, "API down")
        .dedup_key("inc-42")
        .event(event)
}

/// A channel whose history holds the incident's first message.
fn history_with_incident() -> serde_json::Value {
    json!({"ok": true, "messages": [{"type": "message", "ts": "1763888400.000100", "text": "API down",
        "metadata": {"event_type": ops_notify::slack::EVENT_TYPE,
                     "event_payload": {"dedup_key": "inc-42"}}}],
        "has_more": false, "response_metadata": {"next_cursor": ""}})
}

// Slack sends `ts` and `channel` with every successful post, although its SDK's generated
// types mark every field optional.
const POSTED: [&str; 2] = ["ts", "channel"];

#[tokio::test]
async fn slack_posts_in_every_described_shape() {
    Replay::new("POST", r"^/api/chat\.postMessage$")
        .also(
            "GET",
            r"^/api/conversations\.history$",
            json!({"ok": true, "messages": []}),
        )
        .each(
            variants(
                &slack_d(),
                "ChatPostMessageResponse.ChatPostMessageResponse",
                &POSTED,
            ),
            |base| async move {
                slack_at(&base)
                    .send(&incident(NotificationEvent::Trigger))
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn slack_history_in_every_described_shape() {
    let posted = json!({"ok": true, "channel": "C0123456789", "ts": "1763888460.000200"});
    Replay::new("GET", r"^/api/conversations\.history$")
        .then(json!({"ok": true, "messages": []}))
        .also("POST", r"^/api/chat\.postMessage$", posted.clone())
        .also("POST", r"^/api/chat\.update$", posted)
        .each(
            variants(
                &slack_d(),
                "ConversationsHistoryResponse.ConversationsHistoryResponse",
                &[],
            ),
            |base| async move {
                slack_at(&base)
                    .send(&incident(NotificationEvent::Acknowledge))
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn slack_edits_in_every_described_shape() {
    let posted = json!({"ok": true, "channel": "C0123456789", "ts": "1763888460.000200"});
    Replay::new("POST", r"^/api/chat\.update$")
        .also(
            "GET",
            r"^/api/conversations\.history$",
            history_with_incident(),
        )
        .also("POST", r"^/api/chat\.postMessage$", posted)
        .each(
            variants(&slack_d(), "ChatUpdateResponse.ChatUpdateResponse", &[]),
            |base| async move {
                slack_at(&base)
                    .send(&incident(NotificationEvent::Resolve))
                    .await
                    .map(|_| ())
            },
        )
        .await;
}

#[tokio::test]
async fn pagerduty_answers_in_every_described_shape() {
    Replay::new("POST", r"^/v2/enqueue$")
        .status(202)
        .each(
            variants(&vendored("pagerduty-events-v2.json"), "Success", &[]),
            |base| async move {
                PagerDuty::new(PagerDutyConfig::new(
                    "pagerduty",
                    "R0UT1NGKEY0000000000000000000000",
                    "api",
                ))?
                .with_base(&base, http())?
                .send(&incident(NotificationEvent::Trigger))
                .await
                .map(|_| ())
            },
        )
        .await;
}

fn statuspage(base: String) -> ops_notify::Statuspage {
    ops_notify::Statuspage::new(ops_notify::StatuspageConfig::new("k", "page1"))
        .unwrap()
        .with_base(&base, http())
        .unwrap()
}

#[tokio::test]
async fn statuspage_incidents_in_every_described_shape() {
    let d = vendored("statuspage-v1.json");
    // A new incident: the creation's reply.
    Replay::new("POST", r"/incidents$")
        .status(201)
        .also("GET", r"/unresolved$", json!([]))
        .each(variants(&d, "Incident", &[]), |base| async move {
            statuspage(base)
                .send(&incident(NotificationEvent::Trigger))
                .await
                .map(|_| ())
        })
        .await;
    // Looking the key up among the open incidents: none of the variants carries it, so an
    // update finds nothing open (NotFound), never a decode failure.
    Replay::new("GET", r"/unresolved$")
        .then(json!([]))
        .each(variants(&d, "IncidentList", &[]), |base| async move {
            statuspage(base)
                .send(&incident(NotificationEvent::Update))
                .await
                .map(|_| ())
        })
        .await;
    // An update of an open incident: the PATCH's reply.
    let open = json!([{"id": "p1", "status": "investigating", "metadata": {"ops": {"dedup_key": "inc-42"}}}]);
    Replay::new("PATCH", r"/incidents/p1$")
        .also("GET", r"/unresolved$", open)
        .each(variants(&d, "Incident", &[]), |base| async move {
            statuspage(base)
                .send(&incident(NotificationEvent::Update))
                .await
                .map(|_| ())
        })
        .await;
}
