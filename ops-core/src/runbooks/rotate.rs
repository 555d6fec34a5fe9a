//! Secret rotation and the secret age audit.
//!
//! Replaces the seeds' `openssl rand -base64 32 | gcloud secrets versions add NAME
//! --data-file=-`, a test of the new credential, `gcloud run deploy` / `vercel --prod` so the
//! consumers pick it up, a day's wait, `gcloud secrets versions disable NAME --version=OLD`,
//! and the quarterly "which secrets are older than 90 days?" review.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunbookConfig;
use super::common::failed;
use super::config::{human_duration, positive, positive_age};
use crate::contracts::{
    DeployRequest, Deployer, InitialTraffic, SecretStore, SecretValue, SecretVersion, VersionRef,
    VersionState,
};
use crate::engine::{Action, Output, RunReport, Runbook, Step};
use crate::{Error, Result};

/// Makes the new secret value (random bytes, a provider-issued key).
pub type GenerateSecret =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<SecretValue>> + Send>> + Send + Sync>;
/// Proves a value works (log in with it, call the API) before consumers get it.
pub type ValidateSecret =
    Arc<dyn Fn(SecretValue) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// Settings of a rotation.
///
/// ```toml
/// grace_period = "24h"   # consumers may still use the old value this long
/// destroy_old = false    # destroy (not only disable) the old version afterwards
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotateConfig {
    /// How long the old version stays enabled after the new one is added (default 24 h).
    #[serde(with = "human_duration")]
    pub grace_period: Duration,
    /// Destroy the old version instead of only disabling it (default false).
    pub destroy_old: bool,
}

impl Default for RotateConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(24 * 3600),
            destroy_old: false,
        }
    }
}

impl RunbookConfig for RotateConfig {
    /// The grace period must be positive (zero would retire the old value while consumers still
    /// use it) and at most 366 days.
    fn validate(&self) -> Result<()> {
        positive("grace_period", self.grace_period)
    }
}

/// The version a rotation added, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedVersion {
    /// The new version (no value).
    pub version: SecretVersion,
    /// When it was added.
    pub at: DateTime<Utc>,
}

/// Rotates one secret and the services that use it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use ops_core::memory::MemorySecretStore;
/// use ops_core::contracts::{SecretStore, SecretValue, VersionState};
/// use ops_core::engine::{Mode, Runner};
/// use ops_core::runbooks::{GenerateSecret, RotateConfig, RotateSecret, Procedure};
/// let store = Arc::new(MemorySecretStore::new("sm"));
/// store.add_version("api-key", &"old".into()).await?;
/// let generate: GenerateSecret = Arc::new(|| Box::pin(async { Ok(SecretValue::from("new-random-value")) }));
/// let report = RotateSecret::new(store.clone(), "api-key", generate, RotateConfig::default())
///     .run(&Runner::new(), Mode::Execute).await?; // waits the 24 h grace period
/// assert!(report.is_success());
/// assert_eq!(store.list_versions("api-key").await?[1].state, VersionState::Disabled);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RotateSecret {
    config: RotateConfig,
    store: Arc<dyn SecretStore>,
    secret: String,
    generate: GenerateSecret,
    validate: Option<ValidateSecret>,
    consumers: Vec<Arc<dyn Deployer>>,
}

impl RotateSecret {
    /// Rotates `secret` in `store` to values made by `generate`.
    pub fn new(
        store: Arc<dyn SecretStore>,
        secret: impl Into<String>,
        generate: GenerateSecret,
        config: RotateConfig,
    ) -> Self {
        Self {
            config,
            store,
            secret: secret.into(),
            generate,
            validate: None,
            consumers: Vec::new(),
        }
    }

    /// Checks the new value before any consumer gets it.
    pub fn validate(mut self, check: ValidateSecret) -> Self {
        self.validate = Some(check);
        self
    }

