//! [`SecretStore`]: versioned secrets, with values that never print.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A secret value. Its `Debug` prints `SecretValue([REDACTED; n bytes])`, it has no `Display`
/// and no `Serialize`, and its memory is zeroed on drop.
///
/// ```
/// use ops_core::contracts::SecretValue;
/// let v = SecretValue::from("hunter2");
/// assert!(!format!("{v:?}").contains("hunter2"));
/// assert_eq!(v.expose_str().unwrap(), "hunter2");
/// ```
pub struct SecretValue(SecretBox<[u8]>);

impl SecretValue {
    /// Wraps bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(bytes.into_boxed_slice()))
    }
    /// The bytes. Call only where the value must leave the process (a request body).
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
    /// The value as text; `InvalidInput` when it is not UTF-8 (the value is not in the error).
    pub fn expose_str(&self) -> Result<&str> {
        std::str::from_utf8(self.expose_bytes()).map_err(|e| {
            Error::invalid_input(
                "ops-core",
                "secret_value",
                "value",
                format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
            )
        })
    }
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.expose_bytes().len()
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        Self::from_bytes(self.expose_bytes().to_vec())
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        // Constant-time in length of the shorter value is not needed here: values are compared
        // only in tests and validation hooks, never against attacker input.
        self.expose_bytes() == other.expose_bytes()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue([REDACTED; {} bytes])", self.len())
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        Self::from_bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        Self::from_bytes(s.into_bytes())
    }
}

/// Which version to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionRef {
    /// The newest enabled version.
    Latest,
    /// A named version.
    Id(String),
}

/// A version's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Readable.
    Enabled,
    /// Kept but not readable; can be enabled again.
    Disabled,
    /// Its value is gone for good.
    Destroyed,
}

/// One version of a secret (no value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    /// The secret's name.
    pub secret: String,
    /// The version's id.
    pub id: String,
    /// Its state.
    pub state: VersionState,
    /// When it was created, where known.
    pub created_at: Option<DateTime<Utc>>,
}

/// A value read from a store, with the version it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRead {
    /// The version read (the resolved id when [`VersionRef::Latest`] was asked).
    pub version: String,
    /// The value.
    pub value: SecretValue,
}

/// A secret's metadata, for age audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// The secret's name.
    pub name: String,
    /// When the secret was created, where known.
    pub created_at: Option<DateTime<Utc>>,
    /// When its newest version was created (or its value last changed), where known.
    pub updated_at: Option<DateTime<Utc>>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What a secret store can do; runbooks and the testkit choose by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretCapabilities {
    /// Values can be read back (false for GitHub Actions secrets).
    pub read: bool,
    /// Versions can be added.
    pub write: bool,
    /// Versions can be enabled and disabled.
    pub enable_disable: bool,
    /// Versions can be destroyed.
    pub destroy: bool,
    /// Earlier versions are kept. Stores without versions (Vercel environment variables,
    /// GitHub Actions secrets) list only the current value, as one version, and a write
    /// replaces it.
    pub history: bool,
}

/// Versioned secrets. Calls a store cannot do fail with [`crate::ErrorKind::Unsupported`].
///
/// Each method's `# Behavior` names the cases of the testkit's secret store suite
/// (`testkit::secret_store_cases`) that check it. No error of any method carries a value.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The store's name, for reports.
    fn name(&self) -> &str;
    /// What this store supports.
    fn capabilities(&self) -> SecretCapabilities;
    /// All secrets with their metadata.
    ///
    /// # Behavior
    /// Lists every existing secret (`existing_secrets_list_and_read_back`).
    async fn list_secrets(&self) -> Result<Vec<SecretInfo>>;
    /// Reads a version's value; `NotFound` for a missing secret or version, and for a
    /// disabled or destroyed version asked by id.
    ///
    /// # Behavior
    /// - Returns the stored value and the version it resolved; that version asked by id gives
    ///   the same value; a missing version is `NotFound`; without
    ///   [`SecretCapabilities::read`], `Unsupported` (`existing_secrets_list_and_read_back`).
    /// - A missing secret is `NotFound`, and the error shows no value
    ///   (`a_missing_secret_is_not_found_and_no_value_leaks`).
    /// - `Latest` skips disabled versions; a disabled or destroyed version asked by id is
    ///   `NotFound` (`versions_are_added_listed_disabled_and_destroyed`).
    async fn read(&self, secret: &str, version: &VersionRef) -> Result<SecretRead>;
    /// Adds a new, enabled version (creating the secret where the store needs that).
    ///
    /// # Behavior
    /// A new version is enabled, with an id of its own, and is the latest
    /// (`versions_are_added_listed_disabled_and_destroyed`). `Unsupported` unless
    /// [`SecretCapabilities::write`] (the default body; `undeclared_capabilities_are_unsupported`).
    async fn add_version(&self, secret: &str, value: &SecretValue) -> Result<SecretVersion> {
        let _ = (secret, value);
        Err(super::common::unsupported_by(
            self.name(),
            "add_version",
            "writing secrets",
        ))
    }
    /// All versions, newest first.
    ///
    /// # Behavior
    /// Newest first, each naming its secret; without [`SecretCapabilities::history`] only the
    /// current value, as one version (`existing_secrets_list_and_read_back`,
    /// `versions_are_added_listed_disabled_and_destroyed`).
    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>>;
    /// Enables a disabled version.
    ///
    /// # Behavior
    /// The version reads again (`versions_are_added_listed_disabled_and_destroyed`).
    /// `Unsupported` unless [`SecretCapabilities::enable_disable`] (the default body;
    /// `undeclared_capabilities_are_unsupported`).
    async fn enable_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        let _ = (secret, version);
        Err(super::common::unsupported_by(
            self.name(),
            "enable_version",
            "enabling versions",
        ))
    }
    /// Disables a version (reads fail until it is enabled again).
    ///
    /// # Behavior
    /// The version no longer reads, by id or as the latest
    /// (`versions_are_added_listed_disabled_and_destroyed`). `Unsupported` unless
    /// [`SecretCapabilities::enable_disable`] (the default body;
    /// `undeclared_capabilities_are_unsupported`).
    async fn disable_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        let _ = (secret, version);
        Err(super::common::unsupported_by(
            self.name(),
            "disable_version",
            "disabling versions",
        ))
    }
    /// Destroys a version's value for good.
    ///
    /// # Behavior
    /// The value is gone: reading it is `NotFound`
    /// (`versions_are_added_listed_disabled_and_destroyed`). `Unsupported` unless
    /// [`SecretCapabilities::destroy`] (the default body; `undeclared_capabilities_are_unsupported`).
    async fn destroy_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        let _ = (secret, version);
        Err(super::common::unsupported_by(
            self.name(),
            "destroy_version",
            "destroying versions",
        ))
    }
}
