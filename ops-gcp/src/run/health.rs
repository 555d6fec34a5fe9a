//! A [`HealthProbe`] reading a Cloud Run service's own conditions.

use async_trait::async_trait;
use ops_core::Result;
use ops_core::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};

use super::CloudRun;
use super::model::{INGRESS_NONE, INGRESS_UNSPECIFIED, Service, short_name};

/// Healthy when the service is Ready, its newest revision is the one ready to serve, and
/// ingress is open. Built by [`CloudRun::health_probe`].
#[derive(Debug, Clone)]
pub struct CloudRunHealth {
    run: CloudRun,
    name: String,
}

impl CloudRunHealth {
    pub(super) fn new(run: CloudRun) -> Self {
        let name = format!("cloud-run:{}", run.service);
        Self { run, name }
    }
}

#[async_trait]
impl HealthProbe for CloudRunHealth {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let clock = self.run.client.clock().clone();
        let started = clock.instant();
        let svc = self.run.service().await?;
        let latency = clock.instant().saturating_duration_since(started);
        let now = clock.now();
        let checks = checks_of(&svc)
            .into_iter()
            .map(|(name, status, detail)| CheckResult {
                name: name.into(),
                status,
                detail,
                latency,
                observed_at: now,
            })
            .collect();
        Ok(HealthReport::from_checks(self.name.clone(), now, checks))
    }
}

fn checks_of(svc: &Service) -> Vec<(&'static str, HealthStatus, String)> {
    let ready = svc
        .terminal_condition
        .as_ref()
        .or_else(|| svc.conditions.iter().find(|c| c.kind == "Ready"));
    let why = |c: &super::model::Condition| c.message.clone().unwrap_or_else(|| c.state.clone());
    let condition = match ready {
        Some(c) if c.succeeded() => (HealthStatus::Healthy, "Ready".to_string()),
        Some(c) if c.failed() => (HealthStatus::Unhealthy, format!("not ready: {}", why(c))),
        Some(c) => (HealthStatus::Degraded, format!("reconciling: {}", why(c))),
        None => (HealthStatus::Degraded, "no Ready condition reported".into()),
    };
    let created = svc.latest_created_revision.as_deref().map(short_name);
    let latest_ready = svc.latest_ready_revision.as_deref().map(short_name);
    let revision = match (created, latest_ready) {
        (Some(c), Some(r)) if c == r => (HealthStatus::Healthy, format!("{r} is ready")),
        (Some(c), Some(r)) if svc.reconciling => (
            HealthStatus::Degraded,
            format!("{c} is still starting; {r} serves"),
        ),
        (Some(c), Some(r)) => (
            HealthStatus::Degraded,
            format!("newest revision {c} never became ready; {r} serves"),
        ),
        (_, None) => (HealthStatus::Unhealthy, "no revision is ready".into()),
        (None, Some(r)) => (HealthStatus::Healthy, format!("{r} is ready")),
    };
    let ingress = match svc.ingress.as_deref() {
        Some(INGRESS_NONE) => (
            HealthStatus::Unhealthy,
            "stopped: ingress is INGRESS_TRAFFIC_NONE".to_string(),
        ),
        // Read back when unset, but not a state to call healthy without knowing it.
        Some(INGRESS_UNSPECIFIED) => (
            HealthStatus::Degraded,
            "ingress reads back as INGRESS_TRAFFIC_UNSPECIFIED".to_string(),
        ),
        Some(i) => (HealthStatus::Healthy, i.to_string()),
        None => (HealthStatus::Healthy, "default ingress".into()),
    };
    vec![
        ("ready", condition.0, condition.1),
        ("latest-revision", revision.0, revision.1),
        ("ingress", ingress.0, ingress.1),
    ]
}
