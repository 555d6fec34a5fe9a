//! Project environment variables behind [`SecretStore`].
//!
//! Vercel keeps no versions: a variable has one value per target. Here a secret is a variable
//! (its key) for the store's targets; its one version is named by its last change time (ms),
//! `add_version` replaces the value (`upsert`), and earlier values are gone
//! ([`SecretCapabilities::history`] is false; enable / disable / destroy are `Unsupported`).
//! Rotation therefore is: new value, redeploy (a deployment reads variables at build time),
//! verify — which is what the rotation runbook does with a `VercelDeployer` consumer.
//! `sensitive` variables cannot be read back (Vercel never decrypts them).

use async_trait::async_trait;
use ops_core::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion,
    VersionRef, VersionState,
};
use ops_core::http::SendOptions;
use ops_core::http::pages::collect_pages;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::client::VercelClient;
use crate::model::{EnvPage, EnvVar};

/// The most environment variables one listing reads (Vercel allows far fewer per project).
const MAX_ENV: usize = 10_000;

/// The environment variables of one project, for some targets.
#[derive(Debug, Clone)]
pub struct VercelEnv {
    client: VercelClient,
    project: String,
    targets: Vec<String>,
    name: String,
}

/// The upsert body; `Debug` never shows the value.
struct Upsert<'a> {
    key: &'a str,
    value: &'a SecretValue,
    targets: &'a [String],
}

impl Serialize for Upsert<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            key: &'a str,
            value: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            target: &'a [String],
        }
        let value = self.value.expose_str().map_err(serde::ser::Error::custom)?;
        Body {
            key: self.key,
            value,
            kind: "encrypted",
            target: self.targets,
        }
        .serialize(s)
    }
}

impl VercelEnv {
    /// Variables of `project` that apply to `targets` (`production`, `preview`, `development`).
    pub fn new(client: VercelClient, project: impl Into<String>, targets: &[&str]) -> Result<Self> {
        let project = project.into();
        ops_core::contracts::validate_name("vercel", "env", "project", &project)?;
        if targets.is_empty()
            || targets
                .iter()
                .any(|t| !["production", "preview", "development"].contains(t))
        {
            return Err(Error::invalid_input(
                "vercel",
                "env",
                "targets",
                "one or more of production, preview, development",
            ));
        }
        Ok(Self {
            name: format!("vercel-env:{project}"),
            client,
            project,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        })
    }

    async fn all(&self) -> Result<Vec<EnvVar>> {
        // Pages are followed through `pagination.next` (Vercel's `until` cursor).
        let all = collect_pages(
            "vercel",
            "list_env",
            MAX_ENV,
            |until: Option<i64>| async move {
                let mut url = self
                    .client
                    .url(&format!("v10/projects/{}/env", self.project))?;
                if let Some(u) = until {
                    url.query_pairs_mut().append_pair("until", &u.to_string());
                }
                let page: EnvPage = self.client.get("list_env", url, &self.project).await?;
                Ok((page.envs, page.pagination.and_then(|p| p.next)))
            },
        )
        .await?
        .items;
        Ok(all
            .into_iter()
            .filter(|e| self.targets.iter().all(|t| e.target.contains(t)))
            .collect())
    }

    async fn find(&self, key: &str) -> Result<EnvVar> {
        self.all()
            .await?
            .into_iter()
            .find(|e| e.key == key)
            .ok_or_else(|| {
                Error::new(
                    "vercel",
                    "env",
                    ErrorKind::NotFound {
                        resource: format!(
                            "{key} for {} in {}",
                            self.targets.join("+"),
                            self.project
                        ),
                    },
                )
            })
    }

    /// Removes the variable `key` for these targets.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let env = self.find(key).await?;
        let url = self
            .client
            .url(&format!("v9/projects/{}/env/{}", self.project, env.id))?;
        let options = SendOptions {
            resource: Some(key.to_string()),
            ..SendOptions::default()
        };
        self.client
            .call::<(), serde_json::Value>("delete_env", Method::DELETE, url, None, &options)
            .await?;
        Ok(())
    }
}

fn version_of(env: &EnvVar) -> String {
    env.updated_at.or(env.created_at).unwrap_or(0).to_string()
}

