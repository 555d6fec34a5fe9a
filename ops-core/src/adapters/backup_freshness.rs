//! [`BackupFreshness`]: is the newest *verified* backup of each store younger than a bound? The
//! daily "last night's backup exists and is recent" of seeds 001, 002 and 003, as a
//! [`HealthProbe`] for the health check and as a [`MetricsSource`] for the alert table.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{SharedClock, system_clock};
use crate::config::human_duration;
use crate::contracts::{
    BackupFilter, BackupInfo, BackupState, BackupStore, CheckResult, HealthProbe, HealthReport,
    HealthStatus, Metric, MetricQuery, MetricReading, MetricsSource, Verification,
};
use crate::{Error, Result};

const PROVIDER: &str = "backup-freshness";

/// The metric [`BackupFreshness`] answers as a [`MetricsSource`]: the age in hours of the
/// stalest store's newest verified backup; `backup_age_hours:<label>` for one store.
pub const BACKUP_AGE_HOURS: &str = "backup_age_hours";

/// The age reported for a store with no verified backup at all: above every threshold, so an
/// alert on [`BACKUP_AGE_HOURS`] fires for it (and survives JSON, which infinity does not).
pub const NEVER_BACKED_UP_HOURS: f64 = f64::MAX;

/// One store to watch.
struct Watched {
    label: String,
    store: Arc<dyn BackupStore>,
    filter: BackupFilter,
    max_age: Duration,
    warn_age: Option<Duration>,
}

/// What one store's backups look like now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreFreshness {
    /// The store's label (its name unless given one).
    pub label: String,
    /// The newest good backup, if any: complete and verified, or only complete where the
    /// store records no verification (`verified_required` false).
    pub newest_verified: Option<BackupInfo>,
    /// Whether a good backup had to be verified: the store declares
    /// [`BackupCapabilities::verification`](crate::contracts::BackupCapabilities). Cloud SQL's
    /// backup runs, for one, are only ever complete (a restore drill checks them).
    pub verified_required: bool,
    /// Its age, when there is one (zero for a backup stamped in the future).
    #[serde(with = "crate::serde_duration::option", default)]
    pub age: Option<Duration>,
    /// Backups newer than it that are not good: failed, failed verification, still pending
    /// or not verified, newest first (their ids and why).
    pub newer_not_good: Vec<(String, String)>,
    /// The bound.
    #[serde(with = "crate::serde_duration")]
    pub max_age: Duration,
}

impl StoreFreshness {
    /// Healthy when the newest verified backup is within the bound and nothing newer went
    /// wrong; degraded past the warning age or when a newer backup failed; unhealthy past the
    /// bound or with no verified backup.
    pub fn status(&self, warn_age: Option<Duration>) -> HealthStatus {
        match self.age {
            None => HealthStatus::Unhealthy,
            Some(age) if age > self.max_age => HealthStatus::Unhealthy,
            Some(age) if warn_age.is_some_and(|w| age > w) => HealthStatus::Degraded,
            Some(_)
                if self
                    .newer_not_good
                    .iter()
                    .any(|(_, why)| why.starts_with("fail")) =>
            {
                HealthStatus::Degraded
            }
            Some(_) => HealthStatus::Healthy,
        }
    }

    /// The age in hours, [`NEVER_BACKED_UP_HOURS`] without a verified backup.
    pub fn age_hours(&self) -> f64 {
        self.age
            .map(|a| a.as_secs_f64() / 3600.0)
            .unwrap_or(NEVER_BACKED_UP_HOURS)
    }

