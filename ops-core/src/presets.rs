//! Seed presets: each seed runbook's own numbers — response times and update cadences,
//! escalation, alert thresholds and `for` durations, backup retention, secret ages, canary
//! stages and approvals, shutdown evidence, maintenance windows — as one configuration per
//! seed, loaded with one call and overridable field by field.
//!
//! | preset | seed runbook | platform |
//! |---|---|---|
//! | `code-developer` | 000, code_developer daemon | Cloud Run, Cloud SQL, Secret Manager |
//! | `agent-marketplace` | 001, Agent Marketplace | Cloud Run, Prometheus, PagerDuty, Slack |
//! | `loopcloser` | 002, Loopcloser | Cloud Run, SQLite in Cloud Storage, GitHub Actions |
//! | `godel` | 003, Godel v2.0 | self-hosted Node under pm2, PostgreSQL |
//! | `monkeytown` | 004, Monkeytown | Vercel, GitHub Actions, PostgreSQL, Kubernetes |
//!
//! Escalation levels are named `on-call` (the pager), then as each seed names its people
//! (`leadership`, `team-lead`, `senior-engineer` …); give [`IncidentResponse`](crate::runbooks::IncidentResponse)
//! a level of each name, the team channel first (it is told at every declaration).
//!
//! The seeds name priorities their own way; presets map them onto [`Priority`](crate::contracts::Priority)
//! P0 (most urgent) to P3, as each file's header says. Sections a provider crate reads
//! (`[postgres.maintenance]`, `[notify.router]`) stay as TOML in [`Preset::providers`].
//!
//! ```
//! use ops_core::presets::Preset;
//! // Seed 003's canary, with one number changed.
//! let godel = Preset::load_with("godel", "[rollout]\nmin_requests = 500")?;
//! assert_eq!(godel.rollout.stages().iter().map(|s| s.percent).collect::<Vec<_>>(), [1, 5, 25, 100]);
//! assert_eq!(godel.rollout.min_requests, 500);
//! # Ok::<(), ops_core::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::config::{RunbookConfig, from_toml_table};
use crate::engine::ApprovalPolicy;
use crate::runbooks::{
    AgeAuditConfig, AlertsConfig, BackupVerifyConfig, CostReviewConfig, DeployVerifyConfig,
    HealthCheckConfig, IncidentConfig, RestoreConfig, RightSizeConfig, RollbackConfig,
    RolloutConfig, RotateConfig, ShutdownConfig, WeeklyReviewConfig,
};
use crate::schedule::ChangeCalendarConfig;
use crate::{Error, Result};

/// The presets shipped, by name, with their TOML.
pub const PRESETS: [(&str, &str); 5] = [
    (
        "code-developer",
        include_str!("../presets/code-developer.toml"),
    ),
    (
        "agent-marketplace",
        include_str!("../presets/agent-marketplace.toml"),
    ),
    ("loopcloser", include_str!("../presets/loopcloser.toml")),
    ("godel", include_str!("../presets/godel.toml")),
    ("monkeytown", include_str!("../presets/monkeytown.toml")),
];

/// One seed's configuration of every runbook. A section a preset leaves out is that runbook's
/// default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// The preset's name (`code-developer`).
    pub name: String,
    /// The seed runbook it carries, in words.
    pub seed: String,
    /// The platform that seed runs on.
    pub platform: String,
    /// Threshold alerts.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Incident response: priorities, escalation, postmortem deadlines.
    #[serde(default)]
    pub incident: IncidentConfig,
    /// The daily health check.
    #[serde(default)]
    pub health_check: HealthCheckConfig,
    /// Deploy with verification.
    #[serde(default)]
    pub deploy: DeployVerifyConfig,
    /// Canary or blue-green rollouts.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// Rollbacks.
    #[serde(default)]
    pub rollback: RollbackConfig,
    /// Backups: verification and retention.
    #[serde(default)]
    pub backup: BackupVerifyConfig,
    /// Restores.
    #[serde(default)]
    pub restore: RestoreConfig,
    /// Emergency shutdown.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// Right-sizing.
    #[serde(default)]
    pub right_size: RightSizeConfig,
    /// Secret rotation.
    #[serde(default)]
    pub rotation: RotateConfig,
    /// Secret ages, per secret where the seed says.
    #[serde(default)]
    pub secret_ages: AgeAuditConfig,
    /// The weekly review.
    #[serde(default)]
    pub weekly_review: WeeklyReviewConfig,
    /// Cost reviews and the cost spike alert.
    #[serde(default)]
    pub cost: CostReviewConfig,
    /// Maintenance windows and freezes.
    #[serde(default)]
    pub change: ChangeCalendarConfig,
    /// Who approves gated steps, where the seed says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalPolicy>,
    /// Provider sections, read by the provider crates (`[postgres.maintenance]`).
    #[serde(default)]
    pub providers: toml::Table,
}

