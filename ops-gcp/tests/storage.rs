//! Cloud Storage JSON API with exact request shapes: multipart and resumable uploads, ranged
//! and verified downloads (including a connection cut mid-body), listing, preconditions, and
//! the fault matrix.

mod support;

use ops_core::ErrorKind;
use ops_core::checksum::Checksum;
use ops_core::clock::Clock;
use ops_core::contracts::*;
use ops_gcp::CloudStorage;
use ops_gcp::storage::wire::encode_crc32c;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const OBJECTS: &str = "/storage/v1/b/acme-backups/o";
const UPLOAD: &str = "/upload/storage/v1/b/acme-backups/o";

fn store(server: &MockServer) -> CloudStorage {
    CloudStorage::new(client(server, clock()), "acme-backups", "backup/")
        .unwrap()
        .with_chunk_size(256 * 1024)
        .unwrap()
}

fn object(name: &str, data: &[u8], generation: &str) -> serde_json::Value {
    json!({
        "kind": "storage#object",
        "id": format!("acme-backups/{name}/{generation}"),
        "name": name,
        "bucket": "acme-backups",
        "generation": generation,
        "metageneration": "1",
        "contentType": "application/octet-stream",
        "storageClass": "STANDARD",
        "size": data.len().to_string(),
        "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww==",
        "crc32c": encode_crc32c(Checksum::of(data)),
        "etag": "CLjy8N6/2IkDEAE=",
        "timeCreated": "2026-11-23T09:00:00.123Z",
        "updated": "2026-11-23T09:00:00.123Z",
        "metadata": {"ops-source": "pg_dump", "db": "app",
                     "ops-crc32c": encode_crc32c(Checksum::of(data)),
                     "ops-size": data.len().to_string()}
    })
}

/// The object as the resumable session leaves it: the metadata given when the session opened,
/// before the writer knew the checksum.
fn unrecorded(name: &str, data: &[u8], generation: &str) -> serde_json::Value {
    let mut o = object(name, data, generation);
    o["metadata"] = json!({"ops-source": "pg_dump", "db": "app"});
    o
}