    /// A service to redeploy (same version) so it reads the new value.
    pub fn consumer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.consumers.push(deployer);
        self
    }

    fn build(&self) -> Result<Runbook> {
        /// The step adding the new version.
        const ADD_VERSION: &str = "add-version";
        self.config.validate()?;
        crate::contracts::validate_name("runbook", "rotate", "secret", &self.secret)?;
        let (store, secret) = (self.store.clone(), self.secret.clone());
        let mut rb = Runbook::new("rotate-secret", &self.secret)
            .with_category(crate::engine::Category::Maintenance);
        let current: Output<Option<String>> = rb.add_step(Step::read("current", move |_| {
            let (store, secret) = (store.clone(), secret.clone());
            Ok(Action::new(
                "SecretStore::list_versions",
                json!({ "secret": secret }),
                async move {
                    let versions = store.list_versions(&secret).await?;
                    Ok(versions
                        .into_iter()
                        .find(|v| v.state == VersionState::Enabled)
                        .map(|v| v.id))
                },
            ))
        }));
        // Named before the step exists: its own compensation reads it.
        let added: Output<AddedVersion> = Output::of(ADD_VERSION);
        let (store, store2, secret, secret2, generate) = (
            self.store.clone(),
            self.store.clone(),
            self.secret.clone(),
            self.secret.clone(),
            self.generate.clone(),
        );
        let added_here = added.clone();
        rb = rb.step(
            Step::mutate(ADD_VERSION, move |ctx| {
                let (store, secret, generate, at) = (
                    store.clone(),
                    secret.clone(),
                    generate.clone(),
                    ctx.clock().now(),
                );
                // The value is made and stored inside this step: it is never an output, so it
                // never reaches the journal or the report.
                Ok(Action::new(
                    "SecretStore::add_version",
                    json!({ "secret": secret, "value": "(generated)" }),
                    async move {
                        let value = generate().await?;
                        Ok(AddedVersion {
                            version: store.add_version(&secret, &value).await?,
                            at,
                        })
                    },
                ))
            })
            .compensate(move |ctx| {
                let added = ctx.get(&added_here)?;
                let (store, secret) = (store2.clone(), secret2.clone());
                Ok(Action::new(
                    "SecretStore::disable_version",
                    json!({ "secret": secret, "version": added.version.id }),
                    async move { store.disable_version(&secret, &added.version.id).await },
                ))
            }),
        );
        if let Some(check) = self.validate.clone() {
            let (store, secret, added) = (self.store.clone(), self.secret.clone(), added.clone());
            rb = rb.step(Step::read("validate", move |ctx| {
                let added = ctx.get(&added)?;
                let (store, secret, check) = (store.clone(), secret.clone(), check.clone());
                Ok(Action::new(
                    "validate new value",
                    json!({ "version": added.version.id }),
                    async move {
                        let read = store
                            .read(&secret, &VersionRef::Id(added.version.id.clone()))
                            .await?;
                        check(read.value)
                            .await
                            .map_err(|e| failed("new secret value", e.to_string()))?;
                        Ok(added.version.id)
                    },
                ))
            }));
        }
        for d in &self.consumers {
            let d = d.clone();
            rb = rb.step(
                Step::mutate(format!("roll-{}", d.target()), move |_| {
                    let d = d.clone();
                    Ok(Action::new(
                        "Deployer::deploy",
                        json!({ "target": d.target(), "version": "(the serving version)" }),
                        async move { redeploy_serving(d.as_ref()).await },
                    ))
                })
                .idempotent(),
            );
        }
        rb = rb.step(grace_step(self.config.grace_period, move |ctx| {
            Ok(ctx.get(&added)?.at)
        }));
        let (store, secret, destroy) = (
            self.store.clone(),
            self.secret.clone(),
            self.config.destroy_old,
        );
        rb = rb.step(
            Step::mutate("retire-old", move |ctx| {
                let old = ctx.get(&current)?;
                let (store, secret) = (store.clone(), secret.clone());
                let call = if destroy {
                    "SecretStore::destroy_version"
                } else {
                    "SecretStore::disable_version"
                };
                Ok(Action::new(
                    call,
                    json!({ "secret": secret, "version": old }),
                    async move {
                        let Some(old) = old else {
                            return Ok("no earlier version".to_string());
                        };
                        if !store.capabilities().enable_disable {
                            // Stores without versions (environment variables): the value was replaced.
                            return Ok(format!(
                                "{} has no versions to disable; the old value was replaced",
                                store.name()
                            ));
                        }
                        if destroy {
                            store.destroy_version(&secret, &old).await?
                        } else {
                            store.disable_version(&secret, &old).await?
                        };
                        Ok(format!("version {old} retired"))
                    },
                ))
            })
            .idempotent(),
        );
        Ok(rb)
    }
}

impl super::Procedure for RotateSecret {
    type Summary = ();

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, _: &RunReport) -> Option<()> {
        Some(())
    }
}

