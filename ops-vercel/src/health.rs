//! A [`HealthProbe`] for a project: production deployment READY, project not paused, and its
//! URL answering (`curl -I` of the seed runbook).

use async_trait::async_trait;
use ops_core::Result;
use ops_core::contracts::{CheckResult, Deployer, HealthProbe, HealthReport, HealthStatus};

use crate::deployer::VercelDeployer;

/// Checks a Vercel project's production deployment and site.
#[derive(Debug, Clone)]
pub struct VercelHealth {
    deployer: VercelDeployer,
    site: Option<String>,
    name: String,
}

impl VercelHealth {
    /// Checks `deployer`'s project; `site` overrides the URL requested (default: the
    /// production alias).
    pub fn new(deployer: VercelDeployer, site: Option<String>) -> Self {
        let name = format!("vercel:{}", deployer.target());
        Self {
            deployer,
            site,
            name,
        }
    }
}

#[async_trait]
impl HealthProbe for VercelHealth {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<HealthReport> {
        let clock = self.deployer.clock().clone();
        let started = clock.instant();
        let project = self.deployer.project().await?;
        let api_latency = clock.instant().saturating_duration_since(started);
        let now = clock.now();
        let check = |name: &str, status, detail: String, latency| CheckResult {
            name: name.into(),
            status,
            detail,
            latency,
            observed_at: now,
        };
        let mut checks = Vec::new();
        let prod = project.production().cloned();
        checks.push(match (&prod, project.paused) {
            (_, true) => check(
                "production",
                HealthStatus::Unhealthy,
                "the project is paused".into(),
                api_latency,
            ),
            (None, _) => check(
                "production",
                HealthStatus::Unhealthy,
                "no production deployment".into(),
                api_latency,
            ),
            (Some(d), _) if d.ready_state == "READY" => check(
                "production",
                HealthStatus::Healthy,
                format!("{} is READY", d.id),
                api_latency,
            ),
            (Some(d), _) => check(
                "production",
                HealthStatus::Unhealthy,
                format!("{} is {}", d.id, d.ready_state),
                api_latency,
            ),
        });
        let url = self.site.clone().or_else(|| {
            prod.as_ref()
                .map(|d| format!("https://{}", d.alias.first().unwrap_or(&d.url)))
        });
        if let Some(url) = url {
            let started = clock.instant();
            let http = self.deployer.client().http();
            let options = ops_core::http::SendOptions {
                accept: (300..600).collect(),
                ..Default::default()
            };
            let answer = http
                .send_with("probe_site", http.get(&url), &options)
                .await
                .map(|r| r.status().as_u16());
            let latency = clock.instant().saturating_duration_since(started);
            checks.push(match answer {
                Ok(s) if s < 400 => check(
                    "site",
                    HealthStatus::Healthy,
                    format!("{url} answered {s}"),
                    latency,
                ),
                Ok(s) => check(
                    "site",
                    HealthStatus::Unhealthy,
                    format!("{url} answered {s}"),
                    latency,
                ),
                Err(e) => check(
                    "site",
                    HealthStatus::Unhealthy,
                    format!("{url}: {e}"),
                    latency,
                ),
            });
        }
        Ok(HealthReport::from_checks(self.name.clone(), now, checks))
    }
}
