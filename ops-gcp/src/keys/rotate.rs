//! Rotating a service-account key (seed 002, monthly; seed 000's security audit finds the old
//! ones): create a key, store its file as a new
//! Secret Manager version, redeploy the consumers so they read it, wait the grace period,
//! disable the old keys, and delete them. Every step that makes something undoes it when a
//! later step fails: the new key is deleted and its secret version disabled, disabled old keys
//! are enabled again. The key file is never a step's output, so never in a journal or report.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ops_core::config::{RunbookConfig, human_duration};
use ops_core::contracts::{Deployer, SecretStore};
use ops_core::engine::{Action, Category, Output, RunReport, Runbook, Step};
use ops_core::runbooks::Procedure;
use ops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ServiceAccountKeys;

/// A rotation's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotationConfig {
    /// How long the old keys stay enabled after the consumers got the new one (default 24 h).
    #[serde(default = "day", with = "human_duration")]
    pub grace_period: Duration,
}

fn day() -> Duration {
    Duration::from_secs(86_400)
}

impl Default for KeyRotationConfig {
    fn default() -> Self {
        Self {
            grace_period: day(),
        }
    }
}

impl RunbookConfig for KeyRotationConfig {
    fn validate(&self) -> Result<()> {
        if self.grace_period.is_zero() || self.grace_period > ops_core::config::MAX_WAIT {
            return Err(Error::invalid_input(
                "runbook-config",
                "load",
                "grace_period",
                "must be positive and at most 366 days",
            ));
        }
        Ok(())
    }
}

