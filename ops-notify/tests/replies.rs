//! What the official descriptions allow and a convenient fake never exercises: Slack's history
//! in pages behind a cursor, and PagerDuty's bound on `dedup_key`.

mod support;

use ops_core::ErrorKind;
use ops_core::contracts::*;
use ops_notify::sim::{PagerDutySim, SlackSim};
use ops_notify::{PagerDuty, PagerDutyConfig};
use support::{http, slack_api};

/// An incident opened 450 messages ago: a restarted process finds its thread on the third
/// page of `conversations.history` and edits the original message, instead of starting a new
/// thread that acknowledge and resolve would never reach.
#[tokio::test]
async fn an_incident_older_than_one_page_of_history_is_found_after_a_restart() {
    let sim = SlackSim::start().await;
    let first = slack_api(&sim);
    first
        .send(&Notification::new(Severity::Critical, "checkout is down").dedup_key("inc-old"))
        .await
        .unwrap();
    for i in 0..450 {
        first
            .send(&Notification::new(
                Severity::Info,
                format!("deploy {i} finished"),
            ))
            .await
            .unwrap();
    }
    let restarted = slack_api(&sim);
    restarted
        .send(
            &Notification::new(Severity::Critical, "checkout is down")
                .dedup_key("inc-old")
                .event(NotificationEvent::Resolve),
        )
        .await
        .unwrap();
    let messages = sim.messages();
    let top_level = messages.iter().filter(|m| m.thread_ts.is_none()).count();
    assert_eq!(top_level, 451, "no second thread was started");
    let original = &messages[0];
    assert!(original.edited, "the original message shows the resolution");
    assert!(
        messages
            .iter()
            .any(|m| m.thread_ts.as_deref() == Some(original.ts.as_str())),
        "the resolution went into the original thread"
    );
}

#[tokio::test]
async fn a_pagerduty_dedup_key_over_255_characters_is_refused_before_sending() {
    let sim = PagerDutySim::start().await;
    let pd = PagerDuty::new(PagerDutyConfig::new(
        "pd",
        ops_notify::sim::pagerduty_key(),
        "api",
    ))
    .unwrap()
    .with_base(&sim.uri(), http())
    .unwrap();
    let long = "k".repeat(256);
    let err = pd
        .send(&Notification::new(Severity::Error, "x").dedup_key(long))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { field, .. } if field == "dedup_key"),
        "{err}"
    );
    assert!(sim.alerts().is_empty(), "nothing was sent");
    pd.send(&Notification::new(Severity::Error, "x").dedup_key("k".repeat(255)))
        .await
        .unwrap();
    assert_eq!(sim.alerts().len(), 1);
}

/// The Events API's success reply in every shape its description allows (only `status` is
/// required): the receipt falls back to the key that was sent.
#[tokio::test]
async fn pagerduty_replies_in_every_described_shape() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let d = ops_conformance::vendored("pagerduty-events-v2.json");
    let replies = ops_conformance::replies::variants(&d, "Success", &[]);
    assert!(replies.len() >= 5);
    for v in replies {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(202).set_body_json(&v.value))
            .mount(&server)
            .await;
        let pd = PagerDuty::new(PagerDutyConfig::new(
            "pd",
            ops_notify::sim::pagerduty_key(),
            "api",
        ))
        .unwrap()
        .with_base(&server.uri(), http())
        .unwrap();
        let receipt = pd
            .send(&Notification::new(Severity::Error, "x").dedup_key("inc-1"))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert!(receipt.dedup_key.is_some(), "{}", v.name);
    }
}
