//! [`MemorySecretStore`]: versioned secrets in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::clock::{SharedClock, system_clock};
use crate::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion,
    VersionRef, VersionState, validate_name,
};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "memory-secrets";

struct Entry {
    created_at: DateTime<Utc>,
    /// Oldest first; the value is dropped when a version is destroyed.
    versions: Vec<(SecretVersion, Option<SecretValue>)>,
}

/// Versioned secrets in memory with Secret Manager's model: versions `1`, `2`, …; `Latest` is
/// the newest enabled one; disabled versions cannot be read; destroyed ones lose their value
/// for good. For tests and rehearsals. `Debug` never shows values.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::memory::MemorySecretStore;
/// use ops_core::contracts::{SecretStore, VersionRef};
/// let s = MemorySecretStore::new("secrets");
/// s.add_version("db-password", &"one".into()).await?;
/// let v2 = s.add_version("db-password", &"two".into()).await?;
/// s.disable_version("db-password", &v2.id).await?;
/// assert_eq!(s.read("db-password", &VersionRef::Latest).await?.value.expose_str()?, "one");
/// # Ok(()) }
/// ```
pub struct MemorySecretStore {
    name: String,
    clock: SharedClock,
    secrets: Mutex<BTreeMap<String, Entry>>,
}

impl fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySecretStore")
            .field("name", &self.name)
            .field("secrets", &lock(&self.secrets).len())
            .finish()
    }
}

impl MemorySecretStore {
    /// An empty store.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            clock: system_clock(),
            secrets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Uses `clock` for creation times.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn not_found(op: &'static str, what: String) -> Error {
        Error::new(PROVIDER, op, ErrorKind::NotFound { resource: what })
    }

    fn set_state(
        &self,
        op: &'static str,
        secret: &str,
        version: &str,
        state: VersionState,
    ) -> Result<SecretVersion> {
        let mut secrets = lock(&self.secrets);
        let entry = secrets
            .get_mut(secret)
            .ok_or_else(|| Self::not_found(op, secret.to_string()))?;
        let (v, value) = entry
            .versions
            .iter_mut()
            .find(|(v, _)| v.id == version)
            .ok_or_else(|| Self::not_found(op, format!("{secret} version {version}")))?;
        if v.state == VersionState::Destroyed && state != VersionState::Destroyed {
            return Err(Error::new(
                PROVIDER,
                op,
                ErrorKind::Conflict {
                    detail: format!("{secret} version {version} is destroyed"),
                },
            ));
        }
        v.state = state;
        if state == VersionState::Destroyed {
            *value = None;
        }
        Ok(v.clone())
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SecretCapabilities {
        SecretCapabilities {
            read: true,
            write: true,
            enable_disable: true,
            destroy: true,
            history: true,
        }
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        Ok(lock(&self.secrets)
            .iter()
            .map(|(name, e)| SecretInfo {
                name: name.clone(),
                created_at: Some(e.created_at),
                updated_at: e.versions.last().and_then(|(v, _)| v.created_at),
                labels: BTreeMap::new(),
            })
            .collect())
    }

    async fn read(&self, secret: &str, version: &VersionRef) -> Result<SecretRead> {
        validate_name(PROVIDER, "read", "secret", secret)?;
        let secrets = lock(&self.secrets);
        let entry = secrets
            .get(secret)
            .ok_or_else(|| Self::not_found("read", secret.to_string()))?;
        let found = match version {
            VersionRef::Latest => entry
                .versions
                .iter()
                .rev()
                .find(|(v, _)| v.state == VersionState::Enabled),
            VersionRef::Id(id) => entry
                .versions
                .iter()
                .find(|(v, _)| &v.id == id && v.state == VersionState::Enabled),
        };
        match found {
            Some((v, Some(value))) => Ok(SecretRead {
                version: v.id.clone(),
                value: value.clone(),
            }),
            _ => Err(Self::not_found(
                "read",
                format!("{secret} version {version:?} (enabled)"),
            )),
        }
    }

    async fn add_version(&self, secret: &str, value: &SecretValue) -> Result<SecretVersion> {
        validate_name(PROVIDER, "add_version", "secret", secret)?;
        let now = self.clock.now();
        let mut secrets = lock(&self.secrets);
        let entry = secrets.entry(secret.to_string()).or_insert_with(|| Entry {
            created_at: now,
            versions: Vec::new(),
        });
        let v = SecretVersion {
            secret: secret.to_string(),
            id: (entry.versions.len() + 1).to_string(),
            state: VersionState::Enabled,
            created_at: Some(now),
        };
        entry.versions.push((v.clone(), Some(value.clone())));
        Ok(v)
    }

    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        let secrets = lock(&self.secrets);
        let entry = secrets
            .get(secret)
            .ok_or_else(|| Self::not_found("list_versions", secret.to_string()))?;
        Ok(entry
            .versions
            .iter()
            .rev()
            .map(|(v, _)| v.clone())
            .collect())
    }

    async fn enable_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        self.set_state("enable_version", secret, version, VersionState::Enabled)
    }

    async fn disable_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        self.set_state("disable_version", secret, version, VersionState::Disabled)
    }

    async fn destroy_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        self.set_state("destroy_version", secret, version, VersionState::Destroyed)
    }
}
