//! `CloudStorage` against fake-gcs-server, a Cloud Storage emulator we did not write: the
//! `backup_store` testkit suite with the default 8 MiB chunk (single-request uploads) and with
//! 256 KiB chunks (the resumable protocol), and uploads cut mid-stream by a proxy.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ops_core::checksum::Checksum;
use ops_core::contracts::*;
use ops_core::testkit::{self, BackupFixture};
use ops_gcp::CloudStorage;
use support::fake_gcs::FakeGcs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BUCKET: &str = "acme-backups";
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn put(id: &str) -> PutArtifact {
    PutArtifact {
        id: id.into(),
        source: Some("pg_dump".into()),
        labels: Default::default(),
    }
}

fn data(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 56) as u8
        })
        .collect()
}

async fn read_all(store: &CloudStorage, id: &str) -> ops_core::Result<Vec<u8>> {
    let mut r = store.get_artifact(id).await?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .await
        .map_err(|e| ops_core::error::from_io("test", "read", e))?;
    Ok(out)
}

/// The seed's live database object, for `create` (server-side copy) and `restore`.
async fn fixture(gcs: &FakeGcs, id_prefix: &str) -> BackupFixture {
    gcs.put_object(BUCKET, "data/app.db", &data(300 * KIB))
        .await;
    BackupFixture {
        create_source: Some(CreateBackup {
            source: "data/app.db".into(),
            name: None,
            labels: Default::default(),
        }),
        restore_target: Some(RestoreTarget::Other("restore-check/app.db".into())),
        ..BackupFixture::new(id_prefix)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_store_suite_passes_with_single_request_uploads() {
    let gcs = FakeGcs::start(&[BUCKET]).await;
    let store = CloudStorage::new(gcs.client(), BUCKET, "backup/").unwrap();
    testkit::backup_store(&store, &fixture(&gcs, "default-chunk").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_store_suite_passes_with_resumable_uploads() {
    let gcs = FakeGcs::start(&[BUCKET]).await;
    let store = CloudStorage::new(gcs.client(), BUCKET, "backup/")
        .unwrap()
        .with_chunk_size(256 * KIB)
        .unwrap();
    testkit::backup_store(&store, &fixture(&gcs, "small-chunk").await).await;
}

/// A TCP proxy that closes the connection carrying the upload once `cut_at` bytes of request
/// data have gone through it in all, once.
struct CuttingProxy {
    url: String,
    cut: Arc<AtomicBool>,
}

impl CuttingProxy {
    async fn start(upstream: &str, cut_at: u64) -> CuttingProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let up = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(pipe(client, up, sent.clone(), flag.clone(), cut_at));
            }
        });
        CuttingProxy { url, cut }
    }
}

async fn pipe(
    client: TcpStream,
    up: TcpStream,
    sent: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    at: u64,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut ur, &mut cw).await });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = sent.fetch_add(n as u64, Ordering::SeqCst);
        if before < at && before + n as u64 >= at && !cut.swap(true, Ordering::SeqCst) {
            let keep = (at - before) as usize;
            let _ = uw.write_all(&buf[..keep]).await;
            // Both directions go: the client sees its request die mid-body.
            down.abort();
            return;
        }
        if uw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = uw.shutdown().await;
    let _ = down.await;
}

/// fake-gcs-server commits the partial object when the client asks the session how far it got
/// (real Cloud Storage keeps the session open). The client must not leave that object behind:
/// nothing may list as a backup that is not every byte the source gave, and the same id must
/// be usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_midway_leaves_no_partial_object_and_the_id_stays_usable() {
    let gcs = FakeGcs::start(&[BUCKET]).await;
    let proxy = CuttingProxy::start(&gcs.url, (MIB + 100 * KIB) as u64).await;
    let cut_store = CloudStorage::new(FakeGcs::client_at(&proxy.url), BUCKET, "backup/")
        .unwrap()
        .with_chunk_size(256 * KIB)
        .unwrap();
    let direct = CloudStorage::new(gcs.client(), BUCKET, "backup/")
        .unwrap()
        .with_chunk_size(256 * KIB)
        .unwrap();
    let bytes = data(4 * MIB + 1234);

    let err = cut_store
        .put_artifact(
            &put("app-cut.dump"),
            Box::pin(std::io::Cursor::new(bytes.clone())),
        )
        .await
        .expect_err("the emulator cannot resume, so the put fails");
    assert!(proxy.cut.load(Ordering::SeqCst), "the proxy cut the upload");
    eprintln!("put failed as expected: {err}");

    let listed = direct.list(&BackupFilter::default()).await.unwrap();
    assert!(
        listed.iter().all(|b| b.id != "app-cut.dump"),
        "a truncated object lists as a backup: {listed:?}"
    );
    assert!(
        matches!(
            direct.describe("app-cut.dump").await.unwrap_err().kind(),
            ops_core::ErrorKind::NotFound { .. }
        ),
        "the truncated object is gone"
    );

    let info = direct
        .put_artifact(
            &put("app-cut.dump"),
            Box::pin(std::io::Cursor::new(bytes.clone())),
        )
        .await
        .expect("a retry of the same id succeeds");
    assert_eq!(info.size_bytes, Some(bytes.len() as u64));
    assert_eq!(info.checksum, Some(Checksum::of(&bytes)));
    assert!(read_all(&direct, "app-cut.dump").await.unwrap() == bytes);
}

