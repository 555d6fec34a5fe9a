//! Cloud SQL Admin v1 behind [`BackupStore`] (managed backup runs), and the instance's backup
//! configuration for the seed's monthly check.
//!
//! | runbook step (gcloud) | call |
//! |---|---|
//! | `gcloud sql backups create --instance=I` | [`BackupStore::create`] |
//! | `gcloud sql backups list --instance=I` | [`BackupStore::list`] |
//! | `gcloud sql backups describe ID` | [`BackupStore::describe`] |
//! | `gcloud sql backups restore ID --restore-instance=T` | [`BackupStore::restore`] |
//! | `gcloud sql backups delete ID` | [`BackupStore::delete`] |
//! | `gcloud sql instances describe I --format='value(settings.backupConfiguration)'` | [`CloudSql::backup_configuration`], [`drill::BackupPolicyCheck`] |
//! | restore drill: `gcloud sql instances create` + `backups restore` + row counts + `instances delete` | [`drill::RestoreDrill`] |
//! | downgrade an over-provisioned tier (`gcloud sql instances patch I --tier=…`) | [`sizing::RightSizeSql`] |
//! | `gcloud sql instances clone I T --point-in-time=…` | [`CloudSql::clone_at`] (and a [`drill::DrillSource::PointInTime`] drill) |
//!
//! Every write returns a Cloud SQL operation (`PENDING` → `RUNNING` → `DONE`, with `error` on
//! failure; there is no `wait` method): it is polled on the client's clock within a deadline.
//! Backup runs are managed by Cloud SQL and cannot be downloaded, so artifacts are
//! `Unsupported` (stream a `pg_dump` into Cloud Storage for that).

pub mod drill;
pub mod instances;
pub mod sizing;
mod wire;

use std::time::Duration;

use async_trait::async_trait;
use ops_core::contracts::{
    ArtifactReader, BackupCapabilities, BackupFilter, BackupInfo, BackupState, BackupStore,
    CreateBackup, PutArtifact, RestoreOutcome, RestoreTarget,
};
use ops_core::http::SendOptions;
use ops_core::{Error, ErrorKind, Result};
use reqwest::Method;
use serde_json::json;
use url::Url;

use crate::client::{GcpClient, OperationPolling, collect_pages};
use ops_core::poll::{Every, poll_until};
pub use wire::{BackupConfiguration, BackupRetention};
use wire::{BackupRun, BackupRunPage, Instance, SqlOperation};

/// The most backup runs one listing reads.
const LIST_CAP: usize = 10_000;

/// The managed backups of one Cloud SQL instance.
#[derive(Debug, Clone)]
pub struct CloudSql {
    client: GcpClient,
    instance: String,
    name: String,
    polling: OperationPolling,
    deadline: Duration,
}

impl CloudSql {
    /// Backups of `instance` in the client's project; operations awaited up to 30 minutes.
    pub fn new(client: GcpClient, instance: impl Into<String>) -> Result<Self> {
        let instance = instance.into();
        ops_core::contracts::validate_name("gcp", "cloud_sql", "instance", &instance)?;
        Ok(Self {
            name: format!("cloud-sql:{instance}"),
            client,
            instance,
            polling: OperationPolling {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(15),
            },
            deadline: Duration::from_secs(1800),
        })
    }

    /// How operations are polled and how long they may take.
    pub fn with_operations(mut self, polling: OperationPolling, deadline: Duration) -> Self {
        self.polling = polling;
        self.deadline = deadline;
        self
    }

    fn url(&self, path: &str) -> Result<Url> {
        let project = &self.client.config().project;
        let base = self.client.url(
            &self.client.config().endpoints.sql_admin,
            &format!("v1/projects/{project}/"),
        )?;
        self.client.url(&base, path)
    }

    fn run_id<'a>(&self, id: &'a str) -> Result<&'a str> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::new(
                "gcp",
                "cloud_sql",
                ErrorKind::NotFound {
                    resource: format!("backup run {id:?} of {} (ids are numbers)", self.instance),
                },
            ));
        }
        Ok(id)
    }

    fn options(&self, resource: &str) -> SendOptions {
        SendOptions {
            resource: Some(resource.to_string()),
            ..SendOptions::default()
        }
    }

    /// The instance's backup settings: enabled, start time, point-in-time recovery, retention.
    pub async fn backup_configuration(&self) -> Result<BackupConfiguration> {
        let url = self.url(&format!("instances/{}", self.instance))?;
        let instance: Instance = self.client.get("get_instance", url, &self.instance).await?;
        Ok(instance.settings.backup_configuration.unwrap_or_default())
    }

    /// One backup run as the API returns it.
    pub async fn backup_run(&self, id: &str) -> Result<BackupRun> {
        let id = self.run_id(id)?;
        let url = self.url(&format!("instances/{}/backupRuns/{id}", self.instance))?;
        self.client.get("get_backup_run", url, id).await
    }

    async fn write(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<SqlOperation> {
        let op: SqlOperation = self
            .client
            .call(
                operation,
                method,
                url,
                body.as_ref(),
                &self.options(&self.instance),
            )
            .await?;
        self.await_operation(op, operation).await
    }

    /// Polls `op` until `DONE`; a failed operation is an error with its codes and messages.
    async fn await_operation(
        &self,
        op: SqlOperation,
        operation: &'static str,
    ) -> Result<SqlOperation> {
        let every = Every::growing(self.polling.initial, self.polling.max);
        poll_until(
            self.client.clock().as_ref(),
            self.deadline,
            every,
            op,
            |op| match (op.status == "DONE", op.error_kind()) {
                (false, _) => Ok(None),
                (true, Some(kind)) => Err(Error::new("gcp", operation, kind)),
                (true, None) => Ok(Some(op.clone())),
            },
            |op| async move {
                let url = self.url(&format!("operations/{}", op.name))?;
                self.client.get("get_operation", url, &op.name).await
            },
        )
        .await?
        .or_timeout("gcp", operation, self.deadline)
    }

    fn info(&self, run: &BackupRun) -> BackupInfo {
        run.info(&self.client.config().project, &self.instance)
    }
}

