//! [`HealthProbe`]: is a service, database or endpoint healthy right now?

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Health, ordered from best to worst so the worst of several is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Working as expected.
    Healthy,
    /// Working, but a check is outside its comfortable range (slow, near a limit).
    Degraded,
    /// Not working.
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One named check inside a [`HealthReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// What was checked (`"http GET https://…/health"`, `"database"`).
    pub name: String,
    /// Its status.
    pub status: HealthStatus,
    /// A short human-readable explanation (`"200 in 35 ms"`, `"field status was \"down\""`).
    pub detail: String,
    /// How long the check took.
    #[serde(with = "crate::serde_duration")]
    pub latency: Duration,
    /// When it was observed.
    pub observed_at: DateTime<Utc>,
}

/// The result of one [`HealthProbe::check`]: named checks and their worst status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The probe's name.
    pub probe: String,
    /// The worst status among `checks` (healthy when there are none).
    pub status: HealthStatus,
    /// The individual checks.
    pub checks: Vec<CheckResult>,
    /// When the report was made.
    pub observed_at: DateTime<Utc>,
}

impl HealthReport {
    /// A report whose overall status is the worst of `checks`.
    ///
    /// ```
    /// use ops_core::contracts::{CheckResult, HealthReport, HealthStatus};
    /// let now = chrono::DateTime::UNIX_EPOCH;
    /// let check = |status| CheckResult { name: "c".into(), status, detail: String::new(),
    ///     latency: Default::default(), observed_at: now };
    /// let r = HealthReport::from_checks("api", now,
    ///     vec![check(HealthStatus::Healthy), check(HealthStatus::Degraded)]);
    /// assert_eq!(r.status, HealthStatus::Degraded);
    /// ```
    pub fn from_checks(
        probe: impl Into<String>,
        observed_at: DateTime<Utc>,
        checks: Vec<CheckResult>,
    ) -> Self {
        let status = checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Healthy);
        Self {
            probe: probe.into(),
            status,
            checks,
            observed_at,
        }
    }
}

/// Checks the health of one thing.
///
/// Implementations report what they observe: an endpoint that refuses connections is an
/// `Ok` report with an unhealthy check. `Err` is for when the probe could not look at all
/// (e.g. the provider API that reports health denied access).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// The probe's name, used in reports.
    fn name(&self) -> &str;
    /// Looks and reports.
    ///
    /// # Behavior
    /// Cases of `testkit::health_report_cases`, over the report:
    /// - it names its probe (`the_report_names_its_probe`);
    /// - it has at least one check, each named and explained
    ///   (`every_check_is_named_and_explained`);
    /// - its status is the worst check's (`the_overall_status_is_the_worst_check`);
    /// - it shows the status the target was arranged to have
    ///   (`the_probe_sees_the_arranged_status`);
    /// - it survives JSON (`a_report_survives_json`).
    async fn check(&self) -> Result<HealthReport>;
}

/// Runs every probe, at most `concurrency` at once (at least one), and returns their results
/// in the order given.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use ops_core::adapters::TcpProbe;
/// use ops_core::contracts::{check_all, HealthProbe};
/// let probes: Vec<Arc<dyn HealthProbe>> = vec![Arc::new(TcpProbe::new("127.0.0.1:9").unwrap())];
/// let reports = check_all(&probes, 8).await;
/// assert_eq!(reports.len(), 1);
/// # }
/// ```
pub async fn check_all(
    probes: &[std::sync::Arc<dyn HealthProbe>],
    concurrency: usize,
) -> Vec<Result<HealthReport>> {
    use futures_util::StreamExt;
    type Check = std::pin::Pin<Box<dyn std::future::Future<Output = Result<HealthReport>> + Send>>;
    // Boxed, owned futures: a closure type inside the returned future trips rustc's
    // higher-ranked lifetime inference when callers need that future to be `Send`.
    let checks: Vec<Check> = probes
        .iter()
        .map(|p| {
            let p = std::sync::Arc::clone(p);
            Box::pin(async move { p.check().await }) as Check
        })
        .collect();
    futures_util::stream::iter(checks)
        .buffered(concurrency.max(1))
        .collect()
        .await
}
