//! [`EnvSecretStore`]: secrets from environment variables (read-only).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use super::read_only_secrets::{CAPABILITIES, CURRENT, check_version, current_version};
use crate::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion,
    VersionRef, validate_name,
};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "env-secrets";

/// Secrets from environment variables named `PREFIX` + secret name, read once when the store is
/// built (the environment of a running process does not change under it). Each secret has one
/// version, `current`; writes are `Unsupported`. `Debug` shows the prefix and count, never
/// values.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::adapters::EnvSecretStore;
/// use ops_core::contracts::{SecretStore, VersionRef};
/// let store = EnvSecretStore::from_vars("APP_", [("APP_DB_PASSWORD", b"s3cret".to_vec())]);
/// let read = store.read("DB_PASSWORD", &VersionRef::Latest).await?;
/// assert_eq!(read.value.expose_str()?, "s3cret");
/// # Ok(()) }
/// ```
pub struct EnvSecretStore {
    prefix: String,
    name: String,
    vars: BTreeMap<String, SecretValue>,
}

impl EnvSecretStore {
    /// Snapshots this process's variables that start with `prefix`.
    pub fn from_process(prefix: impl Into<String>) -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_encoded_bytes())));
        Self::from_vars(prefix, vars)
    }

    /// A store over the given variables (those starting with `prefix`).
    pub fn from_vars<K: Into<String>>(
        prefix: impl Into<String>,
        vars: impl IntoIterator<Item = (K, Vec<u8>)>,
    ) -> Self {
        let prefix = prefix.into();
        let vars = vars
            .into_iter()
            .filter_map(|(k, v)| {
                let k: String = k.into();
                let name = k.strip_prefix(prefix.as_str())?.to_string();
                (!name.is_empty()).then(|| (name, SecretValue::from_bytes(v)))
            })
            .collect();
        Self {
            name: format!("env:{prefix}*"),
            prefix,
            vars,
        }
    }
}

impl fmt::Debug for EnvSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSecretStore")
            .field("prefix", &self.prefix)
            .field("secrets", &self.vars.len())
            .finish()
    }
}

#[async_trait]
impl SecretStore for EnvSecretStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SecretCapabilities {
        CAPABILITIES
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        Ok(self
            .vars
            .keys()
            .map(|name| SecretInfo {
                name: name.clone(),
                created_at: None,
                updated_at: None,
                labels: BTreeMap::new(),
            })
            .collect())
    }

    async fn read(&self, secret: &str, version: &VersionRef) -> Result<SecretRead> {
        validate_name(PROVIDER, "read", "secret", secret)?;
        let value = self.vars.get(secret).ok_or_else(|| {
            Error::new(
                PROVIDER,
                "read",
                ErrorKind::NotFound {
                    resource: format!("{}{secret}", self.prefix),
                },
            )
        })?;
        check_version(PROVIDER, secret, version)?;
        Ok(SecretRead {
            version: CURRENT.to_string(),
            value: value.clone(),
        })
    }

    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        if !self.vars.contains_key(secret) {
            return Err(Error::new(
                PROVIDER,
                "list_versions",
                ErrorKind::NotFound {
                    resource: secret.to_string(),
                },
            ));
        }
        Ok(vec![current_version(secret, None)])
    }
}