    /// One line for a report: the good backup's id, age, bound and place, and the newest
    /// backup after it that went wrong.
    pub fn detail(&self) -> String {
        let good = if self.verified_required {
            "verified"
        } else {
            "complete"
        };
        let mut text = match (&self.newest_verified, self.age) {
            (Some(b), Some(age)) => format!(
                "newest {good} backup {} is {} old (bound {}) at {}",
                b.id,
                human_duration::format(Duration::from_secs(age.as_secs())),
                human_duration::format(self.max_age),
                b.location
            ),
            _ => format!(
                "no {good} backup (bound {})",
                human_duration::format(self.max_age)
            ),
        };
        if let Some((id, why)) = self.newer_not_good.first() {
            text.push_str(&format!("; newer {id} {why}"));
            if self.newer_not_good.len() > 1 {
                text.push_str(&format!(" (+{} more)", self.newer_not_good.len() - 1));
            }
        }
        text
    }
}

/// Why a backup newer than the newest good one does not count.
fn why_not_good(b: &BackupInfo) -> String {
    match (&b.state, &b.verification) {
        (BackupState::Failed, _) => "failed".into(),
        (_, Verification::Failed { reason, .. }) => format!("failed verification: {reason}"),
        (BackupState::Pending, _) => "is still being taken".into(),
        _ => "is not verified".into(),
    }
}

/// Watches the newest verified backup of each store (the newest complete one where the store
/// records no verification, as Cloud SQL's backup runs). As a probe, one check per store: healthy
/// within the bound, degraded past an optional warning age or when a newer backup failed (or
/// failed its verification), unhealthy past the bound or with none. A store that cannot be
/// listed is an unhealthy check with the error, not a failed probe. As a metrics source it
/// answers [`BACKUP_AGE_HOURS`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ops_core::adapters::{BackupFreshness, FsBackupStore};
/// use ops_core::contracts::{HealthProbe, HealthStatus};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Arc::new(FsBackupStore::open(dir.path()).await?);
/// let freshness = BackupFreshness::new("backups").watch(store, Duration::from_secs(26 * 3600));
/// // Nothing taken yet: unhealthy, saying so.
/// let report = freshness.check().await?;
/// assert_eq!(report.status, HealthStatus::Unhealthy);
/// assert!(report.checks[0].detail.starts_with("no verified backup"));
/// # Ok(()) }
/// ```
pub struct BackupFreshness {
    name: String,
    watched: Vec<Watched>,
    clock: SharedClock,
}

impl std::fmt::Debug for BackupFreshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupFreshness")
            .field("name", &self.name)
            .field(
                "stores",
                &self.watched.iter().map(|w| &w.label).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl BackupFreshness {
    /// A probe watching no store yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            watched: Vec::new(),
            clock: system_clock(),
        }
    }

    /// Watches every backup of `store`: its newest verified one must be younger than `max_age`.
    pub fn watch(self, store: Arc<dyn BackupStore>, max_age: Duration) -> Self {
        let label = store.name().to_string();
        self.watch_filtered(label, store, BackupFilter::default(), max_age)
    }

    /// Watches the backups of `store` that `filter` selects (its limit is ignored), under
    /// `label` (one store may hold several databases' backups by prefix).
    pub fn watch_filtered(
        mut self,
        label: impl Into<String>,
        store: Arc<dyn BackupStore>,
        filter: BackupFilter,
        max_age: Duration,
    ) -> Self {
        self.watched.push(Watched {
            label: label.into(),
            store,
            filter: BackupFilter {
                limit: None,
                ..filter
            },
            max_age,
            warn_age: None,
        });
        self
    }

    /// Degraded past this age for the store added last (an early warning before the bound).
    pub fn warn_after(mut self, age: Duration) -> Self {
        if let Some(w) = self.watched.last_mut() {
            w.warn_age = Some(age);
        }
        self
    }

    /// Uses this clock for ages and timestamps.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Each store's freshness, in the order added; the first listing error stops it.
    pub async fn freshness(&self) -> Result<Vec<StoreFreshness>> {
        let now = self.clock.now();
        let mut out = Vec::with_capacity(self.watched.len());
        for w in &self.watched {
            out.push(Self::one(w, now).await?);
        }
        Ok(out)
    }

    async fn one(w: &Watched, now: DateTime<Utc>) -> Result<StoreFreshness> {
        store_freshness(&w.label, w.store.as_ref(), &w.filter, w.max_age, now).await
    }
}

