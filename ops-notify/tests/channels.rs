//! Slack, PagerDuty and email against their simulators (testkit suite, threading, typed
//! failures) and against exact request shapes.

mod support;

use std::sync::Arc;

use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::contracts::*;
use ops_core::http::{HttpClient, HttpConfig};
use ops_core::sim::Fault;
use ops_core::testkit;
use ops_notify::email::{SmtpSecurity, SmtpSettings};
use ops_notify::sim::{PagerDutySim, Simulator, SlackSim, SmtpSim};
use ops_notify::{
    EmailConfig, EmailNotifier, PagerDuty, PagerDutyConfig, SlackApi, SlackApiConfig, SlackWebhook,
    SlackWebhookConfig,
};
use serde_json::json;
use support::{http, slack_api};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn incident(key: &str, event: NotificationEvent) -> Notification {
    Notification::new(Severity::Critical, "checkout is down")
        .body("503 on /checkout")
        .field("service", "api")
        .dedup_key(key)
        .event(event)
}

#[tokio::test]
async fn slack_api_passes_the_suite_and_threads_an_incident() {
    let sim = SlackSim::start().await;
    testkit::notifier(&slack_api(&sim), "incident/suite").await;

    let api = slack_api(&sim);
    api.send(&incident("incident/INC-7", NotificationEvent::Trigger))
        .await
        .unwrap();
    api.send(&incident("incident/INC-7", NotificationEvent::Update))
        .await
        .unwrap();
    // A restarted process finds the thread again through the message metadata.
    let restarted = slack_api(&sim);
    let r = restarted
        .send(&incident("incident/INC-7", NotificationEvent::Resolve))
        .await
        .unwrap();
    let all = sim.messages();
    let parent = all
        .iter()
        .find(|m| {
            m.metadata
                .as_ref()
                .is_some_and(|x| x["event_payload"]["dedup_key"] == "incident/INC-7")
                && m.thread_ts.is_none()
        })
        .unwrap();
    let replies: Vec<_> = all
        .iter()
        .filter(|m| m.thread_ts.as_deref() == Some(parent.ts.as_str()))
        .collect();
    assert_eq!(replies.len(), 2, "update and resolution in the thread");
    assert!(
        parent.edited && parent.text.starts_with("RESOLVED"),
        "{}",
        parent.text
    );
    assert!(r.id.unwrap().ends_with(&replies[1].ts));
}

#[tokio::test]
async fn slack_api_errors_inside_a_200_are_typed() {
    let sim = SlackSim::start().await;
    let wrong_channel = SlackApi::new(SlackApiConfig::new(
        "s",
        ops_notify::sim::slack_token(),
        "C0NOWHERE",
    ))
    .unwrap()
    .with_base(&format!("{}/api/", sim.uri()), http())
    .unwrap();
    let n = Notification::new(Severity::Info, "hello");
    assert!(matches!(
        wrong_channel.send(&n).await.unwrap_err().kind(),
        ErrorKind::NotFound { .. }
    ));
    let bad_token = SlackApi::new(SlackApiConfig::new(
        "s",
        "xoxb-wrong",
        ops_notify::sim::slack_channel(),
    ))
    .unwrap()
    .with_base(&format!("{}/api/", sim.uri()), http())
    .unwrap();
    let err = bad_token.send(&n).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    assert!(!format!("{err:?} {bad_token:?}").contains("xoxb-wrong"));
    sim.inject(
        None,
        "/api/chat.postMessage",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(2),
        },
    );
    assert!(
        slack_api(&sim).send(&n).await.is_ok(),
        "a 429 is waited out"
    );
}

#[tokio::test]
async fn slack_webhook_passes_the_suite_and_types_its_text_errors() {
    let sim = SlackSim::start().await;
    let hook = SlackWebhook::new(SlackWebhookConfig::new("slack-alerts", sim.webhook_url()))
        .unwrap()
        .with_http(http());
    testkit::notifier(&hook, "alert/suite").await;
    assert!(
        sim.webhook_posts()[0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("CRITICAL")
    );
    let gone = SlackWebhook::new(SlackWebhookConfig::new(
        "s",
        format!("{}/services/T0/B0/revoked", sim.uri()),
    ))
    .unwrap()
    .with_http(http());
    let err = gone
        .send(&Notification::new(Severity::Info, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }), "{err}");
    assert!(
        !format!("{err} {gone:?}").contains("revoked"),
        "the webhook URL is a secret"
    );
}

