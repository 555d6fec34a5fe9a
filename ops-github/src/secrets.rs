//! GitHub Actions secrets behind [`SecretStore`], at repository, environment or organisation
//! scope.
//!
//! A value is sealed on this side with the scope's public key (a libsodium sealed box:
//! X25519 + XSalsa20-Poly1305, through RustCrypto's `crypto_box`) and sent with the key's id;
//! GitHub never returns it, so [`SecretStore::read`] is `Unsupported`. There are no versions:
//! a secret's one version is named by its `updated_at`, and a write replaces the value
//! ([`SecretCapabilities::history`] is false). Use [`ActionsSecrets::delete`] to remove one.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use ops_core::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion,
    VersionRef, VersionState,
};
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{GithubClient, Repo, resource_options, segment};

/// GitHub's limit on a secret's size.
pub const MAX_SECRET_BYTES: usize = 48 * 1024;

/// The most secrets listed.
const MAX_SECRETS: usize = 1000;

/// Which repositories may use an organisation secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgVisibility {
    /// Every repository of the organisation.
    All,
    /// Private and internal repositories.
    Private,
    /// Only these repository ids.
    Selected(Vec<u64>),
}

/// Where the secrets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretScope {
    /// A repository's secrets.
    Repository(Repo),
    /// A deployment environment's secrets.
    Environment {
        /// The repository.
        repo: Repo,
        /// The environment's name.
        environment: String,
    },
    /// An organisation's secrets, written with this visibility.
    Organization {
        /// The organisation's login.
        org: String,
        /// Who may use secrets written through this store.
        visibility: OrgVisibility,
    },
}

impl SecretScope {
    /// The API path of the scope's secrets.
    fn base(&self) -> String {
        match self {
            SecretScope::Repository(r) => r.path("actions/secrets"),
            SecretScope::Environment { repo, environment } => {
                repo.path(&format!("environments/{}/secrets", segment(environment)))
            }
            SecretScope::Organization { org, .. } => {
                format!("orgs/{}/actions/secrets", segment(org))
            }
        }
    }

    fn label(&self) -> String {
        match self {
            SecretScope::Repository(r) => format!("repo:{r}"),
            SecretScope::Environment { repo, environment } => format!("env:{repo}:{environment}"),
            SecretScope::Organization { org, .. } => format!("org:{org}"),
        }
    }
}

/// A scope's public key.
#[derive(Debug, Clone, Deserialize)]
pub struct PublicKey {
    /// The id sent with every value sealed to it.
    pub key_id: String,
    /// The X25519 key, base64.
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Meta {
    name: String,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct SecretsPage {
    secrets: Vec<Meta>,
}

#[derive(Serialize)]
struct Put<'a> {
    encrypted_value: String,
    key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_repository_ids: Option<&'a [u64]>,
}

/// Seals `value` to `public_key` (base64 X25519) as libsodium's `crypto_box_seal` does, and
/// returns the ciphertext in base64 (48 bytes longer than the value).
pub fn seal(public_key: &str, value: &[u8]) -> Result<String> {
    let invalid = |reason: &str| Error::invalid_input("github", "secrets", "public_key", reason);
    let raw = STANDARD
        .decode(public_key.trim())
        .map_err(|_| invalid("not base64"))?;
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| invalid("not a 32-byte X25519 key"))?;
    let key = crypto_box::PublicKey::from(bytes);
    let sealed = key
        .seal(&mut crypto_box::aead::OsRng, value)
        .map_err(|_| invalid("sealing failed"))?;
    Ok(STANDARD.encode(sealed))
}

/// Checks a secret name as GitHub does: letters, digits and `_`, not starting with a digit or
/// `GITHUB_`.
pub fn check_secret_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::invalid_input("github", "secrets", "name", reason);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad("only letters, digits and underscores"));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad("must not start with a digit"));
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(bad("must not start with GITHUB_"));
    }
    Ok(())
}

fn version_id(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "current".into())
}

fn unsupported(what: &str) -> Error {
    Error::new(
        "github",
        "secrets",
        ErrorKind::Unsupported {
            capability: what.to_string(),
        },
    )
}

/// The Actions secrets of one scope.
#[derive(Debug, Clone)]
pub struct ActionsSecrets {
    client: GithubClient,
    scope: SecretScope,
    name: String,
}

impl ActionsSecrets {
    /// The secrets of `scope`.
    pub fn new(client: GithubClient, scope: SecretScope) -> Result<Self> {
        if let SecretScope::Environment { environment, .. } = &scope
            && environment.trim().is_empty()
        {
            return Err(Error::invalid_input(
                "github",
                "secrets",
                "environment",
                "is empty",
            ));
        }
        if let SecretScope::Organization { org, .. } = &scope
            && (org.is_empty() || !org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(Error::invalid_input(
                "github",
                "secrets",
                "org",
                format!("{org:?} is not an organisation login"),
            ));
        }
        Ok(Self {
            name: format!("github-secrets:{}", scope.label()),
            client,
            scope,
        })
    }

    /// A repository's secrets (`owner/name`).
    pub fn repository(client: GithubClient, repo: &str) -> Result<Self> {
        Self::new(client, SecretScope::Repository(Repo::parse(repo)?))
    }

    /// The scope.
    pub fn scope(&self) -> &SecretScope {
        &self.scope
    }

    /// The scope's public key (revalidated with its ETag, so asking again is cheap).
    pub async fn public_key(&self) -> Result<PublicKey> {
        let url = self
            .client
            .url(&format!("{}/public-key", self.scope.base()), &[])?;
        self.client.get("get_public_key", url, "public key").await
    }

