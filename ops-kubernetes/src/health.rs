//! A Deployment's health as a [`HealthProbe`]: available against desired replicas, the rollout
//! as `kubectl rollout status` reads it, and its pods (back-offs, OOM kills, restarts), so the
//! seed's "if down: restart", "if OOM: scale up" read from one report.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ops_core::Result;
use ops_core::contracts::{CheckResult, HealthProbe, HealthReport, HealthStatus};

use crate::deployment::KubeDeployment;
use crate::rollout::{PodProblem, Rollout, problems_of, rollout_of};

/// The health of one Deployment.
#[derive(Debug, Clone)]
pub struct KubeHealth {
    deployment: KubeDeployment,
    name: String,
    restarts_warn: i32,
}

impl KubeHealth {
    /// Checks `deployment`; a pod restarted 3 times or more makes it degraded.
    pub fn new(deployment: KubeDeployment) -> Self {
        Self {
            name: format!("kubernetes:{}", deployment.name()),
            deployment,
            restarts_warn: 3,
        }
    }

    /// Restarts of one pod that make the Deployment degraded (at least 1).
    pub fn restarts_warn(mut self, n: i32) -> Self {
        self.restarts_warn = n.max(1);
        self
    }
}

/// What the pods of a Deployment say, worst first.
#[derive(Debug, Default)]
struct PodFindings {
    problems: Vec<PodProblem>,
    restarts: BTreeMap<String, i32>,
}

#[async_trait]
impl HealthProbe for KubeHealth {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let clock = self.deployment.client().clock().clone();
        let started = clock.instant();
        let d = self.deployment.get().await?;
        let sets = self.deployment.replica_sets(&d).await?;
        let mut pods = PodFindings::default();
        for rs in sets
            .iter()
            .filter(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            for pod in self.deployment.pods_of(rs).await? {
                pods.problems.extend(problems_of(&pod));
                let name = pod.metadata.name.clone().unwrap_or_default();
                let restarts = pod
                    .status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
                    .map(|c| c.restart_count)
                    .max()
                    .unwrap_or(0);
                pods.restarts.insert(name, restarts);
            }
        }
        let latency = clock.instant().saturating_duration_since(started);
        let now = clock.now();
        let check = |name: &str, status, detail: String| CheckResult {
            name: name.into(),
            status,
            detail,
            latency,
            observed_at: now,
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let available = d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        let availability = match (want, available) {
            (0, _) => (
                HealthStatus::Unhealthy,
                "scaled to zero replicas".to_string(),
            ),
            (w, a) if a >= w => (
                HealthStatus::Healthy,
                format!("{a} of {w} replicas available"),
            ),
            (w, 0) => (
                HealthStatus::Unhealthy,
                format!("0 of {w} replicas available"),
            ),
            (w, a) => (
                HealthStatus::Degraded,
                format!("{a} of {w} replicas available"),
            ),
        };
        let rollout = match rollout_of(&d) {
            Rollout::Complete => (HealthStatus::Healthy, "rolled out".to_string()),
            Rollout::NotObserved => (
                HealthStatus::Degraded,
                "the latest spec is not observed yet".into(),
            ),
            Rollout::Progressing(m) => (HealthStatus::Degraded, m),
            Rollout::DeadlineExceeded(m) => (HealthStatus::Unhealthy, m),
        };
        let fatal: Vec<&PodProblem> = pods.problems.iter().filter(|p| p.is_fatal()).collect();
        let oom: Vec<&PodProblem> = pods.problems.iter().filter(|p| p.oom_killed).collect();
        let restarting: Vec<(&String, &i32)> = pods
            .restarts
            .iter()
            .filter(|(_, n)| **n >= self.restarts_warn)
            .collect();
        let pod_check = if !fatal.is_empty() {
            let status = if available == 0 {
                HealthStatus::Unhealthy
            } else {
                HealthStatus::Degraded
            };
            let list: Vec<String> = fatal.iter().take(5).map(|p| p.to_string()).collect();
            (status, list.join("; "))
        } else if !oom.is_empty() {
            let list: Vec<String> = oom.iter().take(5).map(|p| p.to_string()).collect();
            (HealthStatus::Degraded, list.join("; "))
        } else if !restarting.is_empty() {
            let list: Vec<String> = restarting
                .iter()
                .take(5)
                .map(|(p, n)| format!("{p}: {n} restarts"))
                .collect();
            (HealthStatus::Degraded, list.join("; "))
        } else {
            (
                HealthStatus::Healthy,
                format!("{} pods, none failing or restarting", pods.restarts.len()),
            )
        };
        Ok(HealthReport::from_checks(
            self.name.clone(),
            now,
            vec![
                check("available replicas", availability.0, availability.1),
                check("rollout", rollout.0, rollout.1),
                check("pods", pod_check.0, pod_check.1),
            ],
        ))
    }
}