#[tokio::test]
async fn the_webhook_body_is_block_kit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T1/B2/x3"))
        .and(body_json(json!({"text": "WARNING: disk 85% full", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": ":large_yellow_circle: WARNING: disk 85% full", "emoji": true}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*host*\ndb-1"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "severity: warning · triggered"}]}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let hook = SlackWebhook::new(SlackWebhookConfig::new(
        "s",
        format!("{}/services/T1/B2/x3", server.uri()),
    ))
    .unwrap()
    .with_http(http());
    hook.send(&Notification::new(Severity::Warning, "disk 85% full").field("host", "db-1"))
        .await
        .unwrap();
}

fn pagerduty(sim: &PagerDutySim) -> PagerDuty {
    PagerDuty::new(PagerDutyConfig::new(
        "pagerduty",
        ops_notify::sim::pagerduty_key(),
        "api.acme.dev",
    ))
    .unwrap()
    .with_base(&sim.uri(), http())
    .unwrap()
}

#[tokio::test]
async fn pagerduty_passes_the_suite_and_follows_the_alert() {
    let sim = PagerDutySim::start().await;
    testkit::notifier(&pagerduty(&sim), "incident/suite").await;
    let pd = pagerduty(&sim);
    pd.send(&incident("incident/INC-9", NotificationEvent::Trigger))
        .await
        .unwrap();
    pd.send(&incident("incident/INC-9", NotificationEvent::Update))
        .await
        .unwrap();
    pd.send(&incident("incident/INC-9", NotificationEvent::Acknowledge))
        .await
        .unwrap();
    let alert = sim
        .alerts()
        .into_iter()
        .find(|a| a.dedup_key == "incident/INC-9")
        .unwrap();
    assert_eq!(
        (alert.status.as_str(), alert.events),
        ("acknowledged", 3),
        "an update is a repeat trigger on the same alert"
    );
    assert_eq!(alert.payload["custom_details"]["service"], "api");
}

#[tokio::test]
async fn pagerduty_events_have_the_v2_shape_and_errors_are_typed() {
    let server = MockServer::start().await;
    let key = "0123456789abcdef0123456789abcdef";
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "routing_key": key, "event_action": "trigger", "client": "ops", "dedup_key": "incident/INC-1",
            "payload": {"summary": "checkout is down", "source": "api.acme.dev", "severity": "critical",
                        "timestamp": "2026-11-23T09:00:00Z", "custom_details": {"service": "api", "details": "503 on /checkout"}},
            "links": [{"href": "https://grafana.acme.dev/d/api", "text": "dashboard"}]
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "success", "message": "Event processed", "dedup_key": "incident/INC-1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.source' is missing or blank"]})))
        .mount(&server)
        .await;
    let pd = PagerDuty::new(PagerDutyConfig::new("pd", key, "api.acme.dev"))
        .unwrap()
        .with_base(&server.uri(), http())
        .unwrap();
    let n = incident("incident/INC-1", NotificationEvent::Trigger)
        .link("dashboard", "https://grafana.acme.dev/d/api");
    assert_eq!(
        pd.send(&n).await.unwrap().dedup_key.as_deref(),
        Some("incident/INC-1")
    );
    let err = pd
        .send(&Notification::new(Severity::Info, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { reason, .. } if reason.contains("payload.source")),
        "{err}"
    );
    assert!(
        !format!("{err} {err:?} {pd:?}").contains(key),
        "the routing key never shows"
    );
}

#[tokio::test]
async fn pagerduty_throttling_is_retried() {
    let sim = PagerDutySim::start().await;
    sim.inject(
        None,
        "/v2/enqueue",
        1,
        Fault::Status {
            status: 429,
            retry_after: None,
        },
    );
    pagerduty(&sim)
        .send(&incident("incident/INC-2", NotificationEvent::Trigger))
        .await
        .unwrap();
    assert_eq!(sim.alerts().len(), 1);
}