/// The JSON resource a write sends, with its random upload id checked and taken out.
fn without_upload_id(mut resource: serde_json::Value) -> serde_json::Value {
    let id = resource["metadata"]
        .as_object_mut()
        .and_then(|m| m.remove("ops-upload-id"))
        .expect("every write carries an upload id");
    let id = id.as_str().unwrap();
    assert!(
        id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    resource
}

fn put(id: &str) -> PutArtifact {
    PutArtifact {
        id: id.into(),
        source: Some("pg_dump".into()),
        labels: [("db".to_string(), "app".to_string())].into(),
    }
}

#[tokio::test]
async fn small_artifacts_go_in_one_multipart_request_with_their_checksum() {
    let server = MockServer::start().await;
    let data = b"-- PostgreSQL database dump --".to_vec();
    let crc = encode_crc32c(Checksum::of(&data));
    let check = {
        let (data, crc) = (data.clone(), crc.clone());
        move |req: &Request| {
            let ct = req
                .headers
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let boundary = ct.strip_prefix("multipart/related; boundary=").unwrap();
            let body = String::from_utf8_lossy(&req.body).to_string();
            let Some((head, rest)) = body
                .strip_prefix(&format!(
                    "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
                ))
                .and_then(|b| b.split_once("\r\n"))
            else {
                return false;
            };
            let resource: serde_json::Value = serde_json::from_str(head).unwrap();
            let expected = json!({"name": "backup/app.dump", "contentType": "application/octet-stream",
                "metadata": {"db": "app", "ops-source": "pg_dump", "ops-crc32c": crc,
                             "ops-size": data.len().to_string()},
                "crc32c": crc});
            let media = format!(
                "--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}--\r\n",
                String::from_utf8_lossy(&data)
            );
            without_upload_id(resource) == expected && rest == media
        }
    };
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(query_param("uploadType", "multipart"))
        .and(query_param("ifGenerationMatch", "0"))
        .and(header("authorization", bearer().as_str()))
        .and(check)
        .respond_with(ResponseTemplate::new(200).set_body_json(object(
            "backup/app.dump",
            &data,
            "1700000000000001",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let info = store(&server)
        .put_artifact(
            &put("app.dump"),
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.id, "app.dump");
    assert_eq!(info.checksum, Some(Checksum::of(&data)));
    assert_eq!(info.source.as_deref(), Some("pg_dump"));
    assert_eq!(info.labels.get("db").map(String::as_str), Some("app"));
    assert_eq!(info.location, "gs://acme-backups/backup/app.dump");
}

#[tokio::test]
async fn large_artifacts_use_a_resumable_session_in_256k_chunks() {
    let server = MockServer::start().await;
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    let session = format!(
        "{}{UPLOAD}?uploadType=resumable&upload_id=ADPycduJ",
        server.uri()
    );
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(query_param("uploadType", "resumable"))
        .and(query_param("ifGenerationMatch", "0"))
        .and(header("x-upload-content-type", "application/octet-stream"))
        .and(|req: &Request| {
            let resource: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            without_upload_id(resource)
                == json!({"name": "backup/big.dump", "contentType": "application/octet-stream",
                          "metadata": {"db": "app", "ops-source": "pg_dump"}})
        })
        .respond_with(ResponseTemplate::new(200).insert_header("location", session.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let chunk = |range: &'static str, status: u16, kept: Option<&'static str>| {
        let mut t = ResponseTemplate::new(status);
        if let Some(k) = kept {
            t = t.insert_header("range", k);
        }
        Mock::given(method("PUT"))
            .and(path(UPLOAD))
            .and(query_param("upload_id", "ADPycduJ"))
            .and(header("content-range", range))
            .respond_with(t)
            .expect(1)
    };
    chunk("bytes 0-262143/*", 308, Some("bytes=0-262143"))
        .mount(&server)
        .await;
    chunk("bytes 262144-524287/*", 308, Some("bytes=0-524287"))
        .mount(&server)
        .await;
    let crc = encode_crc32c(Checksum::of(&data));
    Mock::given(method("PUT"))
        .and(path(UPLOAD))
        .and(header("content-range", "bytes 524288-599999/600000"))
        .and(header("x-goog-hash", format!("crc32c={crc}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(unrecorded(
            "backup/big.dump",
            &data,
            "1700000000000002",
        )))
        .expect(1)
        .mount(&server)
        .await;
    // Then the checksum and size are recorded on that generation.
    Mock::given(method("PATCH"))
        .and(path(format!("{OBJECTS}/backup%2Fbig.dump")))
        .and(query_param("ifGenerationMatch", "1700000000000002"))
        .and(query_param("ifMetagenerationMatch", "1"))
        .and(body_json(
            json!({"metadata": {"ops-crc32c": crc, "ops-size": "600000"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(object(
            "backup/big.dump",
            &data,
            "1700000000000002",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let info = store(&server)
        .put_artifact(
            &put("big.dump"),
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.size_bytes, Some(600_000));
}

#[tokio::test]
async fn an_existing_object_is_never_overwritten() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({"error": {"code": 412,
            "message": "At least one of the pre-conditions you specified did not hold.",
            "errors": [{"message": "At least one of the pre-conditions you specified did not hold.",
                        "domain": "global", "reason": "conditionNotMet", "locationType": "header", "location": "If-Match"}]}})))
        .expect(1)
        .mount(&server)
        .await;
    // Someone else's object holds the name (its upload id is not ours).
    let mut theirs = object("backup/app.dump", b"theirs", "1700000000000009");
    theirs["metadata"]["ops-upload-id"] = json!("00000000deadbeef");
    Mock::given(method("GET"))
        .and(path(format!("{OBJECTS}/backup%2Fapp.dump")))
        .respond_with(ResponseTemplate::new(200).set_body_json(theirs))
        .mount(&server)
        .await;
    let err = store(&server)
        .put_artifact(&put("app.dump"), Box::pin(&b"x"[..]))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::AlreadyExists { .. }),
        "{err}"
    );
}

/// The metadata part of a multipart upload.
fn multipart_resource(req: &Request) -> serde_json::Value {
    let body = String::from_utf8_lossy(&req.body).to_string();
    let json = body.split("\r\n\r\n").nth(1).unwrap();
    let json = json.split("\r\n").next().unwrap();
    serde_json::from_str(json).unwrap()
}

/// The first request's reply is lost (the server wrote the object, the client timed out):
/// the repeat meets `ifGenerationMatch=0`, and the client recognises its own object by the
/// upload id instead of reporting that the backup already exists.
#[tokio::test]
async fn a_single_request_upload_whose_reply_was_lost_finds_its_own_object() {
    use std::sync::{Arc, Mutex};
    let server = MockServer::start().await;
    let data = b"dump".to_vec();
    let written: Arc<Mutex<Option<serde_json::Value>>> = Arc::default();
    let stored = {
        let (data, written) = (data.clone(), written.clone());
        move |req: &Request| {
            let resource = multipart_resource(req);
            let mut o = object("backup/app.dump", &data, "1700000000000004");
            o["metadata"] = resource["metadata"].clone();
            *written.lock().unwrap() = Some(o.clone());
            // The reply never arrives in time.
            ResponseTemplate::new(200)
                .set_body_json(o)
                .set_delay(std::time::Duration::from_secs(2))
        }
    };
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .respond_with(stored)
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(query_param("ifGenerationMatch", "0"))
        .respond_with(
            ResponseTemplate::new(412).set_body_json(json!({"error": {"code": 412,
            "message": "At least one of the pre-conditions you specified did not hold."}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let echo = {
        let written = written.clone();
        move |_: &Request| {
            ResponseTemplate::new(200).set_body_json(written.lock().unwrap().clone().unwrap())
        }
    };
    Mock::given(method("GET"))
        .and(path(format!("{OBJECTS}/backup%2Fapp.dump")))
        .respond_with(echo)
        .expect(1)
        .mount(&server)
        .await;
    let info = store(&server)
        .put_artifact(
            &put("app.dump"),
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.checksum, Some(Checksum::of(&data)));
    assert_eq!(info.size_bytes, Some(4));
}

#[tokio::test]
async fn a_throttled_single_request_upload_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    let data = b"dump".to_vec();
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(query_param("ifGenerationMatch", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(object(
            "backup/app.dump",
            &data,
            "1700000000000005",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let clock = clock();
    let s = CloudStorage::new(client(&server, clock.clone()), "acme-backups", "backup/").unwrap();
    let info = s
        .put_artifact(
            &put("app.dump"),
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.size_bytes, Some(4));
    assert!(
        clock.now() >= t0() + chrono::Duration::seconds(3),
        "both Retry-After waits were honoured: {}",
        clock.now()
    );
}

#[tokio::test]
async fn a_server_checksum_that_differs_deletes_the_object() {
    let server = MockServer::start().await;
    let mut wrong = object("backup/app.dump", b"something else", "1700000000000003");
    wrong["size"] = json!("4");
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .respond_with(ResponseTemplate::new(200).set_body_json(wrong))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{OBJECTS}/backup%2Fapp.dump")))
        .and(query_param("ifGenerationMatch", "1700000000000003"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let err = store(&server)
        .put_artifact(&put("app.dump"), Box::pin(&b"data"[..]))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn listing_follows_pages_under_the_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(OBJECTS))
        .and(query_param("prefix", "backup/app-"))
        .and(query_param("maxResults", "1000"))
        .and(query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "storage#objects", "nextPageToken": "CgZhcHAtMDI=",
            "items": [object("backup/app-20261122-090000.db", b"a", "1")]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(OBJECTS))
        .and(query_param("pageToken", "CgZhcHAtMDI="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "kind": "storage#objects",
            "items": [object("backup/app-20261123-090000.db", b"b", "2")]
        })))
        .mount(&server)
        .await;
    let all = store(&server)
        .list(&BackupFilter {
            prefix: Some("app-".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"app-20261122-090000.db") && ids.contains(&"app-20261123-090000.db"));
}

#[tokio::test]
async fn downloads_are_verified_against_x_goog_hash() {
    let server = MockServer::start().await;
    let data = b"backup bytes".to_vec();
    let media = |body: &[u8], hash: &str| {
        ResponseTemplate::new(200)
            .set_body_raw(body.to_vec(), "application/octet-stream")
            .insert_header(
                "x-goog-hash",
                format!("crc32c={hash},md5=XrY7u+Ae7tCTyyK7j1rNww==").as_str(),
            )
            .insert_header("x-goog-generation", "1700000000000001")
            .insert_header(
                "x-goog-stored-content-length",
                body.len().to_string().as_str(),
            )
    };
    let good = encode_crc32c(Checksum::of(&data));
    for (name, body) in [("ok.db", &data[..]), ("bad.db", &b"backup bytez"[..])] {
        // The resource first (what was written), then the bytes of that generation.
        Mock::given(method("GET"))
            .and(path(format!("{OBJECTS}/backup%2F{name}")))
            .and(query_param_is_missing("alt"))
            .and(header("authorization", bearer().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(object(
                &format!("backup/{name}"),
                &data,
                "1700000000000001",
            )))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{OBJECTS}/backup%2F{name}")))
            .and(query_param("alt", "media"))
            .and(query_param("generation", "1700000000000001"))
            .and(header("authorization", bearer().as_str()))
            .respond_with(media(body, &good))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(format!("{OBJECTS}/backup%2Fmissing.db")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"code": 404,
            "message": "No such object: acme-backups/backup/missing.db",
            "errors": [{"message": "No such object: acme-backups/backup/missing.db", "domain": "global", "reason": "notFound"}]}})))
        .mount(&server)
        .await;
    let s = store(&server);
    let mut out = Vec::new();
    s.get_artifact("ok.db")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, data);
    let mut out = Vec::new();
    let err = s
        .get_artifact("bad.db")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    let err = s.get_artifact("missing.db").await.map(|_| ()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotFound { .. }));
}

/// A raw server: the first response promises `data.len()` bytes and closes after half; the
/// second must be a `Range` request for the rest of the same generation.
#[tokio::test]
async fn a_download_cut_mid_body_resumes_with_a_range_request() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hash = encode_crc32c(Checksum::of(&data));
    let served = data.clone();
    let server = tokio::spawn(async move {
        let mut requests = Vec::new();
        // The object's resource, on a connection of its own.
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = sock.read(&mut buf).await.unwrap();
        requests.push(String::from_utf8_lossy(&buf[..n]).to_string());
        let resource = object("backup/db.bin", &served, "77").to_string();
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\
             content-length: {}\r\n\r\n{resource}",
            resource.len()
        );
        sock.write_all(reply.as_bytes()).await.unwrap();
        drop(sock);
        for round in 0..2 {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap();
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            requests.push(head.clone());
            let (status, body) = if round == 0 {
                ("200 OK", &served[..])
            } else {
                ("206 Partial Content", &served[100_000..])
            };
            let header = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\n\
                 x-goog-hash: crc32c={hash}\r\nx-goog-generation: 77\r\nx-goog-stored-content-length: {}\r\n\r\n",
                body.len(),
                served.len()
            );
            sock.write_all(header.as_bytes()).await.unwrap();
            if round == 0 {
                sock.write_all(&body[..100_000]).await.unwrap();
                // Cut: the promised bytes never come.
                drop(sock);
            } else {
                sock.write_all(body).await.unwrap();
            }
        }
        requests
    });
    let mut config = support::config(&MockServer::start().await);
    config.endpoints = ops_gcp::Endpoints::all_at(&format!("http://{addr}")).unwrap();
    let auth = std::sync::Arc::new(ops_gcp::auth::TokenProvider::static_token(TOKEN));
    let client = ops_gcp::GcpClient::new(config, auth).unwrap();
    let s = CloudStorage::new(client, "acme-backups", "backup/").unwrap();
    let mut out = Vec::new();
    s.get_artifact("db.bin")
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert!(out == data, "every byte once, in order");
    let requests = server.await.unwrap();
    assert!(!requests[0].contains("alt=media"), "{}", requests[0]);
    assert!(requests[1].contains("generation=77"), "{}", requests[1]);
    let second = requests[2].to_ascii_lowercase();
    assert!(second.contains("range: bytes=100000-"), "{second}");
    assert!(second.contains("generation=77"), "{second}");
}

#[tokio::test]
async fn reads_and_preconditioned_writes_retry_up_to_the_policy() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{OBJECTS}/backup%2Fa.db")))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "1"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{OBJECTS}/backup%2Fa.db")))
        .respond_with(ResponseTemplate::new(200).set_body_json(object("backup/a.db", b"a", "5")))
        .mount(&server)
        .await;
    // A write that cannot apply twice (`ifGenerationMatch=0`) is retried like a read.
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_string("{\"error\": {\"code\": 500, \"message\": \"Backend Error\"}}"),
        )
        .expect(5)
        .mount(&server)
        .await;
    // A write that could apply twice is not: a session's chunk after a 500 is resumed from
    // what the session says it kept, never blindly re-sent (see the resumable tests).
    let s = store(&server);
    assert_eq!(s.describe("a.db").await.unwrap().size_bytes, Some(1));
    let err = s
        .put_artifact(&put("b.db"), Box::pin(&b"b"[..]))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Provider { status: 500, .. }),
        "{err}"
    );
    let err = s.describe("../etc/passwd").await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { .. }));
}