/// The freshness of the backups of `store` that `filter` selects (its limit ignored), judged
/// against `max_age` at `now`: what [`BackupFreshness`] reports per store, for callers that
/// hold a store by reference.
pub async fn store_freshness(
    label: &str,
    store: &dyn BackupStore,
    filter: &BackupFilter,
    max_age: Duration,
    now: DateTime<Utc>,
) -> Result<StoreFreshness> {
    let filter = BackupFilter {
        limit: None,
        ..filter.clone()
    };
    // `list` is newest first (BackupFilter::apply), so everything before the first good
    // backup is newer than it.
    let verified_required = store.capabilities().verification;
    let all = store.list(&filter).await?;
    let mut newer_not_good = Vec::new();
    let mut newest_verified = None;
    for b in all {
        let good = if verified_required {
            b.is_restorable_unnamed()
        } else {
            b.state == BackupState::Complete && !b.verification.is_failed()
        };
        if good {
            newest_verified = Some(b);
            break;
        }
        newer_not_good.push((b.id.clone(), why_not_good(&b)));
    }
    let age = newest_verified
        .as_ref()
        .map(|b| (now - b.created_at).to_std().unwrap_or(Duration::ZERO));
    Ok(StoreFreshness {
        label: label.to_string(),
        newest_verified,
        verified_required,
        age,
        newer_not_good,
        max_age,
    })
}

#[async_trait]
impl HealthProbe for BackupFreshness {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let observed_at = self.clock.now();
        let mut checks = Vec::with_capacity(self.watched.len());
        for w in &self.watched {
            let start = self.clock.instant();
            let (status, detail) = match Self::one(w, observed_at).await {
                Ok(f) => (f.status(w.warn_age), f.detail()),
                Err(e) => (HealthStatus::Unhealthy, format!("cannot list backups: {e}")),
            };
            checks.push(CheckResult {
                name: format!("backups {}", w.label),
                status,
                detail,
                latency: self.clock.instant().saturating_duration_since(start),
                observed_at,
            });
        }
        if checks.is_empty() {
            return Err(Error::invalid_input(
                PROVIDER,
                "check",
                "stores",
                "no backup store is watched",
            ));
        }
        Ok(HealthReport::from_checks(
            self.name.clone(),
            observed_at,
            checks,
        ))
    }
}

#[async_trait]
impl MetricsSource for BackupFreshness {
    fn name(&self) -> &str {
        &self.name
    }

    /// [`BACKUP_AGE_HOURS`]: the stalest watched store's age in hours (the query's window
    /// does not apply: the age is now's), or `backup_age_hours:<label>` for one store.
    async fn read(&self, query: &MetricQuery) -> Result<MetricReading> {
        query.validate()?;
        let Metric::Named { name } = &query.metric else {
            return Err(Error::unsupported(
                PROVIDER,
                "read",
                "metrics other than backup age",
            ));
        };
        let label = match name.split_once(':') {
            None if name == BACKUP_AGE_HOURS => None,
            Some((BACKUP_AGE_HOURS, label)) => Some(label),
            _ => {
                return Err(Error::unsupported(
                    PROVIDER,
                    "read",
                    format!("the metric {name:?} (only {BACKUP_AGE_HOURS}[:<store>])"),
                ));
            }
        };
        let now = self.clock.now();
        let mut worst: Option<f64> = None;
        let mut samples = 0u64;
        for w in self
            .watched
            .iter()
            .filter(|w| label.is_none_or(|l| l == w.label))
        {
            let hours = Self::one(w, now).await?.age_hours();
            worst = Some(worst.map_or(hours, |h| h.max(hours)));
            samples += 1;
        }
        match worst {
            Some(value) => Ok(MetricReading::Value { value, samples }),
            None => Err(Error::new(
                PROVIDER,
                "read",
                crate::ErrorKind::NotFound {
                    resource: format!("a watched store labelled {:?}", label.unwrap_or_default()),
                },
            )),
        }
    }
}
