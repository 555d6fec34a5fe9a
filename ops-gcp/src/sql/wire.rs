//! Cloud SQL Admin JSON shapes.

use chrono::{DateTime, Utc};
use ops_core::ErrorKind;
use ops_core::contracts::{BackupInfo, BackupState};
use serde::{Deserialize, Serialize};

/// A `BackupRun`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRun {
    /// Its id (int64 as a string).
    pub id: String,
    /// `SUCCESSFUL`, `RUNNING`, `FAILED`, …
    #[serde(default)]
    pub status: String,
    /// `AUTOMATED` or `ON_DEMAND`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The description given at creation.
    #[serde(default)]
    pub description: Option<String>,
    /// When it was queued.
    #[serde(default)]
    pub enqueued_time: Option<DateTime<Utc>>,
    /// When it started.
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// Where the backup is stored (region).
    #[serde(default)]
    pub location: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<OperationError>,
}

impl BackupRun {
    /// As a backup of `instance`.
    pub fn info(&self, project: &str, instance: &str) -> BackupInfo {
        let state = match self.status.as_str() {
            "SUCCESSFUL" => BackupState::Complete,
            "FAILED" | "SKIPPED" | "DELETION_FAILED" | "DELETED" | "DELETION_PENDING" => {
                BackupState::Failed
            }
            _ => BackupState::Pending,
        };
        let mut labels = std::collections::BTreeMap::new();
        if let Some(k) = &self.kind {
            labels.insert("type".to_string(), k.clone());
        }
        if let Some(d) = &self.description {
            labels.insert("description".to_string(), d.clone());
        }
        BackupInfo {
            id: self.id.clone(),
            created_at: self
                .start_time
                .or(self.enqueued_time)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            state,
            size_bytes: None,
            checksum: None,
            source: Some(instance.to_string()),
            // Backup runs cannot carry our marks: Cloud SQL backups list as unverified.
            verification: Default::default(),
            location: format!(
                "projects/{project}/instances/{instance}/backupRuns/{}{}",
                self.id,
                self.location
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            ),
            labels,
        }
    }
}

/// A page of `backupRuns.list`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRunPage {
    /// The runs, newest first.
    #[serde(default)]
    pub items: Vec<BackupRun>,
    /// The next page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// One error of a Cloud SQL operation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct OperationError {
    /// Its code (`BACKUP_FAILED`, `INSTANCE_NOT_RUNNING`, …).
    #[serde(default)]
    pub code: String,
    /// The message.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct OperationErrors {
    #[serde(default)]
    errors: Vec<OperationError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BackupContext {
    #[serde(default)]
    backup_id: Option<String>,
}

/// A Cloud SQL `Operation` (not a long-running operation: it has a `status`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SqlOperation {
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    error: Option<OperationErrors>,
    #[serde(default)]
    backup_context: Option<BackupContext>,
}

impl SqlOperation {
    pub fn backup_id(&self) -> Option<String> {
        self.backup_context.as_ref()?.backup_id.clone()
    }

    /// The kind of a failed operation, `None` when it succeeded.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        let errors = &self.error.as_ref()?.errors;
        let first = errors.first()?;
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ");
        Some(match first.code.as_str() {
            "INSTANCE_NOT_RUNNING" | "OPERATION_CONFLICT" | "INSTANCE_ALREADY_RESTORING" => {
                ErrorKind::Conflict { detail }
            }
            "NOT_AUTHORIZED" => ErrorKind::Forbidden { detail },
            // Failed on the server after it was accepted.
            code => ErrorKind::Provider {
                status: 500,
                code: Some(code.to_string()),
                body_excerpt: ops_core::redact::redact_text(&detail),
            },
        })
    }
}

/// `settings.backupConfiguration` of an instance.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupConfiguration {
    /// Whether automated backups run.
    #[serde(default)]
    pub enabled: bool,
    /// When the daily backup window starts (`HH:MM`, UTC).
    #[serde(default)]
    pub start_time: Option<String>,
    /// Point-in-time recovery (PostgreSQL: write-ahead log archiving).
    #[serde(default)]
    pub point_in_time_recovery_enabled: bool,
    /// Days of transaction logs kept for point-in-time recovery.
    #[serde(default)]
    pub transaction_log_retention_days: Option<u32>,
    /// How many automated backups are kept.
    #[serde(default)]
    pub backup_retention_settings: Option<BackupRetention>,
    /// Where backups are stored, if not the default.
    #[serde(default)]
    pub location: Option<String>,
}

/// `backupRetentionSettings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRetention {
    /// `COUNT`.
    #[serde(default)]
    pub retention_unit: Option<String>,
    /// How many.
    #[serde(default)]
    pub retained_backups: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Settings {
    #[serde(default)]
    pub backup_configuration: Option<BackupConfiguration>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Instance {
    #[serde(default)]
    pub settings: Settings,
}