/// The `grace` step of a rotation: waits until `grace` after the moment `since` reads from an
/// earlier output (when the new value was made), so a resumed run waits only the rest; a dry
/// run does not wait. Its output is the seconds that were left.
pub fn grace_step<F>(grace: Duration, since: F) -> Step
where
    F: Fn(&crate::engine::StepContext) -> Result<DateTime<Utc>> + Send + Sync + 'static,
{
    Step::read("grace", move |ctx| {
        let at = since(ctx)?;
        let (clock, dry) = (ctx.clock().clone(), ctx.is_dry_run());
        let end = chrono::Duration::from_std(grace)
            .ok()
            .and_then(|g| at.checked_add_signed(g))
            .ok_or_else(|| {
                Error::invalid_input("runbook-config", "rotate", "grace_period", "too long")
            })?;
        Ok(Action::new("wait", json!({ "until": end }), async move {
            let left = (end - clock.now()).to_std().unwrap_or_default();
            if !dry {
                clock.sleep(left).await;
            }
            Ok(left.as_secs_f64())
        }))
    })
}

/// Deploys the serving release's version again (a new release that reads current secrets):
/// how a rotation makes a service pick up a new secret. Returns the new release's id.
pub async fn redeploy_serving(d: &dyn Deployer) -> Result<String> {
    let state = d.current().await?;
    let primary = state
        .primary_release()
        .ok_or_else(|| {
            Error::invalid_input(
                "runbook",
                "rotate",
                "consumer",
                format!("{} serves nothing to redeploy", d.target()),
            )
        })?
        .to_string();
    let version = d
        .releases()
        .await?
        .into_iter()
        .find(|r| r.id == primary)
        .map(|r| r.version)
        .ok_or_else(|| {
            Error::invalid_input(
                "runbook",
                "rotate",
                "consumer",
                format!("release {primary} is not listed"),
            )
        })?;
    let release = d
        .deploy(&DeployRequest {
            traffic: InitialTraffic::All,
            ..DeployRequest::new(version)
        })
        .await?;
    Ok(release.id)
}

/// A secret past its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgedSecret {
    /// The secret.
    pub name: String,
    /// When its value last changed, if known.
    pub updated_at: Option<DateTime<Utc>>,
    /// Its age in whole days, if known.
    pub age_days: Option<i64>,
}

/// Settings of the age audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgeAuditConfig {
    /// Older than this is reported (default 90 days).
    #[serde(with = "human_duration")]
    pub max_age: Duration,
    /// Ages per secret, over `max_age` (seed 004: `VERCEL_TOKEN` every six months,
    /// `DATABASE_URL` yearly).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretAge>,
}

/// One secret's own rotation age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretAge {
    /// Older than this is reported.
    #[serde(with = "human_duration")]
    pub max_age: Duration,
}

impl Default for AgeAuditConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(90 * 86_400),
            secrets: BTreeMap::new(),
        }
    }
}

impl AgeAuditConfig {
    /// The age limit of `secret`: its own, or `max_age`.
    pub fn max_age_of(&self, secret: &str) -> Duration {
        self.secrets.get(secret).map_or(self.max_age, |s| s.max_age)
    }
}

impl RunbookConfig for AgeAuditConfig {
    fn validate(&self) -> Result<()> {
        positive_age("max_age", self.max_age)?;
        for (name, age) in &self.secrets {
            positive_age(&format!("secrets.{name}.max_age"), age.max_age)?;
        }
        Ok(())
    }
}

/// Secrets whose value is older than `config.max_age` at `now`, and those whose age the store
/// cannot tell (they need a look too), oldest first.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::memory::MemorySecretStore;
/// use ops_core::contracts::SecretStore;
/// use ops_core::runbooks::{secret_age_audit, AgeAuditConfig};
/// let s = MemorySecretStore::new("s");
/// s.add_version("fresh", &"x".into()).await?;
/// use ops_core::clock::{Clock, SystemClock};
/// let in_a_year = SystemClock.now() + chrono::Duration::days(365);
/// let old = secret_age_audit(&s, in_a_year, &AgeAuditConfig::default()).await?;
/// assert_eq!(old[0].name, "fresh");
/// # Ok(()) }
/// ```
pub async fn secret_age_audit(
    store: &dyn SecretStore,
    now: DateTime<Utc>,
    config: &AgeAuditConfig,
) -> Result<Vec<AgedSecret>> {
    config.validate()?;
    let mut out: Vec<AgedSecret> = store
        .list_secrets()
        .await?
        .into_iter()
        .filter_map(|s| {
            let limit = chrono::Duration::from_std(config.max_age_of(&s.name))
                .unwrap_or(chrono::Duration::MAX);
            let changed = s.updated_at.or(s.created_at);
            match changed {
                Some(t) if now - t <= limit => None,
                Some(t) => Some(AgedSecret {
                    name: s.name,
                    updated_at: Some(t),
                    age_days: Some((now - t).num_days()),
                }),
                None => Some(AgedSecret {
                    name: s.name,
                    updated_at: None,
                    age_days: None,
                }),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.age_days
            .cmp(&a.age_days)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}
