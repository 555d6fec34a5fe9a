//! Cloud SQL instances as a restore drill needs them: read one, create a scratch instance like
//! the source, clone the source to a point in time, and delete a scratch instance — never any
//! other (deletion takes a [`ScratchInstance`], which only this module makes).

use chrono::{DateTime, Utc};
use ops_core::{Error, Result};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::CloudSql;

/// What a scratch instance's name starts with: `{source}-drill-`.
pub const SCRATCH_MARK: &str = "-drill-";

/// An instance as the drill reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlInstance {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `RUNNABLE`, `PENDING_CREATE`, `MAINTENANCE`, … (or a state added later).
    #[serde(default)]
    pub state: Option<String>,
    /// `POSTGRES_15`, `MYSQL_8_0`, …
    #[serde(default)]
    pub database_version: Option<String>,
    /// The region.
    #[serde(default)]
    pub region: Option<String>,
    /// Its addresses (`PRIMARY` public, `PRIVATE`).
    #[serde(default)]
    pub ip_addresses: Vec<IpMapping>,
    /// Its settings (the tier).
    #[serde(default)]
    pub settings: InstanceSettings,
}

/// `settings`, the parts read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSettings {
    /// The machine tier (`db-custom-2-7680`).
    #[serde(default)]
    pub tier: Option<String>,
}

/// One address of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpMapping {
    /// The address.
    #[serde(default)]
    pub ip_address: String,
    /// `PRIMARY`, `PRIVATE`, `OUTGOING`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl SqlInstance {
    /// The address to connect to: private when there is one, else the primary (public) one.
    pub fn address(&self) -> Option<&str> {
        let of = |kind: &str| {
            self.ip_addresses
                .iter()
                .find(|a| a.kind.as_deref() == Some(kind))
                .map(|a| a.ip_address.as_str())
        };
        of("PRIVATE").or_else(|| of("PRIMARY"))
    }
}

/// A throwaway instance this library made for a drill: the only kind it deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchInstance {
    /// Its name (`{source}-drill-{yyyymmddhhmm}`).
    pub name: String,
}

impl ScratchInstance {
    /// The scratch instance named `name`, if it is one (`{source}-drill-…`): what a drill that
    /// was interrupted left behind can be cleaned up by.
    pub fn adopt(source: &str, name: &str) -> Option<Self> {
        name.strip_prefix(source)?
            .starts_with(SCRATCH_MARK)
            .then(|| Self {
                name: name.to_string(),
            })
    }

    /// A new scratch name for a drill of `source` at `at`. Instance names are at most 98
    /// characters, lowercase letters, digits and hyphens.
    pub fn name_for(source: &str, at: DateTime<Utc>) -> Self {
        let stamp = at.format("%Y%m%d%H%M");
        let keep = 98 - SCRATCH_MARK.len() - 12;
        let stem: String = source.chars().take(keep).collect();
        Self {
            name: format!("{stem}{SCRATCH_MARK}{stamp}"),
        }
    }
}

impl CloudSql {
    /// The instance `name` of the project (this store's instance when `None`).
    pub async fn instance_info(&self, name: Option<&str>) -> Result<SqlInstance> {
        let name = name.unwrap_or(&self.instance);
        ops_core::contracts::validate_name("gcp", "get_instance", "instance", name)?;
        let url = self.url(&format!("instances/{name}"))?;
        self.client.get("get_instance", url, name).await
    }

    /// Creates `scratch` with this instance's database version, tier and region, automated
    /// backups off (it lives for the drill only); returns it once it runs.
    pub async fn create_scratch(&self, scratch: &ScratchInstance) -> Result<SqlInstance> {
        let source = self.instance_info(None).await?;
        let body = json!({
            "name": scratch.name,
            "databaseVersion": source.database_version,
            "region": source.region,
            "settings": {
                "tier": source.settings.tier,
                "backupConfiguration": {"enabled": false},
                "userLabels": {"ops-drill-of": self.instance},
            },
        });
        let url = self.url("instances")?;
        self.write("create_instance", Method::POST, url, Some(body))
            .await?;
        self.instance_info(Some(&scratch.name)).await
    }

    /// Clones this instance as it was at `at` into the new instance `scratch`
    /// (point-in-time recovery; needs it on, and `at` within the log retention).
    pub async fn clone_at(
        &self,
        scratch: &ScratchInstance,
        at: DateTime<Utc>,
    ) -> Result<SqlInstance> {
        let body = json!({ "cloneContext": {
            "kind": "sql#cloneContext",
            "destinationInstanceName": scratch.name,
            "pointInTime": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }});
        let url = self.url(&format!("instances/{}/clone", self.instance))?;
        self.write("clone_instance", Method::POST, url, Some(body))
            .await?;
        self.instance_info(Some(&scratch.name)).await
    }

    /// Deletes a scratch instance. Refuses this store's own instance whatever it is called.
    pub async fn delete_scratch(&self, scratch: &ScratchInstance) -> Result<()> {
        if scratch.name == self.instance
            || ScratchInstance::adopt(&self.instance, &scratch.name).is_none()
        {
            return Err(Error::invalid_input(
                "gcp",
                "delete_instance",
                "instance",
                format!(
                    "{} is not a drill's scratch instance of {}",
                    scratch.name, self.instance
                ),
            ));
        }
        let url = self.url(&format!("instances/{}", scratch.name))?;
        self.write("delete_instance", Method::DELETE, url, None)
            .await?;
        tracing::info!(instance = %scratch.name, "scratch instance deleted");
        Ok(())
    }
}