/// A key id as outputs keep it: in groups of eight (`3a9f0c1d-…`). A 40-digit id reads as a
/// token to the redaction of journals and reports, which would mask it — and a resumed run
/// could then not name the key it has to delete.
pub fn grouped_key_id(id: &str) -> String {
    id.as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// The key id a [`grouped_key_id`] stands for.
pub fn key_id(grouped: &str) -> String {
    grouped.replace('-', "")
}

/// The key a rotation made, and where its file went (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedKey {
    /// The new key's id, grouped ([`grouped_key_id`]; [`key_id`] gives it back).
    pub key: String,
    /// The secret version holding its file.
    pub stored_version: String,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// The rotation of one service account's key into one secret.
pub struct RotateServiceAccountKey {
    keys: ServiceAccountKeys,
    store: Arc<dyn SecretStore>,
    secret: String,
    consumers: Vec<Arc<dyn Deployer>>,
    config: KeyRotationConfig,
}

impl RotateServiceAccountKey {
    /// Rotates the keys of `keys`' account, the new file going to `secret` in `store`.
    pub fn new(
        keys: ServiceAccountKeys,
        store: Arc<dyn SecretStore>,
        secret: impl Into<String>,
        config: KeyRotationConfig,
    ) -> Self {
        Self {
            keys,
            store,
            secret: secret.into(),
            consumers: Vec::new(),
            config,
        }
    }

    /// A service to redeploy (its serving version) so it reads the new key.
    pub fn consumer(mut self, deployer: Arc<dyn Deployer>) -> Self {
        self.consumers.push(deployer);
        self
    }

    fn build(&self) -> Result<Runbook> {
        const CREATE: &str = "create-key";
        self.config.validate()?;
        ops_core::contracts::validate_name("gcp", "rotate_key", "secret", &self.secret)?;
        let mut rb = Runbook::new("rotate-service-account-key", self.keys.email())
            .with_category(Category::Maintenance);
        let keys = self.keys.clone();
        let old: Output<Vec<String>> = rb.add_step(Step::read("current-keys", move |_| {
            let keys = keys.clone();
            Ok(Action::new(
                "GET serviceAccounts/{email}/keys",
                json!({"email": keys.email()}),
                async move {
                    Ok(keys
                        .list()
                        .await?
                        .into_iter()
                        .filter(|k| !k.disabled)
                        .map(|k| grouped_key_id(k.id()))
                        .collect::<Vec<_>>())
                },
            ))
        }));
        // Named before the step exists: its own compensation reads it.
        let made: Output<RotatedKey> = Output::of(CREATE);
        let (keys, store, secret) = (self.keys.clone(), self.store.clone(), self.secret.clone());
        let (keys_undo, store_undo, secret_undo, made_undo) = (
            self.keys.clone(),
            self.store.clone(),
            self.secret.clone(),
            made.clone(),
        );
        rb = rb.step(
            Step::mutate(CREATE, move |ctx| {
                let (keys, store, secret, at) = (
                    keys.clone(),
                    store.clone(),
                    secret.clone(),
                    ctx.clock().now(),
                );
                // The key file lives inside this action only: created, stored, dropped.
                Ok(Action::new(
                    "POST keys, then SecretStore::add_version",
                    json!({"email": keys.email(), "secret": secret, "value": "(the new key file)"}),
                    async move {
                        let new = keys.create().await?;
                        let id = new.key.id().to_string();
                        match store.add_version(&secret, &new.file).await {
                            Ok(v) => Ok(RotatedKey {
                                key: grouped_key_id(&id),
                                stored_version: v.id,
                                at,
                            }),
                            Err(e) => {
                                // Not stored: the key would be a live credential nobody holds.
                                let _ = keys.delete(&id).await;
                                Err(e)
                            }
                        }
                    },
                ))
            })
            .compensate(move |ctx| {
                let made = ctx.get(&made_undo)?;
                let (keys, store, secret) =
                    (keys_undo.clone(), store_undo.clone(), secret_undo.clone());
                Ok(Action::new(
                    "DELETE keys/{new}, SecretStore::disable_version",
                    json!({"key": made.key, "version": made.stored_version}),
                    async move {
                        keys.delete(&key_id(&made.key)).await?;
                        store.disable_version(&secret, &made.stored_version).await?;
                        Ok(())
                    },
                ))
            }),
        );
        for d in &self.consumers {
            let d = d.clone();
            rb = rb.step(
                Step::mutate(format!("roll-{}", d.target()), move |_| {
                    let d = d.clone();
                    Ok(Action::new(
                        "Deployer::deploy",
                        json!({"target": d.target(), "version": "(the serving version)"}),
                        async move { ops_core::runbooks::redeploy_serving(d.as_ref()).await },
                    ))
                })
                .idempotent(),
            );
        }
        let made_grace = made.clone();
        // From when the key was made: a resumed run waits only the rest.
        rb = rb.step(ops_core::runbooks::grace_step(
            self.config.grace_period,
            move |ctx| Ok(ctx.get(&made_grace)?.at),
        ));
        let (keys, keys_undo, old_undo) = (self.keys.clone(), self.keys.clone(), old.clone());
        let old_disable = old.clone();
        rb = rb.step(
            Step::mutate("disable-old", move |ctx| {
                let old = ctx.get(&old_disable)?;
                let keys = keys.clone();
                Ok(Action::new(
                    "POST keys/{old}:disable",
                    json!({"keys": old}),
                    async move {
                        for id in &old {
                            keys.disable(&key_id(id)).await?;
                        }
                        Ok(old.len())
                    },
                ))
            })
            .idempotent()
            .compensate(move |ctx| {
                let old = ctx.get(&old_undo)?;
                let keys = keys_undo.clone();
                Ok(Action::new(
                    "POST keys/{old}:enable",
                    json!({"keys": old}),
                    async move {
                        for id in &old {
                            keys.enable(&key_id(id)).await?;
                        }
                        Ok(())
                    },
                ))
            }),
        );
        let keys = self.keys.clone();
        rb = rb.step(
            Step::mutate("delete-old", move |ctx| {
                let old = ctx.get(&old)?;
                let keys = keys.clone();
                Ok(Action::new(
                    "DELETE keys/{old}",
                    json!({"keys": old}),
                    async move {
                        for id in &old {
                            keys.delete(&key_id(id)).await?;
                        }
                        Ok(old.len())
                    },
                ))
            })
            .idempotent(),
        );
        Ok(rb)
    }
}

impl Procedure for RotateServiceAccountKey {
    type Summary = RotatedKey;

    fn runbook(&self) -> Result<Runbook> {
        self.build()
    }

    fn summary(&self, report: &RunReport) -> Option<RotatedKey> {
        report.output("create-key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_ids_survive_redaction_and_read_back() {
        let id = "3a9f0c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39";
        let grouped = grouped_key_id(id);
        assert_eq!(grouped, "3a9f0c1d-8e7b6a5f-4e3d2c1b-0a9f8e7d-6c5b4a39");
        assert_eq!(ops_core::redact::redact_text(&grouped), grouped);
        assert_ne!(
            ops_core::redact::redact_text(id),
            id,
            "the bare id reads as a token"
        );
        assert_eq!(key_id(&grouped), id);
    }
}