#[async_trait]
impl BackupStore for CloudSql {
    fn name(&self) -> &str {
        &self.name
    }

    /// Cloud SQL's own backup, taken and kept by the service.
    fn created_as(&self) -> Option<String> {
        Some("server-side (a Cloud SQL backup run)".into())
    }

    fn capabilities(&self) -> BackupCapabilities {
        BackupCapabilities {
            verification: false,
            create: true,
            artifacts: false,
            restore: true,
            delete: true,
        }
    }

    /// Takes an on-demand backup run; `request.source` must be this instance (or empty).
    async fn create(&self, request: &CreateBackup) -> Result<BackupInfo> {
        if !request.source.is_empty() && request.source != self.instance {
            return Err(Error::invalid_input(
                "gcp",
                "create_backup",
                "source",
                format!(
                    "this store backs up instance {}, not {}",
                    self.instance, request.source
                ),
            ));
        }
        let description = request
            .name
            .clone()
            .unwrap_or_else(|| "on-demand backup by ops".into());
        let url = self.url(&format!("instances/{}/backupRuns", self.instance))?;
        let op = self
            .write(
                "create_backup",
                Method::POST,
                url,
                Some(json!({ "description": description })),
            )
            .await?;
        let id = op.backup_id().ok_or_else(|| {
            Error::new(
                "gcp",
                "create_backup",
                ErrorKind::Decode {
                    detail: "the finished backup operation names no backup run".into(),
                },
            )
        })?;
        let run = self.backup_run(&id).await?;
        tracing::info!(instance = %self.instance, backup = %id, "Cloud SQL backup taken");
        Ok(self.info(&run))
    }

    async fn put_artifact(&self, _: &PutArtifact, _: ArtifactReader) -> Result<BackupInfo> {
        Err(Error::unsupported(
            "gcp",
            "put_artifact",
            "uploading artifacts to Cloud SQL managed backups",
        ))
    }

    async fn get_artifact(&self, _: &str) -> Result<ArtifactReader> {
        Err(Error::unsupported(
            "gcp",
            "get_artifact",
            "downloading Cloud SQL managed backups",
        ))
    }

    async fn list(&self, filter: &BackupFilter) -> Result<Vec<BackupInfo>> {
        let runs = collect_pages(LIST_CAP, |token| async move {
            let mut url = self.url(&format!("instances/{}/backupRuns", self.instance))?;
            url.query_pairs_mut().append_pair("maxResults", "500");
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("pageToken", t);
            }
            let page: BackupRunPage = self
                .client
                .get("list_backup_runs", url, &self.instance)
                .await?;
            Ok((page.items, page.next_page_token))
        })
        .await?;
        let complete = runs
            .iter()
            .map(|r| self.info(r))
            .filter(|b| b.state == BackupState::Complete)
            .collect();
        Ok(filter.apply(complete))
    }

    async fn describe(&self, id: &str) -> Result<BackupInfo> {
        Ok(self.info(&self.backup_run(id).await?))
    }

    /// Restores into this instance (`Original`) or another one of the project (`Other`).
    /// Cloud SQL replaces the target's data; take a backup of the target first (the restore
    /// runbook does).
    async fn restore(&self, id: &str, target: &RestoreTarget) -> Result<RestoreOutcome> {
        let id = self.run_id(id)?;
        let target_instance = match target {
            RestoreTarget::Original => self.instance.clone(),
            RestoreTarget::Other(t) => t.clone(),
        };
        ops_core::contracts::validate_name("gcp", "restore", "target", &target_instance)?;
        let url = self.url(&format!("instances/{target_instance}/restoreBackup"))?;
        let body = json!({ "restoreBackupContext": {
            "backupRunId": id,
            "instanceId": self.instance,
            "project": self.client.config().project,
        }});
        self.write("restore_backup", Method::POST, url, Some(body))
            .await?;
        Ok(RestoreOutcome {
            backup_id: id.to_string(),
            target: target_instance,
            bytes: None,
        })
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let id = self.run_id(id)?;
        let url = self.url(&format!("instances/{}/backupRuns/{id}", self.instance))?;
        self.write("delete_backup", Method::DELETE, url, None)
            .await?;
        Ok(())
    }
}
