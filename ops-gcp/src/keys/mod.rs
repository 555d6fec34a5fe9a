//! Service-account keys (IAM v1): list the user-managed keys of an account, create one (its
//! private key only ever as a [`SecretValue`]), disable, enable and delete — and
//! [`rotate::RotateServiceAccountKey`], seed 002's monthly "rotate service account keys".

pub mod rotate;

use base64::Engine;
use chrono::{DateTime, Utc};
use ops_core::contracts::SecretValue;
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use crate::client::GcpClient;

/// A key as IAM lists it (never its private part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountKey {
    /// `projects/P/serviceAccounts/EMAIL/keys/ID`.
    #[serde(default)]
    pub name: String,
    /// When it became valid (its creation).
    #[serde(default)]
    pub valid_after_time: Option<DateTime<Utc>>,
    /// Whether it is disabled.
    #[serde(default)]
    pub disabled: bool,
    /// `USER_MANAGED` or `SYSTEM_MANAGED`.
    #[serde(default)]
    pub key_type: Option<String>,
}

impl AccountKey {
    /// Its id (the last part of its name).
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

#[derive(Deserialize)]
struct KeyList {
    #[serde(default)]
    keys: Vec<AccountKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedKey {
    #[serde(default)]
    name: String,
    #[serde(default)]
    valid_after_time: Option<DateTime<Utc>>,
    #[serde(default)]
    private_key_data: Option<String>,
}

/// A key just made, with its private part (the JSON key file) as a secret value.
pub struct NewKey {
    /// The key as listed.
    pub key: AccountKey,
    /// The key file: only here, never in `Debug`, errors or outputs.
    pub file: SecretValue,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &self.key)
            .field("file", &"[redacted]")
            .finish()
    }
}

/// The keys of one service account.
#[derive(Debug, Clone)]
pub struct ServiceAccountKeys {
    client: GcpClient,
    email: String,
}

impl ServiceAccountKeys {
    /// The keys of `email` (`deployer@project.iam.gserviceaccount.com`).
    pub fn new(client: GcpClient, email: impl Into<String>) -> Result<Self> {
        let email = email.into();
        let ok = email.contains('@')
            && email.len() <= 255
            && email
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_".contains(c));
        if !ok {
            return Err(Error::invalid_input(
                "gcp",
                "service_account_keys",
                "email",
                format!("{email:?} is not a service account's email"),
            ));
        }
        Ok(Self { client, email })
    }

    /// The account's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    fn url(&self, rest: &str) -> Result<Url> {
        let project = &self.client.config().project;
        let root = &self.client.config().endpoints.iam;
        self.client.url(
            root,
            &format!(
                "v1/projects/{project}/serviceAccounts/{}/keys{rest}",
                self.email
            ),
        )
    }

    fn key_url(&self, id: &str, verb: &str) -> Result<Url> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid_input(
                "gcp",
                "service_account_key",
                "id",
                format!("{id:?} is not a key id"),
            ));
        }
        self.url(&format!("/{id}{verb}"))
    }

    fn options(&self) -> SendOptions {
        SendOptions {
            resource: Some(format!("keys of {}", self.email)),
            ..SendOptions::default()
        }
    }

    /// The user-managed keys, oldest first.
    pub async fn list(&self) -> Result<Vec<AccountKey>> {
        let mut url = self.url("")?;
        url.query_pairs_mut()
            .append_pair("keyTypes", "USER_MANAGED");
        let list: KeyList = self
            .client
            .get("list_service_account_keys", url, &self.email)
            .await?;
        let mut keys = list.keys;
        keys.sort_by_key(|k| k.valid_after_time);
        Ok(keys)
    }

    /// Creates a key (a Google credentials file, RSA 2048). A POST, sent once: a lost answer
    /// leaves a key the next listing shows, never two made by one call.
    pub async fn create(&self) -> Result<NewKey> {
        let body = json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"});
        let created: CreatedKey = self
            .client
            .call(
                "create_service_account_key",
                Method::POST,
                self.url("")?,
                Some(&body),
                &self.options(),
            )
            .await?;
        let data = created.private_key_data.ok_or_else(|| {
            Error::new(
                "gcp",
                "create_service_account_key",
                ErrorKind::Decode {
                    detail: "the new key came without its private key data".into(),
                },
            )
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| {
                Error::new(
                    "gcp",
                    "create_service_account_key",
                    ErrorKind::Decode {
                        detail: "the private key data is not base64".into(),
                    },
                )
            })?;
        Ok(NewKey {
            key: AccountKey {
                name: created.name,
                valid_after_time: created.valid_after_time,
                disabled: false,
                key_type: Some("USER_MANAGED".into()),
            },
            file: SecretValue::from_bytes(bytes),
        })
    }

    async fn post_verb(&self, operation: &'static str, id: &str, verb: &str) -> Result<()> {
        // Disabling a disabled key (or enabling an enabled one) changes nothing: safe to retry.
        self.client
            .call::<_, serde_json::Value>(
                operation,
                Method::POST,
                self.key_url(id, verb)?,
                Some(&json!({})),
                &SendOptions {
                    idempotency: Some(ops_core::retry::Idempotency::Idempotent),
                    ..self.options()
                },
            )
            .await?;
        Ok(())
    }

    /// Disables key `id` (it stops authenticating; it can be enabled again).
    pub async fn disable(&self, id: &str) -> Result<()> {
        self.post_verb("disable_service_account_key", id, ":disable")
            .await
    }

    /// Enables key `id` again.
    pub async fn enable(&self, id: &str) -> Result<()> {
        self.post_verb("enable_service_account_key", id, ":enable")
            .await
    }

    /// Deletes key `id`; a key already gone is not an error.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let sent: Result<serde_json::Value> = self
            .client
            .call::<(), _>(
                "delete_service_account_key",
                Method::DELETE,
                self.key_url(id, "")?,
                None,
                &self.options(),
            )
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
