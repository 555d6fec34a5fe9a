//! The replay helper must report a client that refuses a valid reply, and only that.

use ops_conformance::Description;
use ops_conformance::replay::Replay;
use ops_conformance::replies::variants;
use ops_core::http::{HttpClient, HttpConfig};
use serde::Deserialize;
use serde_json::json;

fn description() -> Description {
    Description::from_json(
        &json!({
            "source": "test", "provider": "test", "operations": [],
            "schemas": {"Thing": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"},
                "note": {"type": "string"},
                "state": {"type": "string", "enum": ["ON", "OFF"]}}}}
        })
        .to_string(),
    )
    .unwrap()
}

/// A decoder that wrongly requires an optional field.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Strict {
    id: String,
    note: String,
}

/// A decoder that reads what the description promises.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Lenient {
    id: String,
    note: Option<String>,
    state: Option<String>,
}

async fn fetch<T: serde::de::DeserializeOwned>(base: String) -> ops_core::Result<()> {
    let http = HttpClient::new("test", &HttpConfig::default())?;
    let req = http.get(format!("{base}/v1/things/1"));
    http.send_json::<T>("get", req).await.map(|_| ())
}

#[tokio::test]
async fn a_decoder_requiring_an_optional_field_is_reported() {
    let refused = Replay::new("GET", r"^/v1/things/1$")
        .refusals(variants(&description(), "Thing", &[]), fetch::<Strict>)
        .await;
    assert!(
        refused.iter().any(|r| r.starts_with("sparse")),
        "{refused:#?}"
    );
}

#[tokio::test]
async fn a_decoder_reading_what_is_promised_passes() {
    Replay::new("GET", r"^/v1/things/1$")
        .each(variants(&description(), "Thing", &[]), fetch::<Lenient>)
        .await;
}

#[tokio::test]
#[should_panic(expected = "the schema name is wrong")]
async fn an_unknown_schema_fails_instead_of_passing_empty() {
    Replay::new("GET", r"^/v1/things/1$")
        .each(variants(&description(), "Nothing", &[]), fetch::<Lenient>)
        .await;
}

#[tokio::test]
async fn a_call_that_never_asks_for_the_variant_is_reported() {
    let refused = Replay::new("GET", r"^/v1/elsewhere$")
        .refusals(variants(&description(), "Thing", &[]), fetch::<Lenient>)
        .await;
    assert!(!refused.is_empty());
    assert!(
        refused.iter().all(|r| r.contains("never requested")),
        "{refused:#?}"
    );
}
