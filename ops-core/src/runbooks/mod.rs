//! The seed runbooks as typed workflows. Each has a config (TOML, documented defaults,
//! validated with the field named), builds an engine [`crate::engine::Runbook`] over the
//! contracts only — so it can be dry-run, journaled, locked and resumed — and returns a typed
//! summary alongside the [`crate::engine::RunReport`].

mod alerts;
mod backup;
mod common;
mod cost;
use crate::config;
mod deploy;
mod fingerprint;
mod health_check;
mod incident;
mod procedure;
mod restore;
mod rightsize;
mod rollback;
mod rollout;
mod rotate;
mod security_audit;
mod shutdown;
mod weekly_review;

use serde::{Deserialize, Serialize};

pub use alerts::{
    Alert, AlertMemory, AlertRule, AlertsConfig, Direction, MAX_HOLD_WINDOWS, Silence,
    ThresholdAlerts, evaluate_alerts,
};
pub use backup::{
    ArtifactCheck, BackupAndVerify, BackupSource, BackupVerifyConfig, OpenArtifact, PrunePlan,
    RestoreTest, Retention,
};
pub use config::{MAX_AGE, MAX_WAIT, RunbookConfig, human_duration};
pub use cost::{
    BudgetCheck, BudgetPolicy, CostMetrics, CostProbe, CostReview, CostReviewConfig, CostSpike,
    CostSpikeRule, CostSummary, CostView, DAILY_COST, ExpectedShare, MonthProjection, ServiceCost,
    summarise,
};
pub use deploy::{DeployAndVerify, DeployStart, DeployVerifyConfig};
pub use fingerprint::{ErrorGroup, ErrorGrouper, fingerprint, group_lines};
pub use health_check::{HealthCheck, HealthCheckConfig, HealthSummary};
pub use incident::{
    EscalationRule, Incident, IncidentConfig, IncidentResponse, Priority, PriorityPolicy,
    TimelineEntry, Trigger,
};
pub use procedure::{Finished, Procedure};
pub use restore::{Restarted, Restore, RestoreConfig};
pub use rightsize::{
    Change, Decision, Resource, RightSize, RightSizeConfig, RightSizeSummary, Utilisation,
};
pub use rollback::{AUTO_ROLLBACK, Rollback, RollbackChoice, RollbackConfig, RollbackTo};
pub use rollout::{
    Analysis, JudgedBy, MetricResult, OnFailure, OnInconclusive, Rollout, RolloutConfig,
    RolloutMetric, RolloutSummary, Sequential, Stage, StageSummary, Strategy, Thresholds, Verdict,
    Watched,
};
pub use rotate::{
    AddedVersion, AgeAuditConfig, AgedSecret, GenerateSecret, RotateConfig, RotateSecret,
    SecretAge, ValidateSecret, grace_step, redeploy_serving, secret_age_audit,
};
pub use security_audit::{SecurityAudit, SecurityReport};
pub use shutdown::{
    CapturedLogs, DisabledSecrets, EmergencyShutdown, MAX_EVIDENCE_ENTRIES, MAX_EVIDENCE_PAGES,
    ShutdownConfig, StopConfirmation,
};
pub use weekly_review::{ChangeCounts, ErrorSummary, WeeklyReview, WeeklyReviewConfig};

use crate::contracts::HealthStatus;

/// One thing a runbook checked, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What was checked.
    pub check: String,
    /// How it looks.
    pub status: HealthStatus,
    /// Why, for people.
    pub detail: String,
}

impl Finding {
    /// A finding.
    pub fn new(check: impl Into<String>, status: HealthStatus, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// `InvalidInput` unless `stem` can start a backup name in every store: 1 to 64 bytes of
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-` (so no path, no traversal, no whitespace).
pub(crate) fn name_stem(field: &str, stem: &str) -> crate::Result<()> {
    match crate::contracts::plain_name_problem(stem, 64) {
        Some(r) => Err(config::invalid(field, r)),
        None if stem.starts_with('-') => Err(config::invalid(field, "must not start with '-'")),
        None => Ok(()),
    }
}