/// Someone replaces a backup through the API after it was taken, keeping its metadata (as a
/// copy tool that preserves metadata does). The server's checksum describes the new bytes,
/// so checking against it alone would read them back as the backup; the writer's recorded
/// checksum does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_replaced_after_it_was_taken_does_not_read_back_as_valid() {
    let gcs = FakeGcs::start(&[BUCKET]).await;
    let store = CloudStorage::new(gcs.client(), BUCKET, "backup/").unwrap();
    let original = data(100 * KIB);
    let info = store
        .put_artifact(
            &put("app.dump"),
            Box::pin(std::io::Cursor::new(original.clone())),
        )
        .await
        .unwrap();
    assert_eq!(info.state, BackupState::Complete);
    store
        .record_verification(
            "app.dump",
            &Verification::Verified {
                at: "2026-11-30T08:00:00Z".parse().unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        latest_verified(&store, &BackupFilter::default())
            .await
            .unwrap()
            .id,
        "app.dump"
    );
    let written = store.object("backup/app.dump").await.unwrap();

    // The replacement: other bytes, the old metadata, through the emulator's own API.
    let other = data(90 * KIB).into_iter().rev().collect::<Vec<u8>>();
    let http = reqwest::Client::new();
    let boundary = "replace";
    let resource = serde_json::json!({"name": "backup/app.dump", "metadata": written.metadata});
    let mut body = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{resource}\r\n--{boundary}\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&other);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = http
        .post(format!(
            "{}/upload/storage/v1/b/{BUCKET}/o?uploadType=multipart",
            gcs.url
        ))
        .header(
            "content-type",
            format!("multipart/related; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let described = store.describe("app.dump").await.unwrap();
    assert_eq!(described.state, BackupState::Failed, "{described:?}");
    assert_eq!(
        described.checksum,
        Some(Checksum::of(&original)),
        "what was written"
    );
    let err = read_all(&store, "app.dump").await.unwrap_err();
    assert!(
        matches!(err.kind(), ops_core::ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(
        latest_verified(&store, &BackupFilter::default())
            .await
            .is_err(),
        "a replaced backup is never the latest good one"
    );
}

/// Names with every character the loose path set leaves unescaped, through a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_with_awkward_names_round_trip() {
    let gcs = FakeGcs::start(&[BUCKET]).await;
    let store = CloudStorage::new(gcs.client(), BUCKET, "backup/").unwrap();
    let id = "app;v=2,(copy)*!$&+:@ 'x'~.dump";
    let bytes = data(10 * KIB);
    store
        .put_artifact(&put(id), Box::pin(std::io::Cursor::new(bytes.clone())))
        .await
        .unwrap();
    assert_eq!(store.describe(id).await.unwrap().id, id);
    assert!(read_all(&store, id).await.unwrap() == bytes);
    let ids: Vec<String> = store
        .list(&BackupFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, [id]);
    store.delete(id).await.unwrap();
    assert!(
        store
            .list(&BackupFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A zstd artifact (as the backup runbook stores it) restores as the plain bytes onto its
/// target on a Cloud Storage we did not write, and the scratch object it decompresses into is
/// gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_artifact_restores_plain_and_leaves_no_scratch_object() {
    use ops_core::codec::{self, Codec};
    let gcs = FakeGcs::start(&[BUCKET]).await;
    let store = CloudStorage::new(gcs.client(), BUCKET, "backup/").unwrap();
    // 3 MiB of an event table's text: compresses well.
    let plain: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("{i},order.created,2026-11-30T12:00:00Z,{}\n", i % 977).into_bytes())
        .collect();
    let encoded = codec::encode(
        Box::pin(std::io::Cursor::new(plain.clone())),
        Codec::DEFAULT,
        1,
    )
    .await
    .unwrap();
    assert_eq!(encoded.codec, Codec::DEFAULT, "text is stored compressed");
    let mut request = put("app-20261130-120000.db");
    request.labels = encoded.codec.labels();
    let info = store.put_artifact(&request, encoded.reader).await.unwrap();
    assert!(
        info.size_bytes.unwrap() < plain.len() as u64 / 4,
        "{:?}",
        info.size_bytes
    );

    let out = store
        .restore(
            "app-20261130-120000.db",
            &RestoreTarget::Other("data/app.db".into()),
        )
        .await
        .unwrap();
    assert_eq!(out.bytes, Some(plain.len() as u64));
    assert!(gcs.get_object(BUCKET, "data/app.db").await.unwrap() == plain);
    let names = gcs.object_names(BUCKET).await;
    assert!(
        !names.iter().any(|n| n.contains(".restore-")),
        "no scratch object left: {names:?}"
    );
}