    async fn meta(&self, secret: &str) -> Result<Meta> {
        check_secret_name(secret)?;
        let url = self
            .client
            .url(&format!("{}/{}", self.scope.base(), segment(secret)), &[])?;
        self.client.get("get_secret", url, secret).await
    }

    async fn meta_if_exists(&self, secret: &str) -> Result<Option<Meta>> {
        match self.meta(secret).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put(&self, secret: &str, value: &SecretValue) -> Result<()> {
        let key = self.public_key().await?;
        let (visibility, selected) = match &self.scope {
            SecretScope::Organization { visibility, .. } => match visibility {
                OrgVisibility::All => (Some("all"), None),
                OrgVisibility::Private => (Some("private"), None),
                OrgVisibility::Selected(ids) => (Some("selected"), Some(ids.as_slice())),
            },
            _ => (None, None),
        };
        let body = Put {
            encrypted_value: seal(&key.key, value.expose_bytes())?,
            key_id: &key.key_id,
            visibility,
            selected_repository_ids: selected,
        };
        let url = self
            .client
            .url(&format!("{}/{}", self.scope.base(), segment(secret)), &[])?;
        self.client
            .send(
                "put_secret",
                Method::PUT,
                url,
                Some(&body),
                &resource_options(secret),
            )
            .await?;
        Ok(())
    }

    /// Deletes `secret`; `NotFound` when it does not exist.
    pub async fn delete(&self, secret: &str) -> Result<()> {
        check_secret_name(secret)?;
        let url = self
            .client
            .url(&format!("{}/{}", self.scope.base(), segment(secret)), &[])?;
        self.client
            .send::<()>(
                "delete_secret",
                Method::DELETE,
                url,
                None,
                &SendOptions {
                    resource: Some(secret.to_string()),
                    ..SendOptions::default()
                },
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SecretStore for ActionsSecrets {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SecretCapabilities {
        SecretCapabilities {
            read: false,
            write: true,
            enable_disable: false,
            destroy: false,
            history: false,
        }
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        let url = self
            .client
            .url(&self.scope.base(), &[("per_page", "100")])?;
        let page = self
            .client
            .get_pages("list_secrets", url, MAX_SECRETS, |p: SecretsPage| p.secrets)
            .await?;
        Ok(page
            .items
            .into_iter()
            .map(|m| {
                let mut labels =
                    std::collections::BTreeMap::from([("scope".to_string(), self.scope.label())]);
                if let Some(v) = m.visibility {
                    labels.insert("visibility".into(), v);
                }
                SecretInfo {
                    name: m.name,
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                    labels,
                }
            })
            .collect())
    }

    async fn read(&self, _secret: &str, _version: &VersionRef) -> Result<SecretRead> {
        Err(unsupported(
            "reading an Actions secret (GitHub never returns values)",
        ))
    }

    /// Seals and writes the value. GitHub stamps `updated_at` to the second; when a write lands
    /// in the same second as the one before it, the same value is written again a second later
    /// (a `PUT`, so nothing else changes) so that every write has its own version id.
    async fn add_version(&self, secret: &str, value: &SecretValue) -> Result<SecretVersion> {
        check_secret_name(secret)?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(Error::invalid_input(
                "github",
                "secrets",
                "value",
                format!(
                    "{} bytes; GitHub's limit is {MAX_SECRET_BYTES}",
                    value.len()
                ),
            ));
        }
        let before = self
            .meta_if_exists(secret)
            .await?
            .and_then(|m| m.updated_at);
        self.put(secret, value).await?;
        let mut after = self.meta(secret).await?;
        if before.is_some() && after.updated_at == before {
            self.client.clock().sleep(Duration::from_secs(1)).await;
            self.put(secret, value).await?;
            after = self.meta(secret).await?;
        }
        Ok(SecretVersion {
            secret: secret.to_string(),
            id: version_id(after.updated_at),
            state: VersionState::Enabled,
            created_at: after.updated_at,
        })
    }

    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        let m = self.meta(secret).await?;
        Ok(vec![SecretVersion {
            secret: m.name,
            id: version_id(m.updated_at),
            state: VersionState::Enabled,
            created_at: m.updated_at,
        }])
    }

    async fn enable_version(&self, _: &str, _: &str) -> Result<SecretVersion> {
        Err(unsupported("Actions secrets have no versions to enable"))
    }

    async fn disable_version(&self, _: &str, _: &str) -> Result<SecretVersion> {
        Err(unsupported("Actions secrets have no versions to disable"))
    }

    async fn destroy_version(&self, _: &str, _: &str) -> Result<SecretVersion> {
        Err(unsupported(
            "Actions secrets have no versions to destroy (use ActionsSecrets::delete)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_github_does() {
        for ok in ["DEPLOY_TOKEN", "db_password", "_X1"] {
            check_secret_name(ok).unwrap();
        }
        for bad in [
            "",
            "1TOKEN",
            "GITHUB_TOKEN",
            "github_x",
            "MY-TOKEN",
            "A B",
            "É",
        ] {
            assert!(check_secret_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sealed_boxes_open_with_the_private_key() {
        let secret = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let public = STANDARD.encode(secret.public_key().as_bytes());
        let sealed = STANDARD
            .decode(seal(&public, b"hunter2-value").unwrap())
            .unwrap();
        assert_eq!(sealed.len(), b"hunter2-value".len() + 48);
        assert_eq!(secret.unseal(&sealed).unwrap(), b"hunter2-value");
        assert_ne!(
            seal(&public, b"v").unwrap(),
            seal(&public, b"v").unwrap(),
            "every seal uses a fresh ephemeral key"
        );
        assert!(seal("not base64!", b"v").is_err());
        assert!(seal(&STANDARD.encode([1u8; 31]), b"v").is_err());
    }
}
