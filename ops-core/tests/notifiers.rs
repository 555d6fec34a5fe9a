//! LogNotifier and WebhookNotifier: their suite, the exact webhook request, faults, and a URL
//! (which carries a token) that never shows.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ops_core::ErrorKind;
use ops_core::adapters::{LogNotifier, WebhookNotifier};
use ops_core::clock::ManualClock;
use ops_core::contracts::{Notification, NotificationEvent, Notifier, Severity};
use ops_core::http::{HttpClient, HttpConfig};
use ops_core::testkit;
use wiremock::matchers::{body_partial_json, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN_PATH: &str = "/hooks/T0001/B0002/XyZsecretTOKEN";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn webhook(server: &MockServer) -> WebhookNotifier {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-05-01T12:00:00Z".parse().unwrap(),
    ));
    let http = HttpClient::new("webhook", &HttpConfig::default())
        .unwrap()
        .with_clock(clock);
    WebhookNotifier::new("ops-webhook", &format!("{}{TOKEN_PATH}", server.uri()))
        .unwrap()
        .with_http(http)
}

#[tokio::test]
async fn log_notifier_passes_the_suite_and_logs_at_the_severity() {
    let out = Captured::default();
    let sink = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let n = LogNotifier::new("log");
    testkit::notifier(&n, "incident-1").await;
    n.send(&Notification::new(Severity::Warning, "disk at 85%").field("host", "db-1"))
        .await
        .unwrap();
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("ERROR") && text.contains("testkit: service down"),
        "{text}"
    );
    assert!(
        text.contains("WARN") && text.contains("disk at 85%") && text.contains("host=db-1"),
        "{text}"
    );
}

#[tokio::test]
async fn webhook_sends_the_documented_json_and_passes_the_suite() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header("content-type", "application/json"))
        .and(header_exists("idempotency-key"))
        .and(body_partial_json(serde_json::json!({
            "source": "ops",
            "severity": "critical",
            "event": "trigger",
            "title": "testkit: service down",
            "body_markdown": "**api** answers 503.",
            "fields": [{"key": "service", "value": "api"}],
            "links": [{"label": "dashboard", "url": "https://example.com/d"}],
            "dedup_key": "inc-42",
            "sent_at": "2026-05-01T12:00:00Z"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "msg-1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_partial_json(
            serde_json::json!({"dedup_key": "inc-42", "severity": "info"}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let n = webhook(&server);
    testkit::notifier(&n, "inc-42").await;
    // Invalid notifications never reached the server: the expectations above count exactly 3.
}

#[tokio::test]
async fn webhook_retries_a_500_with_the_same_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": 7})))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = webhook(&server)
        .send(&Notification::new(Severity::Error, "deploy failed"))
        .await
        .unwrap();
    assert_eq!(receipt.id.as_deref(), Some("7"));
    let reqs: Vec<Request> = server.received_requests().await.unwrap();
    let keys: Vec<_> = reqs
        .iter()
        .map(|r| r.headers.get("idempotency-key").unwrap().clone())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "a retry is the same request");
}

#[tokio::test]
async fn webhook_errors_are_typed_and_never_show_the_url() {
    for (status, check) in [
        (
            400u16,
            (|k: &ErrorKind| matches!(k, ErrorKind::Provider { status: 400, .. }))
                as fn(&ErrorKind) -> bool,
        ),
        (404, |k| matches!(k, ErrorKind::NotFound { .. })),
        (403, |k| matches!(k, ErrorKind::Forbidden { .. })),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string("invalid_token"))
            .expect(1)
            .mount(&server)
            .await;
        let n = webhook(&server);
        let err = n
            .send(&Notification::new(Severity::Info, "x").event(NotificationEvent::Trigger))
            .await
            .unwrap_err();
        assert!(check(err.kind()), "{status}: {err}");
        let shown = format!("{err} {err:?} {n:?}");
        assert!(!shown.contains("XyZsecretTOKEN"), "{shown}");
    }
    let err = WebhookNotifier::new("w", "ftp://example.com/x").unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { .. }));
    let err = WebhookNotifier::new("w", "not a url with secret-token").unwrap_err();
    assert!(!err.to_string().contains("secret-token"), "{err}");
}
