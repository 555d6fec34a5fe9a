//! Kubernetes `Secret`s as a [`SecretStore`], so "verify Redis credentials in secrets" and a
//! rotation work on a cluster; after a rotation, [`crate::KubeDeployment::restart`] rolls the
//! pods that read it.
//!
//! A secret of the store is one key of a `Secret`: `redis/password` is key `password` of the
//! Secret `redis` (a Secret with a single key may be named alone). Its version is the Secret's
//! `resourceVersion`; Kubernetes keeps no history, so only the current version is listed, and
//! reading an older one is `NotFound`. Values are decoded from base64 straight into
//! [`SecretValue`]s; listings read key names only, never values. Writes carry the
//! `resourceVersion` read, so a concurrent change is a `Conflict`.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ops_core::contracts::{
    SecretCapabilities, SecretInfo, SecretRead, SecretStore, SecretValue, SecretVersion,
    VersionRef, VersionState,
};
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::client::{KubeClient, PROVIDER, check_name};
use crate::deployment::view::time;

/// The Secrets of the client's namespace.
#[derive(Debug, Clone)]
pub struct KubeSecrets {
    client: KubeClient,
    name: String,
}

/// A value of `data`, decoded from base64 into a [`SecretValue`] as it is read.
struct Encoded(SecretValue);

impl<'de> Deserialize<'de> for Encoded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(|b| Encoded(SecretValue::from_bytes(b)))
            // The error names no byte of the value.
            .map_err(|_| serde::de::Error::custom("a data value is not base64"))
    }
}

/// A Secret as read, values secret.
#[derive(Deserialize)]
struct SecretObject {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Option<BTreeMap<String, Encoded>>,
}

impl fmt::Debug for SecretObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretObject")
            .field("name", &self.metadata.name)
            .field(
                "keys",
                &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
            )
            .finish_non_exhaustive()
    }
}

/// A Secret as listed: its key names only.
#[derive(Deserialize)]
struct ListedSecret {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Option<BTreeMap<String, IgnoredAny>>,
}

impl KubeSecrets {
    /// The Secrets of `client`'s namespace.
    pub fn new(client: KubeClient) -> Self {
        Self {
            name: format!("kubernetes-secrets:{}", client.namespace()),
            client,
        }
    }

    fn path(&self, secret: Option<&str>) -> String {
        let base = format!("api/v1/namespaces/{}/secrets", self.client.namespace());
        match secret {
            Some(s) => format!("{base}/{s}"),
            None => base,
        }
    }

    async fn get(&self, secret: &str) -> Result<SecretObject> {
        let url = self.client.url(&self.path(Some(secret)), &[])?;
        self.client.get("read_secret", url, secret).await
    }
}

/// `secret/key` split, both parts checked; a bare name has no key.
fn split(name: &str) -> Result<(&str, Option<&str>)> {
    let (secret, key) = match name.split_once('/') {
        Some((s, k)) => (s, Some(k)),
        None => (name, None),
    };
    check_name("secret", "secret", secret)?;
    if let Some(k) = key {
        let ok = !k.is_empty()
            && k.len() <= 253
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(Error::invalid_input(
                PROVIDER,
                "secret",
                "key",
                "a Secret key is letters, digits, '-', '_' and '.'",
            ));
        }
    }
    Ok((secret, key))
}

/// The key of `obj` a store name means: the one named, or the only one.
fn key_of<'a>(obj: &'a SecretObject, name: &str, key: Option<&'a str>) -> Result<&'a str> {
    let keys: Vec<&String> = obj.data.iter().flat_map(|d| d.keys()).collect();
    match key {
        Some(k) if keys.iter().any(|x| x.as_str() == k) => Ok(k),
        Some(k) => Err(Error::new(
            PROVIDER,
            "read_secret",
            ErrorKind::NotFound {
                resource: format!(
                    "key {k} of Secret {}",
                    name.split('/').next().unwrap_or(name)
                ),
            },
        )),
        None => match keys.as_slice() {
            [only] => Ok(only.as_str()),
            _ => Err(Error::invalid_input(
                PROVIDER,
                "read_secret",
                "secret",
                format!(
                    "Secret {name} has {} keys: name one as {name}/<key>",
                    keys.len()
                ),
            )),
        },
    }
}

fn version_of(secret: &str, obj: &SecretObject) -> SecretVersion {
    SecretVersion {
        secret: secret.to_string(),
        id: obj.metadata.resource_version.clone().unwrap_or_default(),
        state: VersionState::Enabled,
        created_at: obj.metadata.creation_timestamp.as_ref().and_then(time),
    }
}

#[async_trait]
impl SecretStore for KubeSecrets {
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

