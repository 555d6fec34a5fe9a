//! [`MemoryDeployer`]: a deployer whose service lives in memory.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::clock::{SharedClock, system_clock};
use crate::contracts::{
    DeployRequest, Deployer, DeployerCapabilities, InitialTraffic, Release, ReleaseState,
    ScaleSpec, ServiceState, TrafficAllocation, TrafficSplit,
};
use crate::{Error, ErrorKind, Result};

const PROVIDER: &str = "memory-deployer";

/// A service in memory with Cloud Run's traffic model: releases `TARGET-00001`, … ; the first
/// release takes all traffic; later ones start with none unless asked; any split across ready
/// releases. [`MemoryDeployer::fail_deploys_of`] makes a version's release fail to start, to
/// rehearse a failed deploy.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> ops_core::Result<()> {
/// use ops_core::memory::MemoryDeployer;
/// use ops_core::contracts::{DeployRequest, Deployer, TrafficSplit};
/// let d = MemoryDeployer::new("api");
/// let stable = d.deploy(&DeployRequest::new("api:1.0")).await?;
/// let canary = d.deploy(&DeployRequest::new("api:1.1")).await?;
/// d.set_traffic(&TrafficSplit::new([(canary.id.as_str(), 5), (stable.id.as_str(), 95)])?).await?;
/// assert_eq!(d.current().await?.primary_release(), Some(stable.id.as_str()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryDeployer {
    target: String,
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    releases: Vec<Release>,
    traffic: Vec<TrafficAllocation>,
    serving: bool,
    scale: ScaleSpec,
    generation: u64,
    failing_versions: HashSet<String>,
}

impl MemoryDeployer {
    /// An empty service called `target`.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            clock: system_clock(),
            state: Mutex::new(State::default()),
        }
    }

    /// Uses `clock` for release times.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Deploys of `version` from now on produce a release that fails to start.
    pub fn fail_deploys_of(&self, version: impl Into<String>) {
        lock(&self.state).failing_versions.insert(version.into());
    }

    fn snapshot(&self, s: &State) -> ServiceState {
        ServiceState {
            target: self.target.clone(),
            serving: s.serving,
            traffic: if s.serving {
                s.traffic.clone()
            } else {
                Vec::new()
            },
            latest_ready: s
                .releases
                .iter()
                .find(|r| r.state == ReleaseState::Ready)
                .map(|r| r.id.clone()),
            url: Some(format!("https://{}.example.invalid", self.target)),
            scale: Some(s.scale.clone()),
            etag: Some(format!("\"{}\"", s.generation)),
        }
    }
}

#[async_trait]
impl Deployer for MemoryDeployer {
    fn target(&self) -> &str {
        &self.target
    }

    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities {
            traffic_split: true,
            scale: true,
            stop_serving: true,
            deploy_without_traffic: true,
        }
    }

    async fn current(&self) -> Result<ServiceState> {
        Ok(self.snapshot(&lock(&self.state)))
    }

    async fn releases(&self) -> Result<Vec<Release>> {
        Ok(lock(&self.state).releases.clone())
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Release> {
        request.validate()?;
        let now = self.clock.now();
        let mut s = lock(&self.state);
        let id = format!("{}-{:05}", self.target, s.releases.len() + 1);
        let failed = s.failing_versions.contains(&request.version);
        let release = Release {
            id: id.clone(),
            version: request.version.clone(),
            state: if failed {
                ReleaseState::Failed
            } else {
                ReleaseState::Ready
            },
            created_at: Some(now),
            url: Some(format!("https://{id}.example.invalid")),
            labels: request.labels.clone(),
        };
        s.releases.insert(0, release.clone());
        s.generation += 1;
        if failed {
            return Err(Error::new(
                PROVIDER,
                "deploy",
                ErrorKind::Provider {
                    status: 0,
                    code: Some("RELEASE_FAILED".into()),
                    body_excerpt: format!("release {id} of {} failed to start", request.version),
                },
            ));
        }
        if request.traffic == InitialTraffic::All || s.traffic.is_empty() {
            s.traffic = vec![TrafficAllocation {
                release: id,
                percent: 100,
            }];
            s.serving = true;
        }
        Ok(release)
    }

    async fn set_traffic(&self, split: &TrafficSplit) -> Result<ServiceState> {
        let mut s = lock(&self.state);
        split
            .check_known(&s.releases)
            .map_err(|e| e.with_operation("set_traffic"))?;
        s.traffic = split
            .allocations()
            .iter()
            .filter(|a| a.percent > 0)
            .cloned()
            .collect();
        s.serving = true;
        s.generation += 1;
        Ok(self.snapshot(&s))
    }

    async fn scale(&self, spec: &ScaleSpec) -> Result<ServiceState> {
        spec.validate()?;
        let mut s = lock(&self.state);
        let merged = ScaleSpec {
            min_instances: spec.min_instances.or(s.scale.min_instances),
            max_instances: spec.max_instances.or(s.scale.max_instances),
            cpu: spec.cpu.clone().or_else(|| s.scale.cpu.clone()),
            memory: spec.memory.clone().or_else(|| s.scale.memory.clone()),
        };
        if let (Some(min), Some(max)) = (merged.min_instances, merged.max_instances)
            && min > max
        {
            return Err(Error::invalid_input(
                PROVIDER,
                "scale",
                "min_instances",
                format!("{min} would exceed max_instances {max}"),
            ));
        }
        s.scale = merged;
        s.generation += 1;
        Ok(self.snapshot(&s))
    }

    async fn stop_serving(&self) -> Result<ServiceState> {
        let mut s = lock(&self.state);
        s.serving = false;
        s.generation += 1;
        Ok(self.snapshot(&s))
    }
}
