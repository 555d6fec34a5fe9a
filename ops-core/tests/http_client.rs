//! The shared HTTP plumbing against wiremock and raw sockets: status mapping, Retry-After,
//! which requests are retried, timeouts, resets, truncated and malformed bodies, redaction.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ops_core::clock::ManualClock;
use ops_core::http::{HttpClient, HttpConfig};
use ops_core::retry::RetryPolicy;
use ops_core::{Error, ErrorKind};
use support::{Raw, raw_server};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(timeout: Duration) -> (HttpClient, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let config = HttpConfig {
        request_timeout: timeout,
        read_timeout: timeout,
        retry: RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        },
        ..HttpConfig::default()
    };
    let http = HttpClient::new("test", &config)
        .unwrap()
        .with_clock(clock.clone());
    (http, clock)
}

async fn get_json(http: &HttpClient, url: String) -> Result<serde_json::Value, Error> {
    http.send_json("get_thing", http.get(url)).await
}

#[tokio::test]
async fn honours_retry_after_on_429_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/thing"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/thing"))
        .and(header(
            "user-agent",
            concat!("ops/", env!("CARGO_PKG_VERSION")),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let (http, clock) = client(Duration::from_secs(5));
    let v = get_json(&http, format!("{}/v1/thing", server.uri()))
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
}

#[tokio::test]
async fn retries_503_for_get_but_not_for_plain_post() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let (http, _) = client(Duration::from_secs(5));
    let e = get_json(&http, server.uri()).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unavailable { .. }), "{e}");
    let e = http
        .send("create", http.post(server.uri()).body("{}"))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unavailable { .. }), "{e}");
}

#[tokio::test]
async fn post_with_idempotency_key_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("idempotency-key", "k-1"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("idempotency-key", "k-1"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let (http, _) = client(Duration::from_secs(5));
    let resp = http
        .send(
            "create",
            http.post(server.uri())
                .header("idempotency-key", "k-1")
                .body("{}"),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn permanent_statuses_are_typed_and_not_retried() {
    type Check = fn(&ErrorKind) -> bool;
    let cases: [(u16, Check); 5] = [
        (401, |k| matches!(k, ErrorKind::Unauthorized)),
        (403, |k| matches!(k, ErrorKind::Forbidden { .. })),
        (
            404,
            |k| matches!(k, ErrorKind::NotFound { resource } if resource == "/v1/things/a"),
        ),
        (409, |k| matches!(k, ErrorKind::Conflict { .. })),
        (
            400,
            |k| matches!(k, ErrorKind::Provider { status: 400, code: Some(c), .. } if c == "INVALID_ARGUMENT"),
        ),
    ];
    for (status, check) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/things/a"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(serde_json::json!({
                    "error": {"code": status, "message": "no", "status": "INVALID_ARGUMENT"}
                })),
            )
            .expect(1)
            .mount(&server)
            .await;
        let (http, clock) = client(Duration::from_secs(5));
        let e = get_json(&http, format!("{}/v1/things/a", server.uri()))
            .await
            .unwrap_err();
        assert!(check(e.kind()), "{status}: {e}");
        assert!(clock.sleeps().is_empty());
        assert_eq!(e.provider(), "test");
        assert_eq!(e.operation(), "get_thing");
    }
}

#[tokio::test]
async fn a_500_is_retried_then_reported_with_a_redacted_excerpt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_json(serde_json::json!({
            "error": {"message": "internal", "status": "INTERNAL"},
            "access_token": "ya29.super-secret-token"
        })))
        .expect(3)
        .mount(&server)
        .await;
    let (http, clock) = client(Duration::from_secs(5));
    let e = get_json(&http, server.uri()).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Provider { status: 500, .. }));
    assert_eq!(clock.sleeps().len(), 2);
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(shown.contains("internal"));
}

#[tokio::test]
async fn timeouts_are_retried_only_for_idempotent_requests() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let (http, _) = client(Duration::from_millis(200));
    let e = get_json(&http, server.uri()).await.unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::Timeout {
            after: Duration::from_millis(200)
        }
    );
    let e = http
        .send("create", http.post(server.uri()))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Timeout { .. }));
}

#[tokio::test]
async fn connection_reset_is_retried_for_get_not_for_post() {
    let (url, count) = raw_server(vec![Raw::Reset, Raw::Json(r#"{"n":1}"#)]).await;
    let (http, _) = client(Duration::from_secs(5));
    let v = get_json(&http, url).await.unwrap();
    assert_eq!(v["n"], 1);
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let (url, count) = raw_server(vec![Raw::Reset]).await;
    let e = http
        .send("create", http.post(url).body("x"))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "a reset is transient: {e}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "a POST that may have run is not repeated"
    );
}

#[tokio::test]
async fn connection_refused_is_not_sent_so_even_post_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (http, clock) = client(Duration::from_secs(5));
    let e = http
        .send("create", http.post(url).body("x"))
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unavailable { .. }), "{e}");
    assert!(e.was_not_sent());
    assert_eq!(clock.sleeps().len(), 2);
}

#[tokio::test]
async fn truncated_json_is_retried_and_malformed_json_is_a_decode_error() {
    let (url, count) = raw_server(vec![
        Raw::Truncated(r#"{"items":[1,2"#),
        Raw::Json(r#"{"items":[1,2,3]}"#),
    ])
    .await;
    let (http, _) = client(Duration::from_secs(5));
    let v = get_json(&http, url).await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let (url, count) = raw_server(vec![Raw::Json(r#"{"items":[1,2"#)]).await;
    let e = get_json(&http, url).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_streamed_body_is_never_replayed() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let (http, _) = client(Duration::from_secs(5));
    let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![Ok(b"part1"), Ok(b"part2")];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let e = http
        .send(
            "upload",
            http.request(reqwest::Method::PUT, server.uri()).body(body),
        )
        .await
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Unavailable { .. }));
}

#[tokio::test]
async fn invalid_urls_are_invalid_input() {
    let (http, _) = client(Duration::from_secs(5));
    let e = http.send("get", http.get("not a url")).await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidInput { .. }), "{e}");
}

#[tokio::test]
async fn a_slow_but_moving_stream_is_not_cut_off_while_a_buffered_call_is() {
    // 6 chunks, 100 ms apart: 500 ms in all, never idle for more than 100 ms.
    let (url, _) = raw_server(vec![Raw::Trickle(6)]).await;
    let clock = Arc::new(ManualClock::starting_at(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    let config = HttpConfig {
        request_timeout: Duration::from_millis(250),
        read_timeout: Duration::from_secs(2),
        retry: RetryPolicy::never(),
        ..HttpConfig::default()
    };
    let http = HttpClient::new("test", &config).unwrap().with_clock(clock);
    let resp = http.send("download", http.get(&url)).await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 6);

    let e = http
        .send_bytes("download", http.get(&url), &Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::Timeout {
            after: Duration::from_millis(250)
        }
    );
}
