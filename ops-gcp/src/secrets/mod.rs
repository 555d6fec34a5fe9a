//! Secret Manager v1 behind [`SecretStore`].
//!
//! | runbook step | call |
//! |---|---|
//! | `gcloud secrets versions access latest --secret=S` | [`SecretStore::read`] |
//! | `gcloud secrets versions add S --data-file=-` | [`SecretStore::add_version`] |
//! | `gcloud secrets versions list S` | [`SecretStore::list_versions`] |
//! | `gcloud secrets versions disable / enable / destroy V --secret=S` | `disable_version`, … |
//! | `gcloud secrets list` (for the age audit) | [`SecretStore::list_secrets`] |
//!
//! Payloads carry `dataCrc32c` both ways: what is written is checked by the server, what is
//! read is checked here, so a corrupted value is an error, never a secret. Values live in
//! [`SecretValue`] and in request types whose `Debug` is redacted; no log line, error or
//! `Debug` output of this module shows one.
//!
//! Adding a version to a secret that does not exist creates the secret first (automatic
//! replication, label `managed-by=ops`), as a rotation of a new secret expects.
//! `list_secrets` reports as `updated_at` the creation time of each secret's newest enabled
//! version (one extra call per secret, four at a time), which is what the age audit needs.

mod wire;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use ops_core::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion, VersionRef,
};
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use url::Url;

use crate::client::{GcpClient, collect_pages};
use wire::{
    AccessResponse, AddVersionBody, EtagBody, RawSecret, RawVersion, SecretPage, VersionPage,
};

/// The most secrets or versions one listing reads.
const LIST_CAP: usize = 10_000;

/// Secret Manager in one project.
#[derive(Debug, Clone)]
pub struct SecretManager {
    client: GcpClient,
    name: String,
}

impl SecretManager {
    /// The secrets of the client's project.
    pub fn new(client: GcpClient) -> Self {
        let name = format!("secret-manager:{}", client.config().project);
        Self { client, name }
    }

    fn url(&self, path: &str) -> Result<Url> {
        let root = self
            .client
            .url(&self.client.config().endpoints.secret_manager, "v1/")?;
        self.client.url(&root, path)
    }

    fn secret_name(&self, secret: &str) -> Result<String> {
        ops_core::contracts::validate_name("gcp", "secret_manager", "secret", secret)?;
        if !secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid_input(
                "gcp",
                "secret_manager",
                "secret",
                "only letters, digits, '-' and '_' are allowed",
            ));
        }
        Ok(format!(
            "projects/{}/secrets/{secret}",
            self.client.config().project
        ))
    }

    fn version_name(&self, secret: &str, version: &str) -> Result<String> {
        let valid = version == "latest"
            || (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit()));
        if !valid {
            return Err(Error::new(
                "gcp",
                "secret_manager",
                ErrorKind::NotFound {
                    resource: format!("version {version:?} of {secret} (versions are numbers)"),
                },
            ));
        }
        Ok(format!("{}/versions/{version}", self.secret_name(secret)?))
    }

    fn options(resource: &str) -> SendOptions {
        SendOptions {
            resource: Some(resource.to_string()),
            ..SendOptions::default()
        }
    }

    /// The secret's metadata (creation time, labels, etag).
    pub async fn secret(&self, secret: &str) -> Result<SecretInfo> {
        let name = self.secret_name(secret)?;
        let raw: RawSecret = self
            .client
            .get("get_secret", self.url(&name)?, &name)
            .await?;
        Ok(raw.info(None))
    }

    async fn create_secret(&self, secret: &str) -> Result<()> {
        let parent = format!("projects/{}", self.client.config().project);
        let mut url = self.url(&format!("{parent}/secrets"))?;
        url.query_pairs_mut().append_pair("secretId", secret);
        let body = serde_json::json!({
            "replication": {"automatic": {}},
            "labels": {"managed-by": "ops"},
        });
        let created: Result<serde_json::Value> = self
            .client
            .call(
                "create_secret",
                Method::POST,
                url,
                Some(&body),
                &Self::options(secret),
            )
            .await;
        match created {
            // Someone else created it meanwhile: just as good.
            Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists { .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    async fn version_etag(&self, name: &str) -> Result<Option<String>> {
        let raw: RawVersion = self
            .client
            .get("get_secret_version", self.url(name)?, name)
            .await?;
        Ok(raw.etag)
    }

    async fn change_state(
        &self,
        secret: &str,
        version: &str,
        verb: &'static str,
    ) -> Result<SecretVersion> {
        let name = self.version_name(secret, version)?;
        let etag = self.version_etag(&name).await?;
        let url = self.url(&format!("{name}:{verb}"))?;
        let operation = match verb {
            "enable" => "enable_secret_version",
            "disable" => "disable_secret_version",
            _ => "destroy_secret_version",
        };
        let raw: RawVersion = self
            .client
            .call(
                operation,
                Method::POST,
                url,
                Some(&EtagBody { etag }),
                &Self::options(&name),
            )
            .await?;
        raw.version(secret)
    }

    /// The newest enabled version (Secret Manager lists newest first).
    async fn newest_enabled_version(&self, secret: &str) -> Result<Option<RawVersion>> {
        let name = self.secret_name(secret)?;
        let mut url = self.url(&format!("{name}/versions"))?;
        url.query_pairs_mut()
            .append_pair("pageSize", "1")
            .append_pair("filter", "state:ENABLED");
        let page: VersionPage = self.client.get("list_secret_versions", url, &name).await?;
        Ok(page.versions.into_iter().next())
    }

    async fn newest_enabled(&self, secret: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self
            .newest_enabled_version(secret)
            .await?
            .and_then(|v| v.create_time))
    }

    async fn newest_enabled_id(&self, secret: &str) -> Result<Option<String>> {
        Ok(self
            .newest_enabled_version(secret)
            .await?
            .map(|v| v.version(secret))
            .transpose()?
            .map(|v| v.id))
    }

    async fn access(&self, secret: &str, id: &str) -> Result<SecretRead> {
        let name = self.version_name(secret, id)?;
        let url = self.url(&format!("{name}:access"))?;
        let resp: AccessResponse = self.client.get("access_secret_version", url, &name).await?;
        let (version, value) = resp.into_value(secret)?;
        Ok(SecretRead { version, value })
    }
}

/// Google answers an access to a disabled or destroyed version with `FAILED_PRECONDITION`.
fn is_not_enabled(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Conflict { detail } if detail.contains("DISABLED") || detail.contains("DESTROYED"))
}