fn version(secret: &str, env: &EnvVar) -> SecretVersion {
    SecretVersion {
        secret: secret.to_string(),
        id: version_of(env),
        state: VersionState::Enabled,
        created_at: env
            .updated_at
            .or(env.created_at)
            .and_then(chrono::DateTime::from_timestamp_millis),
    }
}

#[async_trait]
impl SecretStore for VercelEnv {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SecretCapabilities {
        SecretCapabilities {
            read: true,
            write: true,
            enable_disable: false,
            destroy: false,
            history: false,
        }
    }

    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        Ok(self
            .all()
            .await?
            .into_iter()
            .map(|e| SecretInfo {
                name: e.key.clone(),
                created_at: e
                    .created_at
                    .and_then(chrono::DateTime::from_timestamp_millis),
                updated_at: e
                    .updated_at
                    .and_then(chrono::DateTime::from_timestamp_millis),
                labels: [
                    ("type".to_string(), e.kind.clone()),
                    ("target".to_string(), e.target.join(",")),
                ]
                .into(),
            })
            .collect())
    }

    async fn read(&self, secret: &str, v: &VersionRef) -> Result<SecretRead> {
        let env = self.find(secret).await?;
        if let VersionRef::Id(id) = v
            && *id != version_of(&env)
        {
            return Err(Error::new(
                "vercel",
                "read_env",
                ErrorKind::NotFound {
                    resource: format!(
                        "version {id} of {secret} (Vercel keeps only the current value)"
                    ),
                },
            ));
        }
        if env.kind == "sensitive" {
            return Err(Error::unsupported(
                "vercel",
                "read_env",
                "reading a sensitive environment variable",
            ));
        }
        let url = self
            .client
            .url(&format!("v1/projects/{}/env/{}", self.project, env.id))?;
        let full: EnvVar = self.client.get("read_env", url, secret).await?;
        // The SDK's reply type has a shape without `value`: a variable Vercel will not reveal.
        let value = full.value.as_ref().ok_or_else(|| {
            Error::unsupported(
                "vercel",
                "read_env",
                "reading an environment variable whose value Vercel does not return",
            )
        })?;
        Ok(SecretRead {
            version: version_of(&full),
            value: SecretValue::from(value.expose_secret()),
        })
    }

    async fn add_version(&self, secret: &str, value: &SecretValue) -> Result<SecretVersion> {
        ops_core::contracts::validate_name("vercel", "env", "key", secret)?;
        let mut url = self
            .client
            .url(&format!("v10/projects/{}/env", self.project))?;
        url.query_pairs_mut().append_pair("upsert", "true");
        let body = Upsert {
            key: secret,
            value,
            targets: &self.targets,
        };
        // An upsert of the same value is harmless to repeat.
        let options = SendOptions {
            idempotency: Some(ops_core::retry::Idempotency::Idempotent),
            resource: Some(secret.to_string()),
            ..SendOptions::default()
        };
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(default)]
            failed: Vec<serde_json::Value>,
        }
        let created: Created = self
            .client
            .call("upsert_env", Method::POST, url, Some(&body), &options)
            .await?;
        if let Some(f) = created.failed.first() {
            let code = f
                .pointer("/error/code")
                .and_then(|c| c.as_str())
                .unwrap_or("failed");
            return Err(Error::new(
                "vercel",
                "upsert_env",
                ErrorKind::Provider {
                    status: 200,
                    code: Some(code.to_string()),
                    body_excerpt: ops_core::redact::redact_text(
                        f.pointer("/error/message")
                            .and_then(|m| m.as_str())
                            .unwrap_or(""),
                    ),
                },
            ));
        }
        Ok(version(secret, &self.find(secret).await?))
    }

    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        Ok(vec![version(secret, &self.find(secret).await?)])
    }

    async fn enable_version(&self, _: &str, _: &str) -> Result<SecretVersion> {
        Err(Error::unsupported(
            "vercel",
            "enable_version",
            "versions of environment variables",
        ))
    }

    async fn disable_version(&self, _: &str, _: &str) -> Result<SecretVersion> {
        Err(Error::unsupported(
            "vercel",
            "disable_version",
            "versions of environment variables",
        ))
    }

    async fn destroy_version(&self, _: &str, _: &str) -> Result<SecretVersion> {
        Err(Error::unsupported(
            "vercel",
            "destroy_version",
            "versions of environment variables (use VercelEnv::delete)",
        ))
    }
}