/// Google's client libraries escape every byte of an object name but `A-Za-z0-9-._~`; the
/// looser RFC 3986 path set would leave `; , ' ( ) * ! $ & = + : @` as they are.
#[tokio::test]
async fn object_names_are_escaped_like_googles_client_libraries() {
    let server = MockServer::start().await;
    let name = "backup/a;b,c'd(e)f*g!h$i&j=k+l:m@n o~p.q-r_s";
    let escaped = "backup%2Fa%3Bb%2Cc%27d%28e%29f%2Ag%21h%24i%26j%3Dk%2Bl%3Am%40n%20o~p.q-r_s";
    Mock::given(method("GET"))
        .and(move |req: &Request| req.url.path() == format!("{OBJECTS}/{escaped}"))
        .respond_with(ResponseTemplate::new(200).set_body_json(object(name, b"x", "9")))
        .expect(1)
        .mount(&server)
        .await;
    let info = store(&server)
        .describe(name.strip_prefix("backup/").unwrap())
        .await
        .unwrap();
    assert_eq!(info.id, "a;b,c'd(e)f*g!h$i&j=k+l:m@n o~p.q-r_s");
}

/// A chunk fails, and so does the first question to the session about how far it got: the
/// client asks again (after a backoff) and resumes from the answer; it never re-sends a chunk
/// without knowing what the session kept.
#[tokio::test]
async fn a_failed_status_query_is_asked_again_before_anything_is_resent() {
    let server = MockServer::start().await;
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let session = format!("{}{UPLOAD}?uploadType=resumable&upload_id=S1", server.uri());
    Mock::given(method("POST"))
        .and(path(UPLOAD))
        .and(query_param("uploadType", "resumable"))
        .respond_with(ResponseTemplate::new(200).insert_header("location", session.as_str()))
        .mount(&server)
        .await;
    let put_range = |range: &'static str| {
        Mock::given(method("PUT"))
            .and(query_param("upload_id", "S1"))
            .and(header("content-range", range))
    };
    put_range("bytes 0-262143/*")
        .respond_with(ResponseTemplate::new(308).insert_header("range", "bytes=0-262143"))
        .expect(1)
        .mount(&server)
        .await;
    // The second chunk fails; the session kept half of it.
    put_range("bytes 262144-524287/*")
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    put_range("bytes */*")
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    put_range("bytes */*")
        .respond_with(ResponseTemplate::new(308).insert_header("range", "bytes=0-393215"))
        .expect(1)
        .mount(&server)
        .await;
    put_range("bytes 393216-524287/*")
        .respond_with(ResponseTemplate::new(308).insert_header("range", "bytes=0-524287"))
        .expect(1)
        .mount(&server)
        .await;
    put_range("bytes 524288-599999/600000")
        .respond_with(ResponseTemplate::new(200).set_body_json(object(
            "backup/big.dump",
            &data,
            "1700000000000006",
        )))
        .expect(1)
        .mount(&server)
        .await;
    store(&server)
        .put_artifact(
            &put("big.dump"),
            Box::pin(std::io::Cursor::new(data.clone())),
        )
        .await
        .unwrap();
    let ranges: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "PUT")
        .map(|r| {
            r.headers
                .get("content-range")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ranges,
        [
            "bytes 0-262143/*",
            "bytes 262144-524287/*",
            "bytes */*",
            "bytes */*",
            "bytes 393216-524287/*",
            "bytes 524288-599999/600000"
        ],
        "no byte is sent before the session says it lacks it"
    );
}
