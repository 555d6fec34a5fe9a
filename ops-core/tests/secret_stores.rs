//! The read-only secret stores: their suite, bad input, and values that never print.

use ops_core::ErrorKind;
use ops_core::adapters::{EnvSecretStore, FileSecretStore};
use ops_core::contracts::{SecretStore, SecretValue, VersionRef};
use ops_core::testkit::{self, SecretFixture};

fn fixture(existing: &[(&str, &str)]) -> SecretFixture {
    SecretFixture {
        existing: existing
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect(),
        scratch: "scratch".into(),
        missing: "does-not-exist".into(),
    }
}

#[tokio::test]
async fn env_store_passes_the_suite() {
    let store = EnvSecretStore::from_vars(
        "OPS_TEST_",
        [
            ("OPS_TEST_DB_PASSWORD", b"correct horse battery".to_vec()),
            ("OPS_TEST_API_KEY", b"k-123456".to_vec()),
            ("UNRELATED", b"x".to_vec()),
        ],
    );
    testkit::secret_store(
        &store,
        &fixture(&[
            ("DB_PASSWORD", "correct horse battery"),
            ("API_KEY", "k-123456"),
        ]),
    )
    .await;
    let names: Vec<String> = store
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        vec!["API_KEY", "DB_PASSWORD"],
        "only prefixed variables, prefix stripped"
    );
    assert!(!format!("{store:?}").contains("horse"));
}

#[tokio::test]
async fn env_store_rejects_non_utf8_where_text_is_expected() {
    let store = EnvSecretStore::from_vars("P_", [("P_BIN", vec![0xff, 0xfe, 0x00])]);
    let read = store.read("BIN", &VersionRef::Latest).await.unwrap();
    assert_eq!(read.value.expose_bytes(), &[0xff, 0xfe, 0x00]);
    let err = read.value.expose_str().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    let err = store.read("", &VersionRef::Latest).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::InvalidInput { .. }));
}

#[tokio::test]
async fn file_store_passes_the_suite_with_mounted_layout() {
    let dir = tempfile::tempdir().unwrap();
    // Kubernetes layout: ..data/NAME and a NAME symlink to it.
    std::fs::create_dir(dir.path().join("..data")).unwrap();
    std::fs::write(dir.path().join("..data/db-password"), "pa55-word-xyz").unwrap();
    std::os::unix::fs::symlink("..data/db-password", dir.path().join("db-password")).unwrap();
    std::fs::write(dir.path().join("token"), "tok-abcdef").unwrap();
    let store = FileSecretStore::open(dir.path()).await.unwrap();
    testkit::secret_store(
        &store,
        &fixture(&[("db-password", "pa55-word-xyz"), ("token", "tok-abcdef")]),
    )
    .await;
    let names: Vec<String> = store
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["db-password", "token"]);
    let v = store.list_versions("token").await.unwrap();
    assert!(
        v[0].created_at.is_some(),
        "the version's time is the file's mtime"
    );
}

#[tokio::test]
async fn file_store_bad_input_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big"), vec![b'x'; 1024 * 1024 + 1]).unwrap();
    let store = FileSecretStore::open(dir.path()).await.unwrap();
    for bad in ["../etc/passwd", "a/b", ".hidden", ""] {
        let err = store.read(bad, &VersionRef::Latest).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{bad}: {err}"
        );
    }
    let err = store.read("big", &VersionRef::Latest).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
    let err = FileSecretStore::open(dir.path().join("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err}"
    );
    let err = FileSecretStore::open(dir.path().join("big"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn memory_store_passes_the_suite_with_every_capability() {
    let store = ops_core::memory::MemorySecretStore::new("mem");
    store
        .add_version("api-key", &SecretValue::from("k-0000-1111"))
        .await
        .unwrap();
    testkit::secret_store(&store, &fixture(&[("api-key", "k-0000-1111")])).await;
    // A destroyed version cannot come back.
    let v = store.list_versions("scratch").await.unwrap();
    let destroyed = v
        .iter()
        .find(|v| v.state == ops_core::contracts::VersionState::Destroyed)
        .unwrap();
    let err = store
        .enable_version("scratch", &destroyed.id)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Conflict { .. }), "{err}");
    assert!(!format!("{store:?}").contains("k-0000"));
}