impl Preset {
    /// The names of the presets shipped.
    pub fn names() -> impl Iterator<Item = &'static str> {
        PRESETS.iter().map(|(n, _)| *n)
    }

    /// The preset `name`, validated.
    pub fn load(name: &str) -> Result<Self> {
        Self::load_with(name, "")
    }

    /// The preset `name` with `overrides` (TOML of the same shape) laid over it table by
    /// table: a key given replaces that key, anything not given stays as the preset has it.
    pub fn load_with(name: &str, overrides: &str) -> Result<Self> {
        Self::load_with_table(name, parse(overrides)?)
    }

    /// The config of one runbook from preset `name`, with `overrides` — TOML of that config's
    /// own shape, as a `--config` file holds it — laid over the preset's section.
    ///
    /// ```
    /// use ops_core::presets::Preset;
    /// use ops_core::runbooks::ShutdownConfig;
    /// let c: ShutdownConfig = Preset::section("code-developer", "evidence_window = \"2h\"")?;
    /// assert_eq!((c.max_log_entries, c.evidence_window.as_secs()), (5000, 7200));
    /// # Ok::<(), ops_core::Error>(())
    /// ```
    pub fn section<C: PresetSection>(name: &str, overrides: &str) -> Result<C> {
        let mut wrapped = parse(overrides)?;
        for key in C::SECTION.rsplit('.') {
            let mut outer = toml::Table::new();
            outer.insert(key.to_string(), toml::Value::Table(wrapped));
            wrapped = outer;
        }
        Self::load_with_table(name, wrapped)?.get()
    }

    /// This preset's config of one runbook.
    pub fn get<C: PresetSection>(&self) -> Result<C> {
        C::from_preset(self)
    }

    /// The preset `name` with `overrides` laid over it (see [`Preset::load_with`]).
    pub fn load_with_table(name: &str, overrides: toml::Table) -> Result<Self> {
        let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = Self::names().collect();
            return Err(Error::invalid_input(
                "ops-core",
                "preset",
                "name",
                format!(
                    "no preset named {name:?}; the presets are {}",
                    known.join(", ")
                ),
            ));
        };
        let mut base: toml::Table = parse(text)?;
        merge(&mut base, overrides);
        let preset: Preset = from_toml_table(base)?;
        preset.validate()?;
        Ok(preset)
    }

    /// Validates every section, naming it in the error.
    pub fn validate(&self) -> Result<()> {
        let named = |section: &str, r: Result<()>| {
            r.map_err(|e| {
                Error::invalid_input(
                    "ops-core",
                    "preset",
                    format!("{}.{section}", self.name),
                    e.to_string(),
                )
            })
        };
        named("alerts", self.alerts.validate())?;
        named("incident", self.incident.validate())?;
        named("health_check", self.health_check.validate())?;
        named("deploy", self.deploy.validate())?;
        named("rollout", self.rollout.validate())?;
        named("rollback", self.rollback.validate())?;
        named("backup", self.backup.validate())?;
        named("restore", self.restore.validate())?;
        named("shutdown", self.shutdown.validate())?;
        named("right_size", self.right_size.validate())?;
        named("rotation", self.rotation.validate())?;
        named("secret_ages", self.secret_ages.validate())?;
        named("weekly_review", self.weekly_review.validate())?;
        named("cost", self.cost.validate())?;
        named("change", self.change.validate())?;
        if let Some(a) = &self.approvals {
            named("approvals", a.validate())?;
        }
        Ok(())
    }

    /// A provider section (`"postgres.maintenance"`) as that provider's config, validated;
    /// the provider's default when the preset has none.
    pub fn provider<T: RunbookConfig>(&self, path: &str) -> Result<T> {
        let field = format!("{}.providers.{path}", self.name);
        let mut table = &self.providers;
        for key in path.split('.') {
            match table.get(key) {
                Some(toml::Value::Table(t)) => table = t,
                None => return Ok(T::default()),
                Some(_) => {
                    return Err(Error::invalid_input(
                        "ops-core",
                        "preset",
                        field,
                        "is not a table",
                    ));
                }
            }
        }
        let config: T = from_toml_table(table.clone())
            .map_err(|e| Error::invalid_input("ops-core", "preset", &field, e.to_string()))?;
        config
            .validate()
            .map_err(|e| Error::invalid_input("ops-core", "preset", field, e.to_string()))?;
        Ok(config)
    }
}

fn parse(text: &str) -> Result<toml::Table> {
    text.parse::<toml::Table>()
        .map_err(|e| Error::invalid_input("ops-core", "preset", "toml", e.message().to_string()))
}

/// Lays `over` on `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// A config that a preset holds a section of.
pub trait PresetSection: RunbookConfig {
    /// Where it sits in a preset (`"shutdown"`, `"providers.postgres.maintenance"`).
    const SECTION: &'static str;
    /// Reads it from `preset`.
    fn from_preset(preset: &Preset) -> Result<Self>;
}

macro_rules! sections {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl PresetSection for $ty {
            const SECTION: &'static str = stringify!($field);
            fn from_preset(preset: &Preset) -> Result<Self> {
                Ok(preset.$field.clone())
            }
        }
    )*};
}

impl PresetSection for crate::adapters::HostResourcesConfig {
    const SECTION: &'static str = "providers.host.resources";

    fn from_preset(preset: &Preset) -> Result<Self> {
        preset.provider("host.resources")
    }
}

sections! {
    AlertsConfig => alerts,
    IncidentConfig => incident,
    HealthCheckConfig => health_check,
    DeployVerifyConfig => deploy,
    RolloutConfig => rollout,
    RollbackConfig => rollback,
    BackupVerifyConfig => backup,
    RestoreConfig => restore,
    ShutdownConfig => shutdown,
    RightSizeConfig => right_size,
    RotateConfig => rotation,
    AgeAuditConfig => secret_ages,
    WeeklyReviewConfig => weekly_review,
    CostReviewConfig => cost,
    ChangeCalendarConfig => change,
}