#[async_trait]
impl SecretStore for SecretManager {
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
        let parent = format!("projects/{}", self.client.config().project);
        let raw = collect_pages(LIST_CAP, |token| {
            let parent = parent.clone();
            async move {
                let mut url = self.url(&format!("{parent}/secrets"))?;
                url.query_pairs_mut().append_pair("pageSize", "250");
                if let Some(t) = &token {
                    url.query_pairs_mut().append_pair("pageToken", t);
                }
                let page: SecretPage = self.client.get("list_secrets", url, &parent).await?;
                Ok((page.secrets, page.next_page_token))
            }
        })
        .await?;
        futures_util::stream::iter(raw)
            .map(|s| async move {
                let short = s.short_name().to_string();
                let updated = self.newest_enabled(&short).await?;
                Ok::<_, Error>(s.info(updated))
            })
            .buffered(4)
            .try_collect()
            .await
    }

    async fn read(&self, secret: &str, version: &VersionRef) -> Result<SecretRead> {
        let id = match version {
            VersionRef::Latest => "latest",
            VersionRef::Id(id) => id.as_str(),
        };
        match self.access(secret, id).await {
            // Google's `latest` is the newest version even when disabled; the contract's
            // latest is the newest one that can be read.
            Err(e) if is_not_enabled(&e) && *version == VersionRef::Latest => {
                let newest = self.newest_enabled_id(secret).await?.ok_or_else(|| {
                    Error::new(
                        "gcp",
                        "access_secret_version",
                        ErrorKind::NotFound {
                            resource: format!("an enabled version of {secret}"),
                        },
                    )
                })?;
                self.access(secret, &newest).await
            }
            Err(e) if is_not_enabled(&e) => Err(Error::new(
                "gcp",
                "access_secret_version",
                ErrorKind::NotFound {
                    resource: format!("version {id} of {secret} (not enabled)"),
                },
            )),
            other => other,
        }
    }

    async fn add_version(&self, secret: &str, value: &SecretValue) -> Result<SecretVersion> {
        let name = self.secret_name(secret)?;
        let url = self.url(&format!("{name}:addVersion"))?;
        let body = AddVersionBody::new(value);
        let add = || async {
            self.client
                .call::<_, RawVersion>(
                    "add_secret_version",
                    Method::POST,
                    url.clone(),
                    Some(&body),
                    &Self::options(&name),
                )
                .await
        };
        let raw = match add().await {
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => {
                self.create_secret(secret).await?;
                add().await?
            }
            other => other?,
        };
        let version = raw.version(secret)?;
        tracing::info!(secret, version = %version.id, "added a secret version");
        Ok(version)
    }

    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        let name = self.secret_name(secret)?;
        let raw = collect_pages(LIST_CAP, |token| {
            let name = name.clone();
            async move {
                let mut url = self.url(&format!("{name}/versions"))?;
                url.query_pairs_mut().append_pair("pageSize", "250");
                if let Some(t) = &token {
                    url.query_pairs_mut().append_pair("pageToken", t);
                }
                let page: VersionPage = self.client.get("list_secret_versions", url, &name).await?;
                Ok((page.versions, page.next_page_token))
            }
        })
        .await?;
        let mut versions: Vec<SecretVersion> = raw
            .into_iter()
            .map(|v| v.version(secret))
            .collect::<Result<_>>()?;
        // Newest first, whatever order the pages came in.
        versions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.parse::<u64>().ok().cmp(&a.id.parse::<u64>().ok()))
        });
        Ok(versions)
    }

    async fn enable_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        self.change_state(secret, version, "enable").await
    }

    async fn disable_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        self.change_state(secret, version, "disable").await
    }

    async fn destroy_version(&self, secret: &str, version: &str) -> Result<SecretVersion> {
        self.change_state(secret, version, "destroy").await
    }
}

/// Shared with the simulator: the same checksum encoding on both sides.
pub(crate) fn crc32c_decimal(bytes: &[u8]) -> String {
    crc32c::crc32c(bytes).to_string()
}