    /// Every key of every Secret but service-account tokens, as `secret/key`.
    async fn list_secrets(&self) -> Result<Vec<SecretInfo>> {
        let listed: Vec<ListedSecret> = self
            .client
            .list("list_secrets", &self.path(None), None)
            .await?;
        let mut out = Vec::new();
        for s in listed {
            let kind = s.kind.unwrap_or_else(|| "Opaque".into());
            if kind == "kubernetes.io/service-account-token" {
                continue;
            }
            let name = s.metadata.name.unwrap_or_default();
            for key in s.data.iter().flat_map(|d| d.keys()) {
                out.push(SecretInfo {
                    name: format!("{name}/{key}"),
                    created_at: s.metadata.creation_timestamp.as_ref().and_then(time),
                    updated_at: None,
                    labels: [("type".to_string(), kind.clone())].into(),
                });
            }
        }
        Ok(out)
    }

    async fn read(&self, secret: &str, version: &VersionRef) -> Result<SecretRead> {
        let (name, key) = split(secret)?;
        let mut obj = self.get(name).await?;
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        if let VersionRef::Id(id) = version
            && *id != rv
        {
            return Err(Error::new(
                PROVIDER,
                "read_secret",
                ErrorKind::NotFound {
                    resource: format!(
                        "version {id} of {secret} (Kubernetes keeps only the current one)"
                    ),
                },
            ));
        }
        let key = key_of(&obj, secret, key)?.to_string();
        let value = obj
            .data
            .as_mut()
            .and_then(|d| d.remove(&key))
            .map(|e| e.0)
            .unwrap_or_else(|| SecretValue::from_bytes(Vec::new()));
        Ok(SecretRead { version: rv, value })
    }

    /// Sets the key (creating the Secret, type `Opaque`, if it does not exist), with the
    /// `resourceVersion` read; the new version is the new `resourceVersion`.
    async fn add_version(&self, secret: &str, value: &SecretValue) -> Result<SecretVersion> {
        let (name, key) = split(secret)?;
        let key = key.ok_or_else(|| {
            Error::invalid_input(
                PROVIDER,
                "write_secret",
                "secret",
                "name the key to write: secret/key",
            )
        })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.expose_bytes());
        let written: SecretObject = match self.get(name).await {
            Ok(obj) => {
                // Only the one key changes; the others are written back as read.
                let mut data = serde_json::Map::new();
                for (k, v) in obj.data.iter().flatten() {
                    if k != key {
                        data.insert(
                            k.clone(),
                            json!(
                                base64::engine::general_purpose::STANDARD
                                    .encode(v.0.expose_bytes())
                            ),
                        );
                    }
                }
                data.insert(key.to_string(), json!(encoded));
                // Labels and annotations as read; absent ones stay absent (never `null`).
                let mut metadata =
                    json!({"name": name, "resourceVersion": obj.metadata.resource_version});
                if let Some(labels) = &obj.metadata.labels {
                    metadata["labels"] = json!(labels);
                }
                if let Some(notes) = &obj.metadata.annotations {
                    metadata["annotations"] = json!(notes);
                }
                let body = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": metadata,
                    "type": obj.kind.unwrap_or_else(|| "Opaque".into()),
                    "data": data,
                });
                let url = self.client.url(&self.path(Some(name)), &[])?;
                self.client
                    .write("replace_secret", Method::PUT, url, &body, None)
                    .await?
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound { .. }) => {
                let body = json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": name}, "type": "Opaque", "data": {key: encoded},
                });
                let url = self.client.url(&self.path(None), &[])?;
                self.client
                    .write("create_secret", Method::POST, url, &body, None)
                    .await?
            }
            Err(e) => return Err(e),
        };
        Ok(version_of(secret, &written))
    }

    /// The current version only (Kubernetes keeps no history).
    async fn list_versions(&self, secret: &str) -> Result<Vec<SecretVersion>> {
        let (name, key) = split(secret)?;
        let obj = self.get(name).await?;
        key_of(&obj, secret, key)?;
        Ok(vec![version_of(secret, &obj)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_secret_and_key_and_bad_ones_are_refused() {
        assert_eq!(
            split("redis/password").unwrap(),
            ("redis", Some("password"))
        );
        assert_eq!(split("redis").unwrap(), ("redis", None));
        for bad in [
            "Redis/password",
            "redis/",
            "redis/pass word",
            "../x/y",
            "redis/a/b",
        ] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_read_secret_never_shows_its_value() {
        let obj: SecretObject = serde_json::from_value(json!({
            "metadata": {"name": "redis", "resourceVersion": "7"},
            "data": {"password": base64::engine::general_purpose::STANDARD.encode("hunter2-redis")}
        }))
        .unwrap();
        assert!(!format!("{obj:?}").contains("hunter2"));
        let e = serde_json::from_value::<SecretObject>(
            json!({"data": {"password": "not base64 hunter2!"}}),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
