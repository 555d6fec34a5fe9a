//! The provider kit's one JSON call: credentials, one refresh on 401, the empty body rule,
//! idempotency, and a body that never shows in `Debug`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use ops_core::ErrorKind;
use ops_core::http::{
    AccessToken, Authorizer, HttpClient, HttpConfig, JsonRequest, TokenProvider, TokenSource,
};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Hands out `t1`, `t2`, … : a new token each fetch.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl TokenSource for Counting {
    async fn fetch(&self) -> ops_core::Result<AccessToken> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(format!("t{n}"), None))
    }
}

fn http() -> HttpClient {
    HttpClient::new("acme", &HttpConfig::default()).unwrap()
}

fn url(server: &MockServer, p: &str) -> url::Url {
    url::Url::parse(&format!("{}{p}", server.uri())).unwrap()
}

#[tokio::test]
async fn a_refused_token_is_replaced_once_and_the_call_succeeds() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer t1"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer t2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 42})))
        .expect(1)
        .mount(&server)
        .await;
    let source = Arc::new(Counting::default());
    let auth = Authorizer::tokens(Arc::new(TokenProvider::new(source.clone())));
    let got: Value = http()
        .call_json(
            &auth,
            JsonRequest::get("get_thing", url(&server, "/v1/things/42")),
        )
        .await
        .unwrap();
    assert_eq!(got, json!({"id": 42}));
    assert_eq!(source.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_fixed_token_refused_is_unauthorized_after_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let err = http()
        .call_json::<Value>(
            &Authorizer::bearer("fixed"),
            JsonRequest::get("get_thing", url(&server, "/v1/things/42")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Unauthorized), "{err}");
}

#[tokio::test]
async fn a_json_body_is_sent_and_an_empty_reply_reads_as_an_empty_object() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/things"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"name": "a"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    #[derive(serde::Deserialize, Debug)]
    struct Created {
        #[serde(default)]
        id: Option<String>,
    }
    let req = JsonRequest::new("create_thing", Method::POST, url(&server, "/v1/things"))
        .json(&json!({"name": "a"}))
        .unwrap();
    let created: Created = http().call_json(&Authorizer::none(), req).await.unwrap();
    assert!(created.id.is_none());
}

#[tokio::test]
async fn a_post_is_not_repeated_unless_declared_idempotent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let post = || JsonRequest::new("create", Method::POST, url(&server, "/v1/things"));
    let _ = http()
        .call_json::<Value>(&Authorizer::none(), post())
        .await
        .unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let _ = http()
        .call_json::<Value>(
            &Authorizer::none(),
            post().idempotency(ops_core::retry::Idempotency::Idempotent),
        )
        .await
        .unwrap_err();
    assert!(server.received_requests().await.unwrap().len() > 1);
}

#[test]
fn neither_the_body_nor_the_token_shows_in_debug() {
    let req = JsonRequest::new(
        "add_version",
        Method::POST,
        url::Url::parse("https://api.acme.test/v1/secrets/db").unwrap(),
    )
    .json(&json!({"value": "hunter2-s3cr3t"}))
    .unwrap();
    let shown = format!("{req:?} {:?}", Authorizer::bearer("ghp_abcdefghijklmnop"));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("ghp_"), "{shown}");
    assert!(shown.contains("add_version"), "{shown}");
}