fn email(sim: &SmtpSim) -> EmailNotifier {
    let smtp = SmtpSettings {
        host: "127.0.0.1".into(),
        port: sim.port(),
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
    };
    EmailNotifier::new(EmailConfig::new(
        "email-oncall",
        smtp,
        "ops <ops@acme.dev>",
        &["oncall@acme.dev"],
    ))
    .unwrap()
}

#[tokio::test]
async fn email_passes_the_suite_and_threads_by_incident() {
    let sim = SmtpSim::start().await.unwrap();
    testkit::notifier(&email(&sim), "incident/suite").await;
    let mails = sim.mails();
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[0].to, vec!["oncall@acme.dev"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: [CRITICAL] testkit: service down"),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0]
            .data
            .contains("Message-ID: <incident-suite@ops.incident>"),
        "{}",
        mails[0].data
    );
    assert!(
        mails[2]
            .data
            .contains("In-Reply-To: <incident-suite@ops.incident>"),
        "{}",
        mails[2].data
    );
}

#[tokio::test]
async fn refused_mail_is_typed() {
    let sim = SmtpSim::start().await.unwrap();
    sim.refuse_next("550 5.7.1 relaying denied");
    let err = email(&sim)
        .send(&Notification::new(Severity::Info, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { code: Some(c), .. } if c.contains("550")),
        "{err}"
    );
    sim.refuse_next("451 4.3.0 try again later");
    let err = email(&sim)
        .send(&Notification::new(Severity::Info, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unavailable { .. }), "{err}");
}

#[tokio::test]
async fn the_remaining_faults_are_typed() {
    let sim = SlackSim::start().await;
    let api = slack_api(&sim);
    let n = Notification::new(Severity::Info, "deploy finished");
    sim.inject(None, "/api/chat.postMessage", 1, Fault::TruncatedJson);
    assert!(matches!(
        api.send(&n).await.unwrap_err().kind(),
        ErrorKind::Decode { .. }
    ));
    sim.inject(
        None,
        "/api/chat.postMessage",
        1,
        Fault::Status {
            status: 200,
            retry_after: None,
        },
    );
    assert!(
        matches!(
            api.send(&n).await.unwrap_err().kind(),
            ErrorKind::Unavailable { .. }
        ),
        "ok:false internal_error"
    );
    sim.inject(
        None,
        "/services/",
        1,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let hook = SlackWebhook::new(SlackWebhookConfig::new("s", sim.webhook_url()))
        .unwrap()
        .with_http(http());
    assert!(
        hook.send(&n).await.is_err(),
        "a 500 on a webhook post is not repeated blindly"
    );
    assert!(sim.webhook_posts().is_empty());

    let pd_sim = PagerDutySim::start().await;
    pd_sim.inject(
        None,
        "/v2/enqueue",
        1,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let key = incident("incident/INC-5", NotificationEvent::Trigger);
    pagerduty(&pd_sim).send(&key).await.unwrap();
    assert_eq!(
        pd_sim.alerts().len(),
        1,
        "a keyed trigger is retried after a 500, and counted once"
    );
    pd_sim.inject(
        None,
        "/v2/enqueue",
        1,
        Fault::Delay(std::time::Duration::from_secs(3)),
    );
    let slow = PagerDuty::new(PagerDutyConfig::new(
        "pd",
        ops_notify::sim::pagerduty_key(),
        "api",
    ))
    .unwrap()
    .with_base(
        &pd_sim.uri(),
        HttpClient::new(
            "pd",
            &HttpConfig {
                request_timeout: std::time::Duration::from_millis(200),
                ..HttpConfig::default()
            },
        )
        .unwrap()
        .with_clock(Arc::new(ManualClock::starting_at(
            "2026-11-23T09:00:00Z".parse().unwrap(),
        ))),
    )
    .unwrap();
    assert!(
        slow.send(&key).await.is_ok(),
        "a timed-out keyed trigger is retried"
    );
}
