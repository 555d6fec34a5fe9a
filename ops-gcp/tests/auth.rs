//! The service-account JWT exchange against a fake token endpoint, and the token cache.
//!
//! `fixtures/test-sa.json` holds a throwaway RSA key made for these tests only; its public half
//! (`test-sa.pub.der`, PKCS#1 DER) verifies the signature.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::clock::ManualClock;
use ops_core::http::{HttpClient, HttpConfig};
use ops_gcp::auth::{ServiceAccount, TOKEN_GRANT_TYPE, TokenProvider};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

fn key_json(token_uri: &str) -> String {
    include_str!("fixtures/test-sa.json").replace("TOKEN_URI", token_uri)
}

fn account(server: &MockServer, clock: Arc<ManualClock>) -> ServiceAccount {
    let http = HttpClient::new("gcp-auth", &HttpConfig::default())
        .unwrap()
        .with_clock(clock);
    ServiceAccount::from_json(&key_json(&format!("{}/token", server.uri())))
        .unwrap()
        .with_http(http)
}

fn token_response(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": token, "expires_in": 3599, "token_type": "Bearer"
    }))
}

fn form(req: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

#[tokio::test]
async fn the_assertion_is_a_signed_jwt_for_the_key_and_token_uri() {
    let server = MockServer::start().await;
    let clock = Arc::new(ManualClock::starting_at(t0()));
    let token_uri = format!("{}/token", server.uri());
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
        ))
        .respond_with(token_response("ya29.first"))
        .expect(1)
        .mount(&server)
        .await;
    let sa = account(&server, clock.clone());
    let provider = TokenProvider::new(Arc::new(sa)).with_clock(clock.clone());
    let token = provider.token().await.unwrap();
    assert_eq!(token.secret(), "ya29.first");
    assert_eq!(
        token.expires_at(),
        Some(t0() + chrono::Duration::seconds(3599))
    );

    let req = &server.received_requests().await.unwrap()[0];
    let f = form(req);
    assert_eq!(f["grant_type"], TOKEN_GRANT_TYPE);
    let parts: Vec<&str> = f["assertion"].split('.').collect();
    assert_eq!(parts.len(), 3, "header.claims.signature");
    let decode = |s: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
    };
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "0123456789abcdef");
    let claims = decode(parts[1]);
    assert_eq!(
        claims["iss"],
        "ops-test@sim-project.iam.gserviceaccount.com"
    );
    assert_eq!(claims["aud"], token_uri.as_str());
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(claims["iat"], t0().timestamp());
    assert_eq!(claims["exp"], t0().timestamp() + 3600);

    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        include_bytes!("fixtures/test-sa.pub.der").as_slice(),
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .expect("the signature verifies with the key's public half");
}

#[tokio::test]
async fn tokens_are_cached_and_refreshed_before_expiry() {
    let server = MockServer::start().await;
    let clock = Arc::new(ManualClock::starting_at(t0()));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response("ya29.first"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response("ya29.second"))
        .mount(&server)
        .await;
    let provider =
        TokenProvider::new(Arc::new(account(&server, clock.clone()))).with_clock(clock.clone());
    assert_eq!(provider.token().await.unwrap().secret(), "ya29.first");
    clock.advance(Duration::from_secs(3000));
    assert_eq!(
        provider.token().await.unwrap().secret(),
        "ya29.first",
        "ten minutes left: still cached"
    );
    clock.advance(Duration::from_secs(400));
    assert_eq!(
        provider.token().await.unwrap().secret(),
        "ya29.second",
        "inside the 5-minute margin: refreshed before it expires"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let server = MockServer::start().await;
    let clock = Arc::new(ManualClock::starting_at(t0()));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response("ya29.shared").set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;
    let provider = Arc::new(
        TokenProvider::new(Arc::new(account(&server, clock.clone()))).with_clock(clock.clone()),
    );
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await.unwrap().secret().to_string() })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), "ya29.shared");
    }
}

#[tokio::test]
async fn a_refused_grant_is_unauthorized_and_the_key_never_leaks() {
    let server = MockServer::start().await;
    let clock = Arc::new(ManualClock::starting_at(t0()));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "invalid_grant", "error_description": "Invalid JWT Signature."
        })))
        .expect(1)
        .mount(&server)
        .await;
    let sa = account(&server, clock.clone());
    let debug = format!("{sa:?}");
    assert!(debug.contains("ops-test@sim-project"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    let provider = TokenProvider::new(Arc::new(sa)).with_clock(clock);
    let err = provider.token().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("PRIVATE"), "{err:?}");
}

#[tokio::test]
async fn a_token_endpoint_outage_is_retried() {
    let server = MockServer::start().await;
    let clock = Arc::new(ManualClock::starting_at(t0()));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response("ya29.after-outage"))
        .mount(&server)
        .await;
    let provider =
        TokenProvider::new(Arc::new(account(&server, clock.clone()))).with_clock(clock.clone());
    assert_eq!(
        provider.token().await.unwrap().secret(),
        "ya29.after-outage"
    );
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(2)],
        "Retry-After honoured"
    );
}

#[test]
fn bad_key_files_are_typed_errors_without_the_key() {
    let not_sa =
        key_json("https://oauth2.example/token").replace("service_account", "authorized_user");
    let err = ServiceAccount::from_json(&not_sa).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { field, .. } if field == "key"));
    let broken = key_json("https://oauth2.example/token").replace("MII", "XXX");
    let err = ServiceAccount::from_json(&broken).unwrap_err();
    assert!(format!("{err}").contains("private_key"), "{err}");
    assert!(!format!("{err:?}").contains("XXX"), "{err:?}");
}
