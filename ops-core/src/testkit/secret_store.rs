//! The [`SecretStore`] suite.

use super::{Case, always, cases, check_cases, expect_kind, expect_ok};
use crate::ErrorKind;
use crate::contracts::{SecretStore, SecretValue, VersionRef, VersionState};

/// What the secret suite needs from the store under test.
#[derive(Debug, Clone)]
pub struct SecretFixture {
    /// Secrets that exist with these values (for read-only stores, at least one).
    pub existing: Vec<(String, SecretValue)>,
    /// A secret name the suite may create and write versions to (writable stores).
    pub scratch: String,
    /// A name that does not exist.
    pub missing: String,
}

fn leaks(text: &str, value: &SecretValue) -> bool {
    value.len() >= 4 && value.expose_str().is_ok_and(|v| text.contains(v))
}

/// The secret suite's cases.
pub fn secret_store_cases() -> Vec<Case<dyn SecretStore, SecretFixture>> {
    cases![dyn SecretStore, SecretFixture;
        a_missing_secret_is_not_found_and_no_value_leaks unless always,
        existing_secrets_list_and_read_back unless always,
        undeclared_capabilities_are_unsupported unless always,
        versions_are_added_listed_disabled_and_destroyed unless read_only,
    ]
}

/// Runs every case that applies to what `store` declares, and fails naming every broken one.
pub async fn secret_store(store: &(dyn SecretStore + 'static), fixture: &SecretFixture) {
    check_cases("secret_store", store, fixture, &secret_store_cases()).await;
}

fn read_only(store: &dyn SecretStore) -> Option<&'static str> {
    (!store.capabilities().write).then_some("the store does not declare `write`")
}

async fn a_missing_secret_is_not_found_and_no_value_leaks(
    store: &dyn SecretStore,
    fixture: &SecretFixture,
) {
    let missing = expect_kind(
        "read of a missing secret",
        store.read(&fixture.missing, &VersionRef::Latest).await,
        |k| {
            matches!(
                k,
                ErrorKind::NotFound { .. } | ErrorKind::Unsupported { .. }
            )
        },
    );
    for (_, v) in &fixture.existing {
        assert!(!leaks(&missing.to_string(), v), "errors never carry values");
    }
}

async fn existing_secrets_list_and_read_back(store: &dyn SecretStore, fixture: &SecretFixture) {
    let caps = store.capabilities();
    let listed = expect_ok("list_secrets", store.list_secrets().await);
    for (name, value) in &fixture.existing {
        assert!(
            listed.iter().any(|s| &s.name == name),
            "list_secrets has {name}"
        );
        let versions = expect_ok("list_versions", store.list_versions(name).await);
        assert!(
            versions.iter().any(|v| v.state == VersionState::Enabled),
            "{name} has an enabled version"
        );
        assert!(
            versions.iter().all(|v| &v.secret == name),
            "versions name their secret"
        );
        if caps.read {
            let read = expect_ok("read latest", store.read(name, &VersionRef::Latest).await);
            assert!(
                read.value == *value,
                "read returns the stored value of {name}"
            );
            assert!(
                !read.version.is_empty(),
                "read names the version it resolved"
            );
            assert!(
                !leaks(&format!("{read:?}"), value),
                "Debug of a read never shows the value"
            );
            let by_id = expect_ok(
                "read by id",
                store
                    .read(name, &VersionRef::Id(read.version.clone()))
                    .await,
            );
            assert!(
                by_id.value == *value,
                "reading the resolved version id gives the same value"
            );
            expect_kind(
                "read of a missing version",
                store
                    .read(name, &VersionRef::Id("no-such-version-424242".into()))
                    .await,
                |k| matches!(k, ErrorKind::NotFound { .. }),
            );
        } else {
            expect_kind(
                "read without the read capability",
                store.read(name, &VersionRef::Latest).await,
                |k| matches!(k, ErrorKind::Unsupported { .. }),
            );
        }
    }
}

async fn undeclared_capabilities_are_unsupported(store: &dyn SecretStore, fixture: &SecretFixture) {
    let caps = store.capabilities();
    let scratch = &fixture.scratch;
    if !caps.write {
        expect_kind(
            "add_version on a read-only store",
            store.add_version(scratch, &"v".into()).await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
    if !caps.enable_disable {
        expect_kind(
            "disable_version unsupported",
            store.disable_version(scratch, "1").await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
        expect_kind(
            "enable_version unsupported",
            store.enable_version(scratch, "1").await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
    if !caps.destroy {
        expect_kind(
            "destroy_version unsupported",
            store.destroy_version(scratch, "1").await,
            |k| matches!(k, ErrorKind::Unsupported { .. }),
        );
    }
}

async fn versions_are_added_listed_disabled_and_destroyed(
    store: &dyn SecretStore,
    fixture: &SecretFixture,
) {
    let caps = store.capabilities();
    let scratch = fixture.scratch.as_str();
    let v1 = expect_ok(
        "add_version 1",
        store
            .add_version(scratch, &SecretValue::from("first-value"))
            .await,
    );
    let v2 = expect_ok(
        "add_version 2",
        store
            .add_version(scratch, &SecretValue::from("second-value"))
            .await,
    );
    assert_eq!(v1.state, VersionState::Enabled, "new versions are enabled");
    assert_ne!(v1.id, v2.id, "versions get distinct ids");
    let versions = expect_ok("list_versions", store.list_versions(scratch).await);
    if caps.history {
        let pos = |id: &str| versions.iter().position(|v| v.id == id);
        assert!(
            pos(&v2.id) < pos(&v1.id) && pos(&v1.id).is_some(),
            "versions are newest first"
        );
    } else {
        let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![v2.id.as_str()],
            "without history only the current value is listed"
        );
    }
    if caps.read {
        let latest = expect_ok(
            "read latest",
            store.read(scratch, &VersionRef::Latest).await,
        );
        assert_eq!(latest.version, v2.id, "latest is the newest version");
        assert_eq!(latest.value.expose_str().unwrap(), "second-value");
    }
    if caps.enable_disable {
        let d = expect_ok("disable", store.disable_version(scratch, &v2.id).await);
        assert_eq!(d.state, VersionState::Disabled);
        if caps.read {
            let latest = expect_ok(
                "read latest after disable",
                store.read(scratch, &VersionRef::Latest).await,
            );
            assert_eq!(latest.version, v1.id, "latest skips disabled versions");
            expect_kind(
                "read of a disabled version",
                store.read(scratch, &VersionRef::Id(v2.id.clone())).await,
                |k| matches!(k, ErrorKind::NotFound { .. }),
            );
        }
        let e = expect_ok("enable", store.enable_version(scratch, &v2.id).await);
        assert_eq!(e.state, VersionState::Enabled);
    }
    if caps.destroy {
        let d = expect_ok("destroy", store.destroy_version(scratch, &v1.id).await);
        assert_eq!(d.state, VersionState::Destroyed);
        if caps.read {
            expect_kind(
                "read of a destroyed version",
                store.read(scratch, &VersionRef::Id(v1.id.clone())).await,
                |k| matches!(k, ErrorKind::NotFound { .. }),
            );
        }
    }
}
