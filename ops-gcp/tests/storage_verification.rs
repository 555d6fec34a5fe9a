//! Verification states on Cloud Storage objects, with the exact shapes of `objects.patch` from
//! the Storage v1 discovery document: custom metadata entries set (or removed with `null`),
//! conditioned on the object's generation; marks read back from `objects.get` and `list`.

mod support;

use ops_core::ErrorKind;
use ops_core::checksum::Checksum;
use ops_core::contracts::*;
use ops_gcp::CloudStorage;
use ops_gcp::storage::wire::encode_crc32c;
use serde_json::json;
use support::*;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OBJECT: &str = "/storage/v1/b/acme-backups/o/backup%2Fapp.dump";

fn store(server: &MockServer) -> CloudStorage {
    CloudStorage::new(client(server, clock()), "acme-backups", "backup/").unwrap()
}

/// An `Object` resource as `objects.get` and `objects.patch` answer it.
fn object(metadata: serde_json::Value, metageneration: &str) -> serde_json::Value {
    json!({
        "kind": "storage#object",
        "id": "acme-backups/backup/app.dump/1700000000000017",
        "selfLink": "https://www.googleapis.com/storage/v1/b/acme-backups/o/backup%2Fapp.dump",
        "mediaLink": "https://storage.googleapis.com/download/storage/v1/b/acme-backups/o/backup%2Fapp.dump?generation=1700000000000017&alt=media",
        "name": "backup/app.dump",
        "bucket": "acme-backups",
        "generation": "1700000000000017",
        "metageneration": metageneration,
        "contentType": "application/octet-stream",
        "storageClass": "STANDARD",
        "size": "4",
        "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww==",
        "crc32c": encode_crc32c(Checksum::of(b"dump")),
        "etag": "CJHs8N6/2IkDEAI=",
        "timeCreated": "2026-11-23T09:00:00.123Z",
        "updated": "2026-11-23T09:05:00.456Z",
        "timeStorageClassUpdated": "2026-11-23T09:00:00.123Z",
        "metadata": metadata,
    })
}

async fn get_answers(server: &MockServer, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(OBJECT))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_verified_mark_is_a_generation_matched_metadata_patch() {
    let server = MockServer::start().await;
    get_answers(
        &server,
        object(json!({"ops-source": "pg_dump", "db": "app"}), "1"),
    )
    .await;
    let marked = json!({
        "ops-source": "pg_dump", "db": "app",
        "ops-verification": "verified", "ops-verified-at": "2026-01-02T03:04:05.000Z",
    });
    Mock::given(method("PATCH"))
        .and(path(OBJECT))
        .and(query_param("ifGenerationMatch", "1700000000000017"))
        .and(body_json(json!({"metadata": {
            "ops-verification": "verified",
            "ops-verified-at": "2026-01-02T03:04:05.000Z",
            "ops-verification-reason": null,
        }})))
        .respond_with(ResponseTemplate::new(200).set_body_json(object(marked, "2")))
        .expect(1)
        .mount(&server)
        .await;
    let at = "2026-01-02T03:04:05Z".parse().unwrap();
    store(&server)
        .record_verification("app.dump", &Verification::Verified { at })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_mark_carries_its_reason() {
    let server = MockServer::start().await;
    get_answers(&server, object(json!({}), "3")).await;
    Mock::given(method("PATCH"))
        .and(path(OBJECT))
        .and(body_json(json!({"metadata": {
            "ops-verification": "failed",
            "ops-verified-at": "2026-01-02T03:04:05.000Z",
            "ops-verification-reason": "restore test: 3 rows missing",
        }})))
        .respond_with(ResponseTemplate::new(200).set_body_json(object(json!({}), "4")))
        .expect(1)
        .mount(&server)
        .await;
    let at = "2026-01-02T03:04:05Z".parse().unwrap();
    store(&server)
        .record_verification(
            "app.dump",
            &Verification::failed(at, "restore test: 3 rows missing"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_replaced_object_is_never_marked() {
    // The object was overwritten between the read and the patch: 412 conditionNotMet.
    let server = MockServer::start().await;
    get_answers(&server, object(json!({}), "1")).await;
    Mock::given(method("PATCH"))
        .and(path(OBJECT))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({"error": {
            "code": 412,
            "message": "At least one of the pre-conditions you specified did not hold.",
            "errors": [{"message": "At least one of the pre-conditions you specified did not hold.",
                        "domain": "global", "reason": "conditionNotMet"}]}})))
        .expect(1)
        .mount(&server)
        .await;
    let at = "2026-01-02T03:04:05Z".parse().unwrap();
    let err = store(&server)
        .record_verification("app.dump", &Verification::Verified { at })
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn marks_read_back_as_states_never_as_labels() {
    let cases = [
        (
            json!({"db": "app", "ops-verification": "verified",
                   "ops-verified-at": "2026-01-02T03:04:05.000Z"}),
            Verification::Verified {
                at: "2026-01-02T03:04:05Z".parse().unwrap(),
            },
        ),
        (
            json!({"db": "app", "ops-verification": "failed", "ops-verification-reason": "bad"}),
            Verification::failed(chrono::DateTime::UNIX_EPOCH, "bad"),
        ),
        // A verified mark without a readable time, or an unknown word: never verified.
        (
            json!({"db": "app", "ops-verification": "verified", "ops-verified-at": "yesterday"}),
            Verification::Unverified,
        ),
        (
            json!({"db": "app", "ops-verification": "yes"}),
            Verification::Unverified,
        ),
        (json!({"db": "app"}), Verification::Unverified),
    ];
    for (metadata, want) in cases {
        let server = MockServer::start().await;
        get_answers(&server, object(metadata.clone(), "2")).await;
        let info = store(&server).describe("app.dump").await.unwrap();
        assert_eq!(info.verification, want, "{metadata}");
        assert_eq!(
            info.labels,
            [("db".to_string(), "app".to_string())].into(),
            "{metadata}"
        );
    }
}
